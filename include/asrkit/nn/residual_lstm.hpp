// asrkit/nn/residual_lstm.hpp - the residual LSTM cell (Kim, El-Khamy & Lee, Interspeech 2017;
// SPECS §5) for Recurrent<Cell> (nn/recurrent.hpp).
//
//   asrkit::ResidualLSTMOptions opt;                      // d_cell 1024, d_out 512, peepholes
//   asrkit::ResidualLSTMCell<float> cell(512, opt);       // input size 512 = d_out: identity
//   shortcut auto h   = cell.run_train(xp, lengths, nullptr);      // xp [T, B, 3 d_cell + d_out (+
//   d_out)] auto dxp = cell.backward(dh);
//
// A peephole LSTM with a projection whose output layer carries a spatial shortcut (SPECS §5.2):
//   i_t = σ(W_xi x + W_hi h_{t−1} + w_ci ⊙ c_{t−1} + b_i)
//   f_t = σ(W_xf x + W_hf h_{t−1} + w_cf ⊙ c_{t−1} + b_f)
//   c_t = f_t ⊙ c_{t−1} + i_t ⊙ tanh(W_xc x + W_hc h_{t−1} + b_c)
//   o_t = σ(W_xo x + W_ho h_{t−1} + W_co c_t + b_o)      (o has d_out entries, W_co is d_out x
//   d_cell) h_t = o_t ⊙ (W_p tanh(c_t) + W_h x_t)              (W_h = I when dim(x) = d_out)
// The shortcut bypasses the cell, so the temporal path (c) and the spatial path (h) stay apart.
// The input projection computes the columns [i, f, g (d_cell each), o (d_out)] and, when
// dim(x) != d_out, W_h x as d_out extra columns (its bias columns then act as a shortcut bias).
// With dim(x) = d_out the shortcut is x itself: the layer hands x to the cell (set_input) and
// adds the cell's input_gradient() to dx.
//
// Per step: one GEMM h_{t−1} W_hh^T onto the copied xp row, a pass for i, f, g and c_t, then
// o's peephole c_t W_co^T and the projection tanh(c_t) W_p^T (two small GEMMs), a pass for h_t.
// Backward keeps every step's gate gradients, so dW_hh, dW_co and dW_p are one GEMM each after
// the loop.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/recurrent_kernels.hpp>
#include <asrkit/nn/detail/recurrent_padding.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>

namespace asrkit {
namespace detail {
namespace reslstm {

using rnn::ConstRow;
using rnn::Row;

/// z [3 Hc]: in = the pre-activations of i, f, g (without peepholes), out = σ(i), σ(f), tanh(g);
/// c: in c_{t−1}, out c_t; r = tanh(c_t). wci / wcf: diagonal peepholes (nullptr: none).
template <class T>
void cell_row(T* z, T* c, T* r, const T* wci, const T* wcf, index_t n) {
  Row<T> i(z, n), f(z + n, n), g(z + 2 * n, n), cc(c, n);
  if (wci) {
    i += ConstRow<T>(wci, n) * cc;
    f += ConstRow<T>(wcf, n) * cc;
  }
  i = i.logistic();
  f = f.logistic();
  g = g.tanh();
  cc = f * cc + i * g;
  Row<T>(r, n) = cc.tanh();
}

/// o = σ(zo) in place; ms = m + s (projection plus shortcut) in place of m; h = o ⊙ ms.
template <class T>
void output_row(T* zo, T* ms, const T* shortcut, T* h, T* y, index_t p) {
  Row<T> o(zo, p), m(ms, p);
  o = o.logistic();
  m += ConstRow<T>(shortcut, p);
  Row<T>(h, p) = o * m;
  Row<T>(y, p) = Row<T>(h, p);
}

/// From dh = dy + dh_rec: dzo (pre-sigmoid) and dms = dL/d(m + s) = dh ⊙ o.
template <class T>
void output_backward_row(T* dzo, T* dms, const T* dy, const T* dh_rec, const T* o, const T* ms,
                         index_t p) {
  const ConstRow<T> oo(o, p);
  const auto g = ConstRow<T>(dy, p) + ConstRow<T>(dh_rec, p);
  Row<T>(dzo, p) = g * ConstRow<T>(ms, p) * rnn::dsigmoid(oo);
  Row<T>(dms, p) = g * oo;
}

/// dc = dc_rec + dr ⊙ tanh'(c) + dco (the projection and o's peephole); dz [3 Hc] for i, f, g;
/// dc_rec: out dL/dc_{t−1} (direct and peephole paths); peephole grads accumulated.
template <class T>
void cell_backward_row(T* dz, T* dc_rec, const T* dr, const T* dco, const T* z, const T* r,
                       const T* c_prev, const T* wci, const T* wcf, T* dwci, T* dwcf, index_t n) {
  const ConstRow<T> i(z, n), f(z + n, n), g(z + 2 * n, n), cp(c_prev, n), rr(r, n);
  Row<T> dc(dc_rec, n);
  dc += ConstRow<T>(dr, n) * (T(1) - rr.square());
  if (dco) dc += ConstRow<T>(dco, n);
  Row<T> di(dz, n), df(dz + n, n);
  di = dc * g * rnn::dsigmoid(i);
  df = dc * cp * rnn::dsigmoid(f);
  Row<T>(dz + 2 * n, n) = dc * i * (T(1) - g.square());
  dc *= f;
  if (wci) {
    dc += di * ConstRow<T>(wci, n) + df * ConstRow<T>(wcf, n);
    Row<T>(dwci, n) += di * cp;
    Row<T>(dwcf, n) += df * cp;
  }
}

}  // namespace reslstm
}  // namespace detail

/// Options of ResidualLSTMCell (one direction). input_size decides the shortcut: identity when it
/// equals output_size, else a learned d_out x d_in W_h (extra projection columns).
struct ResidualLSTMCellOptions {
  index_t input_size = 0;
  index_t cell_size = 1024;   ///< d_cell (SPECS §5.3 library default [D])
  index_t output_size = 512;  ///< d_out: the width of h_t (the projection's output)
  bool peepholes = true;      ///< w_ci, w_cf (diagonal) and W_co (d_out x d_cell)
};

/// One direction of a residual LSTM layer, forward in time (the Cell interface of
/// nn/recurrent.hpp). Parameters (names get the layer's suffix, e.g. "_l0"): "weight_hh"
/// [3 Hc + P, P] (rows i, f, g, o), "weight_hr" [P, Hc] (W_p, torch.nn.LSTM's projection name),
/// and with peepholes "weight_ci" [Hc], "weight_cf" [Hc], "weight_co" [P, Hc]. The gate biases
/// and the shortcut W_h are columns of the layer's input projection.
template <class T>
class ResidualLSTMCell {
  static_assert(std::is_floating_point_v<T>, "ResidualLSTMCell<T>: T must be float or double");

 public:
  using value_type = T;
  using Options = ResidualLSTMCellOptions;

  explicit ResidualLSTMCell(const Options& options)
      : options_(options),
        input_(options.input_size),
        cell_(options.cell_size),
        out_(options.output_size) {
    if (input_ < 1 || cell_ < 1 || out_ < 1)
      throw ValueError("reslstm.1", detail::str("ResidualLSTMCell: input_size, cell_size and "
                                                "output_size must be >= 1, got ",
                                                input_, ", ", cell_, " and ", out_));
    weight_hh_ = Parameter<T>(Shape{gate_columns(), out_});
    weight_hr_ = Parameter<T>(Shape{out_, cell_});
    if (options_.peepholes) {
      weight_ci_ = Parameter<T>(Shape{cell_});
      weight_cf_ = Parameter<T>(Shape{cell_});
      weight_co_ = Parameter<T>(Shape{out_, cell_});
    }
    Rng rng(0);
    reset_parameters(rng, input_);
  }

  /// 3 d_cell + d_out gate columns, plus d_out shortcut columns when dim(x) != d_out.
  index_t input_columns() const noexcept {
    return gate_columns() + (identity_shortcut() ? 0 : out_);
  }
  index_t hidden_size() const noexcept { return out_; }
  index_t state_count() const noexcept { return 2; }
  index_t cell_size() const noexcept { return cell_; }
  /// The width of the state c (d_cell; h has d_out): Recurrent checks streaming states with it.
  index_t cell_state_size() const noexcept { return cell_; }
  bool identity_shortcut() const noexcept { return input_ == out_; }
  const Options& options() const noexcept { return options_; }

  /// PyTorch's LSTM default, U(±1/sqrt(d_cell)), for every cell weight (peepholes included).
  /// input_size must be the one the options name (it fixed the shortcut).
  void reset_parameters(Rng& rng, index_t input_size) {
    if (input_size != input_)
      throw ValueError("reslstm.1", detail::str("ResidualLSTMCell: the layer's input size ",
                                                input_size, " differs from the cell's input_size ",
                                                input_, " (ResidualLSTMCellOptions::input_size)"));
    const double bound = 1.0 / std::sqrt(static_cast<double>(cell_));
    for_each_parameter(
        [&](const std::string&, Parameter<T>& p) { init::uniform(p, rng, -bound, bound); });
  }

  /// The layer input x [T, B, d_out] the identity shortcut reads, in this direction's time order
  /// (a view: it must stay alive until run / run_train returns; ResidualLSTM binds it around
  /// each call). Only used when identity_shortcut().
  void set_input(TensorView<const T> x) const { shortcut_input_ = x; }

  Tensor<T> run(TensorView<const T> xp, const std::int32_t* lengths,
                RecurrentState<T>* state) const {
    Trace tr(xp.dim(1), cell_, out_, gate_columns(), 1);
    return unroll(xp, lengths, state, tr, false);
  }

  Tensor<T> run_train(TensorView<const T> xp, const std::int32_t* lengths,
                      RecurrentState<T>* state) {
    trace_ = Trace(xp.dim(1), cell_, out_, gate_columns(), xp.dim(0));
    lengths_.clear();
    if (lengths) lengths_.assign(lengths, lengths + xp.dim(1));
    auto h = unroll(xp, lengths, state, trace_, true);
    cached_ = true;
    return h;
  }

  /// dh [T, B, d_out] -> dxp [T, B, input_columns()]; adds to every grad. With the identity
  /// shortcut, dL/dx through the shortcut is input_gradient() (the layer adds it to dx).
  Tensor<T> backward(TensorView<const T> dh) {
    if (!cached_)
      throw ValueError("reslstm.3",
                       "ResidualLSTMCell::backward: no cached forward; call run_train first");
    const index_t steps = trace_.steps, batch = trace_.batch, Hc = cell_, P = out_;
    const index_t G = gate_columns(), C = input_columns();
    if (dh.shape() != Shape{steps, batch, P})
      throw ShapeError("reslstm.4", detail::str("ResidualLSTMCell::backward: dh must have shape [",
                                                steps, ", ", batch, ", ", P,
                                                "] (the run_train "
                                                "output), got ",
                                                dh.shape().str()));
    const std::int32_t* lengths = lengths_.empty() ? nullptr : lengths_.data();
    Tensor<T> dz(Shape{steps, batch, G}, uninitialized);   // gate pre-activation gradients
    Tensor<T> dms(Shape{steps, batch, P}, uninitialized);  // dL/d(m + s): projection and shortcut
    Tensor<T> dh_rec(Shape{batch, P}), dc_rec(Shape{batch, Hc});
    Tensor<T> dr(Shape{batch, Hc}, uninitialized), dco(Shape{batch, Hc}, uninitialized);
    Tensor<T> dh_prev(Shape{batch, P}, uninitialized);
    const bool peep = options_.peepholes;
    const Packed w(*this, ops::Trans::no);  // W_hh, W_co, W_p as stored, packed once
    for (index_t t = steps - 1; t >= 0; --t) {
      for (index_t b = 0; b < batch; ++b) {
        T* dz_r = dz[t][b].data();
        if (!detail::padding::active(lengths, b, t)) {
          std::fill(dz_r, dz_r + G, T(0));
          std::fill(dms[t][b].data(), dms[t][b].data() + P, T(0));
          continue;
        }
        detail::reslstm::output_backward_row(dz_r + 3 * Hc, dms[t][b].data(), dh[t][b].data(),
                                             dh_rec[b].data(), trace_.z[t][b].data() + 3 * Hc,
                                             trace_.ms[t][b].data(), P);
      }
      // dr = dms W_p; dco = dzo W_co (o's peephole on c_t).
      ops::gemm_packed(batch, T(1), dms[t].data(), P, w.hr, T(0), dr.data(), Hc);
      if (peep) ops::gemm_packed(batch, T(1), dz[t].data() + 3 * Hc, G, w.co, T(0), dco.data(), Hc);
      for (index_t b = 0; b < batch; ++b) {
        if (!detail::padding::active(lengths, b, t)) continue;
        const T* c_prev = t > 0 ? trace_.cell[t - 1][b].data() : trace_.c0[b].data();
        detail::reslstm::cell_backward_row(
            dz[t][b].data(), dc_rec[b].data(), dr[b].data(), peep ? dco[b].data() : nullptr,
            trace_.z[t][b].data(), trace_.r[t][b].data(), c_prev,
            peep ? weight_ci_.value.data() : nullptr, peep ? weight_cf_.value.data() : nullptr,
            peep ? weight_ci_.grad.data() : nullptr, peep ? weight_cf_.grad.data() : nullptr, Hc);
      }
      ops::gemm_packed(batch, T(1), dz[t].data(), G, w.hh, T(0), dh_prev.data(), P);
      detail::padding::copy_active_rows(dh_prev.data(), dh_rec.data(), batch, P, lengths, t);
    }
    state_grad_.h = std::move(dh_rec);
    state_grad_.c = std::move(dc_rec);
    // Weight gradients, one GEMM each over all steps.
    const index_t rows = steps * batch;
    ops::gemm(ops::Trans::yes, ops::Trans::no, G, P, rows, T(1), dz.data(), G, trace_.h_prev.data(),
              P, T(1), weight_hh_.grad.data(), P);
    ops::gemm(ops::Trans::yes, ops::Trans::no, P, Hc, rows, T(1), dms.data(), P, trace_.r.data(),
              Hc, T(1), weight_hr_.grad.data(), Hc);
    if (peep)
      ops::gemm(ops::Trans::yes, ops::Trans::no, P, Hc, rows, T(1), dz.data() + 3 * Hc, G,
                trace_.cell.data(), Hc, T(1), weight_co_.grad.data(), Hc);
    if (identity_shortcut()) {
      shortcut_grad_ = std::move(dms);
      return dz;
    }
    Tensor<T> dxp(Shape{steps, batch, C}, uninitialized);
    for (index_t r = 0; r < rows; ++r) {
      std::copy(dz.data() + r * G, dz.data() + (r + 1) * G, dxp.data() + r * C);
      std::copy(dms.data() + r * P, dms.data() + (r + 1) * P, dxp.data() + r * C + G);
    }
    return dxp;
  }

  /// dL/dx through the identity shortcut after backward ([T, B, d_out]; empty otherwise).
  const Tensor<T>& input_gradient() const noexcept { return shortcut_grad_; }
  /// dL/d(initial h, c) of the last backward.
  const RecurrentState<T>& state_grad() const noexcept { return state_grad_; }

  void clear_cache() {
    trace_ = Trace();
    shortcut_grad_ = Tensor<T>();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view suffix = {}) {
    f(name("weight_hh", suffix), weight_hh_);
    f(name("weight_hr", suffix), weight_hr_);
    if (!options_.peepholes) return;
    f(name("weight_ci", suffix), weight_ci_);
    f(name("weight_cf", suffix), weight_cf_);
    f(name("weight_co", suffix), weight_co_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

 private:
  struct Trace {
    index_t batch = 0, steps = 0;
    Tensor<T> z;       // [S, B, 3Hc + P]: σ(i), σ(f), tanh(g), σ(o)
    Tensor<T> cell;    // [S, B, Hc]: c_t (the held c_{t−1} on padded steps)
    Tensor<T> r;       // [S, B, Hc]: tanh(c_t) (0 on padded steps)
    Tensor<T> ms;      // [S, B, P]: m_t + s_t, projection plus shortcut
    Tensor<T> h_prev;  // [S, B, P]
    Tensor<T> c0;      // [B, Hc]
    Trace() = default;
    Trace(index_t b, index_t hc, index_t p, index_t g, index_t slots)
        : batch(b),
          steps(slots),
          z(Shape{slots, b, g}, uninitialized),
          cell(Shape{slots, b, hc}, uninitialized),
          r(Shape{slots, b, hc}, uninitialized),
          ms(Shape{slots, b, p}, uninitialized),
          h_prev(Shape{slots, b, p}, uninitialized),
          c0(Shape{b, hc}, uninitialized) {}
  };

  index_t gate_columns() const noexcept { return 3 * cell_ + out_; }

  // The per-step weights packed for gemm_packed: op = Trans::yes for the forward products
  // (h W_hh^T, c W_co^T, r W_p^T), Trans::no for backward's (dz W_hh, dzo W_co, dms W_p).
  struct Packed {
    ops::PackedMatrix<T> hh, co, hr;
    Packed(const ResidualLSTMCell& c, ops::Trans op)
        : hh(op, c.weight_hh_.value.view()), hr(op, c.weight_hr_.value.view()) {
      if (c.options_.peepholes) co.pack(op, c.weight_co_.value.view());
    }
  };

  static std::string name(std::string_view base, std::string_view suffix) {
    return std::string(base) + std::string(suffix);
  }

  void check_input(TensorView<const T> xp) const {
    if (xp.rank() != 3 || xp.dim(2) != input_columns())
      throw ShapeError("reslstm.2",
                       detail::str("ResidualLSTMCell: xp must have shape [T, B, ", input_columns(),
                                   "] (3 cell_size + output_size",
                                   identity_shortcut() ? "" : " + output_size shortcut", "), got ",
                                   xp.shape().str()));
    if (identity_shortcut() &&
        (shortcut_input_.rank() != 3 || shortcut_input_.dim(0) != xp.dim(0) ||
         shortcut_input_.dim(1) != xp.dim(1) || shortcut_input_.dim(2) != out_))
      throw ShapeError("reslstm.2",
                       detail::str("ResidualLSTMCell: the identity shortcut needs the "
                                   "layer input x [",
                                   xp.dim(0), ", ", xp.dim(1), ", ", out_, "] (set_input), got ",
                                   shortcut_input_.shape().str()));
  }

  Tensor<T> unroll(TensorView<const T> xp, const std::int32_t* lengths, RecurrentState<T>* state,
                   Trace& tr, bool train) const {
    check_input(xp);
    const index_t steps = xp.dim(0), batch = xp.dim(1), Hc = cell_, P = out_, G = gate_columns();
    Tensor<T> h(Shape{batch, P}), c(Shape{batch, Hc});
    if (state != nullptr && state->h.numel() > 0) {
      if (state->h.shape() != Shape{batch, P} || state->c.shape() != Shape{batch, Hc})
        throw ShapeError("reslstm.5",
                         detail::str("ResidualLSTMCell: state h must have shape [", batch, ", ", P,
                                     "] and c [", batch, ", ", Hc, "], got ",
                                     state->h.shape().str(), " and ", state->c.shape().str()));
      h = state->h;
      c = state->c;
    }
    std::copy(c.data(), c.data() + c.numel(), tr.c0.data());
    const T* wci = options_.peepholes ? weight_ci_.value.data() : nullptr;
    const T* wcf = options_.peepholes ? weight_cf_.value.data() : nullptr;
    Tensor<T> out(Shape{steps, batch, P});   // padded frames stay 0
    const Packed w(*this, ops::Trans::yes);  // W_hh^T, W_co^T, W_p^T, packed once per pass
    for (index_t t = 0; t < steps; ++t) {
      const index_t s = train ? t : 0;
      if (train) std::copy(h.data(), h.data() + h.numel(), tr.h_prev[s].data());
      T* z = tr.z[s].data();
      for (index_t b = 0; b < batch; ++b)
        std::copy(xp[t][b].data(), xp[t][b].data() + G, z + b * G);
      ops::gemm_packed(batch, T(1), h.data(), P, w.hh, T(1), z, G);
      for (index_t b = 0; b < batch; ++b) {
        T* cs = c[b].data();
        if (detail::padding::active(lengths, b, t)) {
          detail::reslstm::cell_row(z + b * G, cs, tr.r[s][b].data(), wci, wcf, Hc);
        } else {
          std::fill(tr.r[s][b].data(), tr.r[s][b].data() + Hc, T(0));
        }
        std::copy(cs, cs + Hc, tr.cell[s][b].data());
      }
      // o's peephole sees c_t (SPECS §5.2): zo += c_t W_co^T; projection m = tanh(c_t) W_p^T.
      if (options_.peepholes)
        ops::gemm_packed(batch, T(1), tr.cell[s].data(), Hc, w.co, T(1), z + 3 * Hc, G);
      ops::gemm_packed(batch, T(1), tr.r[s].data(), Hc, w.hr, T(0), tr.ms[s].data(), P);
      for (index_t b = 0; b < batch; ++b) {
        if (!detail::padding::active(lengths, b, t)) continue;
        const T* shortcut =
            identity_shortcut() ? shortcut_input_[t][b].data() : xp[t][b].data() + G;
        detail::reslstm::output_row(z + b * G + 3 * Hc, tr.ms[s][b].data(), shortcut, h[b].data(),
                                    out[t][b].data(), P);
      }
    }
    if (state != nullptr) {
      state->h = std::move(h);
      state->c = std::move(c);
    }
    return out;
  }

  Options options_;
  index_t input_, cell_, out_;
  Parameter<T> weight_hh_, weight_hr_, weight_ci_, weight_cf_, weight_co_;
  mutable TensorView<const T> shortcut_input_;  // a binding for one call, not state
  // run_train cache
  Trace trace_;
  std::vector<std::int32_t> lengths_;
  Tensor<T> shortcut_grad_;
  RecurrentState<T> state_grad_;
  bool cached_ = false;
};

/// Options of the residual LSTM layer: the layer's and the cell's sizes (SPECS §5.3 defaults).
struct ResidualLSTMOptions : RecurrentOptions {
  index_t cell_size = 1024;
  index_t output_size = 512;
  bool peepholes = true;
};

/// A residual LSTM layer (Kim et al. 2017; SPECS §5): x [T, B, F] -> y [T, B, d_out] (2 d_out
/// for bidirectional concat). Parameters: "weight_ih_l0" [3 d_cell + d_out (+ d_out), F],
/// "bias_ih_l0" (unless bias = false) and the cell's (ResidualLSTMCell). With F = d_out the
/// shortcut is x itself: forward binds x (reversed for the reverse direction) to the cells for the
/// duration of the call, so one layer object must not run two forwards concurrently.
template <class T>
class ResidualLSTM : public Recurrent<ResidualLSTMCell<T>> {
  using Base = Recurrent<ResidualLSTMCell<T>>;

 public:
  ResidualLSTM(index_t input_size, const ResidualLSTMOptions& o = {}, Rng& rng = init::global_rng())
      : Base(input_size,
             ResidualLSTMCellOptions{input_size, o.cell_size, o.output_size, o.peepholes},
             layer_options(o), rng) {}

  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    const Binding bound(*this, x, lengths);
    return Base::forward(x, lengths);
  }
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                    RecurrentState<T>& state) const {
    const Binding bound(*this, x, lengths);
    return Base::forward(x, lengths, state);
  }
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    const Binding bound(*this, x, lengths);
    auto y = Base::forward_train(x, lengths);
    keep_lengths(x, lengths);
    return y;
  }
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                          RecurrentState<T>& state) {
    const Binding bound(*this, x, lengths);
    auto y = Base::forward_train(x, lengths, state);
    keep_lengths(x, lengths);
    return y;
  }

  /// dL/dx: through the input projection and, with the identity shortcut, through the shortcut.
  Tensor<T> backward(TensorView<const T> dy) {
    Tensor<T> dx = Base::backward(dy);
    if (!this->cell().identity_shortcut()) return dx;
    for (index_t d = 0; d < this->num_directions(); ++d) {
      const Tensor<T>& g = this->cell(d).input_gradient();
      Tensor<T> rev;
      const T* src = g.data();
      if (d == 1) {  // the reverse direction's time order back to the input's
        rev = detail::rnn::reverse_padded<T>(
            g.view(), train_lengths_.empty() ? nullptr : train_lengths_.data());
        src = rev.data();
      }
      T* out = dx.data();
      for (index_t i = 0, n = dx.numel(); i < n; ++i) out[i] += src[i];
    }
    return dx;
  }

 private:
  static RecurrentOptions layer_options(const ResidualLSTMOptions& o) {
    RecurrentOptions r = o;
    r.input_batch_norm = false;
    return r;
  }

  // Binds x (and its padded reversal) to the cells of an identity-shortcut layer for one call.
  // Invalid x or lengths bind nothing: Recurrent's checks then throw before any cell runs.
  struct Binding {
    const ResidualLSTM& layer;
    Tensor<T> reversed;
    Binding(const ResidualLSTM& l, TensorView<const T> x, TensorView<const std::int32_t> lengths)
        : layer(l) {
      if (!l.cell().identity_shortcut() || !valid(l, x, lengths)) return;
      l.cell(0).set_input(x);
      if (l.num_directions() == 2) {
        reversed = detail::rnn::reverse_padded<T>(x, lengths.data());
        l.cell(1).set_input(reversed.view());
      }
    }
    ~Binding() {
      for (index_t d = 0; d < layer.num_directions(); ++d) layer.cell(d).set_input({});
    }
    static bool valid(const ResidualLSTM& l, TensorView<const T> x,
                      TensorView<const std::int32_t> lengths) {
      if (x.rank() != 3 || x.dim(2) != l.input_size()) return false;
      if (lengths.data() == nullptr) return true;
      if (lengths.rank() != 1 || lengths.dim(0) != x.dim(1)) return false;
      return std::all_of(lengths.data(), lengths.data() + x.dim(1),
                         [&](std::int32_t n) { return n >= 0 && n <= x.dim(0); });
    }
  };

  void keep_lengths(TensorView<const T> x, TensorView<const std::int32_t> lengths) {
    train_lengths_.clear();
    if (lengths.data() && x.rank() == 3)
      train_lengths_.assign(lengths.data(), lengths.data() + x.dim(1));
  }

  std::vector<std::int32_t> train_lengths_;  // of the last forward_train (backward's reversal)
};

}  // namespace asrkit
