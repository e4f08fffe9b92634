// Feature extraction of 10 s of 16 kHz audio on one thread: DS2 spectrogram, 80-bin log-mel
// (torch.stft + mel filterbank equivalent) and 80-bin Kaldi fbank. The counter `x_realtime` is
// seconds of audio per second of compute. bench/frontend_compare.py times PyTorch on the same
// samples (`bench_frontend --dump=FILE` writes them as raw float32).
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/frontend/kaldi.hpp>
#include <asrkit/frontend/mel.hpp>
#include <asrkit/frontend/stft.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace {

constexpr int kRate = 16000;
constexpr double kSeconds = 10.0;

const asrkit::Tensor<float>& audio() {
  static const asrkit::Tensor<float> x = [] {
    asrkit::Rng rng(2026);
    asrkit::Tensor<float> a({static_cast<asrkit::index_t>(kRate * kSeconds)});
    for (asrkit::index_t i = 0; i < a.numel(); ++i)
      a(i) = static_cast<float>(0.3 * std::sin(2 * M_PI * 440.0 * static_cast<double>(i) / kRate) + 0.05 * rng.normal());
    return a;
  }();
  return x;
}

template <class F>
void run(benchmark::State& state, F f) {
  asrkit::set_num_threads(1);
  for (auto _ : state) {
    auto feats = f(audio().view());
    benchmark::DoNotOptimize(feats.data());
  }
  state.counters["x_realtime"] = benchmark::Counter(kSeconds * static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
}

void bm_ds2_spectrogram(benchmark::State& state) {
  run(state, [](auto x) { return asrkit::ds2_spectrogram(x); });
}
void bm_log_mel_80(benchmark::State& state) {
  run(state, [](auto x) { return asrkit::log_mel_spectrogram(x); });
}
void bm_kaldi_fbank_80(benchmark::State& state) {
  asrkit::KaldiFbankOptions o;
  o.num_mel_bins = 80;
  run(state, [&](auto x) { return asrkit::kaldi_fbank(x, o); });
}

}  // namespace

BENCHMARK(bm_ds2_spectrogram)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_log_mel_80)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_kaldi_fbank_80)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--dump=", 7) == 0) {
      std::FILE* f = std::fopen(argv[i] + 7, "wb");
      const bool ok = f && std::fwrite(audio().data(), 1, audio().size_bytes(), f) == audio().size_bytes();
      if (f) std::fclose(f);
      return ok ? 0 : 1;
    }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
