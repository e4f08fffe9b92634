// asrkit/io/wav.hpp - reading and writing RIFF/WAVE files (PCM 8/16/24/32 bit, float 32/64).
//
//   asrkit::Audio a = asrkit::read_wav("utt.wav");                 // samples: [frames], mono mix
//   asrkit::Audio s = asrkit::read_wav("utt.wav", {/*downmix=*/false});  // [frames, channels]
//   asrkit::write_wav("out.wav", a.samples, a.sample_rate);         // 16-bit PCM by default
//
// Samples are floats; integer PCM is scaled to [-1, 1) (s16 / 32768, u8 (x - 128) / 128...).
// Every field of an untrusted file is validated and reported as a FormatError "wav.N"; the
// decoder never reads outside the buffer and allocates no more than the data actually present.
// Byte order is assembled byte by byte, so any host (little- or big-endian) reads the same.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/file.hpp>

namespace asrkit {

/// How samples are stored in the file.
enum class WavEncoding { pcm_u8, pcm_s16, pcm_s24, pcm_s32, float32, float64 };

/// What a WAV header says (probe_wav reads only this).
struct WavInfo {
  int sample_rate = 0;
  int num_channels = 0;
  int bits_per_sample = 0;
  WavEncoding encoding = WavEncoding::pcm_s16;
  index_t num_frames = 0;
};

/// Decoded audio: samples are [frames] (downmixed) or [frames, channels].
struct Audio {
  Tensor<float> samples;
  int sample_rate = 0;
  int num_channels = 0;  ///< channels in the file (also when the samples were downmixed)
  WavEncoding encoding = WavEncoding::pcm_s16;
};

struct WavReadOptions {
  /// true: samples [frames], the mean of the channels; false: [frames, channels].
  bool downmix = true;
};

namespace detail {
namespace wav {

inline constexpr std::uint16_t kFormatPcm = 1;
inline constexpr std::uint16_t kFormatFloat = 3;
inline constexpr std::uint16_t kFormatExtensible = 0xFFFE;

// The one table of encodings, used by the reader (tag + bits -> encoding) and the writer.
struct EncodingSpec {
  WavEncoding encoding;
  std::uint16_t format_tag;
  int bits;
  const char* name;
};
inline constexpr EncodingSpec kEncodings[] = {
    {WavEncoding::pcm_u8, kFormatPcm, 8, "pcm_u8"},
    {WavEncoding::pcm_s16, kFormatPcm, 16, "pcm_s16"},
    {WavEncoding::pcm_s24, kFormatPcm, 24, "pcm_s24"},
    {WavEncoding::pcm_s32, kFormatPcm, 32, "pcm_s32"},
    {WavEncoding::float32, kFormatFloat, 32, "float32"},
    {WavEncoding::float64, kFormatFloat, 64, "float64"},
};

inline const EncodingSpec* find_spec(WavEncoding e) noexcept {
  for (const EncodingSpec& s : kEncodings)
    if (s.encoding == e) return &s;
  return nullptr;
}

inline const EncodingSpec* find_spec(std::uint16_t tag, int bits) noexcept {
  for (const EncodingSpec& s : kEncodings)
    if (s.format_tag == tag && s.bits == bits) return &s;
  return nullptr;
}

inline const EncodingSpec& spec_or_throw(WavEncoding e) {
  const EncodingSpec* s = find_spec(e);
  if (s == nullptr)
    throw ValueError("wav.15", detail::str("unknown WavEncoding value ", static_cast<int>(e)));
  return *s;
}

// ---- little-endian byte access (no unaligned loads, host byte order irrelevant) -------------
inline std::uint32_t load_le(const std::uint8_t* p, int bytes) noexcept {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint16_t load_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(load_le(p, 2));
}
inline std::uint32_t load_u32(const std::uint8_t* p) noexcept { return load_le(p, 4); }
inline std::uint64_t load_u64(const std::uint8_t* p) noexcept {
  return std::uint64_t{load_le(p, 4)} | (std::uint64_t{load_le(p + 4, 4)} << 32);
}
inline void store_le(std::uint8_t* p, std::uint64_t v, int bytes) noexcept {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Sign-extends the low `bits` bits of `v` (two's complement) without relying on shifts of
// negative numbers.
inline std::int32_t sign_extend(std::uint32_t v, int bits) noexcept {
  const std::uint32_t sign = std::uint32_t{1} << (bits - 1);
  const std::uint32_t mask = bits == 32 ? ~std::uint32_t{0} : (sign << 1) - 1;
  v &= mask;
  return static_cast<std::int32_t>(static_cast<std::int64_t>(v ^ sign) -
                                   static_cast<std::int64_t>(sign));
}

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "WAV float samples are IEEE 754");

// One codec per encoding: read one sample at p / write one sample to p. The integer codecs
// scale by 2^(bits-1) (u8 is offset by 128), so k / 2^(bits-1) round-trips exactly.
template <WavEncoding E>
struct Codec;

template <int Bits>
struct SignedCodec {
  static constexpr int bytes = Bits / 8;
  static constexpr double scale = static_cast<double>(std::uint64_t{1} << (Bits - 1));
  static float read(const std::uint8_t* p) noexcept {
    // One rounding (int -> float); the power-of-two scale is exact.
    return static_cast<float>(sign_extend(load_le(p, bytes), Bits)) *
           static_cast<float>(1.0 / scale);
  }
  static void write(std::uint8_t* p, float x) noexcept {
    const double v = std::nearbyint(std::clamp(static_cast<double>(x), -1.0, 1.0) * scale);
    const auto q = static_cast<std::int64_t>(std::min(v, scale - 1.0));  // +1.0 -> max code
    store_le(p, static_cast<std::uint64_t>(q), bytes);
  }
};

template <>
struct Codec<WavEncoding::pcm_u8> {
  static constexpr int bytes = 1;
  static float read(const std::uint8_t* p) noexcept {
    return static_cast<float>(static_cast<int>(p[0]) - 128) * (1.0f / 128.0f);
  }
  static void write(std::uint8_t* p, float x) noexcept {
    const double v = std::nearbyint(std::clamp(static_cast<double>(x), -1.0, 1.0) * 128.0);
    p[0] = static_cast<std::uint8_t>(static_cast<int>(std::min(v, 127.0)) + 128);
  }
};
template <>
struct Codec<WavEncoding::pcm_s16> : SignedCodec<16> {};
template <>
struct Codec<WavEncoding::pcm_s24> : SignedCodec<24> {};
template <>
struct Codec<WavEncoding::pcm_s32> : SignedCodec<32> {};

// IEEE float samples of type F, stored little-endian through an unsigned integer of the same
// width (so the byte order is right on any host).
template <class F, class Bits>
struct FloatCodec {
  static_assert(sizeof(F) == sizeof(Bits), "FloatCodec: F and Bits must have the same width");
  static constexpr int bytes = sizeof(F);
  static float read(const std::uint8_t* p) noexcept {
    const Bits bits = bytes == 8 ? static_cast<Bits>(load_u64(p)) : static_cast<Bits>(load_u32(p));
    F x;
    std::memcpy(&x, &bits, sizeof x);
    return static_cast<float>(x);
  }
  static void write(std::uint8_t* p, float x) noexcept {
    const F wide = x;
    Bits bits;
    std::memcpy(&bits, &wide, sizeof bits);
    store_le(p, bits, bytes);
  }
};

template <>
struct Codec<WavEncoding::float32> : FloatCodec<float, std::uint32_t> {};
template <>
struct Codec<WavEncoding::float64> : FloatCodec<double, std::uint64_t> {};

// Calls f(Codec<E>{}) for the run-time encoding e (one switch, then tight per-encoding loops).
template <class F>
decltype(auto) with_codec(WavEncoding e, F&& f) {
  switch (e) {
    case WavEncoding::pcm_u8: return f(Codec<WavEncoding::pcm_u8>{});
    case WavEncoding::pcm_s16: return f(Codec<WavEncoding::pcm_s16>{});
    case WavEncoding::pcm_s24: return f(Codec<WavEncoding::pcm_s24>{});
    case WavEncoding::pcm_s32: return f(Codec<WavEncoding::pcm_s32>{});
    case WavEncoding::float32: return f(Codec<WavEncoding::float32>{});
    case WavEncoding::float64: return f(Codec<WavEncoding::float64>{});
  }
  spec_or_throw(e);  // throws: not one of the enumerators
  return f(Codec<WavEncoding::float32>{});
}

// out[t] = mean over channels of sample(t * channels + c), summed in double: exact for integer
// PCM (multiples of 2^-31, at most 65535 channels). Shared with read_audio (sndfile.hpp).
template <class Sample>
void mix_down(index_t frames, index_t channels, Sample&& sample, float* out) {
  const double count = static_cast<double>(channels);
  for (index_t t = 0; t < frames; ++t) {
    double sum = 0.0;
    for (index_t c = 0; c < channels; ++c) sum += sample(t * channels + c);
    out[t] = static_cast<float>(sum / count);
  }
}

// "fmt " as text, non-printable bytes as \xNN, for messages about chunk ids.
inline std::string fourcc(const std::uint8_t* p) {
  static const char hex[] = "0123456789abcdef";
  std::string s = "'";
  for (int i = 0; i < 4; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\') {
      s += static_cast<char>(p[i]);
    } else {
      s += "\\x";
      s += hex[p[i] >> 4];
      s += hex[p[i] & 15];
    }
  }
  return s + "'";
}

// The header fields plus where the sample bytes are.
struct Layout {
  WavInfo info;
  std::size_t data_offset = 0;
  std::size_t data_bytes = 0;
};

// Validates a 'fmt ' chunk body of `n` bytes and fills everything except num_frames.
inline WavInfo parse_fmt(const std::uint8_t* p, std::size_t n) {
  if (n < 16)
    throw FormatError("wav.6",
                      detail::str("WAV 'fmt ' chunk: expected at least 16 bytes, got ", n));
  std::uint16_t tag = load_u16(p);
  const std::uint16_t channels = load_u16(p + 2);
  const std::uint32_t rate = load_u32(p + 4);
  const std::uint16_t block_align = load_u16(p + 12);
  const std::uint16_t bits = load_u16(p + 14);
  if (tag == kFormatExtensible) {
    // WAVEFORMATEXTENSIBLE: cbSize (22), valid bits, channel mask, then the SubFormat GUID
    // whose first two bytes are the real format tag; the rest is the fixed KSDATAFORMAT suffix.
    if (n < 40)
      throw FormatError("wav.6", detail::str("WAV 'fmt ' chunk: WAVE_FORMAT_EXTENSIBLE needs at "
                                             "least 40 bytes, got ", n));
    static const std::uint8_t kGuidTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                               0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    const std::uint16_t sub = load_u16(p + 24);
    if (std::memcmp(p + 26, kGuidTail, sizeof kGuidTail) != 0 ||
        (sub != kFormatPcm && sub != kFormatFloat))
      throw FormatError("wav.7", detail::str("WAV 'fmt ' chunk: unsupported "
                                             "WAVE_FORMAT_EXTENSIBLE SubFormat (first two bytes ",
                                             sub, "); expected PCM (1) or IEEE float (3)"));
    tag = sub;
  } else if (tag != kFormatPcm && tag != kFormatFloat) {
    throw FormatError("wav.7", detail::str("WAV 'fmt ' chunk: unsupported format tag ", tag,
                                           "; expected 1 (PCM), 3 (IEEE float) or 0xFFFE "
                                           "(WAVE_FORMAT_EXTENSIBLE)"));
  }
  if (channels == 0)
    throw FormatError("wav.4", "WAV 'fmt ' chunk: num_channels must be >= 1, got 0");
  if (rate == 0 || rate > static_cast<std::uint32_t>(std::numeric_limits<int>::max()))
    throw FormatError("wav.5", detail::str("WAV 'fmt ' chunk: sample_rate must be in [1, ",
                                           std::numeric_limits<int>::max(), "], got ", rate));
  const EncodingSpec* spec = find_spec(tag, bits);
  if (spec == nullptr)
    throw FormatError("wav.8", detail::str("WAV 'fmt ' chunk: unsupported bits_per_sample ", bits,
                                           " for ", tag == kFormatPcm ? "PCM" : "IEEE float",
                                           "; expected ",
                                           tag == kFormatPcm ? "8, 16, 24 or 32" : "32 or 64"));
  const std::uint32_t expected_align = std::uint32_t{channels} * (bits / 8u);
  if (block_align != expected_align)
    throw FormatError("wav.9", detail::str("WAV 'fmt ' chunk: block_align must be num_channels * "
                                           "bits_per_sample / 8 = ", expected_align, ", got ",
                                           block_align));
  WavInfo info;
  info.sample_rate = static_cast<int>(rate);
  info.num_channels = channels;
  info.bits_per_sample = bits;
  info.encoding = spec->encoding;
  return info;
}

// Walks the RIFF chunks up to the 'data' chunk. Chunks after 'data' are not examined, and the
// RIFF size field is not trusted (streaming writers leave it 0 or 0xFFFFFFFF): the buffer's
// own size bounds everything.
inline Layout parse(const std::uint8_t* data, std::size_t size) {
  if (size < 12 || data == nullptr)
    throw FormatError("wav.1", detail::str("not a WAV file: expected at least 12 bytes of "
                                           "RIFF/WAVE header, got ", data ? size : 0));
  if (std::memcmp(data, "RIFF", 4) != 0 || std::memcmp(data + 8, "WAVE", 4) != 0)
    throw FormatError("wav.1", detail::str("not a WAV file: expected 'RIFF' and 'WAVE' tags, "
                                           "got ", fourcc(data), " and ", fourcc(data + 8)));
  Layout out;
  bool have_fmt = false;
  std::size_t pos = 12;
  while (true) {
    const std::size_t left = size - pos;
    if (left == 0)
      throw FormatError("wav.11", have_fmt ? "WAV file has no 'data' chunk"
                                           : "WAV file has no 'fmt ' chunk and no 'data' chunk");
    if (left < 8)
      throw FormatError("wav.2", detail::str("WAV chunk header at offset ", pos,
                                             ": expected 8 bytes, ", left, " left"));
    const std::uint8_t* id = data + pos;
    const std::uint32_t chunk = load_u32(data + pos + 4);
    pos += 8;
    if (chunk > size - pos)
      throw FormatError("wav.2", detail::str("WAV chunk ", fourcc(id), " at offset ", pos - 8,
                                             ": size ", chunk, " exceeds the ", size - pos,
                                             " bytes left"));
    if (std::memcmp(id, "fmt ", 4) == 0) {
      out.info = parse_fmt(data + pos, chunk);
      have_fmt = true;
    } else if (std::memcmp(id, "data", 4) == 0) {
      if (!have_fmt)
        throw FormatError("wav.3", "WAV 'data' chunk comes before any 'fmt ' chunk");
      const std::size_t align = static_cast<std::size_t>(out.info.num_channels) *
                                static_cast<std::size_t>(out.info.bits_per_sample / 8);
      if (chunk % align != 0)
        throw FormatError("wav.10", detail::str("WAV 'data' chunk: size ", chunk,
                                                " is not a multiple of block_align ", align));
      out.data_offset = pos;
      out.data_bytes = chunk;
      out.info.num_frames = static_cast<index_t>(chunk / align);
      return out;
    }
    // Odd-sized chunks are followed by one pad byte (tolerated missing at the very end).
    pos += chunk;
    if ((chunk & 1u) != 0 && pos < size) ++pos;
  }
}

}  // namespace wav
}  // namespace detail

/// The header of an in-memory WAV file (validated as decode_wav does; samples not read).
inline WavInfo probe_wav(const std::uint8_t* data, std::size_t size) {
  return detail::wav::parse(data, size).info;
}

/// Decodes an in-memory WAV file. Throws FormatError "wav.N" on malformed input.
inline Audio decode_wav(const std::uint8_t* data, std::size_t size,
                        const WavReadOptions& options = {}) {
  const detail::wav::Layout layout = detail::wav::parse(data, size);
  const WavInfo& info = layout.info;
  const index_t frames = info.num_frames;
  const index_t channels = info.num_channels;
  Audio audio;
  audio.sample_rate = info.sample_rate;
  audio.num_channels = info.num_channels;
  audio.encoding = info.encoding;
  // Sizes are bounded by the data present: frames * channels * bytes == data_bytes <= size.
  audio.samples = options.downmix ? Tensor<float>(Shape{frames})
                                  : Tensor<float>(Shape{frames, channels});
  const std::uint8_t* src = data + layout.data_offset;
  float* dst = audio.samples.data();
  detail::wav::with_codec(info.encoding, [&](auto codec) {
    using C = decltype(codec);
    const index_t n = frames * channels;
    if (!options.downmix || channels == 1) {
      for (index_t i = 0; i < n; ++i) dst[i] = C::read(src + i * C::bytes);
    } else {
      auto sample = [src](index_t i) { return C::read(src + i * C::bytes); };
      detail::wav::mix_down(frames, channels, sample, dst);
    }
  });
  return audio;
}

/// Reads and decodes a WAV file. IoError "io.1"/"io.2" if it cannot be opened/read.
inline Audio read_wav(const std::string& path, const WavReadOptions& options = {}) {
  const std::vector<std::uint8_t> bytes = detail::read_file(path);
  return decode_wav(bytes.data(), bytes.size(), options);
}

/// Encodes samples [frames] (mono) or [frames, channels] as a WAV file in memory. Integer
/// encodings clip to [-1, 1] and round to nearest; they reject NaN and infinities.
inline std::vector<std::uint8_t> encode_wav(TensorView<const float> samples, int sample_rate,
                                            WavEncoding encoding = WavEncoding::pcm_s16) {
  namespace w = detail::wav;
  const w::EncodingSpec& spec = w::spec_or_throw(encoding);
  if (sample_rate < 1)
    throw ValueError("wav.12", detail::str("write WAV: sample_rate must be >= 1, got ",
                                           sample_rate));
  const int rank = samples.rank();
  if ((rank != 1 && rank != 2) || (rank == 2 && samples.dim(1) < 1))
    throw ShapeError("wav.13", detail::str("write WAV: samples must be [frames] or [frames, "
                                           "channels >= 1], got ", samples.shape().str()));
  const index_t frames = samples.dim(0);
  const index_t channels = rank == 2 ? samples.dim(1) : 1;
  const std::uint64_t bytes_per_sample = static_cast<std::uint64_t>(spec.bits / 8);
  const std::uint64_t block_align = static_cast<std::uint64_t>(channels) * bytes_per_sample;
  const bool is_float = spec.format_tag == w::kFormatFloat;
  // Float files carry cbSize (fmt 18 bytes) and a 'fact' chunk, as the spec asks for non-PCM.
  const std::uint64_t fmt_bytes = is_float ? 18 : 16;
  const std::uint64_t header = 12 + 8 + fmt_bytes + (is_float ? 12 : 0) + 8;
  const std::uint64_t data_bytes = static_cast<std::uint64_t>(frames) * block_align;
  const std::uint64_t data_padded = data_bytes + (data_bytes & 1u);
  const std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
  if (block_align > 0xFFFFu || static_cast<std::uint64_t>(channels) > 0xFFFFu ||
      static_cast<std::uint64_t>(sample_rate) * block_align > u32_max ||
      static_cast<std::uint64_t>(frames) > u32_max / block_align ||
      header + data_padded - 8 > u32_max)
    throw ValueError("wav.16", detail::str("write WAV: ", frames, " frames x ", channels,
                                           " channels of ", spec.name, " at ", sample_rate,
                                           " Hz do not fit in a WAV header (32-bit sizes, "
                                           "16-bit block_align)"));
  const float* src = samples.data();
  const index_t n = frames * channels;
  if (!is_float)
    for (index_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        throw ValueError("wav.14", detail::str("write WAV as ", spec.name, ": sample ", i,
                                               " (frame ", i / channels, ", channel ",
                                               i % channels, ") is ", src[i],
                                               "; integer encodings need finite samples"));

  std::vector<std::uint8_t> out(static_cast<std::size_t>(header + data_padded), 0);
  std::uint8_t* p = out.data();
  auto put_tag = [&p](const char* tag) {
    std::memcpy(p, tag, 4);
    p += 4;
  };
  auto put = [&p](std::uint64_t v, int bytes) {
    w::store_le(p, v, bytes);
    p += bytes;
  };
  put_tag("RIFF");
  put(header + data_padded - 8, 4);
  put_tag("WAVE");
  put_tag("fmt ");
  put(fmt_bytes, 4);
  put(spec.format_tag, 2);
  put(static_cast<std::uint64_t>(channels), 2);
  put(static_cast<std::uint64_t>(sample_rate), 4);
  put(static_cast<std::uint64_t>(sample_rate) * block_align, 4);  // byte rate
  put(block_align, 2);
  put(static_cast<std::uint64_t>(spec.bits), 2);
  if (is_float) {
    put(0, 2);  // cbSize
    put_tag("fact");
    put(4, 4);
    put(static_cast<std::uint64_t>(frames), 4);
  }
  put_tag("data");
  put(data_bytes, 4);
  w::with_codec(spec.encoding, [&](auto codec) {
    using C = decltype(codec);
    for (index_t i = 0; i < n; ++i) C::write(p + i * C::bytes, src[i]);
  });
  return out;  // the pad byte (if any) is already zero
}

/// Writes samples [frames] or [frames, channels] to a WAV file (see encode_wav).
inline void write_wav(const std::string& path, TensorView<const float> samples, int sample_rate,
                      WavEncoding encoding = WavEncoding::pcm_s16) {
  detail::write_file(path, encode_wav(samples, sample_rate, encoding));
}

}  // namespace asrkit
