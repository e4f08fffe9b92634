// A tiny harness for CUDA tests (nvcc): skip with exit code 77 when there is no GPU.
#pragma once
#include <asrkit/cuda/memory.cuh>

#include <cstdio>
#include <cstdlib>

#define ASRKIT_CUDA_REQUIRE(cond)                                              \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);  \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

inline void skip_without_gpu() {
  if (asrkit::cuda::device_count() == 0) {
    std::printf("SKIPPED: no CUDA device visible; this test needs a GPU\n");
    std::exit(77);
  }
}
