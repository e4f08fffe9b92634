// BN folding (transform/fusionformer.hpp; SPECS §10.3-10.4): inference forward of
//   (a) ConformerBlock (LayerNorm, Swish, GLU),
//   (b) FusionFormerBlock with its BNs (unfolded),
//   (c) the same FusionFormerBlock after transform::fold_batch_norms,
// at equal size: D = 256, 4 heads, FFN 1024 and 2048, kernel 15, T = 250 frames (10 s after 4x
// subsampling), B = 1 and 8, 1 and 2 threads; and the 12-layer encoders at FFN 1024, B = 1.
//
//   conformer_*/fwd, fusionformer_*/fwd, fusionformer_folded_*/fwd   one model per benchmark
//   compare_*                                                         (a), (b), (c) interleaved in
//       one loop (same machine state for all three); counters a_ms, b_ms, c_ms and the ratios
//       folded_vs_unfolded = c / b and folded_vs_conformer = c / a (the FusionFormer paper claims
//       c / a ~ 0.9; < 0.9 is ">= 10% faster").
// Weights are random; the BNs get random running statistics and γ, β (folding then does real
// work). Run: build-*/bench/bench_fold [--benchmark_filter=compare] [--benchmark_repetitions=3].
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/transform/fusionformer.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

namespace {

constexpr asrkit::index_t kD = 256, kHeads = 4, kKernel = 15, kT = 250, kLayers = 12;

asrkit::ConformerBlockOptions options(asrkit::index_t ff) {
  asrkit::ConformerBlockOptions o;
  o.heads = kHeads;
  o.ff = ff;
  o.kernel = kKernel;
  return o;
}

/// Trained-looking BNs: running statistics away from 0 / 1, random γ, β.
template <class Module>
void randomize_batch_norms(Module& m) {
  asrkit::Rng rng(7);
  m.for_each_buffer([&](const std::string& n, auto& b) {
    using V = typename std::decay_t<decltype(b)>::value_type;
    if constexpr (std::is_floating_point_v<V>) {
      if (n.find("running_var") != std::string::npos) rng.fill_uniform(b.view(), V(0.5), V(2));
      else rng.fill_uniform(b.view(), V(-0.5), V(0.5));
    }
  });
}

/// The three models of one size: Conformer, FusionFormer unfolded, FusionFormer folded.
template <class C, class F>
struct Trio {
  C conformer;
  F fusion, folded;
  template <class... Args>
  Trio(asrkit::Rng& rng, Args... args) : conformer(args..., rng), fusion(args..., rng), folded(fusion) {
    randomize_batch_norms(fusion);
    folded = fusion;
    asrkit::transform::fold_batch_norms(folded);
  }
};

using BlockTrio = Trio<asrkit::ConformerBlock<float>, asrkit::FusionFormerBlock<float>>;
using EncoderTrio =
    Trio<asrkit::Encoder<asrkit::ConformerBlock<float>>, asrkit::Encoder<asrkit::FusionFormerBlock<float>>>;

struct Input {
  asrkit::Tensor<float> x, pos;
  explicit Input(asrkit::index_t batch) : x({kT, batch, kD}), pos(asrkit::RelPositionalEncoding<float>(kD).table(kT)) {
    asrkit::Rng rng(3);
    rng.fill_uniform(x.view(), -1.0f, 1.0f);
  }
};

asrkit::Tensor<float> run(const asrkit::ConformerBlock<float>& b, const Input& in) {
  return b.forward(in.x.view(), in.pos.view());
}
template <class Block>
asrkit::Tensor<float> run(const asrkit::Encoder<Block>& e, const Input& in) {
  return e.forward(in.x.view()).output;
}

template <class Trio>
Trio make_trio(asrkit::index_t ff) {
  asrkit::Rng rng(1);
  if constexpr (std::is_same_v<Trio, BlockTrio>)
    return Trio(rng, kD, options(ff));
  else
    return Trio(rng, kLayers, kD, options(ff), asrkit::EncoderOptions{});
}

// which: 0 conformer, 1 fusionformer (unfolded), 2 fusionformer folded.
template <class Trio>
void bm_one(benchmark::State& state, int which, asrkit::index_t ff, asrkit::index_t batch, int threads) {
  asrkit::set_num_threads(threads);
  const auto trio = make_trio<Trio>(ff);
  const Input in(batch);
  for (auto _ : state) {
    auto y = which == 0 ? run(trio.conformer, in) : which == 1 ? run(trio.fusion, in) : run(trio.folded, in);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = threads;
}

// (a), (b), (c) in turn every iteration, each timed on its own; ratios of the totals.
template <class Trio>
void bm_compare(benchmark::State& state, asrkit::index_t ff, asrkit::index_t batch, int threads) {
  asrkit::set_num_threads(threads);
  const auto trio = make_trio<Trio>(ff);
  const Input in(batch);
  double total[3] = {0, 0, 0};
  for (auto _ : state) {
    for (int which = 0; which < 3; ++which) {
      const auto t0 = std::chrono::steady_clock::now();
      auto y = which == 0 ? run(trio.conformer, in) : which == 1 ? run(trio.fusion, in) : run(trio.folded, in);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
      total[which] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["a_ms"] = total[0] / n;
  state.counters["b_ms"] = total[1] / n;
  state.counters["c_ms"] = total[2] / n;
  state.counters["folded_vs_unfolded"] = total[2] / total[1];
  state.counters["folded_vs_conformer"] = total[2] / total[0];
  state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
  const char* names[3] = {"conformer", "fusionformer", "fusionformer_folded"};
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (asrkit::index_t ff : {1024, 2048})
      for (asrkit::index_t b : {1, 8}) {
        const std::string size = "_ff" + std::to_string(ff) + "_b" + std::to_string(b);
        for (int which = 0; which < 3; ++which)
          benchmark::RegisterBenchmark((names[which] + size + "/fwd" + t).c_str(), bm_one<BlockTrio>, which, ff, b, threads)
              ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("compare" + size + t).c_str(), bm_compare<BlockTrio>, ff, b, threads)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    benchmark::RegisterBenchmark(("compare_encoder12_ff1024_b1" + t).c_str(), bm_compare<EncoderTrio>,
                                 asrkit::index_t{1024}, asrkit::index_t{1}, threads)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
