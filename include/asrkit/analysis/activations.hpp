// asrkit/analysis/activations.hpp - activation capture for SVCCA: the valid frames of time-major
// batches gathered as rows of an [N, D] matrix (SPECS §9.4: a frame is a data point).
//
//   asrkit::analysis::ActivationRecorder<float> rec(256);
//   for (auto& [x, lengths] : batches) rec.append(layer_output.view(), as_view(lengths));
//   asrkit::Tensor<float> acts = rec.matrix();                       // [N, 256], N = sum of lengths
//
//   // every residual stream of an encoder (positions 0..L), one [N, D] matrix each:
//   auto streams = asrkit::analysis::capture_encoder_streams(encoder, batches);
//
// Frames are appended utterance by utterance (b = 0, 1, ...; t = 0 .. lengths[b] - 1), so every
// layer recorded from the same batches lists the same frames in the same order, as CCA needs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/nn/detail/sequence_lengths.hpp>

namespace asrkit {
namespace analysis {

/// Gathers the valid frames (t < lengths[b]) of [T, B, D] tensors as rows of an [N, D] matrix.
template <class T>
class ActivationRecorder {
 public:
  explicit ActivationRecorder(index_t features) : features_(features) {
    if (features < 1)
      throw ValueError("activations.1", asrkit::detail::str("ActivationRecorder: features must be >= 1, got ", features));
  }

  /// Appends the valid frames of x [T, B, D] (D = features); an empty `lengths` means all T.
  void append(TensorView<const T> x, TensorView<const std::int32_t> lengths = {}) {
    if (x.rank() != 3 || x.dim(2) != features_)
      throw ShapeError("activations.2", asrkit::detail::str("ActivationRecorder::append: argument x: expected shape [T, B, ",
                                                            features_, "], got ", x.shape().str()));
    const index_t steps = x.dim(0), batch = x.dim(1);
    const auto len = asrkit::detail::checked_lengths(lengths, steps, batch, "ActivationRecorder::append",
                                                     {"activations.3", "activations.3"});
    for (index_t b = 0; b < batch; ++b)
      for (index_t t = 0; t < len[static_cast<std::size_t>(b)]; ++t) {
        const T* frame = x.data() + (t * batch + b) * features_;
        data_.insert(data_.end(), frame, frame + features_);
      }
  }
  void append(const Tensor<T>& x, TensorView<const std::int32_t> lengths = {}) { append(x.view(), lengths); }

  /// The frames recorded so far, [N, D].
  Tensor<T> matrix() const {
    Tensor<T> out(Shape{rows(), features_}, uninitialized);
    std::copy(data_.begin(), data_.end(), out.data());
    return out;
  }
  index_t rows() const noexcept { return static_cast<index_t>(data_.size()) / features_; }
  index_t features() const noexcept { return features_; }
  void clear() noexcept { data_.clear(); }

 private:
  index_t features_;
  std::vector<T> data_;
};

/// One batch of a dataset: features x [T, B, F] and the lengths [B] (empty: all T).
template <class T>
struct SequenceBatch {
  Tensor<T> x;
  std::vector<std::int32_t> lengths;
};

/// Runs `encoder.forward_streams` over every batch and returns, for each position 0..L, the
/// [N, D] matrix of its valid frames (N = the total length of all batches). Anything with
/// `forward_streams(x, lengths)` and `d_model()` works (asrkit::Encoder, nn/encoder.hpp).
template <class Encoder, class T>
std::vector<Tensor<T>> capture_encoder_streams(const Encoder& encoder, const std::vector<SequenceBatch<T>>& batches) {
  std::vector<ActivationRecorder<T>> recorders;
  for (const auto& batch : batches) {
    const auto streams = encoder.forward_streams(batch.x.view(), as_view(batch.lengths));
    if (recorders.empty()) recorders.assign(streams.size(), ActivationRecorder<T>(encoder.d_model()));
    for (std::size_t p = 0; p < streams.size(); ++p) recorders[p].append(streams[p].view(), as_view(batch.lengths));
  }
  std::vector<Tensor<T>> out;
  for (const auto& r : recorders) out.push_back(r.matrix());
  return out;
}

}  // namespace analysis
}  // namespace asrkit
