// Deep Speech 2 (examples/ds2, float) at the paper's sizes: 2 convs of 32 channels, 5 GRU
// layers of 800, bidirectional ("paper") and forward-only with a 20-frame lookahead
// ("paper_forward"), on 10 s of audio (1000 spectrogram frames of 161 bins, every item full
// length). Inference at batch 1 and 8; a training step (forward with batch statistics, CTC on
// the logits, backward into every parameter) at batch 8; 1 and 2 threads.
//
//   ds2_{paper,paper_forward}_b{1,8}/infer/threads:N
//   ds2_{paper,paper_forward}_b8/train/threads:N
//
// The "GFLOP" counter is the work of one iteration's matrix products and convolutions (per
// frame: 2·C_out·C_in·k_h·k_w per conv output position, 2·3H·F_in for the shared GRU input
// projection, 2·3H·H per direction for the recurrence, 2·H·V for the output layer); training
// counts 3× that. bench/ds2_compare.py runs the same model in PyTorch on the same weights and
// inputs (it first calls `bench_ds2 --dump DIR` for them and checks the logits) and prints the
// ratios.
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/loss/ctc.hpp>
#include <asrkit/train/checkpoint.hpp>

#include <benchmark/benchmark.h>

#include "ds2/ds2_model.hpp"

#include <cstring>
#include <string>

namespace {

using asrkit::index_t;
constexpr index_t kFrames = 1000, kTargetLength = 120;

ds2::Config config_named(const std::string& name) {
  return name == "paper" ? ds2::Config::paper(true) : ds2::Config::paper(false);
}

/// Multiply-adds ×2 of one inference forward (see the header comment).
double forward_flop(const ds2::Config& c, index_t batch) {
  double flop = 0;
  index_t rows = c.bins, frames = kFrames, channels = 1;
  for (const auto& s : c.convs) {
    rows = s.output_size(rows, 0);
    frames = s.output_size(frames, 1);
    flop += 2.0 * s.channels * channels * s.kernel[0] * s.kernel[1] * rows * frames;
    channels = s.channels;
  }
  index_t features = channels * rows;
  const double gates = c.cell == "gru" ? 3 : 1, dirs = c.bidirectional ? 2 : 1;
  for (index_t l = 0; l < c.rnn_layers; ++l) {
    flop += 2.0 * gates * c.hidden * (features + dirs * c.hidden) * frames;
    features = c.hidden;
  }
  flop += 2.0 * c.hidden * c.vocab * frames;
  return flop * batch;
}

asrkit::Tensor<float> random_features(index_t batch, std::uint64_t seed) {
  asrkit::Tensor<float> x({kFrames, batch, 161});
  asrkit::Rng rng(seed);
  rng.fill_uniform(x.view(), -1.0f, 1.0f);
  return x;
}

/// One benchmark's model and data, built the same way for the timings and for --dump.
struct Workload {
  ds2::Config config;
  asrkit::Rng rng{7};
  ds2::Model<float> model{config, rng};
  asrkit::Tensor<float> features;
  asrkit::Tensor<std::int32_t> targets, target_lengths;

  Workload(const std::string& name, index_t batch)
      : config(config_named(name)),
        features(random_features(batch, 11)),
        targets({batch, kTargetLength}),
        target_lengths({batch}) {
    // Labels 1..V-1, kTargetLength per item (10 s of speech is ~150 characters).
    for (index_t i = 0; i < targets.numel(); ++i)
      targets.data()[i] = static_cast<std::int32_t>(
          1 + rng.uniform_int(static_cast<std::uint64_t>(config.vocab - 1)));
    target_lengths.fill(static_cast<std::int32_t>(kTargetLength));
  }
};

void bm_ds2(benchmark::State& state, const std::string& name, index_t batch, bool train,
            int threads) {
  asrkit::set_num_threads(threads);
  Workload w(name, batch);
  asrkit::CtcOptions ctc;
  ctc.input = asrkit::CtcInput::logits;  // softmax fused into the loss, mean reduction
  for (auto _ : state) {
    if (train) {
      w.model.for_each_parameter([](const std::string&, auto& p) { p.zero_grad(); });
      auto out = w.model.forward_train(w.features.view());
      asrkit::Tensor<float> grad(out.logits.shape(), asrkit::uninitialized);
      const float loss = asrkit::ctc_loss<float>(
          {out.logits.view(), w.targets.view(), out.lengths.view(), w.target_lengths.view()}, ctc,
          grad.view());
      benchmark::DoNotOptimize(loss);
      w.model.backward(grad.view());
    } else {
      auto out = w.model.forward(w.features.view());
      benchmark::DoNotOptimize(out.logits.data());
    }
    benchmark::ClobberMemory();
  }
  const double gflop = (train ? 3.0 : 1.0) * forward_flop(w.config, batch) * 1e-9;
  state.counters["GFLOP"] = gflop;
  state.counters["GFLOPS"] = benchmark::Counter(gflop * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}

/// `--dump DIR`: for each config, the weights (state_dict names), the batch-8 input, CTC
/// targets and inference logits, for bench/ds2_compare.py to check PyTorch's logits against
/// and to time PyTorch on.
void dump(const std::string& dir) {
  asrkit::set_num_threads(2);
  for (const std::string name : {"paper", "paper_forward"}) {
    Workload w(name, 8);
    const auto out = w.model.forward(w.features.view());
    asrkit::SafetensorsWriter file;
    asrkit::add_state_dict(file, w.model);
    file.add("bench.features", w.features);
    file.add("bench.targets", w.targets);
    file.add("bench.logits", out.logits);
    file.set_metadata("config", w.config.to_json().dump());
    file.save(dir + "/ds2_" + name + ".safetensors");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--dump") == 0) {
    dump(argv[2]);
    return 0;
  }
  for (int threads : {1, 2})
    for (const std::string name : {"paper", "paper_forward"})
      for (index_t b : {1, 8})
        for (bool train : {false, true}) {
          if (train && b != 8) continue;
          const std::string id = "ds2_" + name + "_b" + std::to_string(b) +
                                 (train ? "/train" : "/infer") +
                                 "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(id.c_str(), bm_ds2, name, b, train, threads)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
