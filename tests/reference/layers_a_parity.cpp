// asrkit's Linear, Conv1d, Conv2d, activation layers and (log-)softmax against torch.nn
// (tests/reference/layers_a_reference.py): weights are loaded by their state_dict names through
// for_each_parameter; output, input gradient and every parameter gradient are compared for the
// same upstream gradient, in float and double.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/ops/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {

template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want) {
  REQUIRE(got.shape() == want.shape());
  double scale = 1e-3, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;  // relative to the largest reference magnitude
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 2e-6;
}

template <class T>
asrkit::SafetensorsFile open_case(const std::string& name) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  return asrkit::SafetensorsFile::open(asrkit_test::data_path("layers_a_" + name + "_" + tag + ".safetensors"));
}

// Loads the layer's parameters by name, runs forward_train and backward, compares everything.
template <class T, class Layer>
void compare(const std::string& name, Layer& layer) {
  INFO("case " << name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const auto file = open_case<T>(name);
  int loaded = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    const auto v = file.template read<T>(n);
    REQUIRE(v.shape() == p.value.shape());
    p.value = v;
    p.zero_grad();
    ++loaded;
  });
  const auto x = file.template read<T>("input");
  const auto y = layer.forward_train(x);
  CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
  CHECK(max_err(layer.forward(x), file.template read<T>("output")) < tolerance<T>());
  const auto dx = layer.backward(file.template read<T>("grad_output"));
  CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
  int grads = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("grad." << n);
    CHECK(max_err(p.grad, file.template read<T>("grad." + n)) < tolerance<T>());
    ++grads;
  });
  CHECK(grads == loaded);
  for (const auto& n : file.names())  // every tensor PyTorch saved was used
    if (n.rfind("grad.", 0) == 0) CHECK(loaded > 0);
}

template <class T>
void run_all() {
  {
    asrkit::Linear<T> fc(20, 12);
    compare<T>("linear", fc);
    asrkit::Linear<T> nb(7, 4, false);
    compare<T>("linear_nobias", nb);
  }
  {
    asrkit::Conv1dOptions o;
    o.kernel = 3;
    o.stride = 2;
    o.padding = 1;
    o.dilation = 2;
    asrkit::Conv1d<T> c(4, 6, o);
    compare<T>("conv1d", c);
    asrkit::Conv1dOptions d;
    d.kernel = 5;
    d.padding = 2;
    d.groups = 6;
    asrkit::Conv1d<T> dw(6, 6, d);
    compare<T>("conv1d_depthwise", dw);
  }
  {
    asrkit::Conv2dOptions o;
    o.kernel = {3, 5};
    o.stride = {2, 1};
    o.padding = {1, 2};
    asrkit::Conv2d<T> c(3, 4, o);
    compare<T>("conv2d", c);
    asrkit::Conv2dOptions g;
    g.kernel = {3, 3};
    g.padding = {2, 2};
    g.dilation = {2, 2};
    g.groups = 2;
    asrkit::Conv2d<T> cg(4, 6, g);
    compare<T>("conv2d_groups_dilation", cg);
    asrkit::Conv2dOptions d;
    d.kernel = {3, 3};
    d.stride = {2, 2};
    d.padding = {1, 1};
    d.groups = 4;
    d.bias = false;
    asrkit::Conv2d<T> dw(4, 8, d);
    compare<T>("conv2d_depthwise", dw);
    asrkit::Conv2dOptions ds2;
    ds2.kernel = {41, 11};
    ds2.stride = {2, 2};
    ds2.padding = {20, 5};
    asrkit::Conv2d<T> first(1, 8, ds2);
    compare<T>("conv2d_ds2", first);
  }
  {
    asrkit::ReLU<T> relu;
    compare<T>("relu", relu);
    asrkit::ClippedReLU<T> clipped(T(20));
    compare<T>("clipped_relu", clipped);
    asrkit::SELU<T> selu;
    compare<T>("selu", selu);
    asrkit::Swish<T> swish;
    compare<T>("swish", swish);
    asrkit::Tanh<T> tanh;
    compare<T>("tanh", tanh);
    asrkit::Sigmoid<T> sigmoid;
    compare<T>("sigmoid", sigmoid);
    asrkit::GLU<T> glu;
    compare<T>("glu", glu);
  }
  for (const bool log : {false, true}) {
    const std::string name = log ? "log_softmax" : "softmax";
    INFO("case " << name);
    const auto file = open_case<T>(name);
    const auto x = file.template read<T>("input");
    Tensor<T> y(x.shape()), dx(x.shape());
    if (log)
      asrkit::ops::log_softmax(x, y.view());
    else
      asrkit::ops::softmax(x, y.view());
    CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
    const auto g = file.template read<T>("grad_output");
    if (log)
      asrkit::ops::log_softmax_backward(y, g, dx.view());
    else
      asrkit::ops::softmax_backward(y, g, dx.view());
    CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
  }
}

}  // namespace

TEST_CASE("Linear, Conv1d, Conv2d, activations and softmax match PyTorch (double)", "[parity][layers]") {
  run_all<double>();
}

TEST_CASE("Linear, Conv1d, Conv2d, activations and softmax match PyTorch (float)", "[parity][layers]") {
  run_all<float>();
}
