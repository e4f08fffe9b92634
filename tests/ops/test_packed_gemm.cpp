// ops/packed_gemm.hpp: packed right operand against a long-double product, every row-tile size,
// partial panels, alpha/beta, beta == 0 never reading C, thread-count invariance, errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/packed_gemm.hpp>

#include <cmath>
#include <limits>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::ops::PackedMatrix;
using asrkit::ops::Trans;

namespace {

template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}

// How B reaches the kernel: packed once (gemm_packed), or read in place by gemm_panels from a
// [k, ldb] buffer with ldb = n (a read past a row's end would leave the buffer: ASan) or n + 3.
enum class Route { packed, in_place, in_place_strided };

// Largest |result - exact| / (1 + |exact|) for C = alpha (start + A op(B)) + beta C0, where
// start [m] (gemm_panels only) is random or, by default, absent.
template <class T>
double packed_error(index_t m, index_t n, index_t k, Trans tb, T alpha, T beta,
                    Route route = Route::packed, bool with_start = false) {
  const index_t ldb = route == Route::in_place_strided ? n + 3 : n;
  const auto a = random<T>(Shape{m, k}, 11);
  const auto b = random<T>(tb == Trans::no ? Shape{k, ldb} : Shape{n, k}, 12);
  const auto c0 = random<T>(Shape{m, n}, 13);
  const auto start = random<T>(Shape{m}, 14);
  Tensor<T> c(c0);
  if (route == Route::packed) {
    const PackedMatrix<T> packed(tb, b.view());
    asrkit::ops::gemm_packed(alpha, a.view(), packed, beta, c.view());
  } else {
    asrkit::ops::gemm_panels(m, n, k, alpha, a.data(), k, b.data(), ldb, beta, c.data(), n,
                             with_start ? start.data() : nullptr);
  }
  double worst = 0;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      long double s = with_start ? start(i) : 0;
      for (index_t p = 0; p < k; ++p)
        s += static_cast<long double>(a(i, p)) * (tb == Trans::no ? b(p, j) : b(j, p));
      const long double want = alpha * s + static_cast<long double>(beta) * c0(i, j);
      worst = std::max(worst, static_cast<double>(std::fabs(c(i, j) - want) / (1 + std::fabs(want))));
    }
  return worst;
}

template <class T>
void check_sizes(double tol) {
  constexpr index_t P = PackedMatrix<T>::kPanel;
  for (auto tb : {Trans::no, Trans::yes})
    for (index_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17})  // every row-tile size (8 rows at most), several tiles
      for (index_t n : {index_t(1), P - 1, P, P + 1, 5 * P + 3})  // partial panels, several cells
        for (index_t k : {1, 3, 4, 5, 66}) {  // k below, at and above the split interleave
          INFO("m=" << m << " n=" << n << " k=" << k << " trans=" << (tb == Trans::yes));
          REQUIRE(packed_error<T>(m, n, k, tb, T(1), T(0)) < tol);
          REQUIRE(packed_error<T>(m, n, k, tb, T(-0.5), T(1)) < tol);
          REQUIRE(packed_error<T>(m, n, k, tb, T(2), T(0.25)) < tol);
        }
}

}  // namespace

TEST_CASE("gemm_packed matches an exact product for float and double", "[ops][gemm]") {
  check_sizes<float>(1e-5);
  check_sizes<double>(1e-13);
}

TEST_CASE("gemm_panels (B read in place, panel by panel) matches an exact product", "[ops][gemm]") {
  for (const Route route : {Route::in_place, Route::in_place_strided}) {
    constexpr index_t Pf = PackedMatrix<float>::kPanel, Pd = PackedMatrix<double>::kPanel;
    for (index_t m : {1, 3, 8, 9, 32, 33})  // every row-tile path, several tiles
      for (index_t k : {1, 5, 66}) {
        for (index_t n : {index_t(1), Pf - 1, Pf, 3 * Pf + 5}) {  // partial panels are copied
          INFO("float m=" << m << " n=" << n << " k=" << k << " strided=" << (route == Route::in_place_strided));
          REQUIRE(packed_error<float>(m, n, k, Trans::no, 1.0f, 0.0f, route) < 1e-5);
          REQUIRE(packed_error<float>(m, n, k, Trans::no, -0.5f, 1.0f, route) < 1e-5);
          REQUIRE(packed_error<float>(m, n, k, Trans::no, 1.0f, 0.0f, route, true) < 1e-5);
          REQUIRE(packed_error<float>(m, n, k, Trans::no, -0.5f, 1.0f, route, true) < 1e-5);
        }
        for (index_t n : {index_t(1), Pd, 2 * Pd + 1}) {
          INFO("double m=" << m << " n=" << n << " k=" << k);
          REQUIRE(packed_error<double>(m, n, k, Trans::no, 2.0, 0.25, route) < 1e-13);
          REQUIRE(packed_error<double>(m, n, k, Trans::no, 2.0, 0.25, route, true) < 1e-13);
        }
      }
  }
}

TEST_CASE("gemm_packed with beta 0 never reads C, and k = 0 gives beta * C", "[ops][gemm]") {
  const auto a = random<float>(Shape{3, 4}, 1);
  const auto b = random<float>(Shape{40, 4}, 2);
  const PackedMatrix<float> packed(Trans::yes, b.view());
  Tensor<float> c(Shape{3, 40}, std::numeric_limits<float>::quiet_NaN());
  asrkit::ops::gemm_packed(1.0f, a.view(), packed, 0.0f, c.view());
  for (index_t i = 0; i < c.numel(); ++i) REQUIRE(std::isfinite(c.data()[i]));

  const Tensor<float> a0(Shape{2, 0}), b0(Shape{0, 5});
  const PackedMatrix<float> empty(Trans::no, b0.view());
  Tensor<float> c2(Shape{2, 5}, 3.0f);
  asrkit::ops::gemm_packed(1.0f, a0.view(), empty, 0.5f, c2.view());
  for (index_t i = 0; i < c2.numel(); ++i) REQUIRE(c2.data()[i] == 1.5f);
}

TEST_CASE("gemm_packed is bit-identical for any thread count", "[ops][gemm]") {
  const auto a = random<float>(Shape{8, 300}, 3);
  const auto b = random<float>(Shape{1000, 300}, 4);
  const PackedMatrix<float> packed(Trans::yes, b.view());
  const int saved = asrkit::num_threads();
  asrkit::set_num_threads(1);
  Tensor<float> c1(Shape{8, 1000});
  asrkit::ops::gemm_packed(1.0f, a.view(), packed, 0.0f, c1.view());
  asrkit::set_num_threads(2);
  Tensor<float> c2(Shape{8, 1000});
  asrkit::ops::gemm_packed(1.0f, a.view(), packed, 0.0f, c2.view());
  asrkit::set_num_threads(saved);
  for (index_t i = 0; i < c1.numel(); ++i) REQUIRE(c1.data()[i] == c2.data()[i]);
}

TEST_CASE("gemm_packed rejects mismatched shapes", "[ops][gemm][errors]") {
  const auto b = random<float>(Shape{6, 4}, 2);  // op(B) = B^T is 4 x 6
  const PackedMatrix<float> packed(Trans::yes, b.view());
  REQUIRE(packed.rows() == 4);
  REQUIRE(packed.cols() == 6);
  Tensor<float> a(Shape{2, 5}), c(Shape{2, 6}), a_ok(Shape{2, 4}), c_bad(Shape{3, 6});
  REQUIRE_THROWS_ID(asrkit::ops::gemm_packed(1.0f, a.view(), packed, 0.0f, c.view()), asrkit::ShapeError, "asrkit.gemm.5");
  REQUIRE_THROWS_ID(asrkit::ops::gemm_packed(1.0f, a_ok.view(), packed, 0.0f, c_bad.view()), asrkit::ShapeError, "asrkit.gemm.5");
  const Tensor<float> v(Shape{6});
  REQUIRE_THROWS_ID(PackedMatrix<float>(Trans::no, v.view()), asrkit::ShapeError, "asrkit.gemm.5");
  REQUIRE_THROWS_ID(asrkit::ops::gemm_packed<float>(2, 1.0f, a_ok.data(), 3, packed, 0.0f,
                                                    c.data(), 6),
                    asrkit::ValueError, "asrkit.gemm.6");
}
