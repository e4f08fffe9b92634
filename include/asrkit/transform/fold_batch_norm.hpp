// asrkit/transform/fold_batch_norm.hpp - folding an inference BatchNorm into the linear layer or
// convolution next to it (SPECS §10.3).
//
//   asrkit::Linear<float> fc(256, 1024, rng);
//   asrkit::BatchNorm<float> bn(1024);                 // fc → bn, trained
//   auto rec = asrkit::transform::fold_into_preceding(fc, bn);
//   // fc.forward(x) now equals bn.forward(fc.forward(x)); bn can be deleted
//
//   asrkit::BatchNorm<float> pre(256);                 // pre → fc
//   asrkit::transform::fold_into_following(pre, fc);   // fc.forward(x) == old fc(pre(x))
//
// Inference BN is a per-channel affine map BN(x) = s⊙x + t with s = γ / sqrt(σ² + ε),
// t = β − s⊙μ (running statistics μ, σ²). Folded into the layer y = W x + b:
//   BN after the layer  (post):  W'_c = s_c·W_c (every tap of output channel c), b' = s⊙b + t
//                               = s⊙(b − μ) + β. Exact for every layer, depthwise and grouped
//                               convs included.
//   BN before the layer (pre):   W' = W·diag(s) over input channels, b' = b + W·t (summed over
//                               the taps). Exact for Linear, pointwise convs and convs without
//                               zero padding. A zero-padded conv sees padding zeros that the BN
//                               never shifted: the outputs whose window reaches into the padding
//                               differ (stride 1: the first `left` and last `right` positions of
//                               each padded axis, ⌊k/2⌋·dilation each for "same" padding). Refused
//                               (fold.3) unless FoldOptions::allow_inexact.
// The folded values are computed in double from the stored ones and rounded once. A layer built
// without bias gains one (enable_bias). The BN itself is left untouched: the caller deletes it
// (the module passes in transform/fusionformer.hpp do).
//
// Supported layers: Linear, PointwiseConv1d, DepthwiseConv1d, Conv1d, Conv2d (their BNs are over
// channels, whatever the layout of the maps). Errors: fold.1 (feature counts differ), fold.2
// (NaN / Inf statistics or γ, β; σ² + ε <= 0), fold.3 (pre-BN into a zero-padded conv).
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/depthwise_conv1d.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>

namespace asrkit {
namespace transform {

/// Where the folded BN sat: after the layer (post: layer → BN) or before it (pre: BN → layer).
enum class FoldSide { post, pre };

inline const char* to_string(FoldSide s) { return s == FoldSide::post ? "post" : "pre"; }

/// What one fold did (for reports such as asrkit-fold's).
struct FoldRecord {
  std::string norm;   ///< the BN (its state_dict name in module passes)
  std::string layer;  ///< the layer it went into (state_dict name, or a description)
  FoldSide side = FoldSide::post;
  bool exact = true;  ///< false only for an allowed pre-BN fold into a zero-padded conv
  index_t channels = 0;
  std::string note;   ///< where an inexact fold's outputs differ
};

/// The records of a pass, in the order the folds ran.
struct FoldReport {
  std::vector<FoldRecord> folded;

  std::size_t size() const noexcept { return folded.size(); }
  void append(FoldReport other) {
    for (auto& r : other.folded) folded.push_back(std::move(r));
  }
};

struct FoldOptions {
  /// fold_into_following: accept a zero-padded conv (border outputs then differ; see the header).
  bool allow_inexact = false;
  std::string norm_name = "BatchNorm";  ///< in messages and the record
  std::string layer_name;               ///< in messages and the record (default: a description)
};

namespace detail {
namespace fold {

/// A layer's weight layout [out, in / groups, taps...] and its zero padding.
struct Geometry {
  index_t out, in, groups, taps;
  std::array<index_t, 2> pad_lo{0, 0}, pad_hi{0, 0}, stride{1, 1};
  std::string what;
  std::array<const char*, 2> axis{"the height axis", "the last axis"};  ///< names of the padded axes

  bool zero_padded() const { return pad_lo[0] + pad_lo[1] + pad_hi[0] + pad_hi[1] > 0; }
};

template <class T>
Geometry geometry(const Linear<T>& l) {
  return {l.out_features(), l.in_features(), 1, 1, {0, 0}, {0, 0}, {1, 1},
          asrkit::detail::str("Linear(", l.in_features(), " -> ", l.out_features(), ")")};
}
template <class T>
Geometry geometry(const PointwiseConv1d<T>& l) {
  return {l.out_channels(), l.in_channels(), 1, 1, {0, 0}, {0, 0}, {1, 1},
          asrkit::detail::str("PointwiseConv1d(", l.in_channels(), " -> ", l.out_channels(), ")")};
}
template <class T>
Geometry geometry(const DepthwiseConv1d<T>& l) {
  const auto& p = l.params();
  Geometry g{l.channels(), l.channels(), l.channels(), p.kernel, {0, p.left}, {0, p.right}, {1, 1},
             asrkit::detail::str("DepthwiseConv1d(", l.channels(), ", kernel ", p.kernel, ", padding ",
                                 p.left, " + ", p.right, ")")};
  g.axis[1] = "time";  // [T, B, C]
  return g;
}
template <class T, int Rank>
Geometry geometry(const asrkit::detail::ConvLayer<T, Rank>& l) {
  const auto& p = l.params();
  return {l.out_channels(), l.in_channels(), p.groups, p.kernel[0] * p.kernel[1], p.padding,
          p.padding, p.stride,
          asrkit::detail::str(Rank == 3 ? "Conv1d(" : "Conv2d(", l.in_channels(), " -> ",
                              l.out_channels(), ", kernel ", p.kernel[0], "x", p.kernel[1],
                              ", padding ", p.padding[0], "x", p.padding[1], ", groups ", p.groups,
                              ")")};
}

/// Any other foldable layer (the adapters of transform/fusionformer.hpp and fold_recurrent.hpp)
/// describes itself; like the layers it has weight(), bias() and enable_bias().
template <class L>
auto geometry(const L& l) -> decltype(l.fold_geometry()) {
  return l.fold_geometry();
}

/// Inference BN as BN(x) = scale⊙x + shift, in double.
struct Affine {
  std::vector<double> scale, shift;
};

/// Validates the BN's statistics and affine parameters (fold.2) and returns its affine map.
template <class T>
Affine affine_of(const BatchNorm<T>& bn, const std::string& name) {
  const index_t n = bn.num_features();
  const bool affine = bn.options().affine;
  auto finite = [&](const Tensor<T>& t, const char* what) {
    for (index_t j = 0; j < t.numel(); ++j)
      if (!std::isfinite(static_cast<double>(t.data()[j])))
        throw ValueError("fold.2", asrkit::detail::str(name, ".", what, "[", j, "] = ",
                                                       static_cast<double>(t.data()[j]),
                                                       " is not finite; cannot fold this BatchNorm"));
  };
  finite(bn.running_mean(), "running_mean");
  finite(bn.running_var(), "running_var");
  if (affine) {
    finite(bn.weight().value, "weight");
    finite(bn.bias().value, "bias");
  }
  Affine a;
  a.scale.resize(static_cast<std::size_t>(n));
  a.shift.resize(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) {
    const double var = static_cast<double>(bn.running_var()(j)) + bn.options().eps;
    if (!(var > 0))
      throw ValueError("fold.2", asrkit::detail::str(name, ".running_var[", j, "] + eps = ", var,
                                                     " must be > 0; cannot fold this BatchNorm"));
    const double gamma = affine ? static_cast<double>(bn.weight().value(j)) : 1.0;
    const double beta = affine ? static_cast<double>(bn.bias().value(j)) : 0.0;
    const double s = gamma / std::sqrt(var);
    a.scale[static_cast<std::size_t>(j)] = s;
    a.shift[static_cast<std::size_t>(j)] = beta - s * static_cast<double>(bn.running_mean()(j));
  }
  return a;
}

inline void check_features(index_t bn_features, index_t layer_features, const std::string& norm,
                           const std::string& layer, const char* where) {
  if (bn_features != layer_features)
    throw ShapeError("fold.1", asrkit::detail::str("cannot fold ", norm, " (", bn_features,
                                                   " features) into ", layer, ": it has ",
                                                   layer_features, " ", where, " channels"));
}

/// Where a pre-BN fold into a zero-padded conv differs from the unfolded layers.
inline std::string border_note(const Geometry& g) {
  std::string s = "outputs whose window reaches the zero padding differ (";
  bool first = true;
  for (int a = 0; a < 2; ++a) {
    const auto i = static_cast<std::size_t>(a);
    if (g.pad_lo[i] + g.pad_hi[i] == 0) continue;
    s += asrkit::detail::str(first ? "" : "; ", g.axis[i], ": the first ",
                             (g.pad_lo[i] + g.stride[i] - 1) / g.stride[i], " and about the last ",
                             (g.pad_hi[i] + g.stride[i] - 1) / g.stride[i], " positions");
    first = false;
  }
  return s + ", and before zeroed padded frames of shorter sequences)";
}

inline FoldRecord record(const FoldOptions& o, const Geometry& g, FoldSide side, index_t channels) {
  FoldRecord r;
  r.norm = o.norm_name;
  r.layer = o.layer_name.empty() ? g.what : o.layer_name;
  r.side = side;
  r.channels = channels;
  return r;
}

/// Post: W'_c = s_c W_c over the c-th block of `row` weights, b' = s⊙b + t.
template <class T>
void scale_outputs(Parameter<T>& weight, Parameter<T>& bias, const Affine& a) {
  const index_t out = bias.value.numel(), row = weight.value.numel() / out;
  T* w = weight.value.data();
  T* b = bias.value.data();
  for (index_t c = 0; c < out; ++c) {
    const double s = a.scale[static_cast<std::size_t>(c)];
    for (index_t k = 0; k < row; ++k) w[c * row + k] = static_cast<T>(s * static_cast<double>(w[c * row + k]));
    b[c] = static_cast<T>(s * static_cast<double>(b[c]) + a.shift[static_cast<std::size_t>(c)]);
  }
}

/// Pre: b'_o = b_o + Σ W[o, i, tap] t_i (with the stored W), then W'[o, i, tap] = W s_i, where
/// i runs over output o's group of input channels.
template <class T>
void scale_inputs(Parameter<T>& weight, Parameter<T>& bias, const Affine& a, const Geometry& g) {
  const index_t in_group = g.in / g.groups, out_group = g.out / g.groups;
  T* w = weight.value.data();
  T* b = bias.value.data();
  for (index_t o = 0; o < g.out; ++o) {
    const index_t i0 = (o / out_group) * in_group;
    double acc = static_cast<double>(b[o]);
    for (index_t i = 0; i < in_group; ++i) {
      const double s = a.scale[static_cast<std::size_t>(i0 + i)];
      const double t = a.shift[static_cast<std::size_t>(i0 + i)];
      T* taps = w + (o * in_group + i) * g.taps;
      for (index_t k = 0; k < g.taps; ++k) {
        acc += static_cast<double>(taps[k]) * t;
        taps[k] = static_cast<T>(static_cast<double>(taps[k]) * s);
      }
    }
    b[o] = static_cast<T>(acc);
  }
}

/// Throws fold.3 for a pre-BN fold into a zero-padded conv unless allowed; true when exact.
inline bool check_pre_exactness(const Geometry& g, const FoldOptions& o) {
  if (!g.zero_padded()) return true;
  if (!o.allow_inexact)
    throw ValueError("fold.3", asrkit::detail::str(
                                   "cannot fold ", o.norm_name, " into the following ",
                                   o.layer_name.empty() ? g.what : o.layer_name,
                                   " exactly: the conv pads with zeros that the BN never shifted, "
                                   "so ", border_note(g), "; pass allow_inexact = true to accept"));
  return false;
}

/// The checks of a post-BN fold (fold.1, fold.2), and what the fold needs.
template <class Layer, class T>
std::pair<Geometry, Affine> prepare_post(const Layer& layer, const BatchNorm<T>& bn, const FoldOptions& o) {
  auto g = geometry(layer);
  check_features(bn.num_features(), g.out, o.norm_name, o.layer_name.empty() ? g.what : o.layer_name,
                 "output");
  auto a = affine_of(bn, o.norm_name);
  return {std::move(g), std::move(a)};
}

}  // namespace fold
}  // namespace detail

/// Folds `bn`, which follows `layer` (layer → BN, over its output channels), into the layer's
/// weight and bias (exact). Throws fold.1 / fold.2 before changing anything.
template <class Layer, class T>
FoldRecord fold_into_preceding(Layer& layer, const BatchNorm<T>& bn, const FoldOptions& o = {}) {
  const auto [g, a] = detail::fold::prepare_post(layer, bn, o);
  layer.enable_bias();
  detail::fold::scale_outputs(layer.weight(), layer.bias(), a);
  return detail::fold::record(o, g, FoldSide::post, g.out);
}

/// Folds `bn`, which precedes `layer` (BN → layer, over its input channels), into the layer.
/// Exact without zero padding; a zero-padded conv throws fold.3 unless o.allow_inexact (then
/// the record says exact = false and where outputs differ). Throws before changing anything.
template <class Layer, class T>
FoldRecord fold_into_following(const BatchNorm<T>& bn, Layer& layer, const FoldOptions& o = {}) {
  const auto g = detail::fold::geometry(layer);
  const std::string lname = o.layer_name.empty() ? g.what : o.layer_name;
  detail::fold::check_features(bn.num_features(), g.in, o.norm_name, lname, "input");
  const auto a = detail::fold::affine_of(bn, o.norm_name);
  const bool exact = detail::fold::check_pre_exactness(g, o);
  layer.enable_bias();
  detail::fold::scale_inputs(layer.weight(), layer.bias(), a, g);
  auto r = detail::fold::record(o, g, FoldSide::pre, g.in);
  r.exact = exact;
  if (!exact) r.note = detail::fold::border_note(g);
  return r;
}

namespace detail {
namespace fold {

/// A module pass: visit(f) calls f(layer, bn, norm_name, layer_name) for every layer → BN pair
/// of the module(s); remove() deletes the BNs. Every pair is checked before anything changes,
/// so a failing pass (fold.1, fold.2) leaves the model as it was.
template <class Visit, class Remove>
FoldReport run_pass(Visit&& visit, Remove&& remove) {
  auto options = [](const std::string& norm, const std::string& layer) {
    FoldOptions o;
    o.norm_name = norm;
    o.layer_name = layer;
    return o;
  };
  visit([&](auto& layer, const auto& bn, const std::string& norm, const std::string& name) {
    prepare_post(layer, bn, options(norm, name));
  });
  FoldReport report;
  visit([&](auto& layer, const auto& bn, const std::string& norm, const std::string& name) {
    report.folded.push_back(fold_into_preceding(layer, bn, options(norm, name)));
  });
  remove();
  return report;
}

}  // namespace fold
}  // namespace detail

}  // namespace transform
}  // namespace asrkit
