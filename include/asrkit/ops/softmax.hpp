// asrkit/ops/softmax.hpp - softmax and log-softmax over the last axis, with backward.
//
//   asrkit::ops::log_softmax(logits, log_probs);           // [T, B, V] -> [T, B, V]
//   asrkit::ops::log_softmax_backward(log_probs, dy, dx);  // dx = dy - exp(y) * sum(dy)
//
// Each row is shifted by its maximum before exponentiating, so large logits do not overflow;
// rows of -inf stay well defined where at least one entry is finite. Rows are independent and
// processed in parallel (a row's sums run in a fixed order: results do not depend on threads).
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <type_traits>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace ops {
namespace detail {

template <class T>
using softmax_arg_t = typename std::common_type<T>::type;  // blocks template deduction

inline void check_softmax(const char* op, const char* what, const Shape& got, const Shape& want) {
  if (want.rank() < 1)
    throw ShapeError("softmax.1", asrkit::detail::str(op, ": input must have rank >= 1, got ",
                                                      want.str()));
  if (got != want)
    throw ShapeError("softmax.1", asrkit::detail::str(op, ": ", what, " must have shape ",
                                                      want.str(), ", got ", got.str()));
}

template <class T, bool Log>
void softmax_rows(TensorView<const T> x, TensorView<T> y) {
  if (x.numel() == 0) return;
  const auto xm = x.matrix();
  auto ym = y.matrix();
  parallel_for(xm.rows(), [&](index_t r) {
    const T mx = xm.row(r).maxCoeff();
    // All -inf (or an empty row) has no distribution; NaN propagates as NaN.
    const T shift = std::isinf(mx) ? T(0) : mx;
    if (Log) {
      const T lse = std::log((xm.row(r).array() - shift).exp().sum()) + shift;
      ym.row(r).array() = xm.row(r).array() - lse;
    } else {
      ym.row(r).array() = (xm.row(r).array() - shift).exp();
      ym.row(r) /= ym.row(r).sum();
    }
  });
}

}  // namespace detail

/// y = exp(x - max) / sum(exp(x - max)) along the last axis. y may be x itself.
template <class Device = Cpu, class T>
void softmax(detail::softmax_arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::softmax: only the Cpu device is implemented");
  detail::check_softmax("softmax", "output", y.shape(), x.shape());
  detail::softmax_rows<T, false>(x, y);
}

/// y = x - log(sum(exp(x))) along the last axis (max-shifted). y may be x itself.
template <class Device = Cpu, class T>
void log_softmax(detail::softmax_arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::log_softmax: only the Cpu device is implemented");
  detail::check_softmax("log_softmax", "output", y.shape(), x.shape());
  detail::softmax_rows<T, true>(x, y);
}

/// dx = y * (dy - sum(dy * y)) per row, from the softmax output y. dx may be dy itself.
template <class Device = Cpu, class T>
void softmax_backward(detail::softmax_arg_t<TensorView<const T, Device>> y,
                      detail::softmax_arg_t<TensorView<const T, Device>> dy,
                      TensorView<T, Device> dx) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::softmax: only the Cpu device is implemented");
  detail::check_softmax("softmax_backward", "output gradient dy", dy.shape(), y.shape());
  detail::check_softmax("softmax_backward", "input gradient dx", dx.shape(), y.shape());
  if (y.numel() == 0) return;
  const auto ym = y.matrix();
  const auto gm = dy.matrix();
  auto dm = dx.matrix();
  parallel_for(ym.rows(), [&](index_t r) {
    const T dot = (ym.row(r).array() * gm.row(r).array()).sum();
    dm.row(r).array() = ym.row(r).array() * (gm.row(r).array() - dot);
  });
}

/// dx = dy - exp(y) * sum(dy) per row, from the log-softmax output y. dx may be dy itself.
template <class Device = Cpu, class T>
void log_softmax_backward(detail::softmax_arg_t<TensorView<const T, Device>> y,
                          detail::softmax_arg_t<TensorView<const T, Device>> dy,
                          TensorView<T, Device> dx) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::log_softmax: only the Cpu device is implemented");
  detail::check_softmax("log_softmax_backward", "output gradient dy", dy.shape(), y.shape());
  detail::check_softmax("log_softmax_backward", "input gradient dx", dx.shape(), y.shape());
  if (y.numel() == 0) return;
  const auto ym = y.matrix();
  const auto gm = dy.matrix();
  auto dm = dx.matrix();
  parallel_for(ym.rows(), [&](index_t r) {
    const T total = gm.row(r).sum();
    dm.row(r).array() = gm.row(r).array() - ym.row(r).array().exp() * total;
  });
}

}  // namespace ops
}  // namespace asrkit
