// Optimizers (SGD, momentum, Nesterov, Adam, AdamW, AMSGrad), gradient clipping and learning-rate
// schedules against hand-derived values (PyTorch's update rules; tests/reference/layers_b_* checks
// whole trajectories against torch.optim).
#include <asrkit/nn/parameter.hpp>
#include <asrkit/train/clip.hpp>
#include <asrkit/train/optimizer.hpp>
#include <asrkit/train/schedule.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "../test_util.hpp"

namespace {

// A model with two parameters: w [2] and b [1].
struct Toy {
  asrkit::Parameter<double> w{asrkit::Shape{2}}, b{asrkit::Shape{1}};
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    f(asrkit::join_name(prefix, "w"), w);
    f(asrkit::join_name(prefix, "b"), b);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}
  void set_grads(double g0, double g1, double g2) {
    w.grad(0) = g0;
    w.grad(1) = g1;
    b.grad(0) = g2;
  }
};

}  // namespace

TEST_CASE("SGD: plain, momentum, dampening, Nesterov, weight decay", "[train][optimizer]") {
  const double g = 0.5, lr = 0.1;
  SECTION("plain") {
    Toy m;
    m.w.value.fill(1.0);
    asrkit::Sgd<double> opt(m, {lr});
    m.set_grads(g, -g, 2 * g);
    opt.step();
    CHECK(m.w.value(0) == Approx(1.0 - lr * g));
    CHECK(m.w.value(1) == Approx(1.0 + lr * g));
    CHECK(m.b.value(0) == Approx(-lr * 2 * g));
  }
  SECTION("momentum: buf = g, then 0.9 buf + g") {
    Toy m;
    asrkit::Sgd<double> opt(m, {lr, 0.9});
    m.set_grads(g, g, g);
    opt.step();
    CHECK(m.w.value(0) == Approx(-lr * g));
    opt.step();
    CHECK(m.w.value(0) == Approx(-lr * g - lr * 1.9 * g));
  }
  SECTION("dampening 0.5: buf = g, then 0.9 buf + 0.5 g") {
    Toy m;
    asrkit::Sgd<double> opt(m, {lr, 0.9, 0.5});
    m.set_grads(g, g, g);
    opt.step();
    opt.step();
    CHECK(m.w.value(0) == Approx(-lr * g - lr * 1.4 * g));
  }
  SECTION("Nesterov: d = g + 0.9 buf") {
    Toy m;
    asrkit::Sgd<double> opt(m, {lr, 0.9, 0, 0, true});
    m.set_grads(g, g, g);
    opt.step();
    CHECK(m.w.value(0) == Approx(-lr * 1.9 * g));
    opt.step();
    CHECK(m.w.value(0) == Approx(-lr * 1.9 * g - lr * 2.71 * g));
  }
  SECTION("weight decay adds wd * p to the gradient") {
    Toy m;
    m.w.value.fill(2.0);
    asrkit::Sgd<double> opt(m, {lr, 0, 0, 0.1});
    m.set_grads(g, g, g);
    opt.step();
    CHECK(m.w.value(0) == Approx(2.0 - lr * (g + 0.1 * 2.0)));
    CHECK(m.b.value(0) == Approx(-lr * g));
  }
  SECTION("set_lr and zero_grad") {
    Toy m;
    asrkit::Sgd<double> opt(m, {lr});
    opt.set_lr(0.5);
    m.set_grads(1, 1, 1);
    opt.step();
    CHECK(m.w.value(0) == Approx(-0.5));
    opt.zero_grad();
    CHECK(m.w.grad(0) == 0.0);
  }
}

TEST_CASE("Adam and AdamW: bias correction and weight decay", "[train][optimizer]") {
  SECTION("first step moves by lr * g / (|g| + eps)") {
    Toy m;
    asrkit::Adam<double> opt(m, {0.01});
    m.set_grads(0.3, -2.0, 1e-3);
    opt.step();
    CHECK(m.w.value(0) == Approx(-0.01 * 0.3 / (0.3 + 1e-8)).epsilon(1e-12));
    CHECK(m.w.value(1) == Approx(0.01 * 2.0 / (2.0 + 1e-8)).epsilon(1e-12));
    CHECK(m.b.value(0) == Approx(-0.01 * 1e-3 / (1e-3 + 1e-8)).epsilon(1e-12));
  }
  SECTION("second step by hand") {
    Toy m;
    asrkit::AdamOptions o;
    o.lr = 0.1;
    asrkit::Adam<double> opt(m, o);
    m.set_grads(1.0, 1.0, 1.0);
    opt.step();
    m.set_grads(0.5, 0.5, 0.5);
    opt.step();
    const double mm = 0.9 * 0.1 * 1.0 + 0.1 * 0.5, vv = 0.999 * 0.001 * 1.0 + 0.001 * 0.25;
    const double step2 = 0.1 / (1 - 0.81) * mm / (std::sqrt(vv) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
    CHECK(m.w.value(0) == Approx(-0.1 * 1.0 / (1.0 + 1e-8) - step2).epsilon(1e-12));
  }
  SECTION("Adam: L2 in the gradient; AdamW: decoupled decay") {
    Toy a, w;
    a.w.value.fill(1.0);
    w.w.value.fill(1.0);
    asrkit::AdamOptions o;
    o.lr = 0.1;
    o.weight_decay = 0.5;
    asrkit::Adam<double> adam(a, o);
    asrkit::AdamW<double> adamw(w, o);
    a.set_grads(0.2, 0.2, 0.2);
    w.set_grads(0.2, 0.2, 0.2);
    adam.step();
    adamw.step();
    // Adam: g = 0.2 + 0.5 * 1 = 0.7, first step moves by lr * sign.
    CHECK(a.w.value(0) == Approx(1.0 - 0.1 * 0.7 / (0.7 + 1e-8)).epsilon(1e-12));
    // AdamW: p *= 1 - lr * wd, then the plain first step.
    CHECK(w.w.value(0) == Approx(1.0 * (1 - 0.05) - 0.1 * 0.2 / (0.2 + 1e-8)).epsilon(1e-12));
    CHECK(asrkit::AdamW<double>::defaults().weight_decay == 0.01);
  }
  SECTION("AMSGrad keeps the largest second moment") {
    Toy a, b;
    asrkit::AdamOptions o;
    o.lr = 0.1;
    asrkit::Adam<double> plain(a, o);
    o.amsgrad = true;
    asrkit::Adam<double> ams(b, o);
    for (double g : {1.0, 0.01}) {
      a.set_grads(g, g, g);
      b.set_grads(g, g, g);
      plain.step();
      ams.step();
    }
    // v after two steps is smaller than v after one (rescaled): AMSGrad's step is smaller.
    CHECK(std::fabs(b.w.value(0)) < std::fabs(a.w.value(0)));
    int names = 0;
    ams.for_each_state(
        [&](const std::string&, auto& s) { names += s.keys.back() == "max_exp_avg_sq"; });
    CHECK(names == 2);
  }
  SECTION("converges on a quadratic") {
    Toy m;
    asrkit::Adam<double> opt(m, {0.05});
    for (int i = 0; i < 2000; ++i) {
      m.set_grads(m.w.value(0) - 3.0, m.w.value(1) + 1.0, m.b.value(0) - 0.5);
      opt.step();
    }
    CHECK(m.w.value(0) == Approx(3.0).margin(1e-3));
    CHECK(m.w.value(1) == Approx(-1.0).margin(1e-3));
    CHECK(m.b.value(0) == Approx(0.5).margin(1e-3));
  }
}

TEST_CASE("Optimizer state: PyTorch's keys, per parameter, created at its first step",
          "[train][optimizer]") {
  Toy m;
  auto listing = [](auto& opt) {
    std::vector<std::string> out;
    opt.for_each_state(
        [&](const std::string& group, auto& s) {
          for (std::size_t i = 0; i < s.keys.size(); ++i)
            out.push_back(group + "." + s.keys[i] + (s.initialized ? "" : " (fresh)") + " " +
                          s.values[i].shape().str());
        },
        "optimizer");
    return out;
  };
  asrkit::Sgd<double> sgd(m, {0.1, 0.9});
  CHECK(listing(sgd) == std::vector<std::string>{"optimizer.state.0.momentum_buffer (fresh) [2]",
                                                 "optimizer.state.1.momentum_buffer (fresh) [1]"});
  m.set_grads(1, 2, 3);
  sgd.step();
  CHECK(listing(sgd) == std::vector<std::string>{"optimizer.state.0.momentum_buffer [2]",
                                                 "optimizer.state.1.momentum_buffer [1]"});
  asrkit::Sgd<double> plain(m, {0.1});
  CHECK(listing(plain).empty());  // PyTorch keeps momentum_buffer = None: nothing to store

  asrkit::Adam<double> adam(m);
  adam.step();
  adam.step();
  CHECK(listing(adam) == std::vector<std::string>{
                             "optimizer.state.0.step []", "optimizer.state.0.exp_avg [2]",
                             "optimizer.state.0.exp_avg_sq [2]", "optimizer.state.1.step []",
                             "optimizer.state.1.exp_avg [1]", "optimizer.state.1.exp_avg_sq [1]"});
  CHECK(adam.steps() == 2);
  // A parameter whose state is reset counts its own steps again (PyTorch: a parameter that
  // joins later): its bias correction starts at t = 1 while the other's continues.
  const double w_before = m.w.value(0), b_before = m.b.value(0);
  Toy fresh = m;
  asrkit::Adam<double> one(fresh);
  one.step();  // the same gradients: a first step from b_before
  adam.for_each_state([](const std::string& group, auto& s) {
    if (group == "state.1") s.reset();
  });
  adam.step();
  CHECK(m.w.value(0) != w_before);
  CHECK(m.b.value(0) == fresh.b.value(0));
  CHECK(adam.steps() == 3);
}

TEST_CASE("Optimizer param groups: PyTorch's options as JSON literals, read back and checked",
          "[train][optimizer][errors]") {
  Toy m;
  asrkit::Adam<double> adam(m, {0.002, 0.8, 0.95, 1e-6, 0.1, true});
  const asrkit::ParamGroup g = adam.param_group();
  CHECK(g == asrkit::ParamGroup{{"lr", "0.002"},
                                {"betas", "[0.8,0.95]"},
                                {"eps", "1e-06"},
                                {"weight_decay", "0.1"},
                                {"amsgrad", "true"},
                                {"maximize", "false"}});
  asrkit::Adam<double> other(m, {0.5, 0.9, 0.999, 1e-8, 0.0, true});
  other.set_options(other.options_from(g));
  CHECK(other.options().lr == 0.002);
  CHECK(other.options().beta2 == 0.95);
  CHECK(other.options().eps == 1e-6);
  CHECK(other.param_group() == g);

  asrkit::Sgd<double> sgd(m, {0.1, 0.9, 0, 1e-4, true});
  asrkit::Sgd<double> sgd2(m, {0.3, 0.5});
  sgd2.set_options(sgd2.options_from(sgd.param_group()));
  CHECK(sgd2.param_group() == sgd.param_group());

  auto with = [&](asrkit::ParamGroup group, const std::string& key, const std::string& value) {
    if (value.empty())
      group.erase(key);
    else
      group[key] = value;
    return group;
  };
  REQUIRE_THROWS_ID(adam.options_from(with(g, "lr", "")), asrkit::ValueError,
                    "[asrkit.optimizer.2] Adam: param_groups has no option 'lr'");
  REQUIRE_THROWS_ID(
      adam.options_from(with(g, "betas", "0.9")), asrkit::ValueError,
      "[asrkit.optimizer.2] Adam: param_groups option 'betas' is '0.9', expected two numbers");
  REQUIRE_THROWS_ID(
      adam.options_from(with(g, "eps", "{")), asrkit::ValueError,
      "[asrkit.optimizer.2] Adam: param_groups option 'eps' is '{', expected a JSON value");
  REQUIRE_THROWS_ID(
      adam.options_from(with(g, "amsgrad", "1")), asrkit::ValueError,
      "[asrkit.optimizer.2] Adam: param_groups option 'amsgrad' is '1', expected true or false");
  REQUIRE_THROWS_ID(
      adam.options_from(with(g, "amsgrad", "false")), asrkit::ValueError,
      "[asrkit.optimizer.3] Adam: amsgrad false differs from this optimizer's (true)");
  REQUIRE_THROWS_ID(adam.options_from(with(g, "maximize", "true")), asrkit::ValueError,
                    "[asrkit.optimizer.3] Adam: param_groups option 'maximize' is true");
  REQUIRE_THROWS_ID(adam.options_from(with(g, "lr", "-1")), asrkit::ValueError,
                    "[asrkit.optimizer.1] Adam: invalid lr -1");
  asrkit::Sgd<double> heavy(m, {0.1, 0.9});
  REQUIRE_THROWS_ID(heavy.options_from(with(heavy.param_group(), "momentum", "0")),
                    asrkit::ValueError,
                    "[asrkit.optimizer.3] Sgd: momentum 0 would drop the momentum buffers");
  CHECK(adam.options().lr == 0.002);  // options_from changes nothing
}

TEST_CASE("Optimizer option checks", "[train][optimizer][errors]") {
  Toy m;
  asrkit::Sgd<double> sgd(m, {0.1, 0.9});
  REQUIRE_THROWS_ID(asrkit::Sgd<double>(m, {0.1, 0, 0, 0, true}), asrkit::ValueError,
                    "[asrkit.optimizer.1] Sgd: Nesterov momentum needs momentum > 0 and dampening = 0");
  REQUIRE_THROWS_ID(asrkit::Sgd<double>(m, {-1.0}), asrkit::ValueError, "[asrkit.optimizer.1] Sgd: invalid lr -1");
  asrkit::AdamOptions o;
  o.beta2 = 1.0;
  REQUIRE_THROWS_ID(asrkit::Adam<double>(m, o), asrkit::ValueError, "[asrkit.optimizer.1] Adam: invalid beta2 1");
  REQUIRE_THROWS_ID(sgd.set_lr(std::nan("")), asrkit::ValueError, "[asrkit.optimizer.1]");
  // Infinite options would save as JSON null and never load back.
  const double inf = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_ID(asrkit::Sgd<double>(m, {0.1, inf}), asrkit::ValueError,
                    "[asrkit.optimizer.1] Sgd: invalid momentum inf");
  REQUIRE_THROWS_ID(asrkit::Sgd<double>(m, {0.1, 0, 0, inf}), asrkit::ValueError,
                    "[asrkit.optimizer.1] Sgd: invalid weight_decay inf");
  o = asrkit::AdamOptions{};
  o.eps = inf;
  REQUIRE_THROWS_ID(asrkit::Adam<double>(m, o), asrkit::ValueError,
                    "[asrkit.optimizer.1] Adam: invalid eps inf");
}

TEST_CASE("clip_grad_norm rescales to the global norm and returns the norm before", "[train][clip]") {
  Toy m;
  m.set_grads(3.0, 0.0, 4.0);
  CHECK(asrkit::grad_norm(m) == 5.0);
  CHECK(asrkit::clip_grad_norm(m, 10.0) == 5.0);
  CHECK(m.w.grad(0) == 3.0);  // below the threshold: unchanged
  CHECK(asrkit::clip_grad_norm(m, 1.0) == 5.0);
  CHECK(m.w.grad(0) == Approx(3.0 / (5.0 + 1e-6)).epsilon(1e-15));
  CHECK(m.b.grad(0) == Approx(4.0 / (5.0 + 1e-6)).epsilon(1e-15));
  CHECK(asrkit::grad_norm(m) == Approx(1.0).epsilon(1e-6));
  m.set_grads(-7.0, 1.0, 2.0);
  CHECK(asrkit::grad_norm(m, std::numeric_limits<double>::infinity()) == 7.0);
  CHECK(asrkit::grad_norm(m, 1.0) == 10.0);
  // DS2: clip at 400.
  m.set_grads(300.0, 400.0, 0.0);
  CHECK(asrkit::clip_grad_norm(m, 400.0) == 500.0);
  CHECK(asrkit::grad_norm(m) == Approx(400.0).epsilon(1e-8));

  m.set_grads(std::nan(""), 0, 0);
  REQUIRE_THROWS_ID(asrkit::clip_grad_norm(m, 1.0, 2.0, true), asrkit::ValueError, "[asrkit.clip.2]");
  CHECK(std::isnan(asrkit::clip_grad_norm(m, 1.0)));
  REQUIRE_THROWS_ID(asrkit::clip_grad_norm(m, -1.0), asrkit::ValueError, "[asrkit.clip.1]");
  REQUIRE_THROWS_ID(asrkit::grad_norm(m, 0.0), asrkit::ValueError, "[asrkit.clip.1]");
}

TEST_CASE("Learning-rate schedules", "[train][schedule]") {
  asrkit::EpochDecay ds2{6e-4};
  CHECK(ds2(0) == 6e-4);
  CHECK(ds2(2) == Approx(6e-4 / 1.44).epsilon(1e-14));
  asrkit::NoamSchedule noam{256, 4000};
  CHECK(noam(4000) == Approx(1.0 / 16.0 / std::sqrt(4000.0)).epsilon(1e-14));
  CHECK(noam(1000) == Approx(1.0 / 16.0 * 1000 * std::pow(4000.0, -1.5)).epsilon(1e-14));
  CHECK(noam(16000) == Approx(1.0 / 16.0 / std::sqrt(16000.0)).epsilon(1e-14));
  CHECK(noam(2000) < noam(4000));
  CHECK(noam(8000) < noam(4000));
  asrkit::WarmupInverseSqrt w{1e-3, 100};
  CHECK(w(100) == Approx(1e-3));
  CHECK(w(50) == Approx(5e-4));
  CHECK(w(400) == Approx(5e-4));
  REQUIRE_THROWS_ID(noam(0), asrkit::ValueError, "[asrkit.schedule.1]");
  REQUIRE_THROWS_ID(ds2(-1), asrkit::ValueError, "[asrkit.schedule.1]");
  REQUIRE_THROWS_ID(w(0), asrkit::ValueError, "[asrkit.schedule.1]");
}
