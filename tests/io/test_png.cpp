// io/png.hpp: the file structure (signature, IHDR fields, chunk CRCs), the stored zlib stream
// (stored deflate blocks, Adler-32) decoded back to the rows, multi-block images; the run-length
// stream's header, block type and size (Python's zlib decodes it in tests/tools/test_svcca_cli.py);
// errors.
#include <asrkit/io/png.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {

std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t(b[at]) << 24) | (std::uint32_t(b[at + 1]) << 16) | (std::uint32_t(b[at + 2]) << 8) | b[at + 3];
}

struct Chunk {
  std::string type;
  std::vector<std::uint8_t> data;
};

// Splits a PNG into chunks, checking the signature and every CRC.
std::vector<Chunk> chunks(const std::vector<std::uint8_t>& png) {
  const std::vector<std::uint8_t> sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(std::vector<std::uint8_t>(png.begin(), png.begin() + 8) == sig);
  std::vector<Chunk> out;
  for (std::size_t at = 8; at < png.size();) {
    const std::uint32_t len = be32(png, at);
    REQUIRE(at + 12 + len <= png.size());
    Chunk c{std::string(png.begin() + long(at) + 4, png.begin() + long(at) + 8),
            std::vector<std::uint8_t>(png.begin() + long(at) + 8, png.begin() + long(at) + 8 + len)};
    CHECK(be32(png, at + 8 + len) == asrkit::detail::png::crc32(png.data() + at + 4, len + 4));
    out.push_back(c);
    at += 12 + len;
  }
  return out;
}

// Inflates a zlib stream made only of stored blocks.
std::vector<std::uint8_t> inflate_stored(const std::vector<std::uint8_t>& z) {
  REQUIRE(z.size() >= 6);
  CHECK((z[0] * 256 + z[1]) % 31 == 0);
  CHECK((z[0] & 0x0F) == 8);  // deflate
  std::vector<std::uint8_t> raw;
  std::size_t at = 2;
  for (bool last = false; !last;) {
    REQUIRE(at + 5 <= z.size());
    last = z[at] & 1;
    REQUIRE((z[at] >> 1) == 0);  // BTYPE 00
    const std::size_t n = z[at + 1] | (z[at + 2] << 8), nn = z[at + 3] | (z[at + 4] << 8);
    REQUIRE((n ^ 0xFFFF) == nn);
    raw.insert(raw.end(), z.begin() + long(at) + 5, z.begin() + long(at + 5 + n));
    at += 5 + n;
  }
  REQUIRE(at + 4 == z.size());
  CHECK(be32(z, at) == asrkit::detail::png::adler32(raw.data(), raw.size()));
  return raw;
}

}  // namespace

TEST_CASE("CRC-32 and Adler-32 match their published check values", "[io][png]") {
  const std::string s = "123456789";
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  CHECK(asrkit::detail::png::crc32(p, s.size()) == 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
  const std::string iend = "IEND";
  CHECK(asrkit::detail::png::crc32(reinterpret_cast<const std::uint8_t*>(iend.data()), 4) == 0xAE426082u);
  const std::string w = "Wikipedia";
  CHECK(asrkit::detail::png::adler32(reinterpret_cast<const std::uint8_t*>(w.data()), w.size()) == 0x11E60398u);
}

TEST_CASE("encode_png (stored) writes IHDR, stored-deflate IDAT and IEND", "[io][png]") {
  for (long width : {3L, 200L}) {  // 200 x 150 x 3 bytes spans several 64 KiB stored blocks
    const long height = width == 3 ? 2 : 150;
    INFO("width " << width);
    std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width * height * 3));
    for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>(i * 7 + i / 3);
    const auto png = asrkit::encode_png(width, height, rgb, false);
    const auto cs = chunks(png);
    REQUIRE(cs.size() == 3);
    CHECK(cs[0].type == "IHDR");
    CHECK(cs[1].type == "IDAT");
    CHECK(cs[2].type == "IEND");
    REQUIRE(cs[0].data.size() == 13);
    CHECK(be32(cs[0].data, 0) == std::uint32_t(width));
    CHECK(be32(cs[0].data, 4) == std::uint32_t(height));
    CHECK(std::vector<std::uint8_t>(cs[0].data.begin() + 8, cs[0].data.end()) == std::vector<std::uint8_t>{8, 2, 0, 0, 0});
    const auto raw = inflate_stored(cs[1].data);
    REQUIRE(raw.size() == static_cast<std::size_t>((width * 3 + 1) * height));
    for (long y = 0; y < height; ++y) {
      const std::size_t row = static_cast<std::size_t>(y * (width * 3 + 1));
      REQUIRE(raw[row] == 0);  // filter none
      REQUIRE(std::equal(raw.begin() + long(row) + 1, raw.begin() + long(row) + 1 + width * 3,
                         rgb.begin() + y * width * 3));
    }
  }
}

TEST_CASE("encode_png (compressed) codes flat images in a few bytes", "[io][png]") {
  const long width = 120, height = 80;
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width * height * 3));
  for (long y = 0; y < height; ++y)  // 4 x 4 flat cells
    for (long x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[static_cast<std::size_t>((y * width + x) * 3 + c)] = static_cast<std::uint8_t>(40 * (x / 30) + 60 * (y / 20) + c);
  const auto png = asrkit::encode_png(width, height, rgb);
  const auto cs = chunks(png);  // signature and CRCs
  REQUIRE(cs.size() == 3);
  CHECK(cs[0].data == chunks(asrkit::encode_png(width, height, rgb, false))[0].data);  // same IHDR
  const auto& z = cs[1].data;
  CHECK((z[0] * 256 + z[1]) % 31 == 0);
  CHECK((z[2] & 0x07) == 0x03);  // BFINAL = 1, BTYPE = 01 (fixed Huffman)
  CHECK(z.size() < rgb.size() / 40);
  // the Adler-32 trailer is that of the filtered rows: row 0 "None", then "Up" (differences)
  std::vector<std::uint8_t> raw;
  for (long y = 0; y < height; ++y) {
    raw.push_back(y ? 2 : 0);
    for (long i = 0; i < width * 3; ++i) {
      const std::size_t at = static_cast<std::size_t>(y * width * 3 + i);
      raw.push_back(static_cast<std::uint8_t>(rgb[at] - (y ? rgb[at - static_cast<std::size_t>(width * 3)] : 0)));
    }
  }
  CHECK(be32(z, z.size() - 4) == asrkit::detail::png::adler32(raw.data(), raw.size()));
}

TEST_CASE("encode_png and write_png errors", "[io][png][errors]") {
  REQUIRE_THROWS_ID(asrkit::encode_png(0, 2, {}), asrkit::ValueError, "[asrkit.png.1]");
  REQUIRE_THROWS_ID(asrkit::encode_png(2, 2, std::vector<std::uint8_t>(11)), asrkit::ValueError,
                    "[asrkit.png.1] encode_png: argument rgb: expected 2 x 2 x 3 = 12 bytes, got 11");
  REQUIRE_THROWS_ID(asrkit::write_png("/nonexistent-dir/a.png", 1, 1, {1, 2, 3}), asrkit::IoError, "[asrkit.io.1]");
}
