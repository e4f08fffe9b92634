// BN-LSTM (Cooijmans et al. 2017) against asrkit's plain LSTM of the same size, and the residual
// LSTM (Kim et al. 2017) at its default size: the cost of the per-step normalisation. Float,
// T = 500, batch 8, unidirectional, forward (inference) and forward + backward (training), at 1
// and 2 threads. bench/bn_lstm_compare.py runs this and prints BN-LSTM / LSTM ratios (target:
// BN-LSTM within 1.3x of the plain LSTM), with torch.nn.LSTM on the same shapes for context.
//
//   lstm/fwd, lstm/fwdbwd           asrkit::LSTM(800 -> 800) on x [500, 8, 800]
//   bnlstm/fwd, bnlstm/fwdbwd       asrkit::BNLSTM(800 -> 800), per-step input BN, T_max = 500
//   bnlstm_seq/fwd, .../fwdbwd      the same with the sequence-wise input BN ("BN-e*")
//   reslstm/fwd, reslstm/fwdbwd     asrkit::ResidualLSTM(512; d_cell 1024, d_out 512), identity
//   shortcut
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/bn_lstm.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/nn/residual_lstm.hpp>

#include <benchmark/benchmark.h>

#include <string>

namespace {

constexpr asrkit::index_t kSteps = 500, kBatch = 8, kHidden = 800;

asrkit::Tensor<float> random(const asrkit::Shape& s, std::uint64_t seed) {
  asrkit::Tensor<float> t(s);
  asrkit::Rng rng(seed);
  rng.fill_uniform(t.view(), -1.0f, 1.0f);
  return t;
}

template <class Layer>
void run(benchmark::State& state, Layer& layer, asrkit::index_t input, bool backward, int threads) {
  asrkit::set_num_threads(threads);
  const auto x = random({kSteps, kBatch, input}, 1);
  const auto dy = random({kSteps, kBatch, layer.output_size()}, 2);
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
  state.counters["threads"] = threads;
}

void bm_lstm(benchmark::State& state, bool backward, int threads) {
  asrkit::Rng rng(3);
  asrkit::LSTM<float> lstm(kHidden, kHidden, {}, rng);
  run(state, lstm, kHidden, backward, threads);
}

void bm_bnlstm(benchmark::State& state, asrkit::BNLSTMInputNorm norm, bool backward, int threads) {
  asrkit::Rng rng(3);
  asrkit::BNLSTMOptions o;
  o.max_steps = kSteps;
  o.input_norm = norm;
  asrkit::BNLSTM<float> lstm(kHidden, kHidden, o, rng);
  run(state, lstm, kHidden, backward, threads);
}

void bm_reslstm(benchmark::State& state, bool backward, int threads) {
  asrkit::Rng rng(3);
  asrkit::ResidualLSTM<float> lstm(512, {}, rng);  // d_cell 1024, d_out 512
  run(state, lstm, 512, backward, threads);
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (bool bwd : {false, true}) {
      const std::string pass = bwd ? "/fwdbwd" : "/fwd";
      benchmark::RegisterBenchmark(("lstm" + pass + t).c_str(), bm_lstm, bwd, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("bnlstm" + pass + t).c_str(), bm_bnlstm,
                                   asrkit::BNLSTMInputNorm::per_step, bwd, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("bnlstm_seq" + pass + t).c_str(), bm_bnlstm,
                                   asrkit::BNLSTMInputNorm::sequence, bwd, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("reslstm" + pass + t).c_str(), bm_reslstm, bwd, threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
