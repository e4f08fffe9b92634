// Shared by the decoder tests: seeded random log-probabilities and the exact probability of
// every label sequence by enumerating all V^T CTC paths (tiny T and V only).
#pragma once

#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace asrkit_test {

inline asrkit::Tensor<double> random_log_probs(std::uint64_t seed, asrkit::index_t frames, asrkit::index_t vocab,
                                               double scale) {
  asrkit::Rng rng(seed);
  asrkit::Tensor<double> lp({frames, vocab});
  rng.fill_normal(lp.view(), 0.0, scale);
  for (asrkit::index_t t = 0; t < frames; ++t) {
    auto row = lp.matrix().row(t).array();
    row -= std::log(row.exp().sum());
  }
  return lp;
}

// Total probability of every label sequence, by enumerating all V^T paths.
inline std::map<std::vector<std::int32_t>, double> enumerate_ctc(const asrkit::Tensor<double>& lp, int blank) {
  const asrkit::index_t frames = lp.dim(0), vocab = lp.dim(1);
  std::map<std::vector<std::int32_t>, double> out;
  std::vector<int> path(static_cast<std::size_t>(frames));
  std::function<void(asrkit::index_t)> walk = [&](asrkit::index_t t) {
    if (t == frames) {
      std::vector<std::int32_t> labels;
      int prev = -1;
      double logp = 0;
      for (asrkit::index_t s = 0; s < frames; ++s) {
        const int k = path[static_cast<std::size_t>(s)];
        logp += lp(s, k);
        if (k != prev && k != blank) labels.push_back(k);
        prev = k;
      }
      out[labels] += std::exp(logp);
      return;
    }
    for (int k = 0; k < vocab; ++k) path[static_cast<std::size_t>(t)] = k, walk(t + 1);
  };
  walk(0);
  return out;
}

}  // namespace asrkit_test
