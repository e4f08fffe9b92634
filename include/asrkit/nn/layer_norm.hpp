// asrkit/nn/layer_norm.hpp - layer normalisation over the last axis (Ba, Kiros & Hinton 2016).
//
//   asrkit::LayerNorm<float> ln(256);          // x: [..., 256]
//   auto y  = ln.forward_train(x);             // keeps xhat (x copied and standardised), or
//                                              // x itself when moved or borrowed (input_cache.hpp),
//                                              // and each row's mean and 1/sigma
//   auto dx = ln.backward(dy);                 // adds dL/dγ, dL/dβ to ln.weight().grad, bias()
//
// Each row (frame) is normalised with its own statistics, so training and inference compute the
// same function (no running statistics) and padded frames never affect valid ones:
//   y = γ ⊙ (x − mean(x)) / sqrt(var(x) + ε) + β,   var biased (torch.nn.LayerNorm).
// Names: "weight", "bias" (absent with elementwise_affine = false), as torch.nn.LayerNorm.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/detail/norm_kernels.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;
};

template <class T>
class LayerNorm {
  static_assert(std::is_floating_point_v<T>, "LayerNorm<T>: T must be float or double");

 public:
  explicit LayerNorm(index_t normalized_size, LayerNormOptions options = {})
      : options_(options), features_(normalized_size) {
    if (normalized_size < 1)
      throw ValueError("layernorm.1", detail::str("LayerNorm: normalized_size must be >= 1, got ",
                                                  normalized_size));
    if (!(options.eps > 0) || !std::isfinite(options.eps))
      throw ValueError("layernorm.1", detail::str("LayerNorm: eps must be finite and > 0, got ",
                                                  options.eps));
    if (options_.elementwise_affine) {
      weight_ = Parameter<T>(Shape{normalized_size});
      weight_.value.fill(T(1));
      bias_ = Parameter<T>(Shape{normalized_size});
    }
  }

  Tensor<T> forward(TensorView<const T> x) const {
    check(x.shape(), "input");
    Tensor<T> y(x.shape(), uninitialized);  // run writes every element
    run(x, y.data(), nullptr, nullptr, nullptr);
    return y;
  }

  /// Training: as forward, and what backward reads kept with each row's mean and 1/σ. A view
  /// (or tensor lvalue) must be copied: the pass that writes y writes xhat = (x − mean) / σ in its
  /// place (the same bytes, and backward need not recompute it: 1.3-1.5 against 1.5-1.9 ms on
  /// [4000, 1024] floats, docs/norms.md). A moved tensor is kept itself and a borrowed one
  /// (`asrkit::borrow(x)`) as a view that must outlive backward unchanged (input_cache.hpp);
  /// backward then recomputes xhat from x, as PyTorch does, and nothing is written.
  Tensor<T> forward_train(TrainInput<T> x) {
    check(x.shape(), "input");
    cached_ = false;
    const TensorView<const T> in = x.view();
    T* xhat = x_.keep_uncopied(std::move(x));
    standardized_ = xhat != nullptr;
    Tensor<T> y(in.shape(), uninitialized);  // run writes every element of y, xhat, mean, rstd
    const auto rows = static_cast<std::size_t>(in.numel() / features_);
    mean_.resize(rows);
    rstd_.resize(rows);
    run(in, y.data(), xhat, mean_.data(), rstd_.data());
    cached_ = true;
    return y;
  }

  /// dx = rstd ⊙ (g − mean(g) − xhat ⊙ mean(g ⊙ xhat)) with g = γ ⊙ dy, per row.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("layernorm.2", "LayerNorm::backward: call forward_train first");
    if (dy.shape() != x_.shape())
      throw ShapeError("layernorm.3", detail::str("LayerNorm::backward: dy must have the shape of the "
                                                  "forward input ", x_.shape().str(), ", got ",
                                                  dy.shape().str()));
    const index_t rows = dy.numel() / features_, cols = features_;
    const bool affine = options_.elementwise_affine;
    const T* gamma = affine ? weight_.value.data() : nullptr;
    const T* h = x_.view().data();  // xhat, or x (then xhat = (x − mean) / σ per row)
    // Per row, one pass sums g, g·xhat and the columns' dβ, dγ (in T, moved into the chunk's
    // double sums every kGradFlushRows rows); a second, over the row still in cache, writes dx.
    // Chunk sums are added in chunk order.
    const index_t step = detail::norm::chunk_rows(cols);
    const index_t chunks = (rows + step - 1) / step;
    std::vector<double> partial(affine ? static_cast<std::size_t>(2 * chunks * cols) : 0, 0.0);
    Tensor<T> dx(dy.shape(), uninitialized);  // every row is written
    const auto backward_rows = [&](auto from_x, index_t r0, index_t r1) {
      constexpr bool kFromX = decltype(from_x)::value;
      std::vector<T> col_sums(affine ? static_cast<std::size_t>(2 * cols) : 0, T(0));  // Σ dy, Σ dy·xhat
      T* s = affine ? col_sums.data() : nullptr;
      double* part = affine ? partial.data() + 2 * (r0 / step) * cols : nullptr;
      for (index_t r = r0; r < r1; ++r) {
        const index_t off = r * cols;
        const T mu = mean_[static_cast<std::size_t>(r)], rs = rstd_[static_cast<std::size_t>(r)];
        double sums[2] = {0.0, 0.0};
        detail::norm::ln_grad_sums_row<kFromX>(dy.data() + off, h + off, mu, rs, gamma, cols, sums, s,
                                               affine ? s + cols : nullptr);
        const T ma = static_cast<T>(sums[0] / static_cast<double>(cols));
        const T mb = static_cast<T>(sums[1] / static_cast<double>(cols));
        detail::norm::ln_backward_row<kFromX>(dx.data() + off, dy.data() + off, h + off, gamma, mu, rs, ma,
                                              mb, cols);
        if (affine && ((r - r0 + 1) % detail::norm::kGradFlushRows == 0 || r + 1 == r1)) {
          for (index_t j = 0; j < 2 * cols; ++j) part[j] += static_cast<double>(s[j]);
          std::fill(col_sums.begin(), col_sums.end(), T(0));
        }
      }
    };
    detail::norm::for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
      if (standardized_) backward_rows(std::false_type{}, r0, r1);
      else backward_rows(std::true_type{}, r0, r1);
    });
    if (affine) {
      std::vector<double> sdy(static_cast<std::size_t>(cols), 0.0), sdyh(static_cast<std::size_t>(cols), 0.0);
      for (index_t c = 0; c < chunks; ++c)
        for (index_t j = 0; j < cols; ++j) {
          sdy[j] += partial[static_cast<std::size_t>(2 * c * cols + j)];
          sdyh[j] += partial[static_cast<std::size_t>((2 * c + 1) * cols + j)];
        }
      for (index_t j = 0; j < cols; ++j) {
        weight_.grad(j) += static_cast<T>(sdyh[j]);
        bias_.grad(j) += static_cast<T>(sdy[j]);
      }
    }
    return dx;
  }

  /// Drops what forward_train kept (frees its memory; a copy of the layer then copies only
  /// its parameters).
  void clear_cache() {
    x_.clear();
    mean_.clear();
    rstd_.clear();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    if (!options_.elementwise_affine) return;
    f(join_name(prefix, "weight"), weight_);
    f(join_name(prefix, "bias"), bias_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  index_t normalized_size() const noexcept { return features_; }
  Parameter<T>& weight() noexcept { return weight_; }
  Parameter<T>& bias() noexcept { return bias_; }

 private:
  void check(const Shape& s, const char* what) const {
    if (s.rank() < 1 || s[s.rank() - 1] != features_)
      throw ShapeError("layernorm.3", detail::str("LayerNorm: ", what, " must have shape [..., ",
                                                  features_, "], got ", s.str()));
  }

  // Per row: mean and biased variance (row_moments: two passes over the row, in L1 cache), then
  // y in one pass that also writes the row's xhat (training on a copied input; streaming stores
  // from kStreamBytes: backward reads it after the rest of the network).
  void run(TensorView<const T> x, T* y, T* xhat, T* mean_out, T* rstd_out) const {
    const index_t rows = x.numel() / features_, cols = features_;
    const T* gamma = options_.elementwise_affine ? weight_.value.data() : nullptr;
    const T* beta = options_.elementwise_affine ? bias_.value.data() : nullptr;
    const bool streaming = xhat && static_cast<std::size_t>(rows * cols) * sizeof(T) >= detail::norm::kStreamBytes;
    detail::norm::for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const T* xr = x.data() + r * cols;
        double mean, var;
        detail::norm::row_moments(xr, cols, mean, var);
        const T rs = static_cast<T>(1.0 / std::sqrt(var + options_.eps));
        const T mu = static_cast<T>(mean);
        if (rstd_out) {
          mean_out[r] = mu;
          rstd_out[r] = rs;
        }
        T* yr = y + r * cols;
        T* hr = xhat ? xhat + r * cols : nullptr;
        const auto standardize = [mu, rs](auto xj) { return (xj - mu) * rs; };
        if (gamma)
          detail::norm::map_row_keeping(yr, hr, streaming, xr, cols,
                                        [mu, rs](auto xj, auto gj, auto bj) { return (xj - mu) * rs * gj + bj; },
                                        standardize, gamma, beta);
        else
          detail::norm::map_row_keeping(yr, hr, streaming, xr, cols, standardize, standardize);
      }
      if (streaming) detail::norm::stream_fence();
    });
  }

  LayerNormOptions options_;
  index_t features_;
  Parameter<T> weight_, bias_;
  InputCache<T> x_;            // forward_train's xhat (a copied input) or x (moved, borrowed),
  bool standardized_ = false;   // (which of the two)
  std::vector<T> mean_, rstd_;  // and each row's mean and 1/σ
  bool cached_ = false;
};

}  // namespace asrkit
