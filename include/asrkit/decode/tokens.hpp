// asrkit/decode/tokens.hpp - the output tokens of an acoustic model, by id and by spelling.
//
//   asrkit::TokenSet tokens = asrkit::read_tokens("tokens.txt");   // one token per line
//   tokens.size();  tokens.spelling(3);  tokens.id("a");
//   tokens.spell("cat");          // {id("c"), id("a"), id("t")}: longest match first
//
// A decoder needs the spellings to turn token ids into words (for a word-level LM, a lexicon,
// hotwords and the text it returns). Ids are line numbers; a line holds the token's spelling,
// optionally followed by whitespace and more fields (an index, a count), which are ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/io/file.hpp>

namespace asrkit {

class TokenSet {
 public:
  TokenSet() = default;
  /// ValueError "decode.5" if `spellings` is empty, has an empty spelling or a duplicate.
  explicit TokenSet(std::vector<std::string> spellings) : spellings_(std::move(spellings)) {
    if (spellings_.empty()) throw ValueError("decode.5", "TokenSet: the vocabulary is empty");
    for (std::size_t i = 0; i < spellings_.size(); ++i) {
      const std::string& s = spellings_[i];
      if (s.empty()) throw ValueError("decode.5", detail::str("TokenSet: token ", i, " has an empty spelling"));
      const auto [it, fresh] = ids_.emplace(s, static_cast<std::int32_t>(i));
      if (!fresh)
        throw ValueError("decode.5", detail::str("TokenSet: token ", i, " \"", s, "\" repeats token ", it->second));
      longest_ = std::max(longest_, s.size());
    }
  }

  std::size_t size() const noexcept { return spellings_.size(); }
  const std::string& spelling(std::int32_t id) const { return spellings_.at(static_cast<std::size_t>(id)); }
  /// The id of a spelling, or -1.
  std::int32_t id(std::string_view spelling) const {
    const auto it = ids_.find(std::string(spelling));
    return it == ids_.end() ? -1 : it->second;
  }
  /// Splits `word` into tokens, longest spelling first at each position; nullopt when some part
  /// of it is no token's spelling.
  std::optional<std::vector<std::int32_t>> spell(std::string_view word) const {
    std::vector<std::int32_t> out;
    std::size_t pos = 0;
    while (pos < word.size()) {
      std::size_t len = std::min(longest_, word.size() - pos);
      for (; len > 0; --len) {
        const std::int32_t k = id(word.substr(pos, len));
        if (k >= 0) {
          out.push_back(k);
          break;
        }
      }
      if (len == 0) return std::nullopt;
      pos += len;
    }
    return out;
  }

 private:
  std::vector<std::string> spellings_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::size_t longest_ = 0;
};

/// Reads a token list: one token per line, the first whitespace-separated field is its spelling.
/// FormatError "decode.6" on a blank line; IoError when the file cannot be read.
inline TokenSet read_tokens(const std::string& path) {
  std::vector<std::string> out;
  detail::for_each_line(path, [&](std::size_t line, std::string_view l) {
    const std::string_view field = l.substr(0, l.find_first_of(" \t"));
    if (field.empty())
      throw FormatError("decode.6", detail::str(path, ":", line, ": expected a token spelling, got an empty line"));
    out.emplace_back(field);
  });
  return TokenSet(std::move(out));
}

}  // namespace asrkit
