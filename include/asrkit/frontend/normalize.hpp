// asrkit/frontend/normalize.hpp - per-bin mean/variance normalisation of features (CMVN).
//
//   asrkit::normalize_utterance(feats.view());             // one utterance, in place
//   asrkit::CmvnStats<float> stats;                         // training-set statistics
//   for (const auto& f : train) stats.accumulate(f);
//   stats.save("cmvn.safetensors");
//   stats.apply(feats.view());                              // (x - mean) / (std + eps)
//   asrkit::OnlineNormalizer<float> online(stats);          // streaming (DS2 §7)
//   online.process(chunk.view());                           // in place, as frames arrive
//
// Features are [frames, bins] (time first); statistics are per bin over frames (DS2 §3.1:
// "normalize features per bin"). The standard deviation is the population one (divide by N,
// not N - 1) and eps is added to it, not to the variance, so a constant bin maps to 0 instead
// of NaN. Sums are kept in double for float features too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/safetensors.hpp>

namespace asrkit {
namespace detail {
namespace normalize {

/// Rank 2 and every value finite (checked before anything is modified).
template <class T>
void check_features(TensorView<const T> f, const char* what) {
  if (f.rank() != 2)
    throw ShapeError(
        "normalize.1",
        str(what, ": features must have rank 2 [frames, bins], got shape ", f.shape().str()));
  const index_t bins = f.dim(1);
  const T* p = f.data();
  for (index_t i = 0, n = f.numel(); i < n; ++i)
    if (!std::isfinite(p[i]))
      throw ValueError("normalize.2", str(what, ": features must be finite, got ", p[i],
                                          " at frame ", i / bins, ", bin ", i % bins));
}

inline void check_eps(double eps, const char* what) {
  if (!(eps > 0.0) || !std::isfinite(eps))
    throw ValueError("normalize.3", str(what, ": eps must be finite and > 0, got ", eps));
}

inline void check_bins(index_t got, index_t expected, const char* what) {
  if (got != expected)
    throw ShapeError("normalize.4",
                     str(what, ": features have ", got, " bins, the statistics have ", expected));
}

/// Population standard deviation from E[x] and E[x^2]; rounding can make the variance
/// slightly negative for a (near) constant bin, so it is clamped at 0.
inline double stddev_from_moments(double mean, double mean_sq) {
  return std::sqrt(std::max(mean_sq - mean * mean, 0.0));
}

template <class T>
void normalize_utterance(TensorView<T> features, T eps) {
  check_eps(static_cast<double>(eps), "normalize_utterance");
  check_features<T>(features, "normalize_utterance");
  const index_t frames = features.dim(0), bins = features.dim(1);
  if (frames == 0 || bins == 0) return;
  T* x = features.data();
  // Two passes (mean, then squared deviations): no cancellation, unlike E[x^2] - E[x]^2.
  std::vector<double> mean(static_cast<std::size_t>(bins), 0.0);
  std::vector<double> sq(static_cast<std::size_t>(bins), 0.0);
  for (index_t t = 0; t < frames; ++t)
    for (index_t b = 0; b < bins; ++b) mean[b] += static_cast<double>(x[t * bins + b]);
  for (double& m : mean) m /= static_cast<double>(frames);
  for (index_t t = 0; t < frames; ++t)
    for (index_t b = 0; b < bins; ++b) {
      const double d = static_cast<double>(x[t * bins + b]) - mean[b];
      sq[b] += d * d;
    }
  for (double& s : sq) s = std::sqrt(s / static_cast<double>(frames)) + static_cast<double>(eps);
  for (index_t t = 0; t < frames; ++t)
    for (index_t b = 0; b < bins; ++b) {
      T& v = x[t * bins + b];
      v = static_cast<T>((static_cast<double>(v) - mean[b]) / sq[b]);
    }
}

}  // namespace normalize
}  // namespace detail

/// Normalises one utterance in place: every bin gets mean 0 and (population) standard
/// deviation std / (std + eps) ~ 1 over its frames. eps must be finite and > 0.
inline void normalize_utterance(TensorView<float> features, float eps = 1e-5f) {
  detail::normalize::normalize_utterance(features, eps);
}
inline void normalize_utterance(TensorView<double> features, double eps = 1e-5) {
  detail::normalize::normalize_utterance(features, eps);
}

/// Per-bin statistics over many utterances: frame count, sum and sum of squares (double).
/// Accumulating utterances one after another gives bit-identical sums to accumulating their
/// concatenation (same additions, same order).
template <class T>
class CmvnStats {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "CmvnStats<T>: T must be float or double");

 public:
  /// No bins yet: the first accumulate() (or merge()) fixes them.
  CmvnStats() = default;

  explicit CmvnStats(index_t bins) {
    if (bins < 1)
      throw ValueError("normalize.8",
                       detail::str("CmvnStats(bins): bins must be >= 1, got ", bins));
    init(bins);
  }

  index_t bins() const noexcept { return bins_; }
  /// Frames accumulated (an integer, kept as double as in the file format).
  double count() const noexcept { return count_; }
  TensorView<const double> sum() const noexcept { return sum_.view(); }
  TensorView<const double> sum_sq() const noexcept { return sum_sq_.view(); }

  /// Adds every frame of `features` [frames, bins].
  void accumulate(TensorView<const T> features) {
    detail::normalize::check_features<T>(features, "CmvnStats::accumulate");
    adopt_bins(features.dim(1), "CmvnStats::accumulate");
    const index_t frames = features.dim(0);
    const T* x = features.data();
    double* s = sum_.data();
    double* q = sum_sq_.data();
    for (index_t t = 0; t < frames; ++t)
      for (index_t b = 0; b < bins_; ++b) {
        const double v = static_cast<double>(x[t * bins_ + b]);
        s[b] += v;
        q[b] += v * v;
      }
    count_ += static_cast<double>(frames);
  }

  /// Adds another set of statistics (e.g. from another worker).
  void merge(const CmvnStats& other) {
    if (other.bins_ == 0) return;
    adopt_bins(other.bins_, "CmvnStats::merge");
    for (index_t b = 0; b < bins_; ++b) {
      sum_.data()[b] += other.sum_.data()[b];
      sum_sq_.data()[b] += other.sum_sq_.data()[b];
    }
    count_ += other.count_;
  }

  /// Per-bin mean [bins]; ValueError normalize.5 when no frame has been accumulated.
  Tensor<double> mean() const {
    check_not_empty("CmvnStats::mean");
    Tensor<double> m({bins_});
    for (index_t b = 0; b < bins_; ++b) m.data()[b] = sum_.data()[b] / count_;
    return m;
  }

  /// Per-bin population standard deviation [bins], sqrt(max(E[x^2] - E[x]^2, 0)).
  Tensor<double> stddev() const {
    check_not_empty("CmvnStats::stddev");
    Tensor<double> s({bins_});
    for (index_t b = 0; b < bins_; ++b)
      s.data()[b] = detail::normalize::stddev_from_moments(sum_.data()[b] / count_,
                                                           sum_sq_.data()[b] / count_);
    return s;
  }

  /// x <- (x - mean) / (std + eps) per bin, in place. Checks eps, rank, finiteness, bins.
  void apply(TensorView<T> features, T eps = T(1e-5)) const {
    detail::normalize::check_eps(static_cast<double>(eps), "CmvnStats::apply");
    detail::normalize::check_features<T>(features, "CmvnStats::apply");
    check_not_empty("CmvnStats::apply");
    detail::normalize::check_bins(features.dim(1), bins_, "CmvnStats::apply");
    const Tensor<double> m = mean();
    Tensor<double> d = stddev();
    for (index_t b = 0; b < bins_; ++b) d.data()[b] += static_cast<double>(eps);
    T* x = features.data();
    for (index_t t = 0, frames = features.dim(0); t < frames; ++t)
      for (index_t b = 0; b < bins_; ++b) {
        T& v = x[t * bins_ + b];
        v = static_cast<T>((static_cast<double>(v) - m.data()[b]) / d.data()[b]);
      }
  }

  /// Writes a safetensors file: "count" F64 [1], "sum" and "sum_sq" F64 [bins], metadata
  /// "format": "asrkit.cmvn.v1" (atomically, through SafetensorsWriter::save).
  void save(const std::string& path) const {
    SafetensorsWriter w;
    w.add("count", TensorView<const double>(&count_, Shape{1}));
    w.add("sum", sum_.view());
    w.add("sum_sq", sum_sq_.view());
    w.set_metadata("format", kFormat);
    w.save(path);
  }

  /// Reads a file written by save() (by CmvnStats<float> or <double>). FormatError
  /// normalize.6 when it is a valid safetensors file but not asrkit.cmvn.v1 statistics; the
  /// io.* and safetensors.* errors of SafetensorsFile::open pass through.
  static CmvnStats load(const std::string& path) {
    const SafetensorsFile f = SafetensorsFile::open(path);
    const auto bad = [&path](const std::string& why) {
      return FormatError("normalize.6",
                         detail::str("'", path, "' is not asrkit.cmvn.v1 statistics: ", why));
    };
    const auto fmt = f.metadata().find("format");
    if (fmt == f.metadata().end()) throw bad("no metadata \"format\"");
    if (fmt->second != kFormat)
      throw bad(detail::str("metadata \"format\" is \"", fmt->second.substr(0, 40),
                            "\", expected \"", kFormat, "\""));
    for (const char* name : {"count", "sum", "sum_sq"}) {
      if (!f.contains(name)) throw bad(detail::str("no tensor \"", name, "\""));
      const TensorInfo& info = f.info(name);
      if (info.dtype != DType::F64)
        throw bad(
            detail::str("tensor \"", name, "\" is ", dtype_name(info.dtype), ", expected F64"));
      if (info.shape.size() != 1)
        throw bad(
            detail::str("tensor \"", name, "\" has rank ", info.shape.size(), ", expected 1"));
    }
    const std::int64_t bins = f.info("sum").shape[0];
    if (f.info("count").shape[0] != 1)
      throw bad(
          detail::str("tensor \"count\" has ", f.info("count").shape[0], " elements, expected 1"));
    if (f.info("sum_sq").shape[0] != bins)
      throw bad(
          detail::str("\"sum_sq\" has ", f.info("sum_sq").shape[0], " bins, \"sum\" has ", bins));
    const Tensor<double> sum = f.read<double>("sum"), sum_sq = f.read<double>("sum_sq");
    const double count = f.read<double>("count").data()[0];
    const std::string problem = check_sums(count, sum.view(), sum_sq.view());
    if (!problem.empty()) throw bad(problem);
    return from_checked_sums(count, sum.view(), sum_sq.view());
  }

  /// Statistics from their sums (e.g. stored in another file's metadata): count frames, sum and
  /// sum_sq [bins] per bin. ValueError normalize.9 when they are not what accumulate() can make
  /// (count a finite integer >= 0, sums finite, sum_sq >= 0, equal bins, 0 bins only with count 0).
  static CmvnStats from_sums(double count, TensorView<const double> sum,
                             TensorView<const double> sum_sq) {
    const std::string problem = check_sums(count, sum, sum_sq);
    if (!problem.empty())
      throw ValueError("normalize.9", "CmvnStats::from_sums: " + problem);
    return from_checked_sums(count, sum, sum_sq);
  }

  static constexpr const char* kFormat = "asrkit.cmvn.v1";

 private:
  // What is wrong with these sums ("" when nothing).
  static std::string check_sums(double count, TensorView<const double> sum,
                                TensorView<const double> sum_sq) {
    if (sum.rank() != 1 || sum_sq.rank() != 1 || sum.dim(0) != sum_sq.dim(0))
      return detail::str("sum and sum_sq must be [bins], got ", sum.shape().str(), " and ",
                         sum_sq.shape().str());
    if (!std::isfinite(count) || count < 0 || count != std::floor(count))
      return detail::str("count must be a finite integer >= 0, got ", count);
    if (sum.dim(0) == 0 && count != 0) return detail::str("0 bins but count ", count);
    for (index_t b = 0; b < sum.dim(0); ++b) {
      const double s = sum.data()[b], q = sum_sq.data()[b];
      if (!std::isfinite(s) || !std::isfinite(q) || q < 0)
        return detail::str("bin ", b, ": sum and sum_sq must be finite and sum_sq >= 0, got ", s,
                           " and ", q);
    }
    return {};
  }

  static CmvnStats from_checked_sums(double count, TensorView<const double> sum,
                                     TensorView<const double> sum_sq) {
    CmvnStats out;
    if (sum.dim(0) == 0) return out;
    out.init(sum.dim(0));
    out.count_ = count;
    out.sum_ = Tensor<double>(sum);
    out.sum_sq_ = Tensor<double>(sum_sq);
    return out;
  }

  void init(index_t bins) {
    bins_ = bins;
    count_ = 0;
    sum_ = Tensor<double>({bins});
    sum_sq_ = Tensor<double>({bins});
  }

  void adopt_bins(index_t bins, const char* what) {
    if (bins_ == 0 && bins == 0)
      throw ShapeError("normalize.4", detail::str(what, ": features have 0 bins (statistics need",
                                                  " at least 1)"));
    if (bins_ == 0)
      init(bins);
    else
      detail::normalize::check_bins(bins, bins_, what);
  }

  void check_not_empty(const char* what) const {
    if (!(count_ > 0))
      throw ValueError("normalize.5", detail::str(what, ": the statistics hold no frames (count 0,",
                                                  " bins ", bins_, ")"));
  }

  index_t bins_ = 0;
  double count_ = 0;
  Tensor<double> sum_, sum_sq_;  // [bins]
};

/// How OnlineNormalizer weighs the initial statistics against the audio seen so far.
struct OnlineNormalizerOptions {
  /// w >= 0: the initial (training-set) statistics count as this many frames. 200 frames (2 s at
  /// a 10 ms hop) is Kaldi's OnlineCmvnOptions::global_frames.
  double prior_weight = 200.0;
  /// lambda in (0, 1]: every frame scales the accumulated weight and sums by lambda first.
  /// 1 gives a prior-weighted running mean; < 1 forgets old frames (memory ~ 1 / (1 - lambda)).
  double forgetting = 1.0;
  /// Added to the standard deviation, finite and > 0.
  double eps = 1e-5;
};

/// Streaming per-bin normalisation (DS2 §7: start from training-set statistics, update them as
/// audio arrives). With lambda = forgetting, w = prior_weight and the initial statistics'
/// mean mu_0 and mean square q_0 = E_0[x^2], the state after reset() is
///   A_0 = w,  B_0 = w * mu_0,  C_0 = w * q_0            (per bin)
/// and frame t (1-based, counted since reset()) updates it and is normalised with it:
///   A_t = lambda * A_{t-1} + 1,  B_t = lambda * B_{t-1} + x_t,  C_t = lambda * C_{t-1} + x_t^2
///   mean_t = B_t / A_t,  std_t = sqrt(max(C_t / A_t - mean_t^2, 0))
///   y_t = (x_t - mean_t) / (std_t + eps)
/// With lambda = 1: mean_t = (w * mu_0 + sum_{k<=t} x_k) / (w + t), which tends to the
/// utterance mean. The frame being normalised is included (causal: no look-ahead). Frames are
/// processed one by one in order, so any chunking gives bit-identical output.
template <class T>
class OnlineNormalizer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "OnlineNormalizer<T>: T must be float or double");

 public:
  explicit OnlineNormalizer(const CmvnStats<T>& initial, OnlineNormalizerOptions options = {})
      : options_(options) {
    if (!(options.prior_weight >= 0.0) || !std::isfinite(options.prior_weight))
      throw ValueError("normalize.7", detail::str("OnlineNormalizer: prior_weight must be finite"
                                                  " and >= 0, got ",
                                                  options.prior_weight));
    if (!(options.forgetting > 0.0 && options.forgetting <= 1.0))
      throw ValueError("normalize.7", detail::str("OnlineNormalizer: forgetting must be in (0, 1],"
                                                  " got ",
                                                  options.forgetting));
    detail::normalize::check_eps(options.eps, "OnlineNormalizer");
    if (!(initial.count() > 0))
      throw ValueError("normalize.5", detail::str("OnlineNormalizer: the initial statistics hold no"
                                                  " frames (count 0, bins ",
                                                  initial.bins(), ")"));
    const Tensor<double> mean = initial.mean();
    bins_ = initial.bins();
    const auto n = static_cast<std::size_t>(bins_);
    prior_sum_.resize(n);
    prior_sum_sq_.resize(n);
    for (std::size_t b = 0; b < n; ++b) {
      prior_sum_[b] = options.prior_weight * mean.data()[b];
      prior_sum_sq_[b] = options.prior_weight * (initial.sum_sq().data()[b] / initial.count());
    }
    reset();
  }

  /// Back to the initial statistics (a new utterance or stream).
  void reset() {
    weight_ = options_.prior_weight;
    sum_ = prior_sum_;
    sum_sq_ = prior_sum_sq_;
    frames_ = 0;
  }

  /// Normalises `chunk` [frames, bins] in place, frame by frame, updating the statistics.
  /// The chunk is checked (rank, bins, finiteness) before anything changes.
  void process(TensorView<T> chunk) {
    detail::normalize::check_features<T>(chunk, "OnlineNormalizer::process");
    detail::normalize::check_bins(chunk.dim(1), bins_, "OnlineNormalizer::process");
    const double lambda = options_.forgetting, eps = options_.eps;
    T* x = chunk.data();
    for (index_t t = 0, frames = chunk.dim(0); t < frames; ++t) {
      weight_ = lambda * weight_ + 1.0;
      for (index_t b = 0; b < bins_; ++b) {
        const auto i = static_cast<std::size_t>(b);
        T& v = x[t * bins_ + b];
        const double d = static_cast<double>(v);
        sum_[i] = lambda * sum_[i] + d;
        sum_sq_[i] = lambda * sum_sq_[i] + d * d;
        const double mean = sum_[i] / weight_;
        const double sd = detail::normalize::stddev_from_moments(mean, sum_sq_[i] / weight_);
        v = static_cast<T>((d - mean) / (sd + eps));
      }
      ++frames_;
    }
  }

  index_t bins() const noexcept { return bins_; }
  /// Frames processed since the last reset().
  index_t frames() const noexcept { return frames_; }
  /// A_t: the weight of the current statistics (w + frames when lambda = 1).
  double weight() const noexcept { return weight_; }

  /// mean_t per bin.
  Tensor<double> mean() const {
    Tensor<double> m({bins_});
    for (index_t b = 0; b < bins_; ++b) m.data()[b] = weight_ > 0 ? sum_[b] / weight_ : 0.0;
    return m;
  }

  /// std_t per bin (population).
  Tensor<double> stddev() const {
    Tensor<double> s({bins_});
    for (index_t b = 0; b < bins_; ++b)
      s.data()[b] = weight_ > 0 ? detail::normalize::stddev_from_moments(sum_[b] / weight_,
                                                                         sum_sq_[b] / weight_)
                                : 0.0;
    return s;
  }

  const OnlineNormalizerOptions& options() const noexcept { return options_; }

 private:
  OnlineNormalizerOptions options_;
  index_t bins_ = 0;
  std::vector<double> prior_sum_, prior_sum_sq_;
  double weight_ = 0;
  std::vector<double> sum_, sum_sq_;
  index_t frames_ = 0;
};

}  // namespace asrkit
