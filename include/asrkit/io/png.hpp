// asrkit/io/png.hpp - a minimal dependency-free PNG writer (8-bit RGB).
//
//   std::vector<std::uint8_t> rgb(width * height * 3);            // row-major, R G B per pixel
//   asrkit::write_png("out.png", width, height, rgb);              // IoError io.1 / io.2
//   std::vector<std::uint8_t> bytes = asrkit::encode_png(width, height, rgb);
//
// The file is the PNG signature, an IHDR chunk (8-bit truecolour, no interlace), one IDAT chunk
// and IEND (PNG spec, ISO/IEC 15948, sections 5 and 11). IDAT holds a zlib stream (RFC 1950:
// header, Adler-32 trailer) of the rows, each prefixed with its filter type. Chunks carry the
// CRC-32 of ISO 3309 (polynomial 0xEDB88320, reflected), the table computed at first use.
// Two encodings of the rows (RFC 1951):
// - compressed (default): rows after the first use the "Up" filter (byte minus the byte above),
//   and one fixed-Huffman deflate block codes every run of bytes equal to those one pixel (3
//   bytes) earlier as a distance-3 match (a run-length code). Plots made of flat cells (heatmaps)
//   shrink ~50x; this is not a general-purpose compressor.
// - stored: filter "None" and uncompressed "stored" blocks of up to 65535 bytes.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/io/file.hpp>

namespace asrkit {
namespace detail {
namespace png {

inline std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

inline std::uint32_t adler32(const std::uint8_t* p, std::size_t n) {
  constexpr std::uint32_t kMod = 65521;
  std::uint32_t a = 1, b = 0;
  for (std::size_t i = 0; i < n; ++i) {
    a = (a + p[i]) % kMod;
    b = (b + a) % kMod;
  }
  return (b << 16) | a;
}

inline void put_u32_be(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// length, type, data, CRC-32 of type + data
inline void put_chunk(std::vector<std::uint8_t>& out, const char* type, const std::vector<std::uint8_t>& data) {
  put_u32_be(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32_be(out, crc32(out.data() + start, out.size() - start));
}

// LSB-first bit packing for deflate (RFC 1951 §3.1.1).
class BitWriter {
 public:
  explicit BitWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void bits(std::uint32_t value, int count) {  // value's low `count` bits, LSB first
    for (int i = 0; i < count; ++i) bit((value >> i) & 1u);
  }
  void huffman(std::uint32_t code, int length) {  // Huffman codes go MSB first
    for (int i = length - 1; i >= 0; --i) bit((code >> i) & 1u);
  }
  void flush() {
    if (used_) out_.push_back(acc_);
    acc_ = 0, used_ = 0;
  }

 private:
  void bit(std::uint32_t b) {
    acc_ = static_cast<std::uint8_t>(acc_ | (b << used_));
    if (++used_ == 8) flush();
  }
  std::vector<std::uint8_t>& out_;
  std::uint8_t acc_ = 0;
  int used_ = 0;
};

// A literal/length symbol in the fixed Huffman code (RFC 1951 §3.2.6).
inline void fixed_symbol(BitWriter& w, int symbol) {
  if (symbol < 144) w.huffman(0x30 + symbol, 8);
  else if (symbol < 256) w.huffman(0x190 + (symbol - 144), 9);
  else if (symbol < 280) w.huffman(symbol - 256, 7);
  else w.huffman(0xC0 + (symbol - 280), 8);
}

// A match of `length` (3..258) at distance 3: length code + extra bits (RFC 1951 §3.2.5), then
// distance code 2 (5 bits, no extra bits).
inline void distance3_match(BitWriter& w, int length) {
  if (length == 258) {
    fixed_symbol(w, 285);
  } else {
    const auto extra_bits = [](int code) { return code < 265 ? 0 : (code - 261) / 4; };
    int code = 257, base = 3;  // code c covers [base, base + 2^extra_bits(c))
    while (code < 284 && length >= base + (1 << extra_bits(code))) base += 1 << extra_bits(code++);
    fixed_symbol(w, code);
    w.bits(static_cast<std::uint32_t>(length - base), extra_bits(code));
  }
  w.huffman(2, 5);
}

// zlib stream of one fixed-Huffman block: literals, and distance-3 matches for repeats.
inline std::vector<std::uint8_t> zlib_runs(const std::vector<std::uint8_t>& raw) {
  std::vector<std::uint8_t> z = {0x78, 0x01};
  BitWriter w(z);
  w.bits(1, 1);  // BFINAL
  w.bits(1, 2);  // BTYPE = 01, fixed Huffman codes
  const std::size_t n = raw.size();
  for (std::size_t i = 0; i < n;) {
    std::size_t run = 0;
    if (i >= 3)
      while (i + run < n && run < 258 && raw[i + run] == raw[i + run - 3]) ++run;
    if (run >= 3) {
      distance3_match(w, static_cast<int>(run));
      i += run;
    } else {
      fixed_symbol(w, raw[i++]);
    }
  }
  fixed_symbol(w, 256);  // end of block
  w.flush();
  put_u32_be(z, adler32(raw.data(), raw.size()));
  return z;
}

// zlib stream of stored deflate blocks.
inline std::vector<std::uint8_t> zlib_stored(const std::vector<std::uint8_t>& raw) {
  std::vector<std::uint8_t> z = {0x78, 0x01};  // deflate, 32K window; 0x7801 % 31 == 0
  constexpr std::size_t kBlock = 65535;
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min(kBlock, raw.size() - pos);
    const bool last = pos + n == raw.size();
    z.push_back(last ? 1 : 0);  // BFINAL, BTYPE = 00 (stored)
    z.push_back(static_cast<std::uint8_t>(n & 0xFF));
    z.push_back(static_cast<std::uint8_t>(n >> 8));
    z.push_back(static_cast<std::uint8_t>(~n & 0xFF));
    z.push_back(static_cast<std::uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < raw.size());
  put_u32_be(z, adler32(raw.data(), raw.size()));
  return z;
}

}  // namespace png
}  // namespace detail

/// The bytes of a PNG file of an 8-bit RGB image (rgb: height rows of width R, G, B triples),
/// run-length compressed or (compress = false) stored. Throws ValueError png.1 when a size is
/// outside [1, 16384] or rgb does not hold width·height·3 bytes.
inline std::vector<std::uint8_t> encode_png(long width, long height, const std::vector<std::uint8_t>& rgb,
                                            bool compress = true) {
  constexpr long kMaxSide = 1L << 14;  // keeps the one IDAT chunk far below its 2^31 - 1 bytes
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
    throw ValueError("png.1", detail::str("encode_png: width and height must be in [1, ", kMaxSide, "], got ", width,
                                          " x ", height));
  const std::size_t row = static_cast<std::size_t>(width) * 3;
  if (rgb.size() != row * static_cast<std::size_t>(height))
    throw ValueError("png.1", detail::str("encode_png: argument rgb: expected ", width, " x ", height,
                                          " x 3 = ", row * static_cast<std::size_t>(height), " bytes, got ", rgb.size()));
  std::vector<std::uint8_t> raw;
  raw.reserve((row + 1) * static_cast<std::size_t>(height));
  for (long y = 0; y < height; ++y) {
    const std::uint8_t* cur = rgb.data() + static_cast<std::size_t>(y) * row;
    const std::uint8_t* above = y > 0 ? cur - row : cur;
    const bool up = compress && y > 0;
    raw.push_back(up ? 2 : 0);  // filter type: Up or None
    for (std::size_t i = 0; i < row; ++i) raw.push_back(up ? static_cast<std::uint8_t>(cur[i] - above[i]) : cur[i]);
  }
  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> ihdr;
  detail::png::put_u32_be(ihdr, static_cast<std::uint32_t>(width));
  detail::png::put_u32_be(ihdr, static_cast<std::uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, truecolour, deflate, filter 0, no interlace
  detail::png::put_chunk(out, "IHDR", ihdr);
  detail::png::put_chunk(out, "IDAT", compress ? detail::png::zlib_runs(raw) : detail::png::zlib_stored(raw));
  detail::png::put_chunk(out, "IEND", {});
  return out;
}

/// Writes an 8-bit RGB image as a PNG file (IoError io.1 / io.2 when the file cannot be written).
inline void write_png(const std::string& path, long width, long height, const std::vector<std::uint8_t>& rgb,
                      bool compress = true) {
  detail::write_file(path, encode_png(width, height, rgb, compress));
}

}  // namespace asrkit
