// nn/bn_lstm.hpp and nn/residual_lstm.hpp: every gradient (input, every parameter incl. the γ's
// and β_c, the initial state) against finite differences in double with variable lengths, uni-
// and bidirectional, in training mode (batch statistics); initialisation (SPECS §4.3), running
// statistics, population statistics at inference, padding invariance, the shortcut, streaming
// and the error ids. PyTorch parity: tests/reference/bn_lstm_*.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/bn_lstm.hpp>
#include <asrkit/nn/residual_lstm.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::TensorView;

namespace {

Tensor<double> randn(const Shape& s, std::uint64_t seed, double stddev = 1.0) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, stddev);
  return t;
}

Tensor<std::int32_t> lengths_of(std::vector<std::int32_t> v) {
  Tensor<std::int32_t> t(Shape{static_cast<index_t>(v.size())});
  for (std::size_t i = 0; i < v.size(); ++i) t(static_cast<index_t>(i)) = v[i];
  return t;
}

double max_abs_diff(TensorView<const double> a, TensorView<const double> b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(a.data()[i] - b.data()[i]));
  return worst;
}

// Moves every parameter away from its initial value, so no gradient is checked at a special point
// (γ = 0.1 everywhere, zero biases, ...).
template <class Layer>
void perturb(Layer& layer, std::uint64_t seed) {
  asrkit::Rng rng(seed);
  layer.for_each_parameter([&](const std::string&, asrkit::Parameter<double>& p) {
    for (index_t i = 0; i < p.value.numel(); ++i) p.value.data()[i] += 0.3 * rng.normal();
  });
}

// The gradient checks run many tiny forwards: one thread avoids a thread team per step's GEMM
// (the thread-count test below covers the parallel path).
struct OneThread {
  int saved = asrkit::num_threads();
  OneThread() { asrkit::set_num_threads(1); }
  ~OneThread() { asrkit::set_num_threads(saved); }
};

/// dL/dx and dL/d(every parameter) of a training forward `fwd(layer, x)` against central
/// differences, L = sum(w ⊙ y). Each loss evaluation starts from a copy of the initial layer (the
/// training forward updates the running statistics). The tolerance is 1e-5, not 1e-6: a step
/// with two active items normalises two values, whose large curvature leaves O(h²) differences
/// of a few 1e-6 (a wrong gradient is off by orders of magnitude more).
template <class Layer, class Fwd>
void check_gradients(const Layer& start, Tensor<double>& x, Fwd fwd, double tol = 1e-5) {
  const OneThread one;
  Layer layer = start, initial = start;
  const auto y = fwd(layer, x);
  const auto w = randn(y.shape(), 99);
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(w.view());
  auto loss = [&] {
    Layer l = initial;
    return asrkit_test::dot(fwd(l, x), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < tol);
  std::vector<Tensor<double>*> values;
  std::vector<const Tensor<double>*> grads;
  std::vector<std::string> names;
  initial.for_each_parameter([&](const std::string& n, asrkit::Parameter<double>& p) {
    values.push_back(&p.value);
    names.push_back(n);
  });
  layer.for_each_parameter(
      [&](const std::string&, asrkit::Parameter<double>& p) { grads.push_back(&p.grad); });
  REQUIRE(values.size() == grads.size());
  for (std::size_t k = 0; k < values.size(); ++k) {
    INFO("parameter " << names[k]);
    CHECK(asrkit_test::max_gradient_error(loss, *values[k], *grads[k]) < tol);
  }
}

/// dL/d(initial h, c) of a unidirectional layer (forward_train with a state).
template <class Layer>
void check_state_gradients(const Layer& start, const Tensor<double>& x,
                           const Tensor<std::int32_t>& lengths, asrkit::RecurrentState<double> s0) {
  const OneThread one;
  Layer layer = start;
  auto s = s0;
  const auto y = layer.forward_train(x.view(), lengths.view(), s);
  const auto w = randn(y.shape(), 98);
  layer.backward(w.view());
  const auto& g = layer.initial_state_grad();
  auto loss = [&] {
    Layer l = start;
    auto st = s0;
    return asrkit_test::dot(l.forward_train(x.view(), lengths.view(), st), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, s0.h, g.h) < 1e-5);
  CHECK(asrkit_test::max_gradient_error(loss, s0.c, g.c) < 1e-5);
}

asrkit::BNLSTM<double> small_bnlstm(bool bidirectional, asrkit::BNLSTMInputNorm norm,
                                    std::uint64_t seed) {
  asrkit::BNLSTMOptions o;
  o.max_steps = 5;
  o.bidirectional = bidirectional;
  o.input_norm = norm;
  asrkit::Rng rng(seed);
  asrkit::BNLSTM<double> l(3, 3, o, rng);
  perturb(l, seed + 1);
  return l;
}

asrkit::ResidualLSTM<double> small_reslstm(index_t input, bool bidirectional, bool peepholes,
                                           std::uint64_t seed) {
  asrkit::ResidualLSTMOptions o;
  o.cell_size = 3;
  o.output_size = 2;
  o.peepholes = peepholes;
  o.bidirectional = bidirectional;
  asrkit::Rng rng(seed);
  asrkit::ResidualLSTM<double> l(input, o, rng);
  perturb(l, seed + 1);
  return l;
}

// Lengths {5, 3, 4, 1}: at step 4 only one item is active, so that step uses the population
// statistics (SPECS §4.4); the others use batch statistics.
const auto kLengths = lengths_of({5, 3, 4, 1});

}  // namespace

// ---- BN-LSTM ----------------------------------------------------------------------------------

TEST_CASE("BNLSTM: initialisation of SPECS §4.3 and state-dict names", "[nn][bn_lstm]") {
  asrkit::BNLSTMOptions o;
  o.max_steps = 7;
  asrkit::BNLSTM<double> l(8, 4, o);
  auto& cell = l.cell();
  for (index_t j = 0; j < 16; ++j) {
    CHECK(cell.bn_hh().weight().value(j) == Approx(0.1));
    CHECK(cell.bn_ih_per_step()->weight().value(j) == Approx(0.1));
    CHECK(cell.bn_hh().bias().value(j) == (j >= 4 && j < 8 ? 1.0 : 0.0));  // forget gate: 1
  }
  for (index_t j = 0; j < 4; ++j) {
    CHECK(cell.bn_c().weight().value(j) == Approx(0.1));
    CHECK(cell.bn_c().bias().value(j) == 0.0);
  }
  // Each gate's W_h [4, 4] is orthogonal; each gate's W_x [4, 8] has orthonormal rows.
  auto check_orthonormal_rows = [](const double* w, index_t rows, index_t cols) {
    for (index_t a = 0; a < rows; ++a)
      for (index_t b = 0; b < rows; ++b) {
        double s = 0;
        for (index_t k = 0; k < cols; ++k) s += w[a * cols + k] * w[b * cols + k];
        CHECK(s == Approx(a == b ? 1.0 : 0.0).margin(1e-12));
      }
  };
  for (index_t g = 0; g < 4; ++g) {
    check_orthonormal_rows(cell.weight_hh().value.data() + g * 16, 4, 4);
    check_orthonormal_rows(l.weight_ih().value.data() + g * 32, 4, 8);
  }
  std::vector<std::string> names;
  l.for_each_parameter(
      [&](const std::string& n, auto& p) { names.push_back(n + p.value.shape().str()); });
  CHECK(names == std::vector<std::string>{"weight_ih_l0[16, 8]", "weight_hh_l0[16, 4]",
                                          "bias_l0[16]", "gamma_ih_l0[16]", "gamma_hh_l0[16]",
                                          "gamma_c_l0[4]", "beta_c_l0[4]"});
  names.clear();
  l.for_each_buffer([&](const std::string& n, auto& b) { names.push_back(n + b.shape().str()); });
  CHECK(names == std::vector<std::string>{"running_mean_ih_l0[7, 16]", "running_var_ih_l0[7, 16]",
                                          "num_batches_tracked_ih_l0[7]",
                                          "running_mean_hh_l0[7, 16]", "running_var_hh_l0[7, 16]",
                                          "num_batches_tracked_hh_l0[7]", "running_mean_c_l0[7, 4]",
                                          "running_var_c_l0[7, 4]", "num_batches_tracked_c_l0[7]"});
}

TEST_CASE("BNLSTM backward matches finite differences (per-step input BN, lengths)",
          "[nn][bn_lstm][gradcheck]") {
  auto x = randn({5, 4, 3}, 1);
  check_gradients(small_bnlstm(false, asrkit::BNLSTMInputNorm::per_step, 2), x,
                  [](auto& l, const Tensor<double>& in) {
                    return l.forward_train(in.view(), kLengths.view());
                  });
}

TEST_CASE("BNLSTM backward matches finite differences (bidirectional, both input BNs)",
          "[nn][bn_lstm][gradcheck]") {
  auto x = randn({5, 4, 3}, 3);
  auto fwd = [](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), kLengths.view());
  };
  SECTION("sequence-wise input BN (BN-e*), concat") {
    check_gradients(small_bnlstm(true, asrkit::BNLSTMInputNorm::sequence, 4), x, fwd);
  }
  SECTION("per-step input BN, shared input weights, sum") {
    asrkit::BNLSTMOptions o;
    o.max_steps = 5;
    o.bidirectional = true;
    o.share_input_weights = true;
    o.merge = asrkit::RecurrentMerge::sum;
    asrkit::BNLSTM<double> l(3, 3, o);
    perturb(l, 5);
    check_gradients(l, x, fwd);
  }
  SECTION("no lengths") {
    check_gradients(small_bnlstm(true, asrkit::BNLSTMInputNorm::per_step, 6), x,
                    [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
  }
}

TEST_CASE("BNLSTM initial-state gradient matches finite differences", "[nn][bn_lstm][gradcheck]") {
  asrkit::RecurrentState<double> s0{randn({4, 3}, 7), randn({4, 3}, 8)};
  check_state_gradients(small_bnlstm(false, asrkit::BNLSTMInputNorm::per_step, 9),
                        randn({5, 4, 3}, 10), kLengths, s0);
}

TEST_CASE("BNLSTM training updates the per-step population statistics", "[nn][bn_lstm]") {
  asrkit::BNLSTMOptions o;
  o.max_steps = 6;
  asrkit::BNLSTM<double> l(3, 2, o);
  const auto x = randn({4, 5, 3}, 11);
  const auto lengths = lengths_of({4, 4, 2, 3, 1});
  l.forward_train(x.view(), lengths.view());
  auto& cell = l.cell();
  const auto& w = l.weight_ih().value;
  for (index_t t = 0; t < 4; ++t) {
    // Input term: running_mean_ih[t] = 0.9·0 + 0.1·mean of x_t W_x^T over the active items.
    const index_t active = t == 0 ? 5 : t == 1 ? 4 : t == 2 ? 3 : 2;
    for (index_t j = 0; j < 8; ++j) {
      double mean = 0;
      for (index_t b = 0; b < 5; ++b) {
        if (t >= lengths(b)) continue;
        double s = 0;
        for (index_t k = 0; k < 3; ++k) s += x(t, b, k) * w(j, k);
        mean += s / static_cast<double>(active);
      }
      CHECK(cell.bn_ih_per_step()->running_mean()(t, j) == Approx(0.1 * mean).margin(1e-14));
    }
    CHECK(cell.bn_hh().num_batches_tracked()(t) == 1);
  }
  // Step 0: W_h h_0 = 0 for every item, so its batch variance is 0: 0.9·1 + 0.1·0.
  for (index_t j = 0; j < 8; ++j)
    CHECK(cell.bn_hh().running_var()(0, j) == Approx(0.9).epsilon(1e-14));
  for (index_t t = 4; t < 6; ++t) CHECK(cell.bn_c().num_batches_tracked()(t) == 0);
}

TEST_CASE("BNLSTM inference uses population statistics; training uses the batch's",
          "[nn][bn_lstm]") {
  auto l = small_bnlstm(false, asrkit::BNLSTMInputNorm::per_step, 12);
  const auto x = randn({5, 4, 3}, 13);
  const auto lengths = lengths_of({5, 5, 5, 5});
  Tensor<double> first(Shape{5, 1, 3});
  for (index_t t = 0; t < 5; ++t)
    for (index_t k = 0; k < 3; ++k) first(t, 0, k) = x(t, 0, k);
  // Inference: item 0's output does not depend on the rest of the batch.
  const auto y_batch = l.forward(x.view(), lengths.view());
  const auto y_alone = l.forward(first.view());
  for (index_t t = 0; t < 5; ++t)
    for (index_t j = 0; j < 3; ++j)
      CHECK(y_batch(t, 0, j) == Approx(y_alone(t, 0, j)).epsilon(1e-12));
  // Training normalises with the batch: item 0's output differs from the inference one.
  auto copy = l;
  const auto y_train = copy.forward_train(x.view(), lengths.view());
  CHECK(max_abs_diff(y_train[0], y_batch[0]) > 1e-3);
  // Longer than T_max at inference is fine (steps >= T_max use step T_max − 1); training is not.
  const auto longer = randn({8, 2, 3}, 14);
  CHECK(l.forward(longer.view()).shape() == Shape{8, 2, 3});
  REQUIRE_THROWS_ID(l.forward_train(longer.view()), asrkit::ValueError, "[asrkit.bnlstm.2]");
}

TEST_CASE("BNLSTM: padded frames change nothing and get zero gradients", "[nn][bn_lstm]") {
  for (auto norm : {asrkit::BNLSTMInputNorm::per_step, asrkit::BNLSTMInputNorm::sequence}) {
    auto a = small_bnlstm(true, norm, 15), b = a;
    auto x = randn({5, 4, 3}, 16), x2 = x;
    for (index_t t = 0; t < 5; ++t)
      for (index_t i = 0; i < 4; ++i)
        if (t >= kLengths(i))
          for (index_t k = 0; k < 3; ++k) x2(t, i, k) = 100.0 + t;
    const auto ya = a.forward_train(x.view(), kLengths.view());
    const auto yb = b.forward_train(x2.view(), kLengths.view());
    CHECK(max_abs_diff(ya, yb) == 0.0);
    CHECK(ya(4, 1, 0) == 0.0);
    const auto dy = randn(ya.shape(), 17);
    const auto da = a.backward(dy.view());
    CHECK(max_abs_diff(da, b.backward(dy.view())) == 0.0);
    CHECK(da(3, 3, 2) == 0.0);
    CHECK(max_abs_diff(a.forward(x.view(), kLengths.view()),
                       b.forward(x2.view(), kLengths.view())) == 0.0);
  }
}

TEST_CASE("BNLSTMCell errors", "[nn][bn_lstm]") {
  REQUIRE_THROWS_ID(asrkit::BNLSTMCell<double>(asrkit::BNLSTMCellOptions{0}), asrkit::ValueError,
                    "[asrkit.bnlstm.1]");
  asrkit::BNLSTMCellOptions o;
  o.hidden_size = 2;
  o.max_steps = 4;
  asrkit::BNLSTMCell<double> cell(o);
  const auto xp = randn({3, 2, 8}, 18);
  REQUIRE_THROWS_ID(cell.backward(randn({3, 2, 2}, 19).view()), asrkit::ValueError,
                    "[asrkit.bnlstm.3]");
  REQUIRE_THROWS_ID(cell.run(randn({3, 2, 7}, 20).view(), nullptr, nullptr), asrkit::ShapeError,
                    "[asrkit.bnlstm.4]");
  REQUIRE_THROWS_ID(cell.run_train(randn({5, 2, 8}, 21).view(), nullptr, nullptr),
                    asrkit::ValueError, "[asrkit.bnlstm.2]");
  cell.run_train(xp.view(), nullptr, nullptr);
  REQUIRE_THROWS_ID(cell.backward(randn({3, 2, 3}, 22).view()), asrkit::ShapeError,
                    "[asrkit.bnlstm.4]");
  asrkit::RecurrentState<double> bad{randn({2, 3}, 23), randn({2, 3}, 24)};
  REQUIRE_THROWS_ID(cell.run(xp.view(), nullptr, &bad), asrkit::ShapeError, "[asrkit.bnlstm.5]");
}

TEST_CASE("BNLSTM and ResidualLSTM give the same bits at 1 and 2 threads",
          "[nn][bn_lstm][residual_lstm]") {
  auto run = [](auto layer, index_t input, int threads) {
    const OneThread restore;
    asrkit::set_num_threads(threads);
    const auto x = randn({5, 4, input}, 60);
    std::vector<Tensor<double>> out{layer.forward_train(x.view(), kLengths.view())};
    out.push_back(layer.backward(randn(out[0].shape(), 61).view()));
    out.push_back(layer.forward(x.view(), kLengths.view()));
    layer.for_each_parameter(
        [&](const std::string&, asrkit::Parameter<double>& p) { out.push_back(p.grad); });
    return out;
  };
  const auto bn = small_bnlstm(true, asrkit::BNLSTMInputNorm::per_step, 62);
  const auto res = small_reslstm(2, true, true, 63);
  const auto bn1 = run(bn, 3, 1), bn2 = run(bn, 3, 2), res1 = run(res, 2, 1), res2 = run(res, 2, 2);
  for (std::size_t k = 0; k < bn1.size(); ++k) CHECK(max_abs_diff(bn1[k], bn2[k]) == 0.0);
  for (std::size_t k = 0; k < res1.size(); ++k) CHECK(max_abs_diff(res1[k], res2[k]) == 0.0);
}

// ---- residual LSTM ------------------------------------------------------------------------------

TEST_CASE("ResidualLSTM: projection columns, parameter names and shapes", "[nn][residual_lstm]") {
  asrkit::ResidualLSTMOptions o;  // d_cell 1024, d_out 512, peepholes
  asrkit::ResidualLSTM<float> same(512, o), other(80, o);
  CHECK(same.cell().identity_shortcut());
  CHECK(same.cell().input_columns() == 3 * 1024 + 512);
  CHECK(other.cell().input_columns() == 3 * 1024 + 2 * 512);  // + the shortcut W_h x
  std::vector<std::string> names;
  other.for_each_parameter(
      [&](const std::string& n, auto& p) { names.push_back(n + p.value.shape().str()); });
  CHECK(names == std::vector<std::string>{"weight_ih_l0[4096, 80]", "bias_ih_l0[4096]",
                                          "weight_hh_l0[3584, 512]", "weight_hr_l0[512, 1024]",
                                          "weight_ci_l0[1024]", "weight_cf_l0[1024]",
                                          "weight_co_l0[512, 1024]"});
}

TEST_CASE("ResidualLSTM backward matches finite differences", "[nn][residual_lstm][gradcheck]") {
  auto fwd = [](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), kLengths.view());
  };
  SECTION("learned shortcut, peepholes") {
    auto x = randn({5, 4, 3}, 30);
    check_gradients(small_reslstm(3, false, true, 31), x, fwd);
  }
  SECTION("identity shortcut, bidirectional") {
    auto x = randn({5, 4, 2}, 32);
    check_gradients(small_reslstm(2, true, true, 33), x, fwd);
  }
  SECTION("learned shortcut, bidirectional, no peepholes") {
    auto x = randn({5, 4, 3}, 34);
    check_gradients(small_reslstm(3, true, false, 35), x, fwd);
  }
  SECTION("initial state") {
    asrkit::RecurrentState<double> s0{randn({4, 2}, 36), randn({4, 3}, 37)};
    check_state_gradients(small_reslstm(2, false, true, 38), randn({5, 4, 2}, 39), kLengths, s0);
  }
}

TEST_CASE("ResidualLSTM: the identity shortcut passes x through the output gate",
          "[nn][residual_lstm]") {
  // W_p = 0 and o saturated at 1 (bias 50): h_t = m_t + x_t = x_t on every valid frame.
  auto l = small_reslstm(2, true, true, 40);
  for (index_t d = 0; d < 2; ++d) {
    l.cell(d).for_each_parameter([](const std::string& n, asrkit::Parameter<double>& p) {
      if (n == "weight_hr") p.value.fill(0.0);
    });
    for (index_t j = 9; j < 11; ++j) l.bias_ih(d).value(j) = 50.0;  // o: columns 3 d_cell ..
  }
  const auto x = randn({5, 4, 2}, 41);
  const auto y = l.forward(x.view(), kLengths.view());
  for (index_t t = 0; t < 5; ++t)
    for (index_t b = 0; b < 4; ++b)
      for (index_t j = 0; j < 2; ++j) {
        const double want = t < kLengths(b) ? x(t, b, j) : 0.0;
        CHECK(y(t, b, j) == Approx(want).margin(1e-12));      // forward direction
        CHECK(y(t, b, 2 + j) == Approx(want).margin(1e-12));  // reverse direction
      }
}

TEST_CASE("ResidualLSTM streaming: chunk after chunk equals the whole sequence",
          "[nn][residual_lstm]") {
  for (index_t input : {index_t{2}, index_t{3}}) {
    const auto l = small_reslstm(input, false, true, 42);
    const auto x = randn({7, 3, input}, 43);
    const auto lengths = lengths_of({7, 4, 6});
    const auto full = l.forward(x.view(), lengths.view());
    asrkit::RecurrentState<double> s;
    index_t t0 = 0;
    for (index_t size : {index_t{1}, index_t{4}, index_t{2}}) {
      Tensor<double> chunk(Shape{size, 3, input});
      std::copy(x[t0].data(), x[t0].data() + chunk.numel(), chunk.data());
      std::vector<std::int32_t> len;
      for (index_t b = 0; b < 3; ++b)
        len.push_back(static_cast<std::int32_t>(std::clamp<index_t>(lengths(b) - t0, 0, size)));
      const auto y = l.forward(chunk.view(), lengths_of(len).view(), s);
      CHECK(max_abs_diff(y, TensorView<const double>(full[t0].data(), y.shape())) < 1e-14);
      t0 += size;
    }
  }
}

TEST_CASE("ResidualLSTMCell errors", "[nn][residual_lstm]") {
  REQUIRE_THROWS_ID(
      asrkit::ResidualLSTMCell<double>(asrkit::ResidualLSTMCellOptions{0, 4, 2, true}),
      asrkit::ValueError, "[asrkit.reslstm.1]");
  asrkit::ResidualLSTMCell<double> cell(asrkit::ResidualLSTMCellOptions{2, 3, 2, true});
  asrkit::Rng rng(1);
  REQUIRE_THROWS_ID(cell.reset_parameters(rng, 5), asrkit::ValueError, "[asrkit.reslstm.1]");
  const auto xp = randn({3, 2, 11}, 44);
  REQUIRE_THROWS_ID(cell.run(randn({3, 2, 13}, 45).view(), nullptr, nullptr), asrkit::ShapeError,
                    "[asrkit.reslstm.2]");
  REQUIRE_THROWS_ID(cell.run(xp.view(), nullptr, nullptr), asrkit::ShapeError,
                    "[asrkit.reslstm.2]");  // identity shortcut without its input
  REQUIRE_THROWS_ID(cell.backward(randn({3, 2, 2}, 46).view()), asrkit::ValueError,
                    "[asrkit.reslstm.3]");
  const auto x = randn({3, 2, 2}, 47);
  cell.set_input(x.view());
  cell.run_train(xp.view(), nullptr, nullptr);
  REQUIRE_THROWS_ID(cell.backward(randn({3, 2, 3}, 48).view()), asrkit::ShapeError,
                    "[asrkit.reslstm.4]");
  asrkit::RecurrentState<double> bad{randn({2, 2}, 49), randn({2, 2}, 50)};
  REQUIRE_THROWS_ID(cell.run(xp.view(), nullptr, &bad), asrkit::ShapeError, "[asrkit.reslstm.5]");
}
