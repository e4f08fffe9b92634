// asrkit's safetensors reader and writer against files made / checked by safetensors_reference.py
// (torch + numpy, no asrkit): reading what Python wrote gives the values Python computed, the
// F16/BF16 narrowing matches torch bit for bit, and Python reads back what asrkit writes
// (parity:safetensors:check).
#include <asrkit/io/safetensors.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include "../test_util.hpp"

using asrkit::DType;
using asrkit::SafetensorsFile;

namespace {

bool same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

}  // namespace

TEST_CASE("asrkit reads the tensors torch wrote", "[parity][safetensors]") {
  const auto f = SafetensorsFile::open(asrkit_test::data_path("st_from_python.safetensors"));
  const auto expected =
      SafetensorsFile::open(asrkit_test::data_path("st_from_python_expected.safetensors"));
  CHECK(f.metadata() == expected.metadata());
  CHECK(f.metadata().at("source") == "asrkit parity \xC3\xBC");
  REQUIRE(f.size() == 10);
  for (const std::string& name : f.names()) {
    INFO("tensor " << name);
    const asrkit::TensorInfo& info = f.info(name);
    REQUIRE(expected.contains(name));
    CHECK(info.shape == expected.info(name).shape);
    if (asrkit::dtype_is_float(info.dtype)) {
      const auto got = f.read<double>(name);
      const auto want = expected.read<double>(name);
      REQUIRE(got.shape() == want.shape());
      for (asrkit::index_t i = 0; i < got.numel(); ++i)
        REQUIRE(same(got.data()[i], want.data()[i]));
      const auto got_f = f.read<float>(name);
      for (asrkit::index_t i = 0; i < got.numel(); ++i)
        REQUIRE(same(got_f.data()[i], static_cast<float>(want.data()[i])));
    } else {
      const auto got = f.read<std::int64_t>(name);
      const auto want = expected.read<std::int64_t>(name);
      REQUIRE(got.shape() == want.shape());
      for (asrkit::index_t i = 0; i < got.numel(); ++i) REQUIRE(got.data()[i] == want.data()[i]);
      if (info.dtype == DType::I32) {
        const auto got32 = f.read<std::int32_t>(name);
        for (asrkit::index_t i = 0; i < got.numel(); ++i)
          REQUIRE(got32.data()[i] == want.data()[i]);
      }
    }
  }
  CHECK(f.info("bf16_r4").dtype == DType::BF16);
  CHECK(f.info("i32_r0").shape.empty());
}

TEST_CASE("float -> F16 / BF16 rounding matches torch bit for bit", "[parity][safetensors]") {
  const auto expected =
      SafetensorsFile::open(asrkit_test::data_path("st_from_python_expected.safetensors"));
  const auto x = expected.read<float>("rounding_f32");
  const std::uint8_t* f16 = expected.raw("rounding_f16");
  const std::uint8_t* bf16 = expected.raw("rounding_bf16");
  REQUIRE(x.numel() > 4000);
  for (asrkit::index_t i = 0; i < x.numel(); ++i) {
    const auto at = static_cast<std::size_t>(i) * 2;
    const auto want_h = static_cast<std::uint16_t>(f16[at] | (f16[at + 1] << 8));
    const auto want_b = static_cast<std::uint16_t>(bf16[at] | (bf16[at + 1] << 8));
    INFO("value " << x.data()[i] << " (index " << i << ")");
    REQUIRE(asrkit::float_to_half(x.data()[i]) == want_h);
    REQUIRE(asrkit::float_to_bfloat16(x.data()[i]) == want_b);
  }
}

TEST_CASE("asrkit writes a file for Python to check", "[parity][safetensors]") {
  asrkit::SafetensorsWriter w;
  asrkit::Tensor<float> base({2, 3, 4});
  // One correctly rounded division per value (no a*b+c the compiler could fuse into an FMA).
  for (int i = 0; i < 24; ++i) base.data()[i] = static_cast<float>(i - 11) / 7.0f;
  w.add("arange_f32", base);
  w.add("arange_f16", base, DType::F16);
  w.add("arange_bf16", base, DType::BF16);
  asrkit::Tensor<double> f64({10});
  for (int i = 0; i < 10; ++i) f64.data()[i] = i * 0.1;
  w.add("f64", f64);
  w.add("f64_as_f16", f64, DType::F16);
  asrkit::Tensor<std::int32_t> i32({7});
  for (int i = 0; i < 7; ++i) i32.data()[i] = i - 5;
  w.add("i32", i32);
  asrkit::Tensor<std::int64_t> i64({5});
  for (int i = 0; i < 5; ++i) i64.data()[i] = i * (std::int64_t{1} << 33) - 7;
  w.add("i64", i64);
  w.add("scalar", asrkit::Tensor<float>(asrkit::Shape{}, 42.5f));
  w.add("empty", asrkit::Tensor<float>({0, 5}));
  asrkit::Tensor<float> r4({2, 1, 3, 2});
  for (int i = 0; i < 12; ++i) r4.data()[i] = static_cast<float>(i) / 3.0f;
  w.add("r4_f16", r4, DType::F16);
  w.set_metadata("producer", "asrkit");
  w.set_metadata("note",
                 "\xC3\xBCn\xC3\xAF"
                 "code");
  const std::string path = asrkit_test::data_path("st_from_asrkit.safetensors");
  w.save(path);
  CHECK(SafetensorsFile::open(path).size() == 10);
}
