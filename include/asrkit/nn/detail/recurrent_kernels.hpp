// asrkit/nn/detail/recurrent_kernels.hpp - the fused per-step element-wise passes of the RNN,
// GRU and LSTM cells (nn/recurrent.hpp) and the padded time reversal of bidirectional layers
// (internal; not part of the API).
//
// Each kernel handles one batch row of one time step, after the step's recurrent GEMM has put
// h_{t-1} W_hh^T into the row: it adds the precomputed input projection (and b_hh), applies the
// gate nonlinearities in place and writes the new state. A row is at most 4H wide, so all passes
// over it run in L1; nothing is allocated. The backward kernels are their exact adjoints and
// read only what the forward left in the per-step cache (activations from outputs, never inputs).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

#include <asrkit/core/config.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

/// Nonlinearity of a simple RNN's state or a GRU's candidate (SPECS §3.2). `relu` is unclipped
/// (torch.nn.RNN(nonlinearity="relu")); `clipped_relu` is DS2's min(max(x, 0), clip).
enum class RecurrentActivation { tanh, clipped_relu, relu };

namespace detail {
namespace rnn {

template <class T>
using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
template <class T>
using Row = Eigen::Map<Arr<T>>;
template <class T>
using ConstRow = Eigen::Map<const Arr<T>>;

// ---- nonlinearities (derivatives from the output y, so inputs need not be cached) -----------

template <class T>
void activate(RecurrentActivation a, T clip, Row<T> v) {
  switch (a) {
    case RecurrentActivation::tanh: v = v.tanh(); break;
    case RecurrentActivation::clipped_relu: v = v.max(T(0)).min(clip); break;
    case RecurrentActivation::relu: v = v.max(T(0)); break;
  }
}

/// d *= f'(x) where y = f(x); at the kinks of (clipped) ReLU the derivative is 0, as in PyTorch.
template <class T>
void scale_by_derivative(RecurrentActivation a, T clip, ConstRow<T> y, Row<T> d) {
  switch (a) {
    case RecurrentActivation::tanh: d *= T(1) - y.square(); break;
    case RecurrentActivation::clipped_relu: d = (y > T(0) && y < clip).select(d, T(0)); break;
    case RecurrentActivation::relu: d = (y > T(0)).select(d, T(0)); break;
  }
}

template <class T>
auto dsigmoid(const ConstRow<T>& y) {
  return y * (T(1) - y);
}

// ---- simple RNN: h = f(xp + b_hh + W_hh h_prev) (DS2 eq. in SPECS §3.2) --------------------

/// h: in = h_prev W_hh^T, out = the new state.
template <class T>
void rnn_forward_row(T* h, const T* xp, const T* bias, index_t n, RecurrentActivation a, T clip) {
  Row<T> v(h, n);
  v += ConstRow<T>(xp, n);
  if (bias) v += ConstRow<T>(bias, n);
  activate(a, clip, v);
}

/// dpre = dh f'(pre), from the state h.
template <class T>
void rnn_backward_row(T* dpre, const T* dh, const T* h, index_t n, RecurrentActivation a, T clip) {
  Row<T> d(dpre, n);
  d = ConstRow<T>(dh, n);
  scale_by_derivative(a, clip, ConstRow<T>(h, n), d);
}

// ---- LSTM, PyTorch's gate order i, f, g, o (torch.nn.LSTM) ---------------------------------
//   i, f, o = σ(.), g = tanh(.), c = f c_prev + i g, h = o tanh(c)

/// gates [4H]: in = h_prev W_hh^T, out = the activations (i, f, g, o) kept for backward.
template <class T>
void lstm_forward_row(T* gates, const T* xp, const T* bias, const T* c_prev, T* c, T* h,
                      index_t n) {
  Row<T> z(gates, 4 * n);
  z += ConstRow<T>(xp, 4 * n);
  if (bias) z += ConstRow<T>(bias, 4 * n);
  z.head(2 * n) = z.head(2 * n).logistic();
  z.segment(2 * n, n) = z.segment(2 * n, n).tanh();
  z.tail(n) = z.tail(n).logistic();
  Row<T> cn(c, n);
  cn = z.segment(n, n) * ConstRow<T>(c_prev, n) + z.head(n) * z.segment(2 * n, n);
  Row<T>(h, n) = z.tail(n) * cn.tanh();
}

/// dgates [4H] (pre-activation gradients); dc: in = dL/dc_t from step t+1, out = dL/dc_{t-1}
/// (the direct path f ⊙ dc). dh = dL/dh_t (output plus recurrent).
template <class T>
void lstm_backward_row(T* dgates, T* dc, const T* dh, const T* act, const T* c_prev, const T* c,
                       index_t n) {
  const ConstRow<T> i(act, n), f(act + n, n), g(act + 2 * n, n), o(act + 3 * n, n);
  const ConstRow<T> gh(dh, n), cp(c_prev, n);
  Row<T> dcell(dc, n), d(dgates, 4 * n);
  auto tc = d.tail(n);  // tanh(c_t), recomputed (cheaper than caching it) in the o block
  tc = ConstRow<T>(c, n).tanh();
  dcell += gh * o * (T(1) - tc.square());
  d.head(n) = dcell * g * dsigmoid(i);
  d.segment(n, n) = dcell * cp * dsigmoid(f);
  d.segment(2 * n, n) = dcell * i * (T(1) - g.square());
  tc = gh * tc * dsigmoid(o);
  dcell *= f;
}

// ---- GRU, PyTorch's gate order r, z, n (torch.nn.GRU) --------------------------------------
// Reset after U_h (PyTorch, cuDNN, DS2):  n = f(x_n + r ⊙ (U_n h_prev + b_hn))
// Reset before U_h (Cho et al. 2014):     n = f(x_n + U_n (r ⊙ h_prev) + b_hn)
// Update: torch h = (1 − z) ⊙ n + z ⊙ h_prev;  DS2 h = (1 − z) ⊙ h_prev + z ⊙ n (z weights the
// candidate, SPECS §3.2).

struct GruShape {
  index_t hidden;
  bool torch_update;  ///< z keeps h_prev (torch) or weights the candidate (DS2)
  RecurrentActivation candidate;
};

/// r and z from their pre-activations: cache[0:2H] holds U_{rz} h_prev; the sigmoid goes in place.
template <class T>
void gru_gates_row(T* cache, const T* xp, const T* bias, index_t n) {
  Row<T> rz(cache, 2 * n);
  rz += ConstRow<T>(xp, 2 * n);
  if (bias) rz += ConstRow<T>(bias, 2 * n);
  rz = rz.logistic();
}

/// The state update from z, the candidate n and h_prev.
template <class T>
void gru_update_row(T* h, const T* z, const T* cand, const T* h_prev, const GruShape& s) {
  const index_t n = s.hidden;
  const ConstRow<T> zz(z, n), nn(cand, n), hp(h_prev, n);
  if (s.torch_update)
    Row<T>(h, n) = nn + zz * (hp - nn);
  else
    Row<T>(h, n) = hp + zz * (nn - hp);
}

/// Reset after U_h. cache [4H] = (r, z, n, U_n h_prev + b_hn); in: cache[0:3H] = h_prev W_hh^T.
template <class T>
void gru_after_forward_row(T* cache, const T* xp, const T* bias, const T* h_prev, T* h,
                           const GruShape& s, T clip) {
  const index_t n = s.hidden;
  Row<T> hn(cache + 3 * n, n), cand(cache + 2 * n, n);
  hn = cand;
  if (bias) hn += ConstRow<T>(bias + 2 * n, n);
  gru_gates_row(cache, xp, bias, n);
  cand = ConstRow<T>(xp + 2 * n, n) + ConstRow<T>(cache, n) * hn;
  activate(s.candidate, clip, cand);
  gru_update_row(h, cache + n, cache + 2 * n, h_prev, s);
}

/// Reset before U_h, first half: r, z and rh = r ⊙ h_prev into cache [4H] = (r, z, ., rh).
template <class T>
void gru_before_gates_row(T* cache, const T* xp, const T* bias, const T* h_prev, index_t n) {
  gru_gates_row(cache, xp, bias, n);
  Row<T>(cache + 3 * n, n) = ConstRow<T>(cache, n) * ConstRow<T>(h_prev, n);
}

/// Reset before U_h, second half: cache[2H:3H] holds U_n (r ⊙ h_prev); becomes the candidate.
template <class T>
void gru_before_forward_row(T* cache, const T* xp, const T* bias, const T* h_prev, T* h,
                            const GruShape& s, T clip) {
  const index_t n = s.hidden;
  Row<T> cand(cache + 2 * n, n);
  cand += ConstRow<T>(xp + 2 * n, n);
  if (bias) cand += ConstRow<T>(bias + 2 * n, n);
  activate(s.candidate, clip, cand);
  gru_update_row(h, cache + n, cache + 2 * n, h_prev, s);
}

/// Shared backward of the update and candidate: dz (pre-sigmoid) into dgates[H:2H], the
/// candidate's pre-activation gradient into dgates[2H:3H], the direct dh_prev (through z).
template <class T>
void gru_update_backward_row(T* dgates, T* dh_prev, const T* dh, const T* cache, const T* h_prev,
                             const GruShape& s, T clip) {
  const index_t n = s.hidden;
  const ConstRow<T> z(cache + n, n), cand(cache + 2 * n, n), hp(h_prev, n), g(dh, n);
  Row<T> dz(dgates + n, n), dn(dgates + 2 * n, n);
  if (s.torch_update) {  // h = n + z (h_prev − n)
    dz = g * (hp - cand) * dsigmoid(z);
    dn = g * (T(1) - z);
    Row<T>(dh_prev, n) = g * z;
  } else {  // h = h_prev + z (n − h_prev)
    dz = g * (cand - hp) * dsigmoid(z);
    dn = g * z;
    Row<T>(dh_prev, n) = g * (T(1) - z);
  }
  scale_by_derivative(s.candidate, clip, cand, dn);
}

/// Reset after U_h: dxp [3H] and dhh [3H] (the gradient of h_prev W_hh^T + b_hh); they differ
/// only in the n block (dhh_n = r ⊙ dn).
template <class T>
void gru_after_backward_row(T* dxp, T* dhh, T* dh_prev, const T* dh, const T* cache,
                            const T* h_prev, const GruShape& s, T clip) {
  const index_t n = s.hidden;
  gru_update_backward_row(dxp, dh_prev, dh, cache, h_prev, s, clip);
  const ConstRow<T> r(cache, n), hn(cache + 3 * n, n), dn(dxp + 2 * n, n);
  Row<T>(dxp, n) = dn * hn * dsigmoid(r);
  Row<T>(dhh, 2 * n) = ConstRow<T>(dxp, 2 * n);
  Row<T>(dhh + 2 * n, n) = dn * r;
}

/// Reset before U_h, after drh = dn U_n is known: dr (pre-sigmoid) into dgates[0:H], and
/// dh_prev += r ⊙ drh.
template <class T>
void gru_before_reset_backward_row(T* dgates, T* dh_prev, const T* drh, const T* cache,
                                   const T* h_prev, index_t n) {
  const ConstRow<T> r(cache, n), g(drh, n);
  Row<T>(dgates, n) = g * ConstRow<T>(h_prev, n) * dsigmoid(r);
  Row<T>(dh_prev, n) += g * r;
}

// ---- padded time reversal (bidirectional layers; Cooijmans et al. 2017 sec. 4 / SPECS §4.4) --

/// Reverses each item's valid prefix of x [T, B, K] in time, in place: frame t of item b swaps
/// with frame lengths[b] − 1 − t; padding stays at the end. Its own inverse (and adjoint).
/// lengths == nullptr: every item has T frames.
template <class T>
void reverse_padded_inplace(TensorView<T> x, const std::int32_t* lengths) {
  const index_t steps = x.dim(0), batch = x.dim(1);
  if (steps == 0 || batch == 0) return;
  const index_t k = x.numel() / (steps * batch);
  for (index_t b = 0; b < batch; ++b) {
    const index_t len = lengths ? lengths[b] : steps;
    for (index_t t = 0; t < len / 2; ++t) {
      T* a = x.data() + (t * batch + b) * k;
      T* z = x.data() + ((len - 1 - t) * batch + b) * k;
      std::swap_ranges(a, a + k, z);
    }
  }
}

/// A reversed copy of x (see reverse_padded_inplace).
template <class T>
Tensor<T> reverse_padded(TensorView<const T> x, const std::int32_t* lengths) {
  Tensor<T> y(x);
  reverse_padded_inplace(y.view(), lengths);
  return y;
}

}  // namespace rnn
}  // namespace detail
}  // namespace asrkit
