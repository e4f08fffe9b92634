// asrkit's BatchNorm, LayerNorm, optimizers and clip_grad_norm against PyTorch
// (tests/reference/layers_b_reference.py): BatchNorm1d over three training steps (outputs, input
// and parameter gradients, running statistics) and in eval mode; LayerNorm forward/backward;
// torch.optim trajectories on a fixed quadratic; clip_grad_norm_. float64 must agree to ~1e-12,
// float32 to float rounding.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/train/clip.hpp>
#include <asrkit/train/optimizer.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "../test_util.hpp"

using asrkit::Tensor;

namespace {

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-11 : 2e-5;
}

/// max |a - b| / max(1, |b|)
template <class A, class B>
double max_error(const A& a, const B& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (asrkit::index_t i = 0; i < a.numel(); ++i) {
    const double x = static_cast<double>(a.data()[i]), y = static_cast<double>(b.data()[i]);
    worst = std::max(worst, std::fabs(x - y) / std::max(1.0, std::fabs(y)));
  }
  return worst;
}

template <class T>
asrkit::SafetensorsFile open(const std::string& c) {
  return asrkit::SafetensorsFile::open(asrkit_test::data_path(
      "layers_b_" + c + (std::is_same_v<T, double> ? "_f64" : "_f32") + ".safetensors"));
}

template <class T>
void check_batchnorm() {
  const asrkit::SafetensorsFile f = open<T>("batchnorm");
  const double tol = tolerance<T>();
  const auto x0 = f.read<T>("x_0");
  asrkit::BatchNorm<T> bn(x0.dim(1));
  bn.weight().value = f.read<T>("weight");
  bn.bias().value = f.read<T>("bias");
  for (int k = 0; k < 3; ++k) {
    INFO("training step " << k);
    const std::string s = std::to_string(k);
    const auto x = f.read<T>("x_" + s);
    asrkit::zero_grad(bn);
    // As [2, N/2, F]: leading axes are flattened, the result is BatchNorm1d's on [N, F].
    const auto y = bn.forward_train(x.reshape({2, x.dim(0) / 2, x.dim(1)}));
    const auto dx = bn.backward(f.read<T>("dy_" + s).reshape(y.shape()));
    CHECK(max_error(y, f.read<T>("y_" + s)) < tol);
    CHECK(max_error(dx, f.read<T>("dx_" + s)) < tol);
    CHECK(max_error(bn.weight().grad, f.read<T>("dweight_" + s)) < tol);
    CHECK(max_error(bn.bias().grad, f.read<T>("dbias_" + s)) < tol);
    CHECK(max_error(bn.running_mean(), f.read<T>("running_mean_" + s)) < tol);
    CHECK(max_error(bn.running_var(), f.read<T>("running_var_" + s)) < tol);
  }
  CHECK(bn.num_batches_tracked()() == 3);
  CHECK(max_error(bn.forward(f.read<T>("x_eval").view()), f.read<T>("y_eval")) < tol);
}

template <class T>
void check_layernorm() {
  const asrkit::SafetensorsFile f = open<T>("layernorm");
  const double tol = tolerance<T>();
  const auto x = f.read<T>("x");
  asrkit::LayerNorm<T> ln(x.dim(2));
  ln.weight().value = f.read<T>("weight");
  ln.bias().value = f.read<T>("bias");
  const auto y = ln.forward_train(x.view());
  const auto dx = ln.backward(f.read<T>("dy").view());
  CHECK(max_error(y, f.read<T>("y")) < tol);
  CHECK(max_error(dx, f.read<T>("dx")) < tol);
  CHECK(max_error(ln.weight().grad, f.read<T>("dweight")) < tol);
  CHECK(max_error(ln.bias().grad, f.read<T>("dbias")) < tol);
  CHECK(max_error(ln.forward(x.view()), f.read<T>("y")) < tol);
}

template <class T>
struct OneParameter {
  asrkit::Parameter<T> p;
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(asrkit::join_name(prefix, "p"), p);
  }
};

template <class T>
void check_optimizers() {
  const asrkit::SafetensorsFile f = open<T>("optim");
  const auto c = f.read<T>("c"), t = f.read<T>("t");
  auto run = [&](const std::string& name, auto make_optimizer) {
    INFO("optimizer " << name);
    OneParameter<T> m;
    m.p = asrkit::Parameter<T>(c.shape());
    m.p.value = f.read<T>("p0");
    auto opt = make_optimizer(m);
    const auto traj = f.read<T>("p_" + name);
    for (asrkit::index_t k = 0; k < traj.dim(0); ++k) {
      opt.zero_grad();
      for (asrkit::index_t i = 0; i < c.numel(); ++i) m.p.grad(i) = c(i) * (m.p.value(i) - t(i));
      opt.step();
      INFO("step " << k);
      CHECK(max_error(m.p.value, traj[k]) < (std::is_same_v<T, double> ? 1e-12 : 1e-5));
    }
  };
  run("sgd", [](auto& m) { return asrkit::Sgd<T>(m, {0.1}); });
  run("sgd_momentum", [](auto& m) { return asrkit::Sgd<T>(m, {0.05, 0.9, 0.1}); });
  run("sgd_nesterov", [](auto& m) { return asrkit::Sgd<T>(m, {0.05, 0.99, 0, 0.01, true}); });
  run("adam", [](auto& m) { return asrkit::Adam<T>(m, {0.01}); });
  run("adam_l2", [](auto& m) { return asrkit::Adam<T>(m, {0.01, 0.8, 0.99, 1e-8, 0.1}); });
  run("adamw", [](auto& m) { return asrkit::AdamW<T>(m, {0.01, 0.9, 0.999, 1e-8, 0.05}); });
  run("amsgrad", [](auto& m) { return asrkit::Adam<T>(m, {0.02, 0.9, 0.999, 1e-8, 0.0, true}); });
}

template <class T>
struct Grads {
  std::vector<asrkit::Parameter<T>> ps;
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for (std::size_t i = 0; i < ps.size(); ++i) f(asrkit::join_name(prefix, std::to_string(i)), ps[i]);
  }
};

template <class T>
void check_clip() {
  const asrkit::SafetensorsFile f = open<T>("clip");
  const double tol = tolerance<T>();
  struct Case {
    const char* tag;
    double max_norm, norm_type;
  };
  for (const Case& k : {Case{"l2", 1.0, 2.0}, Case{"l2_big", 100.0, 2.0},
                        Case{"inf", 0.5, std::numeric_limits<double>::infinity()}}) {
    INFO("clip " << k.tag);
    Grads<T> m;
    for (int i = 0; i < 3; ++i) {
      auto g = f.read<T>("g" + std::to_string(i));
      m.ps.emplace_back(g.shape());
      m.ps.back().grad = g;
    }
    const double total = asrkit::clip_grad_norm(m, k.max_norm, k.norm_type);
    CHECK(total == Approx(f.read<double>(std::string(k.tag) + "_total")(0)).epsilon(tol));
    for (int i = 0; i < 3; ++i)
      CHECK(max_error(m.ps[static_cast<std::size_t>(i)].grad, f.read<T>(std::string(k.tag) + "_g" + std::to_string(i))) < tol);
  }
}

}  // namespace

TEST_CASE("BatchNorm matches torch.nn.BatchNorm1d (train steps, running stats, eval)", "[parity][batchnorm]") {
  check_batchnorm<double>();
  check_batchnorm<float>();
}

TEST_CASE("LayerNorm matches torch.nn.LayerNorm", "[parity][layernorm]") {
  check_layernorm<double>();
  check_layernorm<float>();
}

TEST_CASE("optimizers match torch.optim trajectories", "[parity][optimizer]") {
  check_optimizers<double>();
  check_optimizers<float>();
}

TEST_CASE("clip_grad_norm matches torch.nn.utils.clip_grad_norm_", "[parity][clip]") {
  check_clip<double>();
  check_clip<float>();
}
