// asrkit-decode: CTC log-probabilities in a safetensors file -> n-best text with timestamps.
//
//   asrkit-decode --log-probs emissions.safetensors --tokens tokens.txt --boundary "|"
//                 [--lm lm.arpa --alpha 0.5 --beta 1.0] [--lexicon lexicon.txt] [--json]
//
// Run with --help for every option. The tensor (default "log_probs") is [T, V] or time-major
// [T, B, V] (--batch-first for [B, T, V]); an optional I32/I64 tensor named by --lengths gives
// each item's frames. Everything the decoder does is asrkit::CtcBeamDecoder (docs/decoding.md).
#include <asrkit/decode/beam_search.hpp>
#include <asrkit/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include "cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

const char* const kUsage = R"(usage: asrkit-decode --log-probs FILE --tokens FILE [options]

input
  --log-probs FILE      safetensors file with natural-log CTC posteriors
  --tensor NAME         tensor to read (default log_probs): [T, V] or [T, B, V]
  --batch-first         the tensor is [B, T, V]
  --lengths NAME        I32/I64 tensor [B] of valid frames per item
  --tokens FILE         token list, one per line (line number = label id)
  --blank N             blank label (default 0)
  --boundary TOKEN      word-boundary token, e.g. "|" (needed for words, lexicon, word LM)
search
  --beam N              beam size (default 100)
  --nbest N             hypotheses per item (default 1)
  --threshold X         drop hypotheses more than X below the best (default: none)
  --prune-prob P        DS2 pruning: labels reaching cumulative probability P (default 1)
  --prune-k K           DS2 pruning: at most K labels per frame (default: all)
language model, lexicon, hotwords
  --lm FILE             ARPA n-gram model
  --lm-unit word|token  what the LM scores (default word)
  --alpha A             LM weight (default 0.5)
  --beta B              word bonus (default 0)
  --lexicon FILE        "word<TAB>t o k e n s" per line: output only these words
  --soft-lexicon        allow other words too, with --unk-penalty each
  --unk-penalty X       added per unknown word (<= 0, default 0)
  --hotword PHRASE=BOOST  boost a word or phrase (repeatable)
output
  --json                JSON instead of text
  --frame-shift S       seconds per frame for times (default 0.01; 0: print frames)
  --threads N           decode items on N threads
)";

const asrkit_cli::Tool kTool{"asrkit-decode", kUsage};

[[noreturn]] void usage_error(const std::string& what) { kTool.error(what); }

struct Args {
  std::string log_probs, tensor = "log_probs", lengths, tokens, boundary, lm, lexicon;
  bool batch_first = false, json = false;
  asrkit::DecoderOptions o;
  std::vector<asrkit::Hotword> hotwords;
  double frame_shift = 0.01;
  int threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  a.o.beam_size = 100;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& flag = args.flag();
    if (flag == "--log-probs") a.log_probs = args.value();
    else if (flag == "--tensor") a.tensor = args.value();
    else if (flag == "--batch-first") a.batch_first = true;
    else if (flag == "--lengths") a.lengths = args.value();
    else if (flag == "--tokens") a.tokens = args.value();
    else if (flag == "--blank") a.o.blank = static_cast<int>(args.number());
    else if (flag == "--boundary") a.boundary = args.value();
    else if (flag == "--beam") a.o.beam_size = static_cast<asrkit::index_t>(args.number());
    else if (flag == "--nbest") a.o.nbest = static_cast<asrkit::index_t>(args.number());
    else if (flag == "--threshold") a.o.beam_threshold = args.number();
    else if (flag == "--prune-prob") a.o.token_cumulative_prob = args.number();
    else if (flag == "--prune-k") a.o.token_limit = static_cast<asrkit::index_t>(args.number());
    else if (flag == "--lm") a.lm = args.value();
    else if (flag == "--lm-unit") {
      const std::string u = args.value();
      if (u != "word" && u != "token") usage_error("--lm-unit is word or token, got \"" + u + "\"");
      a.o.lm_unit = u == "word" ? asrkit::LmUnit::word : asrkit::LmUnit::token;
    } else if (flag == "--alpha") a.o.lm_weight = args.number();
    else if (flag == "--beta") a.o.word_bonus = args.number();
    else if (flag == "--lexicon") a.lexicon = args.value();
    else if (flag == "--soft-lexicon") a.o.lexicon_constrained = false;
    else if (flag == "--unk-penalty") a.o.unknown_word_penalty = args.number();
    else if (flag == "--hotword") {
      const std::string h = args.value();
      const auto eq = h.rfind('=');
      if (eq == std::string::npos) usage_error("--hotword expects PHRASE=BOOST, got \"" + h + "\"");
      a.hotwords.push_back({h.substr(0, eq), kTool.number(flag, h.substr(eq + 1))});
    } else if (flag == "--json") a.json = true;
    else if (flag == "--frame-shift") a.frame_shift = args.number();
    else if (flag == "--threads") a.threads = static_cast<int>(args.number());
    else usage_error("unknown option " + flag);
  }
  if (a.log_probs.empty() || a.tokens.empty()) usage_error("--log-probs and --tokens are required");
  return a;
}

// Time of a frame boundary: seconds, or the frame itself with --frame-shift 0.
double when(const Args& a, asrkit::index_t frame) {
  return a.frame_shift > 0 ? static_cast<double>(frame) * a.frame_shift : static_cast<double>(frame);
}

int run(const Args& a) {
  if (a.threads > 0) asrkit::set_num_threads(a.threads);
  asrkit::TokenSet tokens = asrkit::read_tokens(a.tokens);
  asrkit::DecoderOptions o = a.o;
  if (!a.boundary.empty()) {
    o.word_boundary = tokens.id(a.boundary);
    if (o.word_boundary < 0) usage_error("--boundary \"" + a.boundary + "\" is not in " + a.tokens);
  }
  std::shared_ptr<const asrkit::NgramLm> lm;
  if (!a.lm.empty()) lm = std::make_shared<const asrkit::NgramLm>(asrkit::read_arpa(a.lm));
  std::unique_ptr<asrkit::Lexicon> lexicon;
  if (!a.lexicon.empty()) lexicon = std::make_unique<asrkit::Lexicon>(asrkit::read_lexicon(a.lexicon));
  const asrkit::CtcBeamDecoder decoder(std::move(tokens), o, lm, lexicon.get(), a.hotwords);

  const auto file = asrkit::SafetensorsFile::open(a.log_probs);
  asrkit::Tensor<float> lp = file.read<float>(a.tensor);
  if (lp.rank() == 2) lp = asrkit::Tensor<float>(lp.reshape({lp.dim(0), 1, lp.dim(1)}));
  if (lp.rank() != 3)
    usage_error("tensor \"" + a.tensor + "\" must be [T, V] or [T, B, V], got " + lp.shape().str());
  if (a.batch_first) {  // [B, T, V] -> [T, B, V]
    asrkit::Tensor<float> tm({lp.dim(1), lp.dim(0), lp.dim(2)});
    for (asrkit::index_t b = 0; b < lp.dim(0); ++b)
      for (asrkit::index_t t = 0; t < lp.dim(1); ++t)
        for (asrkit::index_t k = 0; k < lp.dim(2); ++k) tm(t, b, k) = lp(b, t, k);
    lp = std::move(tm);
  }
  std::vector<asrkit::index_t> lengths(static_cast<std::size_t>(lp.dim(1)), lp.dim(0));
  if (!a.lengths.empty()) {
    const auto l = file.read<std::int64_t>(a.lengths);
    if (l.numel() != lp.dim(1))
      usage_error("--lengths \"" + a.lengths + "\" has " + std::to_string(l.numel()) + " values for " +
                  std::to_string(lp.dim(1)) + " items");
    for (asrkit::index_t b = 0; b < l.numel(); ++b) lengths[static_cast<std::size_t>(b)] = l.data()[b];
  }
  const auto results = decoder.decode_batch(lp.view(), lengths);

  const auto& ts = decoder.tokens();
  auto text = [&](const asrkit::Hypothesis& h) {
    std::string s;
    if (o.word_boundary < 0) {
      for (auto k : h.tokens) s += ts.spelling(k);
    } else {
      for (const auto& w : h.words) s += (s.empty() ? "" : " ") + w.text;
    }
    return s;
  };
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t b = 0; b < results.size(); ++b) {
      nlohmann::json nbest = nlohmann::json::array();
      for (const auto& h : results[b]) {
        nlohmann::json words = nlohmann::json::array(), toks = nlohmann::json::array();
        for (const auto& w : h.words) words.push_back({{"word", w.text}, {"start", when(a, w.start)}, {"end", when(a, w.end)}});
        for (std::size_t i = 0; i < h.tokens.size(); ++i)
          toks.push_back({{"token", ts.spelling(h.tokens[i])}, {"id", h.tokens[i]},
                          {"start", when(a, h.start_frames[i])}, {"end", when(a, h.end_frames[i])}});
        nbest.push_back({{"text", text(h)}, {"score", h.score}, {"acoustic", h.acoustic}, {"lm", h.lm},
                         {"boost", h.boost}, {"words", words}, {"tokens", toks}});
      }
      out.push_back({{"item", b}, {"frames", lengths[b]}, {"nbest", nbest}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (std::size_t b = 0; b < results.size(); ++b)
    for (std::size_t r = 0; r < results[b].size(); ++r) {
      const auto& h = results[b][r];
      std::printf("%zu\t%zu\t%.4f\t%s\n", b, r + 1, h.score, text(h).c_str());
      for (const auto& w : h.words) std::printf("\t\t%s\t%.3f\t%.3f\n", w.text.c_str(), when(a, w.start), when(a, w.end));
    }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return kTool.guarded([&] { return run(args); });
}
