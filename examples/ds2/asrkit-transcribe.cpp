// asrkit-transcribe: speech to text with a Deep Speech 2 checkpoint of asrkit-train-ds2.
//
//   asrkit-transcribe model.safetensors a.wav b.wav ...        [--lm lm.arpa --alpha 0.8 --beta 1]
//   asrkit-transcribe model.safetensors --manifest test.jsonl  (prints WER/CER over the manifest)
//   asrkit-transcribe forward-only.safetensors a.wav --stream 200   (partial text every 200 ms)
//
// WAV at any sample rate -> DS2 features (resampled to 16 kHz) -> model -> CTC prefix beam search
// (asrkit::CtcBeamDecoder, with the n-gram LM when given; --greedy for best path) -> text, word
// timestamps (--json), and the real-time factor.
#include "ds2_pipeline.hpp"
#include "ds2_stream.hpp"

#include <asrkit/core/threading.hpp>
#include <asrkit/decode/beam_search.hpp>
#include <asrkit/decode/lexicon.hpp>
#include <asrkit/decode/metrics.hpp>
#include <asrkit/io/arpa.hpp>
#include <asrkit/train/manifest.hpp>

#include "../cli.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

using asrkit::index_t;
using asrkit::Tensor;
using asrkit::TensorView;

const char* const kUsage = R"(usage: asrkit-transcribe MODEL AUDIO.wav... [options]
       asrkit-transcribe MODEL --manifest FILE [options]

  MODEL                 a checkpoint of asrkit-train-ds2 (weights, config and vocabulary)
  --manifest FILE       transcribe a JSONL manifest and score it (WER/CER, sclite counting)
  --greedy              best-path decoding instead of beam search
  --beam N              beam size (default 64)
  --lm FILE             word n-gram LM (ARPA) for the beam search
  --alpha X             LM weight (default 1.5: tuned on the dev voices for the shipped model)
  --beta X              word bonus (default 2.0: the same)
  --open-vocabulary     with --lm, also allow words the LM does not know (default: only its words)
  --batch N             utterances per forward pass (default 16)
  --threads N           worker threads (default: all cores)
  --json                JSON output: text, score, words with start/end seconds
  --verbose             manifest mode: print every reference and hypothesis
  --stream MS           forward-only models: feed the model MS milliseconds of features at a
                        time (ds2::Stream) and print the partial text after each chunk; the
                        final text equals the offline result. The features are still normalised
                        over the whole file (see docs/ds2.md, streaming)
)";

const asrkit_cli::Tool kTool{"asrkit-transcribe", kUsage};

struct Args {
  std::string model, manifest, lm;
  std::vector<std::string> audio;
  bool greedy = false, json = false, verbose = false, open_vocabulary = false;
  index_t beam = 64, batch = 16, stream_ms = 0;
  double alpha = 1.5, beta = 2.0;
  int threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& flag = args.flag();
    if (flag == "--manifest")
      a.manifest = args.value();
    else if (flag == "--greedy")
      a.greedy = true;
    else if (flag == "--beam")
      a.beam = static_cast<index_t>(args.number());
    else if (flag == "--lm")
      a.lm = args.value();
    else if (flag == "--alpha")
      a.alpha = args.number();
    else if (flag == "--beta")
      a.beta = args.number();
    else if (flag == "--batch")
      a.batch = static_cast<index_t>(args.number());
    else if (flag == "--threads")
      a.threads = static_cast<int>(args.number());
    else if (flag == "--json")
      a.json = true;
    else if (flag == "--open-vocabulary")
      a.open_vocabulary = true;
    else if (flag == "--verbose")
      a.verbose = true;
    else if (flag == "--stream") {
      a.stream_ms = static_cast<index_t>(args.number());
      if (a.stream_ms < 10) kTool.error("--stream needs a chunk of at least 10 ms");
    } else if (!args.positional())
      kTool.error("unknown option " + flag);
    else if (a.model.empty())
      a.model = flag;
    else
      a.audio.push_back(flag);
  }
  if (a.model.empty()) kTool.error("MODEL is required");
  if (a.audio.empty() == a.manifest.empty())
    kTool.error("give AUDIO files or --manifest (one of them)");
  if (a.batch < 1 || a.beam < 1) kTool.error("--batch and --beam must be >= 1");
  return a;
}

struct Partial {
  double seconds;  // audio received so far
  std::string text;
};

struct Result {
  std::string text;
  asrkit::Hypothesis best;        // empty words for greedy
  std::vector<Partial> partials;  // --stream: the text after each chunk
};

std::string words_text(const asrkit::Hypothesis& h) {
  std::string text;
  for (const auto& w : h.words) text += (text.empty() ? "" : " ") + w.text;
  return text;
}

// Decodes utterances in batches of similar length: features -> model -> search.
class Transcriber {
 public:
  Transcriber(const Args& a) : a_(a), m_(ds2::load_model(a.model)) {
    std::vector<std::string> names;
    for (std::int32_t i = 0; i < m_.vocabulary.size(); ++i)
      names.push_back(i == 0                          ? "<blank>"
                      : m_.vocabulary.token(i) == " " ? "<space>"
                                                      : m_.vocabulary.token(i));
    asrkit::DecoderOptions o;
    o.beam_size = a.beam;
    o.lm_weight = a.alpha;
    o.word_bonus = a.beta;
    asrkit::TokenSet tokens(names);
    o.word_boundary = tokens.id("<space>");
    std::shared_ptr<const asrkit::NgramLm> lm;
    if (!a.lm.empty()) {
      lm = std::make_shared<const asrkit::NgramLm>(asrkit::read_arpa(a.lm));
      // The LM's words as a lexicon: hypotheses spell only words it can score (a hard
      // constraint, as in DS2's and flashlight's word-LM decoding), unless --open-vocabulary.
      if (!a.open_vocabulary)
        lexicon_ = std::make_unique<asrkit::Lexicon>(asrkit::Lexicon::spelled(*lm, tokens));
    }
    decoder_ = std::make_unique<asrkit::CtcBeamDecoder>(std::move(tokens), o, lm, lexicon_.get());
    // Seconds per output frame: the 10 ms hop times the convs' time strides.
    frame_seconds_ = 0.01;
    for (const auto& c : m_.config.convs) frame_seconds_ *= static_cast<double>(c.stride[1]);
  }

  double frame_seconds() const { return frame_seconds_; }

  std::vector<Result> run(const std::vector<Tensor<float>>& feats) const {
    std::vector<asrkit::TensorView<const float>> views;
    for (const auto& f : feats) views.push_back(f.view());
    const auto post = ds2::infer(*m_.model, views);
    std::vector<Result> results(feats.size());
    for (std::size_t b = 0; b < feats.size(); ++b) {
      const index_t item = static_cast<index_t>(b), frames = post.lengths.data()[b];
      if (a_.greedy) {
        results[b].text = ds2::greedy_text(post.log_probs, post.lengths, item, m_.vocabulary);
        continue;
      }
      const auto nbest = decoder_->decode(post.log_probs.view(), item, frames);
      if (nbest.empty()) continue;
      results[b].best = nbest.front();
      results[b].text = words_text(results[b].best);
    }
    return results;
  }

  /// Normalised features of a whole utterance, as the model was trained (its front end).
  Tensor<float> features(const asrkit::Audio& audio) const { return m_.front_end(audio); }

  /// One utterance through ds2::Stream, stream_ms of audio at a time: with fixed normalisation
  /// statistics the spectrogram is streamed too (Ds2SpectrogramStream), else the whole file's
  /// features are fed in chunks of the same duration. The search (or best path) advances on
  /// each chunk's output frames and the partial text is kept after every chunk.
  Result stream(const asrkit::Audio& input, index_t stream_ms) const {
    const asrkit::Audio audio =
        input.sample_rate == ds2::kSampleRate ? input : asrkit::resample(input, ds2::kSampleRate);
    ds2::Stream<float> model(*m_.model);
    auto search = decoder_->begin();
    std::vector<float> seen;  // --greedy: every log-prob row so far
    Result r;
    const index_t V = m_.config.vocab;
    const auto consume = [&](const Tensor<float>& logits) {  // the model's output -> search
      if (logits.dim(0) == 0) return;
      Tensor<float> lp(logits.shape(), asrkit::uninitialized);
      asrkit::ops::log_softmax(TensorView<const float>(logits.view()), lp.view());
      if (!a_.greedy) return search.step(TensorView<const float>(lp.view()));
      seen.insert(seen.end(), lp.data(), lp.data() + lp.numel());
    };
    const auto feed = [&](TensorView<const float> features) { consume(model.push(features)); };
    const auto greedy = [&] {
      const index_t frames = static_cast<index_t>(seen.size()) / V;
      const asrkit::TensorView<const float> all(seen.data(), asrkit::Shape{frames, 1, V});
      return m_.vocabulary.decode(
          asrkit::ctc_greedy(all, asrkit::DecodeInput{0, 0, frames}).tokens);
    };
    const auto partial = [&](double seconds) {
      const auto best = a_.greedy ? std::vector<asrkit::Hypothesis>{} : search.partial();
      r.partials.push_back({seconds, a_.greedy      ? greedy()
                                     : best.empty() ? ""
                                                    : words_text(best.front())});
    };
    const index_t samples = audio.samples.dim(0), chunk = stream_ms * ds2::kSampleRate / 1000;
    if (m_.front_end.streamable()) {
      asrkit::Ds2SpectrogramStream<float> spectrogram;
      const auto normalized = [&](Tensor<float> frames) {
        m_.front_end.normalize(frames);
        return frames;
      };
      for (index_t s = 0; s < samples; s += chunk) {
        const index_t n = std::min(chunk, samples - s);
        feed(normalized(spectrogram.push(
                            TensorView<const float>(audio.samples.data() + s, asrkit::Shape{n})))
                 .view());
        partial(static_cast<double>(s + n) / ds2::kSampleRate);
      }
      feed(normalized(spectrogram.finish()).view());
    } else {
      const Tensor<float> feats = features(audio);
      const index_t steps = feats.dim(0), bins = feats.dim(1),
                    per_chunk = std::max<index_t>(1, stream_ms / 10);
      for (index_t t = 0; t < steps; t += per_chunk) {
        const index_t n = std::min(per_chunk, steps - t);
        feed(TensorView<const float>(feats.data() + t * bins, asrkit::Shape{n, bins}));
        partial(static_cast<double>(t + n) * 0.01);
      }
    }
    consume(model.finish());
    if (a_.greedy) {
      r.text = greedy();
    } else if (const auto nbest = search.end(); !nbest.empty()) {
      r.best = nbest.front();
      r.text = words_text(r.best);
    }
    return r;
  }

 private:
  const Args& a_;
  ds2::Loaded m_;
  std::unique_ptr<asrkit::Lexicon> lexicon_;  // outlives decoder_ (declared first)
  std::unique_ptr<asrkit::CtcBeamDecoder> decoder_;
  double frame_seconds_ = 0.01;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run(const Args& a) {
  if (a.threads > 0) asrkit::set_num_threads(a.threads);
  const Transcriber tr(a);
  std::vector<std::string> paths = a.audio, refs;
  if (!a.manifest.empty()) {
    for (const auto& u : asrkit::read_manifest(a.manifest)) {
      paths.push_back(u.audio);
      refs.push_back(u.text);
    }
  }
  double audio_seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Result> results;
  for (std::size_t i = 0; i < paths.size(); i += static_cast<std::size_t>(a.batch)) {
    std::vector<Tensor<float>> feats;
    for (std::size_t k = i; k < std::min(paths.size(), i + static_cast<std::size_t>(a.batch));
         ++k) {
      const auto audio = asrkit::read_wav(paths[k]);
      audio_seconds += static_cast<double>(audio.samples.dim(0)) / audio.sample_rate;
      if (a.stream_ms > 0) {
        results.push_back(tr.stream(audio, a.stream_ms));
        if (!a.json && refs.empty())
          for (const auto& p : results.back().partials)
            std::printf("%s\t[%.2f s] %s\n", paths[k].c_str(), p.seconds, p.text.c_str());
      } else {
        feats.push_back(tr.features(audio));
      }
    }
    if (!feats.empty())
      for (auto& r : tr.run(feats)) results.push_back(std::move(r));
  }
  const double compute = seconds_since(start);
  const double rtf = audio_seconds > 0 ? compute / audio_seconds : 0;

  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      nlohmann::json words = nlohmann::json::array();
      for (const auto& w : results[i].best.words)
        words.push_back({{"word", w.text},
                         {"start", static_cast<double>(w.start) * tr.frame_seconds()},
                         {"end", static_cast<double>(w.end) * tr.frame_seconds()}});
      nlohmann::json item{{"audio", paths[i]}, {"text", results[i].text}, {"words", words}};
      if (a.stream_ms > 0) {
        nlohmann::json partials = nlohmann::json::array();
        for (const auto& p : results[i].partials)
          partials.push_back({{"seconds", p.seconds}, {"text", p.text}});
        item["partials"] = partials;
      }
      if (!a.greedy) item["score"] = results[i].best.score;
      if (!refs.empty()) item["reference"] = refs[i];
      out.push_back(item);
    }
    std::cout
        << nlohmann::json{{"results", out}, {"audio_seconds", audio_seconds}, {"rtf", rtf}}.dump(2)
        << "\n";
  } else if (refs.empty()) {
    for (std::size_t i = 0; i < results.size(); ++i)
      std::printf("%s\t%s\n", paths[i].c_str(), results[i].text.c_str());
  }
  if (!refs.empty()) {
    asrkit::CorpusScore score;
    for (std::size_t i = 0; i < results.size(); ++i) {
      score.add(std::to_string(i), refs[i], results[i].text);
      if (a.verbose && !a.json)
        std::printf("REF: %s\nHYP: %s\n", refs[i].c_str(), results[i].text.c_str());
    }
    std::fprintf(a.json ? stderr : stdout,
                 "%zu utterances, %.1f s of audio: WER %.2f%%  CER %.2f%%  RTF %.4f\n",
                 results.size(), audio_seconds, 100 * score.wer(), 100 * score.cer(), rtf);
  } else if (!a.json) {
    std::fprintf(stderr, "%.1f s of audio in %.2f s: RTF %.4f\n", audio_seconds, compute, rtf);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return kTool.guarded([&] { return run(args); });
}
