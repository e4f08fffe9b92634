// asrkit's FeedForward, ConformerConvolution, TransformerBlock, ConformerBlock, FusionFormerBlock
// and Conv2dSubsampling against torch modules with ESPnet semantics
// (tests/reference/conformer_reference.py): weights loaded by state_dict name, then the training
// forward, every gradient for the same upstream gradient, and the inference forward with the
// running statistics that training step left (float and double, variable lengths).
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/subsampling.hpp>
#include <asrkit/nn/transformer_block.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {

// Case parameters (conformer_reference.py).
constexpr index_t kD = 8, kHeads = 2, kFF = 12, kKernel = 5;

// Largest error relative to the largest reference magnitude, at least `floor`: gradients that are
// 0 analytically (a bias followed by BatchNorm, a key bias under softmax) are rounding noise on
// both sides, so float compares them against a larger floor.
template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want, double floor = 1e-3) {
  REQUIRE(got.shape() == want.shape());
  double scale = floor, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-10 : 1e-4;
}

template <class T, class Layer, class Train, class Infer>
void compare(const std::string& name, Layer& layer, Train train, Infer infer) {
  INFO("case " << name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  const auto file = asrkit::SafetensorsFile::open(asrkit_test::data_path("conformer_" + name + "_" + tag + ".safetensors"));
  int loaded = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("parameter " << n);
    REQUIRE(file.contains(n));
    const auto v = file.template read<T>(n);
    REQUIRE(v.shape() == p.value.shape());
    p.value = v;
    p.zero_grad();
    ++loaded;
  });
  int grads_in_file = 0;
  for (const auto& n : file.names()) grads_in_file += n.rfind("grad.", 0) == 0;
  CHECK(grads_in_file == loaded);  // the same parameter set on both sides
  const auto x = file.template read<T>("input");
  const auto lengths = file.template read<std::int32_t>("lengths");
  const auto pos = file.template read<T>("pos_emb");
  const auto y = train(layer, x, lengths, pos);
  CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
  const auto dx = layer.backward(file.template read<T>("grad_output"));
  CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("grad." << n);
    CHECK(max_err(p.grad, file.template read<T>("grad." + n), std::is_same_v<T, double> ? 1e-3 : 1.0) <
          tolerance<T>());
  });
  // running statistics after the training step (the file holds the state after it)
  layer.for_each_buffer([&](const std::string& n, auto& b) {
    using B = typename std::decay_t<decltype(b)>::value_type;
    if constexpr (std::is_floating_point_v<B>) {
      INFO("buffer " << n);
      CHECK(max_err(b, file.template read<T>(n)) < tolerance<T>());
    }
  });
  CHECK(max_err(infer(layer, x, lengths, pos), file.template read<T>("output_eval")) < tolerance<T>());
}

// forward_train / forward of the layers that take (x, lengths) and of the blocks with pos_emb.
auto train_plain = [](auto& l, const auto& x, const auto& len, const auto&) { return l.forward_train(x.view(), len.view()); };
auto infer_plain = [](auto& l, const auto& x, const auto& len, const auto&) { return l.forward(x.view(), len.view()); };
auto train_rel = [](auto& l, const auto& x, const auto& len, const auto& pos) {
  return l.forward_train(x.view(), pos.view(), len.view());
};
auto infer_rel = [](auto& l, const auto& x, const auto& len, const auto& pos) {
  return l.forward(x.view(), pos.view(), len.view());
};

template <class T>
void run_all() {
  asrkit::Rng rng(1);
  {
    asrkit::FeedForwardOptions o;
    o.hidden = kFF;
    o.dropout = 0;
    asrkit::FeedForward<T> ffn(kD, o, rng);
    compare<T>("ffn", ffn, train_plain, infer_plain);
    o.activation = asrkit::ops::ActivationKind::relu;
    o.batch_norm = true;
    asrkit::FeedForward<T> fusion(kD, o, rng);
    compare<T>("ffn_fusion", fusion, train_plain, infer_plain);
  }
  for (const char* name : {"conv", "conv_causal", "conv_fusion"}) {
    asrkit::ConformerConvolutionOptions o;
    o.kernel = kKernel;
    o.causal = std::string(name) == "conv_causal";
    o.fusionformer = std::string(name) == "conv_fusion";
    asrkit::ConformerConvolution<T> conv(kD, o, rng);
    compare<T>(name, conv, train_plain, infer_plain);
  }
  {
    asrkit::TransformerBlockOptions o;
    o.heads = kHeads;
    o.ff = kFF;
    o.dropout = 0;
    asrkit::TransformerBlock<T> block(kD, o, rng);
    compare<T>("transformer", block, train_plain, infer_plain);
  }
  {
    asrkit::ConformerBlockOptions o;
    o.heads = kHeads;
    o.ff = kFF;
    o.kernel = kKernel;
    o.dropout = 0;
    asrkit::ConformerBlock<T> conformer(kD, o, rng);
    compare<T>("conformer", conformer, train_rel, infer_rel);
    asrkit::FusionFormerBlock<T> fusion(kD, o, rng);
    compare<T>("fusionformer", fusion, train_rel, infer_rel);
  }
  for (const char* name : {"subsampling4", "subsampling6", "subsampling8_fusion"}) {
    asrkit::SubsamplingOptions o;
    o.factor = name[11] - '0';
    o.fusionformer = std::string(name).find("fusion") != std::string::npos;
    asrkit::Conv2dSubsampling<T> sub(20, 4, o, rng);
    compare<T>(name, sub, train_plain, infer_plain);
  }
}

}  // namespace

TEST_CASE("Conformer-family modules match the torch reference (float64)", "[parity][conformer]") { run_all<double>(); }
TEST_CASE("Conformer-family modules match the torch reference (float32)", "[parity][conformer]") { run_all<float>(); }
