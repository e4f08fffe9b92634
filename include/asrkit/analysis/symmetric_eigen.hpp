// asrkit/analysis/symmetric_eigen.hpp - every eigenvalue of a symmetric matrix, and the
// eigenvectors of only the leading ones (SVCCA keeps a few hundred of D directions, SPECS §9.1).
//
//   asrkit::analysis::SymmetricEigen<float> eig(cov);   // cov: D x D (double), solved in float
//   eig.values();                                       // all D eigenvalues, descending
//   Eigen::MatrixXd u = eig.leading_vectors(k);         // D x k, orthonormal, in that order
//
// A = Q T Qᵀ by Householder tridiagonalisation (Eigen's, in T), then T = Z Λ Zᵀ by implicit
// symmetric QR steps with the Wilkinson shift (Golub & Van Loan, Algorithms 8.3.2 and 8.3.3) in
// double. Z = G_1 G_2 ... G_m is the product of the steps' Givens rotations; a full solver
// applies each to a D x D matrix (6D flops; 2.5 of Eigen's 3.0 s at D = 2048 on one AVX-512
// core). Here the rotations are recorded, and the k wanted columns Z E_S are E_S with the
// rotations applied from the left in reverse order: 6k flops per rotation. Q then maps them
// back (the eigenvectors of A are Q Z E_S). The price is memory: about D² rotations of two T
// (1.7 QR steps per eigenvalue at D = 512-2048), 32 MB at D = 2048 in float.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace analysis {

/// Eigen-decomposition of a symmetric D x D matrix (its lower triangle is read) in T's precision
/// for the tridiagonalisation and the eigenvectors, double for the eigenvalues' QR iteration.
template <class T>
class SymmetricEigen {
 public:
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

  explicit SymmetricEigen(const Eigen::MatrixXd& a) : tri_(checked(a).template cast<T>()) {
    const index_t n = a.rows();  // >= 1 (checked)
    Eigen::VectorXd d = tri_.diagonal().template cast<double>(), e = Eigen::VectorXd::Zero(n);
    e.head(n - 1) = tri_.subDiagonal().template cast<double>();
    qr_iterations(d, e);
    order_.resize(static_cast<std::size_t>(n));
    std::iota(order_.begin(), order_.end(), index_t(0));
    std::stable_sort(order_.begin(), order_.end(), [&](index_t i, index_t j) { return d(i) > d(j); });
    values_.resize(n);
    for (index_t i = 0; i < n; ++i) values_(i) = d(order_[static_cast<std::size_t>(i)]);
  }

  index_t size() const { return values_.size(); }
  /// Every eigenvalue, descending.
  const Eigen::VectorXd& values() const { return values_; }

  /// The eigenvectors of values()(0 .. k), as the columns of a D x k matrix.
  Eigen::MatrixXd leading_vectors(index_t k) const {
    const index_t n = size();
    if (k < 0 || k > n)
      throw ValueError("svcca.7", asrkit::detail::str("SymmetricEigen::leading_vectors: argument k must be in [0, ",
                                                      n, "], got ", k));
    // Z E_S, row-major so that a rotation of rows i, i + 1 runs along k contiguous columns.
    RowMatrix<T> z = RowMatrix<T>::Zero(n, k);
    for (index_t j = 0; j < k; ++j) z(order_[static_cast<std::size_t>(j)], j) = T(1);
    // Columns are independent: blocks of them share the threads, each block takes every rotation.
    constexpr index_t kBlock = 64;
    parallel_for((k + kBlock - 1) / kBlock, [&](index_t b) {
      const index_t j0 = b * kBlock, cols = std::min(kBlock, k - j0);
      std::size_t r = rotations_.size();
      for (auto step = steps_.rbegin(); step != steps_.rend(); ++step)
        for (index_t i = step->start + step->count - 1; i >= step->start; --i) {
          --r;  // rows i, i + 1 = G (rows i, i + 1), G = [c s; -s c]
          const T c = rotations_[r].c, s = rotations_[r].s;
          T* zi = z.data() + i * k + j0;
          T* zj = zi + k;
          for (index_t j = 0; j < cols; ++j) {
            const T u = zi[j], v = zj[j];
            zi[j] = c * u + s * v;
            zj[j] = c * v - s * u;
          }
        }
    });
    const Matrix vectors = tri_.matrixQ() * Matrix(z);
    return vectors.template cast<double>();
  }

 private:
  struct Rotation {
    T c, s;
  };
  struct Step {  // rotations of rows/columns (i, i + 1) for i = start .. start + count - 1
    index_t start, count;
  };

  static const Eigen::MatrixXd& checked(const Eigen::MatrixXd& a) {
    if (a.rows() != a.cols() || a.rows() == 0)
      throw ValueError("svcca.7", asrkit::detail::str("SymmetricEigen: argument a must be a non-empty square matrix, got ",
                                                      a.rows(), " x ", a.cols()));
    return a;
  }

  // Implicit symmetric QR with Wilkinson shifts on the tridiagonal (diagonal d, sub-diagonal e
  // with e(n - 1) = 0), deflating where |e_i| <= eps (|d_i| + |d_i+1|); d ends as the eigenvalues.
  void qr_iterations(Eigen::VectorXd& d, Eigen::VectorXd& e) {
    const index_t n = d.size();
    const double eps = std::numeric_limits<double>::epsilon(), tiny = std::numeric_limits<double>::min();
    const std::int64_t max_steps = 30 * std::max<std::int64_t>(n, 1);
    index_t end = n - 1;
    for (std::int64_t steps = 0; end > 0;) {
      for (index_t i = 0; i < end; ++i)
        if (std::abs(e(i)) <= eps * (std::abs(d(i)) + std::abs(d(i + 1))) || std::abs(e(i)) <= tiny) e(i) = 0;
      while (end > 0 && e(end - 1) == 0) --end;
      if (end == 0) break;
      if (++steps > max_steps)
        throw ValueError("svcca.8", asrkit::detail::str("SymmetricEigen: the QR iteration did not converge in ",
                                                        max_steps, " steps (size ", n, "); is the matrix finite?"));
      index_t start = end - 1;
      while (start > 0 && e(start - 1) != 0) --start;
      qr_step(d, e, start, end);
    }
  }

  // One shifted step on the unreduced block [start, end] (Golub & Van Loan Algorithm 8.3.2): the
  // rotation G_i = [c s; -s c] on (i, i + 1) chases the bulge z down the band, T <- G_iᵀ T G_i.
  void qr_step(Eigen::VectorXd& d, Eigen::VectorXd& e, index_t start, index_t end) {
    const double td = (d(end - 1) - d(end)) / 2, ee = e(end - 1);
    const double mu = d(end) - ee * ee / (td + (td >= 0 ? 1.0 : -1.0) * std::hypot(td, ee));
    double x = d(start) - mu, z = e(start);
    Step step{start, 0};
    for (index_t i = start; i < end && z != 0; ++i, ++step.count) {
      double c = 1, s = 0;  // [c s; -s c]ᵀ [x; z] = [r; 0]
      if (std::abs(z) > std::abs(x)) {
        const double tau = -x / z;
        s = 1 / std::sqrt(1 + tau * tau);
        c = s * tau;
      } else {
        const double tau = -z / x;
        c = 1 / std::sqrt(1 + tau * tau);
        s = c * tau;
      }
      if (i > start) e(i - 1) = c * e(i - 1) - s * z;
      const double a = d(i), b = e(i), f = d(i + 1);
      d(i) = c * c * a - 2 * c * s * b + s * s * f;
      d(i + 1) = s * s * a + 2 * c * s * b + c * c * f;
      e(i) = c * s * (a - f) + (c * c - s * s) * b;
      if (i + 1 < end) {
        z = -s * e(i + 1);
        e(i + 1) = c * e(i + 1);
      }
      x = e(i);
      rotations_.push_back({static_cast<T>(c), static_cast<T>(s)});
    }
    steps_.push_back(step);
  }

  Eigen::Tridiagonalization<Matrix> tri_;
  Eigen::VectorXd values_;
  std::vector<index_t> order_;  // values_(j) is the eigenvalue of T's column order_[j]
  std::vector<Rotation> rotations_;
  std::vector<Step> steps_;
};

}  // namespace analysis
}  // namespace asrkit
