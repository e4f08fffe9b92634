// Normalisation layers on a DS2-sized activation, x [T=500, B=8, F=1024] float: BatchNorm
// (training forward with batch statistics, forward + backward, each with x passed as a view,
// borrowed, and chained: each output moved into the next call; inference), sequence-wise BN
// with lengths (about 3/4 of the frames valid), LayerNorm (forward; forward + backward with x
// as a view, borrowed and chained, as BatchNorm).
// Threads 1 and 2. bench/norm_compare.py times PyTorch on the same shapes and prints ratios.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/layer_norm.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kT = 500, kB = 8, kF = 1024;

const asrkit::Tensor<float>& input(std::uint64_t seed) {
  static asrkit::Tensor<float> x[2];
  auto& t = x[seed & 1];
  if (t.numel() != kT * kB * kF) {
    t = asrkit::Tensor<float>({kT, kB, kF});
    asrkit::Rng rng(seed);
    rng.fill_normal(t.view(), 0.5f, 2.0f);
  }
  return t;
}

/// Lengths T, T - 40, ..., about 3/4 of the frames valid on average (sorted, as SortaGrad batches).
asrkit::Tensor<std::int32_t> lengths() {
  asrkit::Tensor<std::int32_t> l({kB});
  for (asrkit::index_t b = 0; b < kB; ++b) l(b) = static_cast<std::int32_t>(kT - 30 * b * 2);
  return l;
}

enum class Op { train_fwd, train_fwd_bwd, infer };
/// How the training forward gets x: the same input as a view each time (BatchNorm caches a
/// copy), borrowed (BatchNorm keeps the view: PyTorch autograd's reference), or chained, each
/// output moved into the next call (BatchNorm keeps it as its cache): as in a model, where x is
/// the freshly written output of the layer before.
enum class Input { view, borrowed, chained };

void bm_batch_norm(benchmark::State& state, Op op, Input in, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::BatchNorm<float> bn(kF);
  const auto& x = input(1);
  const auto& dy = input(2);
  asrkit::Tensor<float> carry(x.view());
  for (auto _ : state) {
    if (op == Op::infer) {
      benchmark::DoNotOptimize(bn.forward(x.view()).data());
    } else {
      auto y = in == Input::chained    ? bn.forward_train(std::move(carry))
               : in == Input::borrowed ? bn.forward_train(asrkit::borrow(x))
                                       : bn.forward_train(x.view());
      benchmark::DoNotOptimize(y.data());
      if (op == Op::train_fwd_bwd) benchmark::DoNotOptimize(bn.backward(dy.view()).data());
      if (in == Input::chained) carry = std::move(y);
    }
  }
  state.counters["threads"] = threads;
}

void bm_sequence_batch_norm(benchmark::State& state, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::SequenceBatchNorm<float> bn(kF);
  const auto& x = input(1);
  const auto& dy = input(2);
  const auto len = lengths();
  for (auto _ : state) {
    auto y = bn.forward_train(x.view(), len.view());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(bn.backward(dy.view()).data());
  }
  state.counters["threads"] = threads;
}

void bm_layer_norm(benchmark::State& state, bool backward, Input in, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::LayerNorm<float> ln(kF);
  const auto& x = input(1);
  const auto& dy = input(2);
  asrkit::Tensor<float> carry(x.view());
  for (auto _ : state) {
    if (!backward) {
      benchmark::DoNotOptimize(ln.forward(x.view()).data());  // per-frame: training == inference
      continue;
    }
    auto y = in == Input::chained    ? ln.forward_train(std::move(carry))
             : in == Input::borrowed ? ln.forward_train(asrkit::borrow(x))
                                     : ln.forward_train(x.view());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(ln.backward(dy.view()).data());
    if (in == Input::chained) carry = std::move(y);
  }
  state.counters["threads"] = threads;
}

const int registered = [] {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    auto ms = [](benchmark::internal::Benchmark* b) {
      b->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    for (Input in : {Input::view, Input::borrowed, Input::chained}) {
      const std::string how = in == Input::chained ? "_chained" : in == Input::borrowed ? "_borrowed" : "";
      ms(benchmark::RegisterBenchmark(("norm/batch_norm_train_fwd" + how + t).c_str(),
                                      bm_batch_norm, Op::train_fwd, in, threads));
      ms(benchmark::RegisterBenchmark(("norm/batch_norm_train_fwd_bwd" + how + t).c_str(),
                                      bm_batch_norm, Op::train_fwd_bwd, in, threads));
    }
    ms(benchmark::RegisterBenchmark(("norm/batch_norm_infer" + t).c_str(), bm_batch_norm, Op::infer,
                                    Input::view, threads));
    ms(benchmark::RegisterBenchmark(("norm/sequence_batch_norm_fwd_bwd" + t).c_str(),
                                    bm_sequence_batch_norm, threads));
    ms(benchmark::RegisterBenchmark(("norm/layer_norm_fwd" + t).c_str(), bm_layer_norm, false,
                                    Input::view, threads));
    for (Input in : {Input::view, Input::borrowed, Input::chained}) {
      const std::string how = in == Input::chained ? "_chained" : in == Input::borrowed ? "_borrowed" : "";
      ms(benchmark::RegisterBenchmark(("norm/layer_norm_fwd_bwd" + how + t).c_str(), bm_layer_norm,
                                      true, in, threads));
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
