// Recurrent layers (float), DS2-like sizes: input 800, hidden 800, T = 500, batch 1 and 8,
// unidirectional and bidirectional (merge sum), forward and forward + backward, at 1 and 2
// threads. Compare with PyTorch's nn.LSTM / GRU / RNN on the same shapes:
// bench/rnn_compare.py (same thread count, same run).
//
//   {lstm,gru,rnn}_b{1,8}_{uni,bi}/{fwd,fwdbwd}/threads:N
//
// GFLOP/s counts the matrix products only: per frame and direction 2·G·H·(F + H) forward
// (projection + recurrence), three times that forward + backward.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/recurrent.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kSteps = 500, kInput = 800, kHidden = 800;

asrkit::Tensor<float> random(const asrkit::Shape& s, std::uint64_t seed) {
  asrkit::Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_uniform(t.view(), -1.0f, 1.0f);
  return t;
}

template <class Layer, class Options>
void bm_rnn(benchmark::State& state, asrkit::index_t gates, asrkit::index_t batch, bool bidirectional,
            bool backward, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(3);
  Options o;
  o.bidirectional = bidirectional;
  o.merge = asrkit::RecurrentMerge::sum;
  Layer layer(kInput, kHidden, o, rng);
  const auto x = random({kSteps, batch, kInput}, 4);
  const auto dy = random({kSteps, batch, kHidden}, 5);
  for (auto _ : state) {
    if (backward) {
      auto y = layer.forward_train(x);
      auto dx = layer.backward(dy);
      benchmark::DoNotOptimize(dx.data());
    } else {
      auto y = layer.forward(x);
      benchmark::DoNotOptimize(y.data());
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * gates * kHidden * (kInput + kHidden) * kSteps * batch * (bidirectional ? 2 : 1);
  state.counters["GFLOPS"] = benchmark::Counter((backward ? 3.0 : 1.0) * flops * 1e-9 *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

template <class Layer, class Options>
void register_cell(const std::string& cell, asrkit::index_t gates, int threads) {
  for (asrkit::index_t b : {1, 8})
    for (bool bi : {false, true})
      for (bool bwd : {false, true}) {
        const std::string name = cell + "_b" + std::to_string(b) + (bi ? "_bi" : "_uni") +
                                 (bwd ? "/fwdbwd" : "/fwd") + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), bm_rnn<Layer, Options>, gates, b, bi, bwd, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    register_cell<asrkit::LSTM<float>, asrkit::LSTMOptions>("lstm", 4, threads);
    register_cell<asrkit::GRU<float>, asrkit::GRUOptions>("gru", 3, threads);
    register_cell<asrkit::RNN<float>, asrkit::RNNOptions>("rnn", 1, threads);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
