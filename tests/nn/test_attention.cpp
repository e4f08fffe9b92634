// MultiHeadAttention, RelPositionMultiHeadAttention and the positional encodings: backward
// against finite differences in double (input and every parameter; each mask kind, variable
// lengths, with and without projection BN, with dropout), a direct-loop reference of the
// relative-position scores, exact zeros for masked keys and padded frames, streaming (a chunk
// mask equals running on the visible frames only; causal outputs ignore the future), thread
// invariance and the error ids.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/positional_encoding.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::AttentionMask;
using asrkit::index_t;
using asrkit::MultiHeadAttention;
using asrkit::RelPositionMultiHeadAttention;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

template <class T = double>
Tensor<T> randn(const Shape& s, std::uint64_t seed, double stddev = 1.0) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), static_cast<T>(stddev));
  return t;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (index_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])));
  return worst;
}

asrkit::MultiHeadAttentionOptions with_bn(bool bn, double dropout = 0.0) {
  asrkit::MultiHeadAttentionOptions o;
  if (bn) o.projection_norm = asrkit::ProjectionNorm::batch_norm;
  o.dropout = dropout;
  return o;
}

std::vector<AttentionMask> all_masks() {
  return {AttentionMask::full(), AttentionMask::causal(), AttentionMask::chunked(2, 1),
          AttentionMask::chunked(3)};
}

std::string mask_name(const AttentionMask& m) {
  switch (m.kind) {
    case asrkit::MaskKind::none:
      return "none";
    case asrkit::MaskKind::causal:
      return "causal";
    case asrkit::MaskKind::chunk:
      return "chunk(" + std::to_string(m.chunk_size) + ", " + std::to_string(m.left_chunks) + ")";
  }
  return "?";
}

/// dL/dx and dL/dparameter of `fwd(layer copy, x)` (a training forward) against central
/// differences, L = sum(w ⊙ y). Every loss evaluation starts from a copy of the initial layer:
/// the training forward updates BN running statistics and advances the dropout generator.
template <class Layer, class Fwd>
void check_gradients(const Layer& layer0, Tensor<double>& x, Fwd fwd, double tol = 1e-6) {
  Layer layer = layer0;
  const auto y = fwd(layer, x);
  const auto w = randn(y.shape(), 99);
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(w.view());
  Layer initial = layer0;
  auto loss = [&] {
    Layer l = initial;
    return asrkit_test::dot(fwd(l, x), w);
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
}

// These tests run many tiny forwards: one thread avoids a thread team per GEMM (the thread-count
// test covers the parallel path).
struct OneThread {
  int saved = asrkit::num_threads();
  OneThread() { asrkit::set_num_threads(1); }
  ~OneThread() { asrkit::set_num_threads(saved); }
};

// Variable lengths with the longest item not first (T = 6).
const std::vector<std::int32_t> kLengths = {4, 6, 1};
constexpr index_t kT = 6, kB = 3, kD = 8, kHeads = 2;

}  // namespace

TEST_CASE("MultiHeadAttention backward matches finite differences", "[nn][attention][gradcheck]") {
  OneThread one_thread;
  auto x = randn({kT, kB, kD}, 1);
  for (const bool bn : {false, true})
    for (const auto& mask : all_masks()) {
      INFO("mask " << mask_name(mask) << (bn ? " with BN" : ""));
      asrkit::Rng rng(2);
      MultiHeadAttention<double> mha(kD, kHeads, rng, with_bn(bn));
      check_gradients(mha, x, [&](auto& l, const Tensor<double>& in) {
        return l.forward_train(in.view(), asrkit::as_view(kLengths), mask);
      });
    }
}

TEST_CASE("RelPositionMultiHeadAttention backward matches finite differences",
          "[nn][attention][gradcheck]") {
  OneThread one_thread;
  auto x = randn({kT, kB, kD}, 3);
  const auto pos = asrkit::RelPositionalEncoding<double>(kD).table(kT);
  for (const bool bn : {false, true})
    for (const auto& mask : all_masks()) {
      INFO("mask " << mask_name(mask) << (bn ? " with BN" : ""));
      asrkit::Rng rng(4);
      RelPositionMultiHeadAttention<double> rel(kD, kHeads, rng, with_bn(bn));
      check_gradients(rel, x, [&](auto& l, const Tensor<double>& in) {
        return l.forward_train(in.view(), pos.view(), asrkit::as_view(kLengths), mask);
      });
    }
}

TEST_CASE("Attention backward with dropout and without biases matches finite differences",
          "[nn][attention][gradcheck]") {
  OneThread one_thread;
  auto x = randn({kT, kB, kD}, 5);
  auto o = with_bn(false, 0.3);
  o.bias = false;
  asrkit::Rng rng(6);
  MultiHeadAttention<double> mha(kD, kHeads, rng, o);
  check_gradients(mha, x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), asrkit::as_view(kLengths), AttentionMask::chunked(2));
  });
  RelPositionMultiHeadAttention<double> rel(kD, 4, rng, with_bn(true, 0.3));
  const auto pos = asrkit::RelPositionalEncoding<double>(kD).table(kT);
  check_gradients(rel, x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), pos.view(), asrkit::as_view(kLengths));
  });
  // Dropout really drops: training output differs from inference, and a copy repeats it.
  MultiHeadAttention<double> copy = mha;
  const auto a = mha.forward_train(x.view()), b = copy.forward_train(x.view());
  CHECK(max_abs_diff(a, b) == 0.0);
  CHECK(max_abs_diff(a, mha.forward(x.view())) > 1e-3);
}

TEST_CASE("RelPositionMultiHeadAttention matches a direct evaluation of its equation",
          "[nn][attention]") {
  OneThread one_thread;
  // S_ij = ((q_i + u)·k_j + (q_i + v)·p_{i−j}) / sqrt(d_k), p_r = linear_pos(PE(r)); every sum by
  // loops.
  const index_t T = 5, B = 2, D = 8, H = 2, dk = D / H;
  asrkit::Rng rng(7);
  RelPositionMultiHeadAttention<double> rel(D, H, rng);
  const auto x = randn({T, B, D}, 8);
  const std::vector<std::int32_t> lengths = {5, 3};
  asrkit::RelPositionalEncoding<double> pe(D, {1.0, 0.0, 0, 16});
  const auto pos_emb = pe.table(T);
  const auto y =
      rel.forward(x.view(), pos_emb.view(), asrkit::as_view(lengths), AttentionMask::causal());

  std::vector<Tensor<double>*> w;
  rel.for_each_parameter([&](const std::string&, auto& p) { w.push_back(&p.value); });
  // order: pos_bias_u, pos_bias_v, linear_{q,k,v}.{weight,bias}, linear_out.{weight,bias},
  // linear_pos.weight
  auto linear = [&](const Tensor<double>& wt, const Tensor<double>* bias, const double* in,
                    double* out) {
    for (index_t o = 0; o < D; ++o) {
      out[o] = bias ? (*bias)(o) : 0.0;
      for (index_t i = 0; i < D; ++i) out[o] += wt(o, i) * in[i];
    }
  };
  for (index_t b = 0; b < B; ++b) {
    const index_t L = lengths[b];
    std::vector<double> q(L * D), k(L * D), v(L * D), p((2 * T - 1) * D), ctx(L * D, 0.0);
    for (index_t t = 0; t < L; ++t) {
      linear(*w[2], w[3], &x(t, b, 0), &q[t * D]);
      linear(*w[4], w[5], &x(t, b, 0), &k[t * D]);
      linear(*w[6], w[7], &x(t, b, 0), &v[t * D]);
    }
    for (index_t r = 0; r < 2 * T - 1; ++r) linear(*w[10], nullptr, &pos_emb(r, 0), &p[r * D]);
    for (index_t h = 0; h < H; ++h)
      for (index_t i = 0; i < L; ++i) {
        std::vector<double> s(i + 1);  // causal: keys 0..i
        double mx = -1e300, z = 0;
        for (index_t j = 0; j <= i; ++j) {
          double ac = 0, bd = 0;
          for (index_t c = 0; c < dk; ++c) {
            const double qc = q[i * D + h * dk + c];
            ac += (qc + (*w[0])(h, c)) * k[j * D + h * dk + c];
            bd += (qc + (*w[1])(h, c)) * p[(T - 1 - (i - j)) * D + h * dk + c];
          }
          s[j] = (ac + bd) / std::sqrt(double(dk));
          mx = std::max(mx, s[j]);
        }
        for (auto& e : s) z += (e = std::exp(e - mx));
        for (index_t j = 0; j <= i; ++j)
          for (index_t c = 0; c < dk; ++c)
            ctx[i * D + h * dk + c] += s[j] / z * v[j * D + h * dk + c];
      }
    for (index_t t = 0; t < T; ++t) {
      std::vector<double> out(D, 0.0);
      if (t < L) linear(*w[8], w[9], &ctx[t * D], out.data());
      for (index_t o = 0; o < D; ++o) CHECK(y(t, b, o) == Approx(out[o]).margin(1e-12));
    }
  }
}

TEST_CASE("Masked keys get exactly zero weight and padded frames give zero", "[nn][attention]") {
  OneThread one_thread;
  const index_t T = 9, B = 4, D = 8;
  const std::vector<std::int32_t> lengths = {9, 5, 0, 2};  // an empty item too
  auto x = randn({T, B, D}, 9);
  const auto dy = randn({T, B, D}, 10);
  asrkit::Rng rng(11);
  for (const auto& mask : all_masks()) {
    INFO("mask " << mask_name(mask));
    MultiHeadAttention<double> mha(D, 2, rng);
    const auto y = mha.forward_train(x.view(), asrkit::as_view(lengths), mask);
    const auto dx = mha.backward(dy.view());
    for (index_t b = 0; b < B; ++b) {
      const index_t L = lengths[b];
      for (index_t h = 0; h < 2; ++h) {
        const auto a = mha.attention_weights(b, h);
        REQUIRE(a.shape() == Shape{L, L});
        for (index_t i = 0; i < L; ++i) {
          const auto kr = asrkit::key_range(mask, i, L);
          double sum = 0;
          for (index_t j = 0; j < L; ++j) {
            if (j < kr.begin || j >= kr.end)
              CHECK(a(i, j) == 0.0);
            else
              CHECK(a(i, j) > 0.0);
            sum += a(i, j);
          }
          CHECK(sum == Approx(1.0).epsilon(1e-12));
        }
      }
      for (index_t t = L; t < T; ++t)
        for (index_t d = 0; d < D; ++d) {
          CHECK(y(t, b, d) == 0.0);
          CHECK(dx(t, b, d) == 0.0);
        }
    }
    // Padding never changes a result: garbage in padded frames leaves every output as it was.
    auto x2 = x;
    for (index_t b = 0; b < B; ++b)
      for (index_t t = lengths[b]; t < T; ++t)
        for (index_t d = 0; d < D; ++d) x2(t, b, d) = 1e3 * (d + 1);
    CHECK(max_abs_diff(mha.forward(x2.view(), asrkit::as_view(lengths), mask),
                       mha.forward(x.view(), asrkit::as_view(lengths), mask)) == 0.0);
  }
}

namespace {

// Output frames [t0, t1) of the full-sequence run must equal those of a run over frames
// [s0, s1) only (no mask), for both layers (the relative one with the shorter table).
template <class Layer>
void check_same_frames(const Layer& layer, const Tensor<double>& x, const Tensor<double>& full,
                       index_t s0, index_t s1, index_t t0, index_t t1) {
  const index_t B = x.dim(1), D = x.dim(2);
  Tensor<double> sub({s1 - s0, B, D});
  for (index_t t = s0; t < s1; ++t) sub[t - s0].flat() = x[t].flat();
  Tensor<double> ys;
  if constexpr (std::is_same_v<Layer, RelPositionMultiHeadAttention<double>>) {
    const auto pos = asrkit::RelPositionalEncoding<double>(D).table(s1 - s0);
    ys = layer.forward(sub.view(), pos.view());
  } else {
    ys = layer.forward(sub.view());
  }
  for (index_t t = t0; t < t1; ++t) {
    INFO("frame " << t << " of the window [" << s0 << ", " << s1 << ")");
    CHECK(max_abs_diff(ys[t - s0], full[t]) < 1e-12);
  }
}

template <class Layer>
Tensor<double> run_full(const Layer& layer, const Tensor<double>& x, const AttentionMask& mask) {
  if constexpr (std::is_same_v<Layer, RelPositionMultiHeadAttention<double>>) {
    const auto pos = asrkit::RelPositionalEncoding<double>(x.dim(2)).table(x.dim(0));
    return layer.forward(x.view(), pos.view(), {}, mask);
  } else {
    return layer.forward(x.view(), {}, mask);
  }
}

template <class Layer>
void check_streaming(const Layer& layer) {
  const index_t T = 11, B = 2, D = 8;
  const auto x = randn({T, B, D}, 12);
  for (const index_t left : {index_t(-1), index_t(0), index_t(1)}) {
    const index_t c = 3;
    INFO("chunk 3, left_chunks " << left);
    const auto full = run_full(layer, x, AttentionMask::chunked(c, left));
    for (index_t k = 0; k * c < T; ++k) {
      const index_t start = left < 0 ? 0 : std::max<index_t>((k - left) * c, 0);
      check_same_frames(layer, x, full, start, std::min(T, (k + 1) * c), k * c,
                        std::min(T, (k + 1) * c));
    }
    // The mask really limits the context: without it the outputs differ.
    CHECK(max_abs_diff(full, run_full(layer, x, AttentionMask::full())) > 1e-6);
  }
  // Causal: output t is unchanged when frames after t change.
  const auto causal = run_full(layer, x, AttentionMask::causal());
  for (const index_t t : {index_t(0), index_t(4), index_t(9)}) {
    auto x2 = x;
    for (index_t s = t + 1; s < T; ++s) x2[s].flat() *= -3.0;
    const auto y2 = run_full(layer, x2, AttentionMask::causal());
    for (index_t s = 0; s <= t; ++s) CHECK(max_abs_diff(y2[s], causal[s]) < 1e-12);
    if (t + 1 < T) CHECK(max_abs_diff(y2[t + 1], causal[t + 1]) > 1e-6);
  }
}

}  // namespace

TEST_CASE("A chunk mask equals attending over just the visible frames",
          "[nn][attention][streaming]") {
  OneThread one_thread;
  asrkit::Rng rng(13);
  SECTION("MultiHeadAttention") { check_streaming(MultiHeadAttention<double>(8, 2, rng)); }
  SECTION("RelPositionMultiHeadAttention") {
    // Relative positions are shift invariant, so a window with its own 2T'−1 table matches too.
    check_streaming(RelPositionMultiHeadAttention<double>(8, 2, rng));
  }
}

TEST_CASE("Attention results do not depend on the thread count", "[nn][attention]") {
  const index_t T = 150, B = 3, D = 32;  // more than one row block of 64
  const auto x = randn<float>({T, B, D}, 14);
  const auto dy = randn<float>({T, B, D}, 15);
  const auto pos = asrkit::RelPositionalEncoding<float>(D).table(T);
  const std::vector<std::int32_t> lengths = {150, 97, 130};
  auto run = [&](int threads) {
    asrkit::set_num_threads(threads);
    asrkit::Rng rng(16);
    RelPositionMultiHeadAttention<float> rel(D, 4, rng, with_bn(true, 0.1));
    auto y = rel.forward_train(x.view(), pos.view(), asrkit::as_view(lengths),
                               AttentionMask::chunked(16, 2));
    auto dx = rel.backward(dy.view());
    std::vector<float> grads;
    rel.for_each_parameter([&](const std::string&, auto& p) {
      grads.insert(grads.end(), p.grad.data(), p.grad.data() + p.grad.numel());
    });
    return std::make_tuple(std::move(y), std::move(dx), grads);
  };
  const auto one = run(1), two = run(2);
  asrkit::set_num_threads(1);
  CHECK(max_abs_diff(std::get<0>(one), std::get<0>(two)) == 0.0);
  CHECK(max_abs_diff(std::get<1>(one), std::get<1>(two)) == 0.0);
  CHECK(std::get<2>(one) == std::get<2>(two));
}

TEST_CASE("Attention in float agrees with double", "[nn][attention]") {
  OneThread one_thread;
  const index_t T = 70, B = 2, D = 16;
  const auto xd = randn({T, B, D}, 17);
  Tensor<float> xf(xd.shape());
  for (index_t i = 0; i < xd.numel(); ++i) xf.data()[i] = static_cast<float>(xd.data()[i]);
  asrkit::Rng r1(18), r2(18);
  RelPositionMultiHeadAttention<double> d(D, 2, r1);
  RelPositionMultiHeadAttention<float> f(D, 2, r2);
  int copied = 0;
  d.for_each_parameter([&](const std::string& name, auto& p) {
    f.for_each_parameter([&](const std::string& n2, auto& q) {
      if (n2 != name) return;
      for (index_t i = 0; i < p.value.numel(); ++i)
        q.value.data()[i] = static_cast<float>(p.value.data()[i]);
      ++copied;
    });
  });
  CHECK(copied == 11);
  const auto yd = d.forward(xd.view(), asrkit::RelPositionalEncoding<double>(D).table(T).view());
  const auto yf = f.forward(xf.view(), asrkit::RelPositionalEncoding<float>(D).table(T).view());
  CHECK(max_abs_diff(yd, yf) < 1e-5);
}

TEST_CASE("Attention layers validate their arguments", "[nn][attention][errors]") {
  OneThread one_thread;
  asrkit::Rng rng(19);
  REQUIRE_THROWS_ID(
      MultiHeadAttention<float>(10, 3, rng), asrkit::ValueError,
      "[asrkit.attention.1] MultiHeadAttention: d_model must be a positive multiple of heads, "
      "got d_model=10 heads=3");
  REQUIRE_THROWS_ID(RelPositionMultiHeadAttention<float>(8, 2, rng, with_bn(false, 1.0)),
                    asrkit::ValueError, "[asrkit.attention.1]");
  MultiHeadAttention<float> mha(8, 2, rng);
  RelPositionMultiHeadAttention<float> rel(8, 2, rng);
  Tensor<float> x({4, 2, 8}), wrong({4, 2, 6}), pos({7, 8}), bad_pos({8, 8});
  const std::vector<std::int32_t> ok = {4, 2}, too_long = {5, 1}, three = {1, 2, 3};
  REQUIRE_THROWS_ID(mha.forward(wrong.view()), asrkit::ShapeError,
                    "[asrkit.attention.2] MultiHeadAttention: argument x: expected shape [T, B, "
                    "8], got [4, 2, 6]");
  REQUIRE_THROWS_ID(mha.forward(x.view(), asrkit::as_view(three)), asrkit::ShapeError,
                    "[asrkit.attention.3]");
  REQUIRE_THROWS_ID(mha.forward(x.view(), asrkit::as_view(too_long)), asrkit::ValueError,
                    "[asrkit.attention.4] MultiHeadAttention: lengths[0] = 5 is outside [0, 4]");
  REQUIRE_THROWS_ID(mha.forward(x.view(), asrkit::as_view(ok), AttentionMask::chunked(0)),
                    asrkit::ValueError, "[asrkit.attention.5]");
  REQUIRE_THROWS_ID(rel.forward(x.view(), bad_pos.view()), asrkit::ShapeError,
                    "[asrkit.attention.6] RelPositionMultiHeadAttention: argument pos_emb: "
                    "expected shape [7, 8]");
  REQUIRE_THROWS_ID(mha.backward(x.view()), asrkit::ValueError, "[asrkit.attention.7]");
  REQUIRE_THROWS_ID(mha.attention_weights(0, 0), asrkit::ValueError, "[asrkit.attention.7]");
  rel.forward_train(x.view(), pos.view(), asrkit::as_view(ok));
  REQUIRE_THROWS_ID(rel.backward(wrong.view()), asrkit::ShapeError, "[asrkit.attention.8]");
  CHECK(rel.backward(x.view()).shape() == x.shape());
}

// ---- positional encodings ---------------------------------------------------------------------

TEST_CASE("Sinusoidal tables follow Vaswani et al. and ESPnet's relative layout", "[nn][posenc]") {
  OneThread one_thread;
  const index_t D = 6, T = 4;
  asrkit::SinusoidalPositionalEncoding<double> abs_pe(D);
  asrkit::RelPositionalEncoding<double> rel_pe(
      D, {std::nullopt, 0.0, 0, 3});  // T > max_len: computed per call
  const auto table = abs_pe.table(T);
  const auto pos = rel_pe.table(T);
  REQUIRE(pos.shape() == Shape{2 * T - 1, D});
  for (index_t i = 0; i < D / 2; ++i) {
    const double w = std::pow(10000.0, -2.0 * i / D);
    for (index_t t = 0; t < T; ++t) {
      CHECK(table(t, 2 * i) == Approx(std::sin(t * w)).margin(1e-15));
      CHECK(table(t, 2 * i + 1) == Approx(std::cos(t * w)).margin(1e-15));
    }
    for (index_t r = 0; r < 2 * T - 1; ++r) {  // row r: relative distance T − 1 − r
      const double p = double(T - 1 - r);
      CHECK(pos(r, 2 * i) == Approx(std::sin(p * w)).margin(1e-15));
      CHECK(pos(r, 2 * i + 1) == Approx(std::cos(p * w)).margin(1e-15));
    }
  }
  // forward: x·sqrt(D) (+ PE), padded frames 0.
  const auto x = randn({T, 2, D}, 20);
  const std::vector<std::int32_t> lengths = {4, 2};
  const auto y = abs_pe.forward(x.view(), asrkit::as_view(lengths));
  const auto r = rel_pe.forward(x.view(), asrkit::as_view(lengths));
  for (index_t t = 0; t < T; ++t)
    for (index_t b = 0; b < 2; ++b)
      for (index_t j = 0; j < D; ++j) {
        const bool valid = t < lengths[b];
        CHECK(y(t, b, j) ==
              Approx(valid ? x(t, b, j) * std::sqrt(double(D)) + table(t, j) : 0.0).margin(1e-14));
        CHECK(r.x(t, b, j) ==
              Approx(valid ? x(t, b, j) * std::sqrt(double(D)) : 0.0).margin(1e-14));
      }
  CHECK(max_abs_diff(r.pos_emb, pos) == 0.0);
}

TEST_CASE("Positional encoding backward matches finite differences", "[nn][posenc][gradcheck]") {
  OneThread one_thread;
  auto x = randn({5, 2, 4}, 21);
  const std::vector<std::int32_t> lengths = {5, 3};
  asrkit::SinusoidalPositionalEncoding<double> abs_pe(4, {2.5, 0.4, 7, 5000});
  check_gradients(abs_pe, x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), asrkit::as_view(lengths));
  });
  asrkit::RelPositionalEncoding<double> rel_pe(4, {std::nullopt, 0.4, 8, 5000});
  check_gradients(rel_pe, x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), asrkit::as_view(lengths)).x;
  });
  REQUIRE_THROWS_ID(asrkit::RelPositionalEncoding<float>(5), asrkit::ValueError,
                    "[asrkit.posenc.1]");
  Tensor<double> bad({5, 2, 3});
  REQUIRE_THROWS_ID(abs_pe.forward(bad.view()), asrkit::ShapeError, "[asrkit.posenc.2]");
  const std::vector<std::int32_t> one = {1}, neg = {-1, 2};
  REQUIRE_THROWS_ID(abs_pe.forward(x.view(), asrkit::as_view(one)), asrkit::ShapeError,
                    "[asrkit.posenc.3]");
  REQUIRE_THROWS_ID(abs_pe.forward(x.view(), asrkit::as_view(neg)), asrkit::ValueError,
                    "[asrkit.posenc.4]");
  asrkit::SinusoidalPositionalEncoding<double> fresh(4);
  REQUIRE_THROWS_ID(fresh.backward(x.view()), asrkit::ValueError, "[asrkit.posenc.5]");
  abs_pe.forward_train(x.view());
  REQUIRE_THROWS_ID(abs_pe.backward(bad.view()), asrkit::ShapeError, "[asrkit.posenc.6]");
}
