// CPU / CUDA agreement of the CTC loss: losses and gradients, float and double, logits and
// log-probs, blank inside the vocabulary, infeasible items, and a target longer than
// warp-ctc's GPU limit of 639 labels. Exits 77 (skipped) without a GPU.
#include "cuda_test.cuh"

#include <asrkit/core/rng.hpp>
#include <asrkit/cuda/ctc.cuh>

#include <cmath>
#include <vector>

template <class T>
void agree(asrkit::index_t frames, asrkit::index_t batch, asrkit::index_t vocab, asrkit::index_t max_len,
           int blank, asrkit::CtcInput input, double tol) {
  asrkit::Rng rng(static_cast<std::uint64_t>(frames * 131 + vocab));
  asrkit::Tensor<T> acts({frames, batch, vocab});
  rng.fill_normal(acts.view(), T(0), T(1));
  std::vector<std::int32_t> targets, il, tl;
  for (asrkit::index_t b = 0; b < batch; ++b) {
    const auto len = static_cast<std::int32_t>(rng.uniform_int(static_cast<std::uint64_t>(max_len + 1)));
    for (std::int32_t i = 0; i < len; ++i) {
      std::int32_t k;
      do k = static_cast<std::int32_t>(rng.uniform_int(static_cast<std::uint64_t>(vocab)));
      while (k == blank);
      targets.push_back(k);
    }
    tl.push_back(len);
    il.push_back(static_cast<std::int32_t>(b == 0 ? frames : rng.uniform_int(static_cast<std::uint64_t>(frames + 1))));
  }
  asrkit::CtcOptions opt;
  opt.blank = blank;
  opt.input = input;
  asrkit::CtcProblem<T> cpu{acts.view(), asrkit::as_view(targets), asrkit::as_view(il), asrkit::as_view(tl)};
  asrkit::Tensor<T> grad_cpu(acts.shape()), losses_cpu({batch}), losses_gpu({batch});
  const T loss_cpu = asrkit::ctc_loss(cpu, opt, grad_cpu.view(), losses_cpu.view());

  auto dev_acts = asrkit::cuda::to_device(acts);
  asrkit::Tensor<T, asrkit::Cuda> dev_grad(acts.shape());
  asrkit::CtcProblem<T, asrkit::Cuda> gpu{dev_acts.view(), asrkit::as_view(targets), asrkit::as_view(il), asrkit::as_view(tl)};
  const T loss_gpu = asrkit::ctc_loss(gpu, opt, dev_grad.view(), losses_gpu.view());
  auto grad_gpu = asrkit::cuda::to_host(dev_grad);
  for (asrkit::index_t b = 0; b < batch; ++b) {
    const double c = losses_cpu(b), g = losses_gpu(b);
    ASRKIT_CUDA_REQUIRE((std::isinf(c) && std::isinf(g)) || std::fabs(c - g) <= tol * std::max(1.0, std::fabs(c)));
  }
  ASRKIT_CUDA_REQUIRE(std::isinf(static_cast<double>(loss_cpu)) ||
                      std::fabs(static_cast<double>(loss_cpu - loss_gpu)) <= tol * std::max(1.0, std::fabs(static_cast<double>(loss_cpu))));
  double worst = 0;
  for (asrkit::index_t i = 0; i < acts.numel(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(grad_cpu.data()[i] - grad_gpu.data()[i])));
  std::printf("T=%ld B=%ld V=%ld L<=%ld blank=%d %s %s: loss cpu %.6g gpu %.6g, max |grad diff| %.3g\n",
              static_cast<long>(frames), static_cast<long>(batch), static_cast<long>(vocab), static_cast<long>(max_len),
              blank, input == asrkit::CtcInput::logits ? "logits" : "log_probs", sizeof(T) == 4 ? "f32" : "f64",
              static_cast<double>(loss_cpu), static_cast<double>(loss_gpu), worst);
  ASRKIT_CUDA_REQUIRE(worst <= tol);
}

int main() {
  skip_without_gpu();
  for (auto input : {asrkit::CtcInput::logits, asrkit::CtcInput::log_probs}) {
    agree<double>(50, 4, 20, 12, 0, input, 1e-9);
    agree<float>(50, 4, 20, 12, 7, input, 2e-4);
    agree<float>(150, 16, 5000, 40, 0, input, 2e-4);
    agree<double>(2000, 2, 30, 900, 3, input, 1e-8);  // L up to 900 > 639
  }
  std::printf("cuda ctc agrees with the CPU\n");
  return 0;
}
