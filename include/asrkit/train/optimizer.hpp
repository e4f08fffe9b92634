// asrkit/train/optimizer.hpp - SGD (momentum, Nesterov), Adam and AdamW with PyTorch's semantics.
//
//   asrkit::Sgd<float> opt(model, {/*lr=*/3e-4, /*momentum=*/0.99, 0, 0, /*nesterov=*/true});
//   for (auto& batch : loader) {
//     asrkit::zero_grad(model);                    // or opt.zero_grad()
//     ... forward_train, loss, backward ...
//     asrkit::clip_grad_norm(model, 400.0);        // DS2 (train/clip.hpp)
//     opt.step();
//   }
//
// An optimizer binds to every Parameter<T> a layer (or container) visits with
// for_each_parameter, at construction; the layer must outlive it and keep its parameters.
// Update rules follow torch.optim (1.13, single-tensor path) step by step, including the order
// of operations, so float trajectories track PyTorch's closely (tests/reference/layers_b_*).
// State is visited by name for checkpoints (for_each_state): "step" (rank-0 int64) and, per
// parameter, "<name>.momentum_buffer" (SGD) or "<name>.exp_avg", "<name>.exp_avg_sq",
// "<name>.max_exp_avg_sq" (Adam; the last with amsgrad) - PyTorch's state keys.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {
namespace detail {

/// The parameters of a model, by name, in visiting order.
template <class T>
struct BoundParameters {
  std::vector<std::string> names;
  std::vector<Parameter<T>*> params;

  template <class Model>
  explicit BoundParameters(Model& model) {
    model.for_each_parameter([this](const std::string& name, auto& p) {
      static_assert(std::is_same_v<std::decay_t<decltype(p)>, Parameter<T>>,
                    "optimizer<T>: the model's parameters must be Parameter<T> of the same T");
      names.push_back(name);
      params.push_back(&p);
    });
  }
  std::size_t size() const noexcept { return params.size(); }
};

inline void check_optimizer_value(bool ok, const char* optimizer, const char* what, double value) {
  if (!ok)
    throw ValueError("optimizer.1", detail::str(optimizer, ": invalid ", what, " ", value));
}

}  // namespace detail

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  ///< L2: grad + weight_decay * param
  bool nesterov = false;      ///< needs momentum > 0 and dampening = 0
};

/// torch.optim.SGD: g = grad + wd·p; buf = g (first step) or μ·buf + (1 − dampening)·g;
/// d = g + μ·buf (Nesterov, Sutskever et al. 2013 as PyTorch writes it) or buf; p −= lr·d.
template <class T>
class Sgd {
 public:
  template <class Model>
  Sgd(Model& model, SgdOptions options) : bound_(model), options_(options) {
    detail::check_optimizer_value(options.lr >= 0 && std::isfinite(options.lr), "Sgd", "lr", options.lr);
    detail::check_optimizer_value(options.momentum >= 0, "Sgd", "momentum", options.momentum);
    detail::check_optimizer_value(options.weight_decay >= 0, "Sgd", "weight_decay", options.weight_decay);
    if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
      throw ValueError("optimizer.1", detail::str("Sgd: Nesterov momentum needs momentum > 0 and "
                                                  "dampening = 0, got momentum=", options.momentum,
                                                  " dampening=", options.dampening));
    if (options_.momentum != 0)
      for (auto* p : bound_.params) buffers_.emplace_back(p->value.shape());
  }

  void step() {
    const T wd = static_cast<T>(options_.weight_decay), mu = static_cast<T>(options_.momentum),
            damp = static_cast<T>(1 - options_.dampening), lr = static_cast<T>(options_.lr);
    const bool first = step_() == 0;
    for (std::size_t k = 0; k < bound_.size(); ++k) {
      Parameter<T>& p = *bound_.params[k];
      T* w = p.value.data();
      const T* g = p.grad.data();
      T* buf = options_.momentum != 0 ? buffers_[k].data() : nullptr;
      for (index_t i = 0, n = p.value.numel(); i < n; ++i) {
        T d = options_.weight_decay != 0 ? g[i] + wd * w[i] : g[i];
        if (buf) {
          buf[i] = first ? d : buf[i] * mu + damp * d;
          d = options_.nesterov ? d + mu * buf[i] : buf[i];
        }
        w[i] += -lr * d;
      }
    }
    step_() += 1;
  }

  void zero_grad() {
    for (auto* p : bound_.params) p->zero_grad();
  }

  double lr() const noexcept { return options_.lr; }
  void set_lr(double lr) {
    detail::check_optimizer_value(lr >= 0 && std::isfinite(lr), "Sgd", "lr", lr);
    options_.lr = lr;
  }
  const SgdOptions& options() const noexcept { return options_; }
  std::int64_t steps() const noexcept { return step_(); }

  template <class F>
  void for_each_state(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "step"), step_);
    for (std::size_t k = 0; k < buffers_.size(); ++k)
      f(join_name(prefix, bound_.names[k] + ".momentum_buffer"), buffers_[k]);
  }

 private:
  detail::BoundParameters<T> bound_;
  SgdOptions options_;
  std::vector<Tensor<T>> buffers_;
  Tensor<std::int64_t> step_ = Tensor<std::int64_t>(Shape{}, 0);
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  ///< Adam: L2 added to the gradient; AdamW: decoupled decay
  bool amsgrad = false;
};

/// torch.optim.Adam (Kingma & Ba 2015, Alg. 1 with bias correction): g = grad (+ wd·p);
/// m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; p −= lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + ε).
/// With `decoupled` (AdamW, Loshchilov & Hutter 2019): p *= 1 − lr·wd first, and g = grad.
template <class T>
class Adam {
 public:
  template <class Model>
  Adam(Model& model, AdamOptions options = {}, bool decoupled = false)
      : bound_(model), options_(options), decoupled_(decoupled) {
    const char* name = decoupled ? "AdamW" : "Adam";
    detail::check_optimizer_value(options.lr >= 0 && std::isfinite(options.lr), name, "lr", options.lr);
    detail::check_optimizer_value(options.beta1 >= 0 && options.beta1 < 1, name, "beta1", options.beta1);
    detail::check_optimizer_value(options.beta2 >= 0 && options.beta2 < 1, name, "beta2", options.beta2);
    detail::check_optimizer_value(options.eps >= 0, name, "eps", options.eps);
    detail::check_optimizer_value(options.weight_decay >= 0, name, "weight_decay", options.weight_decay);
    for (auto* p : bound_.params) {
      exp_avg_.emplace_back(p->value.shape());
      exp_avg_sq_.emplace_back(p->value.shape());
      if (options.amsgrad) max_exp_avg_sq_.emplace_back(p->value.shape());
    }
  }

  void step() {
    step_() += 1;
    const double t = static_cast<double>(step_());
    const double bc1 = 1 - std::pow(options_.beta1, t), bc2 = 1 - std::pow(options_.beta2, t);
    const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2),
            one_b1 = static_cast<T>(1 - options_.beta1), one_b2 = static_cast<T>(1 - options_.beta2),
            wd = static_cast<T>(options_.weight_decay), eps = static_cast<T>(options_.eps),
            neg_step = static_cast<T>(-options_.lr / bc1), bc2_sqrt = static_cast<T>(std::sqrt(bc2)),
            decay = static_cast<T>(1 - options_.lr * options_.weight_decay);
    for (std::size_t k = 0; k < bound_.size(); ++k) {
      Parameter<T>& p = *bound_.params[k];
      T* w = p.value.data();
      const T* gr = p.grad.data();
      T* m = exp_avg_[k].data();
      T* v = exp_avg_sq_[k].data();
      T* vmax = options_.amsgrad ? max_exp_avg_sq_[k].data() : nullptr;
      for (index_t i = 0, n = p.value.numel(); i < n; ++i) {
        T g = gr[i];
        if (decoupled_) {
          if (options_.weight_decay != 0) w[i] *= decay;
        } else if (options_.weight_decay != 0) {
          g = g + wd * w[i];
        }
        m[i] = m[i] * b1 + one_b1 * g;
        v[i] = v[i] * b2 + one_b2 * g * g;
        T second = v[i];
        if (vmax) {
          vmax[i] = std::max(vmax[i], v[i]);
          second = vmax[i];
        }
        const T denom = std::sqrt(second) / bc2_sqrt + eps;
        w[i] += neg_step * (m[i] / denom);
      }
    }
  }

  void zero_grad() {
    for (auto* p : bound_.params) p->zero_grad();
  }

  double lr() const noexcept { return options_.lr; }
  void set_lr(double lr) {
    detail::check_optimizer_value(lr >= 0 && std::isfinite(lr), decoupled_ ? "AdamW" : "Adam", "lr", lr);
    options_.lr = lr;
  }
  const AdamOptions& options() const noexcept { return options_; }
  std::int64_t steps() const noexcept { return step_(); }

  template <class F>
  void for_each_state(F&& f, std::string_view prefix = {}) {
    f(join_name(prefix, "step"), step_);
    for (std::size_t k = 0; k < bound_.size(); ++k) {
      f(join_name(prefix, bound_.names[k] + ".exp_avg"), exp_avg_[k]);
      f(join_name(prefix, bound_.names[k] + ".exp_avg_sq"), exp_avg_sq_[k]);
      if (options_.amsgrad) f(join_name(prefix, bound_.names[k] + ".max_exp_avg_sq"), max_exp_avg_sq_[k]);
    }
  }

 private:
  detail::BoundParameters<T> bound_;
  AdamOptions options_;
  bool decoupled_;
  std::vector<Tensor<T>> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
  Tensor<std::int64_t> step_ = Tensor<std::int64_t>(Shape{}, 0);
};

/// torch.optim.AdamW: Adam with decoupled weight decay (default weight_decay 0.01, as PyTorch).
template <class T>
class AdamW : public Adam<T> {
 public:
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
  }
  template <class Model>
  explicit AdamW(Model& model, AdamOptions options = defaults()) : Adam<T>(model, options, true) {}
};

}  // namespace asrkit
