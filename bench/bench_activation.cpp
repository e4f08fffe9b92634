// Activation and dropout layers on a DS2-sized activation, x [T=500, B=8, F=1024] float:
// ClippedReLU (DS2), SELU (SNDCNN), Swish (Conformer), inference forward and training forward +
// backward; GLU ([T, B, 2F] -> [T, B, F], the Conformer convolution module), Dropout (p = 0.1)
// and AlphaDropout (p = 0.05), training forward + backward. x is passed as a view, as the layers
// take it. Threads 1 and 2. bench/activation_compare.py times PyTorch on the same shapes and
// prints ratios.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/dropout.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kT = 500, kB = 8, kF = 1024;

asrkit::Tensor<float> normal(asrkit::index_t features, std::uint64_t seed) {
  asrkit::Tensor<float> t({kT, kB, features});
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0f, 1.0f);
  return t;
}

/// forward (inference) or forward_train + backward of `layer` on x, dy.
template <class Layer>
void run(benchmark::State& state, Layer& layer, asrkit::index_t in_features, asrkit::index_t out_features,
         bool backward, int threads) {
  asrkit::set_num_threads(threads);
  const auto x = normal(in_features, 1);
  const auto dy = normal(out_features, 2);
  for (auto _ : state) {
    if (!backward) {
      benchmark::DoNotOptimize(layer.forward(x.view()).data());
      continue;
    }
    benchmark::DoNotOptimize(layer.forward_train(x.view()).data());
    benchmark::DoNotOptimize(layer.backward(dy.view()).data());
  }
  state.counters["threads"] = threads;
}

template <class Layer, class... Args>
void register_layer(const std::string& name, bool inference, int threads, asrkit::index_t in,
                    asrkit::index_t out, Args... args) {
  const std::string t = "/threads:" + std::to_string(threads);
  for (bool backward : {false, true}) {
    if (!backward && !inference) continue;
    benchmark::RegisterBenchmark(("activation/" + name + (backward ? "_fwd_bwd" : "_fwd") + t).c_str(),
                                 [=](benchmark::State& state) {
                                   Layer layer(args...);
                                   run(state, layer, in, out, backward, threads);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

const int registered = [] {
  for (int threads : {1, 2}) {
    register_layer<asrkit::ClippedReLU<float>>("clipped_relu", true, threads, kF, kF, 20.0f);
    register_layer<asrkit::SELU<float>>("selu", true, threads, kF, kF);
    register_layer<asrkit::Swish<float>>("swish", true, threads, kF, kF);
    register_layer<asrkit::GLU<float>>("glu", true, threads, 2 * kF, kF);
    register_layer<asrkit::Dropout<float>>("dropout", false, threads, kF, kF, 0.1, std::uint64_t(7));
    register_layer<asrkit::AlphaDropout<float>>("alpha_dropout", false, threads, kF, kF, 0.05,
                                                std::uint64_t(7));
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
