#include <asrkit/loss/ctc.hpp>

#include <asrkit/core/rng.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "../test_util.hpp"

using asrkit::CtcGradient;
using asrkit::CtcInput;
using asrkit::CtcOptions;
using asrkit::CtcProblem;
using asrkit::Reduction;
using asrkit::Tensor;
using asrkit::index_t;

namespace {

// A batch with its own storage, padded targets [B, S].
template <class T>
struct Batch {
  Tensor<T> acts;
  std::vector<std::int32_t> targets, input_lengths, target_lengths;
  index_t max_label = 0;
  CtcProblem<T> problem() const {
    return {acts.view(),
            asrkit::TensorView<const std::int32_t>(
                targets.data(), {static_cast<index_t>(input_lengths.size()), max_label}),
            asrkit::as_view(input_lengths), asrkit::as_view(target_lengths)};
  }
};

template <class T>
Batch<T> random_batch(std::uint64_t seed, index_t frames, index_t batch, index_t vocab, index_t max_label,
                      int blank, bool log_softmax) {
  asrkit::Rng rng(seed);
  Batch<T> out;
  out.acts = Tensor<T>({frames, batch, vocab});
  rng.fill_normal(out.acts.view(), T(0), T(1));
  if (log_softmax)
    for (index_t r = 0; r < frames * batch; ++r) {
      auto row = out.acts.matrix().row(r);
      const T m = row.maxCoeff();
      row.array() -= m + std::log((row.array() - m).exp().sum());
    }
  out.max_label = max_label;
  out.targets.assign(static_cast<std::size_t>(batch * max_label), 0);
  for (index_t b = 0; b < batch; ++b) {
    index_t len = static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(max_label + 1)));
    for (index_t i = 0; i < len; ++i) {
      int label;
      do label = static_cast<int>(rng.uniform_int(static_cast<std::uint64_t>(vocab)));
      while (label == blank);
      out.targets[static_cast<std::size_t>(b * max_label + i)] = label;
    }
    index_t needed = len;
    for (index_t i = 1; i < len; ++i)
      needed += out.targets[static_cast<std::size_t>(b * max_label + i)] ==
                out.targets[static_cast<std::size_t>(b * max_label + i - 1)];
    const index_t tb = needed + static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(frames - needed + 1)));
    out.input_lengths.push_back(static_cast<std::int32_t>(tb));
    out.target_lengths.push_back(static_cast<std::int32_t>(len));
  }
  return out;
}

// All V^T paths of one item: returns -log p(target) and gamma[t][k] (posterior of label k at t).
double brute_force(const Tensor<double>& lp, index_t b, index_t frames, const std::vector<int>& target,
                   int blank, std::vector<std::vector<double>>* gamma) {
  const index_t vocab = lp.dim(2);
  std::vector<int> path(static_cast<std::size_t>(frames), 0);
  double total = 0;
  if (gamma) gamma->assign(static_cast<std::size_t>(frames), std::vector<double>(static_cast<std::size_t>(vocab), 0.0));
  std::function<void(index_t)> walk = [&](index_t t) {
    if (t == frames) {
      std::vector<int> collapsed;
      int prev = -1;
      for (int k : path) {
        if (k != prev && k != blank) collapsed.push_back(k);
        prev = k;
      }
      if (collapsed != target) return;
      double logp = 0;
      for (index_t s = 0; s < frames; ++s) logp += lp(s, b, path[static_cast<std::size_t>(s)]);
      total += std::exp(logp);
      if (gamma)
        for (index_t s = 0; s < frames; ++s) (*gamma)[static_cast<std::size_t>(s)][static_cast<std::size_t>(path[static_cast<std::size_t>(s)])] += std::exp(logp);
      return;
    }
    for (int k = 0; k < vocab; ++k) {
      path[static_cast<std::size_t>(t)] = k;
      walk(t + 1);
    }
  };
  walk(0);
  if (gamma)
    for (auto& row : *gamma)
      for (double& g : row) g /= total;
  return -std::log(total);
}

}  // namespace

TEST_CASE("ctc matches brute-force enumeration of all paths", "[loss][ctc]") {
  for (int blank : {0, 2}) {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      auto batch = random_batch<double>(seed, 5, 3, 4, 3, blank, true);
      Tensor<double> grad(batch.acts.shape());
      Tensor<double> losses({3});
      CtcOptions opt;
      opt.blank = blank;
      opt.reduction = Reduction::sum;
      asrkit::ctc_loss(batch.problem(), opt, grad.view(), losses.view());
      for (index_t b = 0; b < 3; ++b) {
        std::vector<int> target(batch.targets.begin() + b * 3, batch.targets.begin() + b * 3 + batch.target_lengths[static_cast<std::size_t>(b)]);
        std::vector<std::vector<double>> gamma;
        const index_t frames = batch.input_lengths[static_cast<std::size_t>(b)];
        const double expected = brute_force(batch.acts, b, frames, target, blank, &gamma);
        REQUIRE(losses(b) == Approx(expected).epsilon(1e-12));
        // log-probs input, CtcGradient::input: d loss / d log_probs = -gamma.
        for (index_t t = 0; t < 5; ++t)
          for (index_t k = 0; k < 4; ++k)
            REQUIRE(grad(t, b, k) == Approx(t < frames ? -gamma[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)] : 0.0).margin(1e-12));
      }
    }
  }
}

TEST_CASE("ctc gradient matches finite differences in double", "[loss][ctc]") {
  // Short labels, then long ones: L up to 20 spans several SIMD packets of 8 doubles, so the
  // blank and label rows' bands start in different packets.
  for (auto [frames, max_label] : {std::pair<index_t, index_t>{12, 4}, {34, 20}})
  for (CtcInput input : {CtcInput::logits, CtcInput::log_probs}) {
    for (Reduction reduction : {Reduction::mean, Reduction::sum}) {
      auto batch = random_batch<double>(11 + static_cast<std::uint64_t>(max_label), frames, 4, 6, max_label, 3,
                                        input == CtcInput::log_probs);
      CtcOptions opt;
      opt.blank = 3;
      opt.input = input;
      opt.reduction = reduction;
      opt.grad_scale = 0.7;
      Tensor<double> grad(batch.acts.shape());
      asrkit::ctc_loss(batch.problem(), opt, grad.view());
      const double h = 1e-6;
      for (index_t i = 0; i < batch.acts.numel(); ++i) {
        const double saved = batch.acts.data()[i];
        batch.acts.data()[i] = saved + h;
        const double up = asrkit::ctc_loss(batch.problem(), opt);
        batch.acts.data()[i] = saved - h;
        const double down = asrkit::ctc_loss(batch.problem(), opt);
        batch.acts.data()[i] = saved;
        REQUIRE(grad.data()[i] == Approx(0.7 * (up - down) / (2 * h)).margin(1e-7));
      }
    }
  }
}

TEST_CASE("ctc gradient conventions relate as documented", "[loss][ctc]") {
  auto batch = random_batch<double>(5, 20, 3, 7, 5, 0, true);
  CtcOptions opt;
  Tensor<double> g_input(batch.acts.shape()), g_logits(batch.acts.shape()), g_from_logits(batch.acts.shape());
  asrkit::ctc_loss(batch.problem(), opt, g_input.view());
  opt.gradient = CtcGradient::logits;
  asrkit::ctc_loss(batch.problem(), opt, g_logits.view());
  // log-probs are normalized, so feeding them as logits gives the same softmax.
  opt.gradient = CtcGradient::input;
  opt.input = CtcInput::logits;
  asrkit::ctc_loss(batch.problem(), opt, g_from_logits.view());
  for (index_t t = 0; t < 20; ++t)
    for (index_t b = 0; b < 3; ++b) {
      const bool valid = t < batch.input_lengths[static_cast<std::size_t>(b)];
      const double scale = 1.0 / (std::max(batch.target_lengths[static_cast<std::size_t>(b)], 1) * 3.0);
      for (index_t k = 0; k < 7; ++k) {
        const double y = valid ? std::exp(batch.acts(t, b, k)) * scale : 0.0;
        REQUIRE(g_logits(t, b, k) == Approx(g_input(t, b, k) + y).margin(1e-14));
        REQUIRE(g_from_logits(t, b, k) == Approx(g_logits(t, b, k)).margin(1e-14));
      }
    }
}

TEST_CASE("ctc edge cases: infeasible, empty targets, zero-length inputs, padding", "[loss][ctc]") {
  Tensor<float> lp({3, 2, 3});
  for (index_t i = 0; i < lp.numel(); ++i) lp.data()[i] = std::log(1.0f / 3.0f);
  // item 0: target [1, 1] needs 3 frames but has 2 -> infeasible; item 1: empty target, 3 frames.
  std::vector<std::int32_t> targets{1, 1}, il{2, 3}, tl{2, 0};
  CtcProblem<float> p{lp.view(), asrkit::as_view(targets), asrkit::as_view(il), asrkit::as_view(tl)};
  CtcOptions opt;
  opt.reduction = Reduction::none;
  Tensor<float> grad(lp.shape(), 5.0f), losses({2});
  const float total = asrkit::ctc_loss(p, opt, grad.view(), losses.view());
  CHECK(std::isinf(losses(0)));
  CHECK(losses(1) == Approx(3 * std::log(3.0f)));
  CHECK(std::isinf(total));
  for (index_t t = 0; t < 3; ++t)
    for (index_t k = 0; k < 3; ++k) CHECK(grad(t, 0, k) == 0.0f);  // never NaN, never made up
  CHECK(grad(0, 1, 0) == Approx(-1.0f));  // the blank path has posterior 1
  opt.zero_infinity = true;
  asrkit::ctc_loss(p, opt, grad.view(), losses.view());
  CHECK(losses(0) == 0.0f);
  // zero-length input with an empty target: probability 1, loss 0.
  std::vector<std::int32_t> il0{0, 0}, tl0{0, 0}, none;
  CtcProblem<float> p0{lp.view(), asrkit::as_view(none), asrkit::as_view(il0), asrkit::as_view(tl0)};
  CHECK(asrkit::ctc_loss(p0, opt, grad.view(), losses.view()) == 0.0f);
  CHECK(grad.flat().cwiseAbs().maxCoeff() == 0.0f);
  // T exactly at the feasibility limit: one path only.
  std::vector<std::int32_t> t3{1, 1}, il3{3, 3}, tl3{2, 0};
  CtcProblem<float> p3{lp.view(), asrkit::as_view(t3), asrkit::as_view(il3), asrkit::as_view(tl3)};
  asrkit::ctc_loss(p3, opt, grad.view(), losses.view());
  CHECK(losses(0) == Approx(3 * std::log(3.0f)));
}

TEST_CASE("ctc ignores padding, agrees for padded and concatenated targets, any thread count", "[loss][ctc]") {
  auto batch = random_batch<float>(21, 40, 6, 9, 7, 4, false);
  CtcOptions opt;
  opt.blank = 4;
  opt.input = CtcInput::logits;
  Tensor<float> g1(batch.acts.shape()), g2(batch.acts.shape()), l1({6}), l2({6});
  asrkit::set_num_threads(1);
  const float a = asrkit::ctc_loss(batch.problem(), opt, g1.view(), l1.view());
  asrkit::set_num_threads(2);
  const float b = asrkit::ctc_loss(batch.problem(), opt, g2.view(), l2.view());
  CHECK(a == b);  // bit-identical
  CHECK((g1.flat().array() == g2.flat().array()).all());
  // Padding frames and padded label slots must not matter.
  for (index_t t = 0; t < 40; ++t)
    for (index_t i = 0; i < 6; ++i)
      if (t >= batch.input_lengths[static_cast<std::size_t>(i)])
        for (index_t k = 0; k < 9; ++k) batch.acts(t, i, k) = 1e3f;
  std::vector<std::int32_t> concat;
  for (index_t i = 0; i < 6; ++i)
    for (index_t j = 0; j < batch.target_lengths[static_cast<std::size_t>(i)]; ++j) concat.push_back(batch.targets[static_cast<std::size_t>(i * 7 + j)]);
  CtcProblem<float> pc{batch.acts.view(), asrkit::as_view(concat), asrkit::as_view(batch.input_lengths),
                       asrkit::as_view(batch.target_lengths)};
  asrkit::ctc_loss(pc, opt, g2.view(), l2.view());
  CHECK((l1.flat().array() == l2.flat().array()).all());
  for (index_t t = 0; t < 40; ++t)
    for (index_t i = 0; i < 6; ++i)
      for (index_t k = 0; k < 9; ++k)
        if (t < batch.input_lengths[static_cast<std::size_t>(i)]) REQUIRE(g1(t, i, k) == g2(t, i, k));
        else REQUIRE(g2(t, i, k) == 0.0f);
  // Caller-owned workspace.
  std::vector<unsigned char> ws(asrkit::ctc_workspace_size(pc, opt));
  CHECK(asrkit::ctc_loss(pc, opt, {}, {}, ws.data(), ws.size()) == a);
  REQUIRE_THROWS_ID(asrkit::ctc_loss(pc, opt, {}, {}, ws.data(), 10), asrkit::ValueError, "[asrkit.ctc.8] workspace holds 10 bytes");
}

TEST_CASE("ctc rejects bad input with clear errors", "[loss][ctc]") {
  Tensor<float> acts({4, 2, 5});
  std::vector<std::int32_t> targets{1, 2, 3}, il{4, 4}, tl{2, 1};
  auto problem = [&]() {
    return CtcProblem<float>{acts.view(), asrkit::as_view(targets), asrkit::as_view(il), asrkit::as_view(tl)};
  };
  CtcOptions opt;
  CHECK_NOTHROW(asrkit::ctc_loss(problem(), opt));
  Tensor<float> flat({4, 10});
  REQUIRE_THROWS_ID(asrkit::ctc_loss(CtcProblem<float>{flat.view(), asrkit::as_view(targets), asrkit::as_view(il), asrkit::as_view(tl)}, opt),
                    asrkit::ShapeError, "[asrkit.ctc.1] acts must have rank 3 [T, B, V], got shape [4, 10]");
  targets[1] = 5;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError,
                    "[asrkit.ctc.5] target label 5 at position 1 of batch item 0 is out of range [0, 5)");
  targets[1] = 0;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError,
                    "[asrkit.ctc.5] target label 0 at position 1 of batch item 0 is the blank index");
  targets[1] = 2;
  il[1] = 5;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError,
                    "[asrkit.ctc.3] input length 5 of batch item 1 must be in [0, 4] (T)");
  il[1] = -1;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.3]");
  il[1] = 4;
  tl[1] = -2;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.4] target length -2 of batch item 1");
  tl[1] = 2;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ShapeError,
                    "[asrkit.ctc.4] concatenated targets must hold the sum of target lengths, 4 labels, got 3");
  tl = {2, 1, 0};
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ShapeError,
                    "[asrkit.ctc.2] target_lengths must have shape [2] (B), got [3]");
  tl = {2, 1};
  opt.blank = 5;
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.6] blank must be in [0, 5), got 5");
  opt.blank = 0;
  acts(2, 1, 3) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.7] acts of batch item 1 at frame 2");
  opt.input = CtcInput::logits;
  acts(2, 1, 3) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.7]");
  acts(2, 1, 3) = 0;
  Tensor<float> bad_grad({4, 2, 4});
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt, bad_grad.view()), asrkit::ShapeError,
                    "[asrkit.shape.5] ctc_loss grad: expected shape [4, 2, 5], got [4, 2, 4]");
  opt.grad_scale = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_ID(asrkit::ctc_loss(problem(), opt), asrkit::ValueError, "[asrkit.ctc.9]");
}
