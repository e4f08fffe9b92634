// asrkit's CTC against torch.nn.functional.ctc_loss (tests/reference/ctc_reference.py):
// losses, mean loss and gradients, with log-prob and logit inputs.
// Double: asrkit must match PyTorch's double results tightly. Float: both libraries lose
// precision in float log space (badly for T = 5000), so asrkit's float32 error against the
// float64 results on the same inputs must be no larger than PyTorch's float32 error (x1.5).
#include <asrkit/io/safetensors.hpp>
#include <asrkit/loss/ctc.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

namespace {

struct Results {  // everything as double, flattened
  std::vector<double> losses, grad_lp, grad_logits, torch_losses, torch_grad_lp, torch_grad_logits;
  double mean = 0, torch_mean = 0;
};

template <class T>
std::vector<double> to_double(const asrkit::Tensor<T>& t) {
  return std::vector<double>(t.data(), t.data() + t.numel());
}

template <class T>
Results run_case(const std::string& name) {
  const auto file = asrkit::SafetensorsFile::open(asrkit_test::data_path("ctc_" + name + ".safetensors"));
  const auto logits = file.read<T>("logits");
  const auto log_probs = file.read<T>("log_probs");
  const auto targets = file.read<std::int32_t>("targets");
  const auto il = file.read<std::int32_t>("input_lengths");
  const auto tl = file.read<std::int32_t>("target_lengths");
  asrkit::CtcOptions opt;
  opt.blank = std::stoi(file.metadata().at("blank"));
  Results r;
  r.torch_losses = to_double(file.read<T>("losses"));
  r.torch_mean = file.read<double>("loss_mean")(0);
  r.torch_grad_lp = to_double(file.read<T>("grad_log_probs"));
  r.torch_grad_logits = to_double(file.read<T>("grad_logits"));

  asrkit::CtcProblem<T> p{log_probs.view(), targets.view(), il.view(), tl.view()};
  asrkit::Tensor<T> losses({logits.dim(1)}), grad(logits.shape());
  opt.reduction = asrkit::Reduction::none;
  asrkit::ctc_loss(p, opt, {}, losses.view());
  r.losses = to_double(losses);
  // PyTorch's gradient for a log_probs leaf is asrkit's CtcGradient::logits.
  opt.reduction = asrkit::Reduction::mean;
  opt.gradient = asrkit::CtcGradient::logits;
  r.mean = asrkit::ctc_loss(p, opt, grad.view());
  r.grad_lp = to_double(grad);
  // Logits input with the fused softmax: the gradient with respect to the logits.
  opt.input = asrkit::CtcInput::logits;
  opt.gradient = asrkit::CtcGradient::input;
  asrkit::CtcProblem<T> pl{logits.view(), targets.view(), il.view(), tl.view()};
  REQUIRE(asrkit::ctc_loss(pl, opt, grad.view()) == Approx(r.mean).epsilon(1e-5));
  r.grad_logits = to_double(grad);
  return r;
}

double max_rel_error(const std::vector<double>& got, const std::vector<double>& truth, double floor) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - truth[i]) / std::max(std::fabs(truth[i]), floor));
  return worst;
}

}  // namespace

TEST_CASE("ctc matches PyTorch", "[parity][ctc]") {
  for (const std::string c : {"basic", "repeats", "blank_mid", "empty", "limit", "long", "bigvocab"}) {
    INFO("case " << c);
    const Results d = run_case<double>(c + "_f64");
    CHECK(max_rel_error(d.losses, d.torch_losses, 1.0) < 1e-11);
    CHECK(d.mean == Approx(d.torch_mean).epsilon(1e-11));
    CHECK(max_rel_error(d.grad_lp, d.torch_grad_lp, 1e-3) < 1e-8);
    CHECK(max_rel_error(d.grad_logits, d.torch_grad_logits, 1e-3) < 1e-8);

    const Results f = run_case<float>(c + "_f32");
    const double ours_loss = max_rel_error(f.losses, d.torch_losses, 1.0);
    const double torch_loss = max_rel_error(f.torch_losses, d.torch_losses, 1.0);
    const double ours_grad = std::max(max_rel_error(f.grad_lp, d.torch_grad_lp, 1e-3),
                                      max_rel_error(f.grad_logits, d.torch_grad_logits, 1e-3));
    const double torch_grad = std::max(max_rel_error(f.torch_grad_lp, d.torch_grad_lp, 1e-3),
                                       max_rel_error(f.torch_grad_logits, d.torch_grad_logits, 1e-3));
    INFO("float32 relative error vs float64: loss asrkit " << ours_loss << " torch " << torch_loss
         << ", grad asrkit " << ours_grad << " torch " << torch_grad);
    CHECK(ours_loss <= 1.5 * torch_loss + 1e-6);
    CHECK(ours_grad <= 1.5 * torch_grad + 1e-5);
  }
}
