#include <asrkit/train/loader.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <asrkit/io/wav.hpp>
#include <asrkit/train/sortagrad.hpp>

#include "../test_util.hpp"

using asrkit::Audio;
using asrkit::index_t;
using asrkit::Loader;
using asrkit::Tensor;
using asrkit::Utterance;
using asrkit::Vocabulary;

namespace {
// n utterances; utterance i has 100 * (i + 1) samples of value i / 100 and text "ab"-ish.
std::vector<Utterance> make_corpus(const std::string& name, int n) {
  const std::string dir = asrkit_test::data_path(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<Utterance> u;
  for (int i = 0; i < n; ++i) {
    Tensor<float> s({100 * (i + 1)}, static_cast<float>(i) / 100.0f);
    const std::string path = dir + "/u" + std::to_string(i) + ".wav";
    asrkit::write_wav(path, s, 8000, asrkit::WavEncoding::float32);
    const std::string text(static_cast<std::size_t>(i % 3 + 1), 'a');
    u.push_back({path, (i + 1) * 100 / 8000.0, text + "b", ""});
  }
  return u;
}
// Frames of 50 samples, 2 bins: [mean, frame index].
Tensor<float> frames(const Audio& a) {
  const index_t n = a.samples.numel() / 50;
  Tensor<float> f({n, 2});
  for (index_t t = 0; t < n; ++t) {
    f(t, 0) = a.samples(t * 50);
    f(t, 1) = static_cast<float>(t);
  }
  return f;
}
}  // namespace

TEST_CASE("loader delivers every batch in order, then nullopt", "[train][loader]") {
  const auto utts = make_corpus("loader_order", 7);
  std::vector<double> d;
  for (const auto& u : utts) d.push_back(u.duration);
  const asrkit::SortaGradSampler sampler(d, 3, 1);
  const auto batches = sampler.epoch(1);
  Loader loader(utts, Vocabulary::english(), frames, batches);
  CHECK(loader.size() == 3);
  std::size_t k = 0;
  while (auto b = loader.next()) {
    REQUIRE(k < batches.size());
    CHECK(b->indices == batches[k]);
    const auto B = static_cast<index_t>(batches[k].size());
    CHECK(b->features.dim(1) == B);
    CHECK(b->features.dim(2) == 2);
    for (index_t j = 0; j < B; ++j) {
      const index_t i = batches[k][static_cast<std::size_t>(j)];
      CHECK(b->input_lengths(j) == 2 * (i + 1));
      CHECK(b->target_lengths(j) == i % 3 + 2);
      CHECK(b->features(1, j, 0) == Approx(i / 100.0f));
      CHECK(b->features(1, j, 1) == 1.0f);
    }
    ++k;
  }
  CHECK(k == 3);
  CHECK_FALSE(loader.next().has_value());  // stays at the end
  CHECK(loader.delivered() == 3);
  CHECK(loader.wait_seconds() >= 0.0);
}

TEST_CASE("loader with a slow consumer never waits after the first batch", "[train][loader]") {
  const auto utts = make_corpus("loader_fast", 4);
  Loader loader(utts, Vocabulary::english(), frames, {{0}, {1}, {2}, {3}}, 2);
  auto first = loader.next();
  REQUIRE(first);
  const index_t waits = loader.idle_waits();
  int n = 1;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // "training"
    if (!loader.next()) break;
    ++n;
  }
  CHECK(n == 4);
  CHECK(loader.idle_waits() == waits);
}

TEST_CASE("loader rethrows worker errors after the good batches", "[train][loader]") {
  auto utts = make_corpus("loader_errors", 3);
  utts[1].audio += ".missing";
  {
    Loader loader(utts, Vocabulary::english(), frames, {{0}, {1}, {2}});
    REQUIRE(loader.next());
    REQUIRE_THROWS_ID(loader.next(), asrkit::IoError,
                      "[asrkit.loader.3] Loader: batch 1, utterance 1 ('" + utts[1].audio +
                          "'): [asrkit.io.1]");
    CHECK_FALSE(loader.next().has_value());
  }
  utts = make_corpus("loader_errors", 3);
  utts[2].text = "Xy";
  {
    Loader loader(utts, Vocabulary::english(), frames, {{0, 2}});
    REQUIRE_THROWS_ID(loader.next(), asrkit::ValueError,
                      "[asrkit.loader.3] Loader: batch 0, utterance 2");
  }
  {
    asrkit::LoaderOptions o;
    o.on_unknown = asrkit::OnUnknown::skip;
    Loader loader(utts, Vocabulary::english(), frames, {{0, 2}}, o);
    auto b = loader.next();
    REQUIRE(b);
    CHECK(b->target_lengths(1) == 1);
  }
  {
    auto boom = [](const Audio&) -> Tensor<float> { throw std::runtime_error("boom"); };
    Loader loader(utts, Vocabulary::english(), boom, {{0}});
    REQUIRE_THROWS_WITH(loader.next(), "boom");  // non-asrkit exceptions pass unchanged
  }
  {
    auto bad_shape = [](const Audio& a) {
      return a.samples.numel() > 100 ? Tensor<float>({1, 3}) : Tensor<float>({1, 2});
    };
    Loader loader(utts, Vocabulary::english(), bad_shape, {{0, 1}});
    REQUIRE_THROWS_ID(loader.next(), asrkit::ShapeError,
                      "[asrkit.loader.3] Loader: batch 0: [asrkit.batch.1]");
  }
}

TEST_CASE("loader argument errors", "[train][loader]") {
  const auto utts = make_corpus("loader_args", 2);
  REQUIRE_THROWS_ID(Loader(utts, Vocabulary::english(), frames, {{0}}, 0), asrkit::ValueError,
                    "[asrkit.loader.1]");
  REQUIRE_THROWS_ID(Loader(utts, Vocabulary::english(), nullptr, {{0}}), asrkit::ValueError,
                    "[asrkit.loader.1]");
  REQUIRE_THROWS_ID(Loader(utts, Vocabulary::english(), frames, {{0}, {1, 2}}),
                    asrkit::ValueError,
                    "[asrkit.loader.2] Loader: batch 1 has index 2, outside the manifest's [0, 2)");
  REQUIRE_THROWS_ID(Loader(utts, Vocabulary::english(), frames, {{0}, {}}), asrkit::ValueError,
                    "[asrkit.loader.2] Loader: batch 1 is empty");
  Loader empty(utts, Vocabulary::english(), frames, {});
  CHECK_FALSE(empty.next().has_value());
}

TEST_CASE("loader destroyed mid-epoch stops and joins", "[train][loader]") {
  const auto utts = make_corpus("loader_stop", 5);
  std::vector<std::vector<index_t>> many;
  for (int k = 0; k < 200; ++k) many.push_back({k % 5, (k + 1) % 5});
  std::atomic<int> calls{0};
  auto counting = [&calls](const Audio& a) {
    ++calls;
    return frames(a);
  };
  for (int round = 0; round < 5; ++round) {
    Loader loader(utts, Vocabulary::english(), counting, many, 1);
    if (round % 2 == 0) REQUIRE(loader.next());
    // Destroyed with the worker blocked on a full queue (or still loading).
  }
  {
    Loader never_read(utts, Vocabulary::english(), counting, many, 3);
  }
  CHECK(calls.load() < 200 * 2 * 6);  // stopped early, not run to the end
}
