// Conformer and FusionFormer block forward (inference, float) at the sizes of a small streaming
// ASR encoder: D = 256, 4 heads, FFN 1024, depthwise kernel 15, T = 250 frames (10 s after 4x
// subsampling), B = 1 and 8, at 1 and 2 threads. Compare with PyTorch on identical weights and
// inputs: bench/conformer_compare.py (it writes the weights and passes them in
// ASRKIT_CONFORMER_WEIGHTS_DIR; without it the weights are asrkit's own random init).
//
//   conformer_b{1,8}/fwd      ConformerBlock<float>::forward
//   fusionformer_b{1,8}/fwd   FusionFormerBlock<float>::forward (unfused BNs)
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/positional_encoding.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

namespace {

constexpr asrkit::index_t kD = 256, kHeads = 4, kFF = 1024, kKernel = 15, kT = 250;

asrkit::ConformerBlockOptions options() {
  asrkit::ConformerBlockOptions o;
  o.heads = kHeads;
  o.ff = kFF;
  o.kernel = kKernel;
  return o;
}

// Loads `<dir>/<name>.safetensors` (written by conformer_compare.py) into the block, if given.
template <class Block>
void load_weights(Block& block, const std::string& name) {
  const char* dir = std::getenv("ASRKIT_CONFORMER_WEIGHTS_DIR");
  if (dir == nullptr) return;
  const auto file = asrkit::SafetensorsFile::open(std::string(dir) + "/" + name + ".safetensors");
  block.for_each_parameter([&](const std::string& n, asrkit::Parameter<float>& p) { p.value = file.read<float>(n); });
  block.for_each_buffer([&](const std::string& n, auto& b) {
    if constexpr (std::is_same_v<typename std::decay_t<decltype(b)>::value_type, float>) b = file.read<float>(n);
  });
}

template <class Block>
void bm_block(benchmark::State& state, const std::string& name, asrkit::index_t batch, int threads) {
  asrkit::set_num_threads(threads);
  asrkit::Rng rng(1);
  Block block(kD, options(), rng);
  load_weights(block, name);
  asrkit::Tensor<float> x({kT, batch, kD});
  rng.fill_uniform(x.view(), -1.0f, 1.0f);
  const auto pos = asrkit::RelPositionalEncoding<float>(kD).table(kT);
  for (auto _ : state) {
    auto y = block.forward(x.view(), pos.view());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = threads;
}

}  // namespace

int main(int argc, char** argv) {
  for (int threads : {1, 2}) {
    const std::string t = "/threads:" + std::to_string(threads);
    for (asrkit::index_t b : {1, 8}) {
      const std::string sb = "_b" + std::to_string(b) + "/fwd";
      benchmark::RegisterBenchmark(("conformer" + sb + t).c_str(), bm_block<asrkit::ConformerBlock<float>>,
                                   std::string("conformer"), b, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("fusionformer" + sb + t).c_str(), bm_block<asrkit::FusionFormerBlock<float>>,
                                   std::string("fusionformer"), b, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
