// CTC loss + gradient, ms per batch, on the workloads a-d. Compare with PyTorch on the
// same inputs: bench/ctc_compare.py (run by ./asrkit bench), which calls `bench_ctc --dump=DIR`.
#include <asrkit/loss/ctc.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "ctc_workloads.hpp"

namespace {

template <class T>
void bm_ctc(benchmark::State& state, asrkit_bench::CtcWorkload w, asrkit::CtcInput input, int threads) {
  const auto in = asrkit_bench::make_ctc_inputs<T>(w);
  const auto& acts = input == asrkit::CtcInput::logits ? in.logits : in.log_probs;
  asrkit::CtcProblem<T> p{acts.view(), asrkit::as_view(in.targets), asrkit::as_view(in.input_lengths),
                          asrkit::as_view(in.target_lengths)};
  asrkit::CtcOptions opt;
  opt.input = input;
  asrkit::Tensor<T> grad(acts.shape());
  std::vector<unsigned char> ws(asrkit::ctc_workspace_size(p, opt));  // caller-owned scratch
  asrkit::set_num_threads(threads);
  for (auto _ : state) {
    T loss = asrkit::ctc_loss(p, opt, grad.view(), {}, ws.data(), ws.size());
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  state.counters["threads"] = threads;
}

template <class T>
void dump(const std::string& dir, const char* dtype) {
  for (const auto& w : asrkit_bench::ctc_workloads()) {
    const auto in = asrkit_bench::make_ctc_inputs<T>(w);
    auto write = [&](const std::string& name, const void* data, std::size_t bytes) {
      std::FILE* f = std::fopen((dir + "/" + name).c_str(), "wb");
      if (!f || std::fwrite(data, 1, bytes, f) != bytes) { std::perror(name.c_str()); std::exit(1); }
      std::fclose(f);
    };
    write(std::string(w.name) + "_" + dtype + "_logits.bin", in.logits.data(), in.logits.size_bytes());
    write(std::string(w.name) + "_targets.bin", in.targets.data(), in.targets.size() * 4);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--dump=", 7) == 0) {
      dump<float>(argv[i] + 7, "f32");
      dump<double>(argv[i] + 7, "f64");
      return 0;
    }
  for (const auto& w : asrkit_bench::ctc_workloads())
    for (int threads : {1, 2})
      for (auto input : {asrkit::CtcInput::log_probs, asrkit::CtcInput::logits}) {
        const std::string kind = input == asrkit::CtcInput::logits ? "logits" : "log_probs";
        const std::string suffix = std::string("/") + w.name + "/" + kind + "/threads:" + std::to_string(threads);
        benchmark::RegisterBenchmark(("ctc_f32" + suffix).c_str(), bm_ctc<float>, w, input, threads)
            ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
        benchmark::RegisterBenchmark(("ctc_f64" + suffix).c_str(), bm_ctc<double>, w, input, threads)
            ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.3);
      }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
