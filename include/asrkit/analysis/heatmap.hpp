// asrkit/analysis/heatmap.hpp - an image of a matrix (e.g. the layer-by-layer SVCCA matrix) as a
// PNG heatmap: row i at the top of the image for i = 0, one square cell per entry.
//
//   auto s = asrkit::analysis::similarity_matrix(layers);
//   asrkit::analysis::write_heatmap_png("svcca.png", s);          // values in [0, 1]
//   asrkit::analysis::HeatmapOptions o;  o.fit_range = true;        // or the data's min..max
//
// Colours follow Green's cubehelix scheme (Bull. Astr. Soc. India 39, 289, 2011), computed from
// its formula: dark (low) to light (high) with brightness rising monotonically, so the image
// also reads in grey scale. NaN cells are light grey (160) on a dark grey (80) background. A
// colour bar (low at the bottom) sits to the right when `colour_bar` is set.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/io/png.hpp>

namespace asrkit {
namespace analysis {

struct HeatmapOptions {
  long cell = 24;          ///< pixels per matrix entry (side of a cell)
  long gap = 1;            ///< background pixels between cells
  double lo = 0, hi = 1;   ///< the values mapped to the darkest and the lightest colour
  bool fit_range = false;  ///< use the matrix's finite min..max instead of lo..hi
  bool colour_bar = true;  ///< a vertical colour bar on the right
};

/// An 8-bit RGB image, row-major.
struct RgbImage {
  long width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  ///< width · height · 3
};

/// Cubehelix colour of a fraction t in [0, 1] (start 0.5, rotations -1.5, hue 1, gamma 1), as
/// R, G, B in [0, 1] (Green 2011, eq. 2: luminance t plus a deviation in the plane
/// perpendicular to the grey axis, rotating with t).
inline std::array<double, 3> cubehelix(double t) {
  constexpr double kPi = 3.14159265358979323846;
  constexpr double start = 0.5, rotations = -1.5, hue = 1.0;
  t = std::clamp(t, 0.0, 1.0);
  const double amp = hue * t * (1 - t) / 2, phi = 2 * kPi * (start / 3 + rotations * t);
  const double c = std::cos(phi), s = std::sin(phi);
  return {std::clamp(t + amp * (-0.14861 * c + 1.78277 * s), 0.0, 1.0),
          std::clamp(t + amp * (-0.29227 * c - 0.90649 * s), 0.0, 1.0),
          std::clamp(t + amp * (1.97294 * c), 0.0, 1.0)};
}

namespace detail {
inline void fill_rect(RgbImage& img, long x0, long y0, long w, long h, const std::array<std::uint8_t, 3>& c) {
  for (long y = y0; y < y0 + h; ++y)
    for (long x = x0; x < x0 + w; ++x)
      std::copy(c.begin(), c.end(), img.rgb.begin() + (y * img.width + x) * 3);
}
inline std::array<std::uint8_t, 3> to_bytes(const std::array<double, 3>& c) {
  std::array<std::uint8_t, 3> b{};
  for (int i = 0; i < 3; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(std::lround(255 * c[static_cast<std::size_t>(i)]));
  return b;
}
}  // namespace detail

/// The heatmap image of a rows x cols matrix (rows of equal length). Throws ShapeError
/// heatmap.1 for an empty or ragged matrix, ValueError heatmap.2 for bad options.
inline RgbImage heatmap_image(const std::vector<std::vector<double>>& m, const HeatmapOptions& o = {}) {
  const long rows = static_cast<long>(m.size()), cols = rows ? static_cast<long>(m[0].size()) : 0;
  if (rows == 0 || cols == 0)
    throw ShapeError("heatmap.1", asrkit::detail::str("heatmap: argument matrix must have at least one row and column, got ",
                                                      rows, " x ", cols));
  for (long i = 0; i < rows; ++i)
    if (static_cast<long>(m[static_cast<std::size_t>(i)].size()) != cols)
      throw ShapeError("heatmap.1", asrkit::detail::str("heatmap: argument matrix: row ", i, " has ",
                                                        m[static_cast<std::size_t>(i)].size(), " entries, row 0 has ", cols));
  if (o.cell < 1 || o.cell > 256 || o.gap < 0 || o.gap > 64)
    throw ValueError("heatmap.2", asrkit::detail::str("HeatmapOptions: cell must be in [1, 256] and gap in [0, 64], got cell ",
                                                      o.cell, ", gap ", o.gap));
  double lo = o.lo, hi = o.hi;
  if (o.fit_range) {
    lo = INFINITY, hi = -INFINITY;
    for (const auto& r : m)
      for (double v : r)
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(lo < hi)) hi = lo + 1;  // constant (or all NaN): any colour will do
    if (!std::isfinite(lo)) lo = 0, hi = 1;
  }
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
    throw ValueError("heatmap.2", asrkit::detail::str("HeatmapOptions: need finite lo < hi, got lo ", lo, ", hi ", hi));
  const long pitch = o.cell + o.gap, bar = o.colour_bar ? std::max(o.cell / 2, 4L) : 0;
  RgbImage img;
  img.width = o.gap + cols * pitch + (bar ? bar + o.gap : 0);
  img.height = o.gap + rows * pitch;
  img.rgb.assign(static_cast<std::size_t>(img.width * img.height * 3), 80);  // dark grey: the scale's ends stand out
  for (long i = 0; i < rows; ++i)
    for (long j = 0; j < cols; ++j) {
      const double v = m[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
      const auto c = std::isnan(v) ? std::array<std::uint8_t, 3>{160, 160, 160}
                                   : detail::to_bytes(cubehelix((v - lo) / (hi - lo)));
      detail::fill_rect(img, o.gap + j * pitch, o.gap + i * pitch, o.cell, o.cell, c);
    }
  if (bar) {
    const long x0 = o.gap + cols * pitch, h = rows * pitch - o.gap;
    for (long y = 0; y < h; ++y)
      detail::fill_rect(img, x0, o.gap + y, bar, 1, detail::to_bytes(cubehelix(1.0 - double(y) / std::max(h - 1, 1L))));
  }
  return img;
}

/// Writes the heatmap of a matrix as a PNG file (see heatmap_image; IoError io.1 / io.2).
inline void write_heatmap_png(const std::string& path, const std::vector<std::vector<double>>& m,
                              const HeatmapOptions& o = {}) {
  const RgbImage img = heatmap_image(m, o);
  write_png(path, img.width, img.height, img.rgb);
}

}  // namespace analysis
}  // namespace asrkit
