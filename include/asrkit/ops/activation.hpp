// asrkit/ops/activation.hpp - element-wise activations, their derivatives, fused bias + activation.
//
//   asrkit::ops::selu(x, y);                        // y = selu(x), any shape, x may alias y
//   asrkit::ops::selu_backward(y, dy, dx);           // dx = dy * selu'(x), from the output y
//   asrkit::ops::activation(ActivationKind::clipped_relu, x, y, 20.0f);
//   asrkit::ops::bias_activation(ActivationKind::relu, y, bias, BiasAxis::last);   // in place
//
// Which tensor each derivative reads (what a layer must cache for backward):
//   relu, clipped_relu, selu, tanh, sigmoid: the output y (so x need not be kept);
//   swish: the input x;   glu: the input x.
// Inputs are never deduced (pass a mutable tensor, a const view or a Tensor); the output fixes T.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/detail/vector_rows.hpp>

namespace asrkit {
namespace ops {

/// SELU constants (Klambauer et al. 2017, eq. 14): the (mean 0, variance 1) fixed point. The
/// canonical literals (SPECS 1.1), not the closed forms, which differ in the last ulp.
template <class T = double>
inline constexpr T selu_alpha_v = static_cast<T>(1.6732632423543772848170429916717L);
template <class T = double>
inline constexpr T selu_lambda_v = static_cast<T>(1.0507009873554804934193349852946L);
inline constexpr double selu_alpha = selu_alpha_v<double>;
inline constexpr double selu_lambda = selu_lambda_v<double>;

/// Deep Speech 2's clipped ReLU ceiling, g(x) = min(max(x, 0), 20) (Amodei et al. 2016, sec. 3.1).
inline constexpr double default_relu_clip = 20.0;

/// The element-wise activations (GLU changes the shape and has its own functions).
enum class ActivationKind { identity, relu, clipped_relu, selu, swish, tanh, sigmoid };

/// Whether the derivative of `kind` is computed from the input x (else from the output y).
constexpr bool backward_needs_input(ActivationKind kind) { return kind == ActivationKind::swish; }
/// Whether a layer given a moved or borrowed x should keep it rather than a copy of y: ReLU's
/// and clipped ReLU's conditions on y and on x agree, Swish reads x anyway, and SELU's backward
/// recomputes λα expm1(x) on the negative side in the pass that reads dy, which costs less than
/// writing the copy. Tanh and sigmoid would recompute f(x) in a second pass.
constexpr bool derivative_from_input_is_cheap(ActivationKind kind) {
  return kind == ActivationKind::identity || kind == ActivationKind::relu ||
         kind == ActivationKind::clipped_relu || kind == ActivationKind::swish ||
         kind == ActivationKind::selu;
}

/// Whether the derivative of `kind` only lets dy through or not (ReLU: y > 0; clipped ReLU:
/// 0 < y < clip): a training forward may keep one byte per element (activation_masking) instead
/// of y.
constexpr bool derivative_is_a_mask(ActivationKind kind) {
  return kind == ActivationKind::relu || kind == ActivationKind::clipped_relu;
}

inline const char* to_string(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::identity: return "identity";
    case ActivationKind::relu: return "relu";
    case ActivationKind::clipped_relu: return "clipped_relu";
    case ActivationKind::selu: return "selu";
    case ActivationKind::swish: return "swish";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::sigmoid: return "sigmoid";
  }
  return "?";
}

namespace detail {

template <class T>
using arg_t = typename std::common_type<T>::type;  // blocks template deduction

template <class T>
using ArrayMap = Eigen::Map<Eigen::Array<std::remove_const_t<T>, Eigen::Dynamic, 1>>;
template <class T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<std::remove_const_t<T>, Eigen::Dynamic, 1>>;

template <class T>
ConstArrayMap<T> arr(TensorView<const T> v) {
  return ConstArrayMap<T>(v.data(), v.numel());
}
template <class T>
ArrayMap<T> arr(TensorView<T> v) {
  return ArrayMap<T>(v.data(), v.numel());
}

inline void check_same(const char* op, const char* what, const Shape& got, const Shape& want) {
  if (got != want)
    throw ShapeError("activation.1", asrkit::detail::str(op, ": ", what, " must have the shape of "
                                                         "the input ", want.str(), ", got ",
                                                         got.str()));
}

// Elements per parallel chunk: big enough that a chunk outweighs the OpenMP fork.
inline constexpr index_t kChunk = 1 << 15;

// Runs f(begin, size) over [0, n) in fixed chunks (element-wise work, so any split is exact).
template <class F>
void chunked(index_t n, F&& f) {
  const index_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks <= 1) {
    if (n > 0) f(index_t(0), n);
    return;
  }
  parallel_for(chunks, [&](index_t c) {
    const index_t b = c * kChunk;
    f(b, std::min(kChunk, n - b));
  });
}

template <class T>
void check_clip(T clip) {
  if (!(clip > T(0)) || !std::isfinite(clip))
    throw ValueError("activation.2", asrkit::detail::str("clipped_relu: clip must be finite and > 0, "
                                                         "got ", clip));
}

/// 1/k! for k = 0..N, in T.
template <class T, int N>
struct InverseFactorials {
  T c[N + 1] = {};
  constexpr InverseFactorials() {
    double f = 1.0;
    for (int k = 0; k <= N; ++k) {
      if (k > 0) f /= k;
      c[k] = static_cast<T>(f);
    }
  }
};

/// expm1(t) on T (std::expm1) or on a RowVec<T> in one SIMD expression, for map_row (Eigen 3.4
/// has no fast one: its select and scalar expm1 took 39 ms for SELU on 4M floats, its packet
/// expm1 divides by a log): t = k·ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in two parts),
/// expm1(r) by its Taylor series to degree 7 (float) or 13 (double; remainders below half an
/// epsilon), and expm1(t) = 2^k·expm1(r) + (2^k − 1), exact near 0 where k = 0 (SELU's negative
/// side; SPECS 12.3). t is clamped to [−30, 88] (float) / [−40, 709] (double): below, expm1 is −1
/// to T's precision; the clamps keep 2^k normal and finite, so exp(t) = expm1(t) + 1 saturates
/// at T's largest powers instead of overflowing. Within 1.3 epsilon of expm1 over
/// [−100, −1e−12] (tested).
template <class T, class V>
V expm1_simd(V t) {
#if defined(ASRKIT_VECTOR_ROWS)
  if constexpr (!std::is_same_v<V, T>) {
    constexpr bool single = std::is_same_v<T, float>;
    constexpr int degree = single ? 7 : 13;
    constexpr InverseFactorials<T, degree> inv{};
    using I = std::conditional_t<single, std::int32_t, std::int64_t>;
    using IV = ops::detail::RowVec<I, sizeof(V)>;
    constexpr T floor_t = single ? T(-30) : T(-40), ceiling_t = single ? T(88) : T(709);
    constexpr T shifter = single ? T(0x1.8p23) : T(0x1.8p52);  // adding it rounds to an integer
    constexpr T ln2_hi = single ? T(0.693145751953125) : T(0.6931471803691238164902);
    constexpr T ln2_lo = single ? T(1.428606765330187e-06) : T(1.9082149292705877e-10);
    const V lo = V{} + floor_t, hi = V{} + ceiling_t;
    t = t < lo ? lo : t;
    t = t > hi ? hi : t;
    const V k = (t * T(1.4426950408889634) + shifter) - shifter;  // round(t / ln2)
    const V r = (t - k * ln2_hi) - k * ln2_lo;
    V p = V{} + inv.c[degree];
    for (int i = degree - 1; i >= 2; --i) p = p * r + inv.c[i];
    const V q = r + r * r * p;  // expm1(r) = r + r²/2 + ... + r^d/d!
    const IV bits = (__builtin_convertvector(k, IV) + (single ? 127 : 1023)) << (single ? 23 : 52);
    V scale;
    std::memcpy(&scale, &bits, sizeof scale);  // 2^k
    return scale * q + (scale - T(1));
  } else
#endif
  {
    return std::expm1(t);
  }
}
/// sigmoid(t) = 1 / (2 + expm1(−t)) on T or a RowVec<T> (Swish's derivative, GLU's backward).
template <class T, class V>
V sigmoid_simd(V t) {
  return T(1) / (T(2) + expm1_simd<T>(-t));
}

// Forward on a contiguous range: y = f(x). Both may alias.
template <class T>
void activation_range(ActivationKind kind, const T* x, T* y, index_t n, T clip) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const A> xa(x, n);
  Eigen::Map<A> ya(y, n);
  const T lambda = selu_lambda_v<T>, la = selu_lambda_v<T> * selu_alpha_v<T>;
  switch (kind) {
    case ActivationKind::identity:
      if (x != y) ya = xa;
      break;
    case ActivationKind::relu: ya = xa.max(T(0)); break;
    case ActivationKind::clipped_relu: ya = xa.max(T(0)).min(clip); break;
    case ActivationKind::selu:
    {
      ops::detail::map_row<ops::detail::kComputeVecBytes>(y, n, [lambda, la](auto xj) {
        const decltype(xj) zero{};
        return xj > zero ? xj * lambda : la * expm1_simd<T>(xj > zero ? zero : xj);  // NaN stays
      }, x);
      break;
    }
    case ActivationKind::swish: ya = xa / (T(1) + (-xa).exp()); break;
    case ActivationKind::tanh: ya = xa.tanh(); break;
    case ActivationKind::sigmoid: ya = T(1) / (T(1) + (-xa).exp()); break;
  }
}

// Backward on a contiguous range: dx = dy * f'(.), from x (swish) or y (the rest; without y it
// is recomputed from x, in cache). dx may alias dy.
template <class T>
void activation_backward_range(ActivationKind kind, const T* x, const T* y, const T* dy, T* dx,
                               index_t n, T clip) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<const A> ga(dy, n);
  Eigen::Map<A> da(dx, n);
  const T lambda = selu_lambda_v<T>, la = selu_lambda_v<T> * selu_alpha_v<T>;
  if (kind == ActivationKind::identity) {
    if (dx != dy) da = ga;
    return;
  }
  // selu'(x) = y + λα for x <= 0, y = λα expm1(x) recomputed in the same pass. From y as saved
  // it is round(round(λα e) + λα); here the compiler may fuse λα e + λα into one FMA, so the
  // two differ by at most about an ulp of λα times |dy| (tested).
  if (!y && kind == ActivationKind::selu) {
    ops::detail::map_row<ops::detail::kComputeVecBytes>(dx, n, [lambda, la](auto gj, auto xj) {
      const decltype(xj) zero{};
      return xj > zero ? gj * lambda : gj * (la * expm1_simd<T>(xj > zero ? zero : xj) + la);
    }, dy, x);
    return;
  }
  A recomputed;
  if (!y && derivative_is_a_mask(kind)) {
    y = x;  // y > 0 iff x > 0, and y < clip iff x < clip
  } else if (!y && kind != ActivationKind::swish) {
    recomputed.resize(n);
    activation_range(kind, x, recomputed.data(), n, clip);
    y = recomputed.data();
  }
  if (kind == ActivationKind::swish) {
    // swish' = s + x s (1 - s), s = sigmoid(x) = 1 / (2 + expm1(-x)), in one pass
    ops::detail::map_row<ops::detail::kComputeVecBytes>(dx, n, [](auto gj, auto xj) {
      const auto s = sigmoid_simd<T>(xj);
      return gj * (s * (T(1) + xj * (T(1) - s)));
    }, dy, x);
    return;
  }
  Eigen::Map<const A> ya(y, n);
  // The piecewise derivatives as map_row expressions: a vector `c ? a : b` is a SIMD blend, where
  // Eigen 3.4's select runs one scalar at a time.
  using ops::detail::map_row;
  constexpr auto zero = [](auto v) { return decltype(v){}; };
  switch (kind) {
    case ActivationKind::relu:
      map_row(dx, n, [zero](auto yj, auto gj) { return yj > zero(yj) ? gj : zero(gj); }, y, dy);
      break;
    case ActivationKind::clipped_relu:  // 0 at and beyond both kinks, like PyTorch's hardtanh
      map_row(dx, n, [zero, clip](auto yj, auto gj) {
        return ((yj > zero(yj)) & (yj < clip)) ? gj : zero(gj);
      }, y, dy);
      break;
    case ActivationKind::selu:  // selu' = lambda (x > 0), selu(x) + lambda alpha (x <= 0)
      map_row(dx, n, [zero, lambda, la](auto yj, auto gj) {
        return yj > zero(yj) ? gj * lambda : gj * (yj + la);
      }, y, dy);
      break;
    case ActivationKind::tanh: da = ga * (T(1) - ya.square()); break;
    case ActivationKind::sigmoid: da = ga * ya * (T(1) - ya); break;
    default: break;
  }
}

// mask = 1 where 0 < y < ceiling (y <= ceiling unless `exclusive`: relu's ceiling is +inf, and
// relu'(+inf) = 1 as activation_backward gives), 0 elsewhere, NaN included. Restrict-qualified:
// a byte store may alias a float, which would keep the compiler from vectorising the compare.
template <class T>
void mask_range(const T* ASRKIT_RESTRICT y, std::uint8_t* ASRKIT_RESTRICT mask, index_t n,
                T ceiling, bool exclusive) {
  if (exclusive) {
    for (index_t i = 0; i < n; ++i) mask[i] = (y[i] > T(0)) & (y[i] < ceiling);
  } else {
    for (index_t i = 0; i < n; ++i) mask[i] = (y[i] > T(0)) & (y[i] <= ceiling);
  }
}

// dx = mask ? dy : +0, as dy's bits AND a mask widened to all ones or zeros: no branch (a
// branch on random signs mispredicts half the time: 8x slower) and no multiply (inf · 0 = NaN).
// dx may alias dy.
template <class T>
void masked_range(const std::uint8_t* ASRKIT_RESTRICT mask, const T* dy, T* dx, index_t n) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(U) == sizeof(T), "masked_range: T must be float or double");
  for (index_t i = 0; i < n; ++i) {
    U bits;
    std::memcpy(&bits, dy + i, sizeof bits);
    bits &= U(0) - U(mask[i]);
    std::memcpy(dx + i, &bits, sizeof bits);
  }
}

}  // namespace detail

/// y = f(x) element-wise (any shape; y may be x itself). `clip` is clipped_relu's ceiling.
template <class Device = Cpu, class T>
void activation(ActivationKind kind, detail::arg_t<TensorView<const T, Device>> x,
                TensorView<T, Device> y, detail::arg_t<T> clip = T(default_relu_clip)) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::activation: only the Cpu device is implemented");
  detail::check_same(to_string(kind), "output", y.shape(), x.shape());
  if (kind == ActivationKind::clipped_relu) detail::check_clip(clip);
  const T* px = x.data();
  T* py = y.data();
  detail::chunked(x.numel(), [&](index_t b, index_t n) {
    detail::activation_range(kind, px + b, py + b, n, clip);
  });
}

/// activation(kind, x, y, clip) that also copies what activation_backward reads (x for swish, y
/// for the rest) to `saved`, chunk by chunk while the chunk is in cache: a layer's training
/// forward keeps it without a second pass over memory. y may be x itself; saved may not.
template <class Device = Cpu, class T>
void activation_saving(ActivationKind kind, detail::arg_t<TensorView<const T, Device>> x,
                       TensorView<T, Device> y, TensorView<T, Device> saved,
                       detail::arg_t<T> clip = T(default_relu_clip)) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::activation: only the Cpu device is implemented");
  detail::check_same(to_string(kind), "output", y.shape(), x.shape());
  detail::check_same(to_string(kind), "saved tensor", saved.shape(), x.shape());
  if (kind == ActivationKind::clipped_relu) detail::check_clip(clip);
  const T* px = x.data();
  T* py = y.data();
  T* ps = saved.data();
  const bool input = backward_needs_input(kind);
  const bool streaming = static_cast<std::size_t>(x.numel()) * sizeof(T) >= ops::detail::kStreamBytes;
  const auto save = [&](const T* from, index_t b, index_t n) {
    if (streaming) ops::detail::stream_copy(ps + b, from + b, n);
    else std::copy(from + b, from + b + n, ps + b);
  };
  detail::chunked(x.numel(), [&](index_t b, index_t n) {
    if (input) save(px, b, n);  // before y, which may overwrite x
    detail::activation_range(kind, px + b, py + b, n, clip);
    if (!input) save(py, b, n);
    if (streaming) ops::detail::stream_fence();
  });
}

/// activation(kind, x, y, clip) for a kind whose derivative_is_a_mask, also writing mask = 1
/// where the derivative is 1 (y > 0, and y < clip for clipped_relu) and 0 elsewhere (NaN
/// included), chunk by chunk while the chunk is in cache: what masked_backward reads, a quarter
/// of the bytes of a copy of y. y may be x itself.
template <class Device = Cpu, class T>
void activation_masking(ActivationKind kind, detail::arg_t<TensorView<const T, Device>> x,
                        TensorView<T, Device> y, TensorView<std::uint8_t, Device> mask,
                        detail::arg_t<T> clip = T(default_relu_clip)) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::activation: only the Cpu device is implemented");
  if (!derivative_is_a_mask(kind))
    throw ValueError("activation.7", asrkit::detail::str("activation_masking: kind must be relu "
                                                         "or clipped_relu, got ", to_string(kind)));
  detail::check_same(to_string(kind), "output", y.shape(), x.shape());
  detail::check_same(to_string(kind), "mask", mask.shape(), x.shape());
  if (kind == ActivationKind::clipped_relu) detail::check_clip(clip);
  const T* px = x.data();
  T* py = y.data();
  std::uint8_t* pm = mask.data();
  const bool clipped = kind == ActivationKind::clipped_relu;
  detail::chunked(x.numel(), [&](index_t b, index_t n) {
    detail::activation_range(kind, px + b, py + b, n, clip);
    detail::mask_range(py + b, pm + b, n, clipped ? T(clip) : std::numeric_limits<T>::infinity(),
                       clipped);
  });
}

/// dx = dy where mask is 1, 0 where it is 0 (the backward of activation_masking). dx may be dy.
template <class Device = Cpu, class T>
void masked_backward(detail::arg_t<TensorView<const std::uint8_t, Device>> mask,
                     detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::activation: only the Cpu device is implemented");
  detail::check_same("masked_backward", "input gradient", dx.shape(), dy.shape());
  detail::check_same("masked_backward", "mask", mask.shape(), dy.shape());
  const std::uint8_t* pm = mask.data();
  const T* pg = dy.data();
  T* pd = dx.data();
  detail::chunked(dy.numel(), [&](index_t b, index_t n) {
    detail::masked_range(pm + b, pg + b, pd + b, n);
  });
}

/// dx = dy * f'(x). `x` is read for swish and `y` = f(x) for every other kind (the unused one
/// may be an empty view); given x but not y, the other kinds recompute y from x. dx may be dy
/// itself.
template <class Device = Cpu, class T>
void activation_backward(ActivationKind kind, detail::arg_t<TensorView<const T, Device>> x,
                         detail::arg_t<TensorView<const T, Device>> y,
                         detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx,
                         detail::arg_t<T> clip = T(default_relu_clip)) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::activation: only the Cpu device is implemented");
  const char* op = to_string(kind);
  detail::check_same(op, "input gradient", dx.shape(), dy.shape());
  if (backward_needs_input(kind) || (kind != ActivationKind::identity && !y.data() && x.data()))
    detail::check_same(op, "saved input x", x.shape(), dy.shape());
  else if (kind != ActivationKind::identity)
    detail::check_same(op, "saved output y", y.shape(), dy.shape());
  if (kind == ActivationKind::clipped_relu) detail::check_clip(clip);
  const T* px = x.data();
  const T* py = y.data();
  const T* pg = dy.data();
  T* pd = dx.data();
  detail::chunked(dy.numel(), [&](index_t b, index_t n) {
    detail::activation_backward_range(kind, px ? px + b : px, py ? py + b : py, pg + b, pd + b, n,
                                      clip);
  });
}

// ---- named forms -------------------------------------------------------------------------------
template <class Device = Cpu, class T>
void relu(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  activation<Device, T>(ActivationKind::relu, x, y);
}
template <class Device = Cpu, class T>
void relu_backward(detail::arg_t<TensorView<const T, Device>> y,
                   detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  activation_backward<Device, T>(ActivationKind::relu, {}, y, dy, dx);
}
/// min(max(x, 0), clip), Deep Speech 2's g (clip 20 by default).
template <class Device = Cpu, class T>
void clipped_relu(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y,
                  detail::arg_t<T> clip = T(default_relu_clip)) {
  activation<Device, T>(ActivationKind::clipped_relu, x, y, clip);
}
template <class Device = Cpu, class T>
void clipped_relu_backward(detail::arg_t<TensorView<const T, Device>> y,
                           detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx,
                           detail::arg_t<T> clip = T(default_relu_clip)) {
  activation_backward<Device, T>(ActivationKind::clipped_relu, {}, y, dy, dx, clip);
}
/// lambda x (x > 0), lambda alpha (exp(x) - 1) (x <= 0) (Klambauer et al. 2017, eq. 2).
template <class Device = Cpu, class T>
void selu(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  activation<Device, T>(ActivationKind::selu, x, y);
}
template <class Device = Cpu, class T>
void selu_backward(detail::arg_t<TensorView<const T, Device>> y,
                   detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  activation_backward<Device, T>(ActivationKind::selu, {}, y, dy, dx);
}
/// x sigmoid(x) (Ramachandran et al. 2017; SiLU in PyTorch).
template <class Device = Cpu, class T>
void swish(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  activation<Device, T>(ActivationKind::swish, x, y);
}
template <class Device = Cpu, class T>
void swish_backward(detail::arg_t<TensorView<const T, Device>> x,
                    detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  activation_backward<Device, T>(ActivationKind::swish, x, {}, dy, dx);
}
template <class Device = Cpu, class T>
void tanh(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  activation<Device, T>(ActivationKind::tanh, x, y);
}
template <class Device = Cpu, class T>
void tanh_backward(detail::arg_t<TensorView<const T, Device>> y,
                   detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  activation_backward<Device, T>(ActivationKind::tanh, {}, y, dy, dx);
}
template <class Device = Cpu, class T>
void sigmoid(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y) {
  activation<Device, T>(ActivationKind::sigmoid, x, y);
}
template <class Device = Cpu, class T>
void sigmoid_backward(detail::arg_t<TensorView<const T, Device>> y,
                      detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  activation_backward<Device, T>(ActivationKind::sigmoid, {}, y, dy, dx);
}

// ---- GLU ---------------------------------------------------------------------------------------
/// Gated linear unit over the last axis (Dauphin et al. 2017; torch.nn.GLU(dim=-1)):
/// x [..., 2n] = [a, b] -> y [..., n] = a * sigmoid(b). With `saved` (a layer's training forward),
/// each row of x is also copied there after its output row is written, while it is in cache.
template <class Device = Cpu, class T>
void glu(detail::arg_t<TensorView<const T, Device>> x, TensorView<T, Device> y,
         TensorView<T, Device> saved = {}) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::glu: only the Cpu device is implemented");
  if (saved.data()) detail::check_same("glu", "saved tensor", saved.shape(), x.shape());
  if (x.rank() < 1 || x.dim(-1) % 2 != 0)
    throw ShapeError("activation.3", asrkit::detail::str("glu: input x must have an even last "
                                                         "dimension, got shape ", x.shape().str()));
  std::array<index_t, kMaxRank> d{};
  for (int i = 0; i < x.rank(); ++i) d[static_cast<std::size_t>(i)] = x.dim(i);
  d[static_cast<std::size_t>(x.rank() - 1)] /= 2;
  const Shape want(d.begin(), d.begin() + x.rank());
  if (y.shape() != want)
    throw ShapeError("activation.3", asrkit::detail::str("glu: output y must be ", want.str(),
                                                         " (x ", x.shape().str(), " with the last "
                                                         "dimension halved), got ",
                                                         y.shape().str()));
  const index_t n = want.dim(-1), rows = n == 0 ? 0 : want.numel() / n;
  parallel_for(rows, [&](index_t r) {
    // a · sigmoid(b) = a / (2 + expm1(−b)) in one SIMD expression (sigmoid_simd's, with the
    // division by the denominator in place of a reciprocal and a product)
    const T* xr = x.data() + r * 2 * n;
    detail::map_row<detail::kComputeVecBytes>(y.data() + r * n, n, [](auto aj, auto bj) {
      return aj / (T(2) + detail::expm1_simd<T>(-bj));
    }, xr, xr + n);
    if (saved.data()) std::copy(xr, xr + 2 * n, saved.data() + r * 2 * n);
  });
}

/// Backward of glu: dx [..., 2n] = [dy * sigmoid(b), dy * a * sigmoid(b) (1 - sigmoid(b))].
template <class Device = Cpu, class T>
void glu_backward(detail::arg_t<TensorView<const T, Device>> x,
                  detail::arg_t<TensorView<const T, Device>> dy, TensorView<T, Device> dx) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::glu: only the Cpu device is implemented");
  detail::check_same("glu", "input gradient", dx.shape(), x.shape());
  if (x.rank() < 1 || dy.rank() != x.rank() || x.dim(-1) != 2 * dy.dim(-1) ||
      x.numel() != 2 * dy.numel())
    throw ShapeError("activation.3", asrkit::detail::str("glu_backward: output gradient dy must be "
                                                         "the input shape ", x.shape().str(),
                                                         " with the last dimension halved, got ",
                                                         dy.shape().str()));
  const index_t n = dy.dim(-1), rows = n == 0 ? 0 : dy.numel() / n;
  // sigmoid(b) is recomputed in each half's SIMD expression (cheaper than a row buffer of it)
  const auto sigmoid = [](auto bj) { return detail::sigmoid_simd<T>(bj); };
  parallel_for(rows, [&](index_t r) {
    const T* xr = x.data() + r * 2 * n;  // [a, b]
    const T* gr = dy.data() + r * n;
    T* dr = dx.data() + r * 2 * n;
    detail::map_row<detail::kComputeVecBytes>(dr, n, [sigmoid](auto gj, auto bj) {
      return gj * sigmoid(bj);
    }, gr, xr + n);
    detail::map_row<detail::kComputeVecBytes>(dr + n, n, [sigmoid](auto gj, auto aj, auto bj) {
      const auto s = sigmoid(bj);
      return gj * aj * s * (T(1) - s);
    }, gr, xr, xr + n);
  });
}

// ---- fused bias + activation -------------------------------------------------------------------
/// Which axis a bias vector runs along: the last axis ([..., F] features, Linear) or axis 1 of
/// [B, C, ...] channel maps (Conv1d / Conv2d).
enum class BiasAxis { last, channel };

/// y = f(y + bias) in place, in one pass over y. A default view `{}` (no data) means no bias.
template <class Device = Cpu, class T>
void bias_activation(ActivationKind kind, TensorView<T, Device> y,
                     detail::arg_t<TensorView<const T, Device>> bias, BiasAxis axis,
                     detail::arg_t<T> clip = T(default_relu_clip)) {
  static_assert(std::is_same_v<Device, Cpu>, "ops::bias_activation: only the Cpu device is implemented");
  if (kind == ActivationKind::clipped_relu) detail::check_clip(clip);
  const int bias_axis = axis == BiasAxis::last ? y.rank() - 1 : 1;
  const bool has_bias = bias.data() != nullptr;  // a default (null) view means no bias
  if (has_bias && (y.rank() <= bias_axis || bias.rank() != 1 || bias.dim(0) != y.dim(bias_axis)))
    throw ShapeError("activation.4",
                     asrkit::detail::str("bias_activation: bias must be [", y.rank() > bias_axis ?
                                         y.dim(bias_axis) : -1, "] (axis ", bias_axis,
                                         " of the output ", y.shape().str(), "), got ",
                                         bias.shape().str()));
  if (y.numel() == 0) return;
  T* py = y.data();
  if (!has_bias) {
    detail::chunked(y.numel(), [&](index_t b, index_t n) {
      detail::activation_range(kind, py + b, py + b, n, clip);
    });
    return;
  }
  const T* pb = bias.data();
  const index_t c = bias.dim(0);
  if (axis == BiasAxis::last) {
    // [rows, C]: rows of C features, in blocks of about kChunk elements.
    const index_t nrows = y.numel() / c;
    const index_t per = std::max<index_t>(1, detail::kChunk / c);
    const Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>> b(pb, c);
    parallel_for((nrows + per - 1) / per, [&](index_t blk) {
      const index_t r0 = blk * per, r1 = std::min(nrows, r0 + per);
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(
          py + r0 * c, r1 - r0, c);
      m.rowwise() += b;
      detail::activation_range(kind, m.data(), m.data(), m.size(), clip);
    });
    return;
  }
  // [B, C, inner]: rows of `inner` elements sharing bias[r % C].
  const index_t inner = y.numel() / (y.dim(0) * c);
  const index_t nrows = y.dim(0) * c;
  auto row = [&](index_t r) {
    T* p = py + r * inner;
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(p, inner) += pb[r % c];
    detail::activation_range(kind, p, p, inner, clip);
  };
  if (inner >= detail::kChunk)
    for (index_t r = 0; r < nrows; ++r) row(r);
  else
    parallel_for(nrows, row);
}

}  // namespace ops
}  // namespace asrkit
