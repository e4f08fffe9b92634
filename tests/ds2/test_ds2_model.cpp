// ds2::Model (examples/ds2/ds2_model.hpp): backward against finite differences in double for
// every parameter (bidirectional and forward-only, GRU and simple-RNN cells, training-mode BN),
// padding invariance in inference mode, independence from the values in padded frames in
// training, output lengths against Config::output_frames, Config JSON round trips and the error
// ids ds2.1 - ds2.5. The PyTorch parity test is tests/reference/ds2_parity.cpp.
#include <ds2_model.hpp>
#include <ds2_stream.hpp>

#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../gradcheck.hpp"
#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Shape;
using asrkit::Tensor;

namespace {

template <class T = double>
Tensor<T> randn(const Shape& s, std::uint64_t seed, T stddev = T(1)) {
  Tensor<T> t(s);
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), T(0), stddev);
  return t;
}

Tensor<std::int32_t> lengths_of(const std::vector<std::int32_t>& v) {
  Tensor<std::int32_t> l(Shape{static_cast<index_t>(v.size())});
  for (std::size_t i = 0; i < v.size(); ++i) l.data()[i] = v[i];
  return l;
}

ds2::Config tiny(bool bidirectional, const std::string& cell) {
  ds2::Config c = ds2::Config::tiny(bidirectional);
  c.cell = cell;
  return c;
}

// Non-trivial BN parameters and running statistics (the defaults 1, 0, 0, 1 would hide mistakes).
template <class T>
void randomize_norms(ds2::Model<T>& model, std::uint64_t seed) {
  asrkit::Rng rng(seed);
  model.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    if (n.find("norm") == std::string::npos) return;
    const bool gamma = n.size() >= 6 && n.compare(n.size() - 6, 6, "weight") == 0;
    for (index_t i = 0; i < p.value.numel(); ++i)
      p.value.data()[i] = gamma ? rng.uniform(T(0.5), T(1.5)) : rng.normal(T(0), T(0.2));
  });
  model.for_each_buffer([&](const std::string& n, auto& b) {
    using B = typename std::decay_t<decltype(b)>::value_type;
    if constexpr (std::is_floating_point_v<B>) {
      const bool var = n.find("running_var") != std::string::npos;
      for (index_t i = 0; i < b.numel(); ++i)
        b.data()[i] = var ? rng.uniform(B(0.5), B(2.0)) : rng.normal(B(0), B(0.3));
    }
  });
}

// Thousands of tiny forward passes: one thread (OpenMP's fork/join would dominate, and on a
// loaded machine its spinning threads slow the check down a hundredfold).
struct OneThread {
  int saved = asrkit::num_threads();
  OneThread() { asrkit::set_num_threads(1); }
  ~OneThread() { asrkit::set_num_threads(saved); }
};

// Zeroes w [T', B, V] on frames t >= lengths[b].
void mask_padded(Tensor<double>& w, const Tensor<std::int32_t>& lengths) {
  const index_t B = w.dim(1), V = w.dim(2);
  for (index_t i = 0; i < w.numel(); ++i)
    if (i / (B * V) >= lengths.data()[i / V % B]) w.data()[i] = 0;
}

// Gradient check of every parameter for L = sum(w ⊙ logits) over the valid output frames,
// training mode (BN batch statistics: L depends on them, which finite differences see too).
void gradcheck(const ds2::Config& cfg, std::uint64_t seed) {
  INFO("config " << cfg.name << " cell " << cfg.cell);
  const OneThread one_thread;
  asrkit::Rng rng(seed);
  ds2::Model<double> model(cfg, rng);
  randomize_norms(model, seed + 1);
  const index_t steps = 9;
  const auto lengths = lengths_of({9, 6});
  auto x = randn(Shape{steps, 2, cfg.bins}, seed + 2, 1.5);
  const auto first = model.forward_train(x.view(), lengths.view());
  auto w = randn(first.logits.shape(), seed + 3);
  mask_padded(w, first.lengths);
  model.for_each_parameter([](const std::string&, asrkit::Parameter<double>& p) { p.zero_grad(); });
  model.backward(w.view());
  std::map<std::string, Tensor<double>> analytic;
  model.for_each_parameter(
      [&](const std::string& n, asrkit::Parameter<double>& p) { analytic.emplace(n, p.grad); });

  auto loss = [&] {
    return asrkit_test::dot(model.forward_train(x.view(), lengths.view()).logits, w);
  };
  int checked = 0;
  model.for_each_parameter([&](const std::string& n, asrkit::Parameter<double>& p) {
    INFO("parameter " << n);
    const double err = asrkit_test::max_gradient_error(loss, p.value, analytic.at(n));
    CHECK(err < 1e-6);
    ++checked;
  });
  CHECK(checked == static_cast<int>(analytic.size()));
  // The gradient is not trivially zero somewhere it should not be: the first conv learns.
  double first_conv = 0;
  for (index_t i = 0; i < analytic.at("conv.0.weight").numel(); ++i)
    first_conv += std::fabs(analytic.at("conv.0.weight").data()[i]);
  CHECK(first_conv > 1e-6);
}

}  // namespace

TEST_CASE("ds2::Model backward matches finite differences (bidirectional GRU)", "[ds2]") {
  gradcheck(tiny(true, "gru"), 11);
}
TEST_CASE("ds2::Model backward matches finite differences (forward-only GRU + lookahead)",
          "[ds2]") {
  gradcheck(tiny(false, "gru"), 21);
}
TEST_CASE("ds2::Model backward matches finite differences (bidirectional simple RNN)", "[ds2]") {
  gradcheck(tiny(true, "rnn"), 31);
}
TEST_CASE("ds2::Model backward matches finite differences (forward-only simple RNN + lookahead)",
          "[ds2]") {
  gradcheck(tiny(false, "rnn"), 41);
}

TEST_CASE("ds2::Model inference: a padded batch gives each item what it gets alone", "[ds2]") {
  for (const bool bidirectional : {true, false}) {
    const ds2::Config cfg = tiny(bidirectional, "gru");
    INFO("config " << cfg.name);
    asrkit::Rng rng(51);
    ds2::Model<double> model(cfg, rng);
    randomize_norms(model, 52);
    const std::vector<std::int32_t> len = {23, 11, 17, 1};
    const index_t steps = 23, batch = 4, bins = cfg.bins;
    const auto x = randn(Shape{steps, batch, bins}, 53);  // random values in the padding too
    const auto out = model.forward(x.view(), lengths_of(len).view());
    REQUIRE(out.logits.dim(0) == cfg.output_frames(steps));
    for (index_t b = 0; b < batch; ++b) {
      INFO("item " << b);
      const index_t n = len[static_cast<std::size_t>(b)];
      Tensor<double> alone(Shape{n, 1, bins});
      for (index_t t = 0; t < n; ++t)
        for (index_t f = 0; f < bins; ++f)
          alone.data()[t * bins + f] = x.data()[(t * batch + b) * bins + f];
      const auto one = model.forward(alone.view());
      const index_t frames = cfg.output_frames(n), V = cfg.vocab;
      REQUIRE(one.logits.dim(0) == frames);
      REQUIRE(out.lengths.data()[b] == frames);
      double worst = 0;
      for (index_t t = 0; t < frames; ++t)
        for (index_t v = 0; v < V; ++v)
          worst = std::max(worst, std::fabs(one.logits.data()[t * V + v] -
                                            out.logits.data()[(t * batch + b) * V + v]));
      CHECK(worst < 1e-12);
    }
  }
}

TEST_CASE("ds2::Model training ignores the values in padded frames", "[ds2]") {
  for (const bool bidirectional : {true, false}) {
    const ds2::Config cfg = tiny(bidirectional, "gru");
    INFO("config " << cfg.name);
    const auto lengths = lengths_of({23, 11, 17});
    const index_t steps = 23, batch = 3, bins = cfg.bins;
    auto x1 = randn(Shape{steps, batch, bins}, 61);
    auto x2 = x1;
    const auto noise = randn(x1.shape(), 62, 10.0);
    for (index_t t = 0; t < steps; ++t)
      for (index_t b = 0; b < batch; ++b)
        if (t >= lengths.data()[b])
          for (index_t f = 0; f < bins; ++f)
            x2.data()[(t * batch + b) * bins + f] = noise.data()[(t * batch + b) * bins + f];
    std::vector<std::map<std::string, Tensor<double>>> grads(2);
    std::vector<Tensor<double>> logits(2);
    for (int k = 0; k < 2; ++k) {
      asrkit::Rng rng(63);
      ds2::Model<double> model(cfg, rng);
      const auto out = model.forward_train((k == 0 ? x1 : x2).view(), lengths.view());
      logits[k] = out.logits;
      auto w = randn(out.logits.shape(), 64);
      model.backward(w.view());  // nonzero on padded frames: only fc.bias may see those
      model.for_each_parameter(
          [&](const std::string& n, asrkit::Parameter<double>& p) { grads[k].emplace(n, p.grad); });
    }
    const index_t V = cfg.vocab;
    for (index_t i = 0; i < logits[0].numel(); ++i) {
      const index_t t = i / (batch * V), b = i / V % batch;
      if (t < cfg.output_frames(lengths.data()[b]))
        REQUIRE(logits[0].data()[i] == logits[1].data()[i]);
    }
    for (const auto& [name, g] : grads[0]) {
      INFO("grad " << name);
      for (index_t i = 0; i < g.numel(); ++i) REQUIRE(g.data()[i] == grads[1].at(name).data()[i]);
    }
  }
}

TEST_CASE("ds2::Model output lengths are Config::output_frames", "[ds2]") {
  for (const bool bidirectional : {true, false}) {
    const ds2::Config cfg = tiny(bidirectional, "rnn");
    asrkit::Rng rng(71);
    ds2::Model<float> model(cfg, rng);
    const std::vector<std::int32_t> len = {1, 2, 3, 4, 16, 23, 0};
    const index_t steps = 23, batch = static_cast<index_t>(len.size());
    const auto x = randn<float>(Shape{steps, batch, cfg.bins}, 72);
    for (const bool train : {false, true}) {
      const auto out = train ? model.forward_train(x.view(), lengths_of(len).view())
                             : model.forward(x.view(), lengths_of(len).view());
      REQUIRE(out.logits.rank() == 3);
      CHECK(out.logits.dim(0) == cfg.output_frames(steps));
      CHECK(out.logits.dim(1) == batch);
      CHECK(out.logits.dim(2) == cfg.vocab);
      REQUIRE(out.lengths.numel() == batch);
      for (index_t b = 0; b < batch; ++b)
        CHECK(out.lengths.data()[b] == cfg.output_frames(len[static_cast<std::size_t>(b)]));
    }
    // No lengths: every item has all T frames.
    const auto all = model.forward(x.view());
    for (index_t b = 0; b < batch; ++b) CHECK(all.lengths.data()[b] == cfg.output_frames(steps));
  }
  // The formula itself on the presets (SPECS §3.4: one time stride of 2 gives (T - 1) / 2 + 1).
  for (const index_t t : {1, 2, 100, 101}) {
    CHECK(ds2::Config::paper().output_frames(t) == (t - 1) / 2 + 1);
    CHECK(ds2::Config::small().output_frames(t) == (t - 1) / 2 + 1);
  }
  CHECK(ds2::Config::paper().conv_rows() == 41);  // 161 -> 81 -> 41
}

TEST_CASE("ds2::Config JSON round trip", "[ds2]") {
  for (const auto& c : {ds2::Config::tiny(true), ds2::Config::tiny(false), ds2::Config::small(),
                        ds2::Config::paper(true), ds2::Config::paper(false), tiny(true, "rnn")}) {
    INFO("config " << c.name);
    const auto j = c.to_json();
    const auto back = ds2::Config::from_json(j);
    CHECK(back.to_json() == j);
    CHECK(back.convs.size() == c.convs.size());
    CHECK(back.cell == c.cell);
    CHECK(back.lookahead == c.lookahead);
    CHECK(back.clip == c.clip);
    // Through a file too.
    const std::string path = asrkit_test::data_path("ds2_config_" + c.name + ".json");
    std::ofstream(path) << j.dump(2);
    CHECK(ds2::Config::load(path).to_json() == j);
    std::remove(path.c_str());
  }
  // Missing keys keep the defaults.
  CHECK(ds2::Config::from_json(nlohmann::json::object()).to_json() == ds2::Config().to_json());
  const auto partial = ds2::Config::from_json({{"hidden", 64}, {"cell", "rnn"}});
  CHECK(partial.hidden == 64);
  CHECK(partial.cell == "rnn");
  CHECK(partial.rnn_layers == ds2::Config().rnn_layers);
}

TEST_CASE("ds2::Config errors", "[ds2]") {
  using asrkit::ValueError;
  using nlohmann::json;
  const json base = ds2::Config::tiny().to_json();
  auto with = [&](const char* key, json value) {
    json j = base;
    j[key] = std::move(value);
    return j;
  };
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("cell", "lstm")), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("lookahead", 3)), ValueError,
                    "[asrkit.ds2.1]");  // bidirectional
  json four = base;
  for (int i = 0; i < 2; ++i) four["convs"].push_back(base["convs"][0]);
  REQUIRE(four["convs"].size() == 4);
  REQUIRE_THROWS_ID(ds2::Config::from_json(four), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("convs", json::array())), ValueError,
                    "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(json::array()), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(json(42)), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("hidden", "big")), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("bidirectional", 1.5)), ValueError,
                    "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("convs", 3)), ValueError, "[asrkit.ds2.1]");
  json bad_kernel = base;
  bad_kernel["convs"][0]["kernel"] = "wide";
  REQUIRE_THROWS_ID(ds2::Config::from_json(bad_kernel), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("hidden", 0)), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("vocab", 1)), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("clip", 0.0)), ValueError, "[asrkit.ds2.1]");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("bins", 0)), ValueError, "[asrkit.ds2.1]");
  // The error names the key.
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("hidden", "big")), ValueError, "hidden");
  // Nothing silently falls back or rounds: entries that are not objects, fractional sizes, typos.
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("convs", json::array({3}))), ValueError,
                    "every entry must be an object");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("hidden", 12.7)), ValueError, "must be an integer");
  REQUIRE_THROWS_ID(ds2::Config::from_json(with("hiden", 12)), ValueError, "unknown key \"hiden\"");

  const std::string missing = asrkit_test::data_path("ds2_no_such_config.json");
  REQUIRE_THROWS_ID(ds2::Config::load(missing), asrkit::IoError, "[asrkit.ds2.2]");
  const std::string broken = asrkit_test::data_path("ds2_broken_config.json");
  std::ofstream(broken) << "{\"hidden\": ";
  REQUIRE_THROWS_ID(ds2::Config::load(broken), asrkit::FormatError, "[asrkit.ds2.2]");
  std::remove(broken.c_str());
}

TEST_CASE("ds2::Model argument errors", "[ds2]") {
  const ds2::Config cfg = ds2::Config::tiny(false);
  asrkit::Rng rng(81);
  ds2::Model<double> model(cfg, rng);
  const auto x = randn(Shape{10, 2, cfg.bins}, 82);
  const auto wrong_bins = randn(Shape{10, 2, cfg.bins + 1}, 83);
  const auto rank2 = randn(Shape{10, cfg.bins}, 84);
  REQUIRE_THROWS_ID(model.forward(wrong_bins.view()), asrkit::ShapeError, "[asrkit.ds2.3]");
  REQUIRE_THROWS_ID(model.forward_train(rank2.view()), asrkit::ShapeError, "[asrkit.ds2.3]");
  REQUIRE_THROWS_ID(model.forward(x.view(), lengths_of({10, 5, 3}).view()), asrkit::ShapeError,
                    "[asrkit.ds2.4]");
  REQUIRE_THROWS_ID(model.forward(x.view(), lengths_of({11, 5}).view()), asrkit::ValueError,
                    "[asrkit.ds2.5]");
  REQUIRE_THROWS_ID(model.forward_train(x.view(), lengths_of({10, -1}).view()), asrkit::ValueError,
                    "[asrkit.ds2.5]");
  // The model still works after the errors.
  CHECK(model.forward(x.view(), lengths_of({10, 5}).view()).logits.dim(0) == cfg.output_frames(10));
}

namespace {

// The logits a stream gives for `x` [T, bins] pushed in chunks of the given sizes (cycled),
// then finish(): [T', V].
Tensor<double> streamed(ds2::Stream<double>& s, const Tensor<double>& x,
                        const std::vector<index_t>& sizes) {
  const index_t steps = x.dim(0), bins = x.dim(1);
  std::vector<double> out;
  index_t frames = 0, V = 0;
  const auto take = [&](const Tensor<double>& logits) {
    REQUIRE(logits.rank() == 2);
    V = logits.dim(1);
    frames += logits.dim(0);
    out.insert(out.end(), logits.data(), logits.data() + logits.numel());
  };
  for (index_t t = 0, k = 0; t < steps; ++k) {
    const index_t n = std::min(sizes[static_cast<std::size_t>(k) % sizes.size()], steps - t);
    Tensor<double> chunk(Shape{n, bins});
    std::copy(x.data() + t * bins, x.data() + (t + n) * bins, chunk.data());
    take(s.push(chunk.view()));
    t += n;
  }
  take(s.finish());
  Tensor<double> all(Shape{frames, V});
  std::copy(out.begin(), out.end(), all.data());
  return all;
}

}  // namespace

TEST_CASE("ds2::Stream: chunk after chunk equals the offline forward", "[ds2]") {
  OneThread one;
  for (const std::string cell : {"gru", "rnn"}) {
    const ds2::Config cfg = tiny(false, cell);
    INFO("config " << cfg.name << " " << cell);
    asrkit::Rng rng(91);
    ds2::Model<double> model(cfg, rng);
    randomize_norms(model, 92);
    ds2::Stream<double> stream(model);
    // Utterances long and short (1 frame: shorter than the first conv's kernel).
    for (const index_t steps : {37, 8, 1}) {
      const auto x = randn(Shape{steps, cfg.bins}, 93 + static_cast<std::uint64_t>(steps));
      const auto offline = model.forward(x.reshape(Shape{steps, 1, cfg.bins}));
      const index_t frames = offline.logits.dim(0), V = cfg.vocab;
      REQUIRE(frames == cfg.output_frames(steps));
      // Zero-length chunks in between, one frame at a time, uneven sizes, everything at once.
      for (const std::vector<index_t>& sizes : std::vector<std::vector<index_t>>{
               {1}, {2}, {3}, {5}, {0, 4, 0, 1, 7}, {6, 1, 2}, {1000}}) {
        INFO("steps " << steps << ", first chunk " << sizes[0] << " of " << sizes.size());
        const auto got = streamed(stream, x, sizes);
        REQUIRE(got.dim(0) == frames);
        REQUIRE(stream.frames_out() == 0);  // finish() reset it
        double worst = 0;
        for (index_t i = 0; i < frames * V; ++i)
          worst = std::max(worst, std::fabs(got.data()[i] - offline.logits.data()[i]));
        CHECK(worst < 1e-12);
      }
    }
  }
}

TEST_CASE("ds2::Stream: partial output arrives before the end; errors", "[ds2]") {
  const ds2::Config cfg = ds2::Config::tiny(false);
  asrkit::Rng rng(95);
  ds2::Model<double> model(cfg, rng);
  ds2::Stream<double> stream(model);
  const auto x = randn(Shape{40, cfg.bins}, 96);
  // 40 input frames are 20 output frames; all but the lookahead's τ = 3 and the convs' right
  // context (one output frame here) come out before finish().
  const auto first = stream.push(x.view());
  CHECK(first.dim(0) == cfg.output_frames(40) - cfg.lookahead - 1);
  CHECK(stream.frames_out() == first.dim(0));
  CHECK(stream.finish().dim(0) == cfg.lookahead + 1);

  const auto wrong = randn(Shape{4, cfg.bins + 1}, 97);
  const auto rank3 = randn(Shape{4, 1, cfg.bins}, 98);
  REQUIRE_THROWS_ID(stream.push(wrong.view()), asrkit::ShapeError, "[asrkit.ds2.3]");
  REQUIRE_THROWS_ID(stream.push(rank3.view()), asrkit::ShapeError, "[asrkit.ds2.3]");
  ds2::Model<double> bidirectional(ds2::Config::tiny(true), rng);
  REQUIRE_THROWS_ID(ds2::Stream<double>{bidirectional}, asrkit::ValueError, "[asrkit.ds2.7]");
}
