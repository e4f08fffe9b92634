// asrkit/io/file.hpp - whole-file reads and writes shared by the parsers (WAV, safetensors,
// ARPA): IoError asrkit.io.1 when a file cannot be opened, asrkit.io.2 when reading or
// writing fails, each naming the path and the operating system's reason.
#pragma once

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asrkit/core/error.hpp>

namespace asrkit {
namespace detail {

inline std::string os_error(int err) { return std::generic_category().message(err); }

inline std::vector<std::uint8_t> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw IoError("io.1", detail::str("cannot open '", path, "' for reading: ", os_error(errno)));
  std::vector<std::uint8_t> bytes;
  std::uint8_t buf[1 << 16];
  std::size_t got;
  errno = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool failed = std::ferror(f) != 0;
  const int err = errno != 0 ? errno : EIO;
  std::fclose(f);
  if (failed) throw IoError("io.2", detail::str("cannot read '", path, "': ", os_error(err)));
  return bytes;
}

inline void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr)
    throw IoError("io.1", detail::str("cannot open '", path, "' for writing: ", os_error(errno)));
  errno = 0;
  const bool wrote = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  int err = wrote ? 0 : (errno != 0 ? errno : EIO);
  if (std::fclose(f) != 0 && err == 0) err = errno != 0 ? errno : EIO;
  if (err != 0) throw IoError("io.2", detail::str("cannot write '", path, "': ", os_error(err)));
}

/// The whitespace-separated (space, tab) fields of a line, as views into it.
inline std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (std::size_t pos = 0;;) {
    const std::size_t start = line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) return out;
    pos = std::min(line.find_first_of(" \t", start), line.size());
    out.push_back(line.substr(start, pos - start));
  }
}

/// Calls f(line_number, line) for every line of a text file (1-based; '\n' or "\r\n" endings,
/// the terminator not included; no empty last line after a final newline).
template <class F>
void for_each_line(const std::string& path, F&& f) {
  const auto bytes = read_file(path);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::size_t pos = 0, line = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view l = text.substr(pos, eol - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    f(++line, l);
    pos = eol + 1;
  }
}

}  // namespace detail
}  // namespace asrkit
