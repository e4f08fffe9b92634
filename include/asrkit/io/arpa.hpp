// asrkit/io/arpa.hpp - reading ARPA back-off n-gram language models (SRILM, KenLM, IRSTLM...).
//
//   asrkit::ArpaModel m = asrkit::read_arpa("lm.arpa");
//   m.order();                       // highest n
//   m.words[id];                     // the unigram vocabulary, in file order (id = unigram index)
//   const asrkit::ArpaOrder& bi = m.orders[1];          // the 2-grams
//   bi.find(ids);  bi.log10_prob[i];  bi.log10_backoff[i];
//
// Lines before `\data\` are ignored (as the format allows); blank lines, tabs or runs of spaces,
// trailing whitespace, CRLF and a missing back-off (= 0) are accepted. Everything else that is
// wrong is a FormatError "arpa.N" naming the line: see docs/ngram.md and docs/errors.md. Words
// are interned while parsing (unigrams define the vocabulary), so each order is stored as a flat
// array of word ids with an open-addressing index, which decode/ngram.hpp reuses for scoring.
// Declared counts are only a hint: what is reserved up front is capped, the rest grows with the
// entries actually present.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/io/file.hpp>

namespace asrkit {

namespace detail {

/// An open-addressing hash set of fixed-length word-id tuples (the n-grams of one order). It owns
/// the packed tuples (n ids per entry, entry i at ids()[i*n]); entries keep their insertion index.
class IdTupleTable {
 public:
  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();

  IdTupleTable() = default;
  explicit IdTupleTable(int n) : n_(n) {}

  int n() const noexcept { return n_; }
  std::size_t size() const noexcept {
    return n_ == 0 ? 0 : ids_.size() / static_cast<std::size_t>(n_);
  }
  const std::vector<std::uint32_t>& ids() const noexcept { return ids_; }
  const std::uint32_t* tuple(std::size_t i) const noexcept { return ids_.data() + i * n_; }

  void reserve(std::size_t entries) {
    ids_.reserve(entries * static_cast<std::size_t>(n_));
    if (entries * 2 > slots_.size()) rehash(capacity_for(entries));
  }

  /// The index of the tuple key[0..n), or npos.
  std::uint32_t find(const std::uint32_t* key) const noexcept {
    if (slots_.empty()) return npos;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t s = hash(key, n_) & mask;; s = (s + 1) & mask) {
      const std::uint32_t e = slots_[s];
      if (e == npos) return npos;
      if (std::memcmp(tuple(e), key, sizeof(std::uint32_t) * static_cast<std::size_t>(n_)) == 0)
        return e;
    }
  }

  /// Inserts key[0..n) if absent; returns its index and whether it was new.
  std::pair<std::uint32_t, bool> insert(const std::uint32_t* key) {
    const std::uint32_t found = find(key);
    if (found != npos) return {found, false};
    const std::size_t index = size();
    if (index >= npos - 1) throw std::length_error("asrkit: too many n-grams for 32-bit indices");
    if ((index + 1) * 2 > slots_.size()) rehash(capacity_for(index + 1));  // load <= 1/2
    ids_.insert(ids_.end(), key, key + n_);
    place(static_cast<std::uint32_t>(index));
    return {static_cast<std::uint32_t>(index), true};
  }

  /// FNV-style mixing of each id, then a SplitMix64 finalizer (good spread for linear probing).
  static std::size_t hash(const std::uint32_t* key, int n) noexcept {
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ static_cast<std::uint64_t>(n);
    for (int i = 0; i < n; ++i) h = (h ^ key[i]) * 0x100000001B3ull + 0x632BE59BD9B4E019ull;
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return static_cast<std::size_t>(h);
  }

 private:
  static std::size_t capacity_for(std::size_t entries) {
    std::size_t c = 16;
    while (c < entries * 2) c *= 2;
    return c;
  }
  void place(std::uint32_t index) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t s = hash(tuple(index), n_) & mask;
    while (slots_[s] != npos) s = (s + 1) & mask;
    slots_[s] = index;
  }
  void rehash(std::size_t capacity) {
    slots_.assign(capacity, npos);
    const std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) place(static_cast<std::uint32_t>(i));
  }

  int n_ = 0;
  std::vector<std::uint32_t> ids_;
  std::vector<std::uint32_t> slots_;
};

}  // namespace detail

/// The n-grams of one order n: entry i has words table.tuple(i)[0..n) (ids into
/// ArpaModel::words), log10_prob[i] and log10_backoff[i] (0 where the file gave none).
struct ArpaOrder {
  detail::IdTupleTable table;
  std::vector<float> log10_prob;
  std::vector<float> log10_backoff;
  std::uint64_t declared_count = 0;  ///< from `ngram n=count`; equals size() after parsing

  int n() const noexcept { return table.n(); }
  std::size_t size() const noexcept { return table.size(); }
  /// Index of the n-gram ids[0..n), or IdTupleTable::npos.
  std::uint32_t find(const std::uint32_t* ids) const noexcept { return table.find(ids); }
};

/// A parsed ARPA file. words[id] is the unigram with index id; orders[k] holds the (k+1)-grams.
struct ArpaModel {
  std::vector<std::string> words;
  std::vector<ArpaOrder> orders;

  int order() const noexcept { return static_cast<int>(orders.size()); }
};

/// Highest order parse_arpa accepts (guards against absurd `\data\` sections).
inline constexpr int kArpaMaxOrder = 32;

namespace detail {
namespace arpa {

// Declared counts are a reserve hint only; a hostile `ngram 1=10^12` must not allocate.
inline constexpr std::uint64_t kMaxReserve = 1u << 16;
inline constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

inline bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on runs of blanks into at most max_fields + 1 tokens (the extra one flags "too many").
inline std::size_t split(std::string_view s, std::string_view* out, std::size_t max_fields) {
  std::size_t n = 0;
  std::size_t i = 0;
  while (i < s.size() && n <= max_fields) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i == s.size()) break;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    out[n++] = s.substr(start, i - start);
  }
  return n;
}

// Shows a token or line in a message: quoted, shortened, control bytes (but tabs) escaped.
inline std::string show(std::string_view s) {
  std::string out = "'";
  const std::size_t limit = 60;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "'";
}

// A log10 value: a decimal number that fits a float, or -inf. NaN and +inf are rejected.
inline bool parse_log10(std::string_view token, float& value) noexcept {
  double d = 0.0;
  const char* first = token.data();
  const char* last = first + token.size();
  if (first != last && *first == '+') ++first;  // from_chars takes no '+'
  const auto r = std::from_chars(first, last, d);
  if (r.ec != std::errc() || r.ptr != last || std::isnan(d)) return false;
  const auto f = static_cast<float>(d);
  if (f == std::numeric_limits<float>::infinity()) return false;
  if (std::isinf(f) && !std::isinf(d)) return false;  // finite but beyond float
  value = f;
  return true;
}

inline bool parse_uint(std::string_view s, std::uint64_t& value) noexcept {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), value);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// `\N-grams:` -> N (0 when the line is not of that form).
inline int section_order(std::string_view line) noexcept {
  if (line.size() < 9 || line.front() != '\\' || line.substr(line.size() - 7) != "-grams:")
    return 0;
  std::uint64_t n = 0;
  if (!parse_uint(line.substr(1, line.size() - 8), n) || n < 1 || n > 1000000) return 0;
  return static_cast<int>(n);
}

// Walks the text line by line (LF or CRLF), counting from 1.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  /// The next line, trimmed; false at the end of the text.
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;  // a final '\n' starts no further line
    const std::size_t nl = text_.find('\n', pos_);
    const std::size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = trim(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    ++number_;
    return true;
  }
  /// The next non-blank line; false at the end of the text.
  bool next_nonblank(std::string_view& line) {
    while (next(line))
      if (!line.empty()) return true;
    return false;
  }
  std::size_t number() const noexcept { return number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t number_ = 0;
};

inline std::string where(std::size_t line) { return detail::str("ARPA line ", line, ": "); }


}  // namespace arpa
}  // namespace detail

/// Parses an ARPA language model held in memory. Throws FormatError "arpa.N" (see
/// docs/errors.md) on malformed input; the message names the line, what was expected and found.
inline ArpaModel parse_arpa(std::string_view text) {
  namespace a = detail::arpa;
  a::Lines lines(text);
  std::string_view line;

  // ---- header: everything up to `\data\` is ignored ---------------------------------------
  bool found_data = false;
  while (lines.next(line))
    if (line == "\\data\\") {
      found_data = true;
      break;
    }
  if (!found_data)
    throw FormatError("arpa.1", detail::str("ARPA: no '\\data\\' line in ", lines.number(),
                                            " lines; not an ARPA language model"));

  // ---- \data\: `ngram N=count`, N = 1, 2, ... -------------------------------------------------
  ArpaModel model;
  bool have_line = false;
  while ((have_line = lines.next_nonblank(line))) {
    if (line.substr(0, 5) != "ngram" || line.size() == 5 || !a::is_space(line[5])) break;
    // Tolerate blanks around '=' ("ngram 1 = 10", IRSTLM's "ngram  1=        11").
    std::string compact;
    for (char c : line.substr(5))
      if (!a::is_space(c)) compact += c;
    const std::size_t eq = compact.find('=');
    std::uint64_t n = 0, count = 0;
    if (eq == std::string::npos || !a::parse_uint(compact.substr(0, eq), n) ||
        !a::parse_uint(std::string_view(compact).substr(eq + 1), count) || count > a::kMaxCount)
      throw FormatError(
          "arpa.2", detail::str(a::where(lines.number()),
                                "expected 'ngram N=count' (count <= 2^40), found ", a::show(line)));
    const std::uint64_t expected = model.orders.size() + 1;
    if (n != expected || n > static_cast<std::uint64_t>(kArpaMaxOrder))
      throw FormatError("arpa.3",
                        detail::str(a::where(lines.number()), "expected 'ngram ", expected,
                                    "=count' (orders 1, 2, ... in sequence, "
                                    "at most ",
                                    kArpaMaxOrder, "), found ", a::show(line)));
    ArpaOrder order;
    order.table = detail::IdTupleTable(static_cast<int>(n));
    order.declared_count = count;
    model.orders.push_back(std::move(order));
  }
  if (model.orders.empty())
    throw FormatError("arpa.2", detail::str(a::where(lines.number()),
                                            "expected 'ngram 1=count' "
                                            "after '\\data\\', found ",
                                            have_line ? a::show(line) : "the end of the text"));

  // ---- \N-grams: sections, then \end\ -------------------------------------------------------
  std::unordered_map<std::string_view, std::uint32_t> vocab;
  std::vector<std::string_view> fields(static_cast<std::size_t>(model.order()) + 3);
  std::vector<std::uint32_t> key(static_cast<std::size_t>(model.order()));
  int current = 0;  // order of the section being read (0: none yet)
  auto close_section = [&](std::size_t at) {
    if (current == 0) return;
    const ArpaOrder& o = model.orders[static_cast<std::size_t>(current - 1)];
    if (o.size() != o.declared_count)
      throw FormatError("arpa.7", detail::str(a::where(at), "'\\data\\' declares ",
                                              o.declared_count, " ", current, "-grams, the '\\",
                                              current, "-grams:' section has ", o.size()));
  };
  for (;;) {
    if (!have_line) {
      throw FormatError("arpa.10", detail::str("ARPA: the text ends at line ", lines.number(),
                                               " without '\\end\\' (truncated file?)",
                                               current ? detail::str(" inside the '\\", current,
                                                                     "-grams:' section")
                                                       : std::string()));
    }
    if (line.front() == '\\') {
      const std::size_t at = lines.number();
      const bool is_end = line == "\\end\\";
      const int n = is_end ? 0 : a::section_order(line);
      if (is_end && current == model.order()) {
        close_section(at);
        break;
      }
      if (n != current + 1 || current == model.order()) {
        const std::string expected = current == model.order()
                                         ? std::string("'\\end\\'")
                                         : detail::str("'\\", current + 1, "-grams:'");
        throw FormatError(
            "arpa.4",
            detail::str(a::where(at), "expected ", expected, " (sections in order 1.. ",
                        model.order(), " as declared in '\\data\\'), found ", a::show(line)));
      }
      close_section(at);
      current = n;
      ArpaOrder& o = model.orders[static_cast<std::size_t>(n - 1)];
      const std::size_t hint = static_cast<std::size_t>(std::min(o.declared_count, a::kMaxReserve));
      o.table.reserve(hint);
      o.log10_prob.reserve(hint);
      o.log10_backoff.reserve(hint);
      if (n == 1) vocab.reserve(hint);
    } else {
      if (current == 0) {
        throw FormatError("arpa.4", detail::str(a::where(lines.number()),
                                                "expected "
                                                "'\\1-grams:' after the counts, found ",
                                                a::show(line)));
      }
      ArpaOrder& o = model.orders[static_cast<std::size_t>(current - 1)];
      const std::size_t n = static_cast<std::size_t>(current);
      const std::size_t got = a::split(line, fields.data(), n + 2);
      float prob = 0.f, backoff = 0.f;
      if (!a::parse_log10(fields[0], prob))
        throw FormatError("arpa.5", detail::str(a::where(lines.number()),
                                                "expected a log10 "
                                                "probability (a number or -inf), found ",
                                                a::show(fields[0]), " in ", a::show(line)));
      const bool backoff_ok = got == n + 2 && a::parse_log10(fields[n + 1], backoff);
      if (got < n + 1 || got > n + 2 || (got == n + 2 && !backoff_ok)) {
        const char* what = got < n + 1   ? "too few words"
                           : got > n + 2 ? "too many fields"
                                         : "too many words, or a back-off that is not a number";
        throw FormatError("arpa.6", detail::str(a::where(lines.number()), "a ", n,
                                                "-gram line "
                                                "needs a log10 probability, ",
                                                n, " word", n == 1 ? "" : "s",
                                                " and an optional numeric "
                                                "back-off; ",
                                                what, " in ", a::show(line)));
      }
      if (o.size() >= o.declared_count)
        throw FormatError("arpa.7", detail::str(a::where(lines.number()), "'\\data\\' declares ",
                                                o.declared_count, " ", n,
                                                "-grams, the section "
                                                "has more: ",
                                                a::show(line)));
      if (n == 1) {
        const auto id = static_cast<std::uint32_t>(model.words.size());
        if (!vocab.emplace(fields[1], id).second)
          throw FormatError("arpa.8", detail::str(a::where(lines.number()), "duplicate 1-gram ",
                                                  a::show(fields[1])));
        key[0] = id;
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          const auto it = vocab.find(fields[i + 1]);
          if (it == vocab.end())
            throw FormatError("arpa.9",
                              detail::str(a::where(lines.number()), "word ", a::show(fields[i + 1]),
                                          " of a ", n, "-gram is not among the 1-grams"));
          key[i] = it->second;
        }
      }
      if (!o.table.insert(key.data()).second)
        throw FormatError("arpa.8", detail::str(a::where(lines.number()), "duplicate ", n, "-gram ",
                                                a::show(line)));
      if (n == 1) model.words.emplace_back(fields[1]);
      o.log10_prob.push_back(prob);
      o.log10_backoff.push_back(backoff);
    }
    have_line = lines.next_nonblank(line);
  }
  return model;
}

/// Reads and parses an ARPA file. IoError "io.1"/"io.2" if it cannot be opened/read.
inline ArpaModel read_arpa(const std::string& path) {
  const std::vector<std::uint8_t> bytes = detail::read_file(path);
  return parse_arpa(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace asrkit
