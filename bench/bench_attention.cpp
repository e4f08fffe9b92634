// Multi-head self-attention (float), forward and forward + backward, at 1 and 2 threads.
// Compare with PyTorch on the same shapes: bench/attention_compare.py (run by ./asrkit bench).
//
//   mha_T{250,500}_B{1,8}/fwd     MultiHeadAttention(256, 4 heads) on x [T, B, 256], all frames
//   valid rel_T{250,500}_B{1,8}/fwd     RelPositionMultiHeadAttention(256, 4) with pos_emb [2T - 1,
//   256] mha_T250_B8/fwdbwd, rel_T250_B8/fwdbwd   forward_train + backward
// GFLOP/s counts the four D x D projections (2·T·B·D² each; rel adds linear_pos on 2T − 1 rows)
// and the two T x T score / context products per head (2·B·T²·D each; rel adds the position
// scores, 2·B·T²·D more). Forward + backward counts 3x the forward.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/positional_encoding.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kD = 256, kHeads = 4;

asrkit::Tensor<float> random(const asrkit::Shape& s, std::uint64_t seed) {
  asrkit::Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_uniform(t.view(), -1.0f, 1.0f);
  return t;
}

double forward_flops(asrkit::index_t steps, asrkit::index_t batch, bool relative) {
  const double t = static_cast<double>(steps), b = static_cast<double>(batch), d = kD;
  double f = 4 * 2 * t * b * d * d + 2 * 2 * b * t * t * d;
  if (relative) f += 2 * (2 * t - 1) * d * d + 2 * b * t * t * d;
  return f;
}

template <class Layer>
void bm_attention(benchmark::State& state, asrkit::index_t steps, asrkit::index_t batch,
                  bool backward, int threads) {
  constexpr bool relative = std::is_same_v<Layer, asrkit::RelPositionMultiHeadAttention<float>>;
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(1);
  Layer layer(kD, kHeads, rng);
  const auto x = random({steps, batch, kD}, 2);
  const auto dy = random({steps, batch, kD}, 3);
  const auto pos = asrkit::RelPositionalEncoding<float>(kD).table(steps);
  for (auto _ : state) {
    if constexpr (relative) {
      if (backward) {
        auto y = layer.forward_train(x, pos);
        benchmark::DoNotOptimize(layer.backward(dy).data());
      } else {
        benchmark::DoNotOptimize(layer.forward(x, pos).data());
      }
    } else {
      if (backward) {
        auto y = layer.forward_train(x);
        benchmark::DoNotOptimize(layer.backward(dy).data());
      } else {
        benchmark::DoNotOptimize(layer.forward(x).data());
      }
    }
    benchmark::ClobberMemory();
  }
  const double flops = (backward ? 3.0 : 1.0) * forward_flops(steps, batch, relative);
  state.counters["GFLOPS"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (asrkit::index_t steps : {250, 500})
      for (asrkit::index_t batch : {1, 8}) {
        const std::string shape = "_T" + std::to_string(steps) + "_B" + std::to_string(batch);
        benchmark::RegisterBenchmark(("mha" + shape + "/fwd" + t).c_str(),
                                     bm_attention<asrkit::MultiHeadAttention<float>>, steps, batch,
                                     false, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("rel" + shape + "/fwd" + t).c_str(),
                                     bm_attention<asrkit::RelPositionMultiHeadAttention<float>>,
                                     steps, batch, false, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    benchmark::RegisterBenchmark(("mha_T250_B8/fwdbwd" + t).c_str(),
                                 bm_attention<asrkit::MultiHeadAttention<float>>, 250, 8, true,
                                 threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("rel_T250_B8/fwdbwd" + t).c_str(),
                                 bm_attention<asrkit::RelPositionMultiHeadAttention<float>>, 250, 8,
                                 true, threads)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
