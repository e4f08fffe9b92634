// asrkit/nn/parameter.hpp - trainable parameters and the layer contract every nn/ layer follows.
//
//   asrkit::Linear<float> fc(1024, 4096);
//   auto y  = fc.forward(x);                // inference: no cache
//   auto yt = fc.forward_train(x);          // training: caches what backward needs
//   auto dx = fc.backward(dy);              // returns dL/dx, accumulates dL/dW into grads
//   fc.for_each_parameter([](const std::string& name, asrkit::Parameter<float>& p) { ... });
//
// The layer contract (mlpack's FFN style, ../shared/DESIGN.md sec. 3):
// - `forward(x) const` for inference, `forward_train(x)` caches inputs/statistics, and
//   `backward(dy)` returns the input gradient and *adds* to every Parameter::grad, so gradients
//   of several micro-batches accumulate until `zero_grad`.
// - `for_each_parameter(f, prefix)` calls f(name, Parameter&) for every trainable tensor and
//   `for_each_buffer(f, prefix)` calls f(name, Tensor&) for state that is saved but not trained
//   (running statistics). Names are those of the equivalent PyTorch module's state_dict
//   ("weight", "bias", "running_mean", ...), joined with '.' under a container's prefix, so
//   weights exchanged through safetensors load in either direction.
// - A layer made of layers visits each child with visit_parameters(child, f, prefix) /
//   visit_buffers (not child.for_each_parameter), so a visitor that wants to know which layer a
//   tensor belongs to (the checkpoint loader, for its errors) is told: when f has members
//   enter(prefix, layer_type) and leave(), they bracket each layer's visit.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/tensor.hpp>

namespace asrkit {

/// A trainable tensor and its accumulated gradient (same shape).
template <class T>
struct Parameter {
  Tensor<T> value;
  Tensor<T> grad;

  Parameter() = default;
  explicit Parameter(const Shape& shape) : value(shape, T(0)), grad(shape, T(0)) {}
  void zero_grad() { grad.fill(T(0)); }
};

/// "prefix.name", or "name" when the prefix is empty.
inline std::string join_name(std::string_view prefix, std::string_view name) {
  std::string out(prefix);
  if (!out.empty()) out += '.';
  out += name;
  return out;
}

namespace detail {

struct NoopVisitor {
  template <class... A>
  void operator()(A&&...) const {}
};

template <class L, class = void>
struct has_for_each_parameter : std::false_type {};
template <class L>
struct has_for_each_parameter<L, std::void_t<decltype(std::declval<L&>().for_each_parameter(
                                     std::declval<NoopVisitor&>(), std::string_view{}))>>
    : std::true_type {};
template <class L, class = void>
struct has_for_each_buffer : std::false_type {};
template <class L>
struct has_for_each_buffer<L, std::void_t<decltype(std::declval<L&>().for_each_buffer(
                                  std::declval<NoopVisitor&>(), std::string_view{}))>>
    : std::true_type {};
template <class F, class = void>
struct has_layer_hooks : std::false_type {};
template <class F>
struct has_layer_hooks<
    F, std::void_t<decltype(std::declval<F&>().enter(std::string_view{}, std::string_view{})),
                   decltype(std::declval<F&>().leave())>> : std::true_type {};

/// The class name of L without namespaces or template arguments ("Linear" for
/// asrkit::Linear<float>), from the compiler's signature of this function.
template <class L>
std::string_view layer_type_name() {
#if defined(_MSC_VER) && !defined(__clang__)
  // "...layer_type_name<class asrkit::Linear<float> >(void)"
  std::string_view s = __FUNCSIG__, key = "layer_type_name<";
#else
  // "...[with L = asrkit::Linear<float>; ...]" (Clang: "[L = asrkit::Linear<float>]")
  std::string_view s = __PRETTY_FUNCTION__, key = "L = ";
#endif
  const auto at = s.find(key);
  if (at == std::string_view::npos) return "layer";
  s = s.substr(at + key.size());
  s = s.substr(0, s.find_first_of("<>;]"));
  // MSVC's "class ", then namespaces.
  if (const auto space = s.rfind(' '); space != std::string_view::npos) s.remove_prefix(space + 1);
  if (const auto colon = s.rfind("::"); colon != std::string_view::npos) s.remove_prefix(colon + 2);
  return s.empty() ? "layer" : s;
}

template <bool Buffers, class L, class F>
void visit_layer(L& layer, F& f, std::string_view prefix) {  // f: an lvalue, as layers pass it on
  constexpr bool has = Buffers ? has_for_each_buffer<L>::value : has_for_each_parameter<L>::value;
  if constexpr (has) {
    if constexpr (has_layer_hooks<F>::value) f.enter(prefix, layer_type_name<L>());
    if constexpr (Buffers)
      layer.for_each_buffer(f, prefix);
    else
      layer.for_each_parameter(f, prefix);
    if constexpr (has_layer_hooks<F>::value) f.leave();
  }
}

}  // namespace detail

/// layer.for_each_parameter(f, prefix), or nothing for a layer without parameters; tells a
/// visitor with enter/leave which layer it is in (see the contract above).
template <class L, class F>
void visit_parameters(L& layer, F&& f, std::string_view prefix = {}) {
  detail::visit_layer<false>(layer, f, prefix);
}

/// layer.for_each_buffer(f, prefix), or nothing for a layer without buffers.
template <class L, class F>
void visit_buffers(L& layer, F&& f, std::string_view prefix = {}) {
  detail::visit_layer<true>(layer, f, prefix);
}

/// Sets every parameter gradient of a layer (or container) to zero.
template <class Layer>
void zero_grad(Layer& layer) {
  layer.for_each_parameter([](const std::string&, auto& p) { p.zero_grad(); });
}

/// Adds every parameter gradient of `from` to the same parameter of `to`: `from` is a copy of
/// `to` that ran a second input through a shared layer (its own forward cache), e.g. the
/// after_norm of an InterCTC tap or a CTC head shared by several outputs.
template <class T, class Layer>
void add_grads(Layer& to, Layer& from) {
  std::vector<Tensor<T>*> dst;
  to.for_each_parameter([&](const std::string&, Parameter<T>& p) { dst.push_back(&p.grad); });
  std::size_t i = 0;
  from.for_each_parameter([&](const std::string&, Parameter<T>& p) { dst[i++]->flat() += p.grad.flat(); });
}

}  // namespace asrkit
