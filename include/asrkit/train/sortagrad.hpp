// asrkit/train/sortagrad.hpp - which utterances go into which batch, epoch by epoch.
//
//   asrkit::SortaGradSampler sampler(durations, /*batch_size=*/32, /*seed=*/1);
//   for (index_t e = 0; e < epochs; ++e)
//     for (const auto& batch : sampler.epoch(e)) ...   // manifest indices
//
// SortaGrad (Amodei et al. 2016, Deep Speech 2 §3.6): in the first epoch the batches go in
// increasing order of utterance duration (short utterances first: CTC on long, untrained
// utterances is unstable); later epochs keep batches of similar length (little padding) but
// visit them in a random order. Utterances are sorted by duration, ties by index, and cut into
// buckets of batch_size consecutive utterances; from epoch `sorted_epochs` on the buckets are
// shuffled with Rng(seed, epoch) (the same batches on every platform for a given seed and epoch),
// and optionally the utterances are shuffled inside groups of `bucket_batches` buckets first.
// Shuffling is Fisher-Yates over Rng::uniform_int, not std::shuffle (whose algorithm differs
// between standard libraries).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {

struct SortaGradOptions {
  enum class Order {
    sortagrad,  ///< sorted for the first `sorted_epochs` epochs, shuffled buckets after
    sorted,     ///< sorted by duration every epoch
    shuffled,   ///< a plain random permutation every epoch (no length buckets)
  };
  Order order = Order::sortagrad;
  /// Epochs in sorted order before shuffling starts (DS2: 1).
  index_t sorted_epochs = 1;
  /// > 1: in shuffled epochs, shuffle utterances inside groups of this many consecutive
  /// buckets before cutting batches (more variety per batch, a little more padding).
  index_t bucket_batches = 1;
  /// Drop the last batch when it is smaller than batch_size.
  bool drop_last = false;
};

namespace detail {
/// Fisher-Yates shuffle of [first, last) with the portable Rng.
template <class It>
void portable_shuffle(It first, It last, Rng& rng) {
  for (auto n = last - first; n > 1; --n) {
    const auto j = static_cast<decltype(n)>(rng.uniform_int(static_cast<std::uint64_t>(n)));
    std::swap(first[n - 1], first[j]);
  }
}
}  // namespace detail

class SortaGradSampler {
 public:
  /// ValueError "sampler.1" for a negative or non-finite duration, "sampler.2" for
  /// batch_size < 1 or bad options.
  SortaGradSampler(std::vector<double> durations, index_t batch_size, std::uint64_t seed,
                   const SortaGradOptions& options = {})
      : durations_(std::move(durations)), batch_size_(batch_size), seed_(seed),
        options_(options) {
    if (batch_size_ < 1)
      throw ValueError("sampler.2", detail::str("SortaGradSampler: batch_size must be >= 1, got ",
                                                batch_size_));
    if (options_.sorted_epochs < 0 || options_.bucket_batches < 1)
      throw ValueError("sampler.2", detail::str("SortaGradOptions: sorted_epochs must be >= 0 "
                                                "and bucket_batches >= 1, got ",
                                                options_.sorted_epochs, " and ",
                                                options_.bucket_batches));
    for (std::size_t i = 0; i < durations_.size(); ++i)
      if (!(durations_[i] >= 0.0) || !std::isfinite(durations_[i]))
        throw ValueError("sampler.1", detail::str("SortaGradSampler: duration ", i,
                                                  " must be finite and >= 0, got ",
                                                  durations_[i]));
    sorted_.resize(durations_.size());
    std::iota(sorted_.begin(), sorted_.end(), index_t{0});
    std::stable_sort(sorted_.begin(), sorted_.end(), [this](index_t a, index_t b) {
      return durations_[static_cast<std::size_t>(a)] < durations_[static_cast<std::size_t>(b)];
    });
  }

  /// The batches of epoch `e` (>= 0; ValueError "sampler.3" otherwise): indices into the
  /// durations, every utterance exactly once (except a dropped last batch).
  std::vector<std::vector<index_t>> epoch(index_t e) const {
    if (e < 0) throw ValueError("sampler.3", detail::str("epoch must be >= 0, got ", e));
    using Order = SortaGradOptions::Order;
    Rng rng(seed_, static_cast<std::uint64_t>(e));
    std::vector<index_t> order = sorted_;
    if (options_.order == Order::shuffled) {
      detail::portable_shuffle(order.begin(), order.end(), rng);
      return cut(order);
    }
    const bool sorted = options_.order == Order::sorted || e < options_.sorted_epochs;
    if (!sorted && options_.bucket_batches > 1) {
      const auto n = static_cast<index_t>(order.size());
      const index_t group = options_.bucket_batches * batch_size_;
      for (index_t g = 0; g < n; g += group)
        detail::portable_shuffle(order.begin() + g, order.begin() + std::min(n, g + group), rng);
    }
    std::vector<std::vector<index_t>> batches = cut(order);
    if (!sorted) detail::portable_shuffle(batches.begin(), batches.end(), rng);
    return batches;
  }

  /// Batches per epoch.
  index_t num_batches() const {
    const auto n = static_cast<index_t>(durations_.size());
    return options_.drop_last ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
  }
  index_t batch_size() const noexcept { return batch_size_; }
  /// Utterance indices in increasing order of duration (ties by index).
  const std::vector<index_t>& sorted_indices() const noexcept { return sorted_; }

 private:
  std::vector<std::vector<index_t>> cut(const std::vector<index_t>& order) const {
    std::vector<std::vector<index_t>> batches;
    const auto n = static_cast<index_t>(order.size());
    for (index_t i = 0; i < n; i += batch_size_) {
      const index_t end = std::min(n, i + batch_size_);
      if (end - i < batch_size_ && options_.drop_last) break;
      batches.emplace_back(order.begin() + i, order.begin() + end);
    }
    return batches;
  }

  std::vector<double> durations_;
  index_t batch_size_;
  std::uint64_t seed_;
  SortaGradOptions options_;
  std::vector<index_t> sorted_;
};

}  // namespace asrkit
