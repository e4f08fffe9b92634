// RowConvolution against torch.nn.Conv1d(d, d, τ + 1, groups = d, bias = False) on the per-item
// zero-padded input, and RandomWalkSmoothing (walk and affinity loss) against a dense PyTorch
// implementation (tests/reference/rowconv_reference.py). Weights load by their state_dict names;
// outputs, input gradients and parameter gradients are compared in float and double.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/random_walk.hpp>
#include <asrkit/nn/row_conv.hpp>

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
asrkit::SafetensorsFile open_case(const std::string& kind, const std::string& name) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  return asrkit::SafetensorsFile::open(asrkit_test::data_path("rowconv_" + kind + "_" + name + "_" + tag + ".safetensors"));
}

template <class T, class Layer>
void load_parameters(Layer& layer, const asrkit::SafetensorsFile& file) {
  int loaded = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    const auto v = file.template read<T>(n);
    REQUIRE(v.shape() == p.value.shape());
    p.value = v;
    p.zero_grad();
    ++loaded;
  });
  REQUIRE(loaded == 1);
}

template <class T>
void row_conv_case(const std::string& name) {
  INFO("row conv case " << name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const auto file = open_case<T>("conv", name);
  const auto x = file.template read<T>("input");
  const auto lengths = file.template read<std::int32_t>("lengths");
  const index_t tau = file.template read<std::int32_t>("config")(0);
  asrkit::RowConvolution<T> rc(x.dim(2), tau);
  load_parameters<T>(rc, file);
  const auto want = file.template read<T>("output");
  CHECK(max_err(rc.forward_train(x, lengths), want) < tolerance<T>());
  CHECK(max_err(rc.forward(x, lengths), want) < tolerance<T>());
  CHECK(max_err(rc.backward(file.template read<T>("grad_output")), file.template read<T>("grad_input")) <
        tolerance<T>());
  CHECK(max_err(rc.weight().grad, file.template read<T>("grad.weight")) < tolerance<T>());
}

template <class T>
void random_walk_case(const std::string& name) {
  INFO("random walk case " << name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const auto file = open_case<T>("walk", name);
  const auto config = file.template read<std::int32_t>("config");
  const auto logits = file.template read<T>("logits");
  const auto phi = file.template read<T>("phi");
  const auto lengths = file.template read<std::int32_t>("lengths");
  asrkit::RandomWalkOptions o;
  o.radius = config(0);
  o.steps = config(1);
  o.include_self = config(2) != 0;
  asrkit::RandomWalkSmoothing<T> rw(phi.dim(2), o);
  load_parameters<T>(rw, file);
  const auto want = file.template read<T>("output");
  CHECK(max_err(rw.forward_train(logits, phi, lengths), want) < tolerance<T>());
  CHECK(max_err(rw.forward(logits, phi, lengths), want) < tolerance<T>());
  const auto g = rw.backward(file.template read<T>("grad_output"));
  CHECK(max_err(g.logits, file.template read<T>("grad_logits")) < tolerance<T>());
  CHECK(max_err(g.phi, file.template read<T>("grad_phi")) < tolerance<T>());
  CHECK(max_err(rw.weight_raw().grad, file.template read<T>("grad.weight_raw")) < tolerance<T>());

  asrkit::zero_grad(rw);
  const double scale = static_cast<double>(file.template read<T>("aff.scale")(0));
  const auto aff = rw.affinity_loss(phi, file.template read<std::int32_t>("alignments"), lengths, scale);
  const double want_loss = static_cast<double>(file.template read<T>("aff.loss")(0));
  CHECK(std::fabs(aff.loss - want_loss) <= tolerance<T>() * std::max(1.0, std::fabs(want_loss)));
  CHECK(max_err(aff.grad_phi, file.template read<T>("aff.grad_phi")) < tolerance<T>());
  CHECK(max_err(rw.weight_raw().grad, file.template read<T>("aff.grad.weight_raw")) < tolerance<T>());
}

template <class T>
void run_all() {
  for (const char* name : {"tau3", "tau0", "wide"}) row_conv_case<T>(name);
  for (const char* name : {"r2_k1", "r3_k3_self", "r1_k2"}) random_walk_case<T>(name);
}

}  // namespace

TEST_CASE("RowConvolution and RandomWalkSmoothing match PyTorch in double", "[parity][rowconv]") { run_all<double>(); }

TEST_CASE("RowConvolution and RandomWalkSmoothing match PyTorch in float", "[parity][rowconv]") { run_all<float>(); }
