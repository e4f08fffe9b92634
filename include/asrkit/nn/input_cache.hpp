// asrkit/nn/input_cache.hpp - what a layer's training forward keeps of its input for backward.
//
//   auto y1 = bn.forward_train(x.view());             // copies x: x may change or go away
//   auto y2 = bn.forward_train(std::move(h));         // keeps h itself: no copy
//   auto y3 = bn.forward_train(asrkit::borrow(x));    // keeps a view of x: no copy; x must stay
//                                                     // alive and unchanged until bn.backward
//
// A layer whose backward reads its input (Linear, PointwiseConv1d, BatchNorm, SequenceBatchNorm,
// LayerNorm, the element-wise activations) takes a `TrainInput<T>`, which any of the three converts to, and stores it in an
// `InputCache<T>`. A copy is the safe default; moving hands over a tensor the caller no longer
// needs (what a model does with the freshly written output of the layer before); borrowing is
// PyTorch autograd's behaviour (it keeps a reference to the input), for a caller that holds x
// anyway, e.g. a model that keeps the same tensor for its own backward.
#pragma once

#include <algorithm>
#include <type_traits>
#include <utility>

#include <asrkit/core/tensor.hpp>

namespace asrkit {

/// A view the caller promises to keep alive and unchanged until the layer's backward (see
/// `borrow`). Only a training forward takes it.
template <class T>
struct Borrowed {
  TensorView<const T> view;
};

/// Lends x to a training forward, which keeps the view instead of copying x.
template <class T>
Borrowed<std::remove_const_t<T>> borrow(TensorView<T> x) {
  return {TensorView<const std::remove_const_t<T>>(x)};
}
template <class T>
Borrowed<T> borrow(const Tensor<T>& x) {
  return {x.view()};
}
/// A temporary dies at the end of the call: move it in instead (`forward_train(std::move(x))`).
template <class T>
Borrowed<T> borrow(Tensor<T>&& x) = delete;

/// The input of a training forward and how the layer may keep it: copied (a view or a tensor
/// lvalue), owned (a moved tensor) or borrowed.
template <class T>
class TrainInput {
 public:
  enum class Kind { copy, own, borrow };

  template <class U, class = std::enable_if_t<std::is_same_v<std::remove_const_t<U>, T>>>
  TrainInput(TensorView<U> x) : view_(x), kind_(Kind::copy) {}  // NOLINT: implicit by design
  TrainInput(const Tensor<T>& x) : view_(x.view()), kind_(Kind::copy) {}  // NOLINT
  TrainInput(Tensor<T>&& x)  // NOLINT
      : owned_(std::move(x)), view_(owned_.view()), kind_(Kind::own) {}
  TrainInput(Borrowed<T> x) : view_(x.view), kind_(Kind::borrow) {}  // NOLINT

  TrainInput(TrainInput&& other) noexcept
      : owned_(std::move(other.owned_)), view_(other.view_), kind_(other.kind_) {}
  TrainInput(const TrainInput&) = delete;
  TrainInput& operator=(const TrainInput&) = delete;
  TrainInput& operator=(TrainInput&&) = delete;

  /// The input's data (a moved tensor's storage does not move with it, so this stays valid
  /// after the input is handed to an InputCache).
  TensorView<const T> view() const noexcept { return view_; }
  const Shape& shape() const noexcept { return view_.shape(); }
  /// Whether the layer must copy x to keep it (a view or tensor lvalue: neither moved nor borrowed).
  bool copied() const noexcept { return kind_ == Kind::copy; }

 private:
  template <class>
  friend class InputCache;
  Tensor<T> owned_;
  TensorView<const T> view_;
  Kind kind_;
};

/// A layer's cached input. Owned storage (a copy, or the moved tensor) is reused by the next copy
/// of the same shape; a borrowed view is only remembered. A copy of the cache (of the layer)
/// owns a copy of the data, borrowed or not: the copied layer may outlive what was lent to the
/// original (a model lending its own tensor to a sublayer, then copied). Moving keeps a borrowed
/// view as it is (a moved Tensor keeps its storage).
template <class T>
class InputCache {
 public:
  InputCache() = default;
  InputCache(const InputCache& other) : owned_(other.view()) {}
  InputCache& operator=(const InputCache& other) {
    if (this != &other) *this = InputCache(other);
    return *this;
  }
  InputCache(InputCache&&) noexcept = default;
  InputCache& operator=(InputCache&&) noexcept = default;

  /// Keeps x and returns where its copy must be written (nullptr when x was moved or borrowed):
  /// for a layer that writes the copy in the same pass as its output.
  T* keep_uncopied(TrainInput<T>&& x) {
    borrowed_ = x.kind_ == TrainInput<T>::Kind::borrow;
    if (borrowed_) {
      owned_ = Tensor<T>();  // nothing of an earlier copy is needed any more
      borrowed_view_ = x.view_;
      return nullptr;
    }
    if (x.kind_ == TrainInput<T>::Kind::own) {
      owned_ = std::move(x.owned_);
      return nullptr;
    }
    if (owned_.shape() != x.shape()) owned_ = Tensor<T>(x.shape(), uninitialized);
    return owned_.data();
  }
  /// Keeps x, copying it if it is to be copied.
  void keep(TrainInput<T>&& x) {
    const TensorView<const T> from = x.view();
    if (T* to = keep_uncopied(std::move(x))) std::copy_n(from.data(), from.numel(), to);
  }

  /// What backward reads.
  TensorView<const T> view() const noexcept { return borrowed_ ? borrowed_view_ : owned_.view(); }
  const Shape& shape() const noexcept { return borrowed_ ? borrowed_view_.shape() : owned_.shape(); }
  bool borrowed() const noexcept { return borrowed_; }
  /// Frees owned storage and forgets a borrowed view.
  void clear() {
    owned_ = Tensor<T>();
    borrowed_view_ = {};
    borrowed_ = false;
  }

 private:
  Tensor<T> owned_;
  TensorView<const T> borrowed_view_;
  bool borrowed_ = false;
};

}  // namespace asrkit
