// analysis/cca.hpp, svcca.hpp, similarity.hpp: the properties of SPECS §9.1 (symmetry,
// invariance to invertible maps, ~0 for independent data, known correlations recovered), the
// cca_core rules of §9.2 (thresholded mean, remove_small), SVCCA against CCA of an explicitly
// SVD-reduced copy (both cross-covariance routes), float with a large mean offset, thread-count
// independence, and the errors.
#include <asrkit/analysis/cca.hpp>
#include <asrkit/analysis/similarity.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>

#include <Eigen/Dense>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
namespace an = asrkit::analysis;

namespace {

template <class T>
Tensor<T> normal(index_t n, index_t d, std::uint64_t seed) {
  Tensor<T> t(Shape{n, d});
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}

// x [N, dx] and y [N, dy] sharing latent pairs with canonical correlations `rho` (then mixed by
// random invertible maps, to which CCA is blind).
template <class T>
std::pair<Tensor<T>, Tensor<T>> correlated(index_t n, index_t dx, index_t dy, const std::vector<double>& rho,
                                           std::uint64_t seed, double offset = 0) {
  const auto z = normal<double>(n, dx, seed), e = normal<double>(n, dy, seed + 1);
  const auto mx = normal<double>(dx, dx, seed + 2), my = normal<double>(dy, dy, seed + 3);
  Eigen::MatrixXd ys = e.matrix();
  for (std::size_t k = 0; k < rho.size(); ++k)
    ys.col(static_cast<index_t>(k)) = rho[k] * z.matrix().col(static_cast<index_t>(k)) +
                                      std::sqrt(1 - rho[k] * rho[k]) * e.matrix().col(static_cast<index_t>(k));
  Tensor<T> x(Shape{n, dx}), y(Shape{n, dy});
  x.matrix() = ((z.matrix() * mx.matrix()).array() + offset).template cast<T>();
  y.matrix() = ((ys * my.matrix()).array() - offset).template cast<T>();
  return {std::move(x), std::move(y)};
}

template <class T>
Tensor<T> times(const Tensor<T>& x, const Tensor<double>& m) {
  Tensor<T> out(Shape{x.dim(0), m.dim(1)});
  out.matrix() = (x.matrix().template cast<double>() * m.matrix()).template cast<T>();
  return out;
}

}  // namespace

TEST_CASE("covariance, cross_covariance and project equal the centred products at tile, panel and chunk edges",
          "[analysis][covariance]") {
  // 4096 + 300 rows: two chunks, the last slab partial; 530 columns: three tiles, the last panel
  // partial (18 columns); 45: one partial tile. Column offsets make the means matter.
  const index_t n = an::kChunkRows + 300;
  auto xd = normal<double>(n, 530, 11), yd = normal<double>(n, 45, 12);
  xd.matrix().rowwise() += Eigen::RowVectorXd::LinSpaced(530, -3, 5);
  yd.matrix().rowwise() += Eigen::RowVectorXd::LinSpaced(45, 2, 9);
  auto check = [&](const auto& x, const auto& y, double tolerance) {
    const Eigen::MatrixXd xm = x.matrix().template cast<double>(), ym = y.matrix().template cast<double>();
    const Eigen::MatrixXd xc = xm.rowwise() - xm.colwise().mean(), yc = ym.rowwise() - ym.colwise().mean();
    const Eigen::MatrixXd want_xx = xc.transpose() * xc / double(n - 1), want_xy = xc.transpose() * yc / double(n - 1);
    const Eigen::VectorXd mx = an::column_means(x.view(), "x"), my = an::column_means(y.view(), "y");
    const Eigen::MatrixXd basis = normal<double>(530, 45, 13).matrix();
    for (int threads : {1, 2}) {
      INFO("threads " << threads);
      const int before = asrkit::num_threads();
      asrkit::set_num_threads(threads);
      const Eigen::MatrixXd xx = an::covariance(x.view(), mx), xy = an::cross_covariance(x.view(), mx, y.view(), my);
      // the projection: 4396 = 34 x 128 + 44 rows, 530 = 2 x 256 + 18 columns, k = 45
      const auto p = an::project(x.view(), mx, basis);
      asrkit::set_num_threads(before);
      CHECK((xx - want_xx).cwiseAbs().maxCoeff() < tolerance);
      CHECK((xy - want_xy).cwiseAbs().maxCoeff() < tolerance);
      CHECK(xx == xx.transpose());
      CHECK((p.matrix().template cast<double>() - xc * basis).cwiseAbs().maxCoeff() < tolerance * 100);
    }
  };
  SECTION("double") { check(xd, yd, 1e-12); }
  SECTION("float") {
    Tensor<float> xf(xd.shape()), yf(yd.shape());
    xf.matrix() = xd.matrix().cast<float>();
    yf.matrix() = yd.matrix().cast<float>();
    check(xf, yf, 2e-5);
  }
}

TEST_CASE("CCA recovers known canonical correlations", "[analysis][cca]") {
  const std::vector<double> rho = {0.95, 0.8, 0.5, 0.2};
  const auto [x, y] = correlated<double>(20000, 8, 6, rho, 11);
  const an::CcaResult r = an::cca(x, y);
  REQUIRE(r.rho.size() == 6);
  for (std::size_t k = 0; k < rho.size(); ++k) CHECK(r.rho[k] == Approx(rho[k]).margin(0.02));
  CHECK(r.rho[4] < 0.05);  // the rest is sampling noise, ~1/sqrt(N)
  CHECK(std::is_sorted(r.rho.rbegin(), r.rho.rend()));
  const double mean = std::accumulate(r.rho.begin(), r.rho.end(), 0.0) / 6;
  CHECK(r.mean == Approx(mean).epsilon(1e-14));
  CHECK(r.kept_neurons_x == 8);
  CHECK(r.kept_neurons_y == 6);
}

TEST_CASE("CCA is symmetric and blind to invertible linear maps", "[analysis][cca]") {
  const auto [x, y] = correlated<double>(3000, 7, 5, {0.9, 0.4}, 21);
  const an::CcaResult xy = an::cca(x, y), yx = an::cca(y, x);
  REQUIRE(xy.rho.size() == yx.rho.size());
  for (std::size_t i = 0; i < xy.rho.size(); ++i) CHECK(xy.rho[i] == Approx(yx.rho[i]).margin(1e-12));
  // SVCCA(A, A·M) = 1 for invertible M (SPECS §9.1), and CCA(x·M1, y·M2) = CCA(x, y).
  const auto m = normal<double>(7, 7, 22);
  const an::CcaResult self = an::cca(x, times(x, m));
  for (double v : self.rho) CHECK(v == Approx(1.0).margin(1e-8));
  an::SvccaOptions all;
  all.variance_kept = 1.0;  // the 99% cut is not invariant to non-orthogonal maps; keeping all is
  CHECK(an::svcca(x, times(x, m), all).mean == Approx(1.0).margin(1e-8));
  // On activations of rank 4 (in 7 neurons) the 99% rule keeps the same subspace on both sides.
  const Tensor<double> low = times(normal<double>(3000, 4, 24), normal<double>(4, 7, 25));
  const an::SvccaResult s = an::svcca(low, times(low, m));
  CHECK(s.kept_x == 4);
  CHECK(s.kept_y == 4);
  CHECK(s.mean == Approx(1.0).margin(1e-8));
  const an::CcaResult mapped = an::cca(times(x, m), times(y, normal<double>(5, 5, 23)));
  for (std::size_t i = 0; i < xy.rho.size(); ++i) CHECK(mapped.rho[i] == Approx(xy.rho[i]).margin(1e-9));
}

TEST_CASE("CCA of independent activations is near 0 when N >> D", "[analysis][cca]") {
  const auto x = normal<double>(40000, 10, 31), y = normal<double>(40000, 8, 32);
  const an::CcaResult r = an::cca(x, y);
  CHECK(r.mean < 0.03);
  CHECK(r.rho[0] < 0.05);
  // ...and spuriously high when N is barely above D (the tutorial's warning).
  CHECK(an::cca(normal<double>(24, 10, 33), normal<double>(24, 8, 34)).mean > 0.4);
}

TEST_CASE("the thresholded mean keeps rho[:idx], idx the first prefix reaching the threshold", "[analysis][cca]") {
  an::CcaResult r;
  r.rho = {0.9, 0.6, 0.3, 0.15, 0.05};  // sum 2.0; prefix shares 0.45, 0.75, 0.9, 0.975, 1.0
  an::detail::summarise(r, 0.98);       // no i < 5 reaches 0.98: all five
  CHECK(r.threshold_index == 5);
  CHECK(r.thresholded_mean == Approx(0.4));
  an::detail::summarise(r, 0.9);  // sum(rho[:3]) / sum = 0.9 >= 0.9
  CHECK(r.threshold_index == 3);
  CHECK(r.thresholded_mean == Approx(0.6));
  an::detail::summarise(r, 0.2);
  CHECK(r.threshold_index == 1);
  CHECK(r.thresholded_mean == Approx(0.9));
  CHECK(r.mean == Approx(0.4));
  CHECK(r.mean_squared == Approx((0.81 + 0.36 + 0.09 + 0.0225 + 0.0025) / 5));
  // through cca(): the option reaches the rule
  const auto [x, y] = correlated<double>(5000, 6, 6, {0.99, 0.9, 0.1}, 41);
  an::CcaOptions o;
  o.threshold = 0.5;
  const an::CcaResult c = an::cca(x, y, o);
  CHECK(c.threshold_index == 2);  // 0.99 / sum(rho) < 0.5 <= (0.99 + 0.9) / sum(rho)
  CHECK(c.thresholded_mean == Approx((c.rho[0] + c.rho[1]) / 2));
}

TEST_CASE("remove_small drops a dead neuron (constant column)", "[analysis][cca]") {
  const auto [x, y] = correlated<double>(4000, 5, 4, {0.9, 0.5}, 51);
  Tensor<double> xd(Shape{4000, 6});
  xd.matrix().leftCols(5) = x.matrix();
  xd.matrix().col(5).setConstant(3.0);
  const an::CcaResult with = an::cca(xd, y), without = an::cca(x, y);
  CHECK(with.kept_neurons_x == 5);
  REQUIRE(with.rho.size() == without.rho.size());
  for (std::size_t i = 0; i < with.rho.size(); ++i) CHECK(with.rho[i] == Approx(without.rho[i]).margin(1e-9));
  // every neuron dead: no correlation at all (cca_core would divide by zero)
  Tensor<double> dead(Shape{4000, 3}, 1.0);
  const an::CcaResult none = an::cca(dead, y);
  CHECK(none.rho.empty());
  CHECK(none.mean == 0);
  CHECK(an::svcca(dead, y).mean == 0);
}

TEST_CASE("PWCCA weights the smaller side's canonical variates", "[analysis][pwcca]") {
  const auto [x, y] = correlated<double>(6000, 6, 4, {0.95, 0.7, 0.3}, 61);
  const an::CcaResult r = an::cca(x, y);
  REQUIRE(r.pwcca_weights.size() == r.rho.size());
  double sum = 0;
  for (double a : r.pwcca_weights) {
    CHECK(a >= 0);
    sum += a;
  }
  CHECK(sum == Approx(1.0));
  const double p = an::pwcca(x, y);
  CHECK(p > r.rho.back());
  CHECK(p < r.rho.front());
  CHECK(an::pwcca(x, x) == Approx(1.0).margin(1e-8));
  // y (4 neurons) is the weighted side either way round
  CHECK(an::pwcca(y, x) == Approx(p).margin(1e-9));
}

TEST_CASE("SVCCA equals CCA of the SVD-reduced activations (both cross-covariance routes)", "[analysis][svcca]") {
  const index_t n = 3000;
  auto x = normal<double>(n, 12, 71), y = normal<double>(n, 9, 72);
  // decaying spectra and some shared signal
  for (index_t j = 0; j < 12; ++j) x.matrix().col(j) *= std::pow(0.6, double(j));
  y.matrix().leftCols(4) += x.matrix().leftCols(4);
  auto reduced = [&](const Tensor<double>& a, index_t k) {
    const Eigen::MatrixXd c = a.matrix().rowwise() - a.matrix().colwise().mean();
    Eigen::BDCSVD<Eigen::MatrixXd> svd(c, Eigen::ComputeThinU | Eigen::ComputeThinV);
    Tensor<double> out(Shape{a.dim(0), k});
    out.matrix() = c * svd.matrixV().leftCols(k);
    return out;
  };
  for (index_t keep : {3, 12}) {  // 3: project first; 12 (all): the full cross-covariance
    INFO("keep " << keep);
    an::SvccaOptions o;
    o.keep_dims = keep;
    const an::SvccaResult s = an::svcca(x, y, o);
    CHECK(s.kept_x == std::min<index_t>(keep, 12));
    CHECK(s.kept_y == std::min<index_t>(keep, 9));
    const an::CcaResult want = an::cca(reduced(x, s.kept_x), reduced(y, s.kept_y));
    REQUIRE(s.rho.size() == want.rho.size());
    for (std::size_t i = 0; i < want.rho.size(); ++i) CHECK(s.rho[i] == Approx(want.rho[i]).margin(1e-9));
    CHECK(s.pwcca == Approx(an::pwcca(reduced(x, s.kept_x), reduced(y, s.kept_y))).margin(1e-9));
  }
  // The 99% rule: the smallest k whose leading variances reach 0.99 of the total.
  const an::SvdReduction red = an::svd_reduction(x);
  const Eigen::VectorXd& w = red.variances;
  index_t k = 0;
  for (double sum = 0; sum < 0.99 * w.sum(); ++k) sum += w(k);
  CHECK(red.kept() == k);
  CHECK(an::svcca(x, y).kept_x == k);
  CHECK(k < 12);
  // variances are the squared singular values of the centred data over N - 1
  const Eigen::MatrixXd c = x.matrix().rowwise() - x.matrix().colwise().mean();
  const Eigen::VectorXd sv = Eigen::BDCSVD<Eigen::MatrixXd>(c).singularValues();
  for (index_t i = 0; i < 12; ++i) CHECK(w(i) == Approx(sv(i) * sv(i) / (n - 1)).epsilon(1e-10));
}

TEST_CASE("float SVCCA survives a large mean offset and matches double", "[analysis][svcca]") {
  const auto [xd, yd] = correlated<double>(20000, 16, 12, {0.97, 0.8, 0.5}, 81);
  const auto [xf, yf] = correlated<float>(20000, 16, 12, {0.97, 0.8, 0.5}, 81, 1000.0);
  const an::SvccaResult d = an::svcca(xd, yd), f = an::svcca(xf, yf);
  CHECK(f.kept_x == d.kept_x);
  REQUIRE(f.rho.size() == d.rho.size());
  // the offset costs float its last ~3 digits of the data itself (1000 + O(1) in 24 bits)
  for (std::size_t i = 0; i < d.rho.size(); ++i) CHECK(f.rho[i] == Approx(d.rho[i]).margin(2e-3));
  CHECK(f.mean == Approx(d.mean).margin(1e-3));
}

TEST_CASE("results do not depend on the thread count", "[analysis][svcca]") {
  const auto [x, y] = correlated<float>(4200, 530, 40, {0.9, 0.5}, 91);  // 2 row chunks, 3 tiles of x
  const int before = asrkit::num_threads();
  asrkit::set_num_threads(1);
  const an::SvccaResult one = an::svcca(x, y);
  asrkit::set_num_threads(2);
  const an::SvccaResult two = an::svcca(x, y);
  asrkit::set_num_threads(before);
  REQUIRE(one.rho.size() == two.rho.size());
  for (std::size_t i = 0; i < one.rho.size(); ++i) CHECK(one.rho[i] == two.rho[i]);
  CHECK(one.pwcca == two.pwcca);
}

TEST_CASE("the similarity matrix is the pairwise SVCCA", "[analysis][similarity]") {
  const auto [a, b] = correlated<double>(2500, 8, 6, {0.9, 0.6}, 101);
  const auto c = normal<double>(2500, 5, 102);
  const std::vector<Tensor<double>> layers = {a, b, c};
  const auto m = an::similarity_matrix(layers);
  REQUIRE(m.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(m[i][i] == Approx(1.0).margin(1e-9));
    for (std::size_t j = 0; j < 3; ++j) {
      CHECK(m[i][j] == Approx(m[j][i]).margin(1e-12));
      CHECK(m[i][j] == Approx(an::svcca(layers[i], layers[j]).mean).margin(1e-10));
    }
  }
  CHECK(m[0][1] > 0.2);
  CHECK(m[0][2] < 0.05);
  const auto t = an::similarity_matrix(layers, {}, an::SimilarityValue::thresholded_mean);
  CHECK(t[0][1] == Approx(an::svcca(a, b).thresholded_mean).margin(1e-10));
  CHECK(an::similarity_matrix(std::vector<Tensor<double>>{}).empty());
}

TEST_CASE("svcca_pairs gives the requested pairs of the pairwise SVCCA", "[analysis][similarity]") {
  const auto [a, b] = correlated<double>(2500, 8, 6, {0.9, 0.6}, 101);
  const auto c = normal<double>(2500, 5, 102);
  const std::vector<Tensor<double>> layers = {a, b, c};
  const auto r = an::svcca_pairs(layers, {{0, 1}, {2, 1}, {1, 1}});
  REQUIRE(r.size() == 3);
  CHECK(r[0].mean == Approx(an::svcca(a, b).mean).margin(1e-10));
  CHECK(r[0].pwcca == Approx(an::svcca(a, b).pwcca).margin(1e-10));
  CHECK(r[1].mean == Approx(an::svcca(c, b).mean).margin(1e-10));
  CHECK(r[1].kept_x == an::svcca(c, b).kept_x);
  CHECK(r[2].mean == Approx(1.0).margin(1e-9));
  CHECK(an::svcca_pairs(layers, {}).empty());
  REQUIRE_THROWS_ID(an::svcca_pairs(layers, {{0, 3}}), asrkit::ValueError,
                    "svcca_pairs: pair (0, 3) names a layer outside [0, 3)");
}

TEST_CASE("CCA and SVCCA reject bad input with clear errors", "[analysis][cca][errors]") {
  const auto x = normal<float>(50, 4, 1), y = normal<float>(40, 3, 2);
  REQUIRE_THROWS_ID(an::cca(x, y), asrkit::ShapeError, "[asrkit.svcca.2] arguments x and y must hold the same "
                                                       "data points (rows): x has shape [50, 4], y has shape [40, 3]");
  REQUIRE_THROWS_ID(an::svcca(x, y), asrkit::ShapeError, "svcca.2");
  const auto wide = normal<float>(50, 50, 3);
  REQUIRE_THROWS_ID(an::cca(wide, x), asrkit::ValueError,
                    "[asrkit.svcca.3] argument x: 50 neurons need more than 50 data points (rows), got 50");
  const Tensor<float> flat(Shape{200});
  REQUIRE_THROWS_ID(an::cca(flat.view().reshape(Shape{2, 10, 10}), x.view()), asrkit::ShapeError, "svcca.1");
  const Tensor<float> empty(Shape{0, 4});
  REQUIRE_THROWS_ID(an::cca(empty, empty), asrkit::ShapeError,
                    "[asrkit.svcca.5] argument x: expected at least one data point and one neuron, got shape [0, 4]");
  auto bad = normal<float>(50, 3, 4);
  bad(17, 2) = std::numeric_limits<float>::quiet_NaN();
  const auto x3 = normal<float>(50, 3, 5);
  REQUIRE_THROWS_ID(an::cca(x3, bad), asrkit::ValueError, "[asrkit.svcca.4] argument y: element (17, 2) is nan");
  bad(17, 2) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(an::svcca(bad, x3), asrkit::ValueError, "[asrkit.svcca.4] argument x: element (17, 2) is inf");
  an::CcaOptions o;
  o.threshold = 0;
  REQUIRE_THROWS_ID(an::cca(x3, x3, o), asrkit::ValueError, "[asrkit.svcca.6] CcaOptions::threshold must be in (0, 1], got 0");
  o = {};
  o.epsilon = -1;
  REQUIRE_THROWS_ID(an::pwcca(x3, x3, o), asrkit::ValueError, "svcca.6");
  an::SvccaOptions so;
  so.variance_kept = 1.5;
  REQUIRE_THROWS_ID(an::svcca(x3, x3, so), asrkit::ValueError, "SvccaOptions::variance_kept must be in (0, 1], got 1.5");
  so = {};
  so.keep_dims = -2;
  REQUIRE_THROWS_ID(an::svcca(x3, x3, so), asrkit::ValueError, "svcca.6");
  REQUIRE_THROWS_ID(an::similarity_matrix(std::vector<Tensor<float>>{x3, normal<float>(49, 3, 6)}), asrkit::ShapeError,
                    "[asrkit.svcca.2] argument layers[1] must hold the same data points (rows) as layers[0]: "
                    "layers[0] has shape [50, 3], layers[1] has shape [49, 3]");
  REQUIRE_THROWS_ID(an::similarity_matrix(std::vector<Tensor<float>>{x3, wide}), asrkit::ValueError,
                    "[asrkit.svcca.3] argument layers[1]: 50 neurons");
}
