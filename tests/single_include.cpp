// Compiled against single_include/ only (no include/ on the path): the generated header is
// self-contained and its API works.
#include <asrkit.hpp>

#include <cstdio>

int main() {
  asrkit::Rng rng(1);
  asrkit::Tensor<float> x({2, 3});
  rng.fill_normal(x.view(), 0.0f, 1.0f);
  try {
    (void)x.reshape({4});
    return 1;
  } catch (const asrkit::ShapeError& e) {
    std::printf("single header OK: %s\n", e.what());
  }
  return 0;
}
