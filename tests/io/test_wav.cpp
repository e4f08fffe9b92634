#include <asrkit/io/wav.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::Audio;
using asrkit::Shape;
using asrkit::Tensor;
using asrkit::WavEncoding;
using asrkit::WavInfo;

namespace {

// A little-endian byte builder for hand-made RIFF files.
struct Bytes {
  std::vector<std::uint8_t> b;

  Bytes& tag(const char* t) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(t[i]));
    return *this;
  }
  Bytes& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& u8(std::uint32_t v) { return le(v, 1); }
  Bytes& u16(std::uint32_t v) { return le(v, 2); }
  Bytes& u32(std::uint32_t v) { return le(v, 4); }
  Bytes& append(const std::vector<std::uint8_t>& more) {
    b.insert(b.end(), more.begin(), more.end());
    return *this;
  }
  // A chunk: id, size, body, and the pad byte when the size is odd.
  Bytes& chunk(const char* id, const Bytes& body) {
    tag(id).u32(static_cast<std::uint32_t>(body.b.size())).append(body.b);
    if (body.b.size() % 2 != 0) u8(0);
    return *this;
  }
  const std::uint8_t* data() const { return b.data(); }
  std::size_t size() const { return b.size(); }
};

Bytes fmt_body(std::uint32_t tag, std::uint32_t channels, std::uint32_t rate, std::uint32_t bits,
               std::uint32_t block_align) {
  Bytes f;
  f.u16(tag).u16(channels).u32(rate).u32(rate * block_align).u16(block_align).u16(bits);
  return f;
}
Bytes fmt_body(std::uint32_t tag, std::uint32_t channels, std::uint32_t rate, std::uint32_t bits) {
  return fmt_body(tag, channels, rate, bits, channels * bits / 8);
}

// WAVE_FORMAT_EXTENSIBLE with the SubFormat GUID {sub}-0000-0010-8000-00AA00389B71.
Bytes extensible_body(std::uint32_t sub, std::uint32_t channels, std::uint32_t rate,
                      std::uint32_t bits) {
  Bytes f = fmt_body(0xFFFE, channels, rate, bits);
  f.u16(22).u16(bits).u32(0x7);  // cbSize, valid bits, channel mask
  f.u16(sub).u16(0x0000).u16(0x0000).u16(0x0010);
  for (std::uint32_t v : {0x80u, 0x00u, 0x00u, 0xAAu, 0x00u, 0x38u, 0x9Bu, 0x71u}) f.u8(v);
  return f;
}

Bytes riff(const Bytes& chunks) {
  Bytes w;
  w.tag("RIFF").u32(static_cast<std::uint32_t>(4 + chunks.size())).tag("WAVE").append(chunks.b);
  return w;
}

Bytes wav(const Bytes& fmt, const Bytes& data) {
  Bytes c;
  c.chunk("fmt ", fmt).chunk("data", data);
  return riff(c);
}

Audio decode(const Bytes& w, bool downmix = false) {
  return asrkit::decode_wav(w.data(), w.size(), {downmix});
}

Audio decode(const std::vector<std::uint8_t>& w, bool downmix = false) {
  return asrkit::decode_wav(w.data(), w.size(), {downmix});
}

int bits_of(WavEncoding e) {
  switch (e) {
    case WavEncoding::pcm_u8: return 8;
    case WavEncoding::pcm_s16: return 16;
    case WavEncoding::pcm_s24: return 24;
    case WavEncoding::pcm_s32: return 32;
    case WavEncoding::float32: return 32;
    case WavEncoding::float64: return 64;
  }
  return 0;
}

// Samples every encoding represents exactly: k / 2^(bits-1) with codes spread over the range
// (both extremes included); floats get values outside [-1, 1] too.
Tensor<float> representable(WavEncoding e, asrkit::index_t frames, asrkit::index_t channels) {
  Tensor<float> x({frames, channels});
  const bool is_float = e == WavEncoding::float32 || e == WavEncoding::float64;
  const double scale = is_float ? 1024.0 : std::ldexp(1.0, bits_of(e) - 1);
  const double lo = is_float ? -4096.0 : -scale;
  const double hi = is_float ? 4096.0 : scale - 1;
  const asrkit::index_t n = frames * channels;
  for (asrkit::index_t i = 0; i < n; ++i) {
    // The largest codes of s32 are not floats; keep 24 significant bits.
    double code = std::round(lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1));
    if (e == WavEncoding::pcm_s32) code = std::ldexp(std::round(std::ldexp(code, -8)), 8);
    code = std::min(code, hi - (e == WavEncoding::pcm_s32 ? 255 : 0));
    x.data()[i] = static_cast<float>(code / scale);
  }
  return x;
}

const WavEncoding kAll[] = {WavEncoding::pcm_u8,  WavEncoding::pcm_s16, WavEncoding::pcm_s24,
                            WavEncoding::pcm_s32, WavEncoding::float32, WavEncoding::float64};

}  // namespace

TEST_CASE("wav round-trips every encoding exactly, mono and 3 channels", "[io][wav]") {
  for (WavEncoding e : kAll) {
    for (asrkit::index_t channels : {1, 3}) {
      CAPTURE(static_cast<int>(e), channels);
      const asrkit::index_t frames = 257;
      const Tensor<float> x = representable(e, frames, channels);
      const auto view = channels == 1 ? x.reshape({frames}) : x.view();
      const std::vector<std::uint8_t> bytes = asrkit::encode_wav(view, 22050, e);

      const bool is_float = e == WavEncoding::float32 || e == WavEncoding::float64;
      const std::size_t header = is_float ? 58 : 44;  // float adds cbSize and a 'fact' chunk
      const std::size_t data = static_cast<std::size_t>(frames * channels * bits_of(e) / 8);
      CHECK(bytes.size() == header + data + data % 2);

      const WavInfo info = asrkit::probe_wav(bytes.data(), bytes.size());
      CHECK(info.sample_rate == 22050);
      CHECK(info.num_channels == channels);
      CHECK(info.bits_per_sample == bits_of(e));
      CHECK(info.encoding == e);
      CHECK(info.num_frames == frames);

      const Audio a = decode(bytes, /*downmix=*/false);
      CHECK(a.sample_rate == 22050);
      CHECK(a.num_channels == channels);
      CHECK(a.encoding == e);
      REQUIRE(a.samples.shape() == Shape{frames, channels});
      for (asrkit::index_t i = 0; i < frames * channels; ++i)
        REQUIRE(a.samples.data()[i] == x.data()[i]);

      const Audio m = decode(bytes, /*downmix=*/true);
      CHECK(m.num_channels == channels);
      REQUIRE(m.samples.shape() == Shape{frames});
      for (asrkit::index_t t = 0; t < frames; ++t) {
        double sum = 0;
        for (asrkit::index_t c = 0; c < channels; ++c) sum += x(t, c);
        REQUIRE(m.samples(t) == static_cast<float>(sum / static_cast<double>(channels)));
      }
    }
  }
}

TEST_CASE("wav integer encodings clip and round to nearest", "[io][wav]") {
  Tensor<float> x({8});
  const float q = 1.0f / 32768.0f;
  const float in[8] = {1.0f, -1.0f, 2.0f, -7.5f, 1.4f * q, 1.6f * q, -1.6f * q, 32767.4f * q};
  std::memcpy(x.data(), in, sizeof in);
  const auto bytes = asrkit::encode_wav(x.view(), 8000, WavEncoding::pcm_s16);
  REQUIRE(bytes.size() == 44 + 16);
  const std::int16_t expected[8] = {32767, -32768, 32767, -32768, 1, 2, -2, 32767};
  for (int i = 0; i < 8; ++i) {
    const auto v = static_cast<std::int16_t>(bytes[44 + 2 * i] | (bytes[45 + 2 * i] << 8));
    CHECK(v == expected[i]);
  }
  const auto u8 = asrkit::encode_wav(x.view(), 8000, WavEncoding::pcm_u8);
  CHECK(u8[44] == 255);  // +1.0 -> 127 + 128
  CHECK(u8[45] == 0);    // -1.0 -> -128 + 128
  CHECK(u8[46] == 255);
  CHECK(u8[48] == 128);  // tiny values round to silence
  CHECK(u8.size() == 44 + 8);

  // Float encodings keep out-of-range values and infinities as they are.
  x(0) = std::numeric_limits<float>::infinity();
  const Audio f = decode(asrkit::encode_wav(x.view(), 8000, WavEncoding::float32));
  CHECK(f.samples(0, 0) == std::numeric_limits<float>::infinity());
  CHECK(f.samples(3, 0) == -7.5f);
}

TEST_CASE("wav decodes hand-built files of every sample format", "[io][wav]") {
  SECTION("16-bit stereo") {
    Bytes d;
    d.u16(0x0001).u16(0xFFFF).u16(0x7FFF).u16(0x8000);
    const Audio a = decode(wav(fmt_body(1, 2, 16000, 16), d));
    REQUIRE(a.samples.shape() == Shape{2, 2});
    CHECK(a.samples(0, 0) == 1.0f / 32768);
    CHECK(a.samples(0, 1) == -1.0f / 32768);
    CHECK(a.samples(1, 0) == 32767.0f / 32768);
    CHECK(a.samples(1, 1) == -1.0f);
    CHECK(a.sample_rate == 16000);
    const Audio m = decode(wav(fmt_body(1, 2, 16000, 16), d), /*downmix=*/true);
    CHECK(m.samples(0) == 0.0f);
    CHECK(m.samples(1) == -0.5f / 32768);
  }
  SECTION("8-bit unsigned") {
    Bytes d;
    d.u8(0).u8(128).u8(255);
    const Audio a = decode(wav(fmt_body(1, 1, 8000, 8), d), /*downmix=*/true);
    REQUIRE(a.samples.shape() == Shape{3});
    CHECK(a.samples(0) == -1.0f);
    CHECK(a.samples(1) == 0.0f);
    CHECK(a.samples(2) == 127.0f / 128);
    CHECK(a.encoding == WavEncoding::pcm_u8);
  }
  SECTION("24-bit, odd data size with its pad byte") {
    Bytes d;
    d.le(0x800000, 3).le(0x7FFFFF, 3).le(0xFFFFFE, 3);
    const Bytes w = wav(fmt_body(1, 1, 44100, 24), d);
    CHECK(w.size() == 44 + 9 + 1);
    const Audio a = decode(w);
    REQUIRE(a.samples.shape() == Shape{3, 1});
    CHECK(a.samples(0, 0) == -1.0f);
    CHECK(a.samples(1, 0) == 8388607.0f / 8388608);
    CHECK(a.samples(2, 0) == -2.0f / 8388608);
    // The pad byte of a final odd chunk is optional.
    CHECK(asrkit::decode_wav(w.data(), w.size() - 1).samples.numel() == 3);
  }
  SECTION("32-bit integer") {
    Bytes d;
    d.u32(0x80000000u).u32(0x40000000u).u32(0xFFFFFF00u);
    const Audio a = decode(wav(fmt_body(1, 1, 48000, 32), d));
    CHECK(a.samples(0, 0) == -1.0f);
    CHECK(a.samples(1, 0) == 0.5f);
    CHECK(a.samples(2, 0) == -256.0f / 2147483648.0f);
  }
  SECTION("float32 and float64") {
    Bytes f32;
    f32.u32(0x3F800000u).u32(0xBEC00000u);  // 1.0, -0.375
    Audio a = decode(wav(fmt_body(3, 2, 8000, 32), f32));
    CHECK(a.samples(0, 0) == 1.0f);
    CHECK(a.samples(0, 1) == -0.375f);
    CHECK(a.encoding == WavEncoding::float32);
    Bytes f64;
    f64.le(0x3FD0000000000000ull, 8).le(0xC004000000000000ull, 8);  // 0.25, -2.5
    a = decode(wav(fmt_body(3, 1, 8000, 64), f64));
    CHECK(a.samples(0, 0) == 0.25f);
    CHECK(a.samples(1, 0) == -2.5f);
    CHECK(a.encoding == WavEncoding::float64);
  }
  SECTION("empty data chunk") {
    const Audio a = decode(wav(fmt_body(1, 2, 8000, 16), Bytes{}));
    CHECK(a.samples.shape() == Shape{0, 2});
    CHECK(decode(wav(fmt_body(1, 2, 8000, 16), Bytes{}), true).samples.shape() == Shape{0});
  }
  SECTION("sample rates are reported as they are") {
    Bytes d;
    d.u16(0);
    CHECK(decode(wav(fmt_body(1, 1, 1, 16), d)).sample_rate == 1);
    CHECK(decode(wav(fmt_body(1, 1, 0x7FFFFFFF, 16, 2), d)).sample_rate == 0x7FFFFFFF);
  }
}

TEST_CASE("wav reads WAVE_FORMAT_EXTENSIBLE", "[io][wav]") {
  Bytes d;
  d.le(0x000001, 3).le(0xFFFFFF, 3).le(0x400000, 3).le(0xC00000, 3).le(0, 3).le(0x7FFFFF, 3);
  const Audio a = decode(wav(extensible_body(1, 3, 96000, 24), d));
  REQUIRE(a.samples.shape() == Shape{2, 3});
  CHECK(a.encoding == WavEncoding::pcm_s24);
  CHECK(a.samples(0, 0) == 1.0f / 8388608);
  CHECK(a.samples(0, 1) == -1.0f / 8388608);
  CHECK(a.samples(0, 2) == 0.5f);
  CHECK(a.samples(1, 0) == -0.5f);
  CHECK(a.samples(1, 2) == 8388607.0f / 8388608);

  Bytes f;
  f.u32(0x3F000000u);  // 0.5
  const Audio fa = decode(wav(extensible_body(3, 1, 8000, 32), f));
  CHECK(fa.encoding == WavEncoding::float32);
  CHECK(fa.samples(0, 0) == 0.5f);

  Bytes bad_guid = extensible_body(1, 1, 8000, 16);
  bad_guid.b.back() ^= 0xFF;
  REQUIRE_THROWS_ID(decode(wav(bad_guid, Bytes{})), asrkit::FormatError, "[asrkit.wav.7]");
  REQUIRE_THROWS_ID(decode(wav(extensible_body(2, 1, 8000, 16), Bytes{})), asrkit::FormatError,
                    "unsupported WAVE_FORMAT_EXTENSIBLE SubFormat (first two bytes 2)");
  Bytes short_ext = extensible_body(1, 1, 8000, 16);
  short_ext.b.resize(38);
  REQUIRE_THROWS_ID(decode(wav(short_ext, Bytes{})), asrkit::FormatError,
                    "[asrkit.wav.6] WAV 'fmt ' chunk: WAVE_FORMAT_EXTENSIBLE needs at least 40 "
                    "bytes, got 38");
}

TEST_CASE("wav skips unknown chunks and honours pad bytes", "[io][wav]") {
  Bytes junk;
  junk.u8(1).u8(2).u8(3);  // odd: a pad byte follows
  Bytes d;
  d.u16(0x4000);
  Bytes chunks;
  chunks.chunk("JUNK", junk).chunk("fmt ", fmt_body(1, 1, 8000, 16)).chunk("LIST", junk);
  chunks.chunk("data", d).chunk("id3 ", junk);
  const Bytes w = riff(chunks);
  // JUNK (8 + 3 + pad) comes first: the pad byte must be skipped to find 'fmt '.
  CHECK(w.b[12 + 8 + 3] == 0);
  CHECK(std::memcmp(w.data() + 12 + 12, "fmt ", 4) == 0);
  const Audio a = decode(w);
  REQUIRE(a.samples.shape() == Shape{1, 1});
  CHECK(a.samples(0, 0) == 0.5f);

  // A trailing chunk after 'data' is not examined, even a broken one.
  Bytes tail = w;
  tail.tag("BAD ").u32(0xFFFFFFFFu);
  CHECK(decode(tail).samples.numel() == 1);

  // A fmt chunk larger than 16 bytes (cbSize and extra bytes) is fine.
  Bytes fmt18 = fmt_body(1, 1, 8000, 16);
  fmt18.u16(0);
  CHECK(decode(wav(fmt18, d)).samples(0, 0) == 0.5f);
}

TEST_CASE("wav rejects malformed headers with pinned ids", "[io][wav]") {
  using asrkit::FormatError;
  Bytes d;
  d.u16(0).u16(0);
  const Bytes good = wav(fmt_body(1, 2, 8000, 16), d);
  REQUIRE(decode(good).samples.numel() == 2);

  SECTION("not RIFF/WAVE") {
    REQUIRE_THROWS_ID(asrkit::decode_wav(good.data(), 11), FormatError,
                      "[asrkit.wav.1] not a WAV file: expected at least 12 bytes of RIFF/WAVE "
                      "header, got 11");
    REQUIRE_THROWS_ID(asrkit::probe_wav(nullptr, 0), FormatError, "[asrkit.wav.1]");
    Bytes w = good;
    std::memcpy(w.b.data(), "RIFX", 4);
    REQUIRE_THROWS_ID(decode(w), FormatError,
                      "[asrkit.wav.1] not a WAV file: expected 'RIFF' and 'WAVE' tags, got "
                      "'RIFX' and 'WAVE'");
    w = good;
    w.b[8] = 0;
    REQUIRE_THROWS_ID(decode(w), FormatError, "got 'RIFF' and '\\x00AVE'");
  }
  SECTION("chunk sizes beyond the data") {
    Bytes w = good;
    w.b[40] = 5;  // data size 5 + ... > 4 bytes present
    REQUIRE_THROWS_ID(decode(w), FormatError,
                      "[asrkit.wav.2] WAV chunk 'data' at offset 36: size 5 exceeds the 4 bytes "
                      "left");
    w = good;
    for (int i = 40; i < 44; ++i) w.b[static_cast<std::size_t>(i)] = 0xFF;
    REQUIRE_THROWS_ID(decode(w), FormatError,
                      "WAV chunk 'data' at offset 36: size 4294967295 exceeds the 4 bytes left");
    Bytes huge;
    huge.tag("JUNK").u32(0xFFFFFFFFu);
    REQUIRE_THROWS_ID(decode(riff(huge)), FormatError,
                      "[asrkit.wav.2] WAV chunk 'JUNK' at offset 12: size 4294967295 exceeds the "
                      "0 bytes left");
    Bytes fmt_big;
    fmt_big.tag("fmt ").u32(1000).append(fmt_body(1, 1, 8000, 16).b);
    REQUIRE_THROWS_ID(decode(riff(fmt_big)), FormatError,
                      "WAV chunk 'fmt ' at offset 12: size 1000 exceeds the 16 bytes left");
    Bytes partial;
    partial.chunk("fmt ", fmt_body(1, 1, 8000, 16)).u8('d').u8('a');
    REQUIRE_THROWS_ID(decode(riff(partial)), FormatError,
                      "[asrkit.wav.2] WAV chunk header at offset 36: expected 8 bytes, 2 left");
  }
  SECTION("missing or misplaced chunks") {
    REQUIRE_THROWS_ID(decode(riff(Bytes{})), FormatError,
                      "[asrkit.wav.11] WAV file has no 'fmt ' chunk and no 'data' chunk");
    Bytes only_fmt;
    only_fmt.chunk("fmt ", fmt_body(1, 1, 8000, 16));
    REQUIRE_THROWS_ID(decode(riff(only_fmt)), FormatError,
                      "[asrkit.wav.11] WAV file has no 'data' chunk");
    Bytes data_first;
    data_first.chunk("data", d).chunk("fmt ", fmt_body(1, 1, 8000, 16));
    REQUIRE_THROWS_ID(decode(riff(data_first)), FormatError,
                      "[asrkit.wav.3] WAV 'data' chunk comes before any 'fmt ' chunk");
  }
  SECTION("fmt fields") {
    Bytes short_fmt = fmt_body(1, 1, 8000, 16);
    short_fmt.b.resize(14);
    REQUIRE_THROWS_ID(decode(wav(short_fmt, d)), FormatError,
                      "[asrkit.wav.6] WAV 'fmt ' chunk: expected at least 16 bytes, got 14");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 0, 8000, 16, 0), d)), FormatError,
                      "[asrkit.wav.4] WAV 'fmt ' chunk: num_channels must be >= 1, got 0");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 1, 0, 16), d)), FormatError,
                      "[asrkit.wav.5] WAV 'fmt ' chunk: sample_rate must be in [1, 2147483647], "
                      "got 0");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 1, 0x80000000u, 16), d)), FormatError,
                      "[asrkit.wav.5]");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(2, 1, 8000, 4, 36), d)), FormatError,
                      "[asrkit.wav.7] WAV 'fmt ' chunk: unsupported format tag 2; expected 1 "
                      "(PCM), 3 (IEEE float) or 0xFFFE (WAVE_FORMAT_EXTENSIBLE)");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 1, 8000, 12, 2), d)), FormatError,
                      "[asrkit.wav.8] WAV 'fmt ' chunk: unsupported bits_per_sample 12 for PCM; "
                      "expected 8, 16, 24 or 32");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(3, 1, 8000, 16), d)), FormatError,
                      "[asrkit.wav.8] WAV 'fmt ' chunk: unsupported bits_per_sample 16 for IEEE "
                      "float; expected 32 or 64");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 1, 8000, 0, 0), d)), FormatError, "[asrkit.wav.8]");
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 2, 8000, 16, 2), d)), FormatError,
                      "[asrkit.wav.9] WAV 'fmt ' chunk: block_align must be num_channels * "
                      "bits_per_sample / 8 = 4, got 2");
    // 65535 channels x 8 bytes does not fit block_align's 16 bits: a mismatch, not an overflow.
    REQUIRE_THROWS_ID(decode(wav(fmt_body(3, 65535, 8000, 64, 0xFFF8), d)), FormatError,
                      "= 524280, got 65528");
  }
  SECTION("data size not a multiple of block_align") {
    Bytes odd;
    odd.u16(0).u16(0).u16(0);
    REQUIRE_THROWS_ID(decode(wav(fmt_body(1, 2, 8000, 16), odd)), FormatError,
                      "[asrkit.wav.10] WAV 'data' chunk: size 6 is not a multiple of "
                      "block_align 4");
  }
}

TEST_CASE("every prefix of a valid wav decodes or throws FormatError", "[io][wav]") {
  Bytes junk;
  junk.u8(7);
  Bytes d;
  for (int i = 0; i < 12; ++i) d.le(static_cast<std::uint32_t>(i * 100000), 3);
  Bytes pcm;
  pcm.chunk("JUNK", junk).chunk("fmt ", fmt_body(1, 2, 8000, 24)).chunk("data", d);
  Bytes ext;
  ext.chunk("fmt ", extensible_body(1, 3, 8000, 24)).chunk("data", d);
  Tensor<float> x({5, 2}, 0.25f);
  const std::vector<std::uint8_t> f64 = asrkit::encode_wav(x.view(), 8000, WavEncoding::float64);
  const std::vector<std::uint8_t> u8 = asrkit::encode_wav(x[0], 8000, WavEncoding::pcm_u8);
  for (const std::vector<std::uint8_t>& file : {riff(pcm).b, riff(ext).b, f64, u8}) {
    int decoded = 0;
    for (std::size_t n = 0; n <= file.size(); ++n) {
      CAPTURE(file.size(), n);
      // A copy of exactly n bytes, so ASan sees any read past the prefix.
      const std::vector<std::uint8_t> prefix(file.begin(), file.begin() + static_cast<long>(n));
      for (bool downmix : {false, true}) {
        try {
          asrkit::probe_wav(prefix.data(), prefix.size());
          asrkit::decode_wav(prefix.data(), prefix.size(), {downmix});
          ++decoded;
        } catch (const asrkit::FormatError&) {
        }
      }
    }
    // Only the whole file decodes (in both downmix modes).
    CHECK(decoded == 2);
  }
}

TEST_CASE("wav writer validates its arguments", "[io][wav]") {
  Tensor<float> x({4, 2}, 0.0f);
  REQUIRE_THROWS_ID(asrkit::encode_wav(x.view(), 0), asrkit::ValueError,
                    "[asrkit.wav.12] write WAV: sample_rate must be >= 1, got 0");
  Tensor<float> cube({2, 2, 2});
  REQUIRE_THROWS_ID(asrkit::encode_wav(cube.view(), 8000), asrkit::ShapeError,
                    "[asrkit.wav.13] write WAV: samples must be [frames] or [frames, channels >= "
                    "1], got [2, 2, 2]");
  Tensor<float> scalar(Shape{});
  REQUIRE_THROWS_ID(asrkit::encode_wav(scalar.view(), 8000), asrkit::ShapeError, "got []");
  Tensor<float> no_channels({3, 0});
  REQUIRE_THROWS_ID(asrkit::encode_wav(no_channels.view(), 8000), asrkit::ShapeError,
                    "[asrkit.wav.13]");
  x(2, 1) = std::nanf("");
  REQUIRE_THROWS_ID(asrkit::encode_wav(x.view(), 8000, WavEncoding::pcm_s24), asrkit::ValueError,
                    "[asrkit.wav.14] write WAV as pcm_s24: sample 5 (frame 2, channel 1) is nan");
  x(2, 1) = -std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_ID(asrkit::encode_wav(x.view(), 8000, WavEncoding::pcm_u8), asrkit::ValueError,
                    "is -inf; integer encodings need finite samples");
  CHECK_NOTHROW(asrkit::encode_wav(x.view(), 8000, WavEncoding::float64));
  REQUIRE_THROWS_ID(asrkit::encode_wav(x.view(), 8000, static_cast<WavEncoding>(42)),
                    asrkit::ValueError, "[asrkit.wav.15] unknown WavEncoding value 42");
  Tensor<float> wide({1, 70000});
  REQUIRE_THROWS_ID(asrkit::encode_wav(wide.view(), 8000), asrkit::ValueError,
                    "[asrkit.wav.16] write WAV: 1 frames x 70000 channels of pcm_s16 at 8000 Hz "
                    "do not fit in a WAV header");
  Tensor<float> fast({1, 8});
  REQUIRE_THROWS_ID(asrkit::encode_wav(fast.view(), 0x7FFFFFFF, WavEncoding::float64),
                    asrkit::ValueError, "[asrkit.wav.16]");
  // Zero frames is a valid (empty) file.
  Tensor<float> none({0});
  const auto empty = asrkit::encode_wav(none.view(), 8000);
  CHECK(decode(empty, true).samples.shape() == Shape{0});
}

TEST_CASE("read_wav and write_wav go through files", "[io][wav]") {
  const std::string path = asrkit_test::data_path("test_wav_roundtrip.wav");
  const Tensor<float> x = representable(WavEncoding::pcm_s24, 100, 2);
  asrkit::write_wav(path, x.view(), 44100, WavEncoding::pcm_s24);
  const auto on_disk = asrkit_test::read_bytes(path);
  CHECK(on_disk == asrkit::encode_wav(x.view(), 44100, WavEncoding::pcm_s24));
  const Audio a = asrkit::read_wav(path, {false});
  REQUIRE(a.samples.shape() == Shape{100, 2});
  for (int i = 0; i < 200; ++i) REQUIRE(a.samples.data()[i] == x.data()[i]);
  CHECK(asrkit::read_wav(path).samples.shape() == Shape{100});

  const std::string missing = asrkit_test::data_path("no_such_file.wav");
  REQUIRE_THROWS_ID(asrkit::read_wav(missing), asrkit::IoError,
                    "[asrkit.io.1] cannot open '" + missing +
                        "' for reading: No such file or directory");
  REQUIRE_THROWS_ID(asrkit::read_wav(ASRKIT_TEST_DATA), asrkit::IoError,
                    "[asrkit.io.2] cannot read '" ASRKIT_TEST_DATA "': Is a directory");
  const std::string bad_dir = asrkit_test::data_path("no_such_dir/out.wav");
  REQUIRE_THROWS_ID(asrkit::write_wav(bad_dir, x.view(), 8000), asrkit::IoError,
                    "[asrkit.io.1] cannot open '" + bad_dir + "' for writing");
  asrkit_test::write_bytes(path, {'R', 'I', 'F', 'F'});
  REQUIRE_THROWS_ID(asrkit::read_wav(path), asrkit::FormatError, "[asrkit.wav.1]");
}
