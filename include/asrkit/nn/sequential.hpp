// asrkit/nn/sequential.hpp - containers: a chain of layers and a residual connection.
//
//   asrkit::Sequential net(asrkit::Linear<float>(80, 256), asrkit::LayerNorm<float>(256),
//                          asrkit::Dropout<float>(0.1, 1));
//   auto y  = net.forward_train(x);       // each layer's forward_train in order
//   auto dx = net.backward(dy);           // each layer's backward in reverse order
//   net.get<1>().weight();                // the LayerNorm
//   net.for_each_parameter(f);            // "0.weight", "0.bias", "1.weight", ...
//
//   asrkit::Residual block(asrkit::Sequential(...));   // y = x + f(x), dx = dy + f'(x)ᵀ dy
//
// Sequential is a std::tuple of layers (types known at compile time: no virtual calls, each
// layer's own API stays reachable through get<I>()). Parameter and buffer names get the layer's
// index as prefix, exactly as torch.nn.Sequential's state_dict ("0.weight", "2.running_mean").
// Layers without parameters or buffers may omit for_each_parameter / for_each_buffer.
// Every layer takes one tensor and returns one; sequence layers that also need `lengths`
// (SequenceBatchNorm) are used outside, or with all frames valid.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

/// A chain of layers applied in order (torch.nn.Sequential).
template <class... Layers>
class Sequential {
  static_assert(sizeof...(Layers) >= 1, "Sequential needs at least one layer");

 public:
  Sequential() = default;
  explicit Sequential(Layers... layers) : layers_(std::move(layers)...) {}

  template <class X>
  auto forward(const X& x) const {
    return forward_from<0>(x);
  }
  /// x reaches the first layer as given (a view is copied, a moved tensor or asrkit::borrow(x)
  /// is not); each layer's output is moved into the next, which may keep it for backward.
  template <class X>
  auto forward_train(X&& x) {
    return forward_train_from<0>(std::forward<X>(x));
  }
  template <class G>
  auto backward(const G& dy) {
    return backward_from<sizeof...(Layers) - 1>(dy);
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for_each_layer([&](auto& layer, std::size_t i) {
      visit_parameters(layer, f, join_name(prefix, std::to_string(i)));
    });
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    for_each_layer([&](auto& layer, std::size_t i) {
      visit_buffers(layer, f, join_name(prefix, std::to_string(i)));
    });
  }

  static constexpr std::size_t size() noexcept { return sizeof...(Layers); }
  template <std::size_t I>
  auto& get() noexcept {
    return std::get<I>(layers_);
  }
  template <std::size_t I>
  const auto& get() const noexcept {
    return std::get<I>(layers_);
  }

 private:
  template <std::size_t I, class X>
  auto forward_from(const X& x) const {
    auto y = std::get<I>(layers_).forward(x);
    if constexpr (I + 1 < sizeof...(Layers)) return forward_from<I + 1>(y);
    else return y;
  }
  template <std::size_t I, class X>
  auto forward_train_from(X&& x) {
    auto y = std::get<I>(layers_).forward_train(std::forward<X>(x));
    if constexpr (I + 1 < sizeof...(Layers)) return forward_train_from<I + 1>(std::move(y));
    else return y;
  }
  template <std::size_t I, class G>
  auto backward_from(const G& dy) {
    auto dx = std::get<I>(layers_).backward(dy);
    if constexpr (I > 0) return backward_from<I - 1>(dx);
    else return dx;
  }
  template <class F, std::size_t... I>
  void for_each_layer_impl(F& f, std::index_sequence<I...>) {
    (f(std::get<I>(layers_), I), ...);
  }
  template <class F>
  void for_each_layer(F&& f) {
    for_each_layer_impl(f, std::index_sequence_for<Layers...>{});
  }

  std::tuple<Layers...> layers_;
};

template <class... Layers>
Sequential(Layers...) -> Sequential<Layers...>;

/// A residual connection around one layer: y = x + f(x) (He et al. 2016); f must keep the shape.
/// Parameter names are those of f, under `name` when one is given (e.g. "fn" for a PyTorch
/// module that stores the wrapped layer as self.fn); by default the wrapper adds no prefix.
template <class Layer>
class Residual {
 public:
  explicit Residual(Layer layer, std::string name = {}) : layer_(std::move(layer)), name_(std::move(name)) {}

  template <class X>
  auto forward(const X& x) const {
    return add(x, layer_.forward(x));
  }
  template <class X>
  auto forward_train(const X& x) {
    return add(x, layer_.forward_train(x));
  }
  /// dL/dx = dy + (df/dx)ᵀ dy.
  template <class G>
  auto backward(const G& dy) {
    return add(dy, layer_.backward(dy));
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    visit_parameters(layer_, f, join_name(prefix, name_));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    visit_buffers(layer_, f, join_name(prefix, name_));
  }

  Layer& layer() noexcept { return layer_; }
  const Layer& layer() const noexcept { return layer_; }

 private:
  static std::string join_name(std::string_view prefix, const std::string& name) {
    return name.empty() ? std::string(prefix) : asrkit::join_name(prefix, name);
  }

  template <class X, class Y>
  static Y add(const X& x, Y y) {
    using T = typename Y::value_type;
    const TensorView<const T> xv(x);
    if (xv.shape() != y.shape())
      throw ShapeError("sequential.1", detail::str("Residual: the wrapped layer must keep the shape, "
                                                   "input ", xv.shape().str(), " gave ",
                                                   y.shape().str()));
    y.flat() += xv.flat();
    return y;
  }

  Layer layer_;
  std::string name_;
};

}  // namespace asrkit
