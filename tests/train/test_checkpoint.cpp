// Checkpoints: model + optimizer state through safetensors with state_dict names; strict,
// atomic loading with errors that name the tensor, the expected and the actual value.
#include <asrkit/core/rng.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/sequential.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/train/optimizer.hpp>

#include <map>
#include <set>
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
  // PyTorch's optimizer.state_dict(), flattened: state by parameter index, the param group as
  // metadata.
  const auto file = asrkit::SafetensorsFile::open(path);
  CHECK(file.contains("optimizer.state.0.exp_avg_sq"));
  CHECK(file.info("optimizer.state.3.step").shape.empty());
  CHECK(file.read<float>("optimizer.state.3.step")() == 3.0f);
  CHECK(file.metadata().at("optimizer.param_groups.0.lr") == "0.01");
  CHECK(file.metadata().at("optimizer.param_groups.0.params") == "[0,1,2,3]");

  auto b = make_model(5);
  asrkit::Adam<float> opt_b(b, {0.5});
  asrkit::load_checkpoint(path, b, opt_b);
  CHECK(opt_b.steps() == 3);
  CHECK(opt_b.options().lr ==
        0.01);  // the param group is restored, as torch's load_state_dict does
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
    REQUIRE_THROWS_ID(
        asrkit::load_state_dict(f, a), asrkit::ValueError,
        "[asrkit.checkpoint.1] load_state_dict: the file has no tensor '1.weight' of layer '1' "
        "(BatchNorm) (expected shape [3]); missing 5: '1.weight', '1.bias', '1.running_mean', "
        "'1.running_var', '1.num_batches_tracked'");
  }
  SECTION("unexpected name") {
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, a);
    w.add("2.weight", Tensor<float>({3}));
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ValueError,
                      "[asrkit.checkpoint.2] load_state_dict: the file has 1 tensor(s) the model "
                      "(or optimizer) does not: "
                      "'2.weight'");
  }
  SECTION("shape mismatch") {
    auto big = Model(asrkit::LayerNorm<float>(3), asrkit::BatchNorm<float>(4));
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, big);
    const auto f = asrkit::SafetensorsFile::parse(w.to_bytes());
    REQUIRE_THROWS_ID(asrkit::load_state_dict(f, a), asrkit::ShapeError,
                      "[asrkit.checkpoint.3] load_state_dict: tensor '1.weight' of layer '1' "
                      "(BatchNorm) has shape "
                      "[4] in the file, expected [3]");
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
                      "[asrkit.checkpoint.4] load_state_dict: tensor '0.bias' of layer '0' "
                      "(LayerNorm) is stored as I32");
  }
  SECTION("optimizer state missing from a model-only file") {
    const std::string path = asrkit_test::data_path("checkpoint_model_only.safetensors");
    asrkit::save_checkpoint(path, a);
    asrkit::Sgd<float> opt(a, {0.1, 0.9});
    REQUIRE_THROWS_ID(
        asrkit::load_checkpoint(path, a, opt), asrkit::ValueError,
        "[asrkit.checkpoint.6] load_checkpoint: the file has no optimizer param group "
        "(metadata 'optimizer.param_groups.0.*')");
  }
  CHECK(state(a) == before);  // nothing changed
}

TEST_CASE("checkpoint errors name the innermost layer that holds the tensor",
          "[train][checkpoint][errors]") {
  asrkit::Rng rng(3);
  using Net = asrkit::Sequential<asrkit::Linear<float>, asrkit::ConformerConvolution<float>>;
  auto make = [&](asrkit::index_t channels) {
    return Net(asrkit::Linear<float>(2, channels),
               asrkit::ConformerConvolution<float>(channels, {3}, rng));
  };
  auto a = make(4), b = make(6);
  asrkit::SafetensorsWriter w;
  asrkit::add_state_dict(w, b);
  const auto wrong = asrkit::SafetensorsFile::parse(w.to_bytes());
  REQUIRE_THROWS_ID(asrkit::load_state_dict(wrong, a), asrkit::ShapeError,
                    "[asrkit.checkpoint.3] load_state_dict: tensor '0.weight' of layer '0' "
                    "(Linear) has shape [6, 2]");
  // Inside a composite layer: the child layer, not the block.
  asrkit::SafetensorsWriter v;
  a.get<0>().for_each_parameter([&](const std::string& n, auto& p) { v.add("0." + n, p.value); });
  b.get<1>().for_each_parameter([&](const std::string& n, auto& p) { v.add("1." + n, p.value); });
  const auto mixed = asrkit::SafetensorsFile::parse(v.to_bytes());
  REQUIRE_THROWS_ID(asrkit::load_state_dict(mixed, a), asrkit::ValueError,
                    "[asrkit.checkpoint.1] load_state_dict: the file has no tensor "
                    "'1.norm.running_mean' of layer "
                    "'1.norm' (SequenceBatchNorm) (expected shape [4])");
  auto kernel5 = Net(asrkit::Linear<float>(2, 4), asrkit::ConformerConvolution<float>(4, {5}, rng));
  asrkit::SafetensorsWriter k;
  asrkit::add_state_dict(k, kernel5);
  REQUIRE_THROWS_ID(
      asrkit::load_state_dict(asrkit::SafetensorsFile::parse(k.to_bytes()), a), asrkit::ShapeError,
      "[asrkit.checkpoint.3] load_state_dict: tensor '1.depthwise_conv.weight' of layer "
      "'1.depthwise_conv' (DepthwiseConv1d) has shape [4, 1, 5] in the file, expected [4, 1, 3]");
  // A model that is one layer: named by its type.
  asrkit::LayerNorm<float> ln(3);
  asrkit::SafetensorsWriter u;
  u.add("weight", Tensor<float>({3}));
  REQUIRE_THROWS_ID(
      asrkit::load_state_dict(asrkit::SafetensorsFile::parse(u.to_bytes()), ln), asrkit::ValueError,
      "[asrkit.checkpoint.1] load_state_dict: the file has no tensor 'bias' of layer LayerNorm");
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

namespace {

/// A copy of the checkpoint at `path` with tensors dropped or replaced and metadata changed
/// (an empty value removes the key).
void rewrite(const std::string& path, const std::string& out, const std::set<std::string>& drop,
             const std::map<std::string, Tensor<float>>& replace,
             const std::map<std::string, std::string>& metadata) {
  const auto f = asrkit::SafetensorsFile::open(path);
  asrkit::SafetensorsWriter w;
  for (const std::string& n : f.names()) {
    if (drop.count(n) || replace.count(n)) continue;
    if (asrkit::dtype_is_float(f.info(n).dtype))
      w.add(n, f.read<float>(n));
    else
      w.add(n, f.read<std::int64_t>(n));
  }
  for (const auto& kv : replace) w.add(kv.first, kv.second);
  auto meta = f.metadata();
  for (const auto& kv : metadata) {
    if (kv.second.empty())
      meta.erase(kv.first);
    else
      meta[kv.first] = kv.second;
  }
  for (const auto& kv : meta) w.set_metadata(kv.first, kv.second);
  w.save(out);
}

template <class Optimizer>
std::vector<std::string> initialized(Optimizer& opt) {
  std::vector<std::string> out;
  opt.for_each_state([&](const std::string& group, auto& s) {
    if (s.initialized) out.push_back(group);
  });
  return out;
}

}  // namespace

TEST_CASE("optimizer state loads per parameter, as PyTorch keeps it",
          "[train][checkpoint][errors]") {
  const std::string path = asrkit_test::data_path("checkpoint_state.safetensors"),
                    edited = asrkit_test::data_path("checkpoint_state_edited.safetensors");
  auto a = make_model(1);
  asrkit::Adam<float> opt(a, {0.01});
  a.for_each_parameter([&](const std::string&, auto& p) { p.grad.fill(0.5f); });
  opt.step();
  opt.step();
  asrkit::save_checkpoint(path, a, opt);
  const auto model_before = state(a);
  auto optimizer_state = [&] {
    std::vector<float> out;
    opt.for_each_state([&](const std::string&, auto& s) {
      for (auto& t : s.values) out.insert(out.end(), t.data(), t.data() + t.numel());
    });
    return out;
  };
  const auto before = optimizer_state();

  SECTION("a parameter without state (it has not stepped in PyTorch) starts fresh") {
    rewrite(path, edited,
            {"optimizer.state.1.step", "optimizer.state.1.exp_avg", "optimizer.state.1.exp_avg_sq"},
            {}, {});
    asrkit::load_checkpoint(edited, a, opt);
    CHECK(initialized(opt) == std::vector<std::string>{"state.0", "state.2", "state.3"});
    CHECK(opt.steps() == 2);
    std::vector<float> fresh;
    opt.for_each_state([&](const std::string& group, auto& s) {
      if (group == "state.1")
        for (auto& t : s.values) fresh.insert(fresh.end(), t.data(), t.data() + t.numel());
    });
    CHECK(fresh == std::vector<float>(1 + 3 + 3, 0.0f));
    // Saving it again stores only the parameters that have state.
    asrkit::save_checkpoint(path, a, opt);
    CHECK_FALSE(asrkit::SafetensorsFile::open(path).contains("optimizer.state.1.step"));
    CHECK(asrkit::SafetensorsFile::open(path).contains("optimizer.state.2.step"));
  }
  SECTION("an optimizer saved before its first step has no state, and loading it resets") {
    auto fresh_model = make_model(1);
    asrkit::Adam<float> fresh(fresh_model, {0.01});
    asrkit::save_checkpoint(edited, fresh_model, fresh);
    CHECK(asrkit::SafetensorsFile::open(edited).names().size() == 7);  // the model's alone
    asrkit::load_checkpoint(edited, a, opt);
    CHECK(initialized(opt).empty());
    CHECK(opt.steps() == 0);
  }

  struct Bad {
    const char* what;
    std::set<std::string> drop;
    std::map<std::string, Tensor<float>> replace;
    std::map<std::string, std::string> metadata;
    const char* error;
  };
  const Bad bad[] = {
      {"part of a parameter's state",
       {"optimizer.state.2.exp_avg_sq"},
       {},
       {},
       "[asrkit.checkpoint.1] load_checkpoint: the file has no tensor "
       "'optimizer.state.2.exp_avg_sq' of the "
       "optimizer state of parameter '1.weight' (expected shape [3]); missing 1"},
      {"a parameter the optimizer does not have",
       {},
       {{"optimizer.state.4.step", Tensor<float>(asrkit::Shape{}, 1.0f)}},
       {},
       "[asrkit.checkpoint.2] load_checkpoint: the file has 1 tensor(s) the model (or optimizer) "
       "does not: "
       "'optimizer.state.4.step'"},
      {"a negative step",
       {},
       {{"optimizer.state.0.step", Tensor<float>(asrkit::Shape{}, -1.0f)}},
       {},
       "[asrkit.checkpoint.5] load_checkpoint: tensor 'optimizer.state.0.step' of the optimizer "
       "state "
       "of parameter '0.weight' holds -1, expected a step count"},
      {"a fractional step",
       {},
       {{"optimizer.state.3.step", Tensor<float>(asrkit::Shape{}, 2.5f)}},
       {},
       "[asrkit.checkpoint.5] load_checkpoint: tensor 'optimizer.state.3.step' of the optimizer "
       "state "
       "of parameter '1.bias' holds 2.5"},
      {"a second param group",
       {},
       {},
       {{"optimizer.param_groups.1.lr", "0.1"}},
       "[asrkit.checkpoint.6] load_checkpoint: the file has metadata "
       "'optimizer.param_groups.1.lr'; "
       "asrkit's optimizers have one param group (0)"},
      {"another parameter count",
       {},
       {},
       {{"optimizer.param_groups.0.params", "[0,1,2]"}},
       "[asrkit.checkpoint.6] load_checkpoint: metadata 'optimizer.param_groups.0.params' is "
       "'[0,1,2]', "
       "expected the optimizer's 4 parameter indices 0..3 in order"},
      {"no params list",
       {},
       {},
       {{"optimizer.param_groups.0.params", ""}},
       "[asrkit.checkpoint.6] load_checkpoint: metadata 'optimizer.param_groups.0.params' is "
       "'(absent)'"},
      {"another optimizer's options",
       {},
       {},
       {{"optimizer.param_groups.0.amsgrad", "true"}},
       "[asrkit.optimizer.3] Adam: amsgrad true differs from this optimizer's (false)"},
      {"a missing option",
       {},
       {},
       {{"optimizer.param_groups.0.eps", ""}},
       "[asrkit.optimizer.2] Adam: param_groups has no option 'eps'"},
      {"an AdamW's state (PyTorch 2.x marks it)",
       {},
       {},
       {{"optimizer.param_groups.0.decoupled_weight_decay", "true"}},
       "[asrkit.optimizer.3] Adam: param_groups option 'decoupled_weight_decay' is true (an "
       "AdamW's), "
       "expected false"},
  };
  for (const Bad& b : bad) {
    DYNAMIC_SECTION(b.what) {
      rewrite(path, edited, b.drop, b.replace, b.metadata);
      REQUIRE_THROWS_WITH(asrkit::load_checkpoint(edited, a, opt), Catch::Contains(b.error));
      CHECK(optimizer_state() == before);  // nothing changed
      CHECK(state(a) == model_before);
      CHECK(opt.options().lr == 0.01);
    }
  }
  SECTION("a file in the layout before PyTorch's state_dict says so") {
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, a);
    w.add("optimizer.step", Tensor<std::int64_t>(asrkit::Shape{}, 3));
    w.add("optimizer.0.weight.exp_avg", Tensor<float>({3}));
    w.save(edited);
    REQUIRE_THROWS_WITH(
        asrkit::load_checkpoint(edited, a, opt),
        Catch::Contains("[asrkit.checkpoint.6] load_checkpoint: the file has no optimizer "
                        "param group") &&
            Catch::Contains("layout before PyTorch's state_dict ('optimizer.step', "
                            "'optimizer.<parameter>.exp_avg'), which is no longer read"));
    CHECK_NOTHROW(asrkit::load_checkpoint(edited, a));  // the model part still loads
  }
  SECTION("the caller's metadata cannot replace the param group") {
    asrkit::save_checkpoint(edited, a, opt,
                            {{"optimizer.param_groups.0.lr", "0.5"}, {"epoch", "2"}});
    const auto meta = asrkit::SafetensorsFile::open(edited).metadata();
    CHECK(meta.at("optimizer.param_groups.0.lr") == "0.01");
    CHECK(meta.at("epoch") == "2");
  }
}
