#include <asrkit/frontend/augment.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::NoiseAugmentOptions;
using asrkit::Rng;
using asrkit::SpecAugmentMask;
using asrkit::SpecAugmentOptions;
using asrkit::Tensor;
using asrkit::TensorView;

namespace {

// Features in [1, 2): a masked cell (mask_value <= 0) is recognisable.
template <class T>
Tensor<T> positive_features(index_t frames, index_t bins, Rng& rng) {
  Tensor<T> f({frames, bins});
  rng.fill_uniform(f.view(), T(1), T(2));
  return f;
}

template <class T>
Tensor<T> random_signal(index_t n, Rng& rng, double amplitude) {
  Tensor<T> s({n});
  for (index_t i = 0; i < n; ++i)
    s(i) = static_cast<T>(amplitude * (std::sin(0.05 * static_cast<double>(i)) + rng.normal()));
  return s;
}

double power(const double* x, index_t n) {
  double p = 0;
  for (index_t i = 0; i < n; ++i) p += x[i] * x[i];
  return p / static_cast<double>(n);
}

// 10 log10(P_clean / P_added), the noise added measured as out - clean (in double).
template <class T>
double measured_snr_db(const Tensor<T>& clean, const Tensor<T>& noisy) {
  std::vector<double> c(static_cast<std::size_t>(clean.numel())), a(c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    c[i] = static_cast<double>(clean.data()[i]);
    a[i] = static_cast<double>(noisy.data()[i]) - c[i];
  }
  return 10.0 * std::log10(power(c.data(), clean.numel()) / power(a.data(), clean.numel()));
}

// Checks one spec_augment call: masks in bounds, cells masked exactly where a mask covers them.
template <class T>
void check_masks(const Tensor<T>& before, const Tensor<T>& after,
                 const std::vector<SpecAugmentMask>& masks, const SpecAugmentOptions& o) {
  const index_t frames = before.dim(0), bins = before.dim(1);
  REQUIRE(masks.size() == static_cast<std::size_t>(o.freq_masks + o.time_masks));
  const auto ratio_cap =
      static_cast<index_t>(std::floor(o.max_time_ratio * static_cast<double>(frames)));
  const index_t time_cap = std::min<index_t>(o.time_width, ratio_cap);
  for (std::size_t k = 0; k < masks.size(); ++k) {
    const SpecAugmentMask& m = masks[k];
    const bool freq = k < static_cast<std::size_t>(o.freq_masks);  // frequency masks first
    REQUIRE(m.axis == (freq ? 1 : 0));
    REQUIRE(m.width >= 0);
    REQUIRE(m.width <= (freq ? std::min<index_t>(o.freq_width, bins) : time_cap));
    REQUIRE(m.start >= 0);
    REQUIRE(m.start + m.width <= (freq ? bins : frames));
  }
  for (index_t t = 0; t < frames; ++t)
    for (index_t b = 0; b < bins; ++b) {
      bool covered = false;
      for (const auto& m : masks) {
        const index_t i = m.axis == 0 ? t : b;
        covered = covered || (i >= m.start && i < m.start + m.width);
      }
      if (covered)
        REQUIRE(after(t, b) == static_cast<T>(o.mask_value));
      else
        REQUIRE(after(t, b) == before(t, b));
    }
}

}  // namespace

TEST_CASE("spec_augment masks the drawn bands and spans, within bounds", "[frontend][augment]") {
  Rng data_rng(1);
  const Tensor<float> input = positive_features<float>(120, 40, data_rng);
  SpecAugmentOptions o;
  o.mask_value = -1.0;
  index_t max_f = 0, min_f = 1000, max_t = 0, min_t = 1000;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    Rng rng(seed);
    Tensor<float> x = input;
    const auto masks = asrkit::spec_augment(x.view(), o, rng);
    check_masks(input, x, masks, o);
    for (const auto& m : masks) {
      (m.axis == 1 ? max_f : max_t) = std::max(m.axis == 1 ? max_f : max_t, m.width);
      (m.axis == 1 ? min_f : min_t) = std::min(m.axis == 1 ? min_f : min_t, m.width);
    }
  }
  // Widths are uniform on {0..W}: both ends turn up in 1000 draws of each.
  CHECK(min_f == 0);
  CHECK(max_f == 27);
  CHECK(min_t == 0);
  CHECK(max_t == 40);

  // The time cap p * frames, and features smaller than the widths.
  SpecAugmentOptions capped;
  capped.max_time_ratio = 0.1;  // 12 of 120 frames
  capped.time_masks = 5;
  capped.freq_masks = 3;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    Rng rng(seed);
    Tensor<float> x = input;
    check_masks(input, x, asrkit::spec_augment(x.view(), capped, rng), capped);
    const Tensor<double> small_input = positive_features<double>(3, 5, rng);
    Tensor<double> small = small_input;
    check_masks(small_input, small, asrkit::spec_augment(small.view(), SpecAugmentOptions{}, rng),
                SpecAugmentOptions{});
  }
  // Empty features and zero masks are fine.
  Rng rng(3);
  Tensor<float> empty({0, 8});
  CHECK(asrkit::spec_augment(empty.view(), o, rng).size() == 4);
  SpecAugmentOptions none;
  none.freq_masks = none.time_masks = 0;
  Tensor<float> x = input;
  CHECK(asrkit::spec_augment(x.view(), none, rng).empty());
  CHECK(std::memcmp(x.data(), input.data(), input.size_bytes()) == 0);
}

TEST_CASE("spec_augment is deterministic per seed", "[frontend][augment]") {
  Rng data_rng(2);
  const Tensor<double> input = positive_features<double>(200, 80, data_rng);
  Tensor<double> a = input, b = input, c = input;
  Rng r1(42), r2(42), r3(43);
  const auto ma = asrkit::spec_augment(a.view(), {}, r1);
  const auto mb = asrkit::spec_augment(b.view(), {}, r2);
  asrkit::spec_augment(c.view(), {}, r3);
  CHECK(std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
  for (std::size_t k = 0; k < ma.size(); ++k) {
    CHECK(ma[k].start == mb[k].start);
    CHECK(ma[k].width == mb[k].width);
  }
  CHECK(std::memcmp(a.data(), c.data(), a.size_bytes()) != 0);
  CHECK(r1.next_u64() == r2.next_u64());  // the same number of draws
  // Default mask value: 0 (the mean of normalised features, Park et al. §2).
  bool any_zero = false;
  for (index_t i = 0; i < a.numel(); ++i) any_zero = any_zero || a.data()[i] == 0.0;
  CHECK(any_zero);
}

TEST_CASE("add_noise hits the requested SNR", "[frontend][augment]") {
  Rng data_rng(4);
  const Tensor<double> clean = random_signal<double>(16000, data_rng, 0.3);
  const Tensor<float> clean_f = random_signal<float>(16000, data_rng, 0.3);
  // A clip shorter than the signal (looped) and one longer.
  for (index_t noise_len : {1000, 50000}) {
    const Tensor<double> noise = random_signal<double>(noise_len, data_rng, 2.0);
    Tensor<float> noise_f({noise_len});
    for (index_t i = 0; i < noise_len; ++i) noise_f(i) = static_cast<float>(noise(i));
    for (double snr : {-10.0, 0.0, 5.5, 17.25, 40.0}) {
      Rng rng(static_cast<std::uint64_t>(noise_len) + static_cast<std::uint64_t>(snr + 100));
      Rng replay = rng;
      Tensor<double> noisy = clean;
      asrkit::add_noise(noisy.view(), noise.view(), snr, rng);
      CHECK(std::abs(measured_snr_db(clean, noisy) - snr) < 1e-9);
      // The noise is read from a uniform offset on, looped: added = g * noise[(offset + i) % m].
      const auto offset =
          static_cast<index_t>(replay.uniform_int(static_cast<std::uint64_t>(noise_len)));
      CHECK(rng.next_u64() == replay.next_u64());  // exactly one draw
      double num = 0, den = 0;  // least-squares gain of added vs the offset noise
      for (index_t i = 0; i < 16000; ++i) {
        const double v = noise((offset + i) % noise_len);
        num += (noisy(i) - clean(i)) * v;
        den += v * v;
      }
      const double gain = num / den;
      for (index_t i = 0; i < 16000; i += 97) {
        const double expected = gain * noise((offset + i) % noise_len);
        CHECK((noisy(i) - clean(i)) == Approx(expected).epsilon(1e-9).margin(1e-12));
      }
      Tensor<float> noisy_f = clean_f;
      Rng rng_f(9);
      asrkit::add_noise(noisy_f.view(), noise_f.view(), snr, rng_f);
      // Float: the output's own rounding is part of the measured noise; 1e-6 dB holds up to
      // 40 dB SNR (at 60 dB it is a few 1e-6).
      CHECK(std::abs(measured_snr_db(clean_f, noisy_f) - snr) < 1e-6);
    }
  }
}

TEST_CASE("add_noise leaves all-zero signals, noise and empty signals alone",
          "[frontend][augment]") {
  Rng rng(5);
  Tensor<float> zero({100});
  const Tensor<float> noise = random_signal<float>(30, rng, 1.0);
  Rng before = rng;
  asrkit::add_noise(zero.view(), noise.view(), 10.0, rng);
  for (index_t i = 0; i < 100; ++i) CHECK(zero(i) == 0.0f);
  before.next_u64();
  CHECK(rng.next_u64() == before.next_u64());  // still one draw
  const Tensor<float> signal = random_signal<float>(100, rng, 1.0);
  Tensor<float> x = signal;
  asrkit::add_noise(x.view(), Tensor<float>({7}).view(), -20.0, rng);
  CHECK(std::memcmp(x.data(), signal.data(), signal.size_bytes()) == 0);
  Tensor<float> empty({0});
  asrkit::add_noise(empty.view(), noise.view(), 0.0, rng);
  // A noise clip of one sample loops: a DC offset at the requested SNR.
  Tensor<double> sig({4}, 2.0);
  const Tensor<double> dc({1}, -1.0);
  asrkit::add_noise(sig.view(), dc.view(), 20.0 * std::log10(2.0), rng);  // amplitude ratio 2
  for (index_t i = 0; i < 4; ++i) CHECK(sig(i) == Approx(1.0).epsilon(1e-14));
}

TEST_CASE("maybe_add_noise applies noise to 40% of utterances", "[frontend][augment]") {
  Rng data_rng(6);
  std::vector<Tensor<float>> noises;
  for (index_t len : {50, 80, 120}) noises.push_back(random_signal<float>(len, data_rng, 1.0));
  const Tensor<float> clean = random_signal<float>(64, data_rng, 1.0);
  NoiseAugmentOptions o;  // probability 0.4 (DS2 §5.2)
  o.min_snr_db = 0;
  o.max_snr_db = 15;
  Rng rng(77);
  const int n = 20000;
  int applied = 0;
  std::vector<int> per_clip(noises.size(), 0);
  double min_snr = 1e9, max_snr = -1e9;
  for (int i = 0; i < n; ++i) {
    Tensor<float> x = clean;
    const auto r = asrkit::maybe_add_noise(x.view(), noises, o, rng);
    const bool changed = std::memcmp(x.data(), clean.data(), clean.size_bytes()) != 0;
    REQUIRE(changed == r.applied);
    if (!r.applied) continue;
    ++applied;
    ++per_clip.at(r.noise_index);
    min_snr = std::min(min_snr, r.snr_db);
    max_snr = std::max(max_snr, r.snr_db);
    if (i % 500 == 0) CHECK(measured_snr_db(clean, x) == Approx(r.snr_db).margin(1e-4));
  }
  // Binomial(n, 0.4): within 5 standard deviations.
  const double sigma = std::sqrt(n * 0.4 * 0.6);
  CHECK(std::abs(applied - 0.4 * n) < 5 * sigma);
  for (int c : per_clip) CHECK(std::abs(c - applied / 3.0) < 5 * std::sqrt(applied * (2.0 / 9.0)));
  CHECK(min_snr >= 0.0);
  CHECK(min_snr < 0.1);
  CHECK(max_snr < 15.0);
  CHECK(max_snr > 14.9);

  // Probability 0 and 1; min == max SNR; determinism per seed.
  o.probability = 0;
  Tensor<float> x = clean;
  CHECK_FALSE(asrkit::maybe_add_noise(x.view(), noises, o, rng).applied);
  o.probability = 1;
  o.min_snr_db = o.max_snr_db = 12.0;
  Rng a(8), b(8);
  Tensor<float> xa = clean, xb = clean;
  const auto ra = asrkit::maybe_add_noise(xa.view(), noises, o, a);
  const auto rb = asrkit::maybe_add_noise(xb.view(), noises, o, b);
  CHECK(ra.applied);
  CHECK(ra.snr_db == 12.0);
  CHECK(ra.noise_index == rb.noise_index);
  CHECK(std::memcmp(xa.data(), xb.data(), xa.size_bytes()) == 0);
}

TEST_CASE("augment error ids", "[frontend][augment]") {
  Rng rng(1);
  Tensor<float> f({10, 4}, 1.0f);
  Tensor<float> rank1({10});
  REQUIRE_THROWS_ID(asrkit::spec_augment(rank1.view(), {}, rng), asrkit::ShapeError,
                    "[asrkit.augment.1] spec_augment: features must have rank 2 [frames, bins], "
                    "got shape [10]");
  f(3, 2) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::spec_augment(f.view(), {}, rng), asrkit::ValueError,
                    "[asrkit.augment.2] spec_augment: features must be finite, got nan at "
                    "element 14");
  f(3, 2) = 1.0f;
  const auto bad_option = [&](auto set, const char* message) {
    SpecAugmentOptions o;
    set(o);
    REQUIRE_THROWS_ID(asrkit::spec_augment(f.view(), o, rng), asrkit::ValueError, message);
  };
  bad_option([](SpecAugmentOptions& o) { o.freq_masks = -1; },
             "[asrkit.augment.3] spec_augment: options.freq_masks must be >= 0, got -1");
  bad_option([](SpecAugmentOptions& o) { o.freq_width = -2; }, "options.freq_width must be >= 0");
  bad_option([](SpecAugmentOptions& o) { o.time_masks = -1; }, "options.time_masks must be >= 0");
  bad_option([](SpecAugmentOptions& o) { o.time_width = -1; }, "options.time_width must be >= 0");
  bad_option([](SpecAugmentOptions& o) { o.max_time_ratio = 1.5; },
             "[asrkit.augment.3] spec_augment: options.max_time_ratio must be in [0, 1], got 1.5");
  bad_option([](SpecAugmentOptions& o) { o.max_time_ratio = std::nan(""); }, "[asrkit.augment.3]");
  bad_option([](SpecAugmentOptions& o) { o.mask_value = 1e300; },
             "options.mask_value must be finite in the feature type");
  bad_option([](SpecAugmentOptions& o) { o.mask_value = std::numeric_limits<double>::infinity(); },
             "[asrkit.augment.3]");

  Tensor<float> signal({100}, 0.5f), noise({30}, 0.25f);
  REQUIRE_THROWS_ID(asrkit::add_noise(f.view(), noise.view(), 10.0, rng), asrkit::ShapeError,
                    "[asrkit.augment.4] add_noise: signal must have rank 1 [samples], got shape "
                    "[10, 4]");
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), f.view(), 10.0, rng), asrkit::ShapeError,
                    "[asrkit.augment.4] add_noise: noise must have rank 1");
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), Tensor<float>({0}).view(), 10.0, rng),
                    asrkit::ValueError,
                    "[asrkit.augment.5] add_noise: noise must have at least 1 sample, got 0");
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), noise.view(), std::nan(""), rng),
                    asrkit::ValueError,
                    "[asrkit.augment.6] add_noise: snr_db must be finite, got nan");
  signal(7) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), noise.view(), 10.0, rng), asrkit::ValueError,
                    "[asrkit.augment.2] add_noise: signal must be finite, got inf at element 7");
  signal(7) = 0.5f;
  noise(29) = -std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), noise.view(), 10.0, rng), asrkit::ValueError,
                    "[asrkit.augment.2] add_noise: noise must be finite, got -inf at element 29");
  noise(29) = 0.25f;
  REQUIRE_THROWS_ID(asrkit::add_noise(signal.view(), noise.view(), -800.0, rng), asrkit::ValueError,
                    "[asrkit.augment.8] add_noise: noise at -800 dB SNR would overflow");
  for (index_t i = 0; i < 100; ++i) CHECK(signal(i) == 0.5f);  // nothing written on error

  std::vector<Tensor<float>> noises;
  noises.push_back(noise);
  NoiseAugmentOptions o;
  o.probability = 1.2;
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.7] maybe_add_noise: options.probability must be in [0, 1], "
                    "got 1.2");
  o.probability = -0.1;
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.7]");
  o = {};
  o.min_snr_db = 30;
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.6] maybe_add_noise: options.min_snr_db must be <= max_snr_db, "
                    "got 30 > 20");
  o = {};
  o.max_snr_db = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.6] maybe_add_noise: options.max_snr_db must be finite");
  o = {};
  o.probability = 0;  // checked even when no noise would be added
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), {}, o, rng), asrkit::ValueError,
                    "[asrkit.augment.5] maybe_add_noise: the list of noise clips is empty");
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(f.view(), noises, o, rng), asrkit::ShapeError,
                    "[asrkit.augment.4]");
  signal(0) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.2]");
  signal(0) = 0.5f;
  o.probability = 1;
  noises.push_back(Tensor<float>({0}));
  noises.erase(noises.begin());
  REQUIRE_THROWS_ID(asrkit::maybe_add_noise(signal.view(), noises, o, rng), asrkit::ValueError,
                    "[asrkit.augment.5]");
}
