// asrkit/io/sndfile.hpp - reading any format libsndfile knows (FLAC, OGG/Vorbis, WAV, AIFF...).
//
//   // link asrkit::sndfile (it defines ASRKIT_WITH_SNDFILE and links libsndfile)
//   asrkit::Audio a = asrkit::read_audio("utt.flac");          // samples: [frames], mono mix
//   asrkit::Audio s = asrkit::read_audio("utt.ogg", {false});   // [frames, channels]
//
// Without ASRKIT_WITH_SNDFILE this header declares nothing, so it can be included everywhere.
#pragma once

#if defined(ASRKIT_WITH_SNDFILE)

#include <sndfile.h>

#include <cstring>
#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/wav.hpp>

namespace asrkit {
namespace detail {
namespace sndfile {

// Closes the SNDFILE on every path out of read_audio.
class Handle {
 public:
  explicit Handle(SNDFILE* f) noexcept : f_(f) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (f_ != nullptr) sf_close(f_);
  }
  SNDFILE* get() const noexcept { return f_; }

 private:
  SNDFILE* f_;
};

// The closest WavEncoding to libsndfile's subtype; compressed codecs decode to float32.
inline WavEncoding encoding_of(int format) noexcept {
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8: return WavEncoding::pcm_u8;
    case SF_FORMAT_PCM_16: return WavEncoding::pcm_s16;
    case SF_FORMAT_PCM_24: return WavEncoding::pcm_s24;
    case SF_FORMAT_PCM_32: return WavEncoding::pcm_s32;
    case SF_FORMAT_DOUBLE: return WavEncoding::float64;
    default: return WavEncoding::float32;
  }
}

}  // namespace sndfile
}  // namespace detail

/// Reads an audio file through libsndfile; samples are floats (integer PCM scaled to [-1, 1)
/// by libsndfile's normalisation, which matches asrkit's WAV scaling). `encoding` says the
/// file's sample format (compressed formats report float32). Throws IoError "io.1" when the
/// file cannot be opened, FormatError "sndfile.1" when libsndfile does not recognise it and
/// "sndfile.2" when decoding fails part way.
inline Audio read_audio(const std::string& path, const WavReadOptions& options = {}) {
  SF_INFO info;
  std::memset(&info, 0, sizeof info);
  detail::sndfile::Handle file(sf_open(path.c_str(), SFM_READ, &info));
  if (file.get() == nullptr) {
    const int err = sf_error(nullptr);
    const char* why = sf_strerror(nullptr);
    if (err == SF_ERR_SYSTEM)
      throw IoError("io.1", detail::str("cannot open '", path, "' for reading: ", why));
    throw FormatError("sndfile.1", detail::str("libsndfile cannot read '", path, "': ", why));
  }
  if (info.channels < 1 || info.samplerate < 1)
    throw FormatError("sndfile.1", detail::str("libsndfile reports ", info.channels,
                                                " channels at ", info.samplerate, " Hz for '",
                                                path, "'; expected >= 1 of each"));
  const auto channels = static_cast<index_t>(info.channels);
  // Read in blocks rather than trusting info.frames (unknown or estimated for some formats),
  // so a lying header cannot make us allocate more than the data decodes to.
  std::vector<float> interleaved;
  const sf_count_t block = 16384;
  std::vector<float> buf(static_cast<std::size_t>(block * channels));
  while (true) {
    const sf_count_t got = sf_readf_float(file.get(), buf.data(), block);
    if (got <= 0) break;
    interleaved.insert(interleaved.end(), buf.begin(), buf.begin() + got * channels);
  }
  if (sf_error(file.get()) != SF_ERR_NO_ERROR)
    throw FormatError("sndfile.2", detail::str("libsndfile failed decoding '", path, "' after ",
                                                static_cast<index_t>(interleaved.size()) / channels,
                                                " frames: ", sf_strerror(file.get())));
  const index_t frames = static_cast<index_t>(interleaved.size()) / channels;

  Audio audio;
  audio.sample_rate = info.samplerate;
  audio.num_channels = info.channels;
  audio.encoding = detail::sndfile::encoding_of(info.format);
  if (!options.downmix) {
    audio.samples = Tensor<float>(TensorView<const float>(interleaved.data(), {frames, channels}));
  } else {
    audio.samples = Tensor<float>(Shape{frames});
    const float* src = interleaved.data();
    detail::wav::mix_down(frames, channels, [src](index_t i) { return src[i]; },
                          audio.samples.data());
  }
  return audio;
}

}  // namespace asrkit

#endif  // ASRKIT_WITH_SNDFILE
