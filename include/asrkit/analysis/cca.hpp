// asrkit/analysis/cca.hpp - canonical correlation analysis of two activation matrices, with the
// semantics of Google's cca_core.get_cca_similarity (SPECS §9.2), and PWCCA (SPECS §9.3).
//
//   asrkit::analysis::CcaResult r = asrkit::analysis::cca(x.view(), y.view());  // x [N, D1], y [N, D2]
//   r.rho;               // canonical correlations, descending
//   r.mean;              // the plain mean (Raghu et al. 2017's rho-bar)
//   r.thresholded_mean;  // cca_core's "mean": rho[:idx] with idx from the 0.98 rule
//   double p = asrkit::analysis::pwcca(x.view(), y.view());                // Morcos et al. 2018
//
// Rows are data points (frames), columns neurons: row-major [N, D] is the same memory as the
// spec's column-major neurons x data points. Everything after the covariances (an O(N·D²) pass,
// analysis/covariance.hpp) runs in double on D x D matrices:
//   1. Sxx, Sxy, Syy: the blocks of np.cov(x, y) (centred, divided by N - 1);
//   2. rescale Sxx by max|Sxx|, Syy by max|Syy|, Sxy by their geometric mean (rho unchanged);
//   3. remove_small: drop neurons whose rescaled variance (diagonal) is below epsilon;
//   4. Sxx += eps·I, Syy += eps·I;
//   5. whiten: W with Wᵀ S W = I, by Cholesky (same rho and directions as S^(-1/2)); for a
//      singular S, S^(-1/2) from a self-adjoint eigensolver of S itself: w^(-1/2), eigenvalues at
//      or below 1e-15·max(w) contribute 0 (numpy's pinv followed by eigh, minus its NaNs);
//   6. rho = singular values of Wxᵀ Sxy Wy;
//   7. thresholded mean over rho[:idx], idx the first i with sum(rho[:i]) / sum(rho) >= threshold.
// cca_core's known quirks (SPECS §9.2) are not copied: the threshold is never passed as epsilon,
// the threshold rule always yields an index, and PWCCA uses the second input's own activations.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <asrkit/analysis/covariance.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {
namespace analysis {

/// cca_core's parameters (SPECS §9.2); the tutorials use epsilon = 1e-10.
struct CcaOptions {
  double epsilon = 1e-10;   ///< remove_small cut-off on the rescaled variances and ridge added to Sxx, Syy
  double threshold = 0.98;  ///< share of sum(rho) kept by the thresholded mean, in (0, 1]
};

struct CcaResult {
  std::vector<double> rho;       ///< canonical correlations, descending, min(k1, k2) of them (after remove_small)
  double mean = 0;               ///< plain mean of rho (Raghu et al.'s rho-bar)
  double mean_squared = 0;       ///< mean of rho² (Pillai-trace style)
  double thresholded_mean = 0;   ///< mean of rho[:idx] (cca_core's "mean", SPECS §9.2 step 7)
  index_t threshold_index = 0;   ///< that idx
  index_t kept_neurons_x = 0;    ///< neurons of x left by remove_small
  index_t kept_neurons_y = 0;    ///< neurons of y left by remove_small
  std::vector<double> pwcca_weights;  ///< PWCCA's alpha (normalised), one per rho
};

namespace detail {

// x and y must be [N, D] with the same N > D >= 1; throws svcca.1 (rank), svcca.2 (N differs),
// svcca.3 (N <= D: cca_core asserts neurons < datapoints), svcca.5 (empty).
template <class T>
void check_activations(TensorView<const T> x, const char* name) {
  if (x.rank() != 2)
    throw ShapeError("svcca.1", str("argument ", name, ": expected an activation matrix [N, D] (rows = data points, "
                                    "columns = neurons), got shape ", x.shape().str()));
  if (x.dim(0) == 0 || x.dim(1) == 0)
    throw ShapeError("svcca.5", str("argument ", name, ": expected at least one data point and one neuron, got shape ",
                                    x.shape().str()));
  if (x.dim(0) <= x.dim(1))
    throw ValueError("svcca.3", str("argument ", name, ": ", x.dim(1), " neurons need more than ", x.dim(1),
                                    " data points (rows), got ", x.dim(0), " (shape ", x.shape().str(),
                                    "); use N >= 5-10x the neurons (SPECS §9.1)"));
}

template <class T>
void check_pair(TensorView<const T> x, TensorView<const T> y) {
  if (x.rank() == 2 && y.rank() == 2 && x.dim(0) != y.dim(0))
    throw ShapeError("svcca.2", str("arguments x and y must hold the same data points (rows): x has shape ",
                                    x.shape().str(), ", y has shape ", y.shape().str()));
  check_activations(x, "x");
  check_activations(y, "y");
}

inline void check_options(const CcaOptions& o) {
  if (!(o.epsilon >= 0) || !std::isfinite(o.epsilon))
    throw ValueError("svcca.6", str("CcaOptions::epsilon must be finite and >= 0, got ", o.epsilon));
  if (!(o.threshold > 0 && o.threshold <= 1))
    throw ValueError("svcca.6", str("CcaOptions::threshold must be in (0, 1], got ", o.threshold));
}

// S^(-1/2) of a symmetric positive semi-definite matrix (step 5).
inline Eigen::MatrixXd inverse_sqrt(const Eigen::MatrixXd& s) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(s);
  const Eigen::VectorXd& w = es.eigenvalues();
  const double floor = 1e-15 * std::max(w.cwiseAbs().maxCoeff(), 0.0);  // numpy pinv's rcond
  const Eigen::VectorXd r = w.unaryExpr([floor](double v) { return v > floor ? 1.0 / std::sqrt(v) : 0.0; });
  return es.eigenvectors() * r.asDiagonal() * es.eigenvectors().transpose();
}

// A whitening W (Wᵀ S W = I) for step 5. S = L·Lᵀ (Cholesky) gives W = L^-T, a fraction of the
// cost of an eigensolver: S^(-1/2) = L^-T·R for an orthogonal R, which the SVD of step 6 absorbs,
// so rho and the canonical directions W·u are those of cca_core. A singular S (epsilon = 0 with
// a dead direction) falls back to S^(-1/2) with the pinv floor.
inline Eigen::MatrixXd whitening(const Eigen::MatrixXd& s) {
  Eigen::LLT<Eigen::MatrixXd> llt(s);
  if (llt.info() != Eigen::Success || !(llt.matrixLLT().diagonal().minCoeff() > 1e-150)) return inverse_sqrt(s);
  Eigen::MatrixXd w = Eigen::MatrixXd::Identity(s.rows(), s.cols());
  llt.matrixU().solveInPlace(w);  // U = Lᵀ: w = L^-T
  return w;
}

inline std::vector<int> large_variances(const Eigen::MatrixXd& s, double epsilon) {
  std::vector<int> keep;
  for (Eigen::Index i = 0; i < s.rows(); ++i)
    if (std::abs(s(i, i)) >= epsilon) keep.push_back(static_cast<int>(i));
  return keep;
}

// PWCCA's alpha (Morcos et al. 2018; SPECS §9.3) for one side: the canonical variates
// h_i = X_c · a_i (columns of a = S^(-1/2) u), orthonormalised in data space in column order
// (a QR of [h_1 ... h_r], done here through the Cholesky factor R of their Gram matrix
// aᵀ S a = RᵀR), and alpha_i = sum_j |<q_i, x_j>| = sum_j |(R^-T aᵀ S)_ij|. Constant factors
// (N - 1, the rescaling) cancel in the normalisation.
inline Eigen::VectorXd pwcca_weights(const Eigen::MatrixXd& s, const Eigen::MatrixXd& a) {
  const Eigen::MatrixXd as = a.transpose() * s;  // rows: <h_i, x_j> up to N - 1
  Eigen::LLT<Eigen::MatrixXd> llt(as * a);
  Eigen::MatrixXd inner;
  if (llt.info() == Eigen::Success) {
    inner = llt.matrixU().transpose().solve(as);
  } else {  // degenerate variates (singular S with epsilon = 0): normalise each one alone
    const Eigen::VectorXd norm2 = (as * a).diagonal();
    inner = as;
    for (Eigen::Index i = 0; i < inner.rows(); ++i)
      inner.row(i) *= norm2(i) > 0 ? 1.0 / std::sqrt(norm2(i)) : 0.0;
  }
  Eigen::VectorXd alpha = inner.cwiseAbs().rowwise().sum();
  const double total = alpha.sum();
  return total > 0 ? Eigen::VectorXd(alpha / total) : Eigen::VectorXd::Zero(alpha.size());
}

inline void summarise(CcaResult& r, double threshold) {
  const index_t k = static_cast<index_t>(r.rho.size());
  if (k == 0) return;
  double sum = 0, sum2 = 0;
  for (double v : r.rho) sum += v, sum2 += v * v;
  r.mean = sum / static_cast<double>(k);
  r.mean_squared = sum2 / static_cast<double>(k);
  // cca_core's sum_threshold: the first i with sum(rho[:i]) / sum(rho) >= threshold; when no i
  // < k qualifies (or the sum is 0) every coefficient is kept instead of cca_core's None.
  index_t idx = k;
  double prefix = 0;
  for (index_t i = 1; i < k && sum > 0; ++i) {
    prefix += r.rho[static_cast<std::size_t>(i - 1)];
    if (prefix / sum >= threshold) {
      idx = i;
      break;
    }
  }
  r.threshold_index = idx;
  r.thresholded_mean = std::accumulate(r.rho.begin(), r.rho.begin() + idx, 0.0) / static_cast<double>(idx);
}

/// Steps 2-7 on the covariance blocks (already divided by N - 1), plus PWCCA.
inline CcaResult cca_from_covariances(Eigen::MatrixXd sxx, Eigen::MatrixXd sxy, Eigen::MatrixXd syy,
                                      const CcaOptions& o) {
  CcaResult r;
  const double xmax = sxx.size() ? sxx.cwiseAbs().maxCoeff() : 0.0;
  const double ymax = syy.size() ? syy.cwiseAbs().maxCoeff() : 0.0;
  if (!(xmax > 0) || !(ymax > 0)) return r;  // a side without variance: no correlation
  sxx /= xmax;
  syy /= ymax;
  sxy /= std::sqrt(xmax * ymax);
  const std::vector<int> kx = large_variances(sxx, o.epsilon), ky = large_variances(syy, o.epsilon);
  r.kept_neurons_x = static_cast<index_t>(kx.size());
  r.kept_neurons_y = static_cast<index_t>(ky.size());
  if (kx.empty() || ky.empty()) return r;
  const Eigen::MatrixXd cxx = sxx(kx, kx), cyy = syy(ky, ky), cxy = sxy(kx, ky);
  const Eigen::MatrixXd wx = whitening(cxx + o.epsilon * Eigen::MatrixXd::Identity(cxx.rows(), cxx.cols()));
  const Eigen::MatrixXd wy = whitening(cyy + o.epsilon * Eigen::MatrixXd::Identity(cyy.rows(), cyy.cols()));
  const bool x_side = kx.size() <= ky.size();  // PWCCA weighs the side with fewer neurons (pwcca.py: x on a tie)
  Eigen::BDCSVD<Eigen::MatrixXd> svd(wx.transpose() * cxy * wy, x_side ? Eigen::ComputeThinU : Eigen::ComputeThinV);
  const Eigen::VectorXd s = svd.singularValues();
  r.rho.assign(s.data(), s.data() + s.size());
  summarise(r, o.threshold);
  const Eigen::VectorXd alpha = x_side ? pwcca_weights(cxx, wx * svd.matrixU()) : pwcca_weights(cyy, wy * svd.matrixV());
  r.pwcca_weights.assign(alpha.data(), alpha.data() + alpha.size());
  return r;
}

inline double pwcca_value(const CcaResult& r) {
  double v = 0;
  for (std::size_t i = 0; i < r.rho.size(); ++i) v += r.pwcca_weights[i] * r.rho[i];
  return v;
}

// Sxx, Sxy, Syy of the raw activations, then steps 2-7.
template <class T>
CcaResult cca_of_activations(TensorView<const T> x, TensorView<const T> y, const CcaOptions& o) {
  check_pair(x, y);
  check_options(o);
  const SerialEigen serial;
  const Eigen::VectorXd mx = column_means(x, "x"), my = column_means(y, "y");
  return cca_from_covariances(covariance(x, mx), cross_covariance(x, mx, y, my), covariance(y, my), o);
}

}  // namespace detail

/// CCA of x [N, D1] and y [N, D2] (the same N data points, N > D1, D2), cca_core semantics.
template <class T>
CcaResult cca(TensorView<const T> x, TensorView<const T> y, const CcaOptions& options = {}) {
  return detail::cca_of_activations(x, y, options);
}

/// PWCCA (Morcos et al. 2018, SPECS §9.3): sum_i alpha_i rho_i with alpha from the side with fewer
/// neurons left by remove_small.
template <class T>
double pwcca(TensorView<const T> x, TensorView<const T> y, const CcaOptions& options = {}) {
  return detail::pwcca_value(detail::cca_of_activations(x, y, options));
}

// Tensors convert to const views, which template deduction does not do by itself.
template <class T>
CcaResult cca(const Tensor<T>& x, const Tensor<T>& y, const CcaOptions& options = {}) {
  return cca(x.view(), y.view(), options);
}
template <class T>
double pwcca(const Tensor<T>& x, const Tensor<T>& y, const CcaOptions& options = {}) {
  return pwcca(x.view(), y.view(), options);
}

}  // namespace analysis
}  // namespace asrkit
