// asrkit/train/progress.hpp - a progress bar for long loops (feature extraction, epochs).
//
//   asrkit::Progress p(utts.size(), "features");
//   for (...) { ...; p.tick(); }
//   p.finish();   // or let the destructor do it
//
// On a terminal: one line redrawn with '\r' at most every min_interval_s (default 0.1 s),
//   features  37% |###       | 370/1000 [00:12<00:20, 30.1 it/s]
// and a newline at the end. Elsewhere (a log file, a pipe, a std::ostringstream) the same line
// is printed plainly each time another 10% is done, so logs stay readable.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

namespace asrkit {

namespace detail {
inline bool is_tty(int fd) {
#if defined(_WIN32)
  return _isatty(fd) != 0;
#else
  return isatty(fd) != 0;
#endif
}

// "mm:ss", or "h:mm:ss" from one hour on.
inline std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  return buf;
}
}  // namespace detail

/// Width of the bar between the '|'s.
inline constexpr int kProgressBarWidth = 10;

/// The progress line, deterministic: "label  37% |###       | 370/1000 [00:12<00:20, 30.1 it/s]".
/// Percent and bar are rounded down; the remaining time is (total - done) / rate; rate and
/// remaining show "?" before any item or any time has passed; a rate under 1 it/s is shown as
/// "s/it". No label: the line starts at the percentage. total 0 counts as complete.
/// ValueError "progress.1" for negative counts or a negative or NaN elapsed time.
inline std::string format_progress(index_t done, index_t total, double elapsed_s,
                                   const std::string& label = "") {
  if (done < 0 || total < 0 || !(elapsed_s >= 0.0))
    throw ValueError("progress.1", detail::str("format_progress: done and total must be >= 0 "
                                               "and elapsed_s >= 0, got done=", done,
                                               " total=", total, " elapsed_s=", elapsed_s));
  const double fraction =
      total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int percent = static_cast<int>(std::floor(fraction * 100.0 + 1e-9));
  const int filled = static_cast<int>(std::floor(fraction * kProgressBarWidth + 1e-9));
  std::string line = label.empty() ? "" : label + " ";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%3d%% |", percent);
  line += buf;
  line += std::string(static_cast<std::size_t>(filled), '#');
  line += std::string(static_cast<std::size_t>(kProgressBarWidth - filled), ' ');
  line += detail::str("| ", done, "/", total, " [", detail::format_duration(elapsed_s), "<");
  if (done > 0 && elapsed_s > 0.0 && std::isfinite(elapsed_s)) {
    const double rate = static_cast<double>(done) / elapsed_s;
    const auto left = static_cast<double>(std::max<index_t>(0, total - done));
    line += detail::format_duration(left / rate);
    if (rate >= 1.0)
      std::snprintf(buf, sizeof buf, ", %.1f it/s]", rate);
    else
      std::snprintf(buf, sizeof buf, ", %.1f s/it]", 1.0 / rate);
    line += buf;
  } else {
    line += "?, ? it/s]";
  }
  return line;
}

struct ProgressOptions {
  enum class Mode {
    automatic,  ///< bar on a terminal (std::cout / std::cerr / std::clog attached to one)
    bar,        ///< always redraw one line with '\r'
    lines,      ///< always a plain line every 10%
  };
  Mode mode = Mode::automatic;
  /// Bar mode: least time between redraws (the last one is always drawn).
  double min_interval_s = 0.1;
};

class Progress {
 public:
  /// ValueError "progress.1" for total < 0.
  Progress(index_t total, std::string label, std::ostream& os = std::cerr,
           const ProgressOptions& options = {})
      : total_(total), label_(std::move(label)), os_(os), options_(options),
        start_(std::chrono::steady_clock::now()) {
    if (total_ < 0)
      throw ValueError("progress.1", detail::str("Progress: total must be >= 0, got ", total_));
    bar_ = options_.mode == ProgressOptions::Mode::bar ||
           (options_.mode == ProgressOptions::Mode::automatic && is_terminal(os_));
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  ~Progress() {
    try {
      finish();
    } catch (...) {  // a destructor must not throw (e.g. a stream with exceptions enabled)
    }
  }

  /// Sets the number of items done (clamped to [0, total]); prints if due.
  void update(index_t done) {
    if (finished_) return;
    done_ = std::clamp<index_t>(done, 0, total_);
    if (done_ == total_) {
      finish();
      return;
    }
    const double now = elapsed();
    if (bar_) {
      if (drawn_ && now - last_draw_ < options_.min_interval_s) return;
      draw(now);
    } else {
      const index_t decile = total_ == 0 ? 10 : done_ * 10 / total_;
      if (decile > last_decile_) {
        last_decile_ = decile;
        os_ << format_progress(done_, total_, now, label_) << '\n' << std::flush;
      }
    }
  }
  /// Adds n items.
  void tick(index_t n = 1) { update(done_ + n); }

  /// Prints the final state (100% if all items were done) and ends the line; idempotent.
  void finish() {
    if (finished_) return;
    finished_ = true;
    const double now = elapsed();
    if (bar_) {
      draw(now);
      os_ << '\n' << std::flush;
    } else if (done_ * 10 / std::max<index_t>(total_, 1) > last_decile_ || total_ == 0 ||
               done_ < total_) {
      os_ << format_progress(done_, total_, now, label_) << '\n' << std::flush;
    }
  }

  index_t done() const noexcept { return done_; }
  index_t total() const noexcept { return total_; }
  /// Seconds since construction.
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  static bool is_terminal(const std::ostream& os) {
    if (&os == &std::cout) return detail::is_tty(1);
    if (&os == &std::cerr || &os == &std::clog) return detail::is_tty(2);
    return false;
  }

  void draw(double now) {
    const std::string line = format_progress(done_, total_, now, label_);
    // Pad over a longer previous line so no stale characters remain.
    const std::size_t pad = line.size() < width_ ? width_ - line.size() : 0;
    os_ << '\r' << line << std::string(pad, ' ') << std::flush;
    width_ = std::max(width_, line.size());
    last_draw_ = now;
    drawn_ = true;
  }

  index_t total_;
  std::string label_;
  std::ostream& os_;
  ProgressOptions options_;
  std::chrono::steady_clock::time_point start_;
  bool bar_ = false, drawn_ = false, finished_ = false;
  index_t done_ = 0, last_decile_ = 0;
  double last_draw_ = 0.0;
  std::size_t width_ = 0;
};

}  // namespace asrkit
