// asrkit/io/safetensors.hpp - reading and writing the safetensors format (Hugging Face).
//
//   auto f = asrkit::SafetensorsFile::open("model.safetensors");   // mmap, no tensor copied
//   asrkit::Tensor<float> w = f.read<float>("encoder.w");           // copy + F16/BF16 -> float
//
//   asrkit::SafetensorsWriter out;
//   out.add("encoder.w", w.view(), asrkit::DType::BF16);            // converted when added
//   out.set_metadata("format", "pt");
//   out.save("out.safetensors");                                    // path.tmp, then rename
//
// Layout: u64 little-endian N, N bytes of UTF-8 JSON header, then the data section. The header
// maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the data section) plus an optional "__metadata__" object of strings. The reader checks every
// field and that the tensors tile the data section exactly (no overlap, no gap, no trailing
// bytes), as the reference implementation does; see docs/safetensors.md.
//
// Little-endian hosts only (tensor bytes are used as they are stored).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#define ASRKIT_DETAIL_SAFETENSORS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#else
#define ASRKIT_DETAIL_SAFETENSORS_MMAP 0
#endif

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/dtype.hpp>
#include <asrkit/io/file.hpp>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "asrkit/io/safetensors.hpp supports little-endian hosts only"
#endif

namespace asrkit {

/// One tensor of a safetensors file as its header describes it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  // any rank here; read<T>() needs rank <= 4
  std::size_t begin = 0, end = 0;   // byte offsets in the data section

  std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;  // cannot overflow: checked when parsed
    return n;
  }
};

namespace detail {
namespace safetensors {

/// Headers above this are refused before anything is parsed (the reference's limit too).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

/// The bytes of a whole file or buffer, kept alive by `owner` (a mapping or a vector).
struct Bytes {
  std::shared_ptr<const void> owner;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  bool mapped = false;
};

using ::asrkit::detail::os_error;

/// 'name' for messages, shortened so a hostile header cannot blow up an error message.
inline std::string quote(const std::string& s, std::size_t max = 80) {
  if (s.size() <= max) return "'" + s + "'";
  return "'" + s.substr(0, max) + "...' (" + std::to_string(s.size()) + " bytes)";
}

/// A JSON value for messages: numbers and short strings as they are, anything else by type
/// (never dump() an arbitrary value: it may be huge).
inline std::string describe(const nlohmann::json& v) {
  if (v.is_number()) return v.dump();
  if (v.is_string() && v.get_ref<const std::string&>().size() <= 40) return v.dump();
  return v.type_name();
}

/// The header's arrays and objects may nest this deep (a valid header needs 3 levels).
inline constexpr int kMaxHeaderDepth = 16;

inline std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

inline Bytes read_whole_file(const std::string& path) {
  auto owned = std::make_shared<std::vector<std::uint8_t>>(read_file(path));
  return Bytes{owned, owned->data(), owned->size(), false};
}

#if ASRKIT_DETAIL_SAFETENSORS_MMAP
/// Maps the whole file read-only; pages are read by the OS only when touched.
inline Bytes map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw IoError("io.1", detail::str("cannot open '", path, "' for reading: ", os_error(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw IoError("io.2", detail::str("cannot stat '", path, "': ", os_error(errno)));
  if (!S_ISREG(st.st_mode))
    throw IoError("io.1", detail::str("cannot open '", path, "': not a regular file"));
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size > std::numeric_limits<std::size_t>::max())
    throw IoError("io.2", detail::str("cannot map '", path, "': ", file_size,
                                      " bytes do not fit in the address space"));
  const auto size = static_cast<std::size_t>(file_size);
  if (size == 0) return Bytes{};  // mmap refuses length 0; the parser reports the short file
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    throw IoError("io.2", detail::str("cannot memory-map '", path, "': ", os_error(errno)));
  // (If the control block cannot be allocated, shared_ptr calls the deleter before throwing.)
  std::shared_ptr<const void> owner(
      p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  return Bytes{std::move(owner), static_cast<const std::uint8_t*>(p), size, true};
}
#endif

/// Copies `n` elements stored as `From` at unaligned `src` into `dst`, converting each.
template <class From, class To, class Convert>
void convert_elements(const std::uint8_t* src, To* dst, std::size_t n, Convert convert) {
  for (std::size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, src + i * sizeof(From), sizeof(From));
    dst[i] = convert(v);
  }
}

template <class T>
void append_value(std::vector<std::uint8_t>& out, T v) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

/// Throws ValueError safetensors.22 unless `s` is valid UTF-8 (JSON strings must be).
inline void check_utf8(const std::string& s, const char* what) {
  try {
    (void)nlohmann::json(s).dump();
  } catch (const nlohmann::json::type_error& e) {
    throw ValueError("safetensors.22",
                     detail::str(what, " ", quote(s), " is not valid UTF-8 (", e.what(), ")"));
  }
}

}  // namespace safetensors
}  // namespace detail

/// A parsed safetensors file or buffer. Cheap to copy (copies share the bytes). The header is
/// validated completely by open()/parse(); afterwards only read<T>() conversions can throw.
class SafetensorsFile {
 public:
  /// Memory-maps `path` (POSIX; elsewhere the file is read into memory). Tensor data is not
  /// copied: pages are read when raw() or read<T>() touches them. The file must not be
  /// truncated while mapped (the OS would raise SIGBUS).
  static SafetensorsFile open(const std::string& path) {
#if ASRKIT_DETAIL_SAFETENSORS_MMAP
    return SafetensorsFile(detail::safetensors::map_file(path));
#else
    return SafetensorsFile(detail::safetensors::read_whole_file(path));
#endif
  }

  /// Parses a file held in memory (the object keeps the bytes).
  static SafetensorsFile parse(std::vector<std::uint8_t> bytes) {
    auto owned = std::make_shared<std::vector<std::uint8_t>>(std::move(bytes));
    return SafetensorsFile(detail::safetensors::Bytes{owned, owned->data(), owned->size(), false});
  }

  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// Tensor names in data order (by begin offset).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const TensorInfo& t : tensors_) out.push_back(t.name);
    return out;
  }

  std::size_t size() const noexcept { return tensors_.size(); }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  /// ValueError safetensors.16 when there is no such tensor (the message lists a few names).
  const TensorInfo& info(const std::string& name) const {
    const auto it = index_.find(name);
    if (it != index_.end()) return tensors_[it->second];
    std::string some;
    for (std::size_t i = 0; i < tensors_.size() && i < 5; ++i)
      some += (i ? ", " : "") + detail::safetensors::quote(tensors_[i].name, 40);
    if (tensors_.size() > 5) some += ", ...";
    throw ValueError(
        "safetensors.16",
        detail::str("no tensor named ", detail::safetensors::quote(name), "; the file has ",
                    tensors_.size(), " tensor(s)", tensors_.empty() ? "" : ": ", some));
  }

  /// The stored bytes of `name` (zero-copy, into the mapping; may be unaligned).
  const std::uint8_t* raw(const std::string& name) const {
    return bytes_.data + data_offset_ + info(name).begin;
  }

  /// True when the bytes are a memory mapping of the file (open() on POSIX).
  bool memory_mapped() const noexcept { return bytes_.mapped; }

  /// A converted copy of `name`. T is float or double for F16/BF16/F32/F64 (F64 -> float rounds
  /// to nearest), std::int32_t or std::int64_t for I32/I64 (I64 -> int32 is range-checked).
  template <class T>
  Tensor<T> read(const std::string& name) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>,
                  "read<T>: T must be float, double, std::int32_t or std::int64_t");
    namespace st = detail::safetensors;
    const TensorInfo& t = info(name);
    if (t.shape.size() > static_cast<std::size_t>(kMaxRank))
      throw ShapeError(
          "safetensors.17",
          detail::str("tensor ", st::quote(name), " has rank ", t.shape.size(), " (shape ",
                      st::shape_str(t.shape), "); read<T>() supports rank <= ", kMaxRank));
    if (dtype_is_float(t.dtype) != std::is_floating_point_v<T>)
      throw ValueError(
          "safetensors.18",
          detail::str("tensor ", st::quote(name), " is stored as ", dtype_name(t.dtype),
                      "; read it as ",
                      dtype_is_float(t.dtype) ? "float or double" : "std::int32_t or std::int64_t",
                      ", not ", dtype_name(dtype_of<T>()),
                      " (no conversion between floating-point and integer types)"));
    Tensor<T> out(Shape(t.shape.begin(), t.shape.end()));
    const std::uint8_t* src = bytes_.data + data_offset_ + t.begin;
    T* dst = out.data();
    const auto n = static_cast<std::size_t>(out.numel());
    if (n == 0) return out;
    if (t.dtype == dtype_of<T>()) {
      std::memcpy(dst, src, n * sizeof(T));
      return out;
    }
    if constexpr (std::is_floating_point_v<T>) {
      switch (t.dtype) {
        case DType::F16:
          st::convert_elements<std::uint16_t>(
              src, dst, n, [](std::uint16_t v) { return static_cast<T>(half_to_float(v)); });
          break;
        case DType::BF16:
          st::convert_elements<std::uint16_t>(
              src, dst, n, [](std::uint16_t v) { return static_cast<T>(bfloat16_to_float(v)); });
          break;
        case DType::F32:
          st::convert_elements<float>(src, dst, n, [](float v) { return static_cast<T>(v); });
          break;
        default:  // F64 -> float
          st::convert_elements<double>(src, dst, n, [](double v) { return static_cast<T>(v); });
          break;
      }
    } else if constexpr (std::is_same_v<T, std::int64_t>) {  // I32 -> int64
      st::convert_elements<std::int32_t>(src, dst, n, [](std::int32_t v) { return T{v}; });
    } else {  // I64 -> int32, range-checked
      for (std::size_t i = 0; i < n; ++i) {
        std::int64_t v;
        std::memcpy(&v, src + i * 8, 8);
        if (v < std::numeric_limits<std::int32_t>::min() ||
            v > std::numeric_limits<std::int32_t>::max())
          throw ValueError("safetensors.19",
                           detail::str("tensor ", st::quote(name), " (I64): element ", i, " = ", v,
                                       " does not fit in std::int32_t"));
        dst[i] = static_cast<std::int32_t>(v);
      }
    }
    return out;
  }

 private:
  explicit SafetensorsFile(detail::safetensors::Bytes bytes) : bytes_(std::move(bytes)) {
    parse_header();
  }

  void parse_header();

  detail::safetensors::Bytes bytes_;
  std::size_t data_offset_ = 0;      // 8 + header length
  std::vector<TensorInfo> tensors_;  // sorted by begin offset
  std::map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

inline void SafetensorsFile::parse_header() {
  namespace st = detail::safetensors;
  using nlohmann::json;
  const std::uint8_t* p = bytes_.data;
  const std::size_t size = bytes_.size;
  if (size < 8)
    throw FormatError(
        "safetensors.1",
        detail::str("input is ", size, " bytes, too short for the 8-byte header length"));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  if (n > st::kMaxHeaderBytes)
    throw FormatError("safetensors.2", detail::str("header length ", n, " exceeds the limit of ",
                                                   st::kMaxHeaderBytes, " bytes"));
  if (n > size - 8)
    throw FormatError("safetensors.3", detail::str("header length ", n, " exceeds the ", size - 8,
                                                   " bytes that follow the length field"));
  data_offset_ = 8 + static_cast<std::size_t>(n);
  const std::size_t data_size = size - data_offset_;

  // nlohmann keeps the last of duplicate keys silently: refuse them (a stack of key lists, one
  // per open object). The nesting limit bounds the memory a hostile header can make us use.
  std::vector<std::vector<std::string>> keys;
  const json::parser_callback_t check = [&keys](int depth, json::parse_event_t event,
                                                json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= st::kMaxHeaderDepth)
      throw FormatError("safetensors.4", detail::str("header is not valid JSON for safetensors: "
                                                     "nested deeper than ",
                                                     st::kMaxHeaderDepth, " levels"));
    if (event == json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      keys.pop_back();
    } else if (event == json::parse_event_t::key && !keys.empty()) {
      auto& seen = keys.back();
      const std::string& k = parsed.get_ref<const std::string&>();
      if (std::find(seen.begin(), seen.end(), k) != seen.end())
        throw FormatError("safetensors.5",
                          detail::str("header has the key ", st::quote(k), " twice in one object"));
      seen.push_back(k);
    }
    return true;
  };
  json header;
  try {
    header = json::parse(p + 8, p + data_offset_, check);
  } catch (const json::exception& e) {
    throw FormatError("safetensors.4", detail::str("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object())
    throw FormatError("safetensors.5",
                      detail::str("header must be a JSON object, got ", header.type_name()));

  std::vector<TensorInfo> tensors;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        throw FormatError(
            "safetensors.6",
            detail::str("__metadata__ must be an object of strings, got ", v.type_name()));
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw FormatError("safetensors.6",
                            detail::str("__metadata__ value of ", st::quote(m.key()),
                                        " must be a string, got ", m.value().type_name()));
        metadata_.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    const std::string qn = st::quote(name);
    if (!v.is_object())
      throw FormatError("safetensors.7", detail::str("entry of tensor ", qn,
                                                     " must be an object, got ", v.type_name()));
    const auto field = [&](const char* key, bool (json::*is_type)() const noexcept,
                           const char* type) -> const json& {
      const auto f = v.find(key);
      if (f == v.end())
        throw FormatError("safetensors.7", detail::str("tensor ", qn, " has no \"", key, "\""));
      if (!((*f).*is_type)())
        throw FormatError("safetensors.7", detail::str("tensor ", qn, ": \"", key, "\" must be ",
                                                       type, ", got ", f->type_name()));
      return *f;
    };
    const json& jdtype = field("dtype", &json::is_string, "a string");
    const json& jshape = field("shape", &json::is_array, "an array");
    const json& joffsets = field("data_offsets", &json::is_array, "an array");

    TensorInfo t;
    t.name = name;
    const std::string& dname = jdtype.get_ref<const std::string&>();
    const auto dtype = parse_dtype(dname);
    if (!dtype)
      throw FormatError("safetensors.8",
                        detail::str("tensor ", qn, " has unknown dtype ", st::quote(dname, 20),
                                    "; expected F16, BF16, F32, F64, I32 or I64"));
    t.dtype = *dtype;

    constexpr auto kMaxI64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::int64_t numel = 1;
    for (std::size_t i = 0; i < jshape.size(); ++i) {
      const json& d = jshape[i];
      if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<std::int64_t>() < 0))
        throw FormatError("safetensors.9",
                          detail::str("tensor ", qn, ": shape[", i,
                                      "] must be a non-negative integer, got ", st::describe(d)));
      if (d.get<std::uint64_t>() > kMaxI64)
        throw FormatError("safetensors.10", detail::str("tensor ", qn, ": shape[", i, "] = ",
                                                        d.get<std::uint64_t>(), " is too large"));
      const auto di = d.get<std::int64_t>();
      if (di != 0 && numel > std::numeric_limits<std::int64_t>::max() / di)
        throw FormatError("safetensors.10",
                          detail::str("tensor ", qn, ": the element count of shape ",
                                      st::shape_str(t.shape), " x ", di, "... overflows int64"));
      numel *= di;
      t.shape.push_back(di);
    }
    const auto esize = static_cast<std::int64_t>(dtype_size(t.dtype));
    if (numel > std::numeric_limits<std::int64_t>::max() / esize)
      throw FormatError("safetensors.10", detail::str("tensor ", qn, ": the byte size of shape ",
                                                      st::shape_str(t.shape), " overflows int64"));

    const bool offsets_ok = joffsets.size() == 2 && joffsets[0].is_number_unsigned() &&
                            joffsets[1].is_number_unsigned() &&
                            joffsets[0].get<std::uint64_t>() <= joffsets[1].get<std::uint64_t>();
    if (!offsets_ok)
      throw FormatError(
          "safetensors.11",
          detail::str("tensor ", qn,
                      ": data_offsets must be [begin, end] with "
                      "integers 0 <= begin <= end, got ",
                      joffsets.size() == 2
                          ? "[" + st::describe(joffsets[0]) + ", " + st::describe(joffsets[1]) + "]"
                          : std::to_string(joffsets.size()) + " element(s)"));
    const auto begin = joffsets[0].get<std::uint64_t>();
    const auto end = joffsets[1].get<std::uint64_t>();
    if (end > data_size)
      throw FormatError("safetensors.12",
                        detail::str("tensor ", qn, ": data_offsets end ", end,
                                    " is beyond the data section (", data_size, " bytes)"));
    const auto expected = static_cast<std::uint64_t>(numel * esize);
    if (end - begin != expected)
      throw FormatError(
          "safetensors.13",
          detail::str("tensor ", qn, ": shape ", st::shape_str(t.shape), " of ",
                      dtype_name(t.dtype), " needs ", expected, " bytes, data_offsets [", begin,
                      ", ", end, "] hold ", end - begin));
    t.begin = static_cast<std::size_t>(begin);
    t.end = static_cast<std::size_t>(end);
    tensors.push_back(std::move(t));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin
           : a.end != b.end   ? a.end < b.end
                              : a.name < b.name;
  });
  std::size_t covered = 0;
  const TensorInfo* last = nullptr;  // the tensor that reaches `covered`
  for (const TensorInfo& t : tensors) {
    if (t.begin < covered)
      throw FormatError(
          "safetensors.14",
          detail::str("tensors ", st::quote(last->name), " [", last->begin, ", ", last->end,
                      ") and ", st::quote(t.name), " [", t.begin, ", ", t.end, ") overlap"));
    if (t.begin > covered)
      throw FormatError(
          "safetensors.15",
          detail::str("data section bytes [", covered, ", ", t.begin, ") belong to no tensor (",
                      st::quote(t.name), " starts at ", t.begin, ", expected ", covered, ")"));
    covered = t.end;
    last = &t;
  }
  if (covered != data_size)
    throw FormatError("safetensors.15",
                      detail::str("data section has ", data_size - covered,
                                  " trailing byte(s) after the last tensor: expected ", covered,
                                  " bytes, got ", data_size));
  tensors_ = std::move(tensors);
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

/// Collects tensors (converted to their stored dtype when added) and metadata, then writes a
/// safetensors file: tensors ordered by element size (largest first) then name, so every tensor
/// is aligned to its element size; the header is padded with spaces to a multiple of 8.
class SafetensorsWriter {
 public:
  /// Adds a copy of `t` stored as `stored`: float/double as F16, BF16, F32 or F64;
  /// std::int32_t/std::int64_t as I32 or I64 (int64 -> I32 is range-checked).
  template <class T>
  void add(const std::string& name, TensorView<T> t,
           DType stored = dtype_of<std::remove_const_t<T>>()) {
    add_impl<std::remove_const_t<T>>(name, t.data(), t.shape(), stored);
  }
  template <class T>
  void add(const std::string& name, const Tensor<T>& t, DType stored = dtype_of<T>()) {
    add_impl<T>(name, t.data(), t.shape(), stored);
  }

  /// Sets (or replaces) one "__metadata__" entry.
  void set_metadata(const std::string& key, const std::string& value) {
    detail::safetensors::check_utf8(key, "metadata key");
    detail::safetensors::check_utf8(value, "metadata value");
    metadata_[key] = value;
  }

  std::size_t size() const noexcept { return entries_.size(); }

  /// The whole file.
  std::vector<std::uint8_t> to_bytes() const {
    std::vector<std::uint8_t> out = prefix();
    for (const Entry* e : ordered()) out.insert(out.end(), e->bytes.begin(), e->bytes.end());
    return out;
  }

  /// Writes `path` + ".tmp", then renames it to `path`, so readers never see a partial file.
  void save(const std::string& path) const {
    using detail::safetensors::os_error;
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr)
      throw IoError("io.1", detail::str("cannot open '", tmp, "' for writing: ", os_error(errno)));
    const auto write = [f](const std::vector<std::uint8_t>& b) {
      return b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size();
    };
    bool ok = write(prefix());
    for (const Entry* e : ordered()) ok = ok && write(e->bytes);
    ok = ok && std::fflush(f) == 0;
#if ASRKIT_DETAIL_SAFETENSORS_MMAP
    ok = ok && ::fsync(::fileno(f)) == 0;  // data on disk before the rename makes it visible
#endif
    int err = ok ? 0 : errno;
    if (std::fclose(f) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
      ok = false;
      err = errno;
    }
    if (!ok) {
      std::remove(tmp.c_str());
      throw IoError("io.2", detail::str("cannot write '", path, "': ", os_error(err)));
    }
  }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;
  };

  template <class T>
  void add_impl(const std::string& name, const T* data, const Shape& shape, DType stored) {
    namespace st = detail::safetensors;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::int64_t>,
                  "SafetensorsWriter::add: T must be float, double, std::int32_t or std::int64_t");
    if (name == "__metadata__")
      throw ValueError("safetensors.21", "tensor name '__metadata__' is reserved for the metadata");
    st::check_utf8(name, "tensor name");
    for (const Entry& e : entries_)
      if (e.name == name)
        throw ValueError("safetensors.20",
                         detail::str("a tensor named ", st::quote(name), " was already added"));
    if (dtype_is_float(stored) != std::is_floating_point_v<T>)
      throw ValueError("safetensors.18",
                       detail::str("tensor ", st::quote(name), ": cannot store ",
                                   dtype_name(dtype_of<T>()), " values as ", dtype_name(stored),
                                   " (no conversion between floating-point and integer types)"));
    Entry e{name, stored, std::vector<std::int64_t>(shape.begin(), shape.end()), {}};
    const auto n = static_cast<std::size_t>(shape.numel());
    e.bytes.reserve(n * dtype_size(stored));
    for (std::size_t i = 0; i < n; ++i) {
      const T v = data[i];
      if constexpr (std::is_floating_point_v<T>) {
        switch (stored) {
          case DType::F16:
            st::append_value(e.bytes, std::is_same_v<T, float>
                                          ? float_to_half(static_cast<float>(v))
                                          : double_to_half(static_cast<double>(v)));
            break;
          case DType::BF16:
            st::append_value(e.bytes, std::is_same_v<T, float>
                                          ? float_to_bfloat16(static_cast<float>(v))
                                          : double_to_bfloat16(static_cast<double>(v)));
            break;
          case DType::F32:
            st::append_value(e.bytes, static_cast<float>(v));
            break;
          default:
            st::append_value(e.bytes, static_cast<double>(v));
            break;
        }
      } else if (stored == DType::I64) {
        st::append_value(e.bytes, static_cast<std::int64_t>(v));
      } else {
        if (v < std::numeric_limits<std::int32_t>::min() ||
            v > std::numeric_limits<std::int32_t>::max())
          throw ValueError("safetensors.19", detail::str("tensor ", st::quote(name), ": element ",
                                                         i, " = ", v, " does not fit in I32"));
        st::append_value(e.bytes, static_cast<std::int32_t>(v));
      }
    }
    entries_.push_back(std::move(e));
  }

  std::vector<const Entry*> ordered() const {
    std::vector<const Entry*> out;
    for (const Entry& e : entries_) out.push_back(&e);
    std::sort(out.begin(), out.end(), [](const Entry* a, const Entry* b) {
      const auto sa = dtype_size(a->dtype), sb = dtype_size(b->dtype);
      return sa != sb ? sa > sb : a->name < b->name;
    });
    return out;
  }

  /// Length field + padded JSON header.
  std::vector<std::uint8_t> prefix() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::size_t offset = 0;
    for (const Entry* e : ordered()) {
      header[e->name] = {{"dtype", dtype_name(e->dtype)},
                         {"shape", e->shape},
                         {"data_offsets", {offset, offset + e->bytes.size()}}};
      offset += e->bytes.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
    std::vector<std::uint8_t> out(8 + text.size());
    std::uint64_t n = text.size();
    for (int i = 0; i < 8; ++i, n >>= 8)
      out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n);
    std::memcpy(out.data() + 8, text.data(), text.size());
    return out;
  }

  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace asrkit
