// SVCCA of two [N, D] float activation matrices (asrkit/analysis/svcca.hpp), 1 and 2 threads.
//
//   ASRKIT_SVCCA_DATA=DIR bench_svcca     reads DIR/svcca_<case>.safetensors ("x", "y"), written
//                                         by bench/svcca_compare.py (identical inputs for numpy)
//   bench_svcca                           makes its own data, N = 20000, D = 512
//
// Cases: "lowrank" (realistic activations: a shared latent with a decaying spectrum mixed into D
// neurons plus noise, so the 99% rule keeps a few hundred directions) and "fullrank" (independent
// Gaussian neurons: nearly every direction kept, so the full D x D cross-covariance is used).
// Counters: kept_x, kept_y, mean.
#include <benchmark/benchmark.h>

#include <asrkit/analysis/svcca.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/ops/gemm.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>

namespace {

using asrkit::index_t;
using asrkit::Tensor;

struct Pair {
  Tensor<float> x, y;
};

// Built-in data (no data directory): the same two shapes of spectrum at a small size.
Pair generate(const std::string& kind) {
  const index_t n = 20000, d = 512, rank = 128;
  asrkit::Rng rng(kind == "lowrank" ? 1 : 2);
  Pair p{Tensor<float>({n, d}), Tensor<float>({n, d})};
  if (kind != "lowrank") {
    rng.fill_normal(p.x.view(), 0.f, 1.f);
    rng.fill_normal(p.y.view(), 0.f, 1.f);
    return p;
  }
  Tensor<float> z({n, rank}), a({rank, d}), b({rank, d});
  rng.fill_normal(z.view(), 0.f, 1.f);
  rng.fill_normal(a.view(), 0.f, 1.f);
  rng.fill_normal(b.view(), 0.f, 1.f);
  for (index_t r = 0; r < rank; ++r)
    for (index_t j = 0; j < d; ++j) {
      a(r, j) *= std::pow(0.97f, float(r));
      b(r, j) *= std::pow(0.97f, float(r));
    }
  rng.fill_normal(p.x.view(), 0.f, 0.05f);
  rng.fill_normal(p.y.view(), 0.f, 0.05f);
  asrkit::ops::gemm(asrkit::ops::Trans::no, asrkit::ops::Trans::no, 1.f, z.view(), a.view(), 1.f, p.x.view());
  asrkit::ops::gemm(asrkit::ops::Trans::no, asrkit::ops::Trans::no, 1.f, z.view(), b.view(), 1.f, p.y.view());
  return p;
}

const Pair& data(const std::string& kind) {
  static std::map<std::string, Pair> cache;
  auto it = cache.find(kind);
  if (it != cache.end()) return it->second;
  cache.clear();  // one case in memory at a time (2 x 0.8 GB at full size)
  Pair p;
  if (const char* dir = std::getenv("ASRKIT_SVCCA_DATA")) {
    const auto f = asrkit::SafetensorsFile::open(std::string(dir) + "/svcca_" + kind + ".safetensors");
    p = {f.read<float>("x"), f.read<float>("y")};
  } else {
    p = generate(kind);
  }
  return cache.emplace(kind, std::move(p)).first->second;
}

void bm_svcca(benchmark::State& state, const std::string& kind, int threads) {
  const Pair& p = data(kind);
  asrkit::set_num_threads(threads);
  asrkit::analysis::SvccaResult r;
  for (auto _ : state) {
    r = asrkit::analysis::svcca(p.x, p.y);
    benchmark::DoNotOptimize(r.mean);
  }
  state.counters["kept_x"] = double(r.kept_x);
  state.counters["kept_y"] = double(r.kept_y);
  state.counters["mean"] = r.mean;
  state.counters["N"] = double(p.x.dim(0));
  state.counters["D"] = double(p.x.dim(1));
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* kind : {"lowrank", "fullrank"})
    for (int threads : {1, 2})
      benchmark::RegisterBenchmark((std::string("svcca/") + kind + "/threads:" + std::to_string(threads)).c_str(),
                                   bm_svcca, std::string(kind), threads)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
