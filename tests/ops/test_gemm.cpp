// ops/gemm.hpp: every transpose combination, alpha/beta, leading dimensions, batches, errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/ops/gemm.hpp>

#include <cmath>
#include <limits>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::ops::Trans;

namespace {

template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}

// C = alpha op(A) op(B) + beta C in long double, element by element.
template <class T>
Tensor<T> naive(Trans ta, Trans tb, T alpha, const Tensor<T>& a, const Tensor<T>& b, T beta,
                const Tensor<T>& c) {
  Tensor<T> out(c.shape());
  const index_t m = c.dim(0), n = c.dim(1), k = ta == Trans::no ? a.dim(1) : a.dim(0);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      long double s = 0;
      for (index_t p = 0; p < k; ++p) {
        const T av = ta == Trans::no ? a(i, p) : a(p, i);
        const T bv = tb == Trans::no ? b(p, j) : b(j, p);
        s += static_cast<long double>(av) * bv;
      }
      out(i, j) = static_cast<T>(alpha * s +
                                 (beta == T(0) ? 0.0L : static_cast<long double>(beta) * c(i, j)));
    }
  return out;
}

template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  double d = 0;
  for (index_t i = 0; i < a.numel(); ++i)
    d = std::max(d, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return d;
}

template <class T>
void check_all_transposes(double tol) {
  for (auto ta : {Trans::no, Trans::yes})
    for (auto tb : {Trans::no, Trans::yes})
      // The last two cross gemm_cell's blocks: k over kGemmDepth (with a partial block), n over
      // one packed block of op(B) (with a partial panel), m not a multiple of the tile's rows.
      for (auto mnk : {std::array<index_t, 3>{1, 1, 1},
                       {7, 5, 3},
                       {33, 17, 65},
                       {64, 70, 129},
                       {13, 600, 700},
                       {19, 1100, 300}}) {
        const index_t m = mnk[0], n = mnk[1], k = mnk[2];
        const auto a = random<T>(ta == Trans::no ? Shape{m, k} : Shape{k, m}, 1);
        const auto b = random<T>(tb == Trans::no ? Shape{k, n} : Shape{n, k}, 2);
        for (T beta : {T(0), T(1), T(-0.5)}) {
          auto c = random<T>({m, n}, 3);
          const auto want = naive(ta, tb, T(1.5), a, b, beta, c);
          asrkit::ops::gemm(ta, tb, T(1.5), a, b, beta, c.view());
          INFO("m=" << m << " n=" << n << " k=" << k << " beta=" << beta);
          CHECK(max_abs_diff(c, want) < tol * std::sqrt(static_cast<double>(k)));
        }
      }
}

}  // namespace

TEST_CASE("gemm matches the naive product for every transpose", "[ops][gemm]") {
  check_all_transposes<double>(1e-13);
  check_all_transposes<float>(2e-5);
}

TEST_CASE("gemm with beta 0 never reads C", "[ops][gemm]") {
  const auto a = random<double>({4, 3}, 4);
  const auto b = random<double>({3, 5}, 5);
  Tensor<double> c({4, 5}, std::numeric_limits<double>::quiet_NaN());
  asrkit::ops::gemm(Trans::no, Trans::no, 1.0, a, b, 0.0, c.view());
  for (index_t i = 0; i < c.numel(); ++i) REQUIRE(std::isfinite(c.data()[i]));
}

TEST_CASE("gemm with leading dimensions works on sub-blocks", "[ops][gemm]") {
  // A is the left 3 columns of a [4, 6] buffer, C the middle of a [5, 8] buffer.
  const auto abuf = random<double>({4, 6}, 6);
  const auto b = random<double>({3, 2}, 7);
  Tensor<double> cbuf({5, 8}, 7.0);
  asrkit::ops::gemm(Trans::no, Trans::no, 4, 2, 3, 1.0, abuf.data(), 6, b.data(), 2, 0.0,
                    cbuf.data() + 8 + 3, 8);
  for (index_t i = 0; i < 4; ++i)
    for (index_t j = 0; j < 2; ++j) {
      double s = 0;
      for (index_t p = 0; p < 3; ++p) s += abuf(i, p) * b(p, j);
      CHECK(cbuf(i + 1, j + 3) == Approx(s).epsilon(1e-14));
    }
  CHECK(cbuf(0, 0) == 7.0);
  CHECK(cbuf(1, 5) == 7.0);
  CHECK(cbuf(1, 2) == 7.0);
}

TEST_CASE("gemm with k = 0 scales C by beta", "[ops][gemm]") {
  Tensor<float> a({3, 0}), b({0, 2});
  Tensor<float> c({3, 2}, 2.0f);
  asrkit::ops::gemm(Trans::no, Trans::no, 1.0f, a, b, 0.5f, c.view());
  for (index_t i = 0; i < c.numel(); ++i) CHECK(c.data()[i] == 1.0f);
  asrkit::ops::gemm(Trans::no, Trans::no, 1.0f, a, b, 0.0f, c.view());
  for (index_t i = 0; i < c.numel(); ++i) CHECK(c.data()[i] == 0.0f);
}

TEST_CASE("gemm_batched multiplies every item", "[ops][gemm]") {
  for (int threads : {1, 2}) {
    asrkit::set_num_threads(threads);
    for (index_t batch : {1, 3, 5}) {
      const auto a = random<double>({batch, 6, 4}, 8);
      const auto b = random<double>({batch, 5, 4}, 9);  // used transposed
      Tensor<double> c({batch, 6, 5});
      asrkit::ops::gemm_batched(Trans::no, Trans::yes, 1.0, a, b, 0.0, c.view());
      for (index_t i = 0; i < batch; ++i)
        for (index_t r = 0; r < 6; ++r)
          for (index_t s = 0; s < 5; ++s) {
            double want = 0;
            for (index_t p = 0; p < 4; ++p) want += a(i, r, p) * b(i, s, p);
            CHECK(c(i, r, s) == Approx(want).epsilon(1e-13));
          }
    }
  }
}

TEST_CASE("gemm rejects bad shapes with ids", "[ops][gemm]") {
  Tensor<float> a({3, 4}), b({5, 2}), c({3, 2}), v({3});
  REQUIRE_THROWS_ID(asrkit::ops::gemm(Trans::no, Trans::no, 1.0f, a, b, 0.0f, c.view()),
                    asrkit::ShapeError, "[asrkit.gemm.3] gemm: op(A) is 3 x 4 and op(B) is 5 x 2");
  REQUIRE_THROWS_ID(asrkit::ops::gemm(Trans::no, Trans::no, 1.0f, v, b, 0.0f, c.view()),
                    asrkit::ShapeError, "[asrkit.gemm.3] gemm: A, B and C must be rank 2");
  REQUIRE_THROWS_ID(asrkit::ops::gemm(Trans::no, Trans::no, -1, 2, 3, 1.0f, a.data(), 4, b.data(),
                                      2, 0.0f, c.data(), 2),
                    asrkit::ValueError, "[asrkit.gemm.1]");
  REQUIRE_THROWS_ID(asrkit::ops::gemm(Trans::no, Trans::no, 3, 2, 4, 1.0f, a.data(), 3, b.data(), 2,
                                      0.0f, c.data(), 2),
                    asrkit::ValueError, "[asrkit.gemm.2]");
  Tensor<float> a3({2, 3, 4}), b3({3, 4, 2}), c3({2, 3, 2});
  REQUIRE_THROWS_ID(asrkit::ops::gemm_batched(Trans::no, Trans::no, 1.0f, a3, b3, 0.0f, c3.view()),
                    asrkit::ShapeError, "[asrkit.gemm.4]");
}

TEST_CASE("gemm results do not depend on the thread count", "[ops][gemm]") {
  // 600 x 2100 spans 2 x 2 cells of the fixed grid; one cell (small) runs on one thread.
  for (auto mnk : {std::array<index_t, 3>{600, 2100, 40}, {30, 20, 700}}) {
    const auto a = random<float>({mnk[0], mnk[2]}, 10);
    const auto b = random<float>({mnk[1], mnk[2]}, 11);
    Tensor<float> c1({mnk[0], mnk[1]}), c2({mnk[0], mnk[1]});
    asrkit::set_num_threads(1);
    asrkit::ops::gemm(Trans::no, Trans::yes, 1.0f, a, b, 0.0f, c1.view());
    asrkit::set_num_threads(2);
    asrkit::ops::gemm(Trans::no, Trans::yes, 1.0f, a, b, 0.0f, c2.view());
    asrkit::set_num_threads(1);
    index_t differ = 0;
    for (index_t i = 0; i < c1.numel(); ++i) differ += c1.data()[i] != c2.data()[i];
    CHECK(differ == 0);
    const auto want = naive(Trans::no, Trans::yes, 1.0f, a, b, 0.0f, c1);
    CHECK(max_abs_diff(c1, want) < 1e-4);
  }
}

TEST_CASE("a row of the gemm result does not depend on the other rows", "[ops][gemm]") {
  // Every element is summed in k order (blocks of kGemmDepth) whatever the tile height or cell
  // it falls in, so row i of a batch equals the product of row i alone, bit for bit. 13 rows:
  // full and partial register tiles; k = 600 crosses two depth blocks.
  const index_t m = 13, n = 50, k = 600;
  for (auto ta : {Trans::no, Trans::yes})
    for (auto tb : {Trans::no, Trans::yes}) {
      const auto a = random<float>(ta == Trans::no ? Shape{m, k} : Shape{k, m}, 12);
      const auto b = random<float>(tb == Trans::no ? Shape{k, n} : Shape{n, k}, 13);
      Tensor<float> all({m, n});
      asrkit::ops::gemm(ta, tb, 1.0f, a, b, 0.0f, all.view());
      index_t differ = 0;
      for (index_t i = 0; i < m; ++i) {
        Tensor<float> row({1, n});  // op(A) row i: row i of A, or column i of the stored [k, m]
        asrkit::ops::gemm<asrkit::Cpu, float>(
            ta, tb, 1, n, k, 1.0f, ta == Trans::no ? a.data() + i * k : a.data() + i,
            ta == Trans::no ? k : m, b.data(), tb == Trans::no ? n : k, 0.0f, row.data(), n);
        for (index_t j = 0; j < n; ++j) differ += row(0, j) != all(i, j);
      }
      INFO("ta=" << (ta == Trans::yes) << " tb=" << (tb == Trans::yes));
      CHECK(differ == 0);
    }
}
