#include <asrkit/frontend/normalize.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <asrkit/core/rng.hpp>

#include "../test_util.hpp"

using asrkit::CmvnStats;
using asrkit::index_t;
using asrkit::OnlineNormalizer;
using asrkit::OnlineNormalizerOptions;
using asrkit::Rng;
using asrkit::Tensor;
using asrkit::TensorView;

namespace {

// Features whose bins have different means and scales, like log spectra.
template <class T>
Tensor<T> make_features(index_t frames, index_t bins, Rng& rng, double shift = 0.0) {
  Tensor<T> f({frames, bins});
  for (index_t t = 0; t < frames; ++t)
    for (index_t b = 0; b < bins; ++b)
      f(t, b) = static_cast<T>(shift + 3.0 * static_cast<double>(b) - 5.0 +
                               (0.5 + 0.25 * static_cast<double>(b)) * rng.normal());
  return f;
}

// Straightforward two-pass per-bin mean and population std in long double.
template <class T>
void reference_moments(TensorView<const T> f, std::vector<double>& mean, std::vector<double>& sd) {
  const index_t frames = f.dim(0), bins = f.dim(1);
  mean.assign(static_cast<std::size_t>(bins), 0.0);
  sd.assign(static_cast<std::size_t>(bins), 0.0);
  for (index_t b = 0; b < bins; ++b) {
    long double s = 0;
    for (index_t t = 0; t < frames; ++t) s += f(t, b);
    const long double m = s / frames;
    long double q = 0;
    for (index_t t = 0; t < frames; ++t) q += (f(t, b) - m) * (f(t, b) - m);
    mean[static_cast<std::size_t>(b)] = static_cast<double>(m);
    sd[static_cast<std::size_t>(b)] = static_cast<double>(std::sqrt(q / frames));
  }
}

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& parts) {
  index_t frames = 0;
  for (const auto& p : parts) frames += p.dim(0);
  Tensor<T> out({frames, parts.at(0).dim(1)});
  T* dst = out.data();
  for (const auto& p : parts) dst = std::copy(p.data(), p.data() + p.numel(), dst);
  return out;
}

template <class T>
bool bit_identical(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

template <class T>
void check_normalize_utterance(double tol) {
  Rng rng(7);
  const Tensor<T> input = make_features<T>(300, 9, rng);
  Tensor<T> x = input;
  asrkit::normalize_utterance(x.view(), T(1e-5));
  std::vector<double> mean, sd;
  reference_moments<T>(input.view(), mean, sd);
  for (index_t t = 0; t < x.dim(0); ++t)
    for (index_t b = 0; b < x.dim(1); ++b) {
      const auto i = static_cast<std::size_t>(b);
      const double expected = (static_cast<double>(input(t, b)) - mean[i]) / (sd[i] + 1e-5);
      REQUIRE(static_cast<double>(x(t, b)) == Approx(expected).margin(tol).epsilon(tol));
    }
  // The result itself: mean 0, std std / (std + eps) ~ 1 per bin.
  std::vector<double> out_mean, out_sd;
  reference_moments<T>(x.view(), out_mean, out_sd);
  for (index_t b = 0; b < x.dim(1); ++b) {
    const auto i = static_cast<std::size_t>(b);
    CHECK(out_mean[i] == Approx(0.0).margin(10 * tol));
    CHECK(out_sd[i] == Approx(1.0).epsilon(1e-4));
  }
}

}  // namespace

TEST_CASE("normalize_utterance gives mean 0 / std 1 per bin, matching a two-pass reference",
          "[frontend][normalize]") {
  check_normalize_utterance<float>(1e-6);
  check_normalize_utterance<double>(1e-12);
}

TEST_CASE("normalize_utterance: constant bins become 0, empty input is a no-op",
          "[frontend][normalize]") {
  Tensor<float> x({4, 2}, 0.1f);
  for (index_t t = 0; t < 4; ++t) x(t, 1) = static_cast<float>(t);
  asrkit::normalize_utterance(x.view());
  for (index_t t = 0; t < 4; ++t) {
    CHECK(std::abs(x(t, 0)) < 1e-8f);  // (x - mean) / (0 + eps): rounding noise only, no NaN
    CHECK(std::isfinite(x(t, 1)));
  }
  // Population std of {0, 1, 2, 3} is sqrt(1.25).
  CHECK(x(3, 1) == Approx(1.5 / (std::sqrt(1.25) + 1e-5)).epsilon(1e-6));
  Tensor<double> empty({0, 5});
  asrkit::normalize_utterance(empty.view());
  Tensor<double> one({1, 3}, 2.0);
  asrkit::normalize_utterance(one.view());
  for (index_t b = 0; b < 3; ++b) CHECK(one(0, b) == 0.0);
}

TEST_CASE("CmvnStats over several utterances equals the stats of their concatenation",
          "[frontend][normalize]") {
  Rng rng(11);
  std::vector<Tensor<float>> utts;
  for (index_t frames : {17, 1, 0, 250, 33}) utts.push_back(make_features<float>(frames, 6, rng));
  CmvnStats<float> incremental;
  for (const auto& u : utts) incremental.accumulate(u);
  const Tensor<float> all = concat(utts);
  CmvnStats<float> whole(6);
  whole.accumulate(all);
  REQUIRE(incremental.bins() == 6);
  REQUIRE(incremental.count() == 301.0);
  REQUIRE(whole.count() == 301.0);
  for (index_t b = 0; b < 6; ++b) {  // same additions in the same order: bit-identical
    CHECK(incremental.sum()(b) == whole.sum()(b));
    CHECK(incremental.sum_sq()(b) == whole.sum_sq()(b));
  }
  std::vector<double> mean, sd;
  reference_moments<float>(all.view(), mean, sd);
  const Tensor<double> m = incremental.mean(), s = incremental.stddev();
  for (index_t b = 0; b < 6; ++b) {
    CHECK(m(b) == Approx(mean[static_cast<std::size_t>(b)]).epsilon(1e-12).margin(1e-12));
    CHECK(s(b) == Approx(sd[static_cast<std::size_t>(b)]).epsilon(1e-9));
  }
  // merge() of two halves: the same statistics up to rounding.
  CmvnStats<float> a, b;
  for (std::size_t i = 0; i < utts.size(); ++i) (i < 2 ? a : b).accumulate(utts[i]);
  a.merge(b);
  a.merge(CmvnStats<float>());  // empty: no-op
  CHECK(a.count() == whole.count());
  for (index_t k = 0; k < 6; ++k) CHECK(a.sum()(k) == Approx(whole.sum()(k)).epsilon(1e-12));

  // apply() with an utterance's own statistics is normalize_utterance up to rounding.
  Tensor<float> x = all, y = all;
  whole.apply(x.view(), 1e-5f);
  asrkit::normalize_utterance(y.view(), 1e-5f);
  for (index_t i = 0; i < x.numel(); ++i)
    REQUIRE(x.data()[i] == Approx(y.data()[i]).margin(1e-5).epsilon(1e-5));
}

TEST_CASE("CmvnStats save/load round trip", "[frontend][normalize]") {
  Rng rng(3);
  CmvnStats<float> stats;
  stats.accumulate(make_features<float>(40, 5, rng));
  stats.accumulate(make_features<float>(9, 5, rng));
  const std::string path = asrkit_test::data_path("normalize_cmvn.safetensors");
  stats.save(path);
  const auto file = asrkit::SafetensorsFile::open(path);
  CHECK(file.metadata().at("format") == "asrkit.cmvn.v1");
  CHECK(file.info("count").dtype == asrkit::DType::F64);
  CHECK(file.info("sum").shape == std::vector<std::int64_t>{5});
  const CmvnStats<float> loaded = CmvnStats<float>::load(path);
  CHECK(loaded.bins() == 5);
  CHECK(loaded.count() == 49.0);
  for (index_t b = 0; b < 5; ++b) {  // bit-exact
    CHECK(loaded.sum()(b) == stats.sum()(b));
    CHECK(loaded.sum_sq()(b) == stats.sum_sq()(b));
  }
  const CmvnStats<double> as_double = CmvnStats<double>::load(path);  // same format for both
  CHECK(as_double.sum()(4) == stats.sum()(4));
  // Statistics with bins but no frames round-trip too (and stay unusable for apply).
  CmvnStats<double> empty(3);
  empty.save(path);
  const auto loaded_empty = CmvnStats<double>::load(path);
  CHECK(loaded_empty.bins() == 3);
  CHECK(loaded_empty.count() == 0.0);
}

TEST_CASE("CmvnStats::from_sums rebuilds statistics and refuses impossible sums",
          "[frontend][normalize]") {
  Rng rng(4);
  CmvnStats<float> stats;
  stats.accumulate(make_features<float>(30, 4, rng));
  const auto copy = CmvnStats<float>::from_sums(stats.count(), stats.sum(), stats.sum_sq());
  CHECK(copy.count() == 30.0);
  for (index_t b = 0; b < 4; ++b) {
    CHECK(copy.sum()(b) == stats.sum()(b));
    CHECK(copy.sum_sq()(b) == stats.sum_sq()(b));
    CHECK(copy.mean()(b) == stats.mean()(b));
  }
  asrkit::Tensor<double> sum({2}), sum_sq({2}), short_sq({1});
  sum_sq.fill(1.0);
  REQUIRE_THROWS_ID(CmvnStats<float>::from_sums(2.5, sum.view(), sum_sq.view()), asrkit::ValueError,
                    "[asrkit.normalize.9] CmvnStats::from_sums: count must be a finite integer >= 0, got 2.5");
  REQUIRE_THROWS_ID(CmvnStats<float>::from_sums(2, sum.view(), short_sq.view()), asrkit::ValueError,
                    "[asrkit.normalize.9]");
  sum_sq(1) = -1;
  REQUIRE_THROWS_ID(CmvnStats<float>::from_sums(2, sum.view(), sum_sq.view()), asrkit::ValueError,
                    "bin 1: sum and sum_sq must be finite and sum_sq >= 0");
}

TEST_CASE("OnlineNormalizer: any chunking gives bit-identical output", "[frontend][normalize]") {
  Rng rng(5);
  CmvnStats<float> train;
  for (int i = 0; i < 4; ++i) train.accumulate(make_features<float>(80, 7, rng, 1.0));
  const Tensor<float> utt = make_features<float>(257, 7, rng, -2.0);
  for (double forgetting : {1.0, 0.99}) {
    OnlineNormalizerOptions opt;
    opt.prior_weight = 50;
    opt.forgetting = forgetting;
    OnlineNormalizer<float> online(train, opt);
    Tensor<float> whole = utt;
    online.process(whole.view());
    CHECK(online.frames() == 257);
    for (int trial = 0; trial < 60; ++trial) {
      online.reset();
      Tensor<float> chunked = utt;
      index_t t = 0;
      while (t < utt.dim(0)) {
        // Chunks of 0..40 frames (0 included: a no-op call), 1 frame every few trials.
        const index_t len = std::min<index_t>(
            trial % 5 == 0 ? 1 : static_cast<index_t>(rng.uniform_int(41)), utt.dim(0) - t);
        online.process(TensorView<float>(chunked.data() + t * 7, {len, 7}));
        t += len;
      }
      REQUIRE(bit_identical(chunked, whole));
    }
  }
  // Double too.
  CmvnStats<double> train_d(3);
  train_d.accumulate(make_features<double>(100, 3, rng));
  const Tensor<double> utt_d = make_features<double>(101, 3, rng);
  OnlineNormalizer<double> online_d(train_d);
  Tensor<double> whole_d = utt_d, split_d = utt_d;
  online_d.process(whole_d.view());
  online_d.reset();
  online_d.process(TensorView<double>(split_d.data(), {50, 3}));
  online_d.process(TensorView<double>(split_d.data() + 150, {51, 3}));
  CHECK(bit_identical(split_d, whole_d));
}

TEST_CASE("OnlineNormalizer follows its documented update and converges to the utterance",
          "[frontend][normalize]") {
  Rng rng(9);
  CmvnStats<double> train;
  train.accumulate(make_features<double>(500, 4, rng, 0.0));
  const Tensor<double> prior_mean = train.mean(), prior_sd = train.stddev();
  const Tensor<double> utt = make_features<double>(4000, 4, rng, 6.0);  // shifted mean
  OnlineNormalizerOptions opt;
  opt.prior_weight = 100;
  OnlineNormalizer<double> online(train, opt);
  CHECK(online.weight() == 100.0);
  for (index_t b = 0; b < 4; ++b) {
    CHECK(online.mean()(b) == Approx(prior_mean(b)).epsilon(1e-12));
    CHECK(online.stddev()(b) == Approx(prior_sd(b)).epsilon(1e-9));
  }
  // Frame 1 by hand: mean_1 = (w mu_0 + x_1) / (w + 1), includes the frame itself.
  Tensor<double> first(TensorView<const double>(utt.data(), {1, 4}));
  online.process(first.view());
  for (index_t b = 0; b < 4; ++b) {
    const double x = utt(0, b), w = 100;
    const double q0 = train.sum_sq()(b) / train.count();
    const double mean = (w * prior_mean(b) + x) / (w + 1);
    const double var = (w * q0 + x * x) / (w + 1) - mean * mean;
    CHECK(first(0, b) == Approx((x - mean) / (std::sqrt(var) + 1e-5)).epsilon(1e-12));
  }
  // The running mean is (w mu_0 + sum x) / (w + n): its distance to the utterance mean
  // shrinks as w / (w + n).
  online.reset();
  std::vector<double> utt_mean, utt_sd;
  reference_moments<double>(utt.view(), utt_mean, utt_sd);
  Tensor<double> out = utt;
  double prev_err = std::numeric_limits<double>::infinity();
  for (index_t t0 = 0; t0 < 4000; t0 += 500) {
    online.process(TensorView<double>(out.data() + t0 * 4, {500, 4}));
    double err = 0;
    for (index_t b = 0; b < 4; ++b) {
      double s = 0;
      for (index_t t = 0; t < t0 + 500; ++t) s += utt(t, b);
      const double expected = (100 * prior_mean(b) + s) / (100.0 + static_cast<double>(t0 + 500));
      CHECK(online.mean()(b) == Approx(expected).epsilon(1e-12));
      err = std::max(err, std::abs(online.mean()(b) - utt_mean[static_cast<std::size_t>(b)]));
    }
    CHECK(err < prev_err);
    prev_err = err;
  }
  CHECK(online.weight() == 4100.0);
  CHECK(prev_err < 0.2);
  // The variance is pooled with the prior's (C_t / A_t - mean_t^2): exactly that formula.
  for (index_t b = 0; b < 4; ++b) {
    double s = 0, q = 0;
    for (index_t t = 0; t < 4000; ++t) {
      s += utt(t, b);
      q += utt(t, b) * utt(t, b);
    }
    const double mean = (100 * prior_mean(b) + s) / 4100;
    const double var = (100 * train.sum_sq()(b) / train.count() + q) / 4100 - mean * mean;
    CHECK(online.stddev()(b) == Approx(std::sqrt(var)).epsilon(1e-9));
  }
  // With a prior close to the utterance, late frames are normalised almost like
  // normalize_utterance would; with a far prior (6 units off) early frames are not.
  const Tensor<double> near = make_features<double>(4000, 4, rng, 0.5);
  Tensor<double> near_online = near, near_offline = near;
  online.reset();
  online.process(near_online.view());
  asrkit::normalize_utterance(near_offline.view());
  for (index_t t = 3900; t < 4000; ++t)
    for (index_t b = 0; b < 4; ++b)
      CHECK(near_online(t, b) == Approx(near_offline(t, b)).margin(0.1));
  Tensor<double> offline = utt;
  asrkit::normalize_utterance(offline.view());
  CHECK(std::abs(out(0, 0) - offline(0, 0)) > 2.0);
  // Forgetting tracks a change of mean that a plain running mean averages away.
  const Tensor<double> change = concat<double>(
      {make_features<double>(2000, 4, rng, 0.0), make_features<double>(2000, 4, rng, 6.0)});
  opt.forgetting = 0.98;
  OnlineNormalizer<double> forgetful(train, opt), plain(train);
  Tensor<double> c1 = change, c2 = change;
  forgetful.process(c1.view());
  plain.process(c2.view());
  for (index_t b = 0; b < 4; ++b) {
    const double late_mean = 3.0 * static_cast<double>(b) - 5.0 + 6.0;
    CHECK(forgetful.mean()(b) == Approx(late_mean).margin(1.0));
    CHECK(std::abs(plain.mean()(b) - late_mean) > 2.0);
  }
  CHECK(forgetful.weight() == Approx(1.0 / (1.0 - 0.98)).epsilon(1e-9));
  // prior_weight 0: the first frame is its own mean, so it maps to exactly 0.
  opt = {};
  opt.prior_weight = 0;
  OnlineNormalizer<double> no_prior(train, opt);
  Tensor<double> f1(TensorView<const double>(utt.data(), {1, 4}));
  no_prior.process(f1.view());
  for (index_t b = 0; b < 4; ++b) CHECK(f1(0, b) == 0.0);
}

TEST_CASE("normalize error ids", "[frontend][normalize]") {
  Tensor<float> rank1({5});
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(rank1.view()), asrkit::ShapeError,
                    "[asrkit.normalize.1] normalize_utterance: features must have rank 2 "
                    "[frames, bins], got shape [5]");
  Tensor<float> x({3, 2}, 1.0f);
  x(2, 1) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(x.view()), asrkit::ValueError,
                    "[asrkit.normalize.2] normalize_utterance: features must be finite, got nan "
                    "at frame 2, bin 1");
  x(2, 1) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(x.view()), asrkit::ValueError,
                    "[asrkit.normalize.2]");
  x(2, 1) = 1.0f;
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(x.view(), 0.0f), asrkit::ValueError,
                    "[asrkit.normalize.3] normalize_utterance: eps must be finite and > 0, got 0");
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(x.view(), -1.0f), asrkit::ValueError,
                    "[asrkit.normalize.3]");
  Tensor<double> xd({2, 2}, 1.0);
  REQUIRE_THROWS_ID(asrkit::normalize_utterance(xd.view(), std::nan("")), asrkit::ValueError,
                    "[asrkit.normalize.3]");

  CmvnStats<float> stats(2);
  REQUIRE_THROWS_ID(stats.mean(), asrkit::ValueError,
                    "[asrkit.normalize.5] CmvnStats::mean: the statistics hold no frames");
  REQUIRE_THROWS_ID(stats.stddev(), asrkit::ValueError, "[asrkit.normalize.5]");
  REQUIRE_THROWS_ID(stats.apply(x.view()), asrkit::ValueError, "[asrkit.normalize.5]");
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats), asrkit::ValueError,
                    "[asrkit.normalize.5] OnlineNormalizer: the initial statistics hold no frames");
  stats.accumulate(x);
  Tensor<float> three({4, 3});
  REQUIRE_THROWS_ID(stats.accumulate(three), asrkit::ShapeError,
                    "[asrkit.normalize.4] CmvnStats::accumulate: features have 3 bins, the "
                    "statistics have 2");
  REQUIRE_THROWS_ID(stats.apply(three.view()), asrkit::ShapeError, "[asrkit.normalize.4]");
  CmvnStats<float> other(3);
  REQUIRE_THROWS_ID(stats.merge(other), asrkit::ShapeError, "[asrkit.normalize.4]");
  REQUIRE_THROWS_ID(CmvnStats<float>().accumulate(Tensor<float>({2, 0})), asrkit::ShapeError,
                    "[asrkit.normalize.4]");
  REQUIRE_THROWS_ID(stats.accumulate(rank1), asrkit::ShapeError, "[asrkit.normalize.1]");
  REQUIRE_THROWS_ID(stats.apply(x.view(), 0.0f), asrkit::ValueError, "[asrkit.normalize.3]");
  REQUIRE_THROWS_ID(CmvnStats<double>(0), asrkit::ValueError,
                    "[asrkit.normalize.8] CmvnStats(bins): bins must be >= 1, got 0");
  CHECK(stats.count() == 3.0);  // failed calls changed nothing

  OnlineNormalizerOptions opt;
  opt.prior_weight = -1;
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats, opt), asrkit::ValueError,
                    "[asrkit.normalize.7] OnlineNormalizer: prior_weight must be finite and >= 0, "
                    "got -1");
  opt.prior_weight = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats, opt), asrkit::ValueError,
                    "[asrkit.normalize.7]");
  opt = {};
  opt.forgetting = 0;
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats, opt), asrkit::ValueError,
                    "[asrkit.normalize.7] OnlineNormalizer: forgetting must be in (0, 1], got 0");
  opt.forgetting = 1.5;
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats, opt), asrkit::ValueError,
                    "[asrkit.normalize.7]");
  opt = {};
  opt.eps = 0;
  REQUIRE_THROWS_ID(OnlineNormalizer<float>(stats, opt), asrkit::ValueError,
                    "[asrkit.normalize.3]");
  OnlineNormalizer<float> online(stats);
  REQUIRE_THROWS_ID(online.process(three.view()), asrkit::ShapeError,
                    "[asrkit.normalize.4] OnlineNormalizer::process: features have 3 bins");
  Tensor<float> bad({2, 2}, 1.0f);
  bad(1, 0) = -std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(online.process(bad.view()), asrkit::ValueError, "[asrkit.normalize.2]");
  CHECK(bad(0, 0) == 1.0f);  // checked before anything was modified
  CHECK(online.frames() == 0);
}

TEST_CASE("CmvnStats::load refuses files that are not asrkit.cmvn.v1", "[frontend][normalize]") {
  const std::string path = asrkit_test::data_path("normalize_bad.safetensors");
  Tensor<double> count({1}, 4.0), sum({3}, 1.0), sum_sq({3}, 2.0);
  // Each variant breaks one thing; the message says what.
  const auto write = [&](const char* format, bool with_sum_sq, asrkit::DType sum_dtype,
                         const Tensor<double>& c, const Tensor<double>& q) {
    asrkit::SafetensorsWriter w;
    if (format) w.set_metadata("format", format);
    w.add("count", c);
    w.add("sum", sum, sum_dtype);
    if (with_sum_sq) w.add("sum_sq", q);
    w.save(path);
  };
  using asrkit::DType;
  write(nullptr, true, DType::F64, count, sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "statistics: no metadata \"format\"");
  write("asrkit.cmvn.v0", true, DType::F64, count, sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "[asrkit.normalize.6] '" + path +
                        "' is not asrkit.cmvn.v1 statistics: "
                        "metadata \"format\" is \"asrkit.cmvn.v0\", expected \"asrkit.cmvn.v1\"");
  write("asrkit.cmvn.v1", false, DType::F64, count, sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "[asrkit.normalize.6] '" + path +
                        "' is not asrkit.cmvn.v1 statistics: "
                        "no tensor \"sum_sq\"");
  write("asrkit.cmvn.v1", true, DType::F32, count, sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "tensor \"sum\" is F32, expected F64");
  write("asrkit.cmvn.v1", true, DType::F64, count, Tensor<double>({4}, 1.0));
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "\"sum_sq\" has 4 bins, \"sum\" has 3");
  write("asrkit.cmvn.v1", true, DType::F64, count, Tensor<double>({3, 1}, 1.0));
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "tensor \"sum_sq\" has rank 2, expected 1");
  write("asrkit.cmvn.v1", true, DType::F64, Tensor<double>({2}, 1.0), sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "tensor \"count\" has 2 elements, expected 1");
  write("asrkit.cmvn.v1", true, DType::F64, Tensor<double>({1}, 2.5), sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "count must be a finite integer >= 0, got 2.5");
  write("asrkit.cmvn.v1", true, DType::F64, Tensor<double>({1}, -1.0), sum_sq);
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError, "[asrkit.normalize.6]");
  write("asrkit.cmvn.v1", true, DType::F64, count, Tensor<double>({3}, -2.0));
  REQUIRE_THROWS_ID(CmvnStats<float>::load(path), asrkit::FormatError,
                    "bin 0: sum and sum_sq must be finite and sum_sq >= 0, got 1 and -2");
  // Not found: the reader's io error passes through.
  REQUIRE_THROWS_AS(CmvnStats<float>::load(asrkit_test::data_path("normalize_missing.st")),
                    asrkit::IoError);
}
