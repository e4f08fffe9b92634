// CTC prefix beam search, ms per utterance, on the workloads of bench/decode_workloads.py
// (T = 500; V = 29 letters "peaky" and "hard", V = 5000 "mandarin"), single thread.
//
//   /usr/bin/python3 bench/decode_workloads.py /tmp/decode-work
//   build/bench/bench_decode --workdir=/tmp/decode-work [--best=DIR] [--benchmark_filter=...]
//
// Configurations mirror the anchors of bench/decode_compare.py (flashlight-text, ctcdecode):
//   nolm:    lexicon-free, no LM, no label pruning;
//   lm_lex:  word 3-gram (irstlm) + lexicon, alpha 0.5, beta 1.0, no label pruning;
//   full / ds2: mandarin without LM, all 5000 labels per frame or DS2 pruning (p 0.99, K 40).
// Counters: ms_per_utt, and cer (character error rate of the 1-best against the references).
#include <asrkit/decode/beam_search.hpp>
#include <asrkit/decode/metrics.hpp>
#include <asrkit/io/safetensors.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

// 1-best transcripts per benchmark, written with --best=DIR (one file per benchmark, one line
// per utterance) so that bench/decode_compare.py can diff them against the anchors'.
std::map<std::string, std::vector<std::string>>& best_by_name() {
  static std::map<std::string, std::vector<std::string>> m;
  return m;
}

struct Workload {
  asrkit::Tensor<float> log_probs;  // [N, T, V]
  std::vector<std::string> refs;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}

Workload load(const std::string& dir, const std::string& profile) {
  Workload w;
  w.log_probs = asrkit::SafetensorsFile::open(dir + "/" + profile + ".safetensors").read<float>("log_probs");
  w.refs = read_lines(dir + (profile == "mandarin" ? "/refs_mandarin.txt" : "/refs.txt"));
  return w;
}

// The 1-best as text: words joined by spaces (letters), or token ids (mandarin).
std::string text_of(const asrkit::Hypothesis& h, bool words) {
  std::string s;
  if (words) {
    for (const auto& w : h.words) s += (s.empty() ? "" : " ") + w.text;
  } else {
    for (auto k : h.tokens) s += (s.empty() ? "" : " ") + std::to_string(k);
  }
  return s;
}

void bm_decode(benchmark::State& state, std::string name, std::shared_ptr<const Workload> w,
               std::shared_ptr<const asrkit::CtcBeamDecoder> decoder, bool words) {
  asrkit::set_num_threads(1);
  const asrkit::index_t n = w->log_probs.dim(0);
  std::vector<std::string> best(static_cast<std::size_t>(n));
  for (auto _ : state)
    for (asrkit::index_t i = 0; i < n; ++i) {
      auto nbest = decoder->decode(w->log_probs[i]);
      benchmark::DoNotOptimize(nbest.data());
      if (!nbest.empty()) best[static_cast<std::size_t>(i)] = text_of(nbest[0], words);
    }
  // CER over characters (letters) or over token ids (mandarin: one "word" per token).
  asrkit::EditCounts errors;
  for (asrkit::index_t i = 0; i < n; ++i) {
    const auto& ref = w->refs[static_cast<std::size_t>(i)];
    const auto& hyp = best[static_cast<std::size_t>(i)];
    errors += words ? asrkit::char_errors(ref, hyp) : asrkit::word_errors(ref, hyp);
  }
  state.counters["ms_per_utt"] =
      benchmark::Counter(static_cast<double>(n) * 1e-3, benchmark::Counter::kIsIterationInvariantRate |
                                                            benchmark::Counter::kInvert);
  state.counters["cer"] = errors.error_rate();
  best_by_name()[name] = best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, best_dir;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--workdir=", 10) == 0)
      dir = argv[i] + 10;
    else if (std::strncmp(argv[i], "--best=", 7) == 0)
      best_dir = argv[i] + 7;
    else
      args.push_back(argv[i]);
  }
  if (dir.empty()) {
    std::fprintf(stderr, "bench_decode: pass --workdir=DIR made by bench/decode_workloads.py\n");
    return 2;
  }
  const auto tokens = asrkit::read_tokens(dir + "/tokens.txt");
  const auto lm = std::make_shared<const asrkit::NgramLm>(asrkit::read_arpa(dir + "/lm.arpa"));
  const auto lexicon = asrkit::read_lexicon(dir + "/lexicon.txt");
  for (const std::string profile : {"peaky", "hard"}) {
    auto w = std::make_shared<const Workload>(load(dir, profile));
    for (int beam : {16, 100, 500})
      for (const std::string config : {"nolm", "lm_lex"}) {
        asrkit::DecoderOptions o;
        o.blank = 0;
        o.word_boundary = tokens.id("|");
        o.beam_size = beam;
        std::shared_ptr<const asrkit::CtcBeamDecoder> d;
        if (config == "nolm") {
          d = std::make_shared<const asrkit::CtcBeamDecoder>(tokens, o);
        } else {
          o.lm_weight = 0.5;
          o.word_bonus = 1.0;
          d = std::make_shared<const asrkit::CtcBeamDecoder>(tokens, o, lm, &lexicon);
        }
        const std::string name = "decode/" + profile + "/beam" + std::to_string(beam) + "/" + config;
        benchmark::RegisterBenchmark(name.c_str(), bm_decode, name, w, d, true)
            ->Unit(benchmark::kMillisecond)
            ->MeasureProcessCPUTime()
            ->UseRealTime();
      }
  }
  {
    auto w = std::make_shared<const Workload>(load(dir, "mandarin"));
    std::vector<std::string> names;
    for (asrkit::index_t k = 0; k < w->log_probs.dim(2); ++k) names.push_back(std::to_string(k));
    const asrkit::TokenSet ids(names);
    for (int beam : {16, 100})
      for (const std::string config : {"full", "ds2"}) {
        asrkit::DecoderOptions o;
        o.beam_size = beam;
        if (config == "ds2") {
          o.token_cumulative_prob = 0.99;
          o.token_limit = 40;
        }
        auto d = std::make_shared<const asrkit::CtcBeamDecoder>(ids, o);
        const std::string name = "decode/mandarin/beam" + std::to_string(beam) + "/" + config;
        benchmark::RegisterBenchmark(name.c_str(), bm_decode, name, w, d, false)
            ->Unit(benchmark::kMillisecond)
            ->MeasureProcessCPUTime()
            ->UseRealTime();
      }
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  if (!best_dir.empty())
    for (const auto& [name, lines] : best_by_name()) {
      std::string file = name;
      for (char& c : file)
        if (c == '/') c = '_';
      std::ofstream f(best_dir + "/" + file + ".txt");
      for (const auto& line : lines) f << line << "\n";
    }
  return 0;
}
