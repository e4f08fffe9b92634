// Sequence layers without a suite of their own: RowConvolution (DS2 lookahead, SPECS §3.9),
// forward and forward + backward (dX and dW), float, at 1 and 2 threads. GFLOP/s count
// 2 (τ + 1) T B d per pass (forward 1 pass, forward + backward 3). Compare with PyTorch's
// Conv1d(d, d, τ + 1, groups = d) on the same shapes: bench/rowconv_compare.py.
//
//   rowconv_tau{20,80}/fwd      RowConvolution(1024, τ) on x [500, 8, 1024] (every frame valid)
//   rowconv_tau{20,80}/fwdbwd   forward_train + backward
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/row_conv.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kFrames = 500, kBatch = 8, kFeatures = 1024;

asrkit::Tensor<float> random(const asrkit::Shape& s, std::uint64_t seed) {
  asrkit::Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_uniform(t.view(), -1.0f, 1.0f);
  return t;
}

void bm_row_conv(benchmark::State& state, asrkit::index_t tau, bool backward, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(1);
  asrkit::RowConvolution<float> rc(kFeatures, tau, rng);
  const auto x = random({kFrames, kBatch, kFeatures}, 2);
  const auto dy = random({kFrames, kBatch, kFeatures}, 3);
  for (auto _ : state) {
    if (backward) {
      auto y = rc.forward_train(x);
      auto dx = rc.backward(dy);
      benchmark::DoNotOptimize(dx.data());
    } else {
      auto y = rc.forward(x);
      benchmark::DoNotOptimize(y.data());
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(tau + 1) * kFrames * kBatch * kFeatures;
  state.counters["GFLOPS"] = benchmark::Counter((backward ? 3.0 : 1.0) * flops * 1e-9 *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (asrkit::index_t tau : {20, 80}) {
      const std::string name = "rowconv_tau" + std::to_string(tau);
      benchmark::RegisterBenchmark((name + "/fwd" + t).c_str(), bm_row_conv, tau, false, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark((name + "/fwdbwd" + t).c_str(), bm_row_conv, tau, true, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
