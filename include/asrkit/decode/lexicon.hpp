// asrkit/decode/lexicon.hpp - the words a decoder may output and how each is spelled in tokens.
//
//   asrkit::Lexicon lex = asrkit::read_lexicon("lexicon.txt");   // "word<TAB>c a t |" per line
//   lex.add("cat", {"c", "a", "t"});
//   asrkit::Lexicon lm_words = asrkit::Lexicon::spelled(lm, tokens);  // every LM word, spelled
//
// Spellings are token strings, not ids, so one lexicon serves any TokenSet that can spell it;
// the decoder resolves them (and drops a trailing word-boundary token, as flashlight-style
// lexicons end each spelling with the separator "|"). A word may have several spellings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/decode/ngram.hpp>
#include <asrkit/decode/tokens.hpp>
#include <asrkit/io/file.hpp>

namespace asrkit {

class Lexicon {
 public:
  struct Entry {
    std::string word;
    std::vector<std::string> spelling;  ///< token spellings, in order
  };

  /// ValueError "decode.6" for an empty word or spelling.
  void add(std::string word, std::vector<std::string> spelling) {
    if (word.empty() || spelling.empty())
      throw ValueError("decode.6", detail::str("Lexicon::add: word \"", word, "\" needs a non-empty word and spelling"));
    entries_.push_back({std::move(word), std::move(spelling)});
  }

  std::size_t size() const noexcept { return entries_.size(); }
  const std::vector<Entry>& entries() const noexcept { return entries_; }

  /// Every word of the LM's vocabulary that `tokens` can spell (longest token first), except
  /// <s>, </s> and <unk>: the word list of a lexicon-free decoder that scores whole words.
  static Lexicon spelled(const NgramLm& lm, const TokenSet& tokens) {
    Lexicon lex;
    for (WordId w = 0; w < lm.vocab_size(); ++w) {
      const std::string& word = lm.word(w);
      if (word == "<s>" || word == "</s>" || word == "<unk>") continue;
      if (const auto ids = tokens.spell(word)) {
        std::vector<std::string> spelling;
        for (std::int32_t k : *ids) spelling.push_back(tokens.spelling(k));
        lex.add(word, std::move(spelling));
      }
    }
    return lex;
  }

 private:
  std::vector<Entry> entries_;
};

/// Reads a lexicon: per line a word, then whitespace (a tab or spaces), then its spelling as
/// whitespace-separated tokens. Blank lines are skipped. FormatError "decode.6" names the line
/// of a word without a spelling.
inline Lexicon read_lexicon(const std::string& path) {
  Lexicon lex;
  detail::for_each_line(path, [&](std::size_t line, std::string_view l) {
    const auto fields = detail::split_fields(l);
    if (fields.empty()) return;
    if (fields.size() < 2)
      throw FormatError("decode.6", detail::str(path, ":", line, ": expected a word and its spelling, got \"",
                                                std::string(l), "\""));
    lex.add(std::string(fields.front()), std::vector<std::string>(fields.begin() + 1, fields.end()));
  });
  return lex;
}

}  // namespace asrkit
