// asrkit/decode/emissions.hpp - which rows of a log-probability tensor a decoder reads, validated.
//
//   asrkit::DecodeInput in;  in.blank = 0;  in.item = 3;  in.frames = 412;   // [T, B, V] input
//   auto rows = asrkit::detail::decode_rows(log_probs, in);                  // checks NaN / +inf
//
// Shared by greedy decoding, the prefix beam search and its streaming form: every decoder takes
// [T, V] or time-major [T, B, V] log-probabilities (natural log, one row per frame).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

struct DecodeInput {
  int blank = 0;
  index_t item = 0;     ///< batch item, when log_probs is [T, B, V]
  index_t frames = -1;  ///< frames of that item (-1: all T)
};

namespace detail {

// The [frames, V] rows of one item of [T, V] or [T, B, V] log-probabilities.
template <class V>
struct DecodeRows {
  const std::remove_const_t<V>* data;
  index_t frames, vocab, stride;
  const std::remove_const_t<V>* row(index_t t) const { return data + t * stride; }
};

template <class V>
DecodeRows<V> decode_rows(TensorView<V> lp, const DecodeInput& in) {
  if (lp.rank() != 2 && lp.rank() != 3)
    throw ShapeError("decode.1", "log_probs must be [T, V] or [T, B, V], got shape " + lp.shape().str());
  const index_t batch = lp.rank() == 3 ? lp.dim(1) : 1, vocab = lp.dim(-1);
  const index_t frames = in.frames < 0 ? lp.dim(0) : in.frames;
  if (in.item < 0 || in.item >= batch || frames > lp.dim(0))
    throw ValueError("decode.1", detail::str("item ", in.item, " / frames ", frames, " out of range for shape ",
                                             lp.shape().str()));
  if (vocab < 1 || in.blank < 0 || in.blank >= vocab)
    throw ValueError("decode.1", detail::str("blank must be in [0, ", vocab, "), got ", in.blank));
  DecodeRows<V> rows{lp.data() + in.item * vocab, frames, vocab, batch * vocab};
  constexpr auto inf = std::numeric_limits<std::remove_const_t<V>>::infinity();
  for (index_t t = 0; t < frames; ++t) {
    const auto* r = rows.row(t);
    int bad = 0;  // NaN or +inf: !(x < inf), counted branch-free so the compiler vectorises it
    for (index_t k = 0; k < vocab; ++k) bad += r[k] < inf ? 0 : 1;
    if (bad == 0) continue;
    for (index_t k = 0; k < vocab; ++k)
      if (!(r[k] < inf))
        throw ValueError("decode.2", detail::str("log_probs at frame ", t, " label ", k, " is ", r[k],
                                                 "; expected a log-probability"));
  }
  return rows;
}

// Checks that batch decoding gets time-major [T, B, V] log-probabilities and B lengths.
template <class V>
void check_batch(TensorView<V> lp, std::size_t lengths, const char* what) {
  if (lp.rank() != 3 || static_cast<index_t>(lengths) != lp.dim(1))
    throw ShapeError("decode.1", detail::str(what, " needs [T, B, V] log_probs and B lengths, got shape ",
                                             lp.shape().str(), " and ", lengths, " lengths"));
}

/// Most keys rank_descending takes: about where a comparison sort catches up (measured with
/// the beam search's candidates, bench_decode).
inline constexpr std::int32_t kRankMax = 192;

/// Ranks n <= kRankMax keys in descending order, ties to the smaller id (ids distinct; null:
/// a key's position is its id), and calls place(j, rank of key j) for every j < n. The ranks
/// are counted with compares over the keys padded to a multiple of 16 (vectorised, no branch on
/// the data): n^2 / 16 vector steps, cheaper than a comparison sort, which mispredicts about
/// every other branch, up to about 200 keys. The first count compares keys alone; only when two
/// keys tie (two equal counts) is it redone with the ids. NaN keys are not allowed.
template <class K, class Id, class Place>
void rank_descending(const K* key, const Id* id, std::int32_t n, Place&& place) {
  alignas(64) K k[kRankMax];
  std::int32_t rank[kRankMax];
  std::uint64_t taken[kRankMax / 64] = {};
  const std::int32_t padded = (n + 15) & ~15;
  std::copy(key, key + n, k);
  std::fill(k + n, k + padded, -std::numeric_limits<K>::infinity());  // a pad is never ahead
  std::uint64_t ties = 0;
  for (std::int32_t j = 0; j < n; ++j) {
    const K kj = k[j];
    std::int32_t ahead = 0;
    for (std::int32_t i = 0; i < padded; ++i) ahead += static_cast<std::int32_t>(k[i] > kj);
    rank[j] = ahead;
    const std::uint64_t bit = std::uint64_t{1} << (ahead & 63);
    ties |= taken[ahead >> 6] & bit;
    taken[ahead >> 6] |= bit;
  }
  if (ties != 0) {
    alignas(64) Id d[kRankMax];
    if (id != nullptr) std::copy(id, id + n, d);
    else std::iota(d, d + n, Id{0});
    std::fill(d + n, d + padded, std::numeric_limits<Id>::max());  // a pad loses ties by its id
    for (std::int32_t j = 0; j < n; ++j) {
      const K kj = k[j];
      const Id dj = d[j];
      std::int32_t ahead = 0;
      for (std::int32_t i = 0; i < padded; ++i) ahead += static_cast<std::int32_t>((k[i] > kj) | ((k[i] == kj) & (d[i] < dj)));
      rank[j] = ahead;
    }
  }
  for (std::int32_t j = 0; j < n; ++j) place(j, rank[j]);
}

/// Writes to best[0, keep) the positions of the keep largest of n keys, largest first, ties to
/// the smaller id (as rank_descending; id may be null). `best` holds n entries. Up to kRankMax
/// keys they are ranked by rank_descending, beyond by nth_element and a sort of the kept ones.
template <class K, class Id>
void best_first(const K* key, const Id* id, std::int32_t n, std::int32_t keep, std::int32_t* best) {
  if (n <= kRankMax) {
    rank_descending(key, id, n, [&](std::int32_t j, std::int32_t rank) {
      if (rank < keep) best[rank] = j;
    });
    return;
  }
  std::iota(best, best + n, std::int32_t{0});
  const auto before = [&](std::int32_t a, std::int32_t b) {
    const Id ia = id != nullptr ? id[a] : static_cast<Id>(a), ib = id != nullptr ? id[b] : static_cast<Id>(b);
    return key[a] > key[b] || (key[a] == key[b] && ia < ib);
  };
  if (keep < n) std::nth_element(best, best + keep, best + n, before);
  std::sort(best, best + keep, before);
}

/// The k-th largest of n keys (1 <= k <= n; -inf allowed, NaN not). It builds, bit by bit from
/// the top, the largest key image T (the keys' bits mapped to unsigned integers in key order)
/// with at least k keys >= key(T); each step is one vectorised count, no branch on the data,
/// where nth_element over a hundred keys mispredicts about every other compare.
template <class K>
K kth_largest(const K* key, std::int32_t n, std::int32_t k) {
  static_assert(std::is_same_v<K, float> || std::is_same_v<K, double>, "kth_largest: float or double keys");
  using U = std::conditional_t<std::is_same_v<K, float>, std::uint32_t, std::uint64_t>;
  constexpr int kBits = 8 * sizeof(U);
  constexpr U kSign = U{1} << (kBits - 1);
  // Key order: non-negative keys above negative ones (sign flipped), negative keys reversed.
  const auto key_of = [](U t) {
    const U bits = (t & kSign) ? (t ^ kSign) : ~t;
    K out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
  };
  U t = 0;
  for (int b = kBits - 1; b >= 0; --b) {
    const U candidate = t | (U{1} << b);
    const K bar = key_of(candidate);
    std::int32_t at_least = 0;
    for (std::int32_t i = 0; i < n; ++i) at_least += static_cast<std::int32_t>(key[i] >= bar);
    t = at_least >= k ? candidate : t;
  }
  // Images below -inf's are NaNs, which no key reaches: the search stays there only when the
  // answer is -inf itself.
  const K result = key_of(t);
  return result == result ? result : -std::numeric_limits<K>::infinity();
}

// log(exp(a) + exp(b)), exact for -inf operands. When b < a - 40 the smaller term changes the
// sum's probability by a relative e^-40 < 2^-57, far below float or double rounding: return a.
inline double log_add(double a, double b) {
  if (a < b) std::swap(a, b);
  if (!(b - a > -40.0)) return a;  // also b = -inf (and a = b = -inf)
  return a + std::log1p(std::exp(b - a));
}

}  // namespace detail
}  // namespace asrkit
