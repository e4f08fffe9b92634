// asrkit/core/error.hpp - the exception hierarchy.
//
// Every error asrkit throws derives from asrkit::Error (itself a std::runtime_error). The message
// starts with a stable id, then says what was expected and what was given:
//
//   [asrkit.wav.4] WAV 'fmt ' chunk: num_channels must be >= 1, got 0
//
// Ids never change meaning once published; docs/errors.md lists them all and a test checks that
// every id thrown in include/ is documented there.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace asrkit {

class Error : public std::runtime_error {
 public:
  /// `id` is the short form ("wav.4"); the message gets the "[asrkit.wav.4] " prefix.
  Error(const std::string& id, const std::string& what)
      : std::runtime_error("[asrkit." + id + "] " + what), id_("asrkit." + id) {}

  /// The stable id, e.g. "asrkit.wav.4".
  const std::string& id() const noexcept { return id_; }

 private:
  std::string id_;
};

/// A tensor or argument has the wrong shape, rank or size.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An argument has a value outside its domain (negative length, NaN input, bad probability...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A file or buffer is malformed (WAV, safetensors, ARPA...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// The operating system refused an I/O operation (open, read, write, mmap).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A CUDA runtime or library call failed.
class CudaError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Concatenates streamable values into one message string.
template <class... Args>
std::string str(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace detail
}  // namespace asrkit
