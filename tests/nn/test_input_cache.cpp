// nn/input_cache.hpp: what a training forward keeps of its input. InputCache on its own (copy
// reuse, moved storage, borrowed views, copies of a cache), and every layer that takes a
// TrainInput (BatchNorm, SequenceBatchNorm, LayerNorm, Linear, PointwiseConv1d): a copied, a moved and a
// borrowed input give bit-identical results, a copy is independent of the caller's x, and a
// borrowed x is what backward reads.
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

Tensor<float> random(const Shape& s, std::uint64_t seed) {
  Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.5f, 2.0f);
  return t;
}

/// max |a − b| over two tensors or views of the same shape (infinity when the shapes differ).
template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (index_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return m;
}

void fill(Tensor<float>& x, float v) {
  for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = v;
}

/// Whether asrkit::borrow accepts an argument of type X.
template <class X, class = void>
struct can_borrow : std::false_type {};
template <class X>
struct can_borrow<X, std::void_t<decltype(asrkit::borrow(std::declval<X>()))>> : std::true_type {};

// A tensor or view the caller holds can be lent; a temporary tensor cannot (it would dangle).
static_assert(can_borrow<Tensor<float>&>::value);
static_assert(can_borrow<const Tensor<float>&>::value);
static_assert(can_borrow<asrkit::TensorView<float>>::value);
static_assert(can_borrow<asrkit::TensorView<const float>>::value);
static_assert(!can_borrow<Tensor<float>>::value);
static_assert(!can_borrow<Tensor<float>&&>::value);

}  // namespace

TEST_CASE("InputCache: copies reuse their storage, moves and borrows copy nothing",
          "[nn][input_cache]") {
  asrkit::InputCache<float> cache;
  auto x = random({3, 5}, 1);

  // A view: the cache owns a copy, written by keep (or by the caller after keep_uncopied).
  cache.keep(x.view());
  REQUIRE(cache.shape() == Shape{3, 5});
  CHECK_FALSE(cache.borrowed());
  const float* copy = cache.view().data();
  CHECK(copy != x.data());
  CHECK(max_abs_diff(cache.view(), x) == 0.0);
  const auto y = random({3, 5}, 2);
  float* again = cache.keep_uncopied(y);  // same shape: the same storage, to be written
  CHECK(again == copy);
  CHECK(cache.keep_uncopied(random({2, 5}, 3)) == nullptr);  // moved: nothing to write

  // A moved tensor: its storage becomes the cache.
  auto moved = random({4, 5}, 4);
  const float* storage = moved.data();
  cache.keep(std::move(moved));
  CHECK(cache.view().data() == storage);
  CHECK(cache.shape() == Shape{4, 5});

  // A borrowed view: the caller's memory. A copy of the cache owns a copy of it (the copy may
  // outlive what was lent); a moved cache still borrows.
  cache.keep(asrkit::borrow(x));
  CHECK(cache.borrowed());
  CHECK(cache.view().data() == x.data());
  const asrkit::InputCache<float> copied_cache = cache;
  CHECK_FALSE(copied_cache.borrowed());
  CHECK(copied_cache.view().data() != x.data());
  CHECK(max_abs_diff(copied_cache.view(), x) == 0.0);
  asrkit::InputCache<float> moved_cache = std::move(cache);
  CHECK(moved_cache.view().data() == x.data());
  cache = std::move(moved_cache);

  // A copy of a cache that owns its input owns a copy of that input.
  cache.keep(x.view());
  const asrkit::InputCache<float> deep = cache;
  CHECK(deep.view().data() != cache.view().data());
  CHECK(max_abs_diff(deep.view(), x) == 0.0);

  cache.clear();
  CHECK(cache.shape().numel() == 0);
  CHECK_FALSE(cache.borrowed());
}

namespace {

/// One training step of a layer: y and dx plus the parameter gradients, flattened.
struct Step {
  Tensor<float> y, dx;
  std::vector<Tensor<float>> grads;
};

enum class How { copy, move, borrow };

/// Runs forward_train with x handed over as `how`, then (after `between`) backward(dy).
template <class Layer, class Forward>
Step run(Layer layer, Forward forward, Tensor<float>& x, const Tensor<float>& dy, How how,
         const std::function<void()>& between) {
  Step s;
  if (how == How::copy) s.y = forward(layer, asrkit::TrainInput<float>(x.view()));
  if (how == How::move) s.y = forward(layer, asrkit::TrainInput<float>(Tensor<float>(x.view())));
  if (how == How::borrow) s.y = forward(layer, asrkit::TrainInput<float>(asrkit::borrow(x)));
  between();
  s.dx = layer.backward(dy.view());
  layer.for_each_parameter([&](const std::string&, auto& p) { s.grads.push_back(p.grad); });
  return s;
}

/// y bit-identical; dx and the parameter gradients within `tol` (0: bit-identical).
void check_same(const Step& a, const Step& b, double tol = 0.0) {
  CHECK(max_abs_diff(a.y, b.y) == 0.0);
  CHECK(max_abs_diff(a.dx, b.dx) <= tol);
  REQUIRE(a.grads.size() == b.grads.size());
  for (std::size_t i = 0; i < a.grads.size(); ++i) CHECK(max_abs_diff(a.grads[i], b.grads[i]) <= tol);
}

/// The three ways of passing x agree (within `copied_tol` between a copy and the others: a
/// LayerNorm keeps a copied x as xhat, a moved or borrowed one as x, and its backward recomputes
/// xhat from x, rounded and contracted as the compiler chooses); a copy does not see the
/// caller's x change after forward_train, a borrowed x is what backward reads (it does see the
/// change).
template <class Layer, class Forward>
void check_layer(const Layer& layer, Forward forward, const Shape& in, const Shape& out,
                 double copied_tol = 0.0) {
  auto x = random(in, 11);
  const auto dy = random(out, 12);
  const auto nothing = [] {};
  const Step copied = run(layer, forward, x, dy, How::copy, nothing);
  const Step moved = run(layer, forward, x, dy, How::move, nothing);
  const Step borrowed = run(layer, forward, x, dy, How::borrow, nothing);
  check_same(copied, moved, copied_tol);
  check_same(copied, borrowed, copied_tol);
  check_same(moved, borrowed);

  const auto x0 = Tensor<float>(x.view());
  const auto change = [&] { fill(x, 3.0f); };
  const Step copied_changed = run(layer, forward, x, dy, How::copy, change);
  check_same(copied, copied_changed);
  x = Tensor<float>(x0.view());
  const Step borrowed_changed = run(layer, forward, x, dy, How::borrow, change);
  CHECK(max_abs_diff(borrowed.y, borrowed_changed.y) == 0.0);  // forward read the old x
  // backward read the changed x: the first parameter's gradient (dx where there is none; a
  // Linear's dx does not depend on x) differs
  const auto& read = [](const Step& s) -> const Tensor<float>& { return s.grads.empty() ? s.dx : s.grads[0]; };
  CHECK(max_abs_diff(read(borrowed), read(borrowed_changed)) > 1e-3);
}

}  // namespace

TEST_CASE("BatchNorm, SequenceBatchNorm, LayerNorm, Linear, PointwiseConv1d: copied, moved and borrowed "
          "inputs", "[nn][input_cache]") {
  asrkit::Rng rng(5);
  const Shape seq{6, 3, 7};
  SECTION("BatchNorm") {
    asrkit::BatchNorm<float> bn(7);
    rng.fill_normal(bn.weight().value.view(), 1.0f, 0.5f);
    rng.fill_normal(bn.bias().value.view(), 0.0f, 0.5f);
    check_layer(bn, [](auto& l, asrkit::TrainInput<float> x) { return l.forward_train(std::move(x)); },
                seq, seq);
  }
  SECTION("SequenceBatchNorm") {
    asrkit::SequenceBatchNorm<float> bn(7);
    rng.fill_normal(bn.weight().value.view(), 1.0f, 0.5f);
    Tensor<std::int32_t> lengths({3});
    lengths(0) = 6, lengths(1) = 2, lengths(2) = 4;
    check_layer(bn,
                [&](auto& l, asrkit::TrainInput<float> x) {
                  return l.forward_train(std::move(x), lengths.view());
                },
                seq, seq);
  }
  SECTION("LayerNorm") {
    asrkit::LayerNorm<float> ln(7);
    rng.fill_normal(ln.weight().value.view(), 1.0f, 0.5f);
    rng.fill_normal(ln.bias().value.view(), 0.0f, 0.5f);
    const auto forward = [](auto& l, asrkit::TrainInput<float> x) { return l.forward_train(std::move(x)); };
    // dx differed by up to 4.8e-7 (a few ulps) between the paths in the -O3 build, the
    // parameter gradients not at all
    constexpr double tol = 1e-5;
    check_layer(ln, forward, seq, seq, tol);
    asrkit::LayerNormOptions plain;
    plain.elementwise_affine = false;
    check_layer(asrkit::LayerNorm<float>(7, plain), forward, seq, seq, tol);
    // from 4 MiB xhat is written with streaming stores; 1021: rows start at every alignment
    check_layer(asrkit::LayerNorm<float>(1021), forward, Shape{1100, 1021}, Shape{1100, 1021}, tol);
  }
  SECTION("Linear") {
    asrkit::Linear<float> fc(7, 4, rng);
    check_layer(fc, [](auto& l, asrkit::TrainInput<float> x) { return l.forward_train(std::move(x)); },
                seq, Shape{6, 3, 4});
  }
  SECTION("PointwiseConv1d") {
    asrkit::PointwiseConv1d<float> pw(7, 5, rng);
    check_layer(pw, [](auto& l, asrkit::TrainInput<float> x) { return l.forward_train(std::move(x)); },
                seq, Shape{6, 3, 5});
  }
}

TEST_CASE("A copied layer keeps its own copy of a copied input", "[nn][input_cache]") {
  asrkit::Rng rng(6);
  asrkit::Linear<float> fc(7, 4, rng);
  auto x = random({5, 7}, 13);
  const auto dy = random({5, 4}, 14);
  fc.forward_train(x.view());
  asrkit::Linear<float> twin = fc;
  const auto dx = fc.backward(dy.view());
  fc.forward_train(random({5, 7}, 15).view());  // overwrites fc's cache in place (same shape)
  fc.clear_cache();
  CHECK(max_abs_diff(twin.backward(dy.view()), dx) == 0.0);
  CHECK(max_abs_diff(twin.weight().grad, fc.weight().grad) == 0.0);  // both: one backward of x
}
