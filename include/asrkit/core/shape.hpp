// asrkit/core/shape.hpp - the shape of a row-major tensor of rank 0..4.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>

#include <asrkit/core/error.hpp>

namespace asrkit {

/// Signed index type, the same as Eigen::Index.
using index_t = std::ptrdiff_t;

/// Highest rank a Tensor supports: [T, B, F] sequences and [B, C, F, T] feature maps.
inline constexpr int kMaxRank = 4;

class Shape {
 public:
  /// Rank 0 (a scalar, one element).
  Shape() = default;

  Shape(std::initializer_list<index_t> dims) { assign(dims.begin(), dims.end()); }

  template <class It>
  Shape(It first, It last) {
    assign(first, last);
  }

  int rank() const noexcept { return rank_; }
  index_t operator[](int axis) const noexcept { return dims_[static_cast<std::size_t>(axis)]; }

  /// Dimension `axis`; negative axes count from the end (-1 is the last one).
  index_t dim(int axis) const {
    const int a = axis < 0 ? axis + rank_ : axis;
    if (a < 0 || a >= rank_)
      throw ShapeError("shape.3", detail::str("axis ", axis, " is out of range for shape ", str()));
    return dims_[static_cast<std::size_t>(a)];
  }

  /// Number of elements (1 for rank 0).
  index_t numel() const noexcept {
    index_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<std::size_t>(i)];
    return n;
  }

  /// Shape without the first dimension (the shape of one slice along axis 0).
  Shape drop_front() const {
    if (rank_ == 0) throw ShapeError("shape.3", "cannot take a slice of a rank-0 shape");
    return Shape(dims_.begin() + 1, dims_.begin() + rank_);
  }

  const index_t* begin() const noexcept { return dims_.data(); }
  const index_t* end() const noexcept { return dims_.data() + rank_; }

  /// "[2, 3, 4]"
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<std::size_t>(i)]);
    }
    return s + "]";
  }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)])
        return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) noexcept { return !(a == b); }

 private:
  template <class It>
  void assign(It first, It last) {
    index_t numel = 1;
    for (It it = first; it != last; ++it) {
      if (rank_ == kMaxRank)
        throw ShapeError("shape.1", detail::str("rank must be <= ", kMaxRank, ", got ",
                                                std::distance(first, last)));
      const auto d = static_cast<index_t>(*it);
      if (d < 0)
        throw ShapeError("shape.2",
                         detail::str("dimension ", rank_, " must be >= 0, got ", d));
      // Overflow guard: numel * d must fit in index_t.
      if (d != 0 && numel > std::numeric_limits<index_t>::max() / d)
        throw ShapeError("shape.4", "number of elements overflows index_t");
      numel *= d;
      dims_[static_cast<std::size_t>(rank_++)] = d;
    }
  }

  std::array<index_t, kMaxRank> dims_{};
  int rank_ = 0;
};

/// Throws ShapeError "[asrkit.shape.5] <what>: expected shape [..], got [..]" unless equal.
inline void check_shape(const Shape& actual, const Shape& expected, const char* what) {
  if (actual != expected)
    throw ShapeError("shape.5", detail::str(what, ": expected shape ", expected.str(), ", got ",
                                            actual.str()));
}

}  // namespace asrkit
