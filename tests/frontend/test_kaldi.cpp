#include <asrkit/frontend/kaldi.hpp>

#include <asrkit/core/rng.hpp>

#include "../test_util.hpp"

TEST_CASE("Kaldi framing: frame counts, energy column, dither determinism", "[frontend][kaldi]") {
  asrkit::Rng rng(4);
  asrkit::Tensor<float> x({16000});
  rng.fill_normal(x.view(), 0.0f, 1000.0f);
  asrkit::KaldiFbankOptions o;
  CHECK(asrkit::kaldi_fbank(x.view(), o).dim(0) == 1 + (16000 - 400) / 160);
  o.frame.snip_edges = false;
  CHECK(asrkit::kaldi_fbank(x.view(), o).dim(0) == (16000 + 80) / 160);
  o.use_energy = true;
  const auto with_energy = asrkit::kaldi_fbank(x.view(), o);
  CHECK(with_energy.dim(1) == 24);
  const auto spec = asrkit::kaldi_spectrogram(x.view(), o.frame);
  CHECK(with_energy(10, 0) == Approx(spec(10, 0)));  // both hold the raw log-energy
  o.htk_compat = true;
  CHECK(asrkit::kaldi_fbank(x.view(), o)(10, 23) == Approx(with_energy(10, 0)));
  // Dither is seeded: same seed, same features; another seed, others.
  o.frame.dither = 1.0;
  const auto a = asrkit::kaldi_fbank(x.view(), o), b = asrkit::kaldi_fbank(x.view(), o);
  CHECK((a.flat().array() == b.flat().array()).all());
  o.frame.dither_seed = 1;
  CHECK(!(asrkit::kaldi_fbank(x.view(), o).flat().array() == a.flat().array()).all());
  asrkit::KaldiMfccOptions m;
  CHECK(asrkit::kaldi_mfcc(x.view(), m).dim(1) == 13);
  // Shorter than one frame: no frames (snip_edges).
  asrkit::Tensor<float> tiny({100});
  CHECK(asrkit::kaldi_fbank(tiny.view()).dim(0) == 0);
}

TEST_CASE("Kaldi features reject bad options", "[frontend][kaldi]") {
  asrkit::Tensor<float> x({1000});
  asrkit::KaldiFbankOptions o;
  o.frame.frame_shift_ms = 0;
  REQUIRE_THROWS_ID(asrkit::kaldi_fbank(x.view(), o), asrkit::ValueError, "[asrkit.frontend.8]");
  o = {};
  o.high_freq = 9000;
  REQUIRE_THROWS_ID(asrkit::kaldi_fbank(x.view(), o), asrkit::ValueError, "[asrkit.frontend.9]");
  asrkit::KaldiMfccOptions m;
  m.num_ceps = 30;
  REQUIRE_THROWS_ID(asrkit::kaldi_mfcc(x.view(), m), asrkit::ValueError, "[asrkit.frontend.10]");
}
