// BatchNorm, SequenceBatchNorm, RecurrentBatchNorm and LayerNorm: forward against direct
// formulas, every backward (input, γ, β; training through the batch statistics) against finite
// differences in double, padding invariance, per-step statistics and the beyond-T_max rule.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/layer_norm.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

Tensor<double> randn(const Shape& s, std::uint64_t seed, double mean = 0.0, double stddev = 1.0) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), mean, stddev);
  return t;
}

Tensor<float> to_float(const Tensor<double>& t) {
  Tensor<float> f(t.shape());
  for (index_t i = 0; i < t.numel(); ++i) f.data()[i] = static_cast<float>(t.data()[i]);
  return f;
}

template <class A, class B>
double max_abs_diff(const A* a, const B* b, index_t n) {
  double worst = 0;
  for (index_t i = 0; i < n; ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return worst;
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  return max_abs_diff(a.data(), b.data(), a.numel());
}

/// Checks dL/dx, dL/dγ and dL/dβ of `layer` (through `fwd(layer_copy, x)`, a training forward)
/// against central differences; L = sum(w ⊙ y).
template <class Layer, class Fwd>
void check_gradients(Layer layer, Tensor<double>& x, Fwd fwd, double tol = 1e-6) {
  Layer initial = layer;
  auto y = fwd(layer, x);
  const auto w = randn(y.shape(), 99);
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(w.view());
  auto loss = [&] {
    Layer l = initial;  // a fresh copy: the forward updates running statistics
    return asrkit_test::dot(fwd(l, x), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < tol);
  // Parameters: perturb the copy the loss starts from.
  Layer* target = &initial;
  std::vector<Tensor<double>*> values;
  std::vector<const Tensor<double>*> grads;
  target->for_each_parameter([&](const std::string&, auto& p) { values.push_back(&p.value); });
  layer.for_each_parameter([&](const std::string&, auto& p) { grads.push_back(&p.grad); });
  REQUIRE(values.size() == grads.size());
  for (std::size_t k = 0; k < values.size(); ++k) {
    INFO("parameter " << k);
    CHECK(asrkit_test::max_gradient_error(loss, *values[k], *grads[k]) < tol);
  }
}

}  // namespace

TEST_CASE("BatchNorm training normalises with batch statistics and updates running stats", "[nn][batchnorm]") {
  asrkit::BatchNorm<double> bn(3);
  auto x = randn({6, 3}, 1, 2.0, 3.0);
  auto y = bn.forward_train(x.view());
  for (index_t j = 0; j < 3; ++j) {
    double mean = 0, var = 0, ym = 0, yv = 0;
    for (index_t i = 0; i < 6; ++i) mean += x(i, j) / 6;
    for (index_t i = 0; i < 6; ++i) var += (x(i, j) - mean) * (x(i, j) - mean) / 6;
    for (index_t i = 0; i < 6; ++i) {
      CHECK(y(i, j) == Approx((x(i, j) - mean) / std::sqrt(var + 1e-5)).epsilon(1e-12));
      ym += y(i, j) / 6;
    }
    for (index_t i = 0; i < 6; ++i) yv += y(i, j) * y(i, j) / 6;
    CHECK(std::fabs(ym) < 1e-12);
    CHECK(yv == Approx(var / (var + 1e-5)).epsilon(1e-12));
    // PyTorch: running = 0.9 running + 0.1 batch, unbiased variance.
    CHECK(bn.running_mean()(j) == Approx(0.1 * mean).epsilon(1e-12));
    CHECK(bn.running_var()(j) == Approx(0.9 + 0.1 * var * 6 / 5).epsilon(1e-12));
  }
  CHECK(bn.num_batches_tracked()() == 1);
}

TEST_CASE("BatchNorm inference uses the running statistics", "[nn][batchnorm]") {
  asrkit::BatchNorm<double> bn(2);
  bn.running_mean()(0) = 1.0;
  bn.running_mean()(1) = -2.0;
  bn.running_var()(0) = 4.0;
  bn.running_var()(1) = 0.25;
  bn.weight().value(0) = 2.0;
  bn.bias().value(1) = 0.5;
  auto x = randn({2, 3, 2}, 2);
  auto y = bn.forward(x.view());
  for (index_t i = 0; i < 6; ++i) {
    const double* xr = x.data() + 2 * i;
    const double* yr = y.data() + 2 * i;
    CHECK(yr[0] == Approx(2.0 * (xr[0] - 1.0) / std::sqrt(4.0 + 1e-5)).epsilon(1e-12));
    CHECK(yr[1] == Approx((xr[1] + 2.0) / std::sqrt(0.25 + 1e-5) + 0.5).epsilon(1e-12));
  }
}

TEST_CASE("BatchNorm momentum nullopt is a cumulative average", "[nn][batchnorm]") {
  asrkit::BatchNormOptions o;
  o.momentum = std::nullopt;
  asrkit::BatchNorm<double> bn(1, o);
  auto a = randn({4, 1}, 3), b = randn({5, 1}, 4, 1.0);
  bn.forward_train(a.view());
  bn.forward_train(b.view());
  double ma = 0, mb = 0;
  for (index_t i = 0; i < 4; ++i) ma += a(i, 0) / 4;
  for (index_t i = 0; i < 5; ++i) mb += b(i, 0) / 5;
  CHECK(bn.running_mean()(0) == Approx((ma + mb) / 2).epsilon(1e-12));
  CHECK(bn.num_batches_tracked()() == 2);
}

TEST_CASE("BatchNorm backward matches finite differences", "[nn][batchnorm][gradcheck]") {
  asrkit::BatchNorm<double> bn(4);
  asrkit::Rng rng(5);
  rng.fill_normal(bn.weight().value.view(), 1.0, 0.5);
  rng.fill_normal(bn.bias().value.view(), 0.0, 0.5);
  auto x = randn({3, 5, 4}, 6, 1.0, 2.0);  // leading axes flattened: 15 rows
  check_gradients(bn, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
  // means 20σ from 0: the centred forms of the forward and backward passes (batch_norm.hpp)
  auto far = randn({3, 5, 4}, 6, 40.0, 2.0);
  check_gradients(bn, far, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });

  asrkit::BatchNormOptions no_affine;
  check_gradients(bn, x, [](auto& l, const Tensor<double>& in) {
    return l.forward_train(Tensor<double>(in.view()));
  });
  no_affine.affine = false;
  asrkit::BatchNorm<double> plain(4, no_affine);
  int count = 0;
  plain.for_each_parameter([&](const std::string&, auto&) { ++count; });
  CHECK(count == 0);
  check_gradients(plain, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
}

TEST_CASE("BatchNorm statistics survive a large offset in float", "[nn][batchnorm]") {
  asrkit::BatchNorm<float> bn(3);
  auto x = to_float(randn({200, 3}, 7, 1e4, 1.0));
  auto y = bn.forward_train(x.view());
  for (index_t j = 0; j < 3; ++j) {
    double s = 0, s2 = 0;
    for (index_t i = 0; i < 200; ++i) {
      s += y(i, j);
      s2 += static_cast<double>(y(i, j)) * y(i, j);
    }
    CHECK(std::fabs(s / 200) < 1e-3);
    CHECK(s2 / 200 == Approx(1.0).epsilon(1e-3));
  }
}

// apply_affine normalises uncentred, y = x·a + (b − mean·a), unless a mean lies more than 8
// standard deviations from 0 (batch_norm.hpp): inference with running statistics far off zero
// must still match (x − mean)·invstd elementwise, and the uncentred form just inside the bound.
TEST_CASE("BatchNorm inference is elementwise accurate for means far from zero", "[nn][batchnorm]") {
  for (double offset : {0.5, 7.0, 1e4}) {
    INFO("mean " << offset << " standard deviations from 0");
    const index_t cols = 37;  // a vector middle and a scalar tail
    asrkit::BatchNorm<float> bn(cols);
    const auto x = to_float(randn({64, cols}, 12, offset * 3.0, 3.0));
    for (index_t j = 0; j < cols; ++j) {
      bn.running_mean()(j) = static_cast<float>(offset * 3.0 + 0.01 * j);
      bn.running_var()(j) = 9.0f;
    }
    const auto y = bn.forward(x.view());
    double worst = 0;
    for (index_t i = 0; i < 64; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const double want = (static_cast<double>(x(i, j)) - static_cast<double>(bn.running_mean()(j))) /
                            std::sqrt(9.0 + 1e-5);
        worst = std::max(worst, std::fabs(y(i, j) - want));
      }
    CHECK(worst < 2e-6);
  }
}

// The moments of a chunk are summed in float over at most 64 rows at a time, then in double
// (norm_kernels.hpp): with few features one chunk holds tens of thousands of rows, where a float
// running sum would lose about 1e-5 of the mean and variance. The first row, the chunk's shift,
// lies 4σ from the mean, so the differences summed do not average out.
TEST_CASE("BatchNorm float statistics over many rows keep double accuracy", "[nn][batchnorm]") {
  const index_t rows = 100000, cols = 2;  // one chunk
  auto x = to_float(randn({rows, cols}, 11, 3.0, 2.0));
  for (index_t j = 0; j < cols; ++j) x(0, j) = 3.0f + 4 * 2.0f;
  asrkit::BatchNormOptions o;
  o.momentum = std::nullopt;  // after one batch the running statistics are the batch's own
  asrkit::BatchNorm<float> bn(cols, o);
  bn.forward_train(x.view());
  for (index_t j = 0; j < cols; ++j) {
    double mean = 0, m2 = 0;
    for (index_t i = 0; i < rows; ++i) mean += static_cast<double>(x(i, j)) / rows;
    for (index_t i = 0; i < rows; ++i) m2 += (x(i, j) - mean) * (x(i, j) - mean);
    const double var = m2 / (rows - 1);  // the running update is unbiased
    INFO("column " << j);
    CHECK(std::fabs(bn.running_mean()(j) - mean) < 1e-6 * std::sqrt(var));
    CHECK(std::fabs(bn.running_var()(j) - var) < 1e-6 * var);
  }
}

TEST_CASE("BatchNorm results do not depend on the thread count", "[nn][batchnorm]") {
  auto x = to_float(randn({256, 4096}, 8, 0.5, 2.0));  // reductions: 4 chunks of 64 rows
  auto dy = to_float(randn({256, 4096}, 9));
  auto run = [&](int threads) {
    asrkit::set_num_threads(threads);
    asrkit::BatchNorm<float> bn(4096);
    auto y = bn.forward_train(x.view());
    auto dx = bn.backward(dy.view());
    return std::make_pair(std::move(y), std::move(dx));
  };
  const auto one = run(1), two = run(2);
  asrkit::set_num_threads(1);
  CHECK(std::equal(one.first.data(), one.first.data() + one.first.numel(), two.first.data()));
  CHECK(std::equal(one.second.data(), one.second.data() + one.second.numel(), two.second.data()));
}

// forward_train(view) caches a copy of x (streamed from kStreamBytes), forward_train(Tensor&&)
// keeps the moved tensor: both must give the same y, dx, dγ, dβ and running statistics, and the
// copy must not follow later writes to the caller's x.
TEST_CASE("BatchNorm: a moved input and a viewed one give the same forward and backward",
          "[nn][batchnorm]") {
  for (index_t rows : {6, 1100}) {  // 1100 x 1021 floats: the streaming copy, odd row alignments
    INFO("rows " << rows);
    const index_t cols = 1021;
    auto x = to_float(randn({rows, cols}, 50, 0.5, 2.0));
    const auto dy = to_float(randn({rows, cols}, 51));
    asrkit::BatchNorm<float> viewed(cols);
    asrkit::Rng rng(52);
    rng.fill_normal(viewed.weight().value.view(), 1.0f, 0.5f);
    rng.fill_normal(viewed.bias().value.view(), 0.0f, 0.5f);
    asrkit::BatchNorm<float> moved = viewed;
    const auto y_viewed = viewed.forward_train(x.view());
    const auto y_moved = moved.forward_train(Tensor<float>(x.view()));
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = std::nanf("");  // the copy is the cache
    const auto dx_viewed = viewed.backward(dy.view());
    const auto dx_moved = moved.backward(dy.view());
    CHECK(max_abs_diff(y_viewed, y_moved) == 0.0);
    CHECK(max_abs_diff(dx_viewed, dx_moved) == 0.0);
    CHECK(std::all_of(dx_viewed.data(), dx_viewed.data() + dx_viewed.numel(),
                      [](float v) { return std::isfinite(v); }));
    CHECK(max_abs_diff(viewed.weight().grad, moved.weight().grad) == 0.0);
    CHECK(max_abs_diff(viewed.bias().grad, moved.bias().grad) == 0.0);
    CHECK(max_abs_diff(viewed.running_mean(), moved.running_mean()) == 0.0);
    CHECK(max_abs_diff(viewed.running_var(), moved.running_var()) == 0.0);
  }
  auto p_x = randn({4, 3, 2}, 53);
  Tensor<std::int32_t> lengths({3});
  lengths(0) = 4, lengths(1) = 1, lengths(2) = 3;
  const auto dy = randn({4, 3, 2}, 54);
  asrkit::SequenceBatchNorm<double> viewed(2);
  asrkit::SequenceBatchNorm<double> moved = viewed;
  const auto y_viewed = viewed.forward_train(p_x.view(), lengths.view());
  const auto y_moved = moved.forward_train(Tensor<double>(p_x.view()), lengths.view());
  CHECK(max_abs_diff(y_viewed, y_moved) == 0.0);
  CHECK(max_abs_diff(viewed.backward(dy.view()), moved.backward(dy.view())) == 0.0);
}

TEST_CASE("BatchNorm validates its arguments", "[nn][batchnorm][errors]") {
  REQUIRE_THROWS_ID(asrkit::BatchNorm<float>(0), asrkit::ValueError, "[asrkit.batchnorm.7]");
  asrkit::BatchNormOptions bad;
  bad.momentum = 1.5;
  REQUIRE_THROWS_ID(asrkit::BatchNorm<float>(3, bad), asrkit::ValueError, "[asrkit.batchnorm.7]");
  asrkit::BatchNorm<float> bn(3);
  Tensor<float> wrong({4, 2}), one_row({1, 3}), ok({4, 3});
  REQUIRE_THROWS_ID(bn.forward(wrong.view()), asrkit::ShapeError,
                    "[asrkit.batchnorm.1] BatchNorm: input must have shape [..., 3] (features last), got [4, 2]");
  REQUIRE_THROWS_ID(bn.forward_train(one_row.view()), asrkit::ValueError, "[asrkit.batchnorm.2]");
  REQUIRE_THROWS_ID(bn.backward(ok.view()), asrkit::ValueError, "[asrkit.batchnorm.3]");
  bn.forward_train(ok.view());
  REQUIRE_THROWS_ID(bn.backward(wrong.view()), asrkit::ShapeError, "[asrkit.batchnorm.4]");
}

// ---- sequence-wise BN -----------------------------------------------------------------------

namespace {

// x [T, B, F] with lengths; padded frames filled with large garbage.
struct Padded {
  Tensor<double> x;
  Tensor<std::int32_t> lengths;
  Tensor<double> valid_rows;  // the valid frames concatenated, [n, F]
  std::vector<index_t> rows;  // row of x (t * B + b) of each valid frame
};

Padded make_padded(index_t T, std::vector<std::int32_t> lens, index_t F, std::uint64_t seed) {
  Padded p;
  const auto B = static_cast<index_t>(lens.size());
  p.x = randn({T, B, F}, seed, 0.5, 2.0);
  p.lengths = Tensor<std::int32_t>({B});
  for (index_t b = 0; b < B; ++b) p.lengths(b) = lens[static_cast<std::size_t>(b)];
  for (index_t t = 0; t < T; ++t)
    for (index_t b = 0; b < B; ++b) {
      if (t < lens[static_cast<std::size_t>(b)]) p.rows.push_back(t * B + b);
      else
        for (index_t f = 0; f < F; ++f) p.x(t, b, f) = 1e6 * static_cast<double>(f + 1);
    }
  p.valid_rows = Tensor<double>({static_cast<index_t>(p.rows.size()), F});
  for (std::size_t i = 0; i < p.rows.size(); ++i)
    for (index_t f = 0; f < F; ++f) p.valid_rows(static_cast<index_t>(i), f) = p.x.data()[p.rows[i] * F + f];
  return p;
}

}  // namespace

TEST_CASE("SequenceBatchNorm: padded batch equals BatchNorm over the valid frames", "[nn][batchnorm][sequence]") {
  const index_t F = 4;
  auto p = make_padded(5, {5, 2, 4}, F, 10);
  asrkit::SequenceBatchNorm<double> sbn(F);
  asrkit::BatchNorm<double> ref(F);
  asrkit::Rng rng(11);
  rng.fill_normal(sbn.weight().value.view(), 1.0, 0.3);
  rng.fill_normal(sbn.bias().value.view(), 0.0, 0.3);
  ref.weight().value = sbn.weight().value;
  ref.bias().value = sbn.bias().value;

  auto y = sbn.forward_train(p.x.view(), p.lengths.view());
  auto yr = ref.forward_train(p.valid_rows.view());
  auto dy = randn(y.shape(), 12);
  Tensor<double> dyr({yr.dim(0), F});
  for (std::size_t i = 0; i < p.rows.size(); ++i)
    for (index_t f = 0; f < F; ++f) dyr(static_cast<index_t>(i), f) = dy.data()[p.rows[i] * F + f];
  auto dx = sbn.backward(dy.view());
  auto dxr = ref.backward(dyr.view());

  std::vector<bool> valid(static_cast<std::size_t>(y.numel() / F), false);
  for (std::size_t i = 0; i < p.rows.size(); ++i) {
    valid[static_cast<std::size_t>(p.rows[i])] = true;
    CHECK(max_abs_diff(y.data() + p.rows[i] * F, yr.data() + static_cast<index_t>(i) * F, F) < 1e-12);
    CHECK(max_abs_diff(dx.data() + p.rows[i] * F, dxr.data() + static_cast<index_t>(i) * F, F) < 1e-12);
  }
  for (std::size_t r = 0; r < valid.size(); ++r)
    if (!valid[r])
      for (index_t f = 0; f < F; ++f) {
        CHECK(y.data()[static_cast<index_t>(r) * F + f] == 0.0);
        CHECK(dx.data()[static_cast<index_t>(r) * F + f] == 0.0);
      }
  CHECK(max_abs_diff(sbn.running_mean(), ref.running_mean()) < 1e-12);
  CHECK(max_abs_diff(sbn.running_var(), ref.running_var()) < 1e-12);
  CHECK(max_abs_diff(sbn.weight().grad, ref.weight().grad) < 1e-12);
  CHECK(max_abs_diff(sbn.bias().grad, ref.bias().grad) < 1e-12);

  // Inference: the same as BatchNorm on each valid frame, 0 on padding.
  auto yi = sbn.forward(p.x.view(), p.lengths.view());
  auto yri = ref.forward(p.valid_rows.view());
  for (std::size_t i = 0; i < p.rows.size(); ++i)
    CHECK(max_abs_diff(yi.data() + p.rows[i] * F, yri.data() + static_cast<index_t>(i) * F, F) < 1e-12);
}

TEST_CASE("SequenceBatchNorm: items one by one give the same frames as the padded batch", "[nn][batchnorm][sequence]") {
  // With running statistics (inference), each frame depends on itself only: padded batch ==
  // each item alone (unpadded).
  const index_t F = 3;
  auto p = make_padded(6, {6, 3, 1}, F, 13);
  asrkit::SequenceBatchNorm<double> sbn(F);
  sbn.forward_train(p.x.view(), p.lengths.view());  // some running statistics
  auto y = sbn.forward(p.x.view(), p.lengths.view());
  for (index_t b = 0; b < 3; ++b) {
    const index_t L = p.lengths(b);
    Tensor<double> item({L, 1, F});
    for (index_t t = 0; t < L; ++t)
      for (index_t f = 0; f < F; ++f) item(t, 0, f) = p.x(t, b, f);
    Tensor<std::int32_t> len({1});
    len(0) = static_cast<std::int32_t>(L);
    auto yb = sbn.forward(item.view(), len.view());
    for (index_t t = 0; t < L; ++t)
      for (index_t f = 0; f < F; ++f) CHECK(yb(t, 0, f) == y(t, b, f));
  }
}

TEST_CASE("SequenceBatchNorm backward matches finite differences", "[nn][batchnorm][sequence][gradcheck]") {
  auto p = make_padded(4, {4, 1, 3}, 3, 14);
  for (index_t i = 0; i < p.x.numel(); ++i)  // garbage padding is fine for the layer, not for h
    if (std::fabs(p.x.data()[i]) > 1e5) p.x.data()[i] = 7.0;
  asrkit::SequenceBatchNorm<double> sbn(3);
  asrkit::Rng rng(15);
  rng.fill_normal(sbn.weight().value.view(), 1.0, 0.3);
  rng.fill_normal(sbn.bias().value.view(), 0.0, 0.3);
  const auto lengths = p.lengths;
  check_gradients(sbn, p.x, [&](auto& l, const Tensor<double>& in) {
    return l.forward_train(in.view(), lengths.view());
  });
}

TEST_CASE("SequenceBatchNorm validates lengths", "[nn][batchnorm][sequence][errors]") {
  asrkit::SequenceBatchNorm<float> sbn(2);
  Tensor<float> x({3, 2, 2}), flat({6, 2});
  Tensor<std::int32_t> bad_shape({3}), too_long({2}), ok({2});
  too_long(0) = 4;
  ok(0) = 3;
  ok(1) = 1;
  REQUIRE_THROWS_ID(sbn.forward_train(x.view(), bad_shape.view()), asrkit::ShapeError, "[asrkit.batchnorm.5]");
  REQUIRE_THROWS_ID(sbn.forward_train(x.view(), too_long.view()), asrkit::ValueError,
                    "[asrkit.batchnorm.6] SequenceBatchNorm: lengths[0] = 4 is outside [0, 3]");
  REQUIRE_THROWS_ID(sbn.forward_train(flat.view(), ok.view()), asrkit::ShapeError, "[asrkit.batchnorm.1]");
  Tensor<std::int32_t> one_frame({2});
  one_frame(0) = 1;
  REQUIRE_THROWS_ID(sbn.forward_train(x.view(), one_frame.view()), asrkit::ValueError, "[asrkit.batchnorm.2]");
  CHECK_NOTHROW(sbn.forward_train(x.view(), ok.view()));
}

// ---- recurrent BN ---------------------------------------------------------------------------

TEST_CASE("RecurrentBatchNorm: γ = 0.1, β = 0, per-step statistics and buffers", "[nn][batchnorm][recurrent]") {
  const index_t T = 3, B = 4, F = 2;
  asrkit::RecurrentBatchNorm<double> rbn(F, 5);
  for (index_t j = 0; j < F; ++j) {
    CHECK(rbn.weight().value(j) == 0.1);
    CHECK(rbn.bias().value(j) == 0.0);
  }
  std::vector<std::string> names;
  rbn.for_each_buffer([&](const std::string& n, auto& t) {
    names.push_back(n + t.shape().str());
  });
  CHECK(names == std::vector<std::string>{"running_mean[5, 2]", "running_var[5, 2]", "num_batches_tracked[5]"});

  auto x = randn({T, B, F}, 20, 0.0, 1.0);
  for (index_t t = 0; t < T; ++t)  // very different statistics per step
    for (index_t i = 0; i < B * F; ++i) x[t].data()[i] = x[t].data()[i] * (1.0 + t) + 3.0 * t;
  auto y = rbn.forward_train(x.view());
  for (index_t t = 0; t < T; ++t) {
    asrkit::BatchNorm<double> ref(F);
    ref.weight().value.fill(0.1);
    auto yt = ref.forward_train(x[t]);
    CHECK(max_abs_diff(y[t], yt) < 1e-12);
    CHECK(max_abs_diff(rbn.running_mean()[t], ref.running_mean()) < 1e-12);
    CHECK(max_abs_diff(rbn.running_var()[t], ref.running_var()) < 1e-12);
    CHECK(rbn.num_batches_tracked()(t) == 1);
  }
  for (index_t t = T; t < 5; ++t) {
    CHECK(rbn.running_mean()(t, 0) == 0.0);
    CHECK(rbn.num_batches_tracked()(t) == 0);
  }
}

TEST_CASE("RecurrentBatchNorm: inference beyond T_max uses the statistics of step T_max", "[nn][batchnorm][recurrent]") {
  const index_t F = 3, Tmax = 4;
  asrkit::RecurrentBatchNorm<double> rbn(F, Tmax);
  for (index_t t = 0; t < Tmax; ++t)
    for (index_t j = 0; j < F; ++j) {
      rbn.running_mean()(t, j) = static_cast<double>(t + j);
      rbn.running_var()(t, j) = 1.0 + static_cast<double>(t * t + j);
    }
  auto x = randn({2, F}, 21);
  auto last = rbn.forward_step(x.view(), Tmax - 1);
  for (index_t t : {index_t{4}, index_t{5}, index_t{100}}) CHECK(max_abs_diff(rbn.forward_step(x.view(), t), last) == 0.0);
  for (index_t b = 0; b < 2; ++b)
    for (index_t j = 0; j < F; ++j)
      CHECK(last(b, j) == Approx(0.1 * (x(b, j) - (3.0 + j)) / std::sqrt(10.0 + j + 1e-5)).epsilon(1e-12));
  // A whole sequence longer than T_max at inference: step t uses min(t, T_max - 1).
  auto seq = randn({6, 2, F}, 22);
  auto ys = rbn.forward(seq.view());
  for (index_t t = 0; t < 6; ++t) CHECK(max_abs_diff(ys[t], rbn.forward_step(seq[t], std::min(t, Tmax - 1))) == 0.0);
  // Training beyond T_max is refused.
  REQUIRE_THROWS_ID(rbn.forward_train(seq.view()), asrkit::ValueError, "[asrkit.batchnorm.8]");
  REQUIRE_THROWS_ID(rbn.forward_step_train(x.view(), 4), asrkit::ValueError, "[asrkit.batchnorm.8]");
}

TEST_CASE("RecurrentBatchNorm backward matches finite differences (with lengths)", "[nn][batchnorm][recurrent][gradcheck]") {
  // Lengths {4, 3, 1}: steps 0-2 have >= 2 active items (batch statistics); step 3 has one
  // (population statistics, SPECS §4.4).
  const index_t F = 3;
  asrkit::RecurrentBatchNorm<double> rbn(F, 6);
  asrkit::Rng rng(23);
  rng.fill_normal(rbn.weight().value.view(), 0.1, 0.05);
  rng.fill_normal(rbn.bias().value.view(), 0.0, 0.1);
  rng.fill_normal(rbn.running_mean().view(), 0.0, 1.0);
  rng.fill_uniform(rbn.running_var().view(), 0.5, 2.0);
  auto x = randn({4, 3, F}, 24, 0.3, 1.5);
  Tensor<std::int32_t> lengths({3});
  lengths(0) = 4;
  lengths(1) = 3;
  lengths(2) = 1;
  check_gradients(rbn, x, [&](auto& l, const Tensor<double>& in) { return l.forward_train(in.view(), lengths.view()); });

  // Inactive items: output 0, gradient 0; step 3 (one item) left the population stats alone.
  auto copy = rbn;
  const auto before = Tensor<double>(copy.running_mean()[3]);
  auto y = copy.forward_train(x.view(), lengths.view());
  CHECK(y(1, 2, 0) == 0.0);
  CHECK(y(3, 1, 1) == 0.0);
  CHECK(max_abs_diff(copy.running_mean()[3], before) == 0.0);
  CHECK(copy.num_batches_tracked()(3) == 0);
  CHECK(copy.num_batches_tracked()(2) == 1);
  auto dx = copy.backward(randn(x.shape(), 25).view());
  CHECK(dx(1, 2, 0) == 0.0);
  CHECK(dx(3, 2, 2) == 0.0);
}

TEST_CASE("RecurrentBatchNorm step API equals the sequence API", "[nn][batchnorm][recurrent]") {
  const index_t T = 3, B = 3, F = 2;
  asrkit::RecurrentBatchNorm<double> a(F, T), b(F, T);
  auto x = randn({T, B, F}, 26);
  auto dy = randn({T, B, F}, 27);
  auto ya = a.forward_train(x.view());
  auto dxa = a.backward(dy.view());
  std::vector<Tensor<double>> ys;
  for (index_t t = 0; t < T; ++t) ys.push_back(b.forward_step_train(x[t], t));
  for (index_t t = T - 1; t >= 0; --t) {
    CHECK(max_abs_diff(ys[static_cast<std::size_t>(t)], ya[t]) == 0.0);
    CHECK(max_abs_diff(b.backward_step(dy[t], t), dxa[t]) == 0.0);
  }
  CHECK(max_abs_diff(a.weight().grad, b.weight().grad) < 1e-15);
  REQUIRE_THROWS_ID(asrkit::RecurrentBatchNorm<double>(F, T).backward_step(dy[0], 0), asrkit::ValueError,
                    "[asrkit.batchnorm.3]");
  REQUIRE_THROWS_ID(asrkit::RecurrentBatchNorm<double>(F, 0), asrkit::ValueError, "[asrkit.batchnorm.7]");
}

// ---- LayerNorm ------------------------------------------------------------------------------

TEST_CASE("LayerNorm normalises each row", "[nn][layernorm]") {
  asrkit::LayerNorm<double> ln(5);
  auto x = randn({2, 3, 5}, 30, 4.0, 2.0);
  auto y = ln.forward(x.view());
  for (index_t r = 0; r < 6; ++r) {
    const double* xr = x.data() + 5 * r;
    double m = 0, v = 0;
    for (int j = 0; j < 5; ++j) m += xr[j] / 5;
    for (int j = 0; j < 5; ++j) v += (xr[j] - m) * (xr[j] - m) / 5;
    for (int j = 0; j < 5; ++j) CHECK(y.data()[5 * r + j] == Approx((xr[j] - m) / std::sqrt(v + 1e-5)).epsilon(1e-12));
  }
  auto yt = ln.forward_train(x.view());
  CHECK(max_abs_diff(y, yt) == 0.0);
}

TEST_CASE("LayerNorm backward matches finite differences", "[nn][layernorm][gradcheck]") {
  asrkit::LayerNorm<double> ln(6);
  asrkit::Rng rng(31);
  rng.fill_normal(ln.weight().value.view(), 1.0, 0.5);
  rng.fill_normal(ln.bias().value.view(), 0.0, 0.5);
  auto x = randn({4, 6}, 32, 1.0, 3.0);
  check_gradients(ln, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
  asrkit::LayerNormOptions o;
  o.elementwise_affine = false;
  asrkit::LayerNorm<double> plain(6, o);
  check_gradients(plain, x, [](auto& l, const Tensor<double>& in) { return l.forward_train(in.view()); });
}

TEST_CASE("LayerNorm validates its arguments", "[nn][layernorm][errors]") {
  REQUIRE_THROWS_ID(asrkit::LayerNorm<float>(0), asrkit::ValueError, "[asrkit.layernorm.1]");
  asrkit::LayerNorm<float> ln(3);
  Tensor<float> x({2, 3}), wrong({2, 4});
  REQUIRE_THROWS_ID(ln.backward(x.view()), asrkit::ValueError, "[asrkit.layernorm.2]");
  REQUIRE_THROWS_ID(ln.forward(wrong.view()), asrkit::ShapeError, "[asrkit.layernorm.3]");
  ln.forward_train(x.view());
  REQUIRE_THROWS_ID(ln.backward(wrong.view()), asrkit::ShapeError, "[asrkit.layernorm.3]");
  ln.clear_cache();  // what forward_train kept is gone
  REQUIRE_THROWS_ID(ln.backward(x.view()), asrkit::ValueError, "[asrkit.layernorm.2]");
}

namespace {

/// Naive double-precision BatchNorm (per column) or LayerNorm (per row) forward and backward of
/// x [rows, cols] with γ, β, dy: returns y, dx, dγ, dβ.
struct NormReference {
  std::vector<double> y, dx, dgamma, dbeta;
};
NormReference naive_norm(const Tensor<float>& x, const Tensor<float>& gamma, const Tensor<float>& beta,
                         const Tensor<float>& dy, bool per_row) {
  const index_t rows = x.dim(0), cols = x.dim(1);
  const index_t groups = per_row ? rows : cols, size = per_row ? cols : rows;
  auto at = [&](index_t g, index_t i) { return per_row ? g * cols + i : i * cols + g; };
  NormReference r;
  r.y.resize(static_cast<std::size_t>(rows * cols));
  r.dx.resize(r.y.size());
  r.dgamma.assign(static_cast<std::size_t>(cols), 0.0);
  r.dbeta.assign(static_cast<std::size_t>(cols), 0.0);
  std::vector<double> h(static_cast<std::size_t>(size)), g(static_cast<std::size_t>(size));
  for (index_t k = 0; k < groups; ++k) {
    double m = 0, v = 0;
    for (index_t i = 0; i < size; ++i) m += x.data()[at(k, i)];
    m /= static_cast<double>(size);
    for (index_t i = 0; i < size; ++i) v += (x.data()[at(k, i)] - m) * (x.data()[at(k, i)] - m);
    const double rs = 1.0 / std::sqrt(v / static_cast<double>(size) + 1e-5);
    double mg = 0, mgh = 0;
    for (index_t i = 0; i < size; ++i) {
      const index_t e = at(k, i), c = e % cols;
      h[i] = (x.data()[e] - m) * rs;
      r.y[e] = gamma.data()[c] * h[i] + beta.data()[c];
      g[i] = static_cast<double>(gamma.data()[c]) * dy.data()[e];
      r.dgamma[c] += dy.data()[e] * h[i];
      r.dbeta[c] += dy.data()[e];
      mg += g[i] / static_cast<double>(size);
      mgh += g[i] * h[i] / static_cast<double>(size);
    }
    for (index_t i = 0; i < size; ++i) r.dx[at(k, i)] = rs * (g[i] - mg - h[i] * mgh);
  }
  return r;
}

template <class Layer>
void check_large_norm(Layer& layer, index_t rows, index_t cols, bool per_row) {
  asrkit::Rng rng(40);
  rng.fill_normal(layer.weight().value.view(), 1.0f, 0.5f);
  rng.fill_normal(layer.bias().value.view(), 0.0f, 0.5f);
  const auto x = to_float(randn({rows, cols}, 41, 0.5, 2.0));
  const auto dy = to_float(randn({rows, cols}, 42));
  const auto ref = naive_norm(x, layer.weight().value, layer.bias().value, dy, per_row);
  const auto y = layer.forward_train(x.view());
  asrkit::zero_grad(layer);
  const auto dx = layer.backward(dy.view());
  auto worst = [](const auto& got, const std::vector<double>& want) {
    double w = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      w = std::max(w, std::fabs(got.data()[i] - want[i]) / (1.0 + std::fabs(want[i])));
    return w;
  };
  CHECK(worst(y, ref.y) < 1e-5);
  CHECK(worst(dx, ref.dx) < 1e-5);
  CHECK(worst(layer.weight().grad, ref.dgamma) < 1e-5);
  CHECK(worst(layer.bias().grad, ref.dbeta) < 1e-5);
}

}  // namespace

// From 4 MiB the cached xhat is written with streaming stores (norm_kernels.hpp): odd widths make
// every row start at a different alignment, so the vector middle and scalar ends are all checked.
TEST_CASE("BatchNorm and LayerNorm on large inputs match a naive double reference", "[nn][batchnorm][layernorm]") {
  for (index_t cols : {1024, 1021}) {
    INFO("cols " << cols);
    const index_t rows = 1100;  // 1100 x 1021 floats > 4 MiB
    asrkit::BatchNorm<float> bn(cols);
    check_large_norm(bn, rows, cols, false);
    asrkit::LayerNorm<float> ln(cols);
    check_large_norm(ln, rows, cols, true);
  }
}
