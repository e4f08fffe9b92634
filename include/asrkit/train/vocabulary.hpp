// asrkit/train/vocabulary.hpp - the character vocabulary of a CTC model.
//
//   auto vocab = asrkit::Vocabulary::english();        // <blank> <space> ' a..z (29 tokens)
//   std::vector<std::int32_t> ids = vocab.encode("it's");  // {11, 22, 2, 21}
//   std::string text = vocab.decode(ids);                  // "it's"
//   vocab.save("vocab.txt");                               // = tools/make-corpus's vocab.txt
//
// File format (stable): UTF-8, one token per line, '\n' line ends, line number (from 0) = id.
// Line 0 is `<blank>`, the CTC blank; the token `<space>` stands for ' '. Any other line is the
// token itself, normally one character (encode works per Unicode code point, so a longer token
// is never produced by encode but does decode).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <asrkit/core/error.hpp>

namespace asrkit {

/// What encode does with a character that is not in the vocabulary.
enum class OnUnknown { error, skip };

namespace detail {
namespace vocab {

inline constexpr const char* kBlank = "<blank>";
inline constexpr const char* kSpace = "<space>";

// Length of the UTF-8 sequence at s[i] (1..4), or 0 if it is not valid UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF are invalid too).
inline std::size_t utf8_length(const std::string& s, std::size_t i, std::uint32_t* cp = nullptr) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  std::size_t n;
  std::uint32_t c;
  if (b < 0x80) {
    n = 1, c = b;
  } else if ((b & 0xE0) == 0xC0) {
    n = 2, c = b & 0x1Fu;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, c = b & 0x0Fu;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, c = b & 0x07u;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (byte(i + k) & 0x3Fu);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kMin[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  if (cp) *cp = c;
  return n;
}

// A character as a message shows it: 'a', or '\n' (U+000A) style for anything unprintable and
// 'é' (U+00E9) for non-ASCII.
inline std::string describe(const std::string& ch, std::uint32_t cp) {
  static const char* hex = "0123456789ABCDEF";
  std::string code = "U+";
  for (int shift = cp > 0xFFFF ? 20 : 12; shift >= 0; shift -= 4) code += hex[(cp >> shift) & 15];
  if (cp == '\n') return "'\\n' (" + code + ")";
  if (cp == '\t') return "'\\t' (" + code + ")";
  if (cp == '\r') return "'\\r' (" + code + ")";
  if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) return code;
  if (cp < 0x80) return "'" + ch + "'";
  return "'" + ch + "' (" + code + ")";
}

// The text quoted in messages, cut at a code point boundary so the message stays short.
inline std::string excerpt(const std::string& text) {
  constexpr std::size_t kMax = 120;
  if (text.size() <= kMax) return "\"" + text + "\"";
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + text.substr(0, cut) + "...\" (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace vocab
}  // namespace detail

class Vocabulary {
 public:
  /// `tokens[0]` must be "<blank>"; "<space>" is stored as ' '. Use load/characters/english.
  explicit Vocabulary(const std::vector<std::string>& tokens,
                      const std::string& source = "tokens") {
    if (tokens.empty() || tokens[0] != detail::vocab::kBlank)
      throw FormatError("vocab.2", detail::str("vocabulary ", source, ": the first token (id 0) "
                                               "must be <blank>, got ",
                                               tokens.empty() ? "an empty vocabulary"
                                                              : "'" + tokens[0] + "'"));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string t = i > 0 && tokens[i] == detail::vocab::kSpace ? " " : tokens[i];
      if (t.empty())
        throw FormatError("vocab.4", detail::str("vocabulary ", source, ": token ", i,
                                                 " is empty"));
      for (std::size_t k = 0; k < t.size();) {
        const std::size_t n = detail::vocab::utf8_length(t, k);
        if (n == 0 || t[k] == '\n' || t[k] == '\r')
          throw FormatError("vocab.4", detail::str("vocabulary ", source, ": token ", i,
                                                   " is not valid UTF-8 or contains a line break"));
        k += n;
      }
      const auto [it, fresh] = ids_.emplace(t, static_cast<std::int32_t>(i));
      if (!fresh)
        throw FormatError("vocab.3", detail::str("vocabulary ", source, ": token ", i, " '",
                                                 tokens[i], "' duplicates token ", it->second));
      tokens_.push_back(t);
    }
  }

  /// Reads a vocabulary file (format above). IoError "vocab.1" if it cannot be read;
  /// FormatError "vocab.2" (empty, or line 0 not <blank>), "vocab.3" (duplicate), "vocab.4"
  /// (empty line or invalid UTF-8); messages name the file and line.
  static Vocabulary load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("vocab.1", detail::str("cannot open vocabulary '", path, "'"));
    std::vector<std::string> tokens;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
      tokens.push_back(line);
    }
    if (in.bad()) throw IoError("vocab.1", detail::str("error reading vocabulary '", path, "'"));
    return Vocabulary(tokens, "'" + path + "'");
  }

  /// <blank> followed by the characters of `chars` (UTF-8), in that order. ' ' becomes <space>.
  /// ValueError "vocab.8" for invalid UTF-8, a line break or a repeated character.
  static Vocabulary characters(const std::string& chars) {
    std::vector<std::string> tokens{detail::vocab::kBlank};
    for (std::size_t i = 0; i < chars.size();) {
      const std::size_t n = detail::vocab::utf8_length(chars, i);
      if (n == 0 || chars[i] == '\n' || chars[i] == '\r')
        throw ValueError("vocab.8", detail::str("Vocabulary::characters: byte ", i, " of ",
                                                detail::vocab::excerpt(chars),
                                                " is not a valid UTF-8 character or is a line "
                                                "break"));
      const std::string ch = chars.substr(i, n);
      for (std::size_t t = 1; t < tokens.size(); ++t)
        if (tokens[t] == (ch == " " ? detail::vocab::kSpace : ch))
          throw ValueError("vocab.8", detail::str("Vocabulary::characters: '", ch,
                                                  "' appears twice in ",
                                                  detail::vocab::excerpt(chars)));
      tokens.push_back(ch == " " ? detail::vocab::kSpace : ch);
      i += n;
    }
    return Vocabulary(tokens, "characters");
  }

  /// The default English set: <blank>, <space>, ', a..z (29 tokens, ids 0..28).
  static Vocabulary english() { return characters(" 'abcdefghijklmnopqrstuvwxyz"); }

  /// Writes the file format above (the inverse of load). IoError "vocab.1" on failure.
  void save(const std::string& path) const {
    std::string text;
    for (std::size_t i = 0; i < tokens_.size(); ++i)
      text += (i == 0                ? detail::vocab::kBlank
               : tokens_[i] == " " ? detail::vocab::kSpace
                                   : tokens_[i]) + std::string("\n");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError("vocab.1", detail::str("cannot open '", path, "' for writing"));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) throw IoError("vocab.1", detail::str("error writing vocabulary '", path, "'"));
  }

  /// Token ids of the characters of `text` (UTF-8, one id per code point). ValueError "vocab.5"
  /// for a character not in the vocabulary (unless on_unknown == skip), "vocab.6" for invalid
  /// UTF-8; both name the character or byte, its position and the text.
  std::vector<std::int32_t> encode(const std::string& text,
                                   OnUnknown on_unknown = OnUnknown::error) const {
    std::vector<std::int32_t> ids;
    ids.reserve(text.size());
    std::size_t index = 0;  // code points so far
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    for (std::size_t i = 0; i < text.size(); ++index) {
      std::uint32_t cp = 0;
      const std::size_t n = detail::vocab::utf8_length(text, i, &cp);
      if (n == 0)
        throw ValueError("vocab.6", detail::str("encode: invalid UTF-8 at byte ", i, " (0x",
                                                "0123456789ABCDEF"[byte(i) >> 4],
                                                "0123456789ABCDEF"[byte(i) & 15], ") of ",
                                                detail::vocab::excerpt(text)));
      const std::string ch = text.substr(i, n);
      const auto it = ids_.find(ch);
      if (it != ids_.end() && it->second != blank()) {
        ids.push_back(it->second);
      } else if (on_unknown == OnUnknown::error) {
        throw ValueError("vocab.5", detail::str("encode: character ",
                                                detail::vocab::describe(ch, cp), " at position ",
                                                index, " (byte ", i, ") of ",
                                                detail::vocab::excerpt(text),
                                                " is not in the vocabulary (", size(), " tokens)"));
      }
      i += n;
    }
    return ids;
  }

  /// The text of token ids; the blank stands for nothing. ValueError "vocab.7" for an id
  /// outside [0, size()).
  template <class Int>
  std::string decode(const std::vector<Int>& ids) const {
    std::string text;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto id = static_cast<long long>(ids[i]);
      if (id < 0 || id >= static_cast<long long>(tokens_.size()))
        throw ValueError("vocab.7", detail::str("decode: id ", id, " at position ", i,
                                                " is outside [0, ", size(), ")"));
      if (id != blank()) text += tokens_[static_cast<std::size_t>(id)];
    }
    return text;
  }

  /// Number of tokens including the blank (the model's output size V).
  std::int32_t size() const noexcept { return static_cast<std::int32_t>(tokens_.size()); }
  /// Id of the CTC blank (always 0).
  std::int32_t blank() const noexcept { return 0; }
  /// The text token `id` stands for (" " for <space>, "<blank>" for the blank).
  const std::string& token(std::int32_t id) const {
    if (id < 0 || id >= size())
      throw ValueError("vocab.7", detail::str("token: id ", id, " is outside [0, ", size(), ")"));
    return tokens_[static_cast<std::size_t>(id)];
  }
  /// Whether `ch` (one UTF-8 character) is a token.
  bool contains(const std::string& ch) const { return ch != tokens_[0] && ids_.count(ch) > 0; }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int32_t> ids_;
};

}  // namespace asrkit
