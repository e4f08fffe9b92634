// asrkit/train/batch.hpp - padding utterances into one time-major batch for CTC.
//
//   asrkit::Batch<float> b = asrkit::make_batch(features, labels);  // [frames_i, bins] each
//   asrkit::CtcProblem<float> p{b.features /* after the model: [T, B, V] */, b.targets,
//                               b.input_lengths, b.target_lengths};
//
// features: [T_max, B, bins], frame t of utterance b at (t, b, :), zero past its length;
// input_lengths [B]; targets: the label sequences concatenated [sum L]; target_lengths [B].
// That is the layout CtcProblem takes (see asrkit/loss/ctc.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>

namespace asrkit {

template <class T>
struct Batch {
  Tensor<T> features;                   ///< [T_max, B, bins], zero-padded
  Tensor<std::int32_t> input_lengths;   ///< [B] frames of each utterance
  Tensor<std::int32_t> targets;         ///< [sum L] labels, concatenated in batch order
  Tensor<std::int32_t> target_lengths;  ///< [B]
  std::vector<index_t> indices;         ///< manifest rows of the items (set by Loader)

  index_t size() const { return input_lengths.numel(); }
};

namespace detail {
inline std::int32_t batch_length(std::size_t n, const char* what, std::size_t item) {
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw ValueError("batch.4", detail::str("make_batch: item ", item, " has ", n, " ", what,
                                            ", more than int32 lengths hold"));
  return static_cast<std::int32_t>(n);
}
}  // namespace detail

/// Pads `features[b]` ([frames_b, bins], same bins for all) into one batch with `labels[b]`.
/// ShapeError "batch.1" (a feature tensor not rank 2, or bins differ), "batch.2" (the two
/// lists differ in length); ValueError "batch.3" (no items), "batch.4" (a negative label, or a
/// length or total beyond int32).
template <class T>
Batch<T> make_batch(const std::vector<TensorView<const T>>& features,
                    const std::vector<std::vector<std::int32_t>>& labels) {
  if (features.size() != labels.size())
    throw ShapeError("batch.2", detail::str("make_batch: ", features.size(),
                                            " feature tensors but ", labels.size(),
                                            " label sequences"));
  if (features.empty()) throw ValueError("batch.3", "make_batch: needs at least one item, got 0");
  const auto batch = static_cast<index_t>(features.size());
  index_t bins = -1, frames_max = 0;
  std::size_t total_labels = 0;
  for (std::size_t b = 0; b < features.size(); ++b) {
    const auto& f = features[b];
    if (f.rank() != 2)
      throw ShapeError("batch.1", detail::str("make_batch: features of item ", b,
                                              " must be [frames, bins], got shape ",
                                              f.shape().str()));
    if (bins < 0) bins = f.dim(1);
    if (f.dim(1) != bins)
      throw ShapeError("batch.1", detail::str("make_batch: item ", b, " has ", f.dim(1),
                                              " bins, item 0 has ", bins, " bins (shape ",
                                              f.shape().str(), ")"));
    detail::batch_length(static_cast<std::size_t>(f.dim(0)), "frames", b);
    frames_max = std::max(frames_max, f.dim(0));
    for (std::size_t k = 0; k < labels[b].size(); ++k)
      if (labels[b][k] < 0)
        throw ValueError("batch.4", detail::str("make_batch: label ", k, " of item ", b,
                                                " is negative (", labels[b][k], ")"));
    total_labels += labels[b].size();
  }
  detail::batch_length(total_labels, "labels in the batch, counting items up to it,",
                       features.size() - 1);

  Batch<T> out;
  out.features = Tensor<T>({frames_max, batch, bins});  // zero-initialised: the padding
  out.input_lengths = Tensor<std::int32_t>({batch});
  out.target_lengths = Tensor<std::int32_t>({batch});
  out.targets = Tensor<std::int32_t>({static_cast<index_t>(total_labels)});
  std::int32_t* target = out.targets.data();
  for (index_t b = 0; b < batch; ++b) {
    const auto& f = features[static_cast<std::size_t>(b)];
    const auto& l = labels[static_cast<std::size_t>(b)];
    // Row t of item b lands at (t, b, :): contiguous per frame, strided over frames.
    for (index_t t = 0; t < f.dim(0); ++t)
      if (bins > 0)
        std::memcpy(out.features.data() + (t * batch + b) * bins, f.data() + t * bins,
                    static_cast<std::size_t>(bins) * sizeof(T));
    out.input_lengths(b) = static_cast<std::int32_t>(f.dim(0));
    out.target_lengths(b) = static_cast<std::int32_t>(l.size());
    if (!l.empty()) std::memcpy(target, l.data(), l.size() * sizeof(std::int32_t));
    target += l.size();
  }
  return out;
}

/// make_batch over owning tensors.
template <class T>
Batch<T> make_batch(const std::vector<Tensor<T>>& features,
                    const std::vector<std::vector<std::int32_t>>& labels) {
  std::vector<TensorView<const T>> views(features.begin(), features.end());
  return make_batch<T>(views, labels);
}

}  // namespace asrkit
