// asrkit/nn/random_walk.hpp - random-walk smoothing of frame logits with learned affinities
// (Bertasius et al., CVPR 2017, "Convolutional Random Walk Networks", adapted to frames:
// SPECS §11.2-11.3).
//
//   asrkit::RandomWalkOptions o;  o.radius = 2;  o.steps = 1;
//   asrkit::RandomWalkSmoothing<float> rw(/*features=*/80, o);   // one weight per φ dimension
//   auto y = rw.forward_train(logits, phi, lengths);   // logits [T, B, V], φ [T, B, 80], lengths [B]
//   auto g = rw.backward(dy);                          // g.logits, g.phi; adds to weight_raw().grad
//
// Nodes are the frames of one item; frame t's neighbours are the valid frames j of the same item
// with 0 < |t − j| <= R (and j = t with include_self). With d_tj = |φ_t − φ_j| (per dimension):
//   W_tj = exp(−wᵀ d_tj),  w = softplus(weight_raw) >= 0          (SPECS §11.2; softplus [D])
//   A    = D⁻¹ W,  D_tt = Σ_j W_tj   (each row of A sums to 1)     (SPECS §11.1, V)
//   ŷ    = A^k · logits, k = steps (default 1)                       (SPECS §11.3 [D])
// A is kept as a band stencil [T, B, 2R + 1] (entry o is A_{t, t+o−R}), never a dense T x T
// matrix. A row is a softmax of −wᵀ d_tj over its neighbours, computed with the smallest
// distance subtracted, so affinities that underflow in exp never give 0/0. A frame without any
// neighbour (an item of length 1 without include_self) keeps its logits (A_tt = 1) [D].
// Padded frames (t >= lengths[b]) are never neighbours; their outputs and gradients are 0.
//
// Backward, for a loss L(ŷ) with y_0 = logits, y_{s+1} = A y_s:
//   dy_s = Aᵀ dy_{s+1},  dL/dA_tj = Σ_s <dy_{s+1}[t], y_s[j]>
//   dL/de_tj = −A_tj (dL/dA_tj − Σ_j' A_tj' dL/dA_tj')            (softmax of −e, e_tj = wᵀ d_tj)
//   dL/dw += Σ dL/de_tj · d_tj,  dL/dφ_t += dL/de_tj · w ⊙ sign(φ_t − φ_j),  dL/dφ_j −= the same
//   dL/dweight_raw = dL/dw ⊙ sigmoid(weight_raw)
// sign(0) = 0, as torch.abs's gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/parallel_work.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

struct RandomWalkOptions {
  index_t radius = 2;         ///< R: neighbours within ±R frames (SPECS §11.2 leaves R open) [D]
  index_t steps = 1;          ///< k: ŷ = A^k · logits (the paper trains with single steps)
  bool include_self = false;  ///< SPECS §11.2 sums over j ≠ t; true adds W_tt = exp(0) = 1
  /// w at construction (every entry); default 1 / features, so wᵀ|φ_t − φ_j| starts as the mean
  /// absolute difference of φ whatever its dimension [D].
  std::optional<double> initial_weight;
};

/// The gradients backward returns (both [T, B, ·], 0 on padded frames).
template <class T>
struct RandomWalkGradients {
  Tensor<T> logits;
  Tensor<T> phi;
};

/// The affinity loss and its φ gradient (see RandomWalkSmoothing::affinity_loss).
template <class T>
struct RandomWalkAffinityLoss {
  double loss = 0;
  Tensor<T> grad_phi;
};

namespace detail {
namespace randomwalk {

/// The band of one [T, B, ·] batch: per-item lengths, radius, stencil width 2R + 1.
struct Band {
  std::vector<index_t> lengths;
  index_t frames = 0, batch = 0, radius = 0;  // frames = T
  bool include_self = false;
  index_t width() const { return 2 * radius + 1; }
  index_t length(index_t b) const { return lengths[static_cast<std::size_t>(b)]; }
  /// Whether frame t + o − R is a neighbour of frame t (< length(b)) of item b.
  bool neighbour(index_t b, index_t t, index_t o) const {
    const index_t j = t + o - radius;
    return j >= 0 && j < length(b) && (o != radius || include_self);
  }
};

inline double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// e[t, b, o] = wᵀ |φ_t − φ_{t+o−R}| for neighbours, +inf elsewhere (W = exp(−e) = 0 there).
template <class T>
Tensor<T> band_distances(const Band& band, const T* phi, index_t features, const std::vector<T>& w) {
  const index_t k = band.width();
  Tensor<T> e(Shape{band.frames, band.batch, k}, std::numeric_limits<T>::infinity());
  parallel_for_work(band.batch, e.numel() * features, [&](index_t b) {
    for (index_t t = 0; t < band.length(b); ++t) {
      const T* pt = phi + (t * band.batch + b) * features;
      for (index_t o = 0; o < k; ++o) {
        if (!band.neighbour(b, t, o)) continue;
        const T* pj = pt + (o - band.radius) * band.batch * features;
        T s = 0;
        for (index_t p = 0; p < features; ++p) s += w[static_cast<std::size_t>(p)] * std::abs(pt[p] - pj[p]);
        e.data()[(t * band.batch + b) * k + o] = s;
      }
    }
  });
  return e;
}

/// A = row-wise softmax of −e over the neighbours (D⁻¹W with W = exp(−e)); a row without
/// neighbours gets A_tt = 1. Padded rows are all 0.
template <class T>
Tensor<T> transition(const Band& band, const Tensor<T>& e) {
  const index_t k = band.width();
  Tensor<T> a(e.shape());
  parallel_for_work(band.batch, e.numel(), [&](index_t b) {
    for (index_t t = 0; t < band.length(b); ++t) {
      const T* er = e.data() + (t * band.batch + b) * k;
      T* ar = a.data() + (t * band.batch + b) * k;
      const T least = *std::min_element(er, er + k);
      if (std::isinf(least)) {  // isolated frame
        ar[band.radius] = T(1);
        continue;
      }
      T sum = 0;
      for (index_t o = 0; o < k; ++o) sum += ar[o] = std::exp(least - er[o]);
      for (index_t o = 0; o < k; ++o) ar[o] /= sum;
    }
  });
  return a;
}

template <class T>
void axpy_row(T* ASRKIT_RESTRICT y, T a, const T* ASRKIT_RESTRICT x, index_t n) {
  for (index_t c = 0; c < n; ++c) y[c] += a * x[c];
}
template <class T>
T dot_row(const T* ASRKIT_RESTRICT x, const T* ASRKIT_RESTRICT y, index_t n) {
  T s = 0;
  for (index_t c = 0; c < n; ++c) s += x[c] * y[c];
  return s;
}

/// One walk step y_out = A y_in ([T, B, V]; rows of padded frames are left as they are).
/// With `transpose`, y_out = Aᵀ y_in, gathered per output row (A_{t, j} read from row t = j − o).
template <class T>
void walk(const Band& band, const Tensor<T>& a, const T* in, T* out, index_t cols, bool transpose) {
  const index_t k = band.width(), batch = band.batch;
  parallel_for_work(band.frames * batch, band.frames * batch * k * cols, [&](index_t row) {
    const index_t t = row / batch, b = row % batch;
    if (t >= band.length(b)) return;
    T* yr = out + row * cols;
    std::fill(yr, yr + cols, T(0));
    for (index_t o = 0; o < k; ++o) {
      const index_t shift = o - band.radius;
      // forward: A[t, o] · in[t + shift];  transpose: A[t − shift, o] · in[t − shift]
      const index_t src = transpose ? t - shift : t + shift;
      if (src < 0 || src >= band.length(b)) continue;
      const T coef = a.data()[((transpose ? src : t) * batch + b) * k + o];
      if (coef != T(0)) axpy_row(yr, coef, in + (src * batch + b) * cols, cols);
    }
  });
}

/// dA[t, b, o] += <g[t], y[t + o − R]> over the band.
template <class T>
void add_transition_grad(const Band& band, const T* g, const T* y, index_t cols, Tensor<T>& da) {
  const index_t k = band.width(), batch = band.batch;
  parallel_for_work(band.frames * batch, band.frames * batch * k * cols, [&](index_t row) {
    const index_t t = row / batch, b = row % batch;
    if (t >= band.length(b)) return;
    for (index_t o = 0; o < k; ++o) {
      const index_t j = t + o - band.radius;
      if (j < 0 || j >= band.length(b)) continue;
      da.data()[row * k + o] += dot_row(g + row * cols, y + (j * batch + b) * cols, cols);
    }
  });
}

/// dL/de from dL/dA through A = softmax(−e) per row: de = −A ⊙ (dA − <A, dA>). In place on da.
template <class T>
void softmax_backward(const Band& band, const Tensor<T>& a, Tensor<T>& da) {
  const index_t k = band.width();
  for (index_t r = 0; r < band.frames * band.batch; ++r) {
    const T* ar = a.data() + r * k;
    T* gr = da.data() + r * k;
    const T mean = dot_row(ar, gr, k);
    for (index_t o = 0; o < k; ++o) gr[o] = -ar[o] * (gr[o] - mean);
  }
}

/// Backward of e = wᵀ|φ_t − φ_j| for the finite entries of e: adds to dphi [T, B, P] and
/// (summed over items in order, thread-count independent) to dw [P].
template <class T>
void distance_backward(const Band& band, const Tensor<T>& e, const Tensor<T>& de, const T* phi,
                       index_t features, const std::vector<T>& w, T* dphi, std::vector<double>& dw) {
  const index_t k = band.width(), batch = band.batch;
  std::vector<double> per_item(static_cast<std::size_t>(batch * features), 0.0);
  parallel_for_work(batch, e.numel() * features, [&](index_t b) {
    double* dwb = per_item.data() + b * features;
    for (index_t t = 0; t < band.length(b); ++t)
      for (index_t o = 0; o < k; ++o) {
        const index_t r = (t * batch + b) * k + o, j = t + o - band.radius;
        if (std::isinf(e.data()[r]) || j == t || de.data()[r] == T(0)) continue;
        const T c = de.data()[r];
        const T* pt = phi + (t * batch + b) * features;
        const T* pj = phi + (j * batch + b) * features;
        T* gt = dphi + (t * batch + b) * features;
        T* gj = dphi + (j * batch + b) * features;
        for (index_t p = 0; p < features; ++p) {
          const T diff = pt[p] - pj[p];
          const T g = c * w[static_cast<std::size_t>(p)] * static_cast<T>((diff > 0) - (diff < 0));
          gt[p] += g;
          gj[p] -= g;
          dwb[p] += static_cast<double>(c) * std::abs(static_cast<double>(diff));
        }
      }
  });
  for (index_t b = 0; b < batch; ++b)
    for (index_t p = 0; p < features; ++p) dw[static_cast<std::size_t>(p)] += per_item[static_cast<std::size_t>(b * features + p)];
}

}  // namespace randomwalk
}  // namespace detail

/// Random-walk smoothing of per-frame logits (SPECS §11.3). Parameter: "weight_raw" [P]; the
/// affinity weights are w = softplus(weight_raw).
template <class T, class Device = Cpu>
class RandomWalkSmoothing {
  static_assert(std::is_floating_point_v<T>, "RandomWalkSmoothing<T>: T must be float or double");
  static_assert(std::is_same_v<Device, Cpu>, "RandomWalkSmoothing: only the Cpu device is implemented");
  using Band = detail::randomwalk::Band;

 public:
  /// `features` = P, the dimension of φ (and the number of parameters).
  explicit RandomWalkSmoothing(index_t features, RandomWalkOptions options = {})
      : features_(features), options_(options) {
    const double w0 = options.initial_weight.value_or(features > 0 ? 1.0 / static_cast<double>(features) : 1.0);
    if (features < 1 || options.radius < 1 || options.steps < 1 || !(w0 > 0) || !std::isfinite(w0))
      throw ValueError("randomwalk.1", detail::str("RandomWalkSmoothing: features, radius and steps "
                                                   "must be >= 1 and initial_weight finite and > 0, "
                                                   "got ", features, ", ", options.radius, ", ",
                                                   options.steps, " and ", w0));
    weight_raw_ = Parameter<T>(Shape{features});
    weight_raw_.value.fill(static_cast<T>(std::log(std::expm1(w0))));  // softplus⁻¹(w0)
  }

  /// Inference: logits [T, B, V], phi [T, B, P], lengths [B] -> ŷ [T, B, V], 0 on padded frames.
  Tensor<T> forward(TensorView<const T> logits, TensorView<const T> phi,
                    TensorView<const std::int32_t> lengths) const {
    const Band band = check(logits, phi, lengths);
    const Tensor<T> a = detail::randomwalk::transition(band, distances(band, phi.data()));
    Tensor<T> y(logits), next(logits.shape());
    for (index_t s = 0; s < options_.steps; ++s) {
      detail::randomwalk::walk(band, a, y.data(), next.data(), logits.dim(2), false);
      std::swap(y, next);
    }
    mask_padding(band, y);
    return y;
  }

  /// Training: as forward; caches φ, the band, A and every walk step's input for backward.
  Tensor<T> forward_train(TensorView<const T> logits, TensorView<const T> phi,
                          TensorView<const std::int32_t> lengths) {
    band_ = check(logits, phi, lengths);
    phi_ = Tensor<T>(phi);
    e_ = distances(band_, phi_.data());
    a_ = detail::randomwalk::transition(band_, e_);
    inputs_.assign(1, Tensor<T>(logits));
    for (index_t s = 0; s < options_.steps; ++s) {
      Tensor<T> next(logits.shape());
      detail::randomwalk::walk(band_, a_, inputs_.back().data(), next.data(), logits.dim(2), false);
      inputs_.push_back(std::move(next));
    }
    Tensor<T> y = std::move(inputs_.back());
    inputs_.pop_back();  // inputs_[s] = y_s, s < k
    mask_padding(band_, y);
    cached_ = true;
    return y;
  }

  /// dL/dlogits and dL/dφ for dy [T, B, V] (padded frames of dy are ignored); adds dL/dweight_raw
  /// to weight_raw().grad.
  RandomWalkGradients<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("randomwalk.5", "RandomWalkSmoothing::backward: no cached input; call "
                                       "forward_train first");
    if (dy.shape() != inputs_.front().shape())
      throw ShapeError("randomwalk.6", detail::str("RandomWalkSmoothing::backward: argument dy: "
                                                   "expected shape ", inputs_.front().shape().str(),
                                                   " (the forward output), got ", dy.shape().str()));
    const index_t cols = dy.dim(2);
    Tensor<T> g(dy), prev(dy.shape());  // padded rows of g are never read
    Tensor<T> da(a_.shape());
    for (index_t s = options_.steps - 1; s >= 0; --s) {
      detail::randomwalk::add_transition_grad(band_, g.data(), inputs_[static_cast<std::size_t>(s)].data(), cols, da);
      detail::randomwalk::walk(band_, a_, g.data(), prev.data(), cols, true);
      std::swap(g, prev);
    }
    mask_padding(band_, g);
    detail::randomwalk::softmax_backward(band_, a_, da);
    RandomWalkGradients<T> out{std::move(g), Tensor<T>(phi_.shape())};
    add_distance_grads(band_, e_, da, phi_.data(), out.phi.data());
    return out;
  }

  /// The affinity loss of SPECS §11.2, L = scale · Σ_t Σ_{j neighbour of t} (W_tj − [a_t == a_j])²
  /// over ordered pairs of valid frames (W_tj = exp(−wᵀ|φ_t − φ_j|), not normalised; a_t =
  /// alignments [T, B] int32, e.g. forced-alignment labels). Returns L and dL/dφ and adds
  /// dL/dweight_raw to weight_raw().grad. Independent of forward_train's cache.
  RandomWalkAffinityLoss<T> affinity_loss(TensorView<const T> phi, TensorView<const std::int32_t> alignments,
                                          TensorView<const std::int32_t> lengths, double scale = 1.0) {
    const Band band = check_phi(phi, lengths);
    if (alignments.rank() != 2 || alignments.dim(0) != band.frames || alignments.dim(1) != band.batch)
      throw ShapeError("randomwalk.7", detail::str("RandomWalkSmoothing::affinity_loss: argument "
                                                   "alignments: expected shape [", band.frames, ", ",
                                                   band.batch, "], got ", alignments.shape().str()));
    const Tensor<T> e = distances(band, phi.data());
    Tensor<T> de(e.shape());
    RandomWalkAffinityLoss<T> out{0.0, Tensor<T>(phi.shape())};
    const index_t k = band.width();
    for (index_t r = 0; r < e.numel(); ++r) {
      if (std::isinf(e.data()[r])) continue;
      const index_t row = r / k, o = r % k, b = row % band.batch, t = row / band.batch;
      const index_t j = t + o - band.radius;
      const T target = alignments.data()[t * band.batch + b] == alignments.data()[j * band.batch + b] ? T(1) : T(0);
      const T w = std::exp(-e.data()[r]), diff = w - target;
      out.loss += scale * static_cast<double>(diff) * static_cast<double>(diff);
      de.data()[r] = static_cast<T>(scale) * T(2) * diff * -w;  // dL/dW · dW/de
    }
    add_distance_grads(band, e, de, phi.data(), out.grad_phi.data());
    return out;
  }

  /// The transition stencil A [T, B, 2R + 1] for φ (entry o of row t is A_{t, t+o−R}): each valid
  /// row sums to 1, padded rows are 0.
  Tensor<T> transition(TensorView<const T> phi, TensorView<const std::int32_t> lengths) const {
    const Band band = check_phi(phi, lengths);
    return detail::randomwalk::transition(band, distances(band, phi.data()));
  }

  /// The affinity weights w = softplus(weight_raw) [P].
  Tensor<T> weight() const {
    Tensor<T> w(Shape{features_});
    const auto v = affinity_weights();
    std::copy(v.begin(), v.end(), w.data());
    return w;
  }

  void clear_cache() {
    phi_ = e_ = a_ = Tensor<T>();
    inputs_.clear();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "weight_raw"), weight_raw_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t features() const noexcept { return features_; }
  const RandomWalkOptions& options() const noexcept { return options_; }
  Parameter<T>& weight_raw() noexcept { return weight_raw_; }  ///< [P]
  const Parameter<T>& weight_raw() const noexcept { return weight_raw_; }

 private:
  std::vector<T> affinity_weights() const {
    std::vector<T> w(static_cast<std::size_t>(features_));
    for (index_t p = 0; p < features_; ++p)
      w[static_cast<std::size_t>(p)] = static_cast<T>(detail::randomwalk::softplus(weight_raw_.value.data()[p]));
    return w;
  }

  Tensor<T> distances(const Band& band, const T* phi) const {
    return detail::randomwalk::band_distances(band, phi, features_, affinity_weights());
  }

  // dL/dφ (into dphi) and dL/dweight_raw (into the grad) for dL/de.
  void add_distance_grads(const Band& band, const Tensor<T>& e, const Tensor<T>& de, const T* phi, T* dphi) {
    std::vector<double> dw(static_cast<std::size_t>(features_), 0.0);
    detail::randomwalk::distance_backward(band, e, de, phi, features_, affinity_weights(), dphi, dw);
    for (index_t p = 0; p < features_; ++p)
      weight_raw_.grad.data()[p] += static_cast<T>(
          dw[static_cast<std::size_t>(p)] * detail::randomwalk::sigmoid(weight_raw_.value.data()[p]));
  }

  static void mask_padding(const Band& band, Tensor<T>& y) {
    const index_t cols = y.dim(2);
    for (index_t b = 0; b < band.batch; ++b)
      for (index_t t = band.length(b); t < band.frames; ++t)
        std::fill_n(y.data() + (t * band.batch + b) * cols, cols, T(0));
  }

  Band check_phi(TensorView<const T> phi, TensorView<const std::int32_t> lengths) const {
    if (phi.rank() != 3 || phi.dim(2) != features_)
      throw ShapeError("randomwalk.2", detail::str("RandomWalkSmoothing: argument phi: expected shape "
                                                   "[T, B, ", features_, "], got ", phi.shape().str()));
    Band band;
    band.frames = phi.dim(0);
    band.batch = phi.dim(1);
    band.radius = options_.radius;
    band.include_self = options_.include_self;
    const auto len = detail::checked_lengths(lengths, band.frames, band.batch, "RandomWalkSmoothing",
                                             {"randomwalk.3", "randomwalk.4"});
    band.lengths.assign(len.begin(), len.end());
    return band;
  }

  Band check(TensorView<const T> logits, TensorView<const T> phi, TensorView<const std::int32_t> lengths) const {
    Band band = check_phi(phi, lengths);
    if (logits.rank() != 3 || logits.dim(0) != band.frames || logits.dim(1) != band.batch)
      throw ShapeError("randomwalk.2", detail::str("RandomWalkSmoothing: argument logits: expected "
                                                   "shape [", band.frames, ", ", band.batch,
                                                   ", V] (T and B of phi), got ", logits.shape().str()));
    return band;
  }

  index_t features_;
  RandomWalkOptions options_;
  Parameter<T> weight_raw_;
  // forward_train cache: the band, φ, distances e, transition A, walk inputs y_0 .. y_{k−1}
  Band band_;
  Tensor<T> phi_, e_, a_;
  std::vector<Tensor<T>> inputs_;
  bool cached_ = false;
};

}  // namespace asrkit
