// ds2::Model (examples/ds2/ds2_model.hpp) against the PyTorch module of
// tests/reference/ds2_reference.py, for bidirectional / forward-only (row convolution) and GRU /
// simple-RNN configs, in double and float:
//   * the configs: the JSON the script used parses into the same ds2::Config as the C++ presets;
//   * names both ways: torch's state_dict() file loads through asrkit::load_state_dict (strict:
//     no tensor missing, none extra, shapes equal); the state asrkit saves after its training step
//     loads into the torch module with strict=True (the parity:ds2:check step);
//   * inference logits (running statistics), output lengths;
//   * training logits (batch statistics, valid frames), every parameter gradient for a fixed
//     random dL/dlogits that is nonzero on padded frames too, BN running statistics after the step.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/train/checkpoint.hpp>

#include <ds2_model.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {

// Largest |got - want| over the entries `use(i)` selects, relative to the largest |want| there
// (at least 1e-3), as the other parity tests measure.
template <class T, class Use>
double max_err(const Tensor<T>& got, const Tensor<T>& want, Use use) {
  REQUIRE(got.shape() == want.shape());
  double scale = 1e-3, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i)
    if (use(i)) scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    if (use(i)) worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;
}

template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want) {
  return max_err(got, want, [](index_t) { return true; });
}

// Logits [T', B, V] on the frames t < lengths[b] only.
template <class T>
double max_err_valid(const Tensor<T>& got, const Tensor<T>& want,
                     const Tensor<std::int32_t>& lengths) {
  REQUIRE(want.rank() == 3);
  const index_t B = want.dim(1), V = want.dim(2);
  return max_err(got, want, [&](index_t i) { return i / (B * V) < lengths.data()[i / V % B]; });
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-9 : 1e-4;
}

// The config each case of ds2_reference.py uses, built from the C++ presets.
ds2::Config expected_config(const std::string& name) {
  const bool bidirectional = name.find("forward") == std::string::npos;
  ds2::Config c = ds2::Config::tiny(bidirectional);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "_rnn") == 0) {
    c.name += "-rnn";
    c.cell = "rnn";
    c.clip = 1.5;
  }
  return c;
}

double worst_seen[2] = {0, 0};  // largest error of all comparisons (float, double), for the log

template <class T>
void check_case(const std::string& name) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  INFO("case " << name << " " << tag);
  const auto data = asrkit::SafetensorsFile::open(
      asrkit_test::data_path("ds2_" + name + "_" + tag + ".safetensors"));
  const auto weights = asrkit::SafetensorsFile::open(
      asrkit_test::data_path("ds2_" + name + "_" + tag + "_weights.safetensors"));

  // The script's config is the C++ preset (so the Python copy of tiny() stays in sync).
  REQUIRE(data.metadata().count("config") == 1);
  const ds2::Config cfg =
      ds2::Config::from_json(nlohmann::json::parse(data.metadata().at("config")));
  CHECK(cfg.to_json() == expected_config(name).to_json());

  asrkit::Rng rng(7);
  ds2::Model<T> model(cfg, rng);
  asrkit::load_state_dict(weights, model);  // strict: every name both ways, every shape
  int parameters = 0, grads_in_file = 0;
  model.for_each_parameter([&](const std::string&, asrkit::Parameter<T>& p) {
    p.zero_grad();
    ++parameters;
  });
  for (const auto& n : data.names()) grads_in_file += n.rfind("grad.", 0) == 0 ? 1 : 0;
  CHECK(parameters == grads_in_file);

  const auto x = data.template read<T>("features");
  const auto lengths = data.template read<std::int32_t>("lengths");
  const auto want_lengths = data.template read<std::int32_t>("out_lengths");
  auto record = [&](double e) {
    double& w = worst_seen[std::is_same_v<T, double> ? 1 : 0];
    w = std::max(w, e);
    return e;
  };

  // Inference first: the running statistics as loaded.
  {
    const auto out = model.forward(x.view(), lengths.view());
    REQUIRE(out.lengths.shape() == want_lengths.shape());
    for (index_t b = 0; b < want_lengths.numel(); ++b)
      CHECK(out.lengths.data()[b] == want_lengths.data()[b]);
    CHECK(record(max_err_valid(out.logits, data.template read<T>("infer_logits"), want_lengths)) <
          tolerance<T>());
  }
  // One training step.
  const auto out = model.forward_train(x.view(), lengths.view());
  for (index_t b = 0; b < want_lengths.numel(); ++b)
    CHECK(out.lengths.data()[b] == want_lengths.data()[b]);
  CHECK(record(max_err_valid(out.logits, data.template read<T>("logits"), want_lengths)) <
        tolerance<T>());
  model.backward(data.template read<T>("grad_output").view());
  model.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("grad." << n);
    CHECK(record(max_err(p.grad, data.template read<T>("grad." + n))) < tolerance<T>());
  });
  model.for_each_buffer([&](const std::string& n, auto& b) {
    INFO("after." << n);
    using B = typename std::decay_t<decltype(b)>::value_type;
    if constexpr (std::is_floating_point_v<B>) {
      CHECK(record(max_err(b, data.template read<T>("after." + n))) < tolerance<T>());
    } else {
      const auto want = data.template read<std::int64_t>("after." + n);
      REQUIRE(want.numel() == b.numel());
      for (index_t i = 0; i < want.numel(); ++i) CHECK(b.data()[i] == want.data()[i]);
    }
  });
  // asrkit -> torch: the state after the step, for the :check step (strict=True there).
  if (std::is_same_v<T, double>)
    asrkit::save_checkpoint(asrkit_test::data_path("ds2_" + name + "_f64_from_asrkit.safetensors"),
                            model);
}

const char* const kCases[] = {"tiny", "tiny_forward", "tiny_rnn", "tiny_forward_rnn"};

}  // namespace

TEST_CASE("DS2 model matches PyTorch (double)", "[parity][ds2]") {
  for (const char* c : kCases) check_case<double>(c);
  WARN("largest relative error (double): " << worst_seen[1]);
}

TEST_CASE("DS2 model matches PyTorch (float)", "[parity][ds2]") {
  for (const char* c : kCases) check_case<float>(c);
  WARN("largest relative error (float): " << worst_seen[0]);
}
