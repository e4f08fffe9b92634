// libFuzzer target for the WAV reader: any input must decode or throw an asrkit::Error; ASan and
// UBSan catch everything else (out-of-bounds reads, overflow, huge allocations).
#include <asrkit/io/wav.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const asrkit::WavInfo info = asrkit::probe_wav(data, size);
    for (bool downmix : {true, false}) {
      const asrkit::Audio a = asrkit::decode_wav(data, size, {downmix});
      // The header and the decoded samples must agree.
      const asrkit::index_t expected = downmix ? info.num_frames
                                               : info.num_frames * info.num_channels;
      if (a.samples.numel() != expected || a.num_channels != info.num_channels ||
          a.sample_rate != info.sample_rate || a.encoding != info.encoding)
        __builtin_trap();
    }
  } catch (const asrkit::Error&) {
  }
  return 0;
}
