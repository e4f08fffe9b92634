// analysis/symmetric_eigen.hpp: eigenvalues against Eigen's SelfAdjointEigenSolver, and the
// leading eigenvectors by their residuals A v = λ v, orthonormality and (for simple eigenvalues)
// agreement with Eigen's vectors, on matrices with repeated, zero and negative eigenvalues, an
// already diagonal one, 1 x 1 and 2 x 2; thread-count independence; errors.
#include <asrkit/analysis/symmetric_eigen.hpp>
#include <asrkit/core/threading.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <limits>
#include <random>

#include "../test_util.hpp"

using asrkit::index_t;
namespace an = asrkit::analysis;

namespace {

// Q diag(lambda) Q^T with a random orthogonal Q (the QR of a seeded Gaussian matrix).
Eigen::MatrixXd with_spectrum(const Eigen::VectorXd& lambda, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  const index_t n = lambda.size();
  Eigen::MatrixXd g(n, n);
  for (index_t i = 0; i < g.size(); ++i) g.data()[i] = normal(gen);
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ();
  return q * lambda.asDiagonal() * q.transpose();
}

template <class T>
void check_against_eigen(const Eigen::MatrixXd& a, double tolerance) {
  const index_t n = a.rows();
  const an::SymmetricEigen<T> eig(a);
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ref(a);
  const Eigen::VectorXd want = ref.eigenvalues().reverse();
  const double scale = std::max(1.0, want.cwiseAbs().maxCoeff());
  REQUIRE(eig.values().size() == n);
  CHECK((eig.values() - want).cwiseAbs().maxCoeff() <= tolerance * scale);
  for (index_t k : {index_t(0), index_t(1), std::min<index_t>(3, n), n}) {
    INFO("n " << n << ", k " << k);
    const Eigen::MatrixXd v = eig.leading_vectors(k);
    REQUIRE(v.rows() == n);
    REQUIRE(v.cols() == k);
    if (k == 0) continue;
    const Eigen::MatrixXd residual = a * v - v * eig.values().head(k).asDiagonal();
    CHECK(residual.cwiseAbs().maxCoeff() <= tolerance * scale);
    CHECK((v.transpose() * v - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() <= tolerance);
    for (index_t j = 0; j < k; ++j) {  // a simple eigenvalue has one eigenvector, up to sign
      const double gap = std::min(j > 0 ? want(j - 1) - want(j) : INFINITY, j + 1 < n ? want(j) - want(j + 1) : INFINITY);
      if (gap > 1e-3 * scale)
        CHECK(std::abs(v.col(j).dot(ref.eigenvectors().col(n - 1 - j))) == Approx(1).margin(tolerance * 100));
    }
  }
}

}  // namespace

TEST_CASE("SymmetricEigen matches Eigen's solver on awkward spectra", "[analysis][eigen]") {
  SECTION("random, with negative values") {
    for (index_t n : {1, 2, 5, 60}) {
      Eigen::VectorXd lambda = Eigen::VectorXd::LinSpaced(n, -2.0, 7.0);
      check_against_eigen<double>(with_spectrum(lambda, 1 + unsigned(n)), 1e-12);
      check_against_eigen<float>(with_spectrum(lambda, 1 + unsigned(n)), 2e-5);
    }
  }
  SECTION("repeated and zero eigenvalues (rank deficient)") {
    Eigen::VectorXd lambda = Eigen::VectorXd::Zero(40);
    lambda.head(10).setConstant(3.0);
    lambda.segment(10, 5) << 9, 8, 7, 6, 5;
    check_against_eigen<double>(with_spectrum(lambda, 7), 1e-12);
    check_against_eigen<float>(with_spectrum(lambda, 7), 2e-5);
  }
  SECTION("a cluster of close eigenvalues under a decaying head (SVCCA's noise floor)") {
    Eigen::VectorXd lambda(120);
    for (index_t i = 0; i < 120; ++i) lambda(i) = i < 30 ? std::pow(0.8, double(i)) * 50 : 1e-3 * (1 + 1e-4 * double(i));
    check_against_eigen<double>(with_spectrum(lambda, 9), 1e-12);
  }
  SECTION("already diagonal, unsorted") {
    Eigen::VectorXd lambda(6);
    lambda << 2, -1, 5, 0, 5, 3;
    check_against_eigen<double>(Eigen::MatrixXd(lambda.asDiagonal()), 1e-14);
  }
}

TEST_CASE("SymmetricEigen's vectors do not depend on the thread count", "[analysis][eigen]") {
  const Eigen::MatrixXd a = with_spectrum(Eigen::VectorXd::LinSpaced(150, 0.0, 4.0), 3);
  const int before = asrkit::num_threads();
  asrkit::set_num_threads(1);
  const Eigen::MatrixXd one = an::SymmetricEigen<float>(a).leading_vectors(140);
  asrkit::set_num_threads(2);
  const Eigen::MatrixXd two = an::SymmetricEigen<float>(a).leading_vectors(140);
  asrkit::set_num_threads(before);
  CHECK(one == two);
}

TEST_CASE("SymmetricEigen rejects bad input with clear errors", "[analysis][eigen][errors]") {
  REQUIRE_THROWS_ID(an::SymmetricEigen<double>(Eigen::MatrixXd(3, 4)), asrkit::ValueError,
                    "[asrkit.svcca.7] SymmetricEigen: argument a must be a non-empty square matrix, got 3 x 4");
  const an::SymmetricEigen<double> eig(Eigen::MatrixXd::Identity(4, 4));
  REQUIRE_THROWS_ID(eig.leading_vectors(5), asrkit::ValueError,
                    "[asrkit.svcca.7] SymmetricEigen::leading_vectors: argument k must be in [0, 4], got 5");
  Eigen::MatrixXd nan = with_spectrum(Eigen::VectorXd::LinSpaced(8, 1.0, 2.0), 5);
  nan(3, 2) = nan(2, 3) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_ID(an::SymmetricEigen<double>(nan), asrkit::ValueError, "svcca.8");
}
