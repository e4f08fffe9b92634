#include <asrkit/frontend/mel.hpp>

#include "../test_util.hpp"

TEST_CASE("mel scales invert and filterbanks are triangles", "[frontend][mel]") {
  for (auto scale : {asrkit::MelScale::htk, asrkit::MelScale::slaney})
    for (double hz : {0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0})
      CHECK(asrkit::mel_to_hz(asrkit::hz_to_mel(hz, scale), scale) == Approx(hz).margin(1e-9));
  CHECK(asrkit::hz_to_mel(1000.0, asrkit::MelScale::slaney) == Approx(15.0));
  const auto fb = asrkit::melscale_fbanks<double>(257, 0, 8000, 40, 16000);
  CHECK(fb.dim(0) == 257);
  CHECK(fb.dim(1) == 40);
  CHECK(fb.flat().minCoeff() >= 0.0);
  CHECK(fb.flat().maxCoeff() <= 1.0);
  // Between the first and last centre, overlapping triangles sum to 1 (partition of unity).
  for (asrkit::index_t k = 20; k < 200; ++k) CHECK(fb.matrix().row(k).sum() == Approx(1.0).epsilon(1e-9));
  const auto slaney = asrkit::melscale_fbanks<double>(257, 0, 8000, 40, 16000, asrkit::MelNorm::slaney);
  CHECK(slaney.matrix().col(10).sum() != Approx(fb.matrix().col(10).sum()));  // area-normalised
  REQUIRE_THROWS_ID(asrkit::melscale_fbanks<float>(257, 100, 50, 40, 16000), asrkit::ValueError, "[asrkit.frontend.7]");
  asrkit::LogMelOptions o;
  o.floor = 0;
  asrkit::Tensor<float> x({4000});
  REQUIRE_THROWS_ID(asrkit::log_mel_spectrogram(x.view(), o), asrkit::ValueError, "[asrkit.frontend.7] log floor must be > 0");
}

TEST_CASE("log-mel of silence is the floor", "[frontend][mel]") {
  asrkit::Tensor<float> x({4000});
  const auto m = asrkit::log_mel_spectrogram(x.view());
  CHECK(m.dim(1) == 80);
  CHECK(m.flat().maxCoeff() == Approx(std::log(1e-10f)));
}
