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
#pragma once

#include <string>
#include <string_view>
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
