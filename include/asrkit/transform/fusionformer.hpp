// asrkit/transform/fusionformer.hpp - the FusionFormer pass: a trained BN-augmented Conformer
// becomes inference weights with every BatchNorm folded away (Song et al. 2022; SPECS §10.3).
//
//   asrkit::Conv2dSubsampling<float> embed(80, 256, sub_options, rng);    // fusionformer = true
//   asrkit::Encoder<asrkit::FusionFormerBlock<float>> enc(12, 256, block, {}, rng);
//   ... train, or load_state_dict ...
//   auto report = asrkit::transform::fold_fusionformer(embed, enc);  // "embed.conv.1" -> "embed.conv.0", ...
//   // embed and enc now hold no BN; forward gives the same outputs (to rounding), faster
//
// Every BN of a FusionFormer follows a linear layer or conv (SPECS §10.2), so every fold is a
// post-BN fold, exact for any padding (transform/fold_batch_norm.hpp):
//   FeedForward                 w_1 ← norm_1, w_2 ← norm_2
//   RelPositionMultiHeadAttention  linear_q/k/v ← norm_q/k/v, linear_out ← norm_out
//   ConformerConvolution        pointwise_conv1 ← pointwise_norm1, depthwise_conv ← norm,
//                               pointwise_conv2 ← pointwise_norm2 (the plain Conformer has only
//                               the depthwise one: its BN follows the depthwise conv)
//   Conv2dSubsampling           conv.0 ← conv.1, conv.3 ← conv.4, (conv.6 ← conv.7)
//   ConformerBlock / FusionFormerBlock, Encoder<...>: all of their modules.
// ReLU stays (it is not linear); LayerNorms of a Conformer stay (per-frame statistics: not
// foldable, SPECS §12.1). After a pass the modules hold no BN (their optionals are reset):
// forward runs no normalisation and state_dict has no BN names. Padded frames: a BN zeroed them
// and the folded layer does not, but every later step either ignores them (attention keys are
// masked, the subsampling convs read only valid frames of valid outputs, the depthwise conv's
// input is zeroed) or zeroes them (every module's output), so valid outputs are unchanged.
//
// A model that loads folded weights is built as usual and folded once (its statistics do not
// matter then): fold_batch_norms(model); load_state_dict(file, model).
#pragma once

#include <string>
#include <string_view>

#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/subsampling.hpp>
#include <asrkit/transform/fold_batch_norm.hpp>

namespace asrkit {
namespace transform {
namespace detail {
namespace fold {

/// linear_q (0), linear_k (1) or linear_v (2) of a relative-position attention, as a foldable
/// layer (its bias is enabled for all four projections at once).
template <class T>
struct AttentionProjection {
  RelPositionMultiHeadAttention<T>& attention;
  int which;

  Geometry fold_geometry() const {
    const index_t d = attention.d_model();
    return {d, d, 1, 1, {0, 0}, {0, 0}, {1, 1}, asrkit::detail::str("Linear(", d, " -> ", d, ")")};
  }
  Parameter<T>& weight() { return attention.projection_weight(which); }
  Parameter<T>& bias() { return attention.projection_bias(which); }
  void enable_bias() { attention.enable_bias(); }
};

inline std::string child(std::string_view prefix, std::string_view name) {
  return join_name(prefix, name);
}

// pairs(module, prefix, f): f(layer, bn, bn_name, layer_name) for every layer → BN pair.

template <class T, class F>
void pairs(FeedForward<T>& m, std::string_view prefix, F&& f) {
  if (auto* n = m.norm_1()) f(m.w_1(), *n, child(prefix, "norm_1"), child(prefix, "w_1"));
  if (auto* n = m.norm_2()) f(m.w_2(), *n, child(prefix, "norm_2"), child(prefix, "w_2"));
}

template <class T, class F>
void pairs(RelPositionMultiHeadAttention<T>& m, std::string_view prefix, F&& f) {
  static const char* const norms[] = {"norm_q", "norm_k", "norm_v"};
  static const char* const layers[] = {"linear_q", "linear_k", "linear_v"};
  for (int i = 0; i < 3; ++i)
    if (auto* n = m.projection_norm(i)) {
      AttentionProjection<T> p{m, i};
      f(p, *n, child(prefix, norms[i]), child(prefix, layers[i]));
    }
  if (auto* n = m.projection_norm(3))
    f(m.output_projection(), *n, child(prefix, "norm_out"), child(prefix, "linear_out"));
}

template <class T, class F>
void pairs(ConformerConvolution<T>& m, std::string_view prefix, F&& f) {
  if (auto* n = m.pointwise_norm1())
    f(m.pointwise_conv1(), *n, child(prefix, "pointwise_norm1"), child(prefix, "pointwise_conv1"));
  if (auto* n = m.depthwise_norm())
    f(m.depthwise_conv(), *n, child(prefix, "norm"), child(prefix, "depthwise_conv"));
  if (auto* n = m.pointwise_norm2())
    f(m.pointwise_conv2(), *n, child(prefix, "pointwise_norm2"), child(prefix, "pointwise_conv2"));
}

template <class T, class F>
void pairs(Conv2dSubsampling<T>& m, std::string_view prefix, F&& f) {
  for (index_t s = 0; s < m.num_stages(); ++s)
    if (auto* n = m.norm(s))
      f(m.conv(s), *n, child(prefix, m.conv_name(static_cast<std::size_t>(s), 1)),
        child(prefix, m.conv_name(static_cast<std::size_t>(s), 0)));
}

template <class T, class F>
void pairs(ConformerBlock<T>& m, std::string_view prefix, F&& f) {
  pairs(m.self_attn(), child(prefix, "self_attn"), f);
  pairs(m.feed_forward(), child(prefix, "feed_forward"), f);
  pairs(m.feed_forward_macaron(), child(prefix, "feed_forward_macaron"), f);
  pairs(m.conv_module(), child(prefix, "conv_module"), f);
}

template <class Block, class F>
void pairs(Encoder<Block>& m, std::string_view prefix, F&& f) {
  for (index_t l = 1; l <= m.num_layers(); ++l)
    pairs(m.layer(l), child(prefix, "encoders." + std::to_string(l - 1)), f);
}

template <class T>
void remove_norms(FeedForward<T>& m) { m.remove_batch_norms(); }
template <class T>
void remove_norms(RelPositionMultiHeadAttention<T>& m) { m.remove_projection_norms(); }
template <class T>
void remove_norms(ConformerConvolution<T>& m) { m.remove_batch_norms(); }
template <class T>
void remove_norms(Conv2dSubsampling<T>& m) { m.remove_batch_norms(); }
template <class T>
void remove_norms(ConformerBlock<T>& m) {
  remove_norms(m.self_attn());
  remove_norms(m.feed_forward());
  remove_norms(m.feed_forward_macaron());
  remove_norms(m.conv_module());
}
template <class Block>
void remove_norms(Encoder<Block>& m) {
  for (index_t l = 1; l <= m.num_layers(); ++l) remove_norms(m.layer(l));
}

/// The pass over one module (see run_pass).
template <class Module>
FoldReport module_pass(Module& m, std::string_view prefix) {
  return run_pass([&](auto&& f) { pairs(m, prefix, f); }, [&] { remove_norms(m); });
}

}  // namespace fold
}  // namespace detail

/// Folds every BN of the module into the layer before it and deletes the BNs; `prefix` is the
/// module's state_dict prefix, used in the report and in messages. Nothing changes when a BN has
/// NaN / Inf statistics (fold.2). A module without BN gives an empty report.
template <class T>
FoldReport fold_batch_norms(FeedForward<T>& ffn, std::string_view prefix = {}) {
  return detail::fold::module_pass(ffn, prefix);
}
template <class T>
FoldReport fold_batch_norms(RelPositionMultiHeadAttention<T>& attention, std::string_view prefix = {}) {
  return detail::fold::module_pass(attention, prefix);
}
template <class T>
FoldReport fold_batch_norms(ConformerConvolution<T>& conv, std::string_view prefix = {}) {
  return detail::fold::module_pass(conv, prefix);
}
template <class T>
FoldReport fold_batch_norms(Conv2dSubsampling<T>& subsampling, std::string_view prefix = {}) {
  return detail::fold::module_pass(subsampling, prefix);
}
/// ConformerBlock (only the conv module's BN) and FusionFormerBlock (every BN).
template <class T>
FoldReport fold_batch_norms(ConformerBlock<T>& block, std::string_view prefix = {}) {
  return detail::fold::module_pass(block, prefix);
}
/// Every block of the encoder ("encoders.<i>.*" under `prefix`); after_norm (LN) stays.
template <class T>
FoldReport fold_batch_norms(Encoder<ConformerBlock<T>>& encoder, std::string_view prefix = {}) {
  return detail::fold::module_pass(encoder, prefix);
}
template <class T>
FoldReport fold_batch_norms(Encoder<FusionFormerBlock<T>>& encoder, std::string_view prefix = {}) {
  return detail::fold::module_pass(encoder, prefix);
}

/// The FusionFormer pass: the subsampling front end (state_dict prefix `embed_prefix`) and every
/// block of the encoder (`encoder_prefix`). Checks every BN of both before changing either.
template <class T>
FoldReport fold_fusionformer(Conv2dSubsampling<T>& embed, Encoder<FusionFormerBlock<T>>& encoder,
                             std::string_view embed_prefix = "embed",
                             std::string_view encoder_prefix = {}) {
  return detail::fold::run_pass(
      [&](auto&& f) {
        detail::fold::pairs(embed, embed_prefix, f);
        detail::fold::pairs(encoder, encoder_prefix, f);
      },
      [&] {
        detail::fold::remove_norms(embed);
        detail::fold::remove_norms(encoder);
      });
}

}  // namespace transform
}  // namespace asrkit
