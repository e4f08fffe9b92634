// Checkpoints: model + optimizer state through safetensors with state_dict names; strict,
// atomic loading with errors that name the tensor, the expected and the actual value.
#include <asrkit/core/rng.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/sequential.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/train/optimizer.hpp>

#include <string>

#include "../test_util.hpp"

using asrkit::Tensor;

namespace {

using Model = asrkit::Sequential<asrkit::LayerNorm<float>, asrkit::BatchNorm<float>>;

Model make_model(std::uint64_t seed) {
  Model m(asrkit::LayerNorm<float>(3), asrkit::BatchNorm<float>(3));
  asrkit::Rng rng(seed);
  m.for_each_parameter([&](const std::string&, auto& p) { rng.fill_normal(p.value.view(), 0.0f, 1.0f); });
  Tensor<float> x({4, 3});
  rng.fill_normal(x.view(), 0.0f, 1.0f);
  m.forward_train(x.view());  // running statistics and num_batches_tracked
  return m;
}

template <class M>
std::vector<float> state(M& m) {
  std::vector<float> out;
  m.for_each_parameter([&](const std::string&, auto& p) { out.insert(out.end(), p.value.data(), p.value.data() + p.value.numel()); });
  m.for_each_buffer([&](const std::string&, auto& t) {
    for (asrkit::index_t i = 0; i < t.numel(); ++i) out.push_back(static_cast<float>(t.data()[i]));
  });
  return out;
}

}  // namespace

TEST_CASE("checkpoint round trip with state_dict names", "[train][checkpoint]") {
  const std::string path = asrkit_test::data_path("checkpoint_roundtrip.safetensors");
  auto a = make_model(1);
  asrkit::save_checkpoint(path, a, {{"epoch", "3"}});
  const auto file = asrkit::SafetensorsFile::open(path);
  CHECK(file.names().size() == 7);
  CHECK(file.contains("0.weight"));
  CHECK(file.contains("1.running_var"));
  CHECK(file.info("1.num_batches_tracked").dtype == asrkit::DType::I64);
  CHECK(file.info("1.num_batches_tracked").shape.empty());
  CHECK(file.metadata().at("format") == "pt");

  auto b = make_model(2);
  REQUIRE(state(a) != state(b));
  const auto meta = asrkit::load_checkpoint(path, b);
  CHECK(meta.at("epoch") == "3");
  CHECK(state(a) == state(b));
}

TEST_CASE("checkpoint with optimizer state resumes the same trajectory", "[train][checkpoint]") {
  const std::string path = asrkit_test::data_path("checkpoint_optimizer.safetensors");
  auto run_steps = [](Model& m, asrkit::Adam<float>& opt, int steps, std::uint64_t seed) {
    asrkit::Rng rng(seed);
    for (int s = 0; s < steps; ++s) {
      m.for_each_parameter([&](const std::string&, auto& p) { rng.fill_normal(p.grad.view(), 0.0f, 1.0f); });
      opt.step();
    }
  };
  auto a = make_model(1);
  asrkit::Adam<float> opt_a(a, {0.01});
  run_steps(a, opt_a, 3, 10);
  asrkit::save_checkpoint(path, a, opt_a);
  CHECK(asrkit::SafetensorsFile::open(path).contains("optimizer.0.weight.exp_avg_sq"));

  auto b = make_model(5);
  asrkit::Adam<float> opt_b(b, {0.01});
  asrkit::load_checkpoint(path, b, opt_b);
  CHECK(opt_b.steps() == 3);
  run_steps(a, opt_a, 2, 11);
  run_steps(b, opt_b, 2, 11);
  CHECK(state(a) == state(b));
  // The model alone loads from a file with optimizer state (it is ignored).
  auto c = make_model(6);
  CHECK_NOTHROW(asrkit::load_checkpoint(path, c));
}

TEST_CASE("checkpoint loading is strict, atomic and names the tensor", "[train][checkpoint][errors]") {
  auto a = make_model(1);
  const auto before = state(a);
  SECTION("missing name") {
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, a.get<0>(), "0");
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ValueError,
                      "[asrkit.checkpoint.1] load_state_dict: the file has no tensor '1.weight' (expected "
                      "shape [3]); missing 5: '1.weight', '1.bias', '1.running_mean', '1.running_var', "
                      "'1.num_batches_tracked'");
  }
  SECTION("unexpected name") {
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, a);
    w.add("2.weight", Tensor<float>({3}));
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ValueError,
                      "[asrkit.checkpoint.2] load_state_dict: the file has 1 tensor(s) the model does not: '2.weight'");
  }
  SECTION("shape mismatch") {
    auto big = Model(asrkit::LayerNorm<float>(3), asrkit::BatchNorm<float>(4));
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, big);
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ShapeError,
                      "[asrkit.checkpoint.3] load_state_dict: tensor '1.weight' has shape [4] in the file, expected [3]");
  }
  SECTION("integer where a float is expected") {
    asrkit::SafetensorsWriter w;
    a.for_each_parameter([&](const std::string& n, auto& p) {
      if (n == "0.bias") w.add(n, Tensor<std::int32_t>({3}));
      else w.add(n, p.value);
    });
    a.for_each_buffer([&](const std::string& n, auto& t) { w.add(n, t); });
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ValueError,
                      "[asrkit.checkpoint.4] load_state_dict: tensor '0.bias' is stored as I32");
  }
  SECTION("optimizer state missing from a model-only file") {
    const std::string path = asrkit_test::data_path("checkpoint_model_only.safetensors");
    asrkit::save_checkpoint(path, a);
    asrkit::Sgd<float> opt(a, {0.1, 0.9});
    REQUIRE_THROWS_ID(asrkit::load_checkpoint(path, a, opt), asrkit::ValueError,
                      "[asrkit.checkpoint.1] load_checkpoint: the file has no tensor 'optimizer.step'");
  }
  CHECK(state(a) == before);  // nothing changed
}

TEST_CASE("load_state_dict converts floating-point dtypes and honours a prefix", "[train][checkpoint]") {
  auto a = make_model(1);
  asrkit::SafetensorsWriter w;
  a.for_each_parameter([&](const std::string& n, auto& p) { w.add("encoder." + n, p.value, asrkit::DType::F64); });
  a.for_each_buffer([&](const std::string& n, auto& t) { w.add("encoder." + n, t); });
  w.add("decoder.weight", Tensor<float>({2}));  // outside the prefix: ignored
  const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
  auto b = make_model(2);
  asrkit::load_state_dict(f, b, "encoder");
  CHECK(state(a) == state(b));
}
