// RNN, GRU (both reset placements, both update conventions), LSTM and DS2's BN-RNN: every
// backward (input, every parameter, the initial state) against finite differences in double,
// uni- and bidirectional with concat / sum / shared input weights and variable lengths; streaming
// in chunks equals the full forward; padding and thread-count invariance; names, init and errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/recurrent.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::RecurrentMerge;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::TensorView;

namespace {

constexpr index_t kT = 5, kB = 3, kF = 4, kH = 3;
const std::vector<std::int32_t> kLengths{5, 2, 4};

Tensor<double> randn(const Shape& s, std::uint64_t seed, double stddev = 1.0) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, stddev);
  return t;
}

TensorView<const std::int32_t> view_of(const std::vector<std::int32_t>& v) {
  return v.empty() ? TensorView<const std::int32_t>() : asrkit::as_view(v);
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])));
  return worst;
}

/// One thread while finite differences run thousands of tiny forwards (per-step products at
/// H = 3 gain nothing from a thread team); thread-count invariance has its own test.
struct OneThread {
  int saved = asrkit::num_threads();
  OneThread() { asrkit::set_num_threads(1); }
  ~OneThread() { asrkit::set_num_threads(saved); }
};

/// The layer layouts every cell is checked in.
struct Layout {
  const char* name;
  bool bidirectional;
  RecurrentMerge merge;
  bool shared;
};
const Layout kLayouts[] = {{"uni", false, RecurrentMerge::concat, false},
                           {"bi-concat", true, RecurrentMerge::concat, false},
                           {"bi-sum", true, RecurrentMerge::sum, false},
                           {"bi-sum-shared", true, RecurrentMerge::sum, true}};

template <class Opt>
Opt with_layout(Opt o, const Layout& l) {
  o.bidirectional = l.bidirectional;
  o.merge = l.merge;
  o.share_input_weights = l.shared;
  return o;
}

/// dL/dx and dL/dθ of a training forward (L = Σ w ⊙ y, padded frames of w nonzero: they must be
/// ignored) against central differences.
template <class Layer>
void check_gradients(const Layer& layer0, const std::vector<std::int32_t>& lengths, double tol = 1e-6) {
  const OneThread one_thread;
  Layer layer = layer0;
  auto x = randn({kT, kB, kF}, 7);
  const auto lv = view_of(lengths);
  const auto y = layer.forward_train(x.view(), lv);
  const auto w = randn(y.shape(), 99);
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(w.view());
  Layer initial = layer0;
  const bool bn = layer0.options().input_batch_norm;
  auto loss = [&] {
    if (!bn) return asrkit_test::dot(initial.forward(x.view(), lv), w);  // inference == training
    // BN normalises with the batch statistics (the running ones it updates are not read).
    return asrkit_test::dot(initial.forward_train(x.view(), lv), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < tol);
  std::vector<Tensor<double>*> values;
  std::vector<const Tensor<double>*> grads;
  std::vector<std::string> names;
  initial.for_each_parameter([&](const std::string& n, auto& p) {
    values.push_back(&p.value);
    names.push_back(n);
  });
  layer.for_each_parameter([&](const std::string&, auto& p) { grads.push_back(&p.grad); });
  REQUIRE(values.size() == grads.size());
  for (std::size_t k = 0; k < values.size(); ++k) {
    INFO("parameter " << names[k]);
    CHECK(asrkit_test::max_gradient_error(loss, *values[k], *grads[k]) < tol);
  }
  // Padded frames: zero output and zero input gradient.
  for (index_t b = 0; b < kB; ++b)
    for (index_t t = lengths.empty() ? kT : lengths[static_cast<std::size_t>(b)]; t < kT; ++t) {
      for (index_t j = 0; j < y.dim(2); ++j) CHECK(y(t, b, j) == 0.0);
      for (index_t j = 0; j < kF; ++j) CHECK(dx(t, b, j) == 0.0);
    }
  // Inference gives the training output (no BN here: BN infers with running statistics).
  if (!layer0.options().input_batch_norm) CHECK(max_abs_diff(layer0.forward(x.view(), lv), y) < 1e-14);
}

/// Every layout with variable lengths; some also without lengths or with an empty item.
template <class Layer, class Opt>
void check_all_layouts(const Opt& base, double tol = 1e-6) {
  for (const auto& l : kLayouts) {
    INFO("layout " << l.name);
    asrkit::Rng rng(11);
    Layer layer(kF, kH, with_layout(base, l), rng);
    check_gradients(layer, kLengths, tol);
    if (l.shared || !l.bidirectional) check_gradients(layer, {}, tol);
    if (l.bidirectional && l.merge == RecurrentMerge::concat) check_gradients(layer, {0, 5, 1}, tol);
  }
}

/// dL/d(h0, c0) of a unidirectional layer trained from a random initial state.
template <class Layer>
void check_state_gradients(const Layer& layer0) {
  const OneThread one_thread;
  Layer layer = layer0;
  auto x = randn({kT, kB, kF}, 3);
  const auto lv = view_of(kLengths);
  asrkit::RecurrentState<double> s0;
  s0.h = randn({kB, kH}, 4, 0.5);
  if (layer.cell().state_count() == 2) s0.c = randn({kB, kH}, 5, 0.5);
  auto s = s0;
  const auto y = layer.forward_train(x.view(), lv, s);
  const auto w = randn(y.shape(), 6);
  layer.backward(w.view());
  const auto& g = layer.initial_state_grad();
  auto loss = [&] {
    Layer l = layer0;
    auto st = s0;
    return asrkit_test::dot(l.forward_train(x.view(), lv, st), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, s0.h, g.h) < 1e-6);
  if (layer.cell().state_count() == 2) CHECK(asrkit_test::max_gradient_error(loss, s0.c, g.c) < 1e-6);
}

}  // namespace

TEST_CASE("RNN gradients (tanh, clipped ReLU, ReLU) match finite differences", "[nn][recurrent]") {
  asrkit::RNNOptions o;
  SECTION("tanh") { check_all_layouts<asrkit::RNN<double>>(o); }
  SECTION("clipped relu, clip active") {
    o.activation = asrkit::RecurrentActivation::clipped_relu;
    o.clip = 0.7;
    check_all_layouts<asrkit::RNN<double>>(o);
  }
  SECTION("relu, no bias") {
    o.activation = asrkit::RecurrentActivation::relu;
    o.bias = false;
    check_all_layouts<asrkit::RNN<double>>(o);
  }
}

TEST_CASE("GRU gradients match finite differences for both reset placements and updates", "[nn][recurrent]") {
  for (auto reset : {asrkit::GRUReset::after, asrkit::GRUReset::before})
    for (auto update : {asrkit::GRUUpdate::torch, asrkit::GRUUpdate::ds2}) {
      asrkit::GRUOptions o;
      o.reset = reset;
      o.update = update;
      INFO("reset " << (reset == asrkit::GRUReset::after ? "after" : "before") << ", update "
                    << (update == asrkit::GRUUpdate::torch ? "torch" : "ds2"));
      check_all_layouts<asrkit::GRU<double>>(o);
      if ((reset == asrkit::GRUReset::after) == (update == asrkit::GRUUpdate::torch)) continue;
      o.candidate = asrkit::RecurrentActivation::clipped_relu;  // DS2's candidate, clip active
      o.clip = 0.6;
      check_all_layouts<asrkit::GRU<double>>(o);
    }
}

TEST_CASE("LSTM gradients match finite differences", "[nn][recurrent]") {
  asrkit::LSTMOptions o;
  check_all_layouts<asrkit::LSTM<double>>(o);
  o.forget_bias = 1.0;
  o.init = asrkit::RecurrentInit::ds2;
  check_all_layouts<asrkit::LSTM<double>>(o);
}

TEST_CASE("BN-RNN and BN-GRU gradients (through the sequence-wise statistics) match finite differences",
          "[nn][recurrent]") {
  asrkit::RNNOptions o;
  o.activation = asrkit::RecurrentActivation::clipped_relu;
  for (const auto& l : kLayouts) {
    INFO("layout " << l.name);
    asrkit::Rng rng(2);
    asrkit::BatchNormRNN<double> layer(kF, kH, with_layout(o, l), rng);
    check_gradients(layer, kLengths);
    check_gradients(layer, {});
  }
  asrkit::GRUOptions g;
  g.input_batch_norm = true;
  g.bidirectional = true;
  asrkit::Rng rng(3);
  check_gradients(asrkit::GRU<double>(kF, kH, g, rng), kLengths);
}

TEST_CASE("Initial-state gradients match finite differences", "[nn][recurrent]") {
  asrkit::Rng rng(5);
  check_state_gradients(asrkit::RNN<double>(kF, kH, {}, rng));
  asrkit::GRUOptions before;
  before.reset = asrkit::GRUReset::before;
  check_state_gradients(asrkit::GRU<double>(kF, kH, {}, rng));
  check_state_gradients(asrkit::GRU<double>(kF, kH, before, rng));
  check_state_gradients(asrkit::LSTM<double>(kF, kH, {}, rng));
}

namespace {

/// A chunked forward (chunk sizes cycling through `sizes`) with a carried state equals the full
/// forward, for every item length.
template <class Layer>
void check_streaming(const Layer& layer) {
  const OneThread one_thread;
  const index_t steps = 11, batch = 4;
  const std::vector<std::int32_t> lengths{11, 6, 9, 0};
  Tensor<float> x(Shape{steps, batch, kF});
  asrkit::Rng rng(8);
  rng.fill_normal(x.view(), 0.0f, 1.0f);
  asrkit::RecurrentState<float> full_state;
  const auto full = layer.forward(x.view(), asrkit::as_view(lengths), full_state);
  for (const std::vector<index_t>& sizes : {std::vector<index_t>{1}, {3}, {7}, {1, 3, 7}}) {
    asrkit::RecurrentState<float> s;
    index_t t0 = 0;
    for (std::size_t k = 0; t0 < steps; ++k) {
      const index_t n = std::min(sizes[k % sizes.size()], steps - t0);
      Tensor<float> chunk(Shape{n, batch, kF});
      std::copy(x.data() + t0 * batch * kF, x.data() + (t0 + n) * batch * kF, chunk.data());
      std::vector<std::int32_t> cl(batch);
      for (index_t b = 0; b < batch; ++b)
        cl[b] = static_cast<std::int32_t>(std::clamp<index_t>(lengths[b] - t0, 0, n));
      const auto y = layer.forward(chunk.view(), asrkit::as_view(cl), s);
      double worst = 0;
      for (index_t i = 0; i < y.numel(); ++i)
        worst = std::max(worst, std::fabs(double(y.data()[i]) - double(full.data()[t0 * batch * y.dim(2) + i])));
      CHECK(worst <= 1e-6);
      t0 += n;
    }
    CHECK(max_abs_diff(s.h, full_state.h) <= 1e-6);
    if (layer.cell().state_count() == 2) CHECK(max_abs_diff(s.c, full_state.c) <= 1e-6);
  }
}

}  // namespace

TEST_CASE("Streaming in chunks of 1, 3, 7 frames equals the full forward", "[nn][recurrent]") {
  asrkit::Rng rng(9);
  check_streaming(asrkit::RNN<float>(kF, 5, {}, rng));
  asrkit::GRUOptions before;
  before.reset = asrkit::GRUReset::before;
  check_streaming(asrkit::GRU<float>(kF, 5, {}, rng));
  check_streaming(asrkit::GRU<float>(kF, 5, before, rng));
  check_streaming(asrkit::LSTM<float>(kF, 5, {}, rng));
}

TEST_CASE("Each item's output equals the layer run on that item alone (padding never matters)",
          "[nn][recurrent]") {
  const OneThread one_thread;
  asrkit::LSTMOptions o;
  o.bidirectional = true;
  asrkit::Rng rng(12);
  asrkit::LSTM<double> lstm(kF, kH, o, rng);
  auto x = randn({kT, kB, kF}, 13);
  const auto y = lstm.forward(x.view(), asrkit::as_view(kLengths));
  for (index_t b = 0; b < kB; ++b) {
    const index_t len = kLengths[static_cast<std::size_t>(b)];
    Tensor<double> xb(Shape{len, 1, kF});
    for (index_t t = 0; t < len; ++t)
      for (index_t j = 0; j < kF; ++j) xb(t, 0, j) = x(t, b, j);
    const auto yb = lstm.forward(xb.view());
    double worst = 0;
    for (index_t t = 0; t < len; ++t)
      for (index_t j = 0; j < 2 * kH; ++j) worst = std::max(worst, std::fabs(yb(t, 0, j) - y(t, b, j)));
    CHECK(worst < 1e-14);
  }
  // Garbage in the padded frames changes nothing.
  for (index_t b = 0; b < kB; ++b)
    for (index_t t = kLengths[static_cast<std::size_t>(b)]; t < kT; ++t)
      for (index_t j = 0; j < kF; ++j) x(t, b, j) = 1e3;
  CHECK(max_abs_diff(lstm.forward(x.view(), asrkit::as_view(kLengths)), y) == 0.0);
}

TEST_CASE("Results do not depend on the thread count", "[nn][recurrent]") {
  asrkit::GRUOptions o;
  o.bidirectional = true;
  o.merge = RecurrentMerge::sum;
  asrkit::Rng rng(14);
  asrkit::GRU<float> gru(16, 24, o, rng);
  Tensor<float> x(Shape{9, 5, 16});
  rng.fill_normal(x.view(), 0.0f, 1.0f);
  const std::vector<std::int32_t> lengths{9, 3, 7, 9, 1};
  Tensor<float> dy(Shape{9, 5, 24});
  rng.fill_normal(dy.view(), 0.0f, 1.0f);
  auto run = [&](int threads) {
    asrkit::set_num_threads(threads);
    auto g = gru;
    auto y = g.forward_train(x.view(), asrkit::as_view(lengths));
    auto dx = g.backward(dy.view());
    std::vector<Tensor<float>> out{y, dx};
    g.for_each_parameter([&](const std::string&, auto& p) { out.push_back(p.grad); });
    return out;
  };
  const auto one = run(1), two = run(2);
  asrkit::set_num_threads(1);
  for (std::size_t k = 0; k < one.size(); ++k) CHECK(max_abs_diff(one[k], two[k]) == 0.0);
}

TEST_CASE("Parameter names follow torch.nn.LSTM / GRU / RNN", "[nn][recurrent]") {
  auto names = [](auto& layer) {
    std::vector<std::string> n;
    layer.for_each_parameter([&](const std::string& s, auto&) { n.push_back(s); });
    return n;
  };
  asrkit::LSTMOptions o;
  o.bidirectional = true;
  asrkit::LSTM<float> lstm(4, 3, o);
  CHECK(names(lstm) == std::vector<std::string>{"weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0",
                                                "weight_ih_l0_reverse", "bias_ih_l0_reverse",
                                                "weight_hh_l0_reverse", "bias_hh_l0_reverse"});
  CHECK(lstm.weight_ih(1).value.shape() == Shape{12, 4});
  CHECK(lstm.cell(1).weight_hh().value.shape() == Shape{12, 3});
  asrkit::RNNOptions r;
  r.bidirectional = true;
  r.share_input_weights = true;
  r.merge = RecurrentMerge::sum;
  asrkit::BatchNormRNN<float> bn(4, 3, r);
  CHECK(names(bn) == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "norm_ih_l0.weight",
                                              "norm_ih_l0.bias", "weight_hh_l0_reverse"});
  std::vector<std::string> buffers;
  bn.for_each_buffer([&](const std::string& s, auto&) { buffers.push_back(s); });
  CHECK(buffers == std::vector<std::string>{"norm_ih_l0.running_mean", "norm_ih_l0.running_var",
                                            "norm_ih_l0.num_batches_tracked"});
  asrkit::GRU<float> gru(4, 3, asrkit::GRUOptions{}, asrkit::init::global_rng());
  CHECK(names(gru) == std::vector<std::string>{"weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"});
  CHECK(gru.output_size() == 3);
  CHECK(lstm.output_size() == 6);
}

TEST_CASE("Initialisation: PyTorch's bound, DS2's orthogonal W_hh, the forget bias", "[nn][recurrent]") {
  asrkit::Rng rng(21);
  asrkit::LSTM<double> torch_init(10, 16, {}, rng);
  const double bound = 1.0 / std::sqrt(16.0);
  torch_init.for_each_parameter([&](const std::string& n, auto& p) {
    INFO(n);
    CHECK(p.value.flat().cwiseAbs().maxCoeff() <= bound);
    CHECK(p.value.flat().cwiseAbs().maxCoeff() > 0.8 * bound);
  });
  asrkit::LSTMOptions o;
  o.init = asrkit::RecurrentInit::ds2;
  o.forget_bias = 1.0;
  asrkit::LSTM<double> ds2(10, 16, o, rng);
  const auto w = ds2.cell().weight_hh().value.matrix();  // [64, 16]: orthonormal columns
  CHECK((w.transpose() * w - Eigen::MatrixXd::Identity(16, 16)).cwiseAbs().maxCoeff() < 1e-12);
  const auto& b = ds2.cell().bias_hh().value;
  for (index_t j = 0; j < 64; ++j) CHECK(b(j) == (j >= 16 && j < 32 ? 1.0 : 0.0));
  CHECK(ds2.bias_ih().value.flat().cwiseAbs().maxCoeff() == 0.0);
  const double xavier = std::sqrt(6.0 / (10 + 64));
  CHECK(ds2.weight_ih().value.flat().cwiseAbs().maxCoeff() <= xavier);
}

TEST_CASE("Recurrent layers reject bad arguments with ids", "[nn][recurrent]") {
  asrkit::LSTM<float> lstm(4, 3);
  Tensor<float> x(Shape{5, 2, 4});
  REQUIRE_THROWS_ID(lstm.forward(Tensor<float>(Shape{5, 2, 3}).view()), asrkit::ShapeError,
                    "[asrkit.recurrent.2] Recurrent(4 -> 3): argument x: expected shape [T, B, 4], got [5, 2, 3]");
  REQUIRE_THROWS_ID(lstm.forward(Tensor<float>(Shape{5, 4}).view()), asrkit::ShapeError, "recurrent.2");
  const std::vector<std::int32_t> three{5, 5, 5}, bad{5, 6};
  REQUIRE_THROWS_ID(lstm.forward(x.view(), asrkit::as_view(three)), asrkit::ShapeError,
                    "[asrkit.recurrent.3] Recurrent(4 -> 3): argument lengths: expected shape [2]");
  REQUIRE_THROWS_ID(lstm.forward(x.view(), asrkit::as_view(bad)), asrkit::ValueError,
                    "[asrkit.recurrent.4] Recurrent(4 -> 3): lengths[1] = 6 is outside [0, 5]");
  REQUIRE_THROWS_ID(lstm.backward(Tensor<float>(Shape{5, 2, 3}).view()), asrkit::ValueError,
                    "[asrkit.recurrent.5]");
  lstm.forward_train(x.view());
  REQUIRE_THROWS_ID(lstm.backward(Tensor<float>(Shape{5, 2, 6}).view()), asrkit::ShapeError,
                    "[asrkit.recurrent.6] Recurrent(4 -> 3)::backward: argument dy: expected shape [5, 2, 3]");
  REQUIRE_THROWS_ID(lstm.initial_state_grad(), asrkit::ValueError, "[asrkit.recurrent.5]");
  asrkit::RecurrentState<float> s;
  s.h = Tensor<float>(Shape{3, 3});
  REQUIRE_THROWS_ID(lstm.forward(x.view(), {}, s), asrkit::ShapeError,
                    "[asrkit.recurrent.8] Recurrent(4 -> 3): argument state.h: expected shape [2, 3]");
  asrkit::LSTMOptions bi;
  bi.bidirectional = true;
  asrkit::LSTM<float> bl(4, 3, bi);
  asrkit::RecurrentState<float> empty;
  REQUIRE_THROWS_ID(bl.forward(x.view(), {}, empty), asrkit::ValueError, "[asrkit.recurrent.7]");
  REQUIRE_THROWS_ID(asrkit::LSTM<float>(0, 3), asrkit::ValueError, "[asrkit.recurrent.1]");
  REQUIRE_THROWS_ID(asrkit::LSTM<float>(4, 0), asrkit::ValueError, "[asrkit.recurrent.1]");
  asrkit::RNNOptions clip;
  clip.activation = asrkit::RecurrentActivation::clipped_relu;
  clip.clip = 0;
  REQUIRE_THROWS_ID(asrkit::RNN<float>(4, 3, clip), asrkit::ValueError, "[asrkit.recurrent.1]");
  asrkit::LSTMOptions fb;
  fb.bias = false;
  fb.forget_bias = 1;
  REQUIRE_THROWS_ID(asrkit::LSTM<float>(4, 3, fb), asrkit::ValueError, "[asrkit.recurrent.1]");
}
