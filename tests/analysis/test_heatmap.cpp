// analysis/heatmap.hpp: image layout (cells, gaps, colour bar), the cubehelix scale (monotonic
// brightness, ends black and white), range handling, NaN cells, the PNG written, errors.
#include <asrkit/analysis/heatmap.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "../test_util.hpp"

namespace an = asrkit::analysis;

namespace {
std::array<int, 3> pixel(const an::RgbImage& img, long x, long y) {
  const auto* p = img.rgb.data() + (y * img.width + x) * 3;
  return {p[0], p[1], p[2]};
}
}  // namespace

TEST_CASE("cubehelix runs from black to white with rising brightness", "[analysis][heatmap]") {
  const auto lo = an::cubehelix(0), hi = an::cubehelix(1);
  for (int c = 0; c < 3; ++c) {
    CHECK(lo[static_cast<std::size_t>(c)] == Approx(0).margin(1e-12));
    CHECK(hi[static_cast<std::size_t>(c)] == Approx(1).margin(1e-12));
  }
  double last = -1;
  for (int i = 0; i <= 100; ++i) {
    const auto c = an::cubehelix(i / 100.0);
    const double luma = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];  // Green 2011's luminance weights
    CHECK(luma > last);
    last = luma;
  }
  const auto mid = an::cubehelix(0.5);
  CHECK(std::abs(mid[0] - mid[2]) > 0.05);  // a colour, not grey
}

TEST_CASE("heatmap image: one cell per entry, row 0 at the top, colour bar, NaN grey", "[analysis][heatmap]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::vector<double>> m = {{0.0, 1.0, 0.5}, {nan, 2.0, -1.0}};
  an::HeatmapOptions o;
  o.cell = 10;
  o.gap = 2;
  const an::RgbImage img = an::heatmap_image(m, o);
  CHECK(img.width == 2 + 3 * 12 + 5 + 2);  // gap, 3 cells, bar (cell/2), gap
  CHECK(img.height == 2 + 2 * 12);
  REQUIRE(img.rgb.size() == static_cast<std::size_t>(img.width * img.height * 3));
  CHECK(pixel(img, 0, 0) == std::array<int, 3>{80, 80, 80});        // background
  CHECK(pixel(img, 2, 2) == std::array<int, 3>{0, 0, 0});           // (0, 0) = 0: darkest
  CHECK(pixel(img, 14 + 9, 2 + 9) == std::array<int, 3>{255, 255, 255});  // (0, 1) = 1: lightest
  CHECK(pixel(img, 2, 14) == std::array<int, 3>{160, 160, 160});    // NaN
  CHECK(pixel(img, 14, 14) == std::array<int, 3>{255, 255, 255});   // 2 clamps to the top
  CHECK(pixel(img, 26, 14) == std::array<int, 3>{0, 0, 0});         // -1 clamps to the bottom
  const auto half = pixel(img, 26, 2), want = std::array<int, 3>{
      int(std::lround(255 * an::cubehelix(0.5)[0])), int(std::lround(255 * an::cubehelix(0.5)[1])),
      int(std::lround(255 * an::cubehelix(0.5)[2]))};
  CHECK(half == want);
  CHECK(pixel(img, 38, 2) == std::array<int, 3>{255, 255, 255});    // colour bar top: high
  CHECK(pixel(img, 38, 23) == std::array<int, 3>{0, 0, 0});         // bottom: low
  // fit_range maps the finite min..max (-1..2) to the ends
  o.fit_range = true;
  const an::RgbImage fit = an::heatmap_image(m, o);
  CHECK(pixel(fit, 26, 14) == std::array<int, 3>{0, 0, 0});
  CHECK(pixel(fit, 14, 14) == std::array<int, 3>{255, 255, 255});
  CHECK(pixel(fit, 2, 2) != std::array<int, 3>{0, 0, 0});
}

TEST_CASE("write_heatmap_png writes a PNG of the image", "[analysis][heatmap]") {
  const std::string path = asrkit_test::data_path("heatmap_test.png");
  an::write_heatmap_png(path, {{1.0, 0.2}, {0.2, 1.0}});
  const auto bytes = asrkit_test::read_bytes(path);
  const an::RgbImage img = an::heatmap_image({{1.0, 0.2}, {0.2, 1.0}});
  const auto want = asrkit::encode_png(img.width, img.height, img.rgb);
  CHECK(std::vector<std::uint8_t>(bytes.begin(), bytes.end()) == want);
}

TEST_CASE("heatmap errors", "[analysis][heatmap][errors]") {
  REQUIRE_THROWS_ID(an::heatmap_image({}), asrkit::ShapeError,
                    "[asrkit.heatmap.1] heatmap: argument matrix must have at least one row and column, got 0 x 0");
  REQUIRE_THROWS_ID(an::heatmap_image({{1, 2}, {3}}), asrkit::ShapeError,
                    "[asrkit.heatmap.1] heatmap: argument matrix: row 1 has 1 entries, row 0 has 2");
  an::HeatmapOptions o;
  o.cell = 0;
  REQUIRE_THROWS_ID(an::heatmap_image({{1}}, o), asrkit::ValueError, "[asrkit.heatmap.2]");
  o = {};
  o.lo = 1;
  o.hi = 1;
  REQUIRE_THROWS_ID(an::heatmap_image({{1}}, o), asrkit::ValueError,
                    "[asrkit.heatmap.2] HeatmapOptions: need finite lo < hi, got lo 1, hi 1");
  REQUIRE_THROWS_ID(an::write_heatmap_png("/nonexistent-dir/x.png", {{1}}), asrkit::IoError, "[asrkit.io.1]");
}
