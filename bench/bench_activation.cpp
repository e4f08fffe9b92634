// Activation and dropout layers on a DS2-sized activation, x [T=500, B=8, F=1024] float:
// ClippedReLU (DS2), SELU (SNDCNN), Swish (Conformer), inference forward and training forward +
// backward; GLU ([T, B, 2F] -> [T, B, F], the Conformer convolution module), Dropout (p = 0.1)
// and AlphaDropout (p = 0.05), training forward + backward. x is passed as a view (the layer
// caches a byte mask for clipped ReLU, a copy of y for SELU, of x for Swish and GLU);
// *_fwd_bwd_borrowed lends it (asrkit::borrow: the layer keeps x, as PyTorch autograd keeps a
// reference). Threads 1 and 2. bench/activation_compare.py times PyTorch on the same shapes and
// prints ratios.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/dropout.hpp>

#include <benchmark/benchmark.h>

#include <initializer_list>
#include <string>
#include <type_traits>

namespace {

constexpr asrkit::index_t kT = 500, kB = 8, kF = 1024;

asrkit::Tensor<float> normal(asrkit::index_t features, std::uint64_t seed) {
  asrkit::Tensor<float> t({kT, kB, features});
  asrkit::Rng rng(seed);
  rng.fill_normal(t.view(), 0.0f, 1.0f);
  return t;
}

enum class Op { fwd, fwd_bwd, fwd_bwd_borrowed };

/// forward (inference) or forward_train + backward of `layer` on x, dy.
template <class Layer>
void run(benchmark::State& state, Layer& layer, asrkit::index_t in_features, asrkit::index_t out_features,
         Op op, int threads) {
  asrkit::set_num_threads(threads);
  const auto x = normal(in_features, 1);
  const auto dy = normal(out_features, 2);
  for (auto _ : state) {
    if (op == Op::fwd) {
      benchmark::DoNotOptimize(layer.forward(x.view()).data());
      continue;
    }
    if constexpr (std::is_invocable_v<decltype(&Layer::forward_train), Layer&, asrkit::Borrowed<float>>) {
      if (op == Op::fwd_bwd_borrowed)
        benchmark::DoNotOptimize(layer.forward_train(asrkit::borrow(x)).data());
      else
        benchmark::DoNotOptimize(layer.forward_train(x.view()).data());
    } else {
      benchmark::DoNotOptimize(layer.forward_train(x.view()).data());
    }
    benchmark::DoNotOptimize(layer.backward(dy.view()).data());
  }
  state.counters["threads"] = threads;
}

/// Registers `ops` of Layer(args...) as activation/NAME_{fwd,fwd_bwd,fwd_bwd_borrowed}/threads:N.
template <class Layer, class... Args>
void register_layer(const std::string& name, std::initializer_list<Op> ops, int threads,
                    asrkit::index_t in, asrkit::index_t out, Args... args) {
  const std::string t = "/threads:" + std::to_string(threads);
  for (Op op : ops) {
    const char* what = op == Op::fwd ? "_fwd" : op == Op::fwd_bwd ? "_fwd_bwd" : "_fwd_bwd_borrowed";
    benchmark::RegisterBenchmark(("activation/" + name + what + t).c_str(),
                                 [=](benchmark::State& state) {
                                   Layer layer(args...);
                                   run(state, layer, in, out, op, threads);
                                 })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

const int registered = [] {
  for (int threads : {1, 2}) {
    const auto all = {Op::fwd, Op::fwd_bwd, Op::fwd_bwd_borrowed};
    register_layer<asrkit::ClippedReLU<float>>("clipped_relu", all, threads, kF, kF, 20.0f);
    register_layer<asrkit::SELU<float>>("selu", all, threads, kF, kF);
    register_layer<asrkit::Swish<float>>("swish", all, threads, kF, kF);
    register_layer<asrkit::GLU<float>>("glu", {Op::fwd, Op::fwd_bwd}, threads, 2 * kF, kF);
    register_layer<asrkit::Dropout<float>>("dropout", {Op::fwd_bwd}, threads, kF, kF, 0.1,
                                           std::uint64_t(7));
    register_layer<asrkit::AlphaDropout<float>>("alpha_dropout", {Op::fwd_bwd}, threads, kF, kF, 0.05,
                                                std::uint64_t(7));
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
