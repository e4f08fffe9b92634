// A user's program: it only includes the umbrella header and links asrkit::asrkit.
#include <asrkit.hpp>

#include <cstdio>

int main() {
  asrkit::Rng rng(3);
  asrkit::Tensor<double> x({4, 4});
  rng.fill_normal(x.view(), 0.0, 1.0);
  const double trace = x.matrix().trace();
  std::printf("asrkit %s consumer OK, trace = %.6f, threads = %d\n", asrkit::version(), trace,
              asrkit::num_threads());
  return x.numel() == 16 ? 0 : 1;
}
