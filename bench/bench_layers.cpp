// Linear, Conv2d and raw GEMM throughput (float), forward and forward + backward, at 1 and 2
// threads. GFLOP/s counters count 2 m n k per product: a layer's forward is one GEMM-sized product,
// forward + backward three (dX and dW). Compare with PyTorch on the same shapes:
// bench/layers_compare.py (run by ./asrkit bench).
//
//   linear/fwd         Linear(1024 -> 4096) on x [8, 500, 1024] (4000 frames)
//   conv2d_b{1,8}/fwd  Conv2d(1 -> 32, kernel 41x11, stride 2, padding 20x5) on [B, 1, 161, 1000]
//   gemm/M/N/K         C[M, N] = A[M, K] B[K, N]^T (row-major, as a Linear forward)
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/ops/gemm.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

asrkit::Tensor<float> random(const asrkit::Shape& s, std::uint64_t seed) {
  asrkit::Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_uniform(t.view(), -1.0f, 1.0f);
  return t;
}

void set_flops(benchmark::State& state, double flops_per_iter, int threads) {
  state.counters["GFLOPS"] = benchmark::Counter(flops_per_iter * 1e-9 * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

void bm_gemm(benchmark::State& state, asrkit::index_t m, asrkit::index_t n, asrkit::index_t k, int threads) {
  asrkit::set_num_threads(threads);
  const auto a = random({m, k}, 1), b = random({n, k}, 2);
  asrkit::Tensor<float> c({m, n});
  for (auto _ : state) {
    asrkit::ops::gemm(asrkit::ops::Trans::no, asrkit::ops::Trans::yes, 1.0f, a, b, 0.0f, c.view());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * m * n * k, threads);
}

void bm_linear(benchmark::State& state, bool backward, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(3);
  asrkit::Linear<float> fc(1024, 4096, rng);
  const auto x = random({8, 500, 1024}, 4);
  const auto dy = random({8, 500, 4096}, 5);
  for (auto _ : state) {
    if (backward) {
      auto y = fc.forward_train(x);
      auto dx = fc.backward(dy);
      benchmark::DoNotOptimize(dx.data());
    } else {
      auto y = fc.forward(x);
      benchmark::DoNotOptimize(y.data());
    }
    benchmark::ClobberMemory();
  }
  set_flops(state, (backward ? 3.0 : 1.0) * 2.0 * 4000 * 1024 * 4096, threads);
}

void bm_conv2d(benchmark::State& state, asrkit::index_t batch, bool backward, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(6);
  asrkit::Conv2dOptions o;
  o.kernel = {41, 11};
  o.stride = {2, 2};
  o.padding = {20, 5};
  asrkit::Conv2d<float> conv(1, 32, o, rng);
  const auto x = random({batch, 1, 161, 1000}, 7);
  const auto ys = conv.output_shape(x.shape());
  const auto dy = random(ys, 8);
  for (auto _ : state) {
    if (backward) {
      auto y = conv.forward_train(x);
      auto dx = conv.backward(dy);
      benchmark::DoNotOptimize(dx.data());
    } else {
      auto y = conv.forward(x);
      benchmark::DoNotOptimize(y.data());
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(ys.numel()) * 41 * 11;  // per output: K MACs
  set_flops(state, (backward ? 3.0 : 1.0) * flops, threads);
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(("gemm/4000/4096/1024" + t).c_str(), bm_gemm, 4000, 4096, 1024, threads)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("gemm/1024/1024/1024" + t).c_str(), bm_gemm, 1024, 1024, 1024, threads)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("linear/fwd" + t).c_str(), bm_linear, false, threads)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("linear/fwdbwd" + t).c_str(), bm_linear, true, threads)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    for (asrkit::index_t b : {1, 8}) {
      const std::string name = "conv2d_b" + std::to_string(b);
      benchmark::RegisterBenchmark((name + "/fwd" + t).c_str(), bm_conv2d, b, false, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark((name + "/fwdbwd" + t).c_str(), bm_conv2d, b, true, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
