// asrkit/core/tensor.hpp - owning tensors and non-owning views, row-major, rank 0..4.
//
//   asrkit::Tensor<float> x({T, B, V});          // 64-byte aligned, zero-initialised
//   asrkit::Tensor<float> y({T, B, V}, asrkit::uninitialized);  // contents unspecified
//   x(t, b, v) = 1.0f;                           // element access (bounds asserted in debug)
//   auto frame = x[t];                           // TensorView<float> of shape [B, V], no copy
//   frame.matrix().rowwise().maxCoeff();         // Eigen::Map over the same memory
//
// Tensor<T, Cuda> has the same interface minus element access and Eigen maps; it needs
// <asrkit/cuda/memory.cuh> (nvcc), which provides the CUDA DeviceTraits and host/device copies.
#pragma once

#include <Eigen/Core>

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include <asrkit/core/config.hpp>
#include <asrkit/core/device.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>

namespace asrkit {

/// Row-major Eigen matrix / vector types with asrkit's scalar (const-ness preserved in maps).
template <class T>
using RowMatrix = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, Eigen::Dynamic,
                                Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic, 1>;
template <class T>
using MatrixMap = Eigen::Map<std::conditional_t<std::is_const_v<T>, const RowMatrix<T>, RowMatrix<T>>>;
template <class T>
using VectorMap = Eigen::Map<std::conditional_t<std::is_const_v<T>, const Vector<T>, Vector<T>>>;

template <class T, class Device = Cpu>
class TensorView;

/// Tag for Tensor's constructor that skips zero-filling: for kernels that write every element of
/// a fresh output before anything reads it (saves one write pass over the whole tensor).
struct Uninitialized {
  explicit constexpr Uninitialized() = default;
};
inline constexpr Uninitialized uninitialized{};

namespace detail {

// The accessors shared by Tensor and TensorView (one implementation, const-correct: a const
// tensor or view hands out const data). Derived provides `ptr()` and `shape_`.
template <class Derived, class T, class Device>
class TensorAccess {
 public:
  using value_type = std::remove_const_t<T>;
  using device_type = Device;

  const Shape& shape() const noexcept { return self().shape_; }
  int rank() const noexcept { return shape().rank(); }
  index_t dim(int axis) const { return shape().dim(axis); }
  index_t numel() const noexcept { return shape().numel(); }
  std::size_t size_bytes() const noexcept {
    return static_cast<std::size_t>(numel()) * sizeof(value_type);
  }
  bool empty() const noexcept { return numel() == 0; }

  T* data() noexcept { return self().ptr(); }
  const T* data() const noexcept { return self().ptr(); }

  /// Slice `i` along the first axis: a view of rank-1 (no copy).
  TensorView<T, Device> operator[](index_t i) { return slice<T>(i); }
  TensorView<const T, Device> operator[](index_t i) const { return slice<const T>(i); }

  /// The same memory seen with another shape of equal element count.
  TensorView<T, Device> reshape(const Shape& s) { return reshaped<T>(s); }
  TensorView<const T, Device> reshape(const Shape& s) const { return reshaped<const T>(s); }

  // ---- CPU only: element access and Eigen maps --------------------------------------------
  template <class... I>
  T& operator()(I... idx) noexcept {
    return data()[offset(idx...)];
  }
  template <class... I>
  const T& operator()(I... idx) const noexcept {
    return data()[offset(idx...)];
  }

  /// Bounds-checked element access; throws ShapeError.
  template <class... I>
  T& at(I... idx) {
    check_index(idx...);
    return data()[offset(idx...)];
  }
  template <class... I>
  const T& at(I... idx) const {
    check_index(idx...);
    return data()[offset(idx...)];
  }

  /// All elements as an Eigen column vector.
  VectorMap<T> flat() { return VectorMap<T>(host_data(), numel()); }
  VectorMap<const T> flat() const { return VectorMap<const T>(host_data(), numel()); }

  /// Leading axes flattened into rows, last axis as columns ([T, B, V] -> (T*B) x V).
  MatrixMap<T> matrix() { return MatrixMap<T>(host_data(), rows(), cols()); }
  MatrixMap<const T> matrix() const { return MatrixMap<const T>(host_data(), rows(), cols()); }

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }

  index_t cols() const noexcept { return rank() == 0 ? 1 : shape()[rank() - 1]; }
  index_t rows() const noexcept { return cols() == 0 ? 0 : numel() / cols(); }

  template <class U>
  TensorView<U, Device> slice(index_t i) const {
    if (rank() == 0 || i < 0 || i >= shape()[0])
      throw ShapeError("tensor.1", detail::str("slice index ", i, " is out of range for shape ",
                                               shape().str()));
    const Shape inner = shape().drop_front();
    return TensorView<U, Device>(const_cast<U*>(self().ptr()) + i * inner.numel(), inner);
  }

  template <class U>
  TensorView<U, Device> reshaped(const Shape& s) const {
    if (s.numel() != numel())
      throw ShapeError("tensor.2", detail::str("cannot reshape ", shape().str(), " (", numel(),
                                               " elements) to ", s.str(), " (", s.numel(),
                                               " elements)"));
    return TensorView<U, Device>(const_cast<U*>(self().ptr()), s);
  }

  T* host_data() const noexcept {
    static_assert(std::is_same_v<Device, Cpu>, "element access and Eigen maps are CPU only");
    return const_cast<T*>(self().ptr());
  }

  template <class... I>
  index_t offset(I... idx) const noexcept {
    static_assert(std::is_same_v<Device, Cpu>, "element access is CPU only");
    static_assert(sizeof...(I) <= kMaxRank, "too many indices");
    ASRKIT_ASSERT(static_cast<int>(sizeof...(I)) == rank());
    const index_t ids[] = {static_cast<index_t>(idx)..., 0};
    index_t off = 0;
    for (int a = 0; a < static_cast<int>(sizeof...(I)); ++a) {
      ASRKIT_ASSERT(ids[a] >= 0 && ids[a] < shape()[a]);
      off = off * shape()[a] + ids[a];
    }
    return off;
  }

  template <class... I>
  void check_index(I... idx) const {
    const index_t ids[] = {static_cast<index_t>(idx)..., 0};
    bool ok = static_cast<int>(sizeof...(I)) == rank();
    for (int a = 0; ok && a < static_cast<int>(sizeof...(I)); ++a)
      ok = ids[a] >= 0 && ids[a] < shape()[a];
    if (!ok) {
      std::string s = "(";
      for (int a = 0; a < static_cast<int>(sizeof...(I)); ++a)
        s += (a ? ", " : "") + std::to_string(ids[a]);
      throw ShapeError("tensor.3", detail::str("index ", s, ") is out of range for shape ",
                                               shape().str()));
    }
  }
};

}  // namespace detail

/// A non-owning view: a pointer and a shape, contiguous row-major. Cheap to copy; it must not
/// outlive the memory it points to. `T` may be const.
template <class T, class Device>
class TensorView : public detail::TensorAccess<TensorView<T, Device>, T, Device> {
  static_assert(is_device_v<Device>, "Device must be asrkit::Cpu or asrkit::Cuda");

 public:
  TensorView() = default;
  TensorView(T* data, const Shape& shape) : data_(data), shape_(shape) {}

  /// A view of T converts to a view of const T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
  TensorView(const TensorView<U, Device>& other) : data_(other.data()), shape_(other.shape()) {}

 private:
  friend class detail::TensorAccess<TensorView, T, Device>;
  T* ptr() const noexcept { return data_; }

  T* data_ = nullptr;
  Shape shape_;
};

/// An owning tensor: aligned, contiguous, row-major, deep-copying, zero-initialised. A default
/// constructed (or moved-from) tensor has shape [0].
template <class T, class Device = Cpu>
class Tensor : public detail::TensorAccess<Tensor<T, Device>, T, Device> {
  static_assert(std::is_arithmetic_v<T> && !std::is_const_v<T>,
                "Tensor<T>: T must be a non-const arithmetic type");
  static_assert(is_device_v<Device>, "Device must be asrkit::Cpu or asrkit::Cuda");
  static_assert(DeviceTraits<Device>::available,
                "asrkit::Tensor<T, Cuda> needs #include <asrkit/cuda/memory.cuh>, compiled by "
                "nvcc with ASRKIT_WITH_CUDA defined (link asrkit::cuda)");
  using Traits = DeviceTraits<Device>;

 public:
  Tensor() = default;

  explicit Tensor(const Shape& shape) : shape_(shape) {
    data_ = static_cast<T*>(Traits::allocate(this->size_bytes()));
    Traits::zero(data_, this->size_bytes());
  }

  /// Storage only: the elements are unspecified until written (see Uninitialized).
  Tensor(const Shape& shape, Uninitialized) : shape_(shape) {
    data_ = static_cast<T*>(Traits::allocate(this->size_bytes()));
  }

  /// A tensor filled with `value` (CPU only).
  Tensor(const Shape& shape, T value) : Tensor(shape) { fill(value); }

  /// A copy of the viewed data (same device).
  explicit Tensor(TensorView<const T, Device> view) : Tensor(view.shape(), uninitialized) {
    Traits::copy(data_, view.data(), this->size_bytes());
  }

  Tensor(const Tensor& other) : Tensor(TensorView<const T, Device>(other.view())) {}
  Tensor(Tensor&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), shape_(std::exchange(other.shape_, Shape{0})) {}
  Tensor& operator=(const Tensor& other) {
    if (this != &other) *this = Tensor(other);
    return *this;
  }
  Tensor& operator=(Tensor&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(shape_, other.shape_);
    return *this;
  }
  ~Tensor() { Traits::deallocate(data_, this->size_bytes()); }

  TensorView<T, Device> view() noexcept { return {data_, shape_}; }
  TensorView<const T, Device> view() const noexcept { return {data_, shape_}; }
  operator TensorView<T, Device>() noexcept { return view(); }
  operator TensorView<const T, Device>() const noexcept { return view(); }

  void fill(T value) {
    static_assert(std::is_same_v<Device, Cpu>, "fill is CPU only");
    for (index_t i = 0, n = this->numel(); i < n; ++i) data_[i] = value;
  }

 private:
  friend class detail::TensorAccess<Tensor, T, Device>;
  T* ptr() const noexcept { return data_; }

  T* data_ = nullptr;
  Shape shape_{0};  // empty: zero elements, no storage
};

/// A rank-1 const view of a std::vector (lengths, labels...), valid while the vector lives.
template <class T, class Alloc>
TensorView<const T> as_view(const std::vector<T, Alloc>& v) {
  return TensorView<const T>(v.data(), Shape{static_cast<index_t>(v.size())});
}

}  // namespace asrkit
