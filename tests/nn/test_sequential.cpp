// Sequential and Residual: chaining, reverse-order backward (finite differences through a whole
// stack), torch.nn.Sequential parameter names, and the residual identity.
#include <asrkit/core/rng.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/dropout.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/sequential.hpp>

#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {
Tensor<double> randn(const asrkit::Shape& s, std::uint64_t seed) {
  Tensor<double> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0, 1.0);
  return t;
}
}  // namespace

TEST_CASE("Sequential chains layers and names parameters like torch.nn.Sequential", "[nn][sequential]") {
  asrkit::Rng rng(1);
  asrkit::Sequential net(asrkit::Linear<double>(4, 6, rng), asrkit::BatchNorm<double>(6),
                         asrkit::ReLU<double>(), asrkit::Linear<double>(6, 3, rng));
  STATIC_REQUIRE(decltype(net)::size() == 4);
  std::vector<std::string> params, buffers;
  net.for_each_parameter([&](const std::string& n, auto& p) { params.push_back(n + p.value.shape().str()); });
  net.for_each_buffer([&](const std::string& n, auto&) { buffers.push_back(n); });
  CHECK(params == std::vector<std::string>{"0.weight[6, 4]", "0.bias[6]", "1.weight[6]", "1.bias[6]",
                                           "3.weight[3, 6]", "3.bias[3]"});
  CHECK(buffers == std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"});
  std::vector<std::string> nested;
  asrkit::Sequential outer(asrkit::LayerNorm<double>(3), asrkit::Sequential(asrkit::LayerNorm<double>(3)));
  outer.for_each_parameter([&](const std::string& n, auto&) { nested.push_back(n); }, "encoder");
  CHECK(nested == std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "encoder.1.0.weight",
                                           "encoder.1.0.bias"});

  // forward == the layers applied one by one
  auto x = randn({5, 4}, 2);
  auto y = net.forward(x.view());
  auto h = net.get<0>().forward(x.view());
  h = net.get<1>().forward(h.view());
  h = net.get<2>().forward(h.view());
  h = net.get<3>().forward(h.view());
  CHECK(std::equal(y.data(), y.data() + y.numel(), h.data()));
}

TEST_CASE("Sequential backward matches finite differences through the stack", "[nn][sequential][gradcheck]") {
  asrkit::Rng rng(3);
  auto make = [&] {
    return asrkit::Sequential(asrkit::Linear<double>(4, 5, rng), asrkit::BatchNorm<double>(5),
                              asrkit::SELU<double>(), asrkit::Linear<double>(5, 2, rng));
  };
  auto net = make();
  auto x = randn({6, 4}, 4);
  const auto w = randn({6, 2}, 5);
  const auto start = net;
  net.forward_train(x.view());
  asrkit::zero_grad(net);
  auto dx = net.backward(w.view());
  auto loss = [&] {
    auto copy = start;
    return asrkit_test::dot(copy.forward_train(x.view()), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);
  // Every parameter too: perturb the start copy.
  auto base = start;
  auto loss_p = [&] {
    auto copy = base;
    return asrkit_test::dot(copy.forward_train(x.view()), w);
  };
  std::vector<Tensor<double>*> values;
  std::vector<const Tensor<double>*> grads;
  base.for_each_parameter([&](const std::string&, auto& p) { values.push_back(&p.value); });
  net.for_each_parameter([&](const std::string&, auto& p) { grads.push_back(&p.grad); });
  for (std::size_t k = 0; k < values.size(); ++k) {
    INFO("parameter " << k);
    CHECK(asrkit_test::max_gradient_error(loss_p, *values[k], *grads[k]) < 1e-6);
  }
}

TEST_CASE("Residual adds the input and its gradient", "[nn][sequential][residual]") {
  asrkit::Rng rng(6);
  asrkit::Residual block(asrkit::Sequential(asrkit::LayerNorm<double>(4), asrkit::Linear<double>(4, 4, rng)));
  auto x = randn({3, 4}, 7);
  auto y = block.forward(x.view());
  auto fx = block.layer().forward(x.view());
  for (index_t i = 0; i < y.numel(); ++i) CHECK(y.data()[i] == x.data()[i] + fx.data()[i]);

  const auto w = randn({3, 4}, 8);
  const auto start = block;
  block.forward_train(x.view());
  auto dx = block.backward(w.view());
  auto loss = [&] {
    auto copy = start;
    return asrkit_test::dot(copy.forward_train(x.view()), w);
  };
  CHECK(asrkit_test::max_gradient_error(loss, x, dx) < 1e-6);

  std::vector<std::string> names, named;
  block.for_each_parameter([&](const std::string& n, auto&) { names.push_back(n); });
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  asrkit::Residual<asrkit::LayerNorm<double>> wrapped(asrkit::LayerNorm<double>(4), "fn");
  wrapped.for_each_parameter([&](const std::string& n, auto&) { named.push_back(n); }, "block");
  CHECK(named == std::vector<std::string>{"block.fn.weight", "block.fn.bias"});

  asrkit::Residual bad(asrkit::Linear<double>(4, 3, rng));
  REQUIRE_THROWS_ID(bad.forward(x.view()), asrkit::ShapeError, "[asrkit.sequential.1]");
}

TEST_CASE("Sequential with dropout: inference is deterministic, training draws masks", "[nn][sequential]") {
  asrkit::Sequential net(asrkit::Dropout<double>(0.5, 9), asrkit::LayerNorm<double>(8));
  auto x = randn({4, 8}, 10);
  auto a = net.forward(x.view()), b = net.forward(x.view());
  CHECK(std::equal(a.data(), a.data() + a.numel(), b.data()));
  auto t = net.forward_train(x.view());
  CHECK(!std::equal(a.data(), a.data() + a.numel(), t.data()));
  int params = 0;
  net.for_each_parameter([&](const std::string& n, auto&) { params += n.rfind("1.", 0) == 0; });
  CHECK(params == 2);
}

namespace {
/// Records how its training input arrived (nn/input_cache.hpp) and passes it through.
struct Probe {
  std::vector<bool>* copied;
  Tensor<double> forward_train(asrkit::TrainInput<double> x) {
    copied->push_back(x.copied());
    return Tensor<double>(x.view());
  }
  Tensor<double> backward(asrkit::TensorView<const double> dy) { return Tensor<double>(dy); }
};
}  // namespace

TEST_CASE("Sequential hands each layer's output to the next without a copy", "[nn][sequential]") {
  std::vector<bool> copied;
  asrkit::Rng rng(4);
  asrkit::Sequential net(Probe{&copied}, asrkit::Linear<double>(3, 3, rng), Probe{&copied}, Probe{&copied});
  const auto x = randn({2, 3}, 5);
  net.forward_train(x.view());  // the caller's view: the first layer must copy what it keeps
  CHECK(copied == std::vector<bool>{true, false, false});
  copied.clear();
  net.forward_train(asrkit::borrow(x));
  net.forward_train(Tensor<double>(x));
  CHECK(copied == std::vector<bool>{false, false, false, false, false, false});
}
