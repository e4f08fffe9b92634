// asrkit/nn/bn_lstm.hpp - the batch-normalised LSTM cell (Cooijmans et al., ICLR 2017; SPECS §4)
// for Recurrent<Cell> (nn/recurrent.hpp).
//
//   asrkit::BNLSTMOptions o;
//   o.max_steps = 800;                                   // T_max: the longest training sequence
//   o.bidirectional = true;
//   asrkit::BNLSTM<float> lstm(80, 320, o);              // x [T, B, 80] -> y [T, B, 640]
//   auto yt = lstm.forward_train(x, lengths);            // per-step batch statistics
//   auto dx = lstm.backward(dy);                         // adds to every Parameter::grad
//   auto y  = lstm.forward(x, lengths);                  // inference: population statistics
//
// Equations (gate order i, f, g, o as torch.nn.LSTM; Cooijmans et al. eq. 6-8):
//   (ĩ, f̃, g̃, õ) = BN(W_h h_{t−1}; γ_h, b) + BN(W_x x_t; γ_x, 0)
//   c_t = σ(f̃) ⊙ c_{t−1} + σ(ĩ) ⊙ tanh(g̃)
//   h_t = σ(õ) ⊙ tanh(BN(c_t; γ_c, β_c))
// The bias b is the β of the recurrent-term BN (as in the authors' code): BN(·; γ_h, 0) + b is
// the same function, and the input projection therefore has no bias. The unnormalised c_t is
// carried forward; BN(c_t) only feeds the output (sec. 3).
//
// Statistics (SPECS §4.2, §4.4): W_h h_{t−1} and c_t use RecurrentBatchNorm (per-step batch
// statistics over the items still active at t; population statistics per step at inference,
// steps beyond T_max use those of step T_max − 1; fewer than 2 active items use the population).
// The input term W_x x_t is normalised either per step (the paper's default) or sequence-wise over
// all valid frames (the "BN-e*" variant of sec. 4.4, SequenceBatchNorm); both run once over the
// whole xp before the recurrence, since they do not depend on h.
//
// Per step: one GEMM h_{t−1} W_h^T into its own buffer (it is normalised on its own, so it
// cannot be accumulated onto xp), the recurrent BN, one pass for the gates and c_t, the cell BN,
// one pass for h_t. Backward through time keeps the recurrent BN's input gradients of every
// step, so dW_h is one GEMM after the loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/detail/recurrent_kernels.hpp>
#include <asrkit/nn/detail/recurrent_padding.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>

namespace asrkit {
namespace detail {
namespace bnlstm {

using rnn::ConstRow;
using rnn::Row;

/// acts [4H] = σ(ĩ), σ(f̃), tanh(g̃), σ(õ) of the pre-activations nh + xn (the two normalised
/// terms); c: in c_{t-1}, out c_t.
template <class T>
void gates_row(T* acts, const T* nh, const T* xn, T* c, index_t n) {
  Row<T> z(acts, 4 * n);
  z = ConstRow<T>(nh, 4 * n) + ConstRow<T>(xn, 4 * n);
  z.head(2 * n) = z.head(2 * n).logistic();
  z.segment(2 * n, n) = z.segment(2 * n, n).tanh();
  z.tail(n) = z.tail(n).logistic();
  Row<T> cc(c, n);
  cc = z.segment(n, n) * cc + z.head(n) * z.segment(2 * n, n);
}

/// h = σ(õ) tanh(cn) into the state and the output row; tanh(cn) kept for backward.
template <class T>
void output_row(T* h, T* y, T* tanh_cn, const T* o, const T* cn, index_t n) {
  Row<T> tc(tanh_cn, n);
  tc = ConstRow<T>(cn, n).tanh();
  Row<T>(h, n) = ConstRow<T>(o, n) * tc;
  Row<T>(y, n) = Row<T>(h, n);
}

/// From dh = dy + dh_rec: dõ (pre-sigmoid) and dcn = dL/dBN(c_t).
template <class T>
void output_backward_row(T* dz_o, T* dcn, const T* dy, const T* dh_rec, const T* o,
                         const T* tanh_cn, index_t n) {
  const ConstRow<T> oo(o, n), tc(tanh_cn, n);
  const auto g = ConstRow<T>(dy, n) + ConstRow<T>(dh_rec, n);
  Row<T>(dz_o, n) = g * tc * rnn::dsigmoid(oo);
  Row<T>(dcn, n) = g * oo * (T(1) - tc.square());
}

/// dz [0:3H] (pre-activations of i, f, g) from dc = dc_rec + dc_bn; dc_rec: out dL/dc_{t-1}.
template <class T>
void gates_backward_row(T* dz, T* dc_rec, const T* dc_bn, const T* acts, const T* c_prev,
                        index_t n) {
  const ConstRow<T> i(acts, n), f(acts + n, n), g(acts + 2 * n, n);
  Row<T> dc(dc_rec, n);
  dc += ConstRow<T>(dc_bn, n);
  Row<T>(dz, n) = dc * g * rnn::dsigmoid(i);
  Row<T>(dz + n, n) = dc * ConstRow<T>(c_prev, n) * rnn::dsigmoid(f);
  Row<T>(dz + 2 * n, n) = dc * i * (T(1) - g.square());
  dc *= f;
}

}  // namespace bnlstm
}  // namespace detail

/// How BN-LSTM normalises the input term W_x x_t (Cooijmans et al. sec. 4.4; SPECS §4.4).
enum class BNLSTMInputNorm {
  per_step,  ///< per-step statistics, like the recurrent term (the paper's default)
  sequence,  ///< statistics over every valid frame of the batch ("BN-e*"; no padding bias)
};

/// Options of BNLSTMCell (one direction).
struct BNLSTMCellOptions {
  index_t hidden_size = 0;
  /// T_max: the longest training sequence; population statistics are kept for steps < T_max.
  index_t max_steps = 1000;
  BNLSTMInputNorm input_norm = BNLSTMInputNorm::per_step;
  /// eps, momentum (PyTorch convention: pop = (1 − m) pop + m batch, m = 0.1), γ init (0.1,
  /// SPECS §4.3) and the running-variance convention, for all three normalisations.
  RecurrentBatchNormOptions norm{};
  /// Initial bias of the forget gate (SPECS §4.1: 1 in the authors' code); other biases 0.
  double forget_bias = 1.0;
};

/// One direction of a BN-LSTM layer, forward in time (the Cell interface of nn/recurrent.hpp).
/// Parameters (names get the layer's suffix, e.g. "_l0"): "weight_hh" [4H, H], "bias" [4H]
/// (b, the β of BN_h), "gamma_ih" [4H], "gamma_hh" [4H], "gamma_c" [H], "beta_c" [H].
/// Buffers: "running_mean_hh", "running_var_hh" [T_max, 4H], "num_batches_tracked_hh" [T_max],
/// the same with "_c" ([T_max, H]) and "_ih" ([T_max, 4H] per step; [4H] and a scalar count
/// sequence-wise).
template <class T>
class BNLSTMCell {
  static_assert(std::is_floating_point_v<T>, "BNLSTMCell<T>: T must be float or double");

 public:
  using value_type = T;
  using Options = BNLSTMCellOptions;

  explicit BNLSTMCell(const Options& options)
      : options_(options),
        hidden_(options.hidden_size),
        bn_hh_(check_hidden(options.hidden_size) * 4, options.max_steps, options.norm),
        bn_c_(options.hidden_size, options.max_steps, options.norm) {
    if (options_.input_norm == BNLSTMInputNorm::per_step) {
      bn_ih_step_.emplace(4 * hidden_, options_.max_steps, options_.norm);
    } else {
      BatchNormOptions o;
      o.eps = options_.norm.eps;
      o.momentum = options_.norm.momentum;
      bn_ih_seq_.emplace(4 * hidden_, o);
      bn_ih_seq_->weight().value.fill(static_cast<T>(options_.norm.gamma_init));
    }
    weight_hh_ = Parameter<T>(Shape{4 * hidden_, hidden_});
    Rng rng(0);
    reset_parameters(rng, 0);
  }

  index_t input_columns() const noexcept { return 4 * hidden_; }
  index_t hidden_size() const noexcept { return hidden_; }
  index_t state_count() const noexcept { return 2; }
  const Options& options() const noexcept { return options_; }

  /// SPECS §4.3: orthogonal W_h (each gate's H x H block), γ = gamma_init for the three BNs,
  /// β_c = 0, b = 0 except forget_bias on the forget gate. Running statistics are reset.
  void reset_parameters(Rng& rng, index_t /*input_size*/) {
    for (index_t g = 0; g < 4; ++g)
      init::orthogonal(
          TensorView<T>(weight_hh_.value.data() + g * hidden_ * hidden_, Shape{hidden_, hidden_}),
          rng);
    const T gamma = static_cast<T>(options_.norm.gamma_init);
    bn_hh_.weight().value.fill(gamma);
    bn_c_.weight().value.fill(gamma);
    input_gamma().value.fill(gamma);
    bn_c_.bias().value.fill(T(0));
    auto& b = bn_hh_.bias().value;
    b.fill(T(0));
    for (index_t j = hidden_; j < 2 * hidden_; ++j) b(j) = static_cast<T>(options_.forget_bias);
    auto reset_stats = [](auto& bn) {
      bn.running_mean().fill(T(0));
      bn.running_var().fill(T(1));
      bn.num_batches_tracked().fill(0);
    };
    reset_stats(bn_hh_);
    reset_stats(bn_c_);
    with_input_bn(reset_stats);
  }

  /// Inference: xp [T, B, 4H] (W_x x, no bias) -> h [T, B, H]; population statistics.
  Tensor<T> run(TensorView<const T> xp, const std::int32_t* lengths,
                RecurrentState<T>* state) const {
    check_xp(xp);
    const auto len = lengths_view(xp, lengths);
    const Tensor<T> xn = bn_ih_step_
                             ? bn_ih_step_->forward(xp, len)
                             : (lengths ? bn_ih_seq_->forward(xp, len) : bn_ih_seq_->forward(xp));
    Trace tr(xp.dim(1), hidden_, 1);
    return unroll(
        xn, lengths, state, tr, false,
        [&](TensorView<const T> gh, index_t t, TensorView<T> y) { bn_hh_.forward_step(gh, t, len, y); },
        [&](TensorView<const T> c, index_t t, TensorView<T> y) { bn_c_.forward_step(c, t, len, y); });
  }

  /// Training: batch statistics (running statistics updated); caches what backward needs.
  Tensor<T> run_train(TensorView<const T> xp, const std::int32_t* lengths,
                      RecurrentState<T>* state) {
    check_xp(xp);
    if (xp.dim(0) > options_.max_steps)
      throw ValueError("bnlstm.2",
                       detail::str("BNLSTMCell::run_train: sequence length T = ", xp.dim(0),
                                   " exceeds max_steps = ", options_.max_steps,
                                   " (T_max, the longest training "
                                   "sequence; set BNLSTMOptions::max_steps)"));
    const auto len = lengths_view(xp, lengths);
    const Tensor<T> xn = bn_ih_step_ ? bn_ih_step_->forward_train(xp, len)
                                     : (lengths ? bn_ih_seq_->forward_train(xp, len)
                                                : bn_ih_seq_->forward_train(xp));
    trace_ = Trace(xp.dim(1), hidden_, xp.dim(0));
    lengths_.clear();
    if (lengths) lengths_.assign(lengths, lengths + xp.dim(1));
    auto h = unroll(
        xn, lengths, state, trace_, true,
        [&](TensorView<const T> gh, index_t t, TensorView<T> y) { bn_hh_.forward_step_train(gh, t, len, y); },
        [&](TensorView<const T> c, index_t t, TensorView<T> y) { bn_c_.forward_step_train(c, t, len, y); });
    cached_ = true;
    return h;
  }

  /// dh [T, B, H] (gradient of the run_train output) -> dxp [T, B, 4H]; adds to every grad.
  Tensor<T> backward(TensorView<const T> dh) {
    if (!cached_)
      throw ValueError("bnlstm.3", "BNLSTMCell::backward: no cached forward; call run_train first");
    const index_t steps = trace_.steps, batch = trace_.batch, H = hidden_, G = 4 * H;
    if (dh.shape() != Shape{steps, batch, H})
      throw ShapeError("bnlstm.4",
                       detail::str("BNLSTMCell::backward: dh must have shape [", steps, ", ", batch,
                                   ", ", H, "] (the run_train output), got ", dh.shape().str()));
    const std::int32_t* lengths = lengths_.empty() ? nullptr : lengths_.data();
    Tensor<T> da(Shape{steps, batch, G}, uninitialized);   // dL/d(gate pre-activations) per step
    Tensor<T> dgh(Shape{steps, batch, G}, uninitialized);  // dL/d(W_h h_{t-1}) per step
    Tensor<T> dh_rec(Shape{batch, H}), dc_rec(Shape{batch, H});  // from step t+1 (0 after the end)
    Tensor<T> dcn(Shape{batch, H}, uninitialized), dh_prev(Shape{batch, H}, uninitialized);
    Tensor<T> dc_bn(Shape{batch, H}, uninitialized);  // dL/dc_t through BN_c
    const ops::PackedMatrix<T> w(ops::Trans::no, weight_hh_.value.view());  // W_h, packed once
    for (index_t t = steps - 1; t >= 0; --t) {
      // h_t = σ(õ) tanh(cn): gradients of õ and of cn = BN(c_t).
      for (index_t b = 0; b < batch; ++b) {
        T* da_r = da[t][b].data();
        T* dcn_r = dcn[b].data();
        if (!detail::padding::active(lengths, b, t)) {
          std::fill(da_r, da_r + G, T(0));
          std::fill(dcn_r, dcn_r + H, T(0));
          continue;
        }
        detail::bnlstm::output_backward_row(da_r + 3 * H, dcn_r, dh[t][b].data(), dh_rec[b].data(),
                                            trace_.acts[t][b].data() + 3 * H,
                                            trace_.tanh_cn[t][b].data(), H);
      }
      bn_c_.backward_step(dcn.view(), t, dc_bn.view());
      // c_t = σ(f̃) c_{t-1} + σ(ĩ) tanh(g̃).
      for (index_t b = 0; b < batch; ++b) {
        if (!detail::padding::active(lengths, b, t)) continue;
        const T* c_prev = t > 0 ? trace_.cell[t - 1][b].data() : trace_.c0[b].data();
        detail::bnlstm::gates_backward_row(da[t][b].data(), dc_rec[b].data(), dc_bn[b].data(),
                                           trace_.acts[t][b].data(), c_prev, H);
      }
      // Through BN_h (β = b gets Σ da) and W_h: dh_{t-1} = dgh_t W_h.
      bn_hh_.backward_step(da[t], t, dgh[t]);
      ops::gemm_packed(batch, T(1), dgh[t].data(), G, w, T(0), dh_prev.data(), H);
      detail::padding::copy_active_rows(dh_prev.data(), dh_rec.data(), batch, H, lengths, t);
    }
    state_grad_.h = std::move(dh_rec);
    state_grad_.c = std::move(dc_rec);
    // dW_h += Σ_t dgh_t^T h_{t-1}: one GEMM over all steps.
    ops::gemm(ops::Trans::yes, ops::Trans::no, G, H, steps * batch, T(1), dgh.data(), G,
              trace_.h_prev.data(), H, T(1), weight_hh_.grad.data(), H);
    // Through the input-term BN (padded frames get 0).
    return bn_ih_step_ ? bn_ih_step_->backward(da.view()) : bn_ih_seq_->backward(da.view());
  }

  /// dL/d(initial h, c) of the last backward.
  const RecurrentState<T>& state_grad() const noexcept { return state_grad_; }

  /// Drops the run_train cache (the BNs keep their small per-step caches).
  void clear_cache() {
    trace_ = Trace();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view suffix = {}) {
    f(name("weight_hh", suffix), weight_hh_);
    f(name("bias", suffix), bn_hh_.bias());
    f(name("gamma_ih", suffix), input_gamma());
    f(name("gamma_hh", suffix), bn_hh_.weight());
    f(name("gamma_c", suffix), bn_c_.weight());
    f(name("beta_c", suffix), bn_c_.bias());
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view suffix = {}) {
    auto visit = [&](const char* tag, auto& bn) {
      f(name("running_mean_", tag, suffix), bn.running_mean());
      f(name("running_var_", tag, suffix), bn.running_var());
      f(name("num_batches_tracked_", tag, suffix), bn.num_batches_tracked());
    };
    with_input_bn([&](auto& bn) { visit("ih", bn); });
    visit("hh", bn_hh_);
    visit("c", bn_c_);
  }

  Parameter<T>& weight_hh() noexcept { return weight_hh_; }
  RecurrentBatchNorm<T>& bn_hh() noexcept { return bn_hh_; }  ///< γ_h and b (its β)
  RecurrentBatchNorm<T>& bn_c() noexcept { return bn_c_; }    ///< γ_c, β_c
  /// The per-step input BN (nullptr when input_norm is sequence).
  RecurrentBatchNorm<T>* bn_ih_per_step() noexcept { return bn_ih_step_ ? &*bn_ih_step_ : nullptr; }
  /// The sequence-wise input BN (nullptr when input_norm is per_step).
  SequenceBatchNorm<T>* bn_ih_sequence() noexcept { return bn_ih_seq_ ? &*bn_ih_seq_ : nullptr; }

 private:
  // Per-step buffers: one slot per step in training (kept for backward), one reused slot at
  // inference.
  struct Trace {
    index_t batch = 0, steps = 0;
    Tensor<T> acts;     // [S, B, 4H]: σ(ĩ), σ(f̃), tanh(g̃), σ(õ)
    Tensor<T> cell;     // [S, B, H]: c_t, unnormalised (the held c_{t-1} on padded steps)
    Tensor<T> tanh_cn;  // [S, B, H]: tanh(BN(c_t))
    Tensor<T> h_prev;   // [S, B, H]: h_{t-1}, the input of step t's recurrent GEMM
    Tensor<T> c0;       // [B, H]: the initial cell state
    Trace() = default;
    Trace(index_t b, index_t h, index_t slots)
        : batch(b),
          steps(slots),
          acts(Shape{slots, b, 4 * h}, uninitialized),
          cell(Shape{slots, b, h}, uninitialized),
          tanh_cn(Shape{slots, b, h}, uninitialized),
          h_prev(Shape{slots, b, h}, uninitialized),
          c0(Shape{b, h}, uninitialized) {}
  };

  static index_t check_hidden(index_t h) {
    if (h < 1)
      throw ValueError("bnlstm.1", detail::str("BNLSTMCell: hidden_size must be >= 1, got ", h));
    return h;
  }

  static std::string name(std::string_view base, std::string_view suffix) {
    return std::string(base) + std::string(suffix);
  }
  static std::string name(std::string_view base, std::string_view tag, std::string_view suffix) {
    return std::string(base) + std::string(tag) + std::string(suffix);
  }

  // f(bn) on the input-term BN, whichever kind it is (both have the same accessors).
  template <class F>
  void with_input_bn(F&& f) {
    if (bn_ih_step_)
      f(*bn_ih_step_);
    else
      f(*bn_ih_seq_);
  }
  Parameter<T>& input_gamma() { return bn_ih_step_ ? bn_ih_step_->weight() : bn_ih_seq_->weight(); }

  void check_xp(TensorView<const T> xp) const {
    if (xp.rank() != 3 || xp.dim(2) != 4 * hidden_)
      throw ShapeError("bnlstm.4",
                       detail::str("BNLSTMCell: xp must have shape [T, B, ", 4 * hidden_,
                                   "] (4 x hidden_size), got ", xp.shape().str()));
  }

  static TensorView<const std::int32_t> lengths_view(TensorView<const T> xp,
                                                     const std::int32_t* lengths) {
    if (lengths == nullptr) return {};
    return TensorView<const std::int32_t>(lengths, Shape{xp.dim(1)});
  }

  // The recurrence shared by run and run_train. xn [T, B, 4H] is the normalised input term;
  // norm_hh(gh, t, out) and norm_c(c, t, out) apply the step-t BNs (batch or population
  // statistics) into per-layer buffers.
  template <class NormHH, class NormC>
  Tensor<T> unroll(const Tensor<T>& xn, const std::int32_t* lengths, RecurrentState<T>* state,
                   Trace& tr, bool train, NormHH&& norm_hh, NormC&& norm_c) const {
    const index_t steps = xn.dim(0), batch = xn.dim(1), H = hidden_, G = 4 * H;
    Tensor<T> h(Shape{batch, H}), c(Shape{batch, H});
    if (state != nullptr && state->h.numel() > 0) {
      check_state(*state, batch);
      h = state->h;
      c = state->c;
    }
    std::copy(c.data(), c.data() + c.numel(), tr.c0.data());
    Tensor<T> out(Shape{steps, batch, H});  // padded frames stay 0
    Tensor<T> gh(Shape{batch, G}, uninitialized), nh(Shape{batch, G}, uninitialized);
    Tensor<T> cn(Shape{batch, H}, uninitialized);
    const ops::PackedMatrix<T> w_t(ops::Trans::yes, weight_hh_.value.view());  // W_h^T, packed once
    for (index_t t = 0; t < steps; ++t) {
      const index_t s = train ? t : 0;
      if (train) std::copy(h.data(), h.data() + h.numel(), tr.h_prev[s].data());
      ops::gemm_packed(batch, T(1), h.data(), H, w_t, T(0), gh.data(), G);
      norm_hh(gh.view(), t, nh.view());  // BN(W_h h_{t-1}; γ_h, b); padded rows 0
      for (index_t b = 0; b < batch; ++b) {
        T* cs = c[b].data();
        T* cell = tr.cell[s][b].data();
        if (detail::padding::active(lengths, b, t))
          detail::bnlstm::gates_row(tr.acts[s][b].data(), nh[b].data(), xn[t][b].data(), cs, H);
        std::copy(cs, cs + H, cell);  // padded items: the held c (masked out of BN_c)
      }
      norm_c(tr.cell[s], t, cn.view());  // BN(c_t; γ_c, β_c)
      for (index_t b = 0; b < batch; ++b) {
        if (!detail::padding::active(lengths, b, t)) continue;
        detail::bnlstm::output_row(h[b].data(), out[t][b].data(), tr.tanh_cn[s][b].data(),
                                   tr.acts[s][b].data() + 3 * H, cn[b].data(), H);
      }
    }
    if (state != nullptr) {
      state->h = std::move(h);
      state->c = std::move(c);
    }
    return out;
  }

  void check_state(const RecurrentState<T>& s, index_t batch) const {
    const Shape want{batch, hidden_};
    if (s.h.shape() != want || s.c.shape() != want)
      throw ShapeError("bnlstm.5",
                       detail::str("BNLSTMCell: state h and c must have shape ", want.str(),
                                   ", got h ", s.h.shape().str(), " and c ", s.c.shape().str()));
  }

  Options options_;
  index_t hidden_;
  Parameter<T> weight_hh_;
  RecurrentBatchNorm<T> bn_hh_, bn_c_;
  std::optional<RecurrentBatchNorm<T>> bn_ih_step_;
  std::optional<SequenceBatchNorm<T>> bn_ih_seq_;
  // run_train cache
  Trace trace_;
  std::vector<std::int32_t> lengths_;
  RecurrentState<T> state_grad_;
  bool cached_ = false;
};

/// Options of the BN-LSTM layer: the layer's (directions, merge, shared input weights) and the
/// cell's. `bias` and `input_batch_norm` are ignored: the bias lives in the cell (b, the β of
/// BN_h) and the cell normalises its input term itself.
struct BNLSTMOptions : RecurrentOptions {
  index_t max_steps = 1000;  ///< T_max (BNLSTMCellOptions::max_steps)
  BNLSTMInputNorm input_norm = BNLSTMInputNorm::per_step;
  RecurrentBatchNormOptions norm{};
  double forget_bias = 1.0;
};

/// A BN-LSTM layer (Cooijmans et al. 2017; SPECS §4): x [T, B, F] -> y [T, B, H] (or 2H,
/// bidirectional concat). Parameters: "weight_ih_l0" [4H, F] (no bias_ih) and the cell's
/// (BNLSTMCell), with "_l0_reverse" for the reverse direction. Initialisation (SPECS §4.3):
/// orthogonal W_x and W_h (per gate block), γ = 0.1, β_c = 0, forget-gate bias 1, whatever
/// RecurrentOptions::init says.
template <class T>
class BNLSTM : public Recurrent<BNLSTMCell<T>> {
  using Base = Recurrent<BNLSTMCell<T>>;

 public:
  BNLSTM(index_t input_size, index_t hidden_size, const BNLSTMOptions& o = {},
         Rng& rng = init::global_rng())
      : Base(input_size,
             BNLSTMCellOptions{hidden_size, o.max_steps, o.input_norm, o.norm, o.forget_bias},
             layer_options(o), rng) {
    orthogonal_input_weights(rng);
  }

  /// Redraws every parameter (SPECS §4.3) and resets the population statistics.
  void reset_parameters(Rng& rng) {
    Base::reset_parameters(rng);
    orthogonal_input_weights(rng);
  }

 private:
  static RecurrentOptions layer_options(const BNLSTMOptions& o) {
    RecurrentOptions r = o;
    r.bias = false;
    r.input_batch_norm = false;
    return r;
  }
  void orthogonal_input_weights(Rng& rng) {
    const index_t h = this->hidden_size(), f = this->input_size();
    const index_t projections =
        this->options().bidirectional && !this->options().share_input_weights ? 2 : 1;
    for (index_t p = 0; p < projections; ++p)
      for (index_t g = 0; g < 4; ++g)
        init::orthogonal(TensorView<T>(this->weight_ih(p).value.data() + g * h * f, Shape{h, f}),
                         rng);
  }
};

}  // namespace asrkit
