// asrkit/nn/recurrent.hpp - recurrent layers: simple RNN, GRU, LSTM and DS2's BN-RNN,
// uni- or bidirectional, over time-major [T, B, F] batches with per-item lengths.
//
//   asrkit::Rng rng(1);
//   asrkit::GRUOptions o;
//   o.bidirectional = true;
//   o.merge = asrkit::RecurrentMerge::sum;            // DS2 sums the two directions
//   asrkit::GRU<float> gru(161, 800, o, rng);         // x [T, B, 161] -> y [T, B, 800]
//   auto y  = gru.forward(x, lengths);                // inference; padded frames give 0
//   auto yt = gru.forward_train(x, lengths);          // caches what backward needs
//   auto dx = gru.backward(dy);                       // dL/dx; adds to every Parameter::grad
//
//   asrkit::LSTM<float> lstm(80, 256);                // unidirectional: streaming with a state
//   asrkit::RecurrentState<float> s;                  // empty = zeros
//   auto y1 = lstm.forward(chunk1, len1, s);          // s now holds each item's last h and c
//   auto y2 = lstm.forward(chunk2, len2, s);          // equals the full forward over both chunks
//
// Structure (docs/recurrent.md). `Recurrent<Cell>` owns the input projection of every frame as
// one GEMM, xp [T·B, C] = x W_ih^T + b_ih (optionally followed by DS2's sequence-wise BN, SPECS
// §3.3), the directions, the lengths and the merge. A Cell runs one direction forward in time:
// per step one GEMM h_{t−1} W_hh^T over the batch and one fused element-wise pass
// (nn/detail/recurrent_kernels.hpp). The reverse direction is the same forward recurrence on each
// item's valid prefix reversed in time (padding stays at the end), reversed back afterwards.
// Backward through time keeps every step's gate gradients, so dW_hh is one GEMM after the loop.
//
// Conventions: frames t >= lengths[b] are padding: their outputs and input gradients are 0 and
// the state of item b is held from its last valid frame. Parameter names are those of
// torch.nn.RNN / GRU / LSTM with num_layers = 1: weight_ih_l0, weight_hh_l0, bias_ih_l0,
// bias_hh_l0 and the same with _l0_reverse; DS2's shared input weights have only the _l0 pair,
// its BN is "norm_ih_l0" (+ "norm_ih_l0_reverse" with separate input weights).
//
// ---- The Cell interface (shared with the BN-LSTM / residual LSTM cells) ---------------------
// A Cell (one direction, forward in time) provides
//   using value_type = T;  using Options = ...;  explicit Cell(const Options&);
//   index_t input_columns() const;   // C: width of the per-frame projection it consumes
//   index_t hidden_size() const;     // width of its per-frame output h_t
//   index_t state_count() const;     // 1 (h) or 2 (h, c)
//   // xp [T, B, C] already projected (bias included); lengths may be null (all T). With a
//   // state, Recurrent guarantees state->h (and ->c when state_count() == 2) are [B, H]: the
//   // cell starts from them and leaves each item's final state in them.
//   Tensor<T> run(TensorView<const T> xp, const std::int32_t* lengths, RecurrentState<T>* state) const;
//   Tensor<T> run_train(TensorView<const T> xp, const std::int32_t* lengths, RecurrentState<T>* state);
//   Tensor<T> backward(TensorView<const T> dh);   // dh [T, B, H] -> dxp [T, B, C]; adds to grads
//   template <class F> void for_each_parameter(F&& f, std::string_view suffix);  // "weight_hh"+suffix
//   template <class F> void for_each_buffer(F&& f, std::string_view suffix);
//   void reset_parameters(Rng& rng, index_t input_size);
// Additions to the first sketch of this interface (all that Recurrent needs beyond it):
//   - `value_type`, `Options` and the constructor from Options (Recurrent builds its cells);
//   - optional: `reset_parameters(Rng&, index_t input_size, RecurrentInit)`, preferred over the
//     two-argument form when present (RecurrentInit::ds2 asks for orthogonal W_hh, zero biases);
//   - optional: `const RecurrentState<T>& state_grad() const`, dL/d(initial state) of the last
//     backward; Recurrent::initial_state_grad() needs it.
//   - optional: `index_t cell_state_size() const`, the width of c when it differs from h
//     (ResidualLSTMCell: d_cell vs d_out); streaming states are checked against it.
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
#include <asrkit/core/rng.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/detail/recurrent_kernels.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>
#include <asrkit/ops/reduce.hpp>

namespace asrkit {

/// The recurrent state of a batch: h [B, H] and, for LSTM-like cells, c [B, H]. An empty tensor
/// means zeros (the start of a stream).
template <class T>
struct RecurrentState {
  Tensor<T> h, c;
};

/// How the two directions of a bidirectional layer are combined: concatenated features
/// [T, B, 2H] (PyTorch) or summed [T, B, H] (DS2, SPECS §3.2).
enum class RecurrentMerge { concat, sum };

/// Weight initialisation. torch_default: every weight and bias U(±1/sqrt(H)) (PyTorch's RNN
/// reset_parameters). ds2: Xavier-uniform input weights, orthogonal recurrent weights, zero
/// biases (SPECS §12.2 [D]).
enum class RecurrentInit { torch_default, ds2 };

/// Options of the layer (the cell has its own; see RNNOptions, GRUOptions, LSTMOptions).
struct RecurrentOptions {
  bool bidirectional = false;
  RecurrentMerge merge = RecurrentMerge::concat;
  /// DS2 (SPECS §3.2): one input weight W for both directions, projected (and normalised) once.
  bool share_input_weights = false;
  /// b_ih (and, through the convenience layers, the cells' b_hh). Ignored for b_ih when
  /// input_batch_norm is set: BN's β takes its role (SPECS §3.3).
  bool bias = true;
  /// DS2's BN-RNN (SPECS §3.3): BN(W x) + U h_{t−1}, sequence-wise statistics over valid frames.
  bool input_batch_norm = false;
  BatchNormOptions batch_norm = {};
  RecurrentInit init = RecurrentInit::torch_default;
};

namespace detail {
namespace rnn {

// Storage of one unrolled pass: state slots h, c [slots, B, H] (T + 1 in training: slot t holds
// the state before step t; 2 ping-pong slots in inference) and the cell's per-step cache
// [T or 1, B, K].
template <class T>
struct Unrolled {
  Tensor<T> h, c, cache;
};

/// W_hh packed once per pass for the per-step products (ops::gemm_packed streams it once per
/// step instead of repacking it): forward h W^T, backward dg W. A cell that splits W_hh into
/// blocks (GRU with the reset before U_h) uses both.
template <class T>
struct PackedWeights {
  ops::PackedMatrix<T> first, second;
};

/// Reallocates (zero-filled) only when the shape changes.
template <class T>
void ensure_shape(Tensor<T>& t, const Shape& s) {
  if (t.shape() != s) t = Tensor<T>(s);
}

/// One forward step of a cell: rows of the batch at time t.
template <class T>
struct StepIO {
  const T* xp;                  // [B, C]
  const T* h_prev;              // [B, H]
  T* h;                         // [B, H]
  const T* c_prev;              // [B, H] or null
  T* c;                         // [B, H] or null
  T* cache;                     // [B, K] or null
  const unsigned char* active;  // [B]: t < lengths[b]
  index_t batch;
  const PackedWeights<T>* w;    // W_hh^T (see the cell's pack_forward)
};

/// One backward step: dh is dL/dh_t (output + recurrent); the cell writes dxp (zero on entry)
/// and dh_prev for the active rows; dc holds dL/dc_t on entry and dL/dc_{t−1} on return.
template <class T>
struct BackIO {
  const T* dh;
  T* dc;
  T* dh_prev;
  T* dxp;
  const T* h_prev;
  const T* c_prev;
  const T* c;
  const T* cache;
  const unsigned char* active;
  index_t batch;
  index_t t;
  const PackedWeights<T>* w;  // W_hh (see the cell's pack_backward)
};

inline void check_activation(RecurrentActivation a, double clip, const char* who) {
  if (a == RecurrentActivation::clipped_relu && (!(clip > 0) || !std::isfinite(clip)))
    throw ValueError("recurrent.1", str(who, ": clip must be finite and > 0, got ", clip));
}

// Detection of the optional parts of the Cell interface.
template <class C, class = void>
struct has_cell_state_size : std::false_type {};
template <class C>
struct has_cell_state_size<C, std::void_t<decltype(std::declval<const C&>().cell_state_size())>>
    : std::true_type {};
template <class C, class = void>
struct has_init_reset : std::false_type {};
template <class C>
struct has_init_reset<C, std::void_t<decltype(std::declval<C&>().reset_parameters(
                             std::declval<Rng&>(), index_t{}, RecurrentInit{}))>> : std::true_type {};

}  // namespace rnn
}  // namespace detail

/// What RNNCell, GRUCell and LSTMCell share: W_hh [G·H, H] and b_hh [G·H], the time loop with
/// lengths and held states, the state slots, the backward-through-time loop and the one-GEMM
/// dW_hh. `Derived` supplies step_forward / step_backward (the per-step GEMMs and fused passes).
template <class Derived, class T>
class RecurrentCellBase {
  static_assert(std::is_floating_point_v<T>, "recurrent cells: T must be float or double");

 public:
  using value_type = T;

  index_t hidden_size() const noexcept { return hidden_; }
  index_t input_columns() const noexcept { return gates_ * hidden_; }
  index_t state_count() const noexcept { return states_; }
  bool has_bias() const noexcept { return has_bias_; }
  Parameter<T>& weight_hh() noexcept { return weight_hh_; }  ///< [G·H, H]
  Parameter<T>& bias_hh() noexcept { return bias_hh_; }      ///< [G·H]; empty without bias
  const Parameter<T>& weight_hh() const noexcept { return weight_hh_; }
  const Parameter<T>& bias_hh() const noexcept { return bias_hh_; }

  /// Inference over xp [T, B, C]; returns h [T, B, H] (0 on padded frames).
  Tensor<T> run(TensorView<const T> xp, const std::int32_t* lengths, RecurrentState<T>* state) const {
    detail::rnn::Unrolled<T> work;
    return unroll(xp, lengths, state, work, false);
  }

  /// Training: as run, keeping every step's state and cache for backward.
  Tensor<T> run_train(TensorView<const T> xp, const std::int32_t* lengths, RecurrentState<T>* state) {
    auto y = unroll(xp, lengths, state, train_, true);
    steps_ = xp.dim(0);
    batch_ = xp.dim(1);
    if (lengths)
      lengths_.assign(lengths, lengths + batch_);
    else
      lengths_.clear();
    cached_ = true;
    return y;
  }

  /// dh [T, B, H] (padded frames ignored) -> dxp [T, B, C] (0 on padded frames); adds dL/dW_hh
  /// and dL/db_hh; keeps dL/d(initial state) for state_grad().
  Tensor<T> backward(TensorView<const T> dh) {
    if (!cached_)
      throw ValueError("recurrent.5", "recurrent cell backward: no cached forward; call run_train "
                                      "(Recurrent::forward_train) first");
    const index_t hid = hidden_, batch = batch_, steps = steps_;
    if (dh.shape() != Shape{steps, batch, hid})
      throw ShapeError("recurrent.6", detail::str("recurrent cell backward: argument dh: expected "
                                                  "shape ", Shape{steps, batch, hid}.str(),
                                                  ", got ", dh.shape().str()));
    const index_t cols = input_columns();
    Tensor<T> dxp(Shape{steps, batch, cols});  // zero: padded rows stay 0
    self().begin_backward();
    Tensor<T> carry(Shape{batch, hid}), prev(Shape{batch, hid});
    Tensor<T> carry_c = states_ == 2 ? Tensor<T>(Shape{batch, hid}) : Tensor<T>();
    std::vector<unsigned char> active(static_cast<std::size_t>(batch));
    const std::int32_t* lens = lengths_.empty() ? nullptr : lengths_.data();
    detail::rnn::PackedWeights<T> packed;
    self().pack_backward(packed);
    for (index_t t = steps - 1; t >= 0; --t) {
      fill_active(active, t, lens);
      T* g = carry.data();
      for (index_t b = 0; b < batch; ++b)  // dL/dh_t = output gradient + recurrent carry
        if (active[b]) {
          const T* d = dh.data() + (t * batch + b) * hid;
          for (index_t j = 0; j < hid; ++j) g[b * hid + j] += d[j];
        }
      detail::rnn::BackIO<T> io{carry.data(), states_ == 2 ? carry_c.data() : nullptr,
                                prev.data(), dxp.data() + t * batch * cols,
                                state_slot(train_.h, t), states_ == 2 ? state_slot(train_.c, t) : nullptr,
                                states_ == 2 ? state_slot(train_.c, t + 1) : nullptr,
                                cache_slot(train_.cache, t), active.data(), batch, t, &packed};
      self().step_backward(io);
      for (index_t b = 0; b < batch; ++b)  // held state: its gradient passes through unchanged
        if (!active[b]) std::copy(g + b * hid, g + (b + 1) * hid, prev.data() + b * hid);
      std::swap(carry, prev);
    }
    state_grad_.h = std::move(carry);
    state_grad_.c = std::move(carry_c);
    self().finish_backward(dxp);
    return dxp;
  }

  /// dL/d(initial h, c) of the last backward (zeros-state runs included).
  const RecurrentState<T>& state_grad() const noexcept { return state_grad_; }

  void clear_cache() {
    train_ = detail::rnn::Unrolled<T>();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view suffix = {}) {
    f(std::string("weight_hh").append(suffix), weight_hh_);
    if (has_bias_) f(std::string("bias_hh").append(suffix), bias_hh_);
  }
  template <class F>
  void for_each_buffer(F&&, std::string_view = {}) {}

  /// torch_default: W_hh, b_hh ~ U(±1/sqrt(H)); ds2: orthogonal W_hh, b_hh = 0.
  void reset_parameters(Rng& rng, index_t /*input_size*/, RecurrentInit scheme = RecurrentInit::torch_default) {
    if (scheme == RecurrentInit::ds2) {
      init::orthogonal(weight_hh_, rng);
      if (has_bias_) init::zeros(bias_hh_);
    } else {
      const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_));
      init::uniform(weight_hh_, rng, -bound, bound);
      if (has_bias_) init::uniform(bias_hh_, rng, -bound, bound);
    }
  }

 protected:
  RecurrentCellBase(index_t hidden, index_t gates, index_t states, bool bias, const char* who)
      : hidden_(hidden), gates_(gates), states_(states), has_bias_(bias) {
    if (hidden < 1)
      throw ValueError("recurrent.1", detail::str(who, ": hidden_size must be >= 1, got ", hidden));
    weight_hh_ = Parameter<T>(Shape{gates * hidden, hidden});
    if (bias) bias_hh_ = Parameter<T>(Shape{gates * hidden});
  }

  const T* bias_ptr() const { return has_bias_ ? bias_hh_.value.data() : nullptr; }
  const T* w() const { return weight_hh_.value.data(); }

  // Hooks with defaults (a cell overrides what it needs).
  index_t cache_width() const { return 0; }
  void pack_forward(detail::rnn::PackedWeights<T>& p) const { p.first.pack(ops::Trans::yes, weight_hh_.value.view()); }
  void pack_backward(detail::rnn::PackedWeights<T>& p) const { p.first.pack(ops::Trans::no, weight_hh_.value.view()); }
  void begin_backward() {}
  /// dW_hh += dgates^T h_prev and db_hh += column sums of dgates, dgates = dxp (RNN, LSTM).
  void finish_backward(const Tensor<T>& dxp) { add_hh_grads(dxp.data(), input_columns(), 0, input_columns(), nullptr, 0); }

  /// dW_hh[row0 : row0 + rows] += dg^T hp over all T·B frames (one GEMM), where dg [T·B, rows]
  /// has leading dimension ldg and hp is h_prev of every step (null: the cached states) or another
  /// cached operand with leading dimension ldh; db_hh gets the column sums of dg when
  /// row0 == 0 and rows == G·H.
  void add_hh_grads(const T* dg, index_t ldg, index_t row0, index_t rows, const T* hp, index_t ldh) {
    const index_t frames = steps_ * batch_, hid = hidden_;
    if (hp == nullptr) {
      hp = train_.h.data();
      ldh = hid;
    }
    ops::gemm(ops::Trans::yes, ops::Trans::no, rows, hid, frames, T(1), dg, ldg, hp, ldh, T(1),
              weight_hh_.grad.data() + row0 * hid, hid);
    if (has_bias_ && row0 == 0 && rows == input_columns() && ldg == rows)
      ops::column_sums(TensorView<const T>(dg, Shape{frames, rows}), bias_hh_.grad.view(), true);
  }

  index_t steps_ = 0, batch_ = 0;
  detail::rnn::Unrolled<T> train_;

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  Derived& self() { return static_cast<Derived&>(*this); }

  static void fill_active(std::vector<unsigned char>& active, index_t t, const std::int32_t* lens) {
    for (std::size_t b = 0; b < active.size(); ++b) active[b] = !lens || t < lens[b] ? 1 : 0;
  }
  T* state_slot(const Tensor<T>& s, index_t slot) const {
    return const_cast<T*>(s.data()) + slot * s.dim(1) * s.dim(2);
  }
  T* cache_slot(const Tensor<T>& s, index_t slot) const {
    return s.numel() == 0 ? nullptr : const_cast<T*>(s.data()) + slot * s.dim(1) * s.dim(2);
  }

  // The forward time loop shared by run and run_train (train: a state slot per step).
  Tensor<T> unroll(TensorView<const T> xp, const std::int32_t* lens, RecurrentState<T>* state,
                   detail::rnn::Unrolled<T>& work, bool train) const {
    const index_t steps = xp.dim(0), batch = xp.dim(1), hid = hidden_, cols = input_columns();
    const index_t k = self().cache_width();
    const index_t slots = train ? steps + 1 : 2;
    detail::rnn::ensure_shape(work.h, Shape{slots, batch, hid});
    if (states_ == 2) detail::rnn::ensure_shape(work.c, Shape{slots, batch, hid});
    if (k > 0) detail::rnn::ensure_shape(work.cache, Shape{train ? std::max<index_t>(steps, 1) : 1, batch, k});
    auto start = [&](const Tensor<T>& from, Tensor<T>& slots_of) {
      if (state)
        std::copy(from.data(), from.data() + batch * hid, slots_of.data());
      else
        std::fill(slots_of.data(), slots_of.data() + batch * hid, T(0));
    };
    start(state ? state->h : work.h, work.h);
    if (states_ == 2) start(state ? state->c : work.c, work.c);
    Tensor<T> y(Shape{steps, batch, hid}, uninitialized);
    std::vector<unsigned char> active(static_cast<std::size_t>(batch));
    detail::rnn::PackedWeights<T> packed;
    self().pack_forward(packed);
    for (index_t t = 0; t < steps; ++t) {
      fill_active(active, t, lens);
      const index_t s0 = train ? t : (t & 1), s1 = train ? t + 1 : ((t + 1) & 1);
      T* cache = cache_slot(work.cache, train ? t : 0);
      T* h = state_slot(work.h, s1);
      const T* hp = state_slot(work.h, s0);
      T* c = states_ == 2 ? state_slot(work.c, s1) : nullptr;
      const T* cp = states_ == 2 ? state_slot(work.c, s0) : nullptr;
      for (index_t b = 0; b < batch; ++b)  // padded rows: a defined (zero) cache for backward's GEMMs
        if (!active[b] && cache) std::fill(cache + b * k, cache + (b + 1) * k, T(0));
      self().step_forward(detail::rnn::StepIO<T>{xp.data() + t * batch * cols, hp, h, cp, c, cache,
                                                 active.data(), batch, &packed});
      T* out = y.data() + t * batch * hid;
      for (index_t b = 0; b < batch; ++b) {
        if (active[b]) {
          std::copy(h + b * hid, h + (b + 1) * hid, out + b * hid);
          continue;
        }
        std::copy(hp + b * hid, hp + (b + 1) * hid, h + b * hid);  // state held
        if (c) std::copy(cp + b * hid, cp + (b + 1) * hid, c + b * hid);
        std::fill(out + b * hid, out + (b + 1) * hid, T(0));
      }
    }
    if (state) {
      const index_t last = train ? steps : (steps & 1);
      std::copy(state_slot(work.h, last), state_slot(work.h, last) + batch * hid, state->h.data());
      if (states_ == 2)
        std::copy(state_slot(work.c, last), state_slot(work.c, last) + batch * hid, state->c.data());
    }
    return y;
  }

  index_t hidden_, gates_, states_;
  bool has_bias_;
  Parameter<T> weight_hh_, bias_hh_;
  std::vector<std::int32_t> lengths_;
  RecurrentState<T> state_grad_;
  bool cached_ = false;
};

// ---- simple RNN ------------------------------------------------------------------------------

/// Options of RNNCell: h_t = f(xp_t + b_hh + W_hh h_{t−1}), f = tanh, clipped ReLU (DS2, clip 20)
/// or ReLU (SPECS §3.2).
struct RNNCellOptions {
  index_t hidden_size = 0;
  RecurrentActivation activation = RecurrentActivation::tanh;
  double clip = 20.0;
  bool bias = true;
};

template <class T>
class RNNCell : public RecurrentCellBase<RNNCell<T>, T> {
  using Base = RecurrentCellBase<RNNCell<T>, T>;
  friend Base;

 public:
  using Options = RNNCellOptions;
  explicit RNNCell(const Options& o) : Base(o.hidden_size, 1, 1, o.bias, "RNNCell"), o_(o) {
    detail::rnn::check_activation(o.activation, o.clip, "RNNCell");
  }
  const Options& options() const noexcept { return o_; }

 private:
  void step_forward(const detail::rnn::StepIO<T>& s) const {
    const index_t n = this->hidden_size();
    ops::gemm_packed(s.batch, T(1), s.h_prev, n, s.w->first, T(0), s.h, n);
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::rnn_forward_row(s.h + b * n, s.xp + b * n, this->bias_ptr(), n, o_.activation, clip());
  }
  void step_backward(const detail::rnn::BackIO<T>& s) {
    const index_t n = this->hidden_size();
    const T* h = this->train_.h.data() + (s.t + 1) * s.batch * n;
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::rnn_backward_row(s.dxp + b * n, s.dh + b * n, h + b * n, n, o_.activation, clip());
    ops::gemm_packed(s.batch, T(1), s.dxp, n, s.w->first, T(0), s.dh_prev, n);
  }
  T clip() const { return static_cast<T>(o_.clip); }

  Options o_;
};

// ---- GRU ---------------------------------------------------------------------------------------

/// Where the reset gate acts: after U_h, r ⊙ (U_h h + b_hn) (PyTorch, cuDNN, DS2: all h_{t−1}
/// products in one GEMM), or before it, U_h (r ⊙ h) (Cho et al. 2014).
enum class GRUReset { after, before };
/// h_t = (1 − z) ⊙ n + z ⊙ h_{t−1} (torch) or (1 − z) ⊙ h_{t−1} + z ⊙ h̃ (DS2, SPECS §3.2).
enum class GRUUpdate { torch, ds2 };

/// Options of GRUCell (gate order r, z, n as in torch.nn.GRU).
struct GRUCellOptions {
  index_t hidden_size = 0;
  GRUReset reset = GRUReset::after;
  GRUUpdate update = GRUUpdate::torch;
  RecurrentActivation candidate = RecurrentActivation::tanh;
  double clip = 20.0;
  bool bias = true;
};

template <class T>
class GRUCell : public RecurrentCellBase<GRUCell<T>, T> {
  using Base = RecurrentCellBase<GRUCell<T>, T>;
  friend Base;

 public:
  using Options = GRUCellOptions;
  explicit GRUCell(const Options& o) : Base(o.hidden_size, 3, 1, o.bias, "GRUCell"), o_(o) {
    detail::rnn::check_activation(o.candidate, o.clip, "GRUCell");
  }
  const Options& options() const noexcept { return o_; }

 private:
  // cache row [4H]: r, z, n and (reset after) U_n h + b_hn or (reset before) r ⊙ h_prev.
  index_t cache_width() const { return 4 * this->hidden_size(); }
  detail::rnn::GruShape shape() const {
    return {this->hidden_size(), o_.update == GRUUpdate::torch, o_.candidate};
  }
  T clip() const { return static_cast<T>(o_.clip); }
  bool after() const { return o_.reset == GRUReset::after; }

  // Reset before U_h: U_rz and U_n are separate products (U_n multiplies r ⊙ h_prev).
  void pack_forward(detail::rnn::PackedWeights<T>& p) const {
    if (after()) return Base::pack_forward(p);
    const index_t n = this->hidden_size();
    p.first.pack(ops::Trans::yes, this->w(), n, 2 * n, n);           // U_rz^T
    p.second.pack(ops::Trans::yes, this->w() + 2 * n * n, n, n, n);  // U_n^T
  }
  void pack_backward(detail::rnn::PackedWeights<T>& p) const {
    if (after()) return Base::pack_backward(p);
    const index_t n = this->hidden_size();
    p.first.pack(ops::Trans::no, this->w(), 2 * n, n, n);           // U_rz
    p.second.pack(ops::Trans::no, this->w() + 2 * n * n, n, n, n);  // U_n
  }

  void step_forward(const detail::rnn::StepIO<T>& s) const {
    const index_t n = this->hidden_size(), k = 4 * n;
    const auto sh = shape();
    const T* bias = this->bias_ptr();
    if (after()) {  // one GEMM: [B, 3H] = h_prev W_hh^T
      ops::gemm_packed(s.batch, T(1), s.h_prev, n, s.w->first, T(0), s.cache, k);
      for (index_t b = 0; b < s.batch; ++b)
        if (s.active[b])
          detail::rnn::gru_after_forward_row(s.cache + b * k, s.xp + b * 3 * n, bias, s.h_prev + b * n,
                                             s.h + b * n, sh, clip());
      return;
    }
    // Reset before: r, z first, then U_n (r ⊙ h_prev) as a second GEMM.
    ops::gemm_packed(s.batch, T(1), s.h_prev, n, s.w->first, T(0), s.cache, k);
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::gru_before_gates_row(s.cache + b * k, s.xp + b * 3 * n, bias, s.h_prev + b * n, n);
    ops::gemm_packed(s.batch, T(1), s.cache + 3 * n, k, s.w->second, T(0), s.cache + 2 * n, k);
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::gru_before_forward_row(s.cache + b * k, s.xp + b * 3 * n, bias, s.h_prev + b * n,
                                            s.h + b * n, sh, clip());
  }

  void begin_backward() {
    const Shape dhh{this->steps_, this->batch_, 3 * this->hidden_size()};
    if (after()) dhh_ = Tensor<T>(dhh);  // zero: padded rows stay 0
    if (!after()) detail::rnn::ensure_shape(drh_, Shape{this->batch_, this->hidden_size()});
  }

  void step_backward(const detail::rnn::BackIO<T>& s) {
    const index_t n = this->hidden_size(), k = 4 * n, g = 3 * n;
    const auto sh = shape();
    if (after()) {
      T* dhh = dhh_.data() + s.t * s.batch * g;
      for (index_t b = 0; b < s.batch; ++b)
        if (s.active[b])
          detail::rnn::gru_after_backward_row(s.dxp + b * g, dhh + b * g, s.dh_prev + b * n, s.dh + b * n,
                                              s.cache + b * k, s.h_prev + b * n, sh, clip());
      // dh_prev += dhh W_hh
      ops::gemm_packed(s.batch, T(1), dhh, g, s.w->first, T(1), s.dh_prev, n);
      return;
    }
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::gru_update_backward_row(s.dxp + b * g, s.dh_prev + b * n, s.dh + b * n, s.cache + b * k,
                                             s.h_prev + b * n, sh, clip());
    // d(r ⊙ h_prev) = dn U_n
    ops::gemm_packed(s.batch, T(1), s.dxp + 2 * n, g, s.w->second, T(0), drh_.data(), n);
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::gru_before_reset_backward_row(s.dxp + b * g, s.dh_prev + b * n, drh_.data() + b * n,
                                                   s.cache + b * k, s.h_prev + b * n, n);
    // dh_prev += d(r, z) U_{rz}
    ops::gemm_packed(s.batch, T(1), s.dxp, g, s.w->first, T(1), s.dh_prev, n);
  }

  void finish_backward(const Tensor<T>& dxp) {
    const index_t n = this->hidden_size(), g = 3 * n;
    if (after()) {  // the gradient of h_prev W_hh^T + b_hh is dhh, not dxp
      this->add_hh_grads(dhh_.data(), g, 0, g, nullptr, 0);
      dhh_ = Tensor<T>();
      return;
    }
    // Reset before: dxp is the gradient of the h-side pre-activations; U_n multiplies r ⊙ h_prev.
    this->add_hh_grads(dxp.data(), g, 0, 2 * n, nullptr, 0);
    this->add_hh_grads(dxp.data() + 2 * n, g, 2 * n, n, this->train_.cache.data() + 3 * n, 4 * n);
    if (this->has_bias())
      ops::column_sums(TensorView<const T>(dxp.data(), Shape{this->steps_ * this->batch_, g}),
                       this->bias_hh().grad.view(), true);
  }

  Options o_;
  Tensor<T> dhh_, drh_;
};

// ---- LSTM --------------------------------------------------------------------------------------

/// Options of LSTMCell (gate order i, f, g, o as in torch.nn.LSTM). `forget_bias` is added to the
/// forget-gate block of b_hh after initialisation (1 is the common choice; BN-LSTM uses 1).
struct LSTMCellOptions {
  index_t hidden_size = 0;
  double forget_bias = 0.0;
  bool bias = true;
};

template <class T>
class LSTMCell : public RecurrentCellBase<LSTMCell<T>, T> {
  using Base = RecurrentCellBase<LSTMCell<T>, T>;
  friend Base;

 public:
  using Options = LSTMCellOptions;
  explicit LSTMCell(const Options& o) : Base(o.hidden_size, 4, 2, o.bias, "LSTMCell"), o_(o) {
    if (!std::isfinite(o.forget_bias) || (o.forget_bias != 0 && !o.bias))
      throw ValueError("recurrent.1", detail::str("LSTMCell: forget_bias must be finite and needs "
                                                  "bias = true, got ", o.forget_bias,
                                                  o.bias ? "" : " with bias = false"));
  }
  const Options& options() const noexcept { return o_; }

  void reset_parameters(Rng& rng, index_t input_size, RecurrentInit scheme = RecurrentInit::torch_default) {
    Base::reset_parameters(rng, input_size, scheme);
    if (!this->has_bias()) return;
    const index_t n = this->hidden_size();
    T* f = this->bias_hh().value.data() + n;
    for (index_t j = 0; j < n; ++j) f[j] += static_cast<T>(o_.forget_bias);
  }

 private:
  index_t cache_width() const { return 4 * this->hidden_size(); }  // activated i, f, g, o

  void step_forward(const detail::rnn::StepIO<T>& s) const {
    const index_t n = this->hidden_size(), k = 4 * n;
    ops::gemm_packed(s.batch, T(1), s.h_prev, n, s.w->first, T(0), s.cache, k);
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::lstm_forward_row(s.cache + b * k, s.xp + b * k, this->bias_ptr(), s.c_prev + b * n,
                                      s.c + b * n, s.h + b * n, n);
  }
  void step_backward(const detail::rnn::BackIO<T>& s) {
    const index_t n = this->hidden_size(), k = 4 * n;
    for (index_t b = 0; b < s.batch; ++b)
      if (s.active[b])
        detail::rnn::lstm_backward_row(s.dxp + b * k, s.dc + b * n, s.dh + b * n, s.cache + b * k,
                                       s.c_prev + b * n, s.c + b * n, n);
    ops::gemm_packed(s.batch, T(1), s.dxp, k, s.w->first, T(0), s.dh_prev, n);
  }

  Options o_;
};

// ---- the layer -------------------------------------------------------------------------------

/// A recurrent layer over time-major x [T, B, F] with optional lengths [B]: the input projection,
/// one or two directions of `Cell`, and the merge. Output [T, B, H] (unidirectional or merge
/// sum) or [T, B, 2H] (concat: forward features first).
template <class Cell>
class Recurrent {
 public:
  using T = typename Cell::value_type;
  using CellOptions = typename Cell::Options;
  static_assert(std::is_floating_point_v<T>, "Recurrent: T must be float or double");

  Recurrent(index_t input_size, const CellOptions& cell, const RecurrentOptions& options = {},
            Rng& rng = init::global_rng())
      : options_(options), input_(input_size) {
    if (input_size < 1)
      throw ValueError("recurrent.1", detail::str(name(), ": input_size must be >= 1, got ", input_size));
    for (index_t d = 0; d < directions(); ++d) cells_.emplace_back(cell);
    const index_t cols = cells_[0].input_columns();
    for (index_t p = 0; p < projections(); ++p) {
      w_ih_.emplace_back(Shape{cols, input_size});
      b_ih_.emplace_back(has_input_bias() ? Shape{cols} : Shape{0});
      if (options_.input_batch_norm) norm_.emplace_back(cols, options_.batch_norm);
    }
    reset_parameters(rng);
  }

  /// Redraws every weight and bias (RecurrentOptions::init); BN starts at γ = 1, β = 0.
  void reset_parameters(Rng& rng) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size()));
    for (index_t d = 0; d < directions(); ++d) {
      if (d < projections()) {
        auto& w = w_ih_[static_cast<std::size_t>(d)];
        auto& b = b_ih_[static_cast<std::size_t>(d)];
        if (options_.init == RecurrentInit::ds2) {
          init::xavier_uniform(w, rng);
          init::zeros(b);
        } else {
          init::uniform(w, rng, -bound, bound);
          if (b.value.numel() > 0) init::uniform(b, rng, -bound, bound);
        }
      }
      auto& c = cells_[static_cast<std::size_t>(d)];
      if constexpr (detail::rnn::has_init_reset<Cell>::value)
        c.reset_parameters(rng, input_, options_.init);
      else
        c.reset_parameters(rng, input_);
    }
  }

  /// Inference. x [T, B, F], lengths [B] (each in [0, T]) or an empty view (all T).
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) const {
    return run<false>(*this, x, lengths, nullptr);
  }
  /// Streaming inference (unidirectional only): starts from `state` (empty tensors: zeros) and
  /// leaves each item's state after its last valid frame in it, so chunk after chunk equals one
  /// forward over the whole sequence.
  Tensor<T> forward(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                    RecurrentState<T>& state) const {
    return run<false>(*this, x, lengths, &state);
  }

  /// Training: as forward, caching what backward needs.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    return run<true>(*this, x, lengths, nullptr);
  }
  /// Training from an initial state (unidirectional only); backward then also gives
  /// initial_state_grad(). The final state is left in `state`.
  Tensor<T> forward_train(TensorView<const T> x, TensorView<const std::int32_t> lengths,
                          RecurrentState<T>& state) {
    return run<true>(*this, x, lengths, &state);
  }

  /// dL/dx [T, B, F] for dy (the shape of the last forward_train output; padded frames are
  /// ignored); adds to every parameter gradient.
  Tensor<T> backward(TensorView<const T> dy) {
    if (!cached_)
      throw ValueError("recurrent.5", detail::str(name(), "::backward: no cached forward; call "
                                                  "forward_train first"));
    const index_t steps = x_.dim(0), batch = x_.dim(1), hid = hidden_size();
    const Shape want{steps, batch, output_size()};
    if (dy.shape() != want)
      throw ShapeError("recurrent.6", detail::str(name(), "::backward: argument dy: expected shape ",
                                                  want.str(), " (the forward output), got ",
                                                  dy.shape().str()));
    const std::int32_t* lens = lengths_.empty() ? nullptr : lengths_.data();
    const bool concat = directions() == 2 && options_.merge == RecurrentMerge::concat;
    std::vector<Tensor<T>> dxp(static_cast<std::size_t>(directions()));
    for_each_direction([&](index_t d) {
      // This direction's dh [T, B, H]: its half of the features (concat) or dy itself (sum).
      Tensor<T> dh;
      if (concat) {
        dh = Tensor<T>(Shape{steps, batch, hid}, uninitialized);
        for (index_t r = 0; r < steps * batch; ++r)
          std::copy(dy.data() + (r * 2 + d) * hid, dy.data() + (r * 2 + d + 1) * hid, dh.data() + r * hid);
      } else if (d == 1) {
        dh = Tensor<T>(dy);
      }
      auto& g = dxp[static_cast<std::size_t>(d)];
      if (d == 1) {
        detail::rnn::reverse_padded_inplace(dh.view(), lens);
        g = cells_[1].backward(dh.view());
        detail::rnn::reverse_padded_inplace(g.view(), lens);
      } else {
        g = cells_[0].backward(concat ? TensorView<const T>(dh.view()) : dy);
      }
    });
    if (projections() == 1 && directions() == 2) {  // shared W: both directions' gradients meet
      T* a = dxp[0].data();
      const T* b = dxp[1].data();
      for (index_t i = 0, n = dxp[0].numel(); i < n; ++i) a[i] += b[i];
    }
    Tensor<T> dx(x_.shape());
    for (index_t p = 0; p < projections(); ++p)
      project_backward(p, dxp[static_cast<std::size_t>(p)], dx, p > 0);
    return dx;
  }

  /// dL/d(initial state) of the last backward after forward_train(x, lengths, state).
  const RecurrentState<T>& initial_state_grad() const {
    if (!cached_ || !stateful_)
      throw ValueError("recurrent.5", detail::str(name(), "::initial_state_grad: needs "
                                                  "forward_train(x, lengths, state) then backward"));
    return cells_[0].state_grad();
  }

  /// Drops the cached input and the cells' caches.
  void clear_cache() {
    x_ = Tensor<T>();
    for (auto& c : cells_) c.clear_cache();
    cached_ = false;
  }

  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for (index_t d = 0; d < directions(); ++d) {
      const std::string sfx = suffix(d);
      if (d < projections()) {
        f(join_name(prefix, "weight_ih" + sfx), w_ih_[static_cast<std::size_t>(d)]);
        if (has_input_bias()) f(join_name(prefix, "bias_ih" + sfx), b_ih_[static_cast<std::size_t>(d)]);
      }
      cells_[static_cast<std::size_t>(d)].for_each_parameter(
          [&](const std::string& n, auto& p) { f(join_name(prefix, n), p); }, sfx);
      if (d < projections() && options_.input_batch_norm)
        visit_parameters(norm_[static_cast<std::size_t>(d)], f, join_name(prefix, "norm_ih" + sfx));
    }
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    for (index_t d = 0; d < directions(); ++d) {
      const std::string sfx = suffix(d);
      cells_[static_cast<std::size_t>(d)].for_each_buffer(
          [&](const std::string& n, auto& b) { f(join_name(prefix, n), b); }, sfx);
      if (d < projections() && options_.input_batch_norm)
        visit_buffers(norm_[static_cast<std::size_t>(d)], f, join_name(prefix, "norm_ih" + sfx));
    }
  }

  index_t input_size() const noexcept { return input_; }
  index_t hidden_size() const noexcept { return cells_[0].hidden_size(); }
  index_t num_directions() const noexcept { return directions(); }
  /// Features of the output: 2H for bidirectional concat, else H.
  index_t output_size() const noexcept {
    return directions() == 2 && options_.merge == RecurrentMerge::concat ? 2 * hidden_size() : hidden_size();
  }
  const RecurrentOptions& options() const noexcept { return options_; }
  /// Direction d's cell (0: forward in time, 1: reverse).
  Cell& cell(index_t d = 0) { return cells_.at(static_cast<std::size_t>(d)); }
  const Cell& cell(index_t d = 0) const { return cells_.at(static_cast<std::size_t>(d)); }
  /// Input projection p's weight [C, F] and bias [C] (p = 1: the reverse direction's, unless
  /// the weights are shared); the bias is empty without bias or with input_batch_norm.
  Parameter<T>& weight_ih(index_t p = 0) { return w_ih_.at(static_cast<std::size_t>(p)); }
  Parameter<T>& bias_ih(index_t p = 0) { return b_ih_.at(static_cast<std::size_t>(p)); }
  /// Input projection p's sequence-wise BN (input_batch_norm only).
  SequenceBatchNorm<T>& input_norm(index_t p = 0) { return norm_.at(static_cast<std::size_t>(p)); }
  /// Number of input projections: 2 for bidirectional with separate input weights, else 1.
  index_t num_projections() const noexcept { return projections(); }
  /// Deletes the input BN(s) and gives every projection a b_ih (zeros where it had none, so
  /// outputs change only by the BN itself; state_dict gains "bias_ih_l0[_reverse]" and loses
  /// "norm_ih_*"; options().bias becomes true: it describes b_ih from here on). For
  /// transform::fold_batch_norms, which then writes the folded W_ih and b_ih.
  void remove_input_batch_norm() {
    if (!options_.input_batch_norm) return;
    for (auto& b : b_ih_)
      if (b.value.numel() == 0) b = Parameter<T>(Shape{cells_[0].input_columns()});
    norm_.clear();
    options_.input_batch_norm = false;
    options_.bias = true;
  }

 private:
  index_t directions() const noexcept { return options_.bidirectional ? 2 : 1; }
  index_t projections() const noexcept {
    return options_.bidirectional && !options_.share_input_weights ? 2 : 1;
  }
  bool has_input_bias() const noexcept { return options_.bias && !options_.input_batch_norm; }
  static std::string suffix(index_t d) { return d == 0 ? "_l0" : "_l0_reverse"; }
  std::string name() const {
    return detail::str("Recurrent(", input_, " -> ", cells_.empty() ? 0 : hidden_size(),
                       directions() == 2 ? ", bidirectional)" : ")");
  }

  /// Checks x and lengths; returns the lengths pointer (null: all T).
  const std::int32_t* check_input(TensorView<const T> x, TensorView<const std::int32_t> lengths) const {
    if (x.rank() != 3 || x.dim(2) != input_)
      throw ShapeError("recurrent.2", detail::str(name(), ": argument x: expected shape [T, B, ", input_,
                                                  "], got ", x.shape().str()));
    if (lengths.data() == nullptr) return nullptr;
    detail::checked_lengths(lengths, x.dim(0), x.dim(1), name(), {"recurrent.3", "recurrent.4"});
    return lengths.data();
  }

  /// Validates a streaming / initial state and allocates zeros for its empty tensors.
  void prepare_state(RecurrentState<T>& s, index_t batch) const {
    if (directions() == 2)
      throw ValueError("recurrent.7", detail::str(name(), ": a recurrent state (streaming) needs a "
                                                  "unidirectional layer; the reverse direction needs the "
                                                  "whole sequence"));
    auto one = [&](Tensor<T>& t, const char* what) {
      // c may be wider than h (residual LSTM: d_cell vs d_out), see Cell::cell_state_size().
      Shape want{batch, hidden_size()};
      if constexpr (detail::rnn::has_cell_state_size<Cell>::value)
        if (&t == &s.c) want = Shape{batch, cells_[0].cell_state_size()};
      if (t.numel() == 0) {
        t = Tensor<T>(want);
      } else if (t.shape() != want) {
        throw ShapeError("recurrent.8", detail::str(name(), ": argument state.", what, ": expected shape ",
                                                    want.str(), " or empty, got ", t.shape().str()));
      }
    };
    one(s.h, "h");
    if (cells_[0].state_count() == 2) one(s.c, "c");
  }

  /// xp [T, B, C] = x W_p^T + b_p, then (input_batch_norm) BN over the valid frames.
  template <bool Train, class Self>
  static Tensor<T> project(Self& self, TensorView<const T> x, TensorView<const std::int32_t> lengths, index_t p) {
    const auto& w = self.w_ih_[static_cast<std::size_t>(p)];
    const auto& bias = self.b_ih_[static_cast<std::size_t>(p)];
    const index_t frames = x.dim(0) * x.dim(1), cols = w.value.dim(0);
    Tensor<T> xp(Shape{x.dim(0), x.dim(1), cols}, uninitialized);
    const bool has_bias = bias.value.numel() > 0;
    if (has_bias)
      for (index_t r = 0; r < frames; ++r) std::copy(bias.value.data(), bias.value.data() + cols, xp.data() + r * cols);
    ops::gemm(ops::Trans::no, ops::Trans::yes, frames, cols, self.input_, T(1), x.data(), self.input_,
              w.value.data(), self.input_, has_bias ? T(1) : T(0), xp.data(), cols);
    if (!self.options_.input_batch_norm) return xp;
    auto& bn = self.norm_[static_cast<std::size_t>(p)];
    if constexpr (Train)
      return lengths.data() ? bn.forward_train(std::move(xp), lengths)
                            : bn.forward_train(std::move(xp));
    else
      return lengths.data() ? bn.forward(xp.view(), lengths) : bn.forward(xp.view());
  }

  /// dW_p += dxp^T x, db_p += column sums, dx (+)= dxp W_p (after BN's backward).
  void project_backward(index_t p, Tensor<T>& dxp, Tensor<T>& dx, bool accumulate) {
    auto& w = w_ih_[static_cast<std::size_t>(p)];
    auto& bias = b_ih_[static_cast<std::size_t>(p)];
    if (options_.input_batch_norm) dxp = norm_[static_cast<std::size_t>(p)].backward(dxp.view());
    const index_t frames = x_.dim(0) * x_.dim(1), cols = w.value.dim(0);
    ops::gemm(ops::Trans::yes, ops::Trans::no, cols, input_, frames, T(1), dxp.data(), cols, x_.data(), input_,
              T(1), w.grad.data(), input_);
    if (bias.value.numel() > 0)
      ops::column_sums(TensorView<const T>(dxp.data(), Shape{frames, cols}), bias.grad.view(), true);
    ops::gemm(ops::Trans::no, ops::Trans::no, frames, input_, cols, T(1), dxp.data(), cols, w.value.data(), input_,
              accumulate ? T(1) : T(0), dx.data(), input_);
  }

  /// Runs f(d) for each direction; both at once when there are threads for them (each direction's
  /// per-step GEMMs then run on one thread; results do not depend on it).
  template <class F>
  void for_each_direction(F&& f) const {
    if (directions() == 2 && num_threads() >= 2)
      parallel_for(2, f);
    else
      for (index_t d = 0; d < directions(); ++d) f(d);
  }

  // forward / forward_train: one body, Self = const Recurrent (inference) or Recurrent (training).
  template <bool Train, class Self>
  static Tensor<T> run(Self& self, TensorView<const T> x, TensorView<const std::int32_t> lengths,
                       RecurrentState<T>* state) {
    const std::int32_t* lens = self.check_input(x, lengths);
    const index_t steps = x.dim(0), batch = x.dim(1), hid = self.hidden_size();
    if (state) self.prepare_state(*state, batch);
    if constexpr (Train) {
      self.x_ = Tensor<T>(x);
      if (lens)
        self.lengths_.assign(lens, lens + batch);
      else
        self.lengths_.clear();
      lens = self.lengths_.empty() ? nullptr : self.lengths_.data();
      self.stateful_ = state != nullptr;
      self.cached_ = false;  // set again once everything succeeded
    }
    const index_t dirs = self.directions();
    std::vector<Tensor<T>> xp(static_cast<std::size_t>(dirs));
    for (index_t p = 0; p < self.projections(); ++p)
      xp[static_cast<std::size_t>(p)] = project<Train>(self, x, lengths, p);
    if (dirs == 2) {  // the reverse direction reads its input reversed in time
      if (self.projections() == 1)
        xp[1] = detail::rnn::reverse_padded<T>(xp[0].view(), lens);
      else
        detail::rnn::reverse_padded_inplace(xp[1].view(), lens);
    }
    std::vector<Tensor<T>> h(static_cast<std::size_t>(dirs));
    self.for_each_direction([&](index_t d) {
      auto& cell = self.cells_[static_cast<std::size_t>(d)];
      auto& out = h[static_cast<std::size_t>(d)];
      if constexpr (Train)
        out = cell.run_train(xp[static_cast<std::size_t>(d)].view(), lens, state);
      else
        out = cell.run(xp[static_cast<std::size_t>(d)].view(), lens, state);
      if (d == 1) detail::rnn::reverse_padded_inplace(out.view(), lens);
    });
    if constexpr (Train) self.cached_ = true;
    if (dirs == 1) return std::move(h[0]);
    if (self.options_.merge == RecurrentMerge::sum) {
      T* a = h[0].data();
      const T* b = h[1].data();
      for (index_t i = 0, n = h[0].numel(); i < n; ++i) a[i] += b[i];
      return std::move(h[0]);
    }
    Tensor<T> y(Shape{steps, batch, 2 * hid}, uninitialized);
    for (index_t r = 0; r < steps * batch; ++r) {
      std::copy(h[0].data() + r * hid, h[0].data() + (r + 1) * hid, y.data() + r * 2 * hid);
      std::copy(h[1].data() + r * hid, h[1].data() + (r + 1) * hid, y.data() + (r * 2 + 1) * hid);
    }
    return y;
  }

  RecurrentOptions options_;
  index_t input_;
  std::vector<Cell> cells_;
  std::vector<Parameter<T>> w_ih_, b_ih_;
  std::vector<SequenceBatchNorm<T>> norm_;
  // forward_train cache
  Tensor<T> x_;
  std::vector<std::int32_t> lengths_;
  bool cached_ = false, stateful_ = false;
};

// ---- the layers with their own options ----------------------------------------------------------

/// torch.nn.RNN (num_layers 1) and DS2's simple recurrent layer.
struct RNNOptions : RecurrentOptions {
  RecurrentActivation activation = RecurrentActivation::tanh;
  double clip = 20.0;  ///< clipped_relu's ceiling (SPECS §3.2)
};

/// torch.nn.GRU (defaults) and DS2's GRU (update = ds2, candidate = clipped_relu; SPECS §3.2).
struct GRUOptions : RecurrentOptions {
  GRUReset reset = GRUReset::after;
  GRUUpdate update = GRUUpdate::torch;
  RecurrentActivation candidate = RecurrentActivation::tanh;
  double clip = 20.0;
};

/// torch.nn.LSTM; forget_bias is added to b_hh's forget block after initialisation.
struct LSTMOptions : RecurrentOptions {
  double forget_bias = 0.0;
};

template <class T>
class RNN : public Recurrent<RNNCell<T>> {
 public:
  RNN(index_t input_size, index_t hidden_size, const RNNOptions& o = {}, Rng& rng = init::global_rng())
      : Recurrent<RNNCell<T>>(input_size, RNNCellOptions{hidden_size, o.activation, o.clip, o.bias}, o, rng) {}
};

template <class T>
class GRU : public Recurrent<GRUCell<T>> {
 public:
  GRU(index_t input_size, index_t hidden_size, const GRUOptions& o = {}, Rng& rng = init::global_rng())
      : Recurrent<GRUCell<T>>(input_size,
                              GRUCellOptions{hidden_size, o.reset, o.update, o.candidate, o.clip, o.bias},
                              o, rng) {}
};

template <class T>
class LSTM : public Recurrent<LSTMCell<T>> {
 public:
  LSTM(index_t input_size, index_t hidden_size, const LSTMOptions& o = {}, Rng& rng = init::global_rng())
      : Recurrent<LSTMCell<T>>(input_size, LSTMCellOptions{hidden_size, o.forget_bias, o.bias}, o, rng) {}
};

/// DS2's BN-RNN (SPECS §3.3): h_t = f(BN(W x_t) + U h_{t−1}), no biases (BN's β takes their role),
/// sequence-wise statistics over the valid frames. For the paper's layer also set
/// activation = clipped_relu, bidirectional, merge = sum and share_input_weights (BN then runs
/// once for both directions).
template <class T>
class BatchNormRNN : public RNN<T> {
 public:
  BatchNormRNN(index_t input_size, index_t hidden_size, RNNOptions o = {}, Rng& rng = init::global_rng())
      : RNN<T>(input_size, hidden_size, with_bn(o), rng) {}

 private:
  static RNNOptions with_bn(RNNOptions o) {
    o.input_batch_norm = true;
    o.bias = false;
    return o;
  }
};

}  // namespace asrkit
