// asrkit/nn/layer_norm.hpp - layer normalisation over the last axis (Ba, Kiros & Hinton 2016).
//
//   asrkit::LayerNorm<float> ln(256);          // x: [..., 256]
//   auto y  = ln.forward_train(x);             // caches xhat and 1/sigma per row
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
    run(x, y.data(), nullptr, nullptr);
    return y;
  }

  Tensor<T> forward_train(TensorView<const T> x) {
    check(x.shape(), "input");
    // run writes every element of y, xhat and rstd; xhat is reused between calls.
    Tensor<T> y(x.shape(), uninitialized);
    if (xhat_.shape() != x.shape()) xhat_ = Tensor<T>(x.shape(), uninitialized);
    rstd_.resize(static_cast<std::size_t>(x.numel() / features_));
    run(x, y.data(), xhat_.data(), rstd_.data());
    cached_ = true;
    return y;
  }

  /// dx = rstd ⊙ (g − mean(g) − xhat ⊙ mean(g ⊙ xhat)) with g = γ ⊙ dy, per row.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_) throw ValueError("layernorm.2", "LayerNorm::backward: call forward_train first");
    if (dy.shape() != xhat_.shape())
      throw ShapeError("layernorm.3", detail::str("LayerNorm::backward: dy must have the shape of the "
                                                  "forward input ", xhat_.shape().str(), ", got ",
                                                  dy.shape().str()));
    const index_t rows = dy.numel() / features_, cols = features_;
    const bool affine = options_.elementwise_affine;
    const T* gamma = affine ? weight_.value.data() : nullptr;
    // dγ, dβ: per-chunk column sums taken while each row is in cache, added in chunk order.
    const index_t step = detail::norm::chunk_rows(cols);
    const index_t chunks = (rows + step - 1) / step;
    std::vector<double> partial(affine ? static_cast<std::size_t>(2 * chunks * cols) : 0, 0.0);
    Tensor<T> dx(dy.shape(), uninitialized);  // every row is written
    detail::norm::for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
      std::vector<T> g(static_cast<std::size_t>(cols));
      double* sum_dy = affine ? partial.data() + 2 * (r0 / step) * cols : nullptr;
      for (index_t r = r0; r < r1; ++r) {
        const T* d = dy.data() + r * cols;
        const T* h = xhat_.data() + r * cols;
        if (affine && (r - r0) % detail::norm::kRowGroup == 0) {  // dγ, dβ of the next rows at once
          const index_t group[detail::norm::kRowGroup] = {r, r + 1, r + 2, r + 3};
          detail::norm::grad_sums_rows(dy.data(), xhat_.data(), cols, group,
                                       std::min(detail::norm::kRowGroup, r1 - r), sum_dy, sum_dy + cols);
        }
        if (affine) detail::norm::mul_row(g.data(), gamma, d, cols);
        else std::copy(d, d + cols, g.data());
        const double a = detail::norm::lane_sum(g.data(), cols);
        const double b = detail::norm::lane_dot(g.data(), h, cols);
        const T ma = static_cast<T>(a / static_cast<double>(cols));
        const T mb = static_cast<T>(b / static_cast<double>(cols));
        const T rs = rstd_[static_cast<std::size_t>(r)];
        detail::norm::ln_backward_row(dx.data() + r * cols, g.data(), h, rs, ma, mb, cols);
      }
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

  // Per row: mean and biased variance in double (two passes over the row, in L1 cache).
  void run(TensorView<const T> x, T* y, T* xhat, T* rstd) const {
    const index_t rows = x.numel() / features_, cols = features_;
    const T* gamma = options_.elementwise_affine ? weight_.value.data() : nullptr;
    const T* beta = options_.elementwise_affine ? bias_.value.data() : nullptr;
    const bool streaming = xhat && static_cast<std::size_t>(rows * cols) * sizeof(T) >= detail::norm::kStreamBytes;
    detail::norm::for_row_chunks(rows, cols, [&](index_t r0, index_t r1) {
      for (index_t r = r0; r < r1; ++r) {
        const T* xr = x.data() + r * cols;
        const double mean = detail::norm::lane_sum(xr, cols) / static_cast<double>(cols);
        const double var = detail::norm::lane_sum_sq(xr, cols, mean) / static_cast<double>(cols);
        const T rs = static_cast<T>(1.0 / std::sqrt(var + options_.eps));
        const T mu = static_cast<T>(mean);
        T* yr = y + r * cols;
        if (rstd) rstd[r] = rs;
        if (streaming) {  // xhat is read only by backward: keep it out of the cache
          detail::norm::standardize_row_streaming(yr, xhat + r * cols, xr, mu, rs, gamma, beta, cols);
          continue;
        }
        if (xhat) detail::norm::standardize_row(xhat + r * cols, xr, mu, rs, cols);
        if (gamma) detail::norm::standardize_affine_row(yr, xr, mu, rs, gamma, beta, cols);
        else detail::norm::standardize_row(yr, xr, mu, rs, cols);
      }
      if (streaming) detail::norm::stream_fence();
    });
  }

  LayerNormOptions options_;
  index_t features_;
  Parameter<T> weight_, bias_;
  Tensor<T> xhat_;
  std::vector<T> rstd_;
  bool cached_ = false;
};

}  // namespace asrkit
