// plot.hpp - the training history of asrkit-train-ds2: one point per epoch, kept as JSON in the
// checkpoint metadata (so --resume continues the curves) and drawn as a PNG line chart with
// asrkit's dependency-free PNG writer.
#pragma once

#include <asrkit/io/png.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace ds2 {

struct EpochPoint {
  double epoch = 0, loss = 0, cer = 0, wer = 0;  ///< CER/WER in percent
};

inline std::string history_json(const std::vector<EpochPoint>& h) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : h) j.push_back({p.epoch, p.loss, p.cer, p.wer});
  return j.dump();
}

inline std::vector<EpochPoint> parse_history(const std::string& s) {
  std::vector<EpochPoint> h;
  for (const auto& p : nlohmann::json::parse(s))
    h.push_back({p.at(0).get<double>(), p.at(1).get<double>(), p.at(2).get<double>(),
                 p.at(3).get<double>()});
  return h;
}

namespace detail {

// A W x H RGB canvas with clipped pixel and line drawing.
struct Canvas {
  long w, h;
  std::vector<std::uint8_t> rgb;
  Canvas(long width, long height)
      : w(width), h(height), rgb(static_cast<std::size_t>(width * height * 3), 255) {}
  void dot(long x, long y, const std::uint8_t* c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    std::copy(c, c + 3, rgb.begin() + (y * w + x) * 3);
  }
  void line(double x0, double y0, double x1, double y1, const std::uint8_t* c) {
    const int n = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int i = 0; i <= n; ++i) {
      const double t = static_cast<double>(i) / n;
      for (int dy = 0; dy < 2; ++dy)
        dot(std::lround(x0 + t * (x1 - x0)), std::lround(y0 + t * (y1 - y0)) + dy, c);
    }
  }
};

}  // namespace detail

/// Two panels side by side: training loss (left) and dev CER % (right) against the epoch, each
/// scaled from 0 to its maximum, with a light grid at every epoch and every fifth of the range.
inline void plot_curves(const std::string& path, const std::vector<EpochPoint>& h) {
  if (h.empty()) return;
  const long pw = 400, ph = 300, m = 20;
  detail::Canvas c(2 * pw, ph);
  const std::uint8_t grid[3] = {225, 225, 225}, axis[3] = {0, 0, 0}, blue[3] = {31, 119, 180},
                     red[3] = {214, 39, 40};
  auto panel = [&](long x0, double EpochPoint::*field, const std::uint8_t* colour) {
    double top = 0;
    for (const auto& p : h)
      if (std::isfinite(p.*field)) top = std::max(top, p.*field);
    if (top <= 0) top = 1;
    const double last = std::max(h.back().epoch, 1.0);
    auto X = [&](double e) {
      return static_cast<double>(x0 + m) + e / last * static_cast<double>(pw - 2 * m);
    };
    auto Y = [&](double v) {
      return static_cast<double>(ph - m) - v / top * static_cast<double>(ph - 2 * m);
    };
    for (int k = 0; k <= 5; ++k) c.line(X(0), Y(top * k / 5), X(last), Y(top * k / 5), grid);
    for (const auto& p : h) c.line(X(p.epoch), Y(0), X(p.epoch), Y(top), grid);
    c.line(X(0), Y(0), X(last), Y(0), axis);
    c.line(X(0), Y(0), X(0), Y(top), axis);
    for (std::size_t i = 1; i < h.size(); ++i)
      if (std::isfinite(h[i - 1].*field) && std::isfinite(h[i].*field))
        c.line(X(h[i - 1].epoch), Y(h[i - 1].*field), X(h[i].epoch), Y(h[i].*field), colour);
    for (const auto& p : h)
      if (std::isfinite(p.*field))
        for (int dx = -2; dx <= 2; ++dx)
          for (int dy = -2; dy <= 2; ++dy)
            c.dot(std::lround(X(p.epoch)) + dx, std::lround(Y(p.*field)) + dy, colour);
  };
  panel(0, &EpochPoint::loss, blue);
  panel(pw, &EpochPoint::cer, red);
  asrkit::write_png(path, c.w, c.h, c.rgb);
}

}  // namespace ds2
