// Optimizer state from torch.optim (tests/reference/optimizer_state_reference.py): a checkpoint
// PyTorch wrote after three steps loads into an asrkit model and an optimizer built with other
// options, restores PyTorch's options and resumes on PyTorch's trajectory; the checkpoint asrkit
// writes then is checked by the script's `check` (it loads into torch.optim with PyTorch's state).
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/sequential.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/train/optimizer.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "../test_util.hpp"

using asrkit::Tensor;

namespace {

template <class T>
using Net = asrkit::Sequential<asrkit::Linear<T>, asrkit::Tanh<T>, asrkit::Linear<T>>;

template <class T>
std::string file(const std::string& c, const std::string& suffix = {}) {
  return asrkit_test::data_path("optstate_" + c + (std::is_same_v<T, double> ? "_f64" : "_f32") +
                                suffix + ".safetensors");
}

template <class T>
std::vector<double> flat_params(Net<T>& net) {
  std::vector<double> out;
  net.for_each_parameter([&](const std::string&, auto& p) {
    out.insert(out.end(), p.value.data(), p.value.data() + p.value.numel());
  });
  return out;
}

/// Loads the case's PyTorch checkpoint into `opt` (built with other options), checks the options
/// came with it, resumes for the reference's steps, and writes asrkit's checkpoint.
template <class T, class Optimizer, class Options>
void resume(const std::string& c, Net<T>& net, Optimizer& opt, const Options& expected) {
  INFO("case " << c << (std::is_same_v<T, double> ? " f64" : " f32"));
  asrkit::load_checkpoint(file<T>(c), net, opt);
  CHECK(opt.param_group() == [&] {
    Net<T> other(asrkit::Linear<T>(4, 5), asrkit::Tanh<T>(), asrkit::Linear<T>(5, 3));
    return Optimizer(other, expected).param_group();
  }());
  const asrkit::SafetensorsFile ref = asrkit::SafetensorsFile::open(file<T>(c, "_expected"));
  const Tensor<T> x = ref.read<T>("x"), y = ref.read<T>("y");
  const double tol = std::is_same_v<T, double> ? 1e-12 : 2e-6;
  for (int s = 0; ref.contains("params_" + std::to_string(s)); ++s) {
    INFO("resumed step " << s);
    opt.zero_grad();
    Tensor<T> dy = net.forward_train(x.view());
    dy.flat() -= y.flat();  // loss 0.5·Σ(net(x) − y)²
    net.backward(dy.view());
    opt.step();
    const auto got = flat_params(net);
    const auto want = ref.read<double>("params_" + std::to_string(s));
    REQUIRE(got.size() == static_cast<std::size_t>(want.numel()));
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(
          worst, std::fabs(got[i] - want.data()[i]) / std::max(1.0, std::fabs(want.data()[i])));
    CHECK(worst < tol);
  }
  asrkit::save_checkpoint(file<T>(c, "_from_asrkit"), net, opt);
}

template <class T>
void check_all() {
  auto net = [] {
    Net<T> n(asrkit::Linear<T>(4, 5), asrkit::Tanh<T>(), asrkit::Linear<T>(5, 3));
    n.for_each_parameter(
        [](const std::string&, auto& p) { p.value.fill(T(0.25)); });  // overwritten by the load
    return n;
  };
  {
    auto n = net();
    asrkit::Sgd<T> opt(n, {0.7});
    resume<T>("sgd", n, opt, asrkit::SgdOptions{0.1});
  }
  {
    auto n = net();
    asrkit::Sgd<T> opt(n, {0.5, 0.5});
    resume<T>("sgd_nesterov", n, opt, asrkit::SgdOptions{0.05, 0.9, 0, 0.01, true});
  }
  {
    auto n = net();
    asrkit::Sgd<T> opt(n, {0.5, 0.1});
    resume<T>("sgd_dampening", n, opt, asrkit::SgdOptions{0.05, 0.8, 0.3});
  }
  {
    auto n = net();
    asrkit::Adam<T> opt(n, {0.5});
    resume<T>("adam_l2", n, opt, asrkit::AdamOptions{0.01, 0.8, 0.99, 1e-6, 0.1});
  }
  {
    auto n = net();
    asrkit::AdamW<T> opt(n, {0.5, 0.5, 0.5, 1e-8, 0.01});
    resume<T>("adamw", n, opt, asrkit::AdamOptions{0.01, 0.9, 0.999, 1e-8, 0.05});
  }
  {
    auto n = net();
    asrkit::Adam<T> opt(n, {0.5, 0.9, 0.999, 1e-8, 0.0, true});
    resume<T>("amsgrad", n, opt, asrkit::AdamOptions{0.02, 0.9, 0.999, 1e-8, 0.0, true});
  }
}

}  // namespace

TEST_CASE("optimizer state from torch.optim resumes on PyTorch's trajectory",
          "[parity][optimizer][checkpoint]") {
  check_all<double>();
  check_all<float>();
}
