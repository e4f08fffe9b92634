// read_audio (libsndfile) against asrkit's own WAV writer, and a FLAC made by libsndfile.
#if defined(ASRKIT_WITH_SNDFILE)

#include <asrkit/io/sndfile.hpp>
#include <asrkit/io/wav.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::Shape;
using asrkit::Tensor;
using asrkit::WavEncoding;

namespace {

// A 3-channel signal on the 16-bit grid (exact in every encoding the test uses).
Tensor<float> signal(asrkit::index_t frames) {
  Tensor<float> x({frames, 3});
  for (asrkit::index_t t = 0; t < frames; ++t)
    for (asrkit::index_t c = 0; c < 3; ++c)
      x(t, c) = std::round(30000.0f * std::sin(0.01f * static_cast<float>(t * (c + 1)))) / 32768.0f;
  return x;
}

}  // namespace

TEST_CASE("read_audio reads WAVs written by asrkit", "[io][sndfile]") {
  const Tensor<float> x = signal(1000);
  for (WavEncoding e : {WavEncoding::pcm_s16, WavEncoding::pcm_s24, WavEncoding::pcm_s32,
                        WavEncoding::float32, WavEncoding::float64}) {
    CAPTURE(static_cast<int>(e));
    const std::string path = asrkit_test::data_path("test_sndfile.wav");
    asrkit::write_wav(path, x.view(), 16000, e);
    const asrkit::Audio a = asrkit::read_audio(path, {false});
    CHECK(a.sample_rate == 16000);
    CHECK(a.num_channels == 3);
    CHECK(a.encoding == e);
    REQUIRE(a.samples.shape() == Shape{1000, 3});
    for (int i = 0; i < 3000; ++i) REQUIRE(a.samples.data()[i] == x.data()[i]);
    // Downmix matches decode_wav's.
    const asrkit::Audio m = asrkit::read_audio(path);
    const asrkit::Audio w = asrkit::read_wav(path);
    REQUIRE(m.samples.shape() == Shape{1000});
    for (int t = 0; t < 1000; ++t) REQUIRE(m.samples(t) == w.samples(t));
  }
}

TEST_CASE("read_audio reads FLAC written by libsndfile", "[io][sndfile]") {
  const Tensor<float> x = signal(4096);
  const std::string path = asrkit_test::data_path("test_sndfile.flac");
  SF_INFO info{};
  info.samplerate = 22050;
  info.channels = 3;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  // Integer codes, since libsndfile scales floats by 32767 when writing but 1/32768 reading.
  std::vector<short> codes(3 * 4096);
  for (std::size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<short>(std::lround(x.data()[i] * 32768.0f));
  REQUIRE(sf_writef_short(f, codes.data(), 4096) == 4096);
  REQUIRE(sf_close(f) == 0);

  const asrkit::Audio a = asrkit::read_audio(path, {false});
  CHECK(a.sample_rate == 22050);
  CHECK(a.num_channels == 3);
  CHECK(a.encoding == WavEncoding::pcm_s16);
  REQUIRE(a.samples.shape() == Shape{4096, 3});
  for (int i = 0; i < 3 * 4096; ++i) REQUIRE(a.samples.data()[i] == x.data()[i]);
}

TEST_CASE("read_audio reports errors with ids", "[io][sndfile]") {
  const std::string missing = asrkit_test::data_path("no_such_file.flac");
  REQUIRE_THROWS_ID(asrkit::read_audio(missing), asrkit::IoError,
                    "[asrkit.io.1] cannot open '" + missing + "' for reading");
  const std::string junk = asrkit_test::data_path("test_sndfile_junk.bin");
  asrkit_test::write_bytes(junk, std::vector<unsigned char>(100, 0x5A));
  REQUIRE_THROWS_ID(asrkit::read_audio(junk), asrkit::FormatError,
                    "[asrkit.sndfile.1] libsndfile cannot read '" + junk + "'");
}

#endif  // ASRKIT_WITH_SNDFILE
