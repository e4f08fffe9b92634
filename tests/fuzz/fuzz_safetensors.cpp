// libFuzzer target: SafetensorsFile::parse on arbitrary bytes, then read every tensor. Only
// asrkit::Error may escape the library; anything else (crash, sanitizer report, other
// exception) is a finding.
#include <asrkit/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = asrkit::SafetensorsFile::parse(std::vector<std::uint8_t>(data, data + size));
    (void)file.metadata();
    for (const auto& name : file.names()) {
      const asrkit::TensorInfo& info = file.info(name);
      (void)file.raw(name);
      if (asrkit::dtype_is_float(info.dtype))
        (void)file.read<float>(name);
      else
        (void)file.read<std::int64_t>(name);
    }
  } catch (const asrkit::Error&) {
  }
  return 0;
}
