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
// The state is PyTorch's optimizer.state_dict(), so it moves between the two
// (tests/reference/optimizer_state_*):
// - "state": per parameter, by index k in visiting order, nothing until the parameter's first
//   step, then PyTorch's keys: "momentum_buffer" (SGD with momentum; PyTorch keeps None without,
//   which is not stored), or "step" (rank 0, a count per parameter), "exp_avg", "exp_avg_sq" and,
//   with amsgrad only, "max_exp_avg_sq" (Adam).
//   for_each_state visits them as ParameterState under "state.<k>".
// - "param_groups": one group; param_group() gives its options as JSON literals and
//   options_from() reads them back (train/checkpoint.hpp stores both).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/parameter.hpp>

namespace asrkit {

/// One parameter's entry of the optimizer state, as torch.optim keeps it: not `initialized`
/// until the parameter's first step, then the tensors named `keys` ("step" rank 0, the others
/// of the parameter's shape). Before the first step the tensors hold zeros.
template <class T>
struct ParameterState {
  std::string parameter;  ///< the parameter's name (for messages)
  bool initialized = false;
  std::vector<std::string> keys;
  std::vector<Tensor<T>> values;

  ParameterState(std::string name, const Shape& shape, std::vector<std::string> state_keys)
      : parameter(std::move(name)), keys(std::move(state_keys)) {
    for (const std::string& key : keys) values.emplace_back(key == "step" ? Shape{} : shape, T(0));
  }
  /// Back to the state before the first step.
  void reset() {
    initialized = false;
    for (auto& v : values) v.fill(T(0));
  }
};

/// PyTorch's optimizer.state_dict()["param_groups"][0] without "params": each option's name and
/// its value as a JSON literal ("0.001", "[0.9,0.999]", "true").
using ParamGroup = std::map<std::string, std::string>;

namespace detail {

/// What every optimizer has: the model's parameters in visiting order, bound at construction,
/// and one ParameterState each with the optimizer's state keys.
template <class T>
class OptimizerBase {
 public:
  void zero_grad() {
    for (auto* p : params_) p->zero_grad();
  }
  std::size_t parameter_count() const noexcept { return params_.size(); }
  /// f(prefix + "state.<k>", ParameterState&) for every parameter k.
  template <class F>
  void for_each_state(F&& f, std::string_view prefix = {}) {
    for (std::size_t k = 0; k < state_.size(); ++k)
      f(join_name(prefix, "state." + std::to_string(k)), state_[k]);
  }

 protected:
  template <class Model>
  OptimizerBase(Model& model, const std::vector<std::string>& keys) {
    model.for_each_parameter([&](const std::string& name, auto& p) {
      static_assert(std::is_same_v<std::decay_t<decltype(p)>, Parameter<T>>,
                    "optimizer<T>: the model's parameters must be Parameter<T> of the same T");
      params_.push_back(&p);
      state_.emplace_back(name, p.value.shape(), keys);
    });
  }

  std::vector<Parameter<T>*> params_;
  std::vector<ParameterState<T>> state_;
};

inline void check_optimizer_value(bool ok, const char* optimizer, const char* what, double value) {
  if (!ok)
    throw ValueError("optimizer.1", detail::str(optimizer, ": invalid ", what, " ", value));
}

template <class V>
std::string json_literal(const V& value) {
  return nlohmann::json(value).dump();
}

/// Typed reads of a ParamGroup's options; errors name the optimizer, the option, the expected
/// and the actual value.
class ParamGroupReader {
 public:
  ParamGroupReader(const ParamGroup& group, const char* optimizer)
      : group_(group), optimizer_(optimizer) {}

  double number(const char* key) const {
    const nlohmann::json v = value(key);
    if (!v.is_number()) fail(key, "a number");
    return v.get<double>();
  }
  bool flag(const char* key) const {
    const nlohmann::json v = value(key);
    if (!v.is_boolean()) fail(key, "true or false");
    return v.get<bool>();
  }
  std::pair<double, double> pair(const char* key) const {
    const nlohmann::json v = value(key);
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
      fail(key, "two numbers");
    return {v[0].get<double>(), v[1].get<double>()};
  }
  /// torch.optim's `maximize` (absent before 1.11) must be false: asrkit minimizes.
  void check_minimizing() const {
    if (group_.count("maximize") && flag("maximize"))
      throw ValueError("optimizer.3", detail::str(optimizer_,
                                                  ": param_groups option 'maximize' is true; "
                                                  "asrkit's optimizers minimize (expected false)"));
  }

 private:
  nlohmann::json value(const char* key) const {
    const auto it = group_.find(key);
    if (it == group_.end())
      throw ValueError("optimizer.2",
                       detail::str(optimizer_, ": param_groups has no option '", key, "'"));
    nlohmann::json v = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) fail(key, "a JSON value");
    return v;
  }
  [[noreturn]] void fail(const char* key, const char* expected) const {
    throw ValueError("optimizer.2",
                     detail::str(optimizer_, ": param_groups option '", key, "' is '",
                                 group_.at(key), "', expected ", expected));
  }

  const ParamGroup& group_;
  const char* optimizer_;
};

}  // namespace detail

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  ///< L2: grad + weight_decay * param
  bool nesterov = false;      ///< needs momentum > 0 and dampening = 0
};

/// torch.optim.SGD: g = grad + wd·p; buf = g (the parameter's first step) or μ·buf + (1 −
/// dampening)·g; d = g + μ·buf (Nesterov, Sutskever et al. 2013 as PyTorch writes it) or buf; p −=
/// lr·d.
template <class T>
class Sgd : public detail::OptimizerBase<T> {
 public:
  template <class Model>
  Sgd(Model& model, SgdOptions options)
      : detail::OptimizerBase<T>(model, options.momentum != 0
                                            ? std::vector<std::string>{"momentum_buffer"}
                                            : std::vector<std::string>{}),
        options_(check(options)) {}

  void step() {
    const T wd = static_cast<T>(options_.weight_decay), mu = static_cast<T>(options_.momentum),
            damp = static_cast<T>(1 - options_.dampening), lr = static_cast<T>(options_.lr);
    for (std::size_t k = 0; k < params_.size(); ++k) {
      Parameter<T>& p = *params_[k];
      ParameterState<T>& state = state_[k];
      T* w = p.value.data();
      const T* g = p.grad.data();
      T* buf = options_.momentum != 0 ? state.values[0].data() : nullptr;
      const bool first = !state.initialized;
      for (index_t i = 0, n = p.value.numel(); i < n; ++i) {
        T d = options_.weight_decay != 0 ? g[i] + wd * w[i] : g[i];
        if (buf) {
          buf[i] = first ? d : buf[i] * mu + damp * d;
          d = options_.nesterov ? d + mu * buf[i] : buf[i];
        }
        w[i] += -lr * d;
      }
      state.initialized = true;
    }
  }

  double lr() const noexcept { return options_.lr; }
  void set_lr(double lr) {
    detail::check_optimizer_value(lr >= 0 && std::isfinite(lr), "Sgd", "lr", lr);
    options_.lr = lr;
  }
  const SgdOptions& options() const noexcept { return options_; }
  /// New options; momentum may not switch between zero and non-zero (it decides the state).
  void set_options(const SgdOptions& options) { options_ = check_replacement(options); }

  /// torch.optim.SGD's param_groups options.
  ParamGroup param_group() const {
    return {{"lr", detail::json_literal(options_.lr)},
            {"momentum", detail::json_literal(options_.momentum)},
            {"dampening", detail::json_literal(options_.dampening)},
            {"weight_decay", detail::json_literal(options_.weight_decay)},
            {"nesterov", detail::json_literal(options_.nesterov)},
            {"maximize", detail::json_literal(false)}};
  }
  /// The options a param group describes (checked as set_options checks them).
  SgdOptions options_from(const ParamGroup& group) const {
    const detail::ParamGroupReader r(group, "Sgd");
    r.check_minimizing();
    SgdOptions o;
    o.lr = r.number("lr");
    o.momentum = r.number("momentum");
    o.dampening = r.number("dampening");
    o.weight_decay = r.number("weight_decay");
    o.nesterov = r.flag("nesterov");
    return check_replacement(o);
  }

 private:
  static SgdOptions check(const SgdOptions& options) {
    detail::check_optimizer_value(options.lr >= 0 && std::isfinite(options.lr), "Sgd", "lr",
                                  options.lr);
    detail::check_optimizer_value(options.momentum >= 0 && std::isfinite(options.momentum), "Sgd",
                                  "momentum", options.momentum);
    detail::check_optimizer_value(std::isfinite(options.dampening), "Sgd", "dampening",
                                  options.dampening);
    detail::check_optimizer_value(options.weight_decay >= 0 && std::isfinite(options.weight_decay),
                                  "Sgd", "weight_decay", options.weight_decay);
    if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
      throw ValueError("optimizer.1",
                       detail::str("Sgd: Nesterov momentum needs momentum > 0 and "
                                   "dampening = 0, got momentum=",
                                   options.momentum, " dampening=", options.dampening));
    return options;
  }
  SgdOptions check_replacement(const SgdOptions& options) const {
    check(options);
    if ((options.momentum != 0) != (options_.momentum != 0))
      throw ValueError("optimizer.3",
                       detail::str("Sgd: momentum ", options.momentum, " would ",
                                   options_.momentum != 0 ? "drop" : "need",
                                   " the momentum buffers of this optimizer (momentum ",
                                   options_.momentum, ")"));
    return options;
  }

  using detail::OptimizerBase<T>::params_;
  using detail::OptimizerBase<T>::state_;
  SgdOptions options_;
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
/// m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; p −= lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t)
/// + ε), t the parameter's own step count. With `decoupled` (AdamW, Loshchilov & Hutter 2019): p *=
/// 1 − lr·wd first, and g = grad.
template <class T>
class Adam : public detail::OptimizerBase<T> {
 public:
  template <class Model>
  Adam(Model& model, AdamOptions options = {}, bool decoupled = false)
      : detail::OptimizerBase<T>(model, state_keys(options)),
        options_(options),
        decoupled_(decoupled) {
    check(options);
  }

  void step() {
    const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2),
            one_b1 = static_cast<T>(1 - options_.beta1),
            one_b2 = static_cast<T>(1 - options_.beta2), wd = static_cast<T>(options_.weight_decay),
            eps = static_cast<T>(options_.eps),
            decay = static_cast<T>(1 - options_.lr * options_.weight_decay);
    for (std::size_t k = 0; k < params_.size(); ++k) {
      ParameterState<T>& state = state_[k];
      state.initialized = true;
      T& count = *state.values[0].data();
      count += 1;
      const double t = static_cast<double>(count);
      const double bc1 = 1 - std::pow(options_.beta1, t), bc2 = 1 - std::pow(options_.beta2, t);
      const T neg_step = static_cast<T>(-options_.lr / bc1),
              bc2_sqrt = static_cast<T>(std::sqrt(bc2));
      Parameter<T>& p = *params_[k];
      T* w = p.value.data();
      const T* gr = p.grad.data();
      T* m = state.values[1].data();
      T* v = state.values[2].data();
      T* vmax = options_.amsgrad ? state.values[3].data() : nullptr;
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

  double lr() const noexcept { return options_.lr; }
  void set_lr(double lr) {
    detail::check_optimizer_value(lr >= 0 && std::isfinite(lr), name(), "lr", lr);
    options_.lr = lr;
  }
  const AdamOptions& options() const noexcept { return options_; }
  /// New options; amsgrad may not change (it decides the state).
  void set_options(const AdamOptions& options) { options_ = check_replacement(options); }
  /// The largest step count of any parameter (they step together unless the state was loaded
  /// from a PyTorch file in which some parameters had not stepped).
  std::int64_t steps() const noexcept {
    T most = 0;
    for (const auto& s : state_) most = std::max(most, *s.values[0].data());
    return static_cast<std::int64_t>(most);
  }

  /// torch.optim.Adam's (AdamW's) param_groups options.
  ParamGroup param_group() const {
    return {{"lr", detail::json_literal(options_.lr)},
            {"betas", detail::json_literal(std::vector<double>{options_.beta1, options_.beta2})},
            {"eps", detail::json_literal(options_.eps)},
            {"weight_decay", detail::json_literal(options_.weight_decay)},
            {"amsgrad", detail::json_literal(options_.amsgrad)},
            {"maximize", detail::json_literal(false)}};
  }
  /// The options a param group describes (checked as set_options checks them).
  AdamOptions options_from(const ParamGroup& group) const {
    const detail::ParamGroupReader r(group, name());
    r.check_minimizing();
    AdamOptions o;
    o.lr = r.number("lr");
    std::tie(o.beta1, o.beta2) = r.pair("betas");
    o.eps = r.number("eps");
    o.weight_decay = r.number("weight_decay");
    o.amsgrad = r.flag("amsgrad");
    // torch.optim.Adam's decoupled_weight_decay (PyTorch 2.x; AdamW sets it): Adam vs AdamW.
    if (group.count("decoupled_weight_decay") && r.flag("decoupled_weight_decay") != decoupled_)
      throw ValueError("optimizer.3",
                       detail::str(name(), ": param_groups option 'decoupled_weight_decay' is ",
                                   decoupled_ ? "false (an Adam's)" : "true (an AdamW's)",
                                   ", expected ", decoupled_ ? "true" : "false"));
    return check_replacement(o);
  }

 private:
  const char* name() const noexcept { return decoupled_ ? "AdamW" : "Adam"; }
  void check(const AdamOptions& options) const {
    detail::check_optimizer_value(options.lr >= 0 && std::isfinite(options.lr), name(), "lr",
                                  options.lr);
    detail::check_optimizer_value(options.beta1 >= 0 && options.beta1 < 1, name(), "beta1",
                                  options.beta1);
    detail::check_optimizer_value(options.beta2 >= 0 && options.beta2 < 1, name(), "beta2",
                                  options.beta2);
    detail::check_optimizer_value(options.eps >= 0 && std::isfinite(options.eps), name(), "eps",
                                  options.eps);
    detail::check_optimizer_value(options.weight_decay >= 0 && std::isfinite(options.weight_decay),
                                  name(), "weight_decay", options.weight_decay);
  }
  AdamOptions check_replacement(const AdamOptions& options) const {
    check(options);
    if (options.amsgrad != options_.amsgrad)
      throw ValueError(
          "optimizer.3",
          detail::str(name(), ": amsgrad ", options.amsgrad ? "true" : "false",
                      " differs from this optimizer's (", options_.amsgrad ? "true" : "false",
                      "), which decides its state"));
    return options;
  }

  static std::vector<std::string> state_keys(const AdamOptions& options) {
    std::vector<std::string> keys{"step", "exp_avg", "exp_avg_sq"};
    if (options.amsgrad) keys.push_back("max_exp_avg_sq");
    return keys;
  }

  using detail::OptimizerBase<T>::params_;
  using detail::OptimizerBase<T>::state_;
  AdamOptions options_;
  bool decoupled_;
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
