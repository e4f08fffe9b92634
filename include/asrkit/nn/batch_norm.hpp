// asrkit/nn/batch_norm.hpp - batch normalisation: feature-wise, sequence-wise (DS2) and
// recurrent (per time step, Cooijmans et al.).
//
//   asrkit::BatchNorm<float> bn(512);                  // x: [N, 512] or [..., 512]
//   auto y  = bn.forward_train(x);                     // batch statistics, running stats updated
//                                                      // (caches a copy of x; std::move(x) or
//                                                      // asrkit::borrow(x) avoid it: input_cache.hpp)
//   auto dx = bn.backward(dy);                         // through the batch statistics
//   auto yi = bn.forward(x);                           // inference: running statistics
//
//   asrkit::SequenceBatchNorm<float> sbn(512);         // x: [T, B, 512] + lengths [B]
//   auto ys = sbn.forward_train(x, lengths);           // statistics over valid frames only
//
//   asrkit::RecurrentBatchNorm<float> rbn(512, 100);   // per-step statistics for t < 100
//   auto h = rbn.forward_step_train(x_t, t, lengths);  // from inside an LSTM cell, t = 0, 1, ...
//   auto dh = rbn.backward_step(dy_t, t);              // in reverse order, t = T-1, ..., 0
//
// All three compute BN(x) = γ ⊙ (x − E[x]) / sqrt(Var[x] + ε) + β per feature (the last axis),
// Ioffe & Szegedy 2015, eq. in Alg. 1; DS2 sec. 3.2 (SPECS §3.3); Cooijmans et al. 2017 eq. 5-6
// (SPECS §4.1). Normalisation uses the biased batch variance; the running variance is updated
// with the unbiased one, as in PyTorch: running = (1 − m)·running + m·batch, m = 0.1.
//
// Layer contract (nn/parameter.hpp). State-dict names follow torch.nn.BatchNorm1d: "weight",
// "bias" (parameters), "running_mean", "running_var" (Tensor<T>) and "num_batches_tracked"
// (rank-0 Tensor<std::int64_t>); for_each_buffer callbacks must therefore accept both tensor
// types (a generic lambda does). RecurrentBatchNorm stores its per-step statistics as one
// [max_steps, F] tensor per name (docs/norms.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/norm_kernels.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

/// Options shared by BatchNorm and SequenceBatchNorm (PyTorch's defaults).
struct BatchNormOptions {
  double eps = 1e-5;
  /// Weight of the new batch in the running averages; std::nullopt is a cumulative average
  /// (PyTorch's momentum=None): m = 1 / num_batches_tracked. TF's DS2 decay 0.997 is m = 0.003.
  std::optional<double> momentum = 0.1;
  bool affine = true;  ///< learn γ ("weight") and β ("bias"); otherwise γ = 1, β = 0
};

namespace detail {
namespace norm {

inline void check_bn_options(double eps, std::optional<double> momentum, index_t features,
                             const char* layer) {
  if (features < 1)
    throw ValueError("batchnorm.7", detail::str(layer, ": num_features must be >= 1, got ", features));
  if (!(eps > 0) || !std::isfinite(eps))
    throw ValueError("batchnorm.7", detail::str(layer, ": eps must be finite and > 0, got ", eps));
  if (momentum && !(*momentum >= 0 && *momentum <= 1))
    throw ValueError("batchnorm.7", detail::str(layer, ": momentum must be in [0, 1], got ", *momentum));
}

inline void check_features(const Shape& s, index_t features, const char* layer, const char* what) {
  if (s.rank() < 1 || s[s.rank() - 1] != features)
    throw ShapeError("batchnorm.1", detail::str(layer, ": ", what, " must have shape [..., ",
                                                features, "] (features last), got ", s.str()));
}

/// The error ids of every BatchNorm's lengths argument.
constexpr LengthsErrorIds kLengthsErrors{"batchnorm.5", "batchnorm.6"};

/// Statistics of one training batch: biased variance for normalising, count for the unbiased
/// running update, and the mean and 1/sqrt(var + eps) the forward applied (in T), which backward
/// needs with the cached input.
template <class T>
struct BatchStats {
  std::vector<double> mean, var;  // var: biased
  std::vector<T> centre, invstd;
  index_t count = 0;
};

/// A mean more than this many standard deviations from 0 makes apply_affine and backward centre
/// x first.
inline constexpr double kCentreAboveSpreads = 8;
template <class T>
bool must_centre(const T* mean, const T* invstd, index_t cols) {
  for (index_t j = 0; j < cols; ++j)
    if (std::fabs(static_cast<double>(mean[j]) * static_cast<double>(invstd[j])) > kCentreAboveSpreads)
      return true;
  return false;
}

/// y = (x − mean) · scale + shift on valid rows, 0 elsewhere; with `copy`, x is also copied there
/// (every row; streaming stores from kStreamBytes). The one pass of every BatchNorm forward:
/// training (scale = γ·invstd, shift = β) and inference (running statistics). Uncentred, as
/// y = x · scale + (shift − mean · scale) with the offset rounded once from double, unless some
/// |mean| exceeds kCentreAboveSpreads / invstd: the offset's rounding grows with |mean|·invstd
/// against the output's scale (a few ulps below the bound: 4e-7 at 7σ, 4e-4 uncentred at 1e4σ,
/// tested). The uncentred form reads one operand and subtracts once less per element (training
/// forward of [4000, 1024] floats, one thread: 1.76 → 1.61 ms; docs/norms.md). Rows are split
/// into contiguous chunks per thread (splitting the features instead was 2.6x slower on two
/// threads).
template <class T>
void apply_affine(const T* x, index_t rows, index_t cols, const unsigned char* valid, const T* mean,
                  const T* invstd, const T* scale, const T* shift, T* y, T* copy = nullptr) {
  const bool streaming = copy && static_cast<std::size_t>(rows * cols) * sizeof(T) >= kStreamBytes;
  std::vector<T> offset;  // empty: centred
  const bool centre = must_centre(mean, invstd, cols);
  if (!centre) {
    offset.resize(static_cast<std::size_t>(cols));
    for (index_t j = 0; j < cols; ++j)
      offset[j] = static_cast<T>(static_cast<double>(shift[j]) -
                                 static_cast<double>(mean[j]) * static_cast<double>(scale[j]));
  }
  for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      const T* xr = x + r * cols;
      T* yr = y + r * cols;
      T* cr = copy ? copy + r * cols : nullptr;
      if (valid && !valid[r]) {
        std::fill(yr, yr + cols, T(0));
        if (cr) std::copy(xr, xr + cols, cr);
      } else if (centre) {
        map_row_keeping(yr, cr, streaming, xr, cols, centred_affine, unchanged, mean, scale, shift);
      } else {
        map_row_keeping(yr, cr, streaming, xr, cols, affine, unchanged, scale, offset.data());
      }
    }
    if (streaming) stream_fence();
  });
}

/// Training forward with batch statistics over the valid rows: y = γ (x − mean) invstd + β;
/// invalid rows give y = 0. With `copy` the input is cached there for backward (null when the
/// layer already owns x).
template <class T>
BatchStats<T> train_forward(const T* x, index_t rows, index_t cols, const unsigned char* valid,
                            const T* gamma, const T* beta, double eps, T* y, T* copy) {
  BatchStats<T> s;
  const auto n = static_cast<std::size_t>(cols);
  s.mean.resize(n);
  s.var.resize(n);
  s.centre.resize(n);
  s.invstd.resize(n);
  s.count = column_moments(x, rows, cols, valid, s.mean.data(), s.var.data());
  std::vector<T> coef(2 * n);  // γ·invstd and β as the rows use them
  T* scale = coef.data();
  T* shift = scale + cols;
  for (index_t j = 0; j < cols; ++j) {
    s.var[j] /= static_cast<double>(std::max<index_t>(s.count, 1));
    const double is = 1.0 / std::sqrt(s.var[j] + eps);
    s.invstd[j] = static_cast<T>(is);
    s.centre[j] = static_cast<T>(s.mean[j]);
    scale[j] = static_cast<T>(gamma ? static_cast<double>(gamma[j]) * is : is);
    shift[j] = beta ? beta[j] : T(0);
  }
  apply_affine(x, rows, cols, valid, s.centre.data(), s.invstd.data(), scale, shift, y, copy);
  return s;
}

/// Backward of BN over the valid rows, from the cached input x and the centre (mean) and invstd
/// the forward applied, xhat = (x − centre)·invstd. With batch statistics (Ioffe & Szegedy,
/// Alg. 1 backward): dx = γ·invstd·(dy − mean(dy) − xhat·mean(dy·xhat)); with fixed statistics:
/// dx = γ·invstd·dy. Adds Σdy·xhat to dgamma and Σdy to dbeta (when given); invalid rows get
/// dx = 0. Uncentred (dx = dy·k + x·g + h, coefficients rounded once from double) unless
/// must_centre, like apply_affine; rows are split like apply_affine.
template <class T>
void backward(const T* dy, const T* x, index_t rows, index_t cols, const unsigned char* valid,
              const std::vector<T>& centre, const std::vector<T>& invstd, index_t count,
              bool batch_stats, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> sdy(static_cast<std::size_t>(cols)), sdyh(static_cast<std::size_t>(cols));
  column_grad_sums(dy, x, centre.data(), rows, cols, valid, sdy.data(), sdyh.data());
  const double inv_n = batch_stats && count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  const bool centred = must_centre(centre.data(), invstd.data(), cols);
  // centred: dx = k (dy − c − (x − centre) e); uncentred: dx = dy k + x g + h
  std::vector<T> coef(static_cast<std::size_t>(3 * cols));
  T* k = coef.data();
  T* c_or_g = k + cols;
  T* e_or_h = c_or_g + cols;
  for (index_t j = 0; j < cols; ++j) {
    const double is = static_cast<double>(invstd[j]);
    const double sum_dy_xhat = sdyh[j] * is;
    const double kj = (gamma ? static_cast<double>(gamma[j]) : 1.0) * is;
    const double cj = sdy[j] * inv_n, ej = sum_dy_xhat * inv_n * is;
    k[j] = static_cast<T>(kj);
    c_or_g[j] = static_cast<T>(centred ? cj : -kj * ej);
    e_or_h[j] = static_cast<T>(centred ? ej : kj * (static_cast<double>(centre[j]) * ej - cj));
    if (dgamma) dgamma[j] += static_cast<T>(sum_dy_xhat);
    if (dbeta) dbeta[j] += static_cast<T>(sdy[j]);
  }
  for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r) {
      T* dr = dx + r * cols;
      const T* dyr = dy + r * cols;
      const T* xr = x + r * cols;
      if (valid && !valid[r])
        std::fill(dr, dr + cols, T(0));
      else if (centred)
        map_row(dr, cols, centred_bn_backward, dyr, xr, centre.data(), k, c_or_g, e_or_h);
      else
        map_row(dr, cols, bn_backward_uncentred, dyr, xr, k, c_or_g, e_or_h);
    }
  });
}

/// running = (1 - m) running + m batch, with the unbiased variance n/(n-1) var (PyTorch).
template <class T>
void update_running(T* run_mean, T* run_var, const BatchStats<T>& s, index_t cols, double m,
                    bool unbiased = true) {
  const double n = static_cast<double>(s.count);
  const double correction = unbiased && s.count > 1 ? n / (n - 1) : 1.0;
  for (index_t j = 0; j < cols; ++j) {
    run_mean[j] = static_cast<T>((1 - m) * static_cast<double>(run_mean[j]) + m * s.mean[j]);
    run_var[j] = static_cast<T>((1 - m) * static_cast<double>(run_var[j]) + m * s.var[j] * correction);
  }
}

}  // namespace norm
}  // namespace detail

/// Batch normalisation over the last axis (torch.nn.BatchNorm1d on [N, F]; leading axes are
/// flattened into N). Training normalises with the batch statistics and backpropagates through
/// them; inference uses the running statistics.
template <class T>
class BatchNorm {
  static_assert(std::is_floating_point_v<T>, "BatchNorm<T>: T must be float or double");

 public:
  explicit BatchNorm(index_t num_features, BatchNormOptions options = {})
      : options_(options), features_(num_features) {
    detail::norm::check_bn_options(options.eps, options.momentum, num_features, "BatchNorm");
    if (options_.affine) {
      weight_ = Parameter<T>(Shape{num_features});
      weight_.value.fill(T(1));
      bias_ = Parameter<T>(Shape{num_features});
    }
    running_mean_ = Tensor<T>(Shape{num_features}, T(0));
    running_var_ = Tensor<T>(Shape{num_features}, T(1));
    num_batches_tracked_ = Tensor<std::int64_t>(Shape{}, 0);
  }

  /// Inference: y = γ (x − running_mean) / sqrt(running_var + ε) + β. x: [..., F].
  Tensor<T> forward(TensorView<const T> x) const {
    detail::norm::check_features(x.shape(), features_, "BatchNorm", "input");
    Tensor<T> y(x.shape(), uninitialized);  // infer writes every element
    infer(x, nullptr, y);
    return y;
  }

  /// Training: batch statistics over all rows, running statistics updated, x cached for
  /// backward. A view (or tensor lvalue) is copied, by the pass that writes y; a moved tensor is
  /// kept itself (`bn.forward_train(conv.forward_train(x))`: one write of x fewer per call); a
  /// borrowed one (`asrkit::borrow(x)`) is kept as a view and must outlive backward unchanged.
  Tensor<T> forward_train(TrainInput<T> x) {
    detail::norm::check_features(x.shape(), features_, "BatchNorm", "input");
    valid_.clear();
    return train(std::move(x));
  }

  /// dL/dx through the batch statistics of the last forward_train; adds dL/dγ, dL/dβ to grads.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("batchnorm.3", "BatchNorm::backward: call forward_train first");
    if (dy.shape() != x_.shape())
      throw ShapeError("batchnorm.4", detail::str("BatchNorm::backward: dy must have the shape of the "
                                                  "forward input ", x_.shape().str(), ", got ",
                                                  dy.shape().str()));
    Tensor<T> dx(dy.shape(), uninitialized);  // backward writes every element
    detail::norm::backward(dy.data(), x_.view().data(), rows(x_.shape()), features_, mask(), stats_.centre,
                           stats_.invstd, stats_.count, true, gamma(), dx.data(),
                           options_.affine ? weight_.grad.data() : nullptr,
                           options_.affine ? bias_.grad.data() : nullptr);
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    if (!options_.affine) return;
    f(join_name(prefix, "weight"), weight_);
    f(join_name(prefix, "bias"), bias_);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "running_mean"), running_mean_);
    f(join_name(prefix, "running_var"), running_var_);
    f(join_name(prefix, "num_batches_tracked"), num_batches_tracked_);
  }

  index_t num_features() const noexcept { return features_; }
  const BatchNormOptions& options() const noexcept { return options_; }
  Parameter<T>& weight() noexcept { return weight_; }  ///< [F]; empty unless affine
  Parameter<T>& bias() noexcept { return bias_; }      ///< [F]; empty unless affine
  Tensor<T>& running_mean() noexcept { return running_mean_; }
  Tensor<T>& running_var() noexcept { return running_var_; }
  Tensor<std::int64_t>& num_batches_tracked() noexcept { return num_batches_tracked_; }
  const Parameter<T>& weight() const noexcept { return weight_; }
  const Parameter<T>& bias() const noexcept { return bias_; }
  const Tensor<T>& running_mean() const noexcept { return running_mean_; }
  const Tensor<T>& running_var() const noexcept { return running_var_; }

 protected:
  static index_t rows(const Shape& s) { return s.numel() / s[s.rank() - 1]; }
  const T* gamma() const { return options_.affine ? weight_.value.data() : nullptr; }
  const T* beta() const { return options_.affine ? bias_.value.data() : nullptr; }
  const unsigned char* mask() const { return valid_.empty() ? nullptr : valid_.data(); }

  /// Inference with the running statistics: scale = γ / sqrt(running_var + ε), shift = β.
  void infer(TensorView<const T> x, const unsigned char* valid, Tensor<T>& y) const {
    const auto n = static_cast<std::size_t>(features_);
    std::vector<T> invstd(n), scale(n), shift(n);
    for (index_t j = 0; j < features_; ++j) {
      const double is = 1.0 / std::sqrt(static_cast<double>(running_var_(j)) + options_.eps);
      invstd[j] = static_cast<T>(is);
      scale[j] = static_cast<T>((gamma() ? static_cast<double>(gamma()[j]) : 1.0) * is);
      shift[j] = beta() ? beta()[j] : T(0);
    }
    detail::norm::apply_affine(x.data(), rows(x.shape()), features_, valid, running_mean_.data(),
                               invstd.data(), scale.data(), shift.data(), y.data());
  }

  /// Training forward over the rows flagged in valid_ (all when empty); x goes into the cache x_
  /// (a copy is written by the same pass that writes y).
  Tensor<T> train(TrainInput<T> x) {
    check_count(x.shape());
    const TensorView<const T> in = x.view();
    T* copy = x_.keep_uncopied(std::move(x));
    return train_cached(in.data(), copy);
  }
  void check_count(const Shape& shape) const {
    const index_t n = rows(shape);
    const index_t count =
        valid_.empty() ? n : static_cast<index_t>(std::count(valid_.begin(), valid_.end(), 1));
    if (count < 2)
      throw ValueError("batchnorm.2", detail::str("BatchNorm: training needs more than 1 value per "
                                                  "feature, got ", count, " (valid) row(s) of shape ",
                                                  shape.str()));
  }
  /// train_forward writes every element of y (and of copy, when given).
  Tensor<T> train_cached(const T* x, T* copy) {
    Tensor<T> y(x_.shape(), uninitialized);
    cached_ = false;
    stats_ = detail::norm::train_forward(x, rows(x_.shape()), features_, mask(), gamma(), beta(),
                                         options_.eps, y.data(), copy);
    num_batches_tracked_() += 1;
    const double m = options_.momentum ? *options_.momentum
                                       : 1.0 / static_cast<double>(num_batches_tracked_());
    detail::norm::update_running(running_mean_.data(), running_var_.data(), stats_, features_, m);
    cached_ = true;
    return y;
  }

  BatchNormOptions options_;
  index_t features_;
  Parameter<T> weight_, bias_;
  Tensor<T> running_mean_, running_var_;
  Tensor<std::int64_t> num_batches_tracked_;
  // forward_train cache: the input and the statistics applied to it
  InputCache<T> x_;
  detail::norm::BatchStats<T> stats_;
  std::vector<unsigned char> valid_;
  bool cached_ = false;
};

/// Sequence-wise batch normalisation (DS2, Amodei et al. 2016 sec. 3.2; SPECS §3.3): x is a
/// time-major [T, B, F] batch with per-item `lengths`; statistics are taken per feature over
/// every valid frame of every item (t < lengths[b]). Padded frames never enter the statistics,
/// their outputs and input gradients are 0, so padding never changes a result. Without lengths
/// every frame is valid (then it equals BatchNorm over T·B rows).
template <class T>
class SequenceBatchNorm : public BatchNorm<T> {
  using Base = BatchNorm<T>;

 public:
  using Base::Base;
  using Base::forward;
  using Base::forward_train;

  /// Inference with running statistics; padded frames give 0.
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    const auto valid = check(x, lengths);
    Tensor<T> y(x.shape(), uninitialized);
    this->infer(x, valid.data(), y);
    return y;
  }

  /// Training over the valid frames; backward(dy) then gives 0 on padded frames. x is cached as
  /// by BatchNorm::forward_train (copied, moved or borrowed).
  Tensor<T> forward_train(TrainInput<T> x, TensorView<const std::int32_t> lengths) {
    this->valid_ = check(x.view(), lengths);
    return this->train(std::move(x));
  }

 private:
  std::vector<unsigned char> check(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    detail::norm::check_features(x.shape(), this->features_, "SequenceBatchNorm", "input");
    if (x.rank() != 3)
      throw ShapeError("batchnorm.1", detail::str("SequenceBatchNorm: input must have shape [T, B, ",
                                                  this->features_, "], got ", x.shape().str()));
    const auto len = detail::checked_lengths(lengths, x.dim(0), x.dim(1), "SequenceBatchNorm",
                                             detail::norm::kLengthsErrors);
    return detail::norm::sequence_mask(x.dim(0), x.dim(1), len.data());
  }
};

/// Options of RecurrentBatchNorm (SPECS §4.2-4.3 and §12.1).
struct RecurrentBatchNormOptions {
  double eps = 1e-5;      ///< authors' code default
  double momentum = 0.1;  ///< PyTorch port; the authors' Theano code uses 0.01 (MNIST) / 0.05 (PTB)
  double gamma_init = 0.1;  ///< Cooijmans et al. sec. 4: γ = 0.1 (γ = 1 hurts, γ <= 0.01 unstable)
  bool affine = true;
  /// Running variance from the unbiased batch variance (PyTorch port); false: biased, as the
  /// authors' code averages x.var(axis=0).
  bool unbiased_running_var = true;
};

/// Recurrent batch normalisation (Cooijmans et al. 2017, eq. 5-6 and sec. 3; SPECS §4): γ and β
/// are shared over time, statistics are per time step. Training normalises step t with the
/// statistics of the batch at step t (over the items still active, t < lengths[b]; SPECS §4.4);
/// inference uses population statistics of step t for t < max_steps (T_max) and those of step
/// T_max − 1 (the last one, 0-based) beyond it (SPECS §4.2). When fewer than 2 items are active
/// at a training step, that step uses its population statistics (no update, no gradient through
/// statistics; SPECS §4.4 [D]). Training at t >= max_steps is refused: T_max must be at least
/// the longest training sequence.
///
/// Buffers: "running_mean", "running_var" [max_steps, F] (row t holds step t's population
/// statistics) and "num_batches_tracked" [max_steps] (int64: training batches seen per step).
template <class T>
class RecurrentBatchNorm {
  static_assert(std::is_floating_point_v<T>, "RecurrentBatchNorm<T>: T must be float or double");

 public:
  RecurrentBatchNorm(index_t num_features, index_t max_steps, RecurrentBatchNormOptions options = {})
      : options_(options), features_(num_features), max_steps_(max_steps) {
    detail::norm::check_bn_options(options.eps, options.momentum, num_features, "RecurrentBatchNorm");
    if (max_steps < 1)
      throw ValueError("batchnorm.7", detail::str("RecurrentBatchNorm: max_steps must be >= 1, got ",
                                                  max_steps));
    if (options_.affine) {
      weight_ = Parameter<T>(Shape{num_features});
      weight_.value.fill(static_cast<T>(options_.gamma_init));
      bias_ = Parameter<T>(Shape{num_features});
    }
    running_mean_ = Tensor<T>(Shape{max_steps, num_features}, T(0));
    running_var_ = Tensor<T>(Shape{max_steps, num_features}, T(1));
    num_batches_tracked_ = Tensor<std::int64_t>(Shape{max_steps}, 0);
  }

  // ---- one step (from inside a recurrent cell) ------------------------------------------------

  /// Inference at step t (0-based): x_t [B, F]; population statistics of min(t, max_steps − 1).
  /// Items with t >= lengths[b] (when lengths are given) get 0.
  Tensor<T> forward_step(TensorView<const T> x_t, index_t t,
                         TensorView<const std::int32_t> lengths = {}) const {
    Tensor<T> y(x_t.shape(), uninitialized);  // forward_step writes every element
    forward_step(x_t, t, lengths, y.view());
    return y;
  }
  /// As above, into y [B, F] (a recurrent cell's per-step buffer: no allocation per step).
  void forward_step(TensorView<const T> x_t, index_t t, TensorView<const std::int32_t> lengths,
                    TensorView<T> y) const {
    const auto valid = check_step(x_t, t, lengths, false);
    check_out(y, x_t.shape(), "y");
    const auto p = population(std::min(t, max_steps_ - 1));
    detail::norm::apply_affine(x_t.data(), x_t.dim(0), features_, mask(valid), p.mean.data(),
                               p.invstd.data(), p.scale.data(), p.shift.data(), y.data());
  }

  /// Training at step t < max_steps: batch statistics of the active items at t, running
  /// statistics of step t updated; caches what backward_step(dy_t, t) needs.
  Tensor<T> forward_step_train(TensorView<const T> x_t, index_t t,
                               TensorView<const std::int32_t> lengths = {}) {
    Tensor<T> y(x_t.shape(), uninitialized);  // forward_step_train writes every element
    forward_step_train(x_t, t, lengths, y.view());
    return y;
  }
  /// As above, into y [B, F].
  void forward_step_train(TensorView<const T> x_t, index_t t, TensorView<const std::int32_t> lengths,
                          TensorView<T> y) {
    auto valid = check_step(x_t, t, lengths, true);
    check_out(y, x_t.shape(), "y");
    if (cache_.size() <= static_cast<std::size_t>(t)) cache_.resize(static_cast<std::size_t>(t) + 1);
    Step& c = cache_[static_cast<std::size_t>(t)];
    c.valid = std::move(valid);
    const index_t batch = x_t.dim(0);
    const index_t active = c.valid.empty()
                               ? batch
                               : static_cast<index_t>(std::count(c.valid.begin(), c.valid.end(), 1));
    if (c.x.shape() != x_t.shape()) c.x = Tensor<T>(x_t.shape(), uninitialized);
    if (active >= 2) {
      c.stats = detail::norm::train_forward(x_t.data(), batch, features_, mask(c.valid), gamma(),
                                            beta(), options_.eps, y.data(), c.x.data());
      c.batch_stats = true;
      num_batches_tracked_(t) += 1;
      detail::norm::update_running(running_mean_[t].data(), running_var_[t].data(), c.stats,
                                   features_, options_.momentum, options_.unbiased_running_var);
    } else {  // SPECS §4.4 [D]: too few items for statistics, use the population's
      const auto p = population(t);
      c.stats = detail::norm::BatchStats<T>{};
      c.stats.centre = p.mean;
      c.stats.invstd = p.invstd;
      c.stats.count = active;
      c.batch_stats = false;
      detail::norm::apply_affine(x_t.data(), batch, features_, mask(c.valid), p.mean.data(),
                                 p.invstd.data(), p.scale.data(), p.shift.data(), y.data(),
                                 c.x.data());
    }
    c.cached = true;
  }

  /// dL/dx_t for the forward_step_train at step t; adds to dL/dγ, dL/dβ.
  Tensor<T> backward_step(TensorView<const T> dy_t, index_t t) {
    Tensor<T> dx(dy_t.shape(), uninitialized);  // backward_step writes every element
    backward_step(dy_t, t, dx.view());
    return dx;
  }
  /// As above, into dx [B, F].
  void backward_step(TensorView<const T> dy_t, index_t t, TensorView<T> dx) {
    if (t < 0 || static_cast<std::size_t>(t) >= cache_.size() || !cache_[static_cast<std::size_t>(t)].cached)
      throw ValueError("batchnorm.3", detail::str("RecurrentBatchNorm::backward_step: no "
                                                  "forward_step_train at step ", t));
    Step& c = cache_[static_cast<std::size_t>(t)];
    if (dy_t.shape() != c.x.shape())
      throw ShapeError("batchnorm.4", detail::str("RecurrentBatchNorm::backward_step: dy must have "
                                                  "shape ", c.x.shape().str(), ", got ",
                                                  dy_t.shape().str()));
    check_out(dx, dy_t.shape(), "dx");
    detail::norm::backward(dy_t.data(), c.x.data(), dy_t.dim(0), features_, mask(c.valid),
                           c.stats.centre, c.stats.invstd, c.stats.count, c.batch_stats, gamma(), dx.data(),
                           options_.affine ? weight_.grad.data() : nullptr,
                           options_.affine ? bias_.grad.data() : nullptr);
  }

  // ---- a whole time-major sequence [T, B, F] --------------------------------------------------

  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    check_sequence(x, lengths);
    Tensor<T> y(x.shape(), uninitialized);  // every step writes its rows
    for (index_t t = 0; t < x.dim(0); ++t) forward_step(x[t], t, lengths, y[t]);
    return y;
  }

  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    check_sequence(x, lengths);
    Tensor<T> y(x.shape(), uninitialized);  // every step writes its rows
    for (index_t t = 0; t < x.dim(0); ++t) forward_step_train(x[t], t, lengths, y[t]);
    steps_ = x.dim(0);
    return y;
  }

  Tensor<T> backward(TensorView<const T> dy) {
    if (dy.rank() != 3 || dy.dim(0) != steps_)
      throw ShapeError("batchnorm.4", detail::str("RecurrentBatchNorm::backward: dy must have shape "
                                                  "[", steps_, ", B, ", features_, "], got ",
                                                  dy.shape().str()));
    Tensor<T> dx(dy.shape(), uninitialized);  // every step writes its rows
    for (index_t t = steps_ - 1; t >= 0; --t) backward_step(dy[t], t, dx[t]);
    return dx;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    if (!options_.affine) return;
    f(join_name(prefix, "weight"), weight_);
    f(join_name(prefix, "bias"), bias_);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "running_mean"), running_mean_);
    f(join_name(prefix, "running_var"), running_var_);
    f(join_name(prefix, "num_batches_tracked"), num_batches_tracked_);
  }

  index_t num_features() const noexcept { return features_; }
  index_t max_steps() const noexcept { return max_steps_; }
  Parameter<T>& weight() noexcept { return weight_; }
  Parameter<T>& bias() noexcept { return bias_; }
  Tensor<T>& running_mean() noexcept { return running_mean_; }  ///< [max_steps, F]
  Tensor<T>& running_var() noexcept { return running_var_; }    ///< [max_steps, F]
  Tensor<std::int64_t>& num_batches_tracked() noexcept { return num_batches_tracked_; }

 private:
  struct Step {
    Tensor<T> x;  // the input at this step
    detail::norm::BatchStats<T> stats;
    std::vector<unsigned char> valid;
    bool batch_stats = false, cached = false;
  };
  struct Population {
    std::vector<T> mean, invstd, scale, shift;
  };

  const T* gamma() const { return options_.affine ? weight_.value.data() : nullptr; }
  const T* beta() const { return options_.affine ? bias_.value.data() : nullptr; }
  static const unsigned char* mask(const std::vector<unsigned char>& v) {
    return v.empty() ? nullptr : v.data();
  }

  Population population(index_t t) const {
    Population p;
    const auto n = static_cast<std::size_t>(features_);
    p.mean.resize(n);
    p.invstd.resize(n);
    p.scale.resize(n);
    p.shift.resize(n);
    for (index_t j = 0; j < features_; ++j) {
      const double is = 1.0 / std::sqrt(static_cast<double>(running_var_(t, j)) + options_.eps);
      const double g = gamma() ? static_cast<double>(gamma()[j]) : 1.0;
      p.mean[j] = running_mean_(t, j);
      p.invstd[j] = static_cast<T>(is);
      p.scale[j] = static_cast<T>(g * is);
      p.shift[j] = beta() ? beta()[j] : T(0);
    }
    return p;
  }

  std::vector<unsigned char> check_step(TensorView<const T> x_t, index_t t,
                                        TensorView<const std::int32_t> lengths, bool training) const {
    if (x_t.rank() != 2 || x_t.dim(1) != features_)
      throw ShapeError("batchnorm.1", detail::str("RecurrentBatchNorm: x_t must have shape [B, ",
                                                  features_, "], got ", x_t.shape().str()));
    if (t < 0 || (training && t >= max_steps_))
      throw ValueError("batchnorm.8",
                       detail::str("RecurrentBatchNorm: training step t = ", t, " is outside [0, ",
                                   max_steps_, "); construct with max_steps >= the longest training "
                                   "sequence (inference beyond it uses step ", max_steps_ - 1, ")"));
    std::vector<unsigned char> valid;
    if (lengths.data() == nullptr) return valid;
    if (lengths.rank() != 1 || lengths.dim(0) != x_t.dim(0))
      throw ShapeError("batchnorm.5", detail::str("RecurrentBatchNorm: lengths must have shape [",
                                                  x_t.dim(0), "], got ", lengths.shape().str()));
    valid.resize(static_cast<std::size_t>(x_t.dim(0)));
    for (index_t b = 0; b < x_t.dim(0); ++b) {
      if (lengths.data()[b] < 0)
        throw ValueError("batchnorm.6", detail::str("RecurrentBatchNorm: lengths[", b, "] = ",
                                                    lengths.data()[b], " is negative"));
      valid[static_cast<std::size_t>(b)] = t < lengths.data()[b] ? 1 : 0;
    }
    return valid;
  }

  static void check_out(TensorView<T> out, const Shape& want, const char* what) {
    if (out.shape() != want)
      throw ShapeError("batchnorm.4", detail::str("RecurrentBatchNorm: output ", what, " must have shape ",
                                                  want.str(), ", got ", out.shape().str()));
  }

  void check_sequence(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    if (x.rank() != 3 || x.dim(2) != features_)
      throw ShapeError("batchnorm.1", detail::str("RecurrentBatchNorm: input must have shape [T, B, ",
                                                  features_, "], got ", x.shape().str()));
    if (lengths.data() != nullptr)
      detail::checked_lengths(lengths, x.dim(0), x.dim(1), "RecurrentBatchNorm", detail::norm::kLengthsErrors);
  }

  RecurrentBatchNormOptions options_;
  index_t features_, max_steps_;
  Parameter<T> weight_, bias_;
  Tensor<T> running_mean_, running_var_;
  Tensor<std::int64_t> num_batches_tracked_;
  std::vector<Step> cache_;
  index_t steps_ = 0;
};

}  // namespace asrkit
