// nn/init.hpp: fans, gains, the statistics of every initialiser, orthogonality, determinism.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>

#include <Eigen/Core>

#include <cmath>
#include <utility>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
namespace init = asrkit::init;

namespace {
struct Stats {
  double mean, var, min, max;
};
template <class T>
Stats stats(const Tensor<T>& t) {
  const auto a = t.flat().template cast<double>().array();
  const double m = a.mean();
  return {m, (a - m).square().mean(), a.minCoeff(), a.maxCoeff()};
}
}  // namespace

TEST_CASE("fans and gains follow PyTorch", "[nn][init]") {
  const auto f = init::fans(Shape{32, 4, 41, 11});
  CHECK(f.fan_in == 4 * 41 * 11);
  CHECK(f.fan_out == 32 * 41 * 11);
  CHECK(init::fans(Shape{3, 5}).fan_in == 5);
  CHECK(init::calculate_gain(init::Nonlinearity::relu) == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain(init::Nonlinearity::tanh) == Approx(5.0 / 3));
  CHECK(init::calculate_gain(init::Nonlinearity::selu) == 0.75);
  CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3)));
  REQUIRE_THROWS_ID(init::fans(Shape{5}), asrkit::ShapeError,
                    "[asrkit.init.1] init: fan_in and fan_out need a weight of rank >= 2 ([out, in, "
                    "...]), got [5]");
}

TEST_CASE("initialiser statistics", "[nn][init]") {
  asrkit::Rng rng(1);
  Tensor<double> w({400, 250});  // fan_in 250, fan_out 400, 100k samples
  const double fi = 250, fo = 400;
  auto near = [](double got, double want, double rel) { return std::fabs(got - want) <= rel * want; };

  init::lecun_normal(w, rng);
  auto s = stats(w);
  CHECK(std::fabs(s.mean) < 0.002);
  CHECK(near(s.var, 1 / fi, 0.02));

  init::xavier_uniform(w, rng);
  s = stats(w);
  const double xb = std::sqrt(6 / (fi + fo));
  CHECK(near(s.var, xb * xb / 3, 0.02));
  CHECK(s.max < xb);
  CHECK(s.min >= -xb);

  init::xavier_normal(w, rng, 2.0);
  CHECK(near(stats(w).var, 4 * 2 / (fi + fo), 0.02));

  init::kaiming_uniform(w, rng);  // gain sqrt(2), fan_in
  s = stats(w);
  CHECK(near(s.var, 2 / fi, 0.02));
  CHECK(s.max < std::sqrt(6 / fi));

  init::kaiming_normal(w, rng, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu);
  CHECK(near(stats(w).var, 2 / fo, 0.02));

  init::uniform(w, rng, -1.0, 3.0);
  s = stats(w);
  CHECK(near(s.mean, 1.0, 0.01));
  CHECK(near(s.var, 16.0 / 12, 0.02));

  init::normal(w, rng, 2.0, 0.5);
  s = stats(w);
  CHECK(near(s.mean, 2.0, 0.01));
  CHECK(near(s.var, 0.25, 0.02));

  init::constant(w, 0.5);
  CHECK(stats(w).min == 0.5);
  init::ones(w);
  CHECK(stats(w).max == 1.0);
  init::zeros(w);
  CHECK(stats(w).max == 0.0);
}

TEST_CASE("PyTorch's default init for Linear / Conv", "[nn][init]") {
  asrkit::Rng rng(2);
  asrkit::Parameter<float> w(Shape{64, 8, 5, 5}), b(Shape{64});
  init::torch_default(w, &b, rng);
  const double bound = 1 / std::sqrt(200.0);  // kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(fan_in))
  const auto sw = stats(w.value);
  CHECK(sw.max < bound);
  CHECK(sw.min >= -bound);
  CHECK(std::fabs(sw.var - bound * bound / 3) < 0.03 * bound * bound / 3);
  const auto sb = stats(b.value);
  CHECK(sb.max < bound);
  CHECK(sb.min >= -bound);
  CHECK(sb.max - sb.min > bound);
}

TEST_CASE("orthogonal and identity", "[nn][init]") {
  asrkit::Rng rng(3);
  for (auto shape : {Shape{20, 20}, Shape{8, 30}, Shape{30, 8}, Shape{6, 2, 3, 3}}) {
    INFO(shape.str());
    Tensor<double> w(shape);
    init::orthogonal(w, rng, 1.5);
    const index_t rows = shape[0], cols = w.numel() / rows;
    Eigen::Map<const asrkit::RowMatrix<double>> m(w.data(), rows, cols);
    const Eigen::MatrixXd g = rows <= cols ? Eigen::MatrixXd(m * m.transpose())
                                           : Eigen::MatrixXd(m.transpose() * m);
    const Eigen::MatrixXd want = 2.25 * Eigen::MatrixXd::Identity(g.rows(), g.cols());
    CHECK((g - want).cwiseAbs().maxCoeff() < 1e-12);
  }
  Tensor<float> e({3, 4}, 9.0f);
  init::identity(e);
  CHECK(e(0, 0) == 1.0f);
  CHECK(e(2, 2) == 1.0f);
  CHECK(e(2, 3) == 0.0f);
  CHECK(e(0, 1) == 0.0f);
  Tensor<float> c({2, 2, 3});
  REQUIRE_THROWS_ID(init::identity(c), asrkit::ShapeError,
                    "[asrkit.init.3] init::identity: needs a rank-2 weight, got [2, 2, 3]");
  REQUIRE_THROWS_ID(init::orthogonal(Tensor<float>({4}), rng), asrkit::ShapeError, "[asrkit.init.1]");
  REQUIRE_THROWS_ID(init::xavier_uniform(c, rng, -1.0), asrkit::ValueError,
                    "[asrkit.init.2] init::xavier_uniform: the scale (gain, std or bound) must be "
                    "finite and >= 0, got -1");
}

TEST_CASE("initialisers are deterministic under a seed", "[nn][init]") {
  // Every initialiser: the same seed gives the same bits (a tensor or its view alike, 1 or 2
  // threads), another seed other values.
  using Fill = void (*)(asrkit::TensorView<float>, asrkit::Rng&);
  const std::pair<const char*, Fill> fills[] = {
      {"lecun_normal", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::lecun_normal(w, r); }},
      {"xavier_uniform", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::xavier_uniform(w, r); }},
      {"xavier_normal", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::xavier_normal(w, r); }},
      {"kaiming_uniform", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::kaiming_uniform(w, r); }},
      {"kaiming_normal", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::kaiming_normal(w, r); }},
      {"orthogonal", [](asrkit::TensorView<float> w, asrkit::Rng& r) { init::orthogonal(w, r); }},
  };
  for (const auto& [name, fill] : fills) {
    INFO(name);
    Tensor<float> a({16, 9}), b({16, 9}), c({16, 9});
    asrkit::Rng r1(42), r2(42), r3(43);
    asrkit::set_num_threads(1);
    fill(a.view(), r1);
    asrkit::set_num_threads(2);
    fill(b.view(), r2);
    fill(c.view(), r3);
    asrkit::set_num_threads(1);
    for (index_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
    index_t differ = 0;
    for (index_t i = 0; i < a.numel(); ++i) differ += a.data()[i] != c.data()[i];
    CHECK(differ == a.numel());
  }
  // A Tensor and its view fill alike (identity draws nothing from the Rng: nothing to vary).
  Tensor<float> a({16, 9}), b({16, 9});
  asrkit::Rng r1(42), r2(42);
  init::lecun_normal(a, r1);
  init::lecun_normal(b.view(), r2);
  for (index_t i = 0; i < a.numel(); ++i) REQUIRE(a.data()[i] == b.data()[i]);
}
