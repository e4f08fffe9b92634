// ops/conv.hpp: im2col/col2im adjointness, forward and backward against direct loops (stride,
// padding, dilation, groups, depthwise, 1-D, several tiles and slabs), both paths of the forward
// and of the backward (im2col tiles and the direct one), finite differences, thread-count
// independence, errors.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/ops/conv.hpp>

#include <cmath>
#include <string>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::ops::ConvParams;

namespace {

template <class T>
Tensor<T> random(const Shape& s, std::uint64_t seed) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), T(1));
  return t;
}

struct Case {
  const char* name;
  index_t b, c, h, w, o;
  ConvParams p;
};

ConvParams params(index_t kh, index_t kw, index_t s0, index_t s1, index_t p0, index_t p1,
                  index_t d0, index_t d1, index_t g) {
  ConvParams p;
  p.kernel = {kh, kw};
  p.stride = {s0, s1};
  p.padding = {p0, p1};
  p.dilation = {d0, d1};
  p.groups = g;
  return p;
}

std::vector<Case> small_cases() {
  return {
      {"plain 3x3", 2, 3, 5, 6, 4, params(3, 3, 1, 1, 0, 0, 1, 1, 1)},
      {"stride 2 padding 1", 2, 2, 7, 6, 3, params(3, 2, 2, 2, 1, 1, 1, 1, 1)},
      {"dilation 2", 1, 2, 7, 8, 2, params(2, 3, 1, 1, 1, 2, 2, 2, 1)},
      {"groups 2", 2, 4, 5, 5, 6, params(3, 3, 1, 2, 1, 0, 1, 1, 2)},
      {"depthwise", 2, 3, 6, 5, 3, params(3, 3, 1, 1, 1, 1, 1, 1, 3)},
      {"depthwise x2", 1, 2, 5, 7, 4, params(2, 3, 2, 1, 0, 1, 1, 2, 2)},
      {"big padding", 1, 1, 3, 3, 2, params(3, 3, 2, 2, 3, 2, 1, 1, 1)},
      {"1x1", 2, 3, 4, 4, 5, params(1, 1, 1, 1, 0, 0, 1, 1, 1)},
      // three column phases, taps landing in different phases (v dw mod 3 = 0, 2, 1)
      {"stride 3 dilation 2", 2, 2, 5, 13, 3, params(2, 3, 1, 3, 1, 2, 1, 2, 1)},
  };
}

// The small cases and wide rows over several work items (DS2's 41x11 stride 2 over a long input),
// for the tests that run both paths of conv.hpp on every case.
std::vector<Case> path_cases() {
  auto cases = small_cases();
  cases.push_back({"DS2 conv 1", 2, 1, 45, 300, 10, params(41, 11, 2, 2, 20, 5, 1, 1, 1)});
  cases.push_back({"DS2 conv 2", 1, 4, 23, 270, 9, params(21, 11, 2, 1, 10, 5, 1, 1, 1)});
  cases.push_back({"stride 3 dilation 2 groups 2", 2, 4, 9, 200, 6, params(3, 4, 2, 3, 2, 4, 2, 2, 2)});
  cases.push_back({"padding taller than the kernel", 1, 2, 3, 70, 3, params(2, 3, 1, 1, 4, 1, 1, 1, 1)});
  return cases;
}

// Direct loops in double: y, and the gradients for upstream dy.
struct Direct {
  Tensor<double> y, dx, dw, db;
};

template <class T>
Direct direct(const ConvParams& p, const Tensor<T>& x, const Tensor<T>& w, const Tensor<T>& b,
              const Tensor<T>* dy) {
  const bool one_d = x.rank() == 3;
  const index_t B = x.dim(0), C = x.dim(1), H = one_d ? 1 : x.dim(2), W = x.dim(-1);
  const index_t O = w.dim(0), cg = C / p.groups, og = O / p.groups;
  const index_t Ho = p.out_size(0, H), Wo = p.out_size(1, W);
  auto X = [&](index_t bi, index_t c, index_t i, index_t j) { return x.data()[((bi * C + c) * H + i) * W + j]; };
  auto Wt = [&](index_t o, index_t c, index_t u, index_t v) {
    return w.data()[((o * cg + c) * p.kernel[0] + u) * p.kernel[1] + v];
  };
  Direct r{Tensor<double>(Shape{B, O, Ho, Wo}), Tensor<double>(Shape{B, C, H, W}),
           Tensor<double>(Shape{O, cg, p.kernel[0], p.kernel[1]}), Tensor<double>(Shape{O})};
  for (index_t bi = 0; bi < B; ++bi)
    for (index_t o = 0; o < O; ++o)
      for (index_t i = 0; i < Ho; ++i)
        for (index_t j = 0; j < Wo; ++j) {
          double s = b.numel() ? static_cast<double>(b(o)) : 0.0;
          const double g = dy ? static_cast<double>(dy->data()[((bi * O + o) * Ho + i) * Wo + j]) : 0.0;
          r.db(o) += g;
          const index_t gi = o / og;
          for (index_t c = 0; c < cg; ++c)
            for (index_t u = 0; u < p.kernel[0]; ++u)
              for (index_t v = 0; v < p.kernel[1]; ++v) {
                const index_t ih = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                const index_t iw = j * p.stride[1] - p.padding[1] + v * p.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += static_cast<double>(Wt(o, c, u, v)) * X(bi, gi * cg + c, ih, iw);
                r.dx(bi, gi * cg + c, ih, iw) += g * Wt(o, c, u, v);
                r.dw(o, c, u, v) += g * X(bi, gi * cg + c, ih, iw);
              }
          r.y(bi, o, i, j) = s;
        }
  return r;
}

template <class T, class U>
double max_rel(const Tensor<T>& got, const Tensor<U>& want) {
  REQUIRE(got.numel() == want.numel());
  double worst = 0;
  for (index_t i = 0; i < got.numel(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(got.data()[i]) - static_cast<double>(want.data()[i])) /
                                std::max(1.0, std::fabs(static_cast<double>(want.data()[i]))));
  return worst;
}

template <class T>
Tensor<T> weight_for(const Case& k, std::uint64_t seed) {
  return random<T>({k.o, k.c / k.p.groups, k.p.kernel[0], k.p.kernel[1]}, seed);
}

}  // namespace

TEST_CASE("im2col and col2im are adjoint", "[ops][conv]") {
  for (const auto& k : small_cases()) {
    INFO(k.name);
    const auto x = random<double>({k.c, k.h, k.w}, 1);
    const index_t rows = k.c * k.p.kernel[0] * k.p.kernel[1];
    const index_t cols = k.p.out_size(0, k.h) * k.p.out_size(1, k.w);
    Tensor<double> col({rows, cols});
    asrkit::ops::im2col(k.p, x, col.view());
    const auto c2 = random<double>(col.shape(), 2);
    Tensor<double> back(x.shape());
    asrkit::ops::col2im(k.p, c2, back.view());
    CHECK(asrkit_test::dot(col, c2) == Approx(asrkit_test::dot(x, back)).epsilon(1e-12));
  }
  // A known layout: 1 channel, 3x3 input, 2x2 kernel, padding 1 at the left only via width.
  ConvParams p = ConvParams::conv1d(2, 1, 1);
  Tensor<float> x({1, 3});
  x(0, 0) = 1;
  x(0, 1) = 2;
  x(0, 2) = 3;
  Tensor<float> col({2, 4});
  asrkit::ops::im2col(p, x, col.view());
  const float want[2][4] = {{0, 1, 2, 3}, {1, 2, 3, 0}};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 4; ++c) CHECK(col(r, c) == want[r][c]);
}

TEST_CASE("conv2d forward and backward match direct loops", "[ops][conv]") {
  for (const auto& k : small_cases()) {
    INFO(k.name);
    const auto x = random<double>({k.b, k.c, k.h, k.w}, 3);
    const auto w = weight_for<double>(k, 4);
    const auto b = random<double>({k.o}, 5);
    const Shape ys = asrkit::ops::conv_output_shape<double>(k.p, x, w);
    Tensor<double> y(ys);
    asrkit::ops::conv2d_forward(k.p, x, w, b, y.view());
    const auto dy = random<double>(ys, 6);
    const Direct d = direct(k.p, x, w, b, &dy);
    CHECK(max_rel(y, d.y) < 1e-12);
    Tensor<double> dx(x.shape()), dw(w.shape()), db({k.o});
    asrkit::ops::conv2d_backward(k.p, x, w, dy, dx.view(), dw.view(), db.view());
    CHECK(max_rel(dx, d.dx) < 1e-12);
    CHECK(max_rel(dw, d.dw) < 1e-12);
    CHECK(max_rel(db, d.db) < 1e-12);
    // dw and db accumulate, dx is overwritten.
    asrkit::ops::conv2d_backward(k.p, x, w, dy, dx.view(), dw.view(), db.view());
    CHECK(max_rel(dx, d.dx) < 1e-12);
    CHECK(dw(0, 0, 0, 0) == Approx(2 * d.dw(0, 0, 0, 0)).epsilon(1e-12));
    CHECK(db(0) == Approx(2 * d.db(0)).epsilon(1e-12));
  }
}

TEST_CASE("conv2d forward and backward against finite differences", "[ops][conv]") {
  for (const auto& k : small_cases()) {
    INFO(k.name);
    auto x = random<double>({k.b, k.c, k.h, k.w}, 7);
    auto w = weight_for<double>(k, 8);
    auto b = random<double>({k.o}, 9);
    Tensor<double> y(asrkit::ops::conv_output_shape<double>(k.p, x, w));
    const auto u = random<double>(y.shape(), 10);
    auto loss = [&] {
      asrkit::ops::conv2d_forward(k.p, x, w, b, y.view());
      return asrkit_test::dot(y, u);
    };
    Tensor<double> dx(x.shape()), dw(w.shape()), db(b.shape());
    asrkit::ops::conv2d_backward(k.p, x, w, u, dx.view(), dw.view(), db.view());
    CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
    CHECK(asrkit_test::max_gradient_error(loss, w, dw) < 1e-6);
    CHECK(asrkit_test::max_gradient_error(loss, b, db) < 1e-6);
  }
}

TEST_CASE("conv 1-D on [B, C, L]", "[ops][conv]") {
  const ConvParams p = ConvParams::conv1d(3, 2, 2, 2, 2);
  const auto x = random<double>({2, 4, 11}, 11);
  const auto w = random<double>({6, 2, 3}, 12);
  const auto b = random<double>({6}, 13);
  const Shape ys = asrkit::ops::conv_output_shape<double>(p, x, w);
  CHECK(ys == Shape{2, 6, 6});  // (11 + 4 - 4 - 1) / 2 + 1
  Tensor<double> y(ys);
  asrkit::ops::conv2d_forward(p, x, w, b, y.view());
  const auto dy = random<double>(ys, 14);
  const Direct d = direct(p, x, w, b, &dy);
  CHECK(max_rel(y, d.y) < 1e-12);
  Tensor<double> dx(x.shape()), dw(w.shape()), db({6});
  asrkit::ops::conv2d_backward(p, x, w, dy, dx.view(), dw.view(), db.view());
  CHECK(max_rel(dx, d.dx) < 1e-12);
  CHECK(max_rel(dw, d.dw) < 1e-12);
}

TEST_CASE("conv forward: im2col and direct paths both match direct loops", "[ops][conv]") {
  // conv2d_forward picks one path by the output width; here both run on every case, including
  // wide rows over several work items (DS2's 41x11 stride 2 over a long input) and 1-D.
  auto cases = path_cases();
  for (const auto& k : cases) {
    INFO(k.name);
    const auto x = random<double>({k.b, k.c, k.h, k.w}, 3);
    const auto w = weight_for<double>(k, 4);
    const auto b = random<double>({k.o}, 5);
    const Direct d = direct<double>(k.p, x, w, b, nullptr);
    const auto g = asrkit::ops::detail::conv_geometry<double>("test", k.p, x, w);
    for (bool with_bias : {true, false}) {
      const Direct d0 = with_bias ? Direct{} : direct<double>(k.p, x, w, Tensor<double>{}, nullptr);
      const Tensor<double>& want = with_bias ? d.y : d0.y;
      Tensor<double> y1(want.shape(), -7.0), y2(want.shape(), -7.0);
      const double* bias = with_bias ? b.data() : nullptr;
      asrkit::ops::detail::conv_forward_im2col(g, k.p.groups, k.b, k.o, x.data(), w.data(), bias, y1.data());
      asrkit::ops::detail::conv_forward_direct(g, k.p.groups, k.b, k.o, x.data(), w.data(), bias, y2.data());
      CHECK(max_rel(y1, want) < 1e-12);
      CHECK(max_rel(y2, want) < 1e-12);
    }
  }
  // conv2d_forward takes the direct path for DS2's conv 1 (wide rows, 10 output channels), and
  // its results do not depend on the thread count.
  {
    const Case& k = cases[cases.size() - 4];
    REQUIRE(std::string(k.name) == "DS2 conv 1");
    const auto x = random<float>({k.b, k.c, k.h, k.w}, 3);
    const auto w = weight_for<float>(k, 4);
    const auto b = random<float>({k.o}, 5);
    const auto g = asrkit::ops::detail::conv_geometry<float>("test", k.p, x, w);
    CHECK(asrkit::ops::detail::direct_pays<float>(g, k.o));
    Tensor<float> y1(asrkit::ops::conv_output_shape<float>(k.p, x, w)), y2(y1.shape());
    asrkit::set_num_threads(1);
    asrkit::ops::conv2d_forward(k.p, x, w, b, y1.view());
    asrkit::set_num_threads(2);
    asrkit::ops::conv2d_forward(k.p, x, w, b, y2.view());
    asrkit::set_num_threads(1);
    CHECK(max_rel(y1, direct<float>(k.p, x, w, b, nullptr).y) < 1e-4);
    for (index_t i = 0; i < y1.numel(); ++i) REQUIRE(y1.data()[i] == y2.data()[i]);
  }
  // 1-D: one output row per item, split into several work items along the row.
  const ConvParams p1 = ConvParams::conv1d(5, 2, 2, 1, 1);
  const auto x = random<double>({2, 3, 700}, 7);
  const auto w = random<double>({5, 3, 5}, 8);
  const auto b = random<double>({5}, 9);
  Tensor<double> y(asrkit::ops::conv_output_shape<double>(p1, x, w));
  asrkit::ops::conv2d_forward(p1, x, w, b, y.view());
  const Tensor<double> x4(x.view().reshape({2, 3, 1, 700}));
  const Tensor<double> w4(w.view().reshape({5, 3, 1, 5}));
  CHECK(max_rel(y, direct<double>(p1, x4, w4, b, nullptr).y) < 1e-12);
}

TEST_CASE("conv backward: im2col and direct paths both match direct loops", "[ops][conv]") {
  // conv2d_backward picks one path by the output width; here both run on every case:
  // wide rows over several slabs, output rows whose kernel reaches into padding on either side,
  // several panels of output channels (og 70 > 2 x 32), groups, stride 3 and dilation.
  auto cases = path_cases();
  cases.push_back({"70 output channels", 1, 3, 6, 40, 70, params(3, 5, 1, 1, 1, 2, 1, 1, 1)});
  cases.push_back({"1-D, 20 rows of one image", 1, 2, 20, 33, 4, params(1, 5, 1, 1, 0, 2, 1, 1, 1)});
  for (const auto& k : cases) {
    INFO(k.name);
    const auto x = random<double>({k.b, k.c, k.h, k.w}, 31);
    const auto w = weight_for<double>(k, 32);
    const auto g = asrkit::ops::detail::conv_geometry<double>("test", k.p, x, w);
    const auto dy = random<double>({k.b, k.o, g.ho, g.wo}, 33);
    const Direct d = direct(k.p, x, w, Tensor<double>(), &dy);
    for (bool direct_path : {false, true}) {
      INFO((direct_path ? "direct" : "im2col"));
      Tensor<double> dx(x.shape(), -7.0), dw(w.shape(), 0.5);
      asrkit::ops::detail::conv_backward(g, k.p.groups, k.b, k.o, x.data(), w.data(), dy.data(),
                                         static_cast<double*>(nullptr), dw.data(), direct_path);
      for (index_t i = 0; i < dw.numel(); ++i) dw.data()[i] -= 0.5;  // dw accumulates
      CHECK(max_rel(dw, d.dw) < 1e-12);
      std::fill(dx.data(), dx.data() + dx.numel(), 0.0);  // dx is zeroed by the caller
      dw = Tensor<double>(w.shape());
      asrkit::ops::detail::conv_backward(g, k.p.groups, k.b, k.o, x.data(), w.data(), dy.data(),
                                         dx.data(), dw.data(), direct_path);
      CHECK(max_rel(dx, d.dx) < 1e-12);
      CHECK(max_rel(dw, d.dw) < 1e-12);
    }
  }
  // conv2d_backward takes the direct path for DS2's conv 1, and its float results do not depend
  // on the thread count.
  const Case k{"DS2 conv 1, 32 channels", 2, 1, 45, 300, 32, params(41, 11, 2, 2, 20, 5, 1, 1, 1)};
  const auto x = random<float>({k.b, k.c, k.h, k.w}, 34);
  const auto w = weight_for<float>(k, 35);
  const auto g = asrkit::ops::detail::conv_geometry<float>("test", k.p, x, w);
  CHECK(asrkit::ops::detail::direct_backward_pays<float>(g));
  const auto dy = random<float>({k.b, k.o, g.ho, g.wo}, 36);
  const Direct d = direct(k.p, x, w, Tensor<float>(), &dy);
  Tensor<float> dx1(x.shape()), dw1(w.shape()), dx2(x.shape()), dw2(w.shape());
  asrkit::set_num_threads(1);
  asrkit::ops::conv2d_backward(k.p, x, w, dy, dx1.view(), dw1.view(), {});
  asrkit::set_num_threads(2);
  asrkit::ops::conv2d_backward(k.p, x, w, dy, dx2.view(), dw2.view(), {});
  asrkit::set_num_threads(1);
  CHECK(max_rel(dx1, d.dx) < 1e-4);
  CHECK(max_rel(dw1, d.dw) < 1e-3);
  for (index_t i = 0; i < dx1.numel(); ++i) REQUIRE(dx1.data()[i] == dx2.data()[i]);
  for (index_t i = 0; i < dw1.numel(); ++i) REQUIRE(dw1.data()[i] == dw2.data()[i]);
}

TEST_CASE("conv with several tiles and slabs, float, thread-count independent", "[ops][conv]") {
  // 16 channels x 3x3: tiles of ~1 MiB of float columns hold ~1820 positions; 48x80 outputs
  // make 3 tiles per image, and one image is split into slabs.
  const ConvParams p = [] {
    ConvParams q;
    q.kernel = {3, 3};
    q.padding = {1, 1};
    return q;
  }();
  for (index_t batch : {1, 3}) {
    INFO("batch " << batch);
    const auto x = random<float>({batch, 16, 48, 80}, 15);
    const auto w = random<float>({4, 16, 3, 3}, 16);
    const auto b = random<float>({4}, 17);
    const auto dy = random<float>({batch, 4, 48, 80}, 18);
    const Direct d = direct(p, x, w, b, &dy);
    Tensor<float> y1({batch, 4, 48, 80}), dx1(x.shape()), dw1(w.shape()), db1({4});
    asrkit::set_num_threads(1);
    asrkit::ops::conv2d_forward(p, x, w, b, y1.view());
    asrkit::ops::conv2d_backward(p, x, w, dy, dx1.view(), dw1.view(), db1.view());
    CHECK(max_rel(y1, d.y) < 1e-4);
    CHECK(max_rel(dx1, d.dx) < 1e-4);
    CHECK(max_rel(dw1, d.dw) < 1e-3);
    Tensor<float> y2(y1.shape()), dx2(x.shape()), dw2(w.shape()), db2({4});
    asrkit::set_num_threads(2);
    asrkit::ops::conv2d_forward(p, x, w, b, y2.view());
    asrkit::ops::conv2d_backward(p, x, w, dy, dx2.view(), dw2.view(), db2.view());
    asrkit::set_num_threads(1);
    for (index_t i = 0; i < dx1.numel(); ++i) REQUIRE(dx1.data()[i] == dx2.data()[i]);
    for (index_t i = 0; i < dw1.numel(); ++i) REQUIRE(dw1.data()[i] == dw2.data()[i]);
    for (index_t i = 0; i < db1.numel(); ++i) REQUIRE(db1.data()[i] == db2.data()[i]);
    if (batch > 1)  // with one tile per thread or more, forward runs one-threaded GEMMs too
      for (index_t i = 0; i < y1.numel(); ++i) REQUIRE(y1.data()[i] == y2.data()[i]);
  }
}

TEST_CASE("conv backward without dx and without bias", "[ops][conv]") {
  const auto k = small_cases()[1];
  const auto x = random<double>({k.b, k.c, k.h, k.w}, 19);
  const auto w = weight_for<double>(k, 20);
  Tensor<double> y(asrkit::ops::conv_output_shape<double>(k.p, x, w));
  asrkit::ops::conv2d_forward(k.p, x, w, {}, y.view());
  const auto dy = random<double>(y.shape(), 21);
  const Direct d = direct(k.p, x, w, Tensor<double>(), &dy);
  CHECK(max_rel(y, d.y) < 1e-12);
  Tensor<double> dw(w.shape());
  asrkit::ops::conv2d_backward(k.p, x, w, dy, {}, dw.view(), {});
  CHECK(max_rel(dw, d.dw) < 1e-12);
}

TEST_CASE("conv errors name the argument, expected and actual", "[ops][conv]") {
  ConvParams p;
  p.kernel = {3, 3};
  Tensor<float> x({1, 2, 5, 5}), w({4, 2, 3, 3}), y({1, 4, 3, 3});
  p.stride = {0, 1};
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x, w, {}, y.view()), asrkit::ValueError,
                    "[asrkit.conv.1] conv2d_forward: kernel, stride and dilation must be >= 1");
  p.stride = {1, 1};
  p.groups = 3;
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x, w, {}, y.view()), asrkit::ShapeError,
                    "[asrkit.conv.2] conv2d_forward: input channels (2 in x [1, 2, 5, 5]) must be "
                    "divisible by groups 3");
  p.groups = 1;
  Tensor<float> w_bad({4, 3, 3, 3});
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x, w_bad, {}, y.view()), asrkit::ShapeError,
                    "[asrkit.conv.3] conv2d_forward: weight must be [O, C/groups, 3, 3] with "
                    "C/groups = 2 and O divisible by groups 1, got [4, 3, 3, 3]");
  Tensor<float> x_small({1, 2, 2, 5});
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x_small, w, {}, y.view()), asrkit::ShapeError,
                    "[asrkit.conv.4]");
  Tensor<float> y_bad({1, 4, 3, 4});
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x, w, {}, y_bad.view()), asrkit::ShapeError,
                    "[asrkit.conv.5] conv2d_forward: output y must be [1, 4, 3, 3], got [1, 4, 3, 4]");
  Tensor<float> b_bad({3});
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x, w, b_bad, y.view()), asrkit::ShapeError,
                    "[asrkit.conv.6]");
  Tensor<float> dw(w.shape());
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_backward(p, x, w, y_bad, {}, dw.view(), {}),
                    asrkit::ShapeError, "[asrkit.conv.5] conv2d_backward: output gradient dy");
  Tensor<float> x2({2, 5});
  REQUIRE_THROWS_ID(asrkit::ops::conv2d_forward(p, x2, w, {}, y.view()), asrkit::ShapeError,
                    "[asrkit.conv.2]");
  Tensor<float> col({3, 3});
  REQUIRE_THROWS_ID(asrkit::ops::im2col(p, x[0], col.view()), asrkit::ShapeError,
                    "[asrkit.conv.5] im2col: col must be [18, 9]");
}
