// asrkit/analysis/svcca.hpp - SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein 2017; SPECS §9.1).
//
//   asrkit::analysis::SvccaResult r = asrkit::analysis::svcca(x.view(), y.view());  // [N, D1], [N, D2]
//   r.mean;                // SVCCA similarity (mean canonical correlation of the reduced layers)
//   r.kept_x, r.kept_y;    // SVD directions kept (99% of the variance by default)
//   r.pwcca;               // PWCCA of the reduced layers
//
// 1. centre each neuron; 2. SVD reduction: keep the k leading directions whose squared singular
// values reach `variance_kept` of the total; 3. CCA (cca_core semantics, analysis/cca.hpp) of the
// reduced activations X' = (X - mu) U_k. Nothing here takes an SVD of the N x D data: the squared
// singular values and U are the eigenpairs of the D x D covariance (S² = (N - 1)·w), so the O(N)
// work is covariance products (analysis/covariance.hpp), and the reduced blocks of step 3 are
//   Sxx' = U1ᵀ Sxx U1,  Syy' = U2ᵀ Syy U2,  Sxy' = U1ᵀ Sxy U2 (or X1'ᵀ X2' / (N - 1)),
// with Sxy' taken the cheaper way by multiply-adds per data point: D1·D2 for the full Sxy, or
// k1·D1 + k2·D2 + k1·k2 to project first. The eigensolver (analysis/symmetric_eigen.hpp) forms
// only the k kept eigenvectors; for float input its tridiagonalisation and vectors are in float
// (an error of the order of the data's own rounding), its eigenvalues and the reduced blocks in
// double.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <asrkit/analysis/cca.hpp>
#include <asrkit/analysis/covariance.hpp>
#include <asrkit/analysis/symmetric_eigen.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace analysis {

struct SvccaOptions {
  double variance_kept = 0.99;  ///< share of the variance (sum of squared singular values) kept, in (0, 1]
  index_t keep_dims = 0;        ///< > 0: keep exactly this many directions (at most D) instead
  CcaOptions cca{};
};

struct SvccaResult : CcaResult {
  index_t kept_x = 0, kept_y = 0;  ///< SVD directions kept for x and y
  double pwcca = 0;                ///< PWCCA of the reduced activations
};

/// One activation matrix [N, D] summarised for SVCCA: its column means and the leading
/// eigenpairs of its covariance (the SVD reduction, step 2).
struct SvdReduction {
  index_t rows = 0;              ///< N
  Eigen::VectorXd mean;          ///< [D]
  Eigen::VectorXd variances;     ///< every eigenvalue of the covariance, descending (S² / (N - 1))
  Eigen::MatrixXd basis;         ///< D x k: the kept directions U_k
  Eigen::MatrixXd reduced;       ///< k x k covariance of the reduced activations, U_kᵀ S U_k
  index_t kept() const noexcept { return basis.cols(); }
  index_t dims() const noexcept { return mean.size(); }
};

namespace detail {

inline void check_options(const SvccaOptions& o) {
  check_options(o.cca);
  if (!(o.variance_kept > 0 && o.variance_kept <= 1))
    throw ValueError("svcca.6", str("SvccaOptions::variance_kept must be in (0, 1], got ", o.variance_kept));
  if (o.keep_dims < 0)
    throw ValueError("svcca.6", str("SvccaOptions::keep_dims must be >= 0 (0: choose by variance), got ", o.keep_dims));
}

/// The number of leading directions to keep, given the descending eigenvalues.
inline index_t directions_kept(const Eigen::VectorXd& w, const SvccaOptions& o) {
  const index_t d = w.size();
  if (o.keep_dims > 0) return std::min(o.keep_dims, d);
  const double total = w.sum();
  if (!(total > 0)) return 0;  // every neuron constant
  double sum = 0;
  for (index_t k = 0; k < d; ++k) {
    sum += w(k);
    if (sum / total >= o.variance_kept) return k + 1;
  }
  return d;
}

// Step 2: the covariance's eigenvalues, and the eigenvectors of the leading ones kept.
template <class T>
void reduce_covariance(SvdReduction& r, const Eigen::MatrixXd& cov, const SvccaOptions& o) {
  const SymmetricEigen<T> eig(cov);
  r.variances = eig.values().cwiseMax(0.0);
  r.basis = eig.leading_vectors(directions_kept(r.variances, o));
  r.reduced = r.basis.transpose() * cov * r.basis;
}

// Step 3 from two reductions and their cross block Sxy' (k1 x k2, divided by N - 1).
inline SvccaResult svcca_from_reductions(const SvdReduction& x, const SvdReduction& y,
                                         const Eigen::MatrixXd& cross, const SvccaOptions& o) {
  SvccaResult r;
  static_cast<CcaResult&>(r) = cca_from_covariances(x.reduced, cross, y.reduced, o.cca);
  r.kept_x = x.kept();
  r.kept_y = y.kept();
  r.pwcca = pwcca_value(r);
  return r;
}

}  // namespace detail

/// Step 1-2 for one activation matrix x [N, D] (N > D): means, covariance, eigenpairs, kept basis.
template <class T>
SvdReduction svd_reduction(TensorView<const T> x, const SvccaOptions& options = {}, const char* name = "x") {
  detail::check_activations(x, name);
  detail::check_options(options);
  const detail::SerialEigen serial;
  SvdReduction r;
  r.rows = x.dim(0);
  r.mean = column_means(x, name);
  detail::reduce_covariance<T>(r, covariance(x, r.mean), options);
  return r;
}

/// SVCCA of x [N, D1] and y [N, D2] (same N data points, N > D1, D2).
template <class T>
SvccaResult svcca(TensorView<const T> x, TensorView<const T> y, const SvccaOptions& options = {}) {
  detail::check_pair(x, y);
  detail::check_options(options);
  const detail::SerialEigen serial;
  SvdReduction rx, ry;
  rx.rows = ry.rows = x.dim(0);
  rx.mean = column_means(x, "x");
  ry.mean = column_means(y, "y");
  {
    const Eigen::MatrixXd cx = covariance(x, rx.mean), cy = covariance(y, ry.mean);
    // The two eigensolvers are sequential inside; run them side by side.
    parallel_for(2, [&](index_t i) {
      if (i == 0) detail::reduce_covariance<T>(rx, cx, options);
      else detail::reduce_covariance<T>(ry, cy, options);
    });
  }
  const index_t d1 = x.dim(1), d2 = y.dim(1), k1 = rx.kept(), k2 = ry.kept();
  Eigen::MatrixXd cross;
  if (k1 * d1 + k2 * d2 + k1 * k2 < d1 * d2) {  // project first: fewer multiply-adds per row
    const Tensor<T> px = project(x, rx.mean, rx.basis), py = project(y, ry.mean, ry.basis);
    cross = cross_covariance<T>(px.view(), Eigen::VectorXd::Zero(k1), py.view(), Eigen::VectorXd::Zero(k2));
  } else {
    cross = rx.basis.transpose() * cross_covariance(x, rx.mean, y, ry.mean) * ry.basis;
  }
  return detail::svcca_from_reductions(rx, ry, cross, options);
}

// Tensors convert to const views, which template deduction does not do by itself.
template <class T>
SvccaResult svcca(const Tensor<T>& x, const Tensor<T>& y, const SvccaOptions& options = {}) {
  return svcca(x.view(), y.view(), options);
}
template <class T>
SvdReduction svd_reduction(const Tensor<T>& x, const SvccaOptions& options = {}, const char* name = "x") {
  return svd_reduction(x.view(), options, name);
}

}  // namespace analysis
}  // namespace asrkit
