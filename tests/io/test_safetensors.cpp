#include <asrkit/io/safetensors.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::DType;
using asrkit::SafetensorsFile;
using asrkit::SafetensorsWriter;
using asrkit::Shape;
using asrkit::Tensor;
using Bytes = std::vector<std::uint8_t>;

namespace {

/// A file from a header text and a data section (no padding, so the data may be unaligned).
Bytes make_file(const std::string& header, const Bytes& data = {}) {
  Bytes out(8 + header.size() + data.size());
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i, n >>= 8)
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n);
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

template <class T>
Tensor<T> iota(const Shape& shape, double scale, double shift) {
  Tensor<T> t(shape);
  for (asrkit::index_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(i * scale + shift);
  return t;
}

template <class T, class U>
void check_equal(const Tensor<T>& a, const Tensor<U>& b) {
  REQUIRE(a.shape() == b.shape());
  for (asrkit::index_t i = 0; i < a.numel(); ++i)
    REQUIRE(static_cast<double>(a.data()[i]) == static_cast<double>(b.data()[i]));
}

/// A small valid file: two F32 tensors and metadata.
Bytes small_file() {
  SafetensorsWriter w;
  w.add("a", iota<float>({2, 3}, 1.0, 0.0));
  w.add("b", iota<float>({2}, -0.5, 1.0), DType::F16);
  w.set_metadata("k", "v");
  return w.to_bytes();
}

/// Resident memory of this process in bytes (0 where /proc is not available).
double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4096.0;
}

const std::string kOneF32 = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST_CASE("safetensors round trips every dtype and rank", "[io][safetensors]") {
  SafetensorsWriter w;
  const auto f_r0 = iota<float>(Shape{}, 0.0, 42.5);
  const auto f_r1 = iota<float>({7}, 0.25, -1.0);  // exact in F16 and BF16
  const auto f_r2 = iota<float>({3, 4}, 1.5, -8.0);
  const auto f_r3 = iota<float>({2, 3, 4}, 0.125, 0.0);
  const auto d_r4 = iota<double>({2, 1, 3, 2}, 0.1, -0.5);
  const auto i_r2 = iota<std::int32_t>({3, 2}, 7.0, -20.0);
  const auto l_r1 = iota<std::int64_t>({4}, 3e12, -5e12);
  const auto empty = iota<float>({0, 3}, 1.0, 0.0);
  w.add("f32_r0", f_r0);
  w.add("f16_r1", f_r1, DType::F16);
  w.add("bf16_r2", f_r2, DType::BF16);
  w.add("f32_r3", f_r3.view());
  w.add("f64_r4", d_r4);
  w.add("f16_from_double", d_r4, DType::F16);
  w.add("i32_r2", i_r2);
  w.add("i64_from_i32", i_r2, DType::I64);
  w.add("i64_r1", l_r1);
  w.add("i32_from_i64", iota<std::int64_t>({3}, 1.0, -1.0), DType::I32);
  w.add("empty", empty);
  w.set_metadata("format", "pt");
  w.set_metadata("note", "\xC3\xBC unicode");
  const Bytes bytes = w.to_bytes();

  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);  // data section aligned as the reference writer does

  const auto f = SafetensorsFile::parse(bytes);
  CHECK(f.size() == 11);
  CHECK_FALSE(f.memory_mapped());
  CHECK(f.metadata() ==
        std::map<std::string, std::string>{{"format", "pt"}, {"note", "\xC3\xBC unicode"}});
  check_equal(f.read<float>("f32_r0"), f_r0);
  check_equal(f.read<float>("f16_r1"), f_r1);
  check_equal(f.read<double>("f16_r1"), f_r1);
  check_equal(f.read<float>("bf16_r2"), f_r2);
  check_equal(f.read<float>("f32_r3"), f_r3);
  check_equal(f.read<double>("f64_r4"), d_r4);
  check_equal(f.read<std::int32_t>("i32_r2"), i_r2);
  check_equal(f.read<std::int64_t>("i32_r2"), i_r2);
  check_equal(f.read<std::int32_t>("i64_from_i32"), i_r2);
  check_equal(f.read<std::int64_t>("i64_r1"), l_r1);
  check_equal(f.read<std::int32_t>("i32_from_i64"), iota<std::int32_t>({3}, 1.0, -1.0));
  CHECK(f.read<float>("empty").shape() == Shape{0, 3});
  CHECK(f.info("f64_r4").dtype == DType::F64);
  CHECK(f.info("f64_r4").shape == std::vector<std::int64_t>{2, 1, 3, 2});
  CHECK(f.info("f32_r0").shape.empty());

  // F64 -> float rounds to nearest; double -> F16 is rounded once.
  const auto narrowed = f.read<float>("f64_r4");
  const auto halves = f.read<double>("f16_from_double");
  for (asrkit::index_t i = 0; i < d_r4.numel(); ++i) {
    CHECK(narrowed.data()[i] == static_cast<float>(d_r4.data()[i]));
    CHECK(halves.data()[i] == asrkit::half_to_float(asrkit::double_to_half(d_r4.data()[i])));
  }

  // Data order: 8-byte dtypes first, then 4, then 2; names in data order; each tensor aligned.
  const auto names = f.names();
  REQUIRE(names.size() == 11);
  CHECK(names.front() == "f64_r4");
  for (std::size_t i = 1; i < names.size(); ++i)
    CHECK(f.info(names[i - 1]).end == f.info(names[i]).begin);
  for (const auto& name : names) {
    CHECK(f.contains(name));
    const auto addr = reinterpret_cast<std::uintptr_t>(f.raw(name));
    CHECK(addr % asrkit::dtype_size(f.info(name).dtype) == 0);
  }
  float first;
  std::memcpy(&first, f.raw("f32_r3") + 4, 4);
  CHECK(first == 0.125f);
  CHECK_FALSE(f.contains("nope"));

  // Writing is deterministic: insertion order does not matter.
  SafetensorsWriter w2;
  w2.set_metadata("note", "\xC3\xBC unicode");
  w2.add("b", f_r1);
  w2.add("a", f_r2);
  SafetensorsWriter w3;
  w3.add("a", f_r2);
  w3.add("b", f_r1);
  w3.set_metadata("note", "\xC3\xBC unicode");
  CHECK(w2.to_bytes() == w3.to_bytes());
}

TEST_CASE("safetensors empty file and metadata-only file", "[io][safetensors]") {
  SafetensorsWriter w;
  auto f = SafetensorsFile::parse(w.to_bytes());
  CHECK(f.size() == 0);
  CHECK(f.metadata().empty());
  w.set_metadata("only", "meta");
  f = SafetensorsFile::parse(w.to_bytes());
  CHECK(f.names().empty());
  CHECK(f.metadata().at("only") == "meta");
}

TEST_CASE("safetensors save and open (mmap) round trip", "[io][safetensors]") {
  const std::string path = asrkit_test::data_path("st_roundtrip.safetensors");
  SafetensorsWriter w;
  const auto x = iota<float>({4, 5}, 0.5, -3.0);
  w.add("x", x, DType::BF16);
  w.set_metadata("m", "1");
  w.save(path);
  CHECK_FALSE(std::ifstream(path + ".tmp").good());
  const auto f = SafetensorsFile::open(path);
#if ASRKIT_DETAIL_SAFETENSORS_MMAP
  CHECK(f.memory_mapped());
#endif
  check_equal(f.read<float>("x"), x);
  CHECK(f.metadata().at("m") == "1");
  const Bytes expected = w.to_bytes();
  CHECK(asrkit_test::read_bytes(path) ==
        std::vector<unsigned char>(expected.begin(), expected.end()));
  // A copy shares the mapping and outlives the original.
  SafetensorsFile copy = f;
  {
    const SafetensorsFile gone = std::move(copy);
    check_equal(gone.read<float>("x"), x);
  }
  check_equal(f.read<float>("x"), x);
}

TEST_CASE("safetensors I/O errors", "[io][safetensors]") {
  REQUIRE_THROWS_ID(SafetensorsFile::open(asrkit_test::data_path("does/not/exist.safetensors")),
                    asrkit::IoError, "[asrkit.io.1] cannot open '");
  REQUIRE_THROWS_ID(SafetensorsFile::open(ASRKIT_TEST_DATA), asrkit::IoError, "[asrkit.io.1]");
  SafetensorsWriter w;
  REQUIRE_THROWS_ID(w.save(asrkit_test::data_path("no_such_dir/x.safetensors")), asrkit::IoError,
                    "[asrkit.io.1] cannot open '");
  const std::string empty = asrkit_test::data_path("st_empty.safetensors");
  asrkit_test::write_bytes(empty, {});
  REQUIRE_THROWS_ID(
      SafetensorsFile::open(empty), asrkit::FormatError,
      "[asrkit.safetensors.1] input is 0 bytes, too short for the 8-byte header length");
}

TEST_CASE("safetensors read errors", "[io][safetensors]") {
  SafetensorsWriter w;
  w.add("f", iota<float>({2}, 1.0, 0.0));
  w.add("big", iota<std::int64_t>({3}, 1.0, 2147483646.0));
  const auto f = SafetensorsFile::parse(w.to_bytes());
  REQUIRE_THROWS_ID(
      f.info("g"), asrkit::ValueError,
      "[asrkit.safetensors.16] no tensor named 'g'; the file has 2 tensor(s): 'big', 'f'");
  REQUIRE_THROWS_ID(f.raw("g"), asrkit::ValueError, "[asrkit.safetensors.16]");
  REQUIRE_THROWS_ID(f.read<float>("g"), asrkit::ValueError, "[asrkit.safetensors.16]");
  REQUIRE_THROWS_ID(
      f.read<std::int32_t>("f"), asrkit::ValueError,
      "[asrkit.safetensors.18] tensor 'f' is stored as F32; read it as float or double, "
      "not I32");
  REQUIRE_THROWS_ID(f.read<double>("big"), asrkit::ValueError, "[asrkit.safetensors.18]");
  REQUIRE_THROWS_ID(
      f.read<std::int32_t>("big"), asrkit::ValueError,
      "[asrkit.safetensors.19] tensor 'big' (I64): element 2 = 2147483648 does not fit");
  CHECK(f.read<std::int64_t>("big")(2) == 2147483648LL);

  // Rank 5 parses (the header is valid) but cannot be read into a Tensor.
  const auto r5 = SafetensorsFile::parse(
      make_file(R"({"r5":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", Bytes(8)));
  CHECK(r5.info("r5").shape.size() == 5);
  REQUIRE_THROWS_ID(r5.read<float>("r5"), asrkit::ShapeError,
                    "[asrkit.safetensors.17] tensor 'r5' has rank 5 (shape [1, 1, 1, 1, 2]); "
                    "read<T>() supports rank <= 4");
}

TEST_CASE("safetensors writer errors", "[io][safetensors]") {
  SafetensorsWriter w;
  w.add("x", iota<float>({2}, 1.0, 0.0));
  REQUIRE_THROWS_ID(w.add("x", iota<float>({2}, 1.0, 0.0)), asrkit::ValueError,
                    "[asrkit.safetensors.20] a tensor named 'x' was already added");
  REQUIRE_THROWS_ID(w.add("__metadata__", iota<float>({2}, 1.0, 0.0)), asrkit::ValueError,
                    "[asrkit.safetensors.21]");
  REQUIRE_THROWS_ID(w.add("y", iota<float>({2}, 1.0, 0.0), DType::I32), asrkit::ValueError,
                    "[asrkit.safetensors.18] tensor 'y': cannot store F32 values as I32");
  REQUIRE_THROWS_ID(w.add("y", iota<std::int32_t>({2}, 1.0, 0.0), DType::F16), asrkit::ValueError,
                    "[asrkit.safetensors.18]");
  REQUIRE_THROWS_ID(w.add("y", iota<std::int64_t>({2}, 1.0, -2147483649.0), DType::I32),
                    asrkit::ValueError,
                    "[asrkit.safetensors.19] tensor 'y': element 0 = -2147483649");
  REQUIRE_THROWS_ID(w.add("\xFF", iota<float>({2}, 1.0, 0.0)), asrkit::ValueError,
                    "[asrkit.safetensors.22] tensor name");
  REQUIRE_THROWS_ID(w.set_metadata("k", "\xC3"), asrkit::ValueError,
                    "[asrkit.safetensors.22] metadata value");
  CHECK(w.size() == 1);  // failed adds leave nothing behind
  CHECK(SafetensorsFile::parse(w.to_bytes()).names() == std::vector<std::string>{"x"});
}

TEST_CASE("safetensors rejects malformed headers with pinned ids", "[io][safetensors]") {
  using asrkit::FormatError;
  const auto parse = [](const Bytes& b) { return SafetensorsFile::parse(b); };
  REQUIRE_THROWS_ID(
      parse(Bytes{1, 0, 0}), FormatError,
      "[asrkit.safetensors.1] input is 3 bytes, too short for the 8-byte header length");
  Bytes huge(8, 0);
  huge[4] = 1;  // 2^32
  REQUIRE_THROWS_ID(
      parse(huge), FormatError,
      "[asrkit.safetensors.2] header length 4294967296 exceeds the limit of 100000000 bytes");
  Bytes beyond = make_file("{}");
  beyond[0] = 3;
  REQUIRE_THROWS_ID(
      parse(beyond), FormatError,
      "[asrkit.safetensors.3] header length 3 exceeds the 2 bytes that follow the length field");
  REQUIRE_THROWS_ID(parse(make_file("{\"t\": ")), FormatError,
                    "[asrkit.safetensors.4] header is not valid JSON: [json.exception.parse_error");
  REQUIRE_THROWS_ID(parse(make_file("{\"a\":\"\xFF\"}")), FormatError, "[asrkit.safetensors.4]");
  REQUIRE_THROWS_ID(
      parse(make_file(std::string(40, '[') + std::string(40, ']'))), FormatError,
      "[asrkit.safetensors.4] header is not valid JSON for safetensors: nested deeper");
  REQUIRE_THROWS_ID(parse(make_file("[]")), FormatError,
                    "[asrkit.safetensors.5] header must be a JSON object, got array");
  REQUIRE_THROWS_ID(parse(make_file("{" + kOneF32 + "," + kOneF32 + "}", Bytes(8))), FormatError,
                    "[asrkit.safetensors.5] header has the key 't' twice in one object");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                      Bytes(4))),
      FormatError, "[asrkit.safetensors.5] header has the key 'dtype' twice");
  REQUIRE_THROWS_ID(parse(make_file(R"({"__metadata__":[]})")), FormatError,
                    "[asrkit.safetensors.6] __metadata__ must be an object of strings, got array");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"__metadata__":{"a":1}})")), FormatError,
      "[asrkit.safetensors.6] __metadata__ value of 'a' must be a string, got number");
  REQUIRE_THROWS_ID(parse(make_file(R"({"t":[1]})")), FormatError,
                    "[asrkit.safetensors.7] entry of tensor 't' must be an object, got array");
  REQUIRE_THROWS_ID(parse(make_file(R"({"t":{"shape":[],"data_offsets":[0,4]}})", Bytes(4))),
                    FormatError, "[asrkit.safetensors.7] tensor 't' has no \"dtype\"");
  REQUIRE_THROWS_ID(parse(make_file(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", Bytes(4))),
                    FormatError, "[asrkit.safetensors.7] tensor 't' has no \"shape\"");
  REQUIRE_THROWS_ID(parse(make_file(R"({"t":{"dtype":"F32","shape":[]}})", Bytes(4))), FormatError,
                    "[asrkit.safetensors.7] tensor 't' has no \"data_offsets\"");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":5,"shape":[],"data_offsets":[0,4]}})", Bytes(4))),
      FormatError, "[asrkit.safetensors.7] tensor 't': \"dtype\" must be a string, got number");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})", Bytes(4))),
      FormatError, "[asrkit.safetensors.7] tensor 't': \"shape\" must be an array, got object");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[],"data_offsets":"0"}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.7] tensor 't': \"data_offsets\" must be an array, got string");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.8] tensor 't' has unknown dtype 'U8'; expected F16, BF16, F32, F64, I32 "
      "or I64");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.9] tensor 't': shape[0] must be a non-negative integer, got -1");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.9] tensor 't': shape[0] must be a non-negative integer, got 1.0");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[2,"3"],"data_offsets":[0,4]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.9] tensor 't': shape[1] must be a non-negative integer, got \"3\"");
  REQUIRE_THROWS_ID(
      parse(
          make_file(R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})",
                    Bytes(4))),
      FormatError, "[asrkit.safetensors.10]");
  REQUIRE_THROWS_ID(
      parse(
          make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                    Bytes(4))),
      FormatError, "[asrkit.safetensors.10] tensor 't': the element count");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})",
                      Bytes(4))),
      FormatError, "[asrkit.safetensors.10] tensor 't': the byte size");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.11] tensor 't': data_offsets must be [begin, end] "
      "with integers 0 <= begin <= end, got 1 element(s)");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.11] tensor 't': data_offsets must be [begin, end] "
      "with integers 0 <= begin <= end, got [4, 0]");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", Bytes(4))),
      FormatError, "[asrkit.safetensors.11]");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", Bytes(4))),
      FormatError, "[asrkit.safetensors.11]");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", Bytes(4))),
      FormatError,
      "[asrkit.safetensors.12] tensor 't': data_offsets end 8 is beyond the data "
      "section (4 bytes)");
  REQUIRE_THROWS_ID(
      parse(
          make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}})",
                    Bytes(4))),
      FormatError, "[asrkit.safetensors.12]");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", Bytes(8))),
      FormatError,
      "[asrkit.safetensors.13] tensor 't': shape [3] of F16 needs 6 bytes, "
      "data_offsets [0, 8] hold 8");
  REQUIRE_THROWS_ID(parse(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    Bytes(8))),
                    FormatError,
                    "[asrkit.safetensors.14] tensors 'a' [0, 8) and 'b' [4, 8) overlap");
  REQUIRE_THROWS_ID(parse(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                    Bytes(8))),
                    FormatError, "[asrkit.safetensors.14]");
  REQUIRE_THROWS_ID(parse(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                                    Bytes(8))),
                    FormatError, "[asrkit.safetensors.14]");
  REQUIRE_THROWS_ID(
      parse(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", Bytes(8))),
      FormatError,
      "[asrkit.safetensors.15] data section bytes [0, 4) belong to no tensor "
      "('t' starts at 4, expected 0)");
  REQUIRE_THROWS_ID(
      parse(make_file("{" + kOneF32 + "}", Bytes(12))), FormatError,
      "[asrkit.safetensors.15] data section has 4 trailing byte(s) after the last tensor: "
      "expected 8 bytes, got 12");
  REQUIRE_THROWS_ID(parse(make_file("{}", Bytes(1))), FormatError, "[asrkit.safetensors.15]");

  // Hostile values never blow up the message.
  const std::string long_dtype(1000, 'X');
  try {
    parse(make_file(R"({"t":{"dtype":")" + long_dtype + R"(","shape":[],"data_offsets":[0,4]}})",
                    Bytes(4)));
    FAIL("expected FormatError");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).size() < 300);
    CHECK(e.id() == "asrkit.safetensors.8");
  }
}

TEST_CASE("safetensors accepts what the format allows", "[io][safetensors]") {
  // Unpadded header: data starts at an odd offset; reads go through memcpy (UBSan checks).
  const Bytes data = {0, 0, 128, 63, 0, 0, 0, 64, 0, 60};  // F32 1, 2 and F16 1
  const auto f = SafetensorsFile::parse(make_file(
      R"({"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}, "t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"( "z":{"dtype":"I64","shape":[0,5],"data_offsets":[10,10]}, "extra_key_ignored":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1}})",
      data));
  CHECK(f.names() == std::vector<std::string>{"extra_key_ignored", "t", "h", "z"});
  const auto t = f.read<double>("t");
  CHECK(t(0) == 1.0);
  CHECK(t(1) == 2.0);
  CHECK(f.read<float>("h")(0) == 1.0f);
  CHECK(f.read<std::int64_t>("z").shape() == Shape{0, 5});
}

TEST_CASE("safetensors: every truncation of a valid file is a FormatError", "[io][safetensors]") {
  const Bytes full = small_file();
  REQUIRE_NOTHROW(SafetensorsFile::parse(full));
  for (std::size_t n = 0; n < full.size(); ++n) {
    INFO("prefix length " << n);
    REQUIRE_THROWS_AS(
        SafetensorsFile::parse(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))),
        asrkit::FormatError);
  }
  // Flipping any one byte never crashes; the result is a valid file or an asrkit::Error.
  for (std::size_t i = 0; i < full.size(); ++i) {
    for (std::uint8_t x : {0x01, 0x80, 0xFF}) {
      Bytes b = full;
      b[i] ^= x;
      try {
        const auto f = SafetensorsFile::parse(b);
        for (const auto& name : f.names())
          (void)(asrkit::dtype_is_float(f.info(name).dtype) ? f.read<float>(name).numel()
                                                            : f.read<std::int64_t>(name).numel());
      } catch (const asrkit::Error&) {
      }
    }
  }
}

TEST_CASE("safetensors maps a 1 GB file without reading it", "[io][safetensors]") {
  const std::string path = asrkit_test::data_path("st_sparse_1gb.safetensors");
  const std::int64_t big = (std::int64_t{1} << 28);  // F32: 1 GiB
  std::string header = R"({"big":{"dtype":"F32","shape":[)" + std::to_string(big) +
                       R"(],"data_offsets":[16,)" + std::to_string(16 + big * 4) +
                       R"(]},"small":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  Bytes head = make_file(header, {0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64});
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(head.data()),
              static_cast<std::streamsize>(head.size()));
    // Extend to the full size without writing: a sparse file on most file systems.
    out.seekp(static_cast<std::streamoff>(head.size() + big * 4 - 1));
    out.put('\0');
    REQUIRE(out.good());
  }
  const double rss0 = resident_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  const auto f = SafetensorsFile::open(path);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  WARN("opened a 1 GiB safetensors file in " << ms << " ms");
  CHECK(ms < 500.0);
  CHECK(resident_bytes() - rss0 < 64.0 * 1024 * 1024);  // nothing like 1 GiB was copied
  REQUIRE(f.info("big").end - f.info("big").begin == std::size_t{1} << 30);
  const auto small = f.read<float>("small");
  CHECK(small(3) == 4.0f);
#if ASRKIT_DETAIL_SAFETENSORS_MMAP
  CHECK(f.memory_mapped());
  // raw() points into the one mapping: consecutive tensors are exactly their offsets apart.
  CHECK(f.raw("big") - f.raw("small") == 16);
  float last;
  std::memcpy(&last, f.raw("big") + (big - 1) * 4, 4);  // touches one page only
  CHECK(last == 0.0f);
#endif
  std::remove(path.c_str());
}
