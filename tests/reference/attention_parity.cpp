// asrkit's MultiHeadAttention against torch.nn.MultiheadAttention, and
// RelPositionMultiHeadAttention and the positional encodings against our torch reference of
// ESPnet's relative attention (tests/reference/attention_reference.py): weights loaded by
// state_dict name, then output, input gradient and every parameter gradient compared for one
// upstream gradient, in float and double, with variable lengths and causal / chunk masks (and
// projection BN in training mode).
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/positional_encoding.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

using asrkit::AttentionMask;
using asrkit::index_t;
using asrkit::Tensor;

namespace {

constexpr index_t kD = 16, kHeads = 4;  // attention_reference.py: D, HEADS

template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want) {
  REQUIRE(got.shape() == want.shape());
  // Relative to the largest reference magnitude, but at least 1: several gradients are exactly 0
  // in exact arithmetic (linear_k.bias shifts every score of a row equally; a bias before a BN
  // cancels), and both sides then only hold rounding noise.
  double scale = 1.0, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i)
    scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 2e-5;
}

template <class T>
asrkit::SafetensorsFile open_case(const std::string& name) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  return asrkit::SafetensorsFile::open(
      asrkit_test::data_path("attention_" + name + "_" + tag + ".safetensors"));
}

struct Case {
  std::string name;
  bool relative;
  AttentionMask mask;
  bool bias, projection_bn;
};

template <class T>
void compare(const Case& c) {
  INFO("case " << c.name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const auto file = open_case<T>(c.name);
  asrkit::Rng rng(1);
  asrkit::MultiHeadAttentionOptions o;
  o.bias = c.bias;
  if (c.projection_bn) o.projection_norm = asrkit::ProjectionNorm::batch_norm;
  auto run = [&](auto& layer) {
    int loaded = 0;
    layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
      INFO("parameter " << n);
      const auto v = file.template read<T>(n);
      REQUIRE(v.shape() == p.value.shape());
      p.value = v;
      p.zero_grad();
      ++loaded;
    });
    const auto x = file.template read<T>("input");
    const auto lengths = file.template read<std::int32_t>("lengths");
    Tensor<T> y, dx;
    if constexpr (std::is_same_v<std::decay_t<decltype(layer)>,
                                 asrkit::RelPositionMultiHeadAttention<T>>) {
      const auto pos = file.template read<T>("pos_emb");
      CHECK(max_err(asrkit::RelPositionalEncoding<T>(kD).table(x.dim(0)), pos) < tolerance<T>());
      y = layer.forward_train(x, pos, lengths, c.mask);
      if (!c.projection_bn)
        CHECK(max_err(layer.forward(x, pos, lengths, c.mask), y) < tolerance<T>());
    } else {
      y = layer.forward_train(x, lengths, c.mask);
      CHECK(max_err(layer.forward(x, lengths, c.mask), y) < tolerance<T>());
    }
    CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
    dx = layer.backward(file.template read<T>("grad_output"));
    CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
    int grads = 0;
    layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
      INFO("grad." << n);
      CHECK(max_err(p.grad, file.template read<T>("grad." + n)) < tolerance<T>());
      ++grads;
    });
    CHECK(grads == loaded);
    int reference_grads = 0;  // every parameter PyTorch has, asrkit has too
    for (const auto& n : file.names()) reference_grads += n.rfind("grad.", 0) == 0;
    CHECK(reference_grads == grads);
    // BN buffers after one training step (running statistics over the valid frames).
    layer.for_each_buffer([&](const std::string& n, auto& b) {
      using B = typename std::decay_t<decltype(b)>::value_type;
      if constexpr (std::is_floating_point_v<B>) {
        INFO("buffer " << n);
        CHECK(max_err(b, file.template read<T>(n)) < tolerance<T>());
      }
    });
  };
  if (c.relative) {
    asrkit::RelPositionMultiHeadAttention<T> layer(kD, kHeads, rng, o);
    run(layer);
  } else {
    asrkit::MultiHeadAttention<T> layer(kD, kHeads, rng, o);
    run(layer);
  }
}

template <class T>
void run_all() {
  // Keep in sync with CASES in attention_reference.py.
  const Case cases[] = {
      {"mha_full", false, AttentionMask::full(), true, false},
      {"mha_causal", false, AttentionMask::causal(), true, false},
      {"mha_chunk", false, AttentionMask::chunked(2, -1), true, false},
      {"mha_chunk_left", false, AttentionMask::chunked(3, 1), false, false},
      {"rel_full", true, AttentionMask::full(), true, false},
      {"rel_chunk", true, AttentionMask::chunked(2, 1), true, false},
      {"rel_causal_bn", true, AttentionMask::causal(), true, true},
  };
  for (const auto& c : cases) compare<T>(c);
}

}  // namespace

TEST_CASE("Attention layers match PyTorch (double)", "[parity][attention]") { run_all<double>(); }

TEST_CASE("Attention layers match PyTorch (float)", "[parity][attention]") { run_all<float>(); }

TEST_CASE("Positional encoding tables match the ESPnet-style reference", "[parity][attention]") {
  const auto file =
      asrkit::SafetensorsFile::open(asrkit_test::data_path("attention_posenc_f64.safetensors"));
  const auto absolute = file.read<double>("absolute"), relative = file.read<double>("relative");
  const index_t steps = absolute.dim(0);
  CHECK(max_err(asrkit::SinusoidalPositionalEncoding<double>(kD).table(steps), absolute) < 1e-14);
  CHECK(max_err(asrkit::RelPositionalEncoding<double>(kD).table(steps), relative) < 1e-14);
  CHECK(max_err(asrkit::RelPositionalEncoding<float>(kD).table(steps), [&] {
          Tensor<float> f(relative.shape());
          for (index_t i = 0; i < f.numel(); ++i)
            f.data()[i] = static_cast<float>(relative.data()[i]);
          return f;
        }()) < 1e-7);
}
