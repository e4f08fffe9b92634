// libFuzzer target for the ARPA reader and the n-gram scorer: any input must parse or throw an
// asrkit::Error; a parsed model must build and score word sequences drawn from the input bytes
// without crashing. ASan and UBSan catch the rest (out-of-bounds, overflow, huge allocations).
#include <asrkit/decode/ngram.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const asrkit::ArpaModel model = asrkit::parse_arpa(text);
    const asrkit::NgramLm lm(model);
    // Word ids from the input bytes (taken from the end, which the parser saw as text too); the
    // id past the vocabulary is unk_id() when there is no <unk>.
    const std::size_t vocab = lm.vocab_size() + (lm.has_unk() ? 0 : 1);
    for (int sentence = 0; sentence < 4; ++sentence) {
      asrkit::LmState s = sentence % 2 == 0 ? lm.begin_sentence() : lm.null_context();
      double total = 0.0;
      for (std::size_t i = 0; i < 12 && i < size; ++i) {
        const std::uint8_t byte = data[size - 1 - (i * 7 + sentence * 3) % size];
        const auto w = static_cast<asrkit::WordId>((byte + i * 31u) % vocab);
        asrkit::LmState next;
        total += lm.score(s, w, &next);
        // A state holds at most order - 1 words and only zeros past its length.
        if (next.length >= lm.order() && next.length > 0) __builtin_trap();
        for (std::size_t k = next.length; k < next.words.size(); ++k)
          if (next.words[k] != 0) __builtin_trap();
        s = next;
      }
      // (No NaN check: a hostile model may list +3e38 back-offs and -inf probabilities.)
      total += lm.end_sentence(s);
      (void)total;
    }
    // Word by word and the sentence helper agree on the spelled words.
    if (lm.vocab_size() > 0) {
      const std::string& w = lm.word(static_cast<asrkit::WordId>(size % lm.vocab_size()));
      (void)lm.score_sentence({std::string_view(w), std::string_view(w)});
    }
  } catch (const asrkit::Error&) {
  }
  return 0;
}
