// The CTC benchmark workloads of issue 3 (N(0,1) inputs, random labels, full lengths), made by
// asrkit::Rng so that bench_ctc and the PyTorch comparison (bench/ctc_compare.py, via
// `bench_ctc --dump=DIR`) see identical inputs.
#pragma once

#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace asrkit_bench {

struct CtcWorkload {
  const char* name;
  asrkit::index_t frames, labels, vocab, batch;
};

inline const std::vector<CtcWorkload>& ctc_workloads() {
  static const std::vector<CtcWorkload> w{
      {"a", 150, 40, 29, 32}, {"b", 700, 100, 29, 32}, {"c", 150, 40, 5000, 16}, {"d", 1000, 200, 1000, 8}};
  return w;
}

template <class T>
struct CtcInputs {
  asrkit::Tensor<T> logits, log_probs;  // [T, B, V]
  std::vector<std::int32_t> targets, input_lengths, target_lengths;  // concatenated targets
};

template <class T>
CtcInputs<T> make_ctc_inputs(const CtcWorkload& w) {
  asrkit::Rng rng(2026);
  CtcInputs<T> in;
  in.logits = asrkit::Tensor<T>({w.frames, w.batch, w.vocab});
  rng.fill_normal(in.logits.view(), T(0), T(1));
  in.log_probs = in.logits;
  auto m = in.log_probs.matrix();
  for (asrkit::index_t r = 0; r < m.rows(); ++r) {
    const T mx = m.row(r).maxCoeff();
    m.row(r).array() -= mx + std::log((m.row(r).array() - mx).exp().sum());
  }
  for (asrkit::index_t b = 0; b < w.batch; ++b) {
    for (asrkit::index_t i = 0; i < w.labels; ++i)  // labels 1..V-1, blank 0
      in.targets.push_back(static_cast<std::int32_t>(1 + rng.uniform_int(static_cast<std::uint64_t>(w.vocab - 1))));
    in.input_lengths.push_back(static_cast<std::int32_t>(w.frames));
    in.target_lengths.push_back(static_cast<std::int32_t>(w.labels));
  }
  return in;
}

}  // namespace asrkit_bench
