// asrkit/ops/reduce.hpp - sums and means over axes (bias gradients, statistics).
//
//   asrkit::ops::column_sums(dy, bias_grad, true);      // [..., F] -> [F], accumulate (Linear)
//   asrkit::ops::channel_sums(dy, bias_grad, true);     // [B, C, ...] -> [C] (Conv1d / Conv2d)
//   asrkit::ops::sum(x, {0, 2}, y);                     // [A, B, C] -> [B]
//   asrkit::ops::mean(x, {1}, y);                       // [A, B, C] -> [A, C]
//
// Every sum runs in a fixed order (row-major over the reduced axes), split across threads only
// along kept elements, so results do not depend on the thread count.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <limits>
#include <type_traits>
#include <vector>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace ops {
namespace detail {

template <class T>
using reduce_arg_t = typename std::common_type<T>::type;  // blocks template deduction

}  // namespace detail

/// y[f] (+)= sum over every leading index of x[..., f]: x viewed as [rows, F], y is [F].
/// `accumulate` adds to y instead of overwriting it (parameter gradients accumulate).
template <class Device = Cpu, class T>
void column_sums(detail::reduce_arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y,
                 bool accumulate = false) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::column_sums: only the Cpu device is implemented");
  if (x.rank() < 1 || y.rank() != 1 || y.dim(0) != x.dim(-1))
    throw ShapeError("reduce.1", asrkit::detail::str("column_sums: output must be [",
                                                     x.rank() < 1 ? -1 : x.dim(-1),
                                                     "] (the last axis of x ", x.shape().str(),
                                                     "), got ", y.shape().str()));
  const index_t f = y.dim(0);
  if (f == 0) return;
  const index_t rows = x.numel() / f;
  const T* px = x.data();
  T* py = y.data();
  // Column blocks in parallel; inside a block the rows are added in order.
  constexpr index_t block = 256;
  parallel_for((f + block - 1) / block, [&](index_t blk) {
    const index_t c0 = blk * block, n = std::min(block, f - c0);
    Eigen::Array<T, Eigen::Dynamic, 1> acc = Eigen::Array<T, Eigen::Dynamic, 1>::Zero(n);
    for (index_t r = 0; r < rows; ++r)
      acc += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(px + r * f + c0, n);
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> out(py + c0, n);
    if (accumulate)
      out += acc;
    else
      out = acc;
  });
}

/// y[c] (+)= sum over b and every trailing index of x[b, c, ...]: x is [B, C, ...] (rank >= 2).
template <class Device = Cpu, class T>
void channel_sums(detail::reduce_arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y,
                  bool accumulate = false) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::channel_sums: only the Cpu device is implemented");
  if (x.rank() < 2 || y.rank() != 1 || y.dim(0) != x.dim(1))
    throw ShapeError("reduce.1", asrkit::detail::str("channel_sums: output must be [",
                                                     x.rank() < 2 ? -1 : x.dim(1),
                                                     "] (axis 1 of x ", x.shape().str(), "), got ",
                                                     y.shape().str()));
  const index_t b = x.dim(0), c = x.dim(1);
  if (c == 0) return;
  const index_t inner = b == 0 ? 0 : x.numel() / (b * c);
  const T* px = x.data();
  T* py = y.data();
  parallel_for(c, [&](index_t ch) {
    T acc = T(0);
    for (index_t i = 0; i < b; ++i)
      acc += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(px + (i * c + ch) * inner, inner)
                 .sum();
    py[ch] = accumulate ? py[ch] + acc : acc;
  });
}

/// y (+)= the sum of x over `axes` (each in [-rank, rank), no repeats); y's shape is x's without
/// those axes (rank 0 when all are reduced). Runs in row-major order of x.
template <class Device = Cpu, class T>
void sum(detail::reduce_arg_t<TensorView<const T, Device>> x, std::initializer_list<int> axes,
         TensorView<T, Device> y, bool accumulate = false) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::sum: only the Cpu device is implemented");
  std::array<bool, kMaxRank> reduced{};
  for (int a : axes) {
    const int ax = a < 0 ? a + x.rank() : a;
    if (ax < 0 || ax >= x.rank() || reduced[static_cast<std::size_t>(ax)])
      throw ValueError("reduce.2", asrkit::detail::str("sum: axis ", a, " is out of range or "
                                                       "repeated for x of shape ",
                                                       x.shape().str()));
    reduced[static_cast<std::size_t>(ax)] = true;
  }
  std::vector<index_t> kept;
  for (int i = 0; i < x.rank(); ++i)
    if (!reduced[static_cast<std::size_t>(i)]) kept.push_back(x.dim(i));
  const Shape want(kept.begin(), kept.end());
  if (y.shape() != want)
    throw ShapeError("reduce.1", asrkit::detail::str("sum: output must have shape ", want.str(),
                                                     " (x ", x.shape().str(), " without the "
                                                     "reduced axes), got ", y.shape().str()));
  if (!accumulate) std::fill(y.data(), y.data() + y.numel(), T(0));
  if (x.numel() == 0) return;
  // Output strides for each x axis (0 along reduced axes).
  std::array<index_t, kMaxRank> ostride{};
  index_t s = 1;
  for (int i = x.rank() - 1; i >= 0; --i) {
    if (!reduced[static_cast<std::size_t>(i)]) {
      ostride[static_cast<std::size_t>(i)] = s;
      s *= x.dim(i);
    }
  }
  std::array<index_t, kMaxRank> idx{};
  const T* px = x.data();
  T* py = y.data();
  index_t off = 0;
  const int last = x.rank() - 1;
  for (index_t e = 0, n = x.numel(); e < n; ++e) {
    py[off] += px[e];
    // Advance the row-major index and the output offset.
    for (int i = last; i >= 0; --i) {
      const auto u = static_cast<std::size_t>(i);
      off += ostride[u];
      if (++idx[u] < x.dim(i)) break;
      off -= ostride[u] * idx[u];
      idx[u] = 0;
    }
  }
}

/// y (+)= the mean of x over `axes` (see sum); an empty reduction gives NaN.
template <class Device = Cpu, class T>
void mean(detail::reduce_arg_t<TensorView<const T, Device>> x, std::initializer_list<int> axes,
          TensorView<T, Device> y, bool accumulate = false) {
  Tensor<T> tmp(y.shape());
  sum<Device, T>(x, axes, tmp.view());
  const index_t count = y.numel() == 0 ? 0 : x.numel() / y.numel();
  const T scale = count == 0 ? std::numeric_limits<T>::quiet_NaN() : T(1) / static_cast<T>(count);
  for (index_t i = 0; i < y.numel(); ++i)
    y.data()[i] = (accumulate ? y.data()[i] : T(0)) + tmp.data()[i] * scale;
}

}  // namespace ops
}  // namespace asrkit
