// asrkit's WAV reader and writer against Python's `wave` module (wav_reference.py): files that
// Python wrote must decode to the expected samples exactly; files written here are checked by
// the script's `check` mode.
#include <asrkit/io/wav.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::Shape;
using asrkit::Tensor;
using asrkit::WavEncoding;

namespace {

std::vector<float> read_f32(const std::string& path) {
  const std::vector<unsigned char> bytes = asrkit_test::read_bytes(path);
  std::vector<float> out(bytes.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint32_t u = std::uint32_t{bytes[4 * i]} | std::uint32_t{bytes[4 * i + 1]} << 8 |
                            std::uint32_t{bytes[4 * i + 2]} << 16 |
                            std::uint32_t{bytes[4 * i + 3]} << 24;
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

void write_f32(const std::string& path, const float* x, std::size_t n) {
  std::vector<unsigned char> bytes(4 * n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, &x[i], 4);
    for (int k = 0; k < 4; ++k) bytes[4 * i + k] = static_cast<unsigned char>(u >> (8 * k));
  }
  asrkit_test::write_bytes(path, bytes);
}

}  // namespace

TEST_CASE("asrkit reads WAVs written by Python's wave module", "[parity][wav]") {
  std::ifstream manifest(asrkit_test::data_path("wav_ref_manifest.txt"));
  REQUIRE(manifest.good());
  std::string name;
  asrkit::index_t channels = 0, frames = 0;
  int rate = 0, bits = 0, files = 0;
  while (manifest >> name >> channels >> frames >> rate >> bits) {
    CAPTURE(name);
    const std::string base = asrkit_test::data_path(name);
    const std::vector<float> expected = read_f32(base + ".f32");
    REQUIRE(static_cast<asrkit::index_t>(expected.size()) == frames * channels);
    const asrkit::Audio a = asrkit::read_wav(base + ".wav", {false});
    CHECK(a.sample_rate == rate);
    CHECK(a.num_channels == channels);
    CHECK(a.encoding == (bits == 8    ? WavEncoding::pcm_u8
                         : bits == 16 ? WavEncoding::pcm_s16
                         : bits == 24 ? WavEncoding::pcm_s24
                                      : WavEncoding::pcm_s32));
    REQUIRE(a.samples.shape() == Shape{frames, channels});
    for (std::size_t i = 0; i < expected.size(); ++i) REQUIRE(a.samples.data()[i] == expected[i]);
    const asrkit::Audio m = asrkit::read_wav(base + ".wav");
    REQUIRE(m.samples.shape() == Shape{frames});
    for (asrkit::index_t t = 0; t < frames; ++t) {
      double sum = 0;
      for (asrkit::index_t c = 0; c < channels; ++c)
        sum += expected[static_cast<std::size_t>(t * channels + c)];
      REQUIRE(m.samples(t) == static_cast<float>(sum / static_cast<double>(channels)));
    }
    ++files;
  }
  CHECK(files == 12);
}

TEST_CASE("asrkit writes WAVs for Python to check", "[parity][wav]") {
  struct Case {
    WavEncoding encoding;
    const char* kind;
  };
  const Case cases[] = {{WavEncoding::pcm_u8, "pcm_u8"},   {WavEncoding::pcm_s16, "pcm_s16"},
                        {WavEncoding::pcm_s24, "pcm_s24"}, {WavEncoding::pcm_s32, "pcm_s32"},
                        {WavEncoding::float32, "float32"}, {WavEncoding::float64, "float64"}};
  std::ostringstream manifest;
  for (const Case& c : cases) {
    for (asrkit::index_t channels : {1, 2, 6}) {
      const asrkit::index_t frames = 501;
      // Sweeps past [-1, 1] (clipping), and hits exact codes and half-way points (rounding).
      Tensor<float> x({frames, channels});
      for (asrkit::index_t i = 0; i < frames * channels; ++i) {
        const float ramp =
            -1.25f + 2.5f * static_cast<float>(i) / static_cast<float>(frames * channels);
        // Multiples of 1/256 are u8 ties (and exact wider codes); odd multiples of 1/65536
        // are s16 ties.
        if (i % 7 == 3)
          x.data()[i] = std::round(ramp * 256.0f) / 256.0f;
        else if (i % 7 == 5)
          x.data()[i] = (2.0f * std::round(ramp * 32768.0f) + 1.0f) / 65536.0f;
        else
          x.data()[i] = ramp;
      }
      const std::string name = "wav_cpp_" + std::string(c.kind) + "_" +
                               std::to_string(channels) + "ch";
      const auto view = channels == 1 ? x.reshape({frames}) : x.view();
      asrkit::write_wav(asrkit_test::data_path(name + ".wav"), view, 32000, c.encoding);
      write_f32(asrkit_test::data_path(name + ".f32"), x.data(),
                static_cast<std::size_t>(x.numel()));
      manifest << name << ' ' << channels << ' ' << frames << ' ' << 32000 << ' ' << c.kind << '\n';
    }
  }
  std::ofstream(asrkit_test::data_path("wav_cpp_manifest.txt")) << manifest.str();
}
