// ds2_pipeline.hpp - what the ds2 tools share around the model: the front end (audio -> DS2
// features), the checkpoint format (weights + config + vocabulary in one safetensors file) and
// CTC output -> text.
//
//   auto feats = ds2::features(asrkit::read_wav("a.wav"));      // [frames, 161], per-bin
//   normalised auto m = ds2::load_model("ds2-small.safetensors");          // config and vocabulary
//   from its metadata auto out = m.model->forward(batch_features, lengths); std::string text =
//   ds2::greedy_text(out, b, m.vocabulary);
#pragma once

#include "ds2_model.hpp"

#include <asrkit/decode/greedy.hpp>
#include <asrkit/frontend/normalize.hpp>
#include <asrkit/frontend/resample.hpp>
#include <asrkit/frontend/stft.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/io/wav.hpp>
#include <asrkit/ops/softmax.hpp>
#include <asrkit/train/batch.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/train/vocabulary.hpp>

#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ds2 {

/// The model's sample rate: other rates are resampled first (frontend/resample.hpp).
inline constexpr int kSampleRate = 16000;

/// Metadata keys of a ds2 checkpoint.
inline constexpr const char* kConfigKey = "ds2.config";
inline constexpr const char* kVocabularyKey = "ds2.vocabulary";
inline constexpr const char* kNormalizationKey = "ds2.cmvn";  ///< absent: per utterance

/// How DS2 input features (SPECS §3.1: log(1 + |STFT|), 20 ms Hamming windows every 10 ms, 161
/// bins) are normalised per bin: over each utterance (`global` empty: what DS2 does; needs the
/// whole utterance), or with fixed statistics of the training set (`global`: every frame on its
/// own, so features can be computed as audio arrives, Ds2SpectrogramStream).
struct FrontEnd {
  std::shared_ptr<const asrkit::CmvnStats<float>> global;

  bool streamable() const noexcept { return global != nullptr; }

  /// Spectrogram frames [F, 161] (from ds2_spectrogram or a Ds2SpectrogramStream) normalised in
  /// place. Per utterance, the frames must be the whole utterance.
  void normalize(Tensor<float>& frames) const {
    if (global)
      global->apply(frames.view());
    else
      asrkit::normalize_utterance(frames.view());
  }

  /// Normalised features [frames, 161] of rank-1 (mono) audio at any rate (resampled first).
  Tensor<float> operator()(const asrkit::Audio& audio) const {
    Tensor<float> f = spectrogram(audio);
    normalize(f);
    return f;
  }

  /// The spectrogram before normalisation (what global statistics are accumulated over).
  static Tensor<float> spectrogram(const asrkit::Audio& audio) {
    if (audio.sample_rate != kSampleRate) return spectrogram(asrkit::resample(audio, kSampleRate));
    return asrkit::ds2_spectrogram(audio.samples.view());
  }

  /// The statistics as checkpoint metadata (kNormalizationKey), "" per utterance.
  std::string to_metadata() const {
    if (!global) return {};
    const auto list = [](asrkit::TensorView<const double> v) {
      return std::vector<double>(v.data(), v.data() + v.numel());
    };
    return nlohmann::json{{"count", global->count()},
                          {"sum", list(global->sum())},
                          {"sum_sq", list(global->sum_sq())}}
        .dump();
  }
  /// Reads to_metadata()'s text ("" or absent: per utterance). FormatError "ds2.6" when it is
  /// not statistics of 161 bins.
  static FrontEnd from_metadata(const std::map<std::string, std::string>& meta,
                                const std::string& path) {
    const auto it = meta.find(kNormalizationKey);
    if (it == meta.end() || it->second.empty()) return {};
    try {
      const auto j = nlohmann::json::parse(it->second);
      const auto sum = j.at("sum").get<std::vector<double>>();
      const auto sum_sq = j.at("sum_sq").get<std::vector<double>>();
      if (sum.size() != 161) throw std::runtime_error("expected 161 bins");
      const asrkit::Shape bins{static_cast<index_t>(sum.size())};
      return {std::make_shared<const asrkit::CmvnStats<float>>(asrkit::CmvnStats<float>::from_sums(
          j.at("count").get<double>(), asrkit::TensorView<const double>(sum.data(), bins),
          asrkit::TensorView<const double>(sum_sq.data(),
                                           asrkit::Shape{static_cast<index_t>(sum_sq.size())})))};
    } catch (const std::exception& e) {
      throw asrkit::FormatError(
          "ds2.6", "ds2 checkpoint \"" + path + "\": " + kNormalizationKey + ": " + e.what());
    }
  }
};

/// Features with per-utterance normalisation (FrontEnd{}).
inline Tensor<float> features(const asrkit::Audio& audio) { return FrontEnd{}(audio); }

inline std::string vocabulary_text(const asrkit::Vocabulary& v) {
  std::string s;
  for (std::int32_t i = 0; i < v.size(); ++i) s += v.token(i) + "\n";
  return s;
}

/// A trained model with what is needed to run it.
struct Loaded {
  Config config;
  FrontEnd front_end;
  std::unique_ptr<Model<float>> model;
  asrkit::Vocabulary vocabulary;
  std::map<std::string, std::string> metadata;
};

/// Reads a checkpoint written by asrkit-train-ds2: the config and vocabulary from the metadata,
/// then the weights (strict: every name and shape must match). FormatError "ds2.6" when the
/// metadata is missing.
inline Loaded load_model(const std::string& path) {
  const auto file = asrkit::SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  const auto config = meta.find(kConfigKey), vocab = meta.find(kVocabularyKey);
  if (config == meta.end() || vocab == meta.end())
    throw asrkit::FormatError("ds2.6", "ds2 checkpoint \"" + path + "\": metadata needs \"" +
                                           kConfigKey + "\" and \"" + kVocabularyKey +
                                           "\" (written by asrkit-train-ds2)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(config->second);
  } catch (const nlohmann::json::parse_error& e) {
    throw asrkit::FormatError("ds2.6",
                              "ds2 checkpoint \"" + path + "\": " + kConfigKey + ": " + e.what());
  }
  std::vector<std::string> tokens;
  std::istringstream lines(vocab->second);
  for (std::string t; std::getline(lines, t);) tokens.push_back(t);
  Loaded out{Config::from_json(j), FrontEnd::from_metadata(meta, path), nullptr,
             asrkit::Vocabulary(tokens, path), meta};
  if (out.vocabulary.size() != out.config.vocab)
    throw asrkit::FormatError(
        "ds2.6",
        asrkit::detail::str("ds2 checkpoint \"", path, "\": the vocabulary has ",
                            out.vocabulary.size(), " tokens, the config says ", out.config.vocab));
  asrkit::Rng rng(0);
  out.model = std::make_unique<Model<float>>(out.config, rng);
  asrkit::load_state_dict(file, *out.model);
  return out;
}

/// Writes a model to ship: weights and BN statistics stored as `floats` (F16 halves the file;
/// loading converts back), integer buffers as they are, no optimizer state, the metadata kept.
inline void export_model(const std::string& path, Model<float>& model,
                         const std::map<std::string, std::string>& metadata, asrkit::DType floats) {
  asrkit::SafetensorsWriter w;
  model.for_each_parameter([&](const std::string& name, auto& p) { w.add(name, p.value, floats); });
  model.for_each_buffer([&](const std::string& name, auto& b) {
    using V = std::decay_t<decltype(*b.data())>;
    if constexpr (std::is_floating_point_v<V>)
      w.add(name, b, floats);
    else
      w.add(name, b);
  });
  for (const auto& kv : metadata) w.set_metadata(kv.first, kv.second);
  w.save(path);
}

/// Log-probabilities [T', B, V] of the model's logits.
template <class T>
Tensor<T> log_probs(const Output<T>& out) {
  Tensor<T> lp(out.logits.shape(), asrkit::uninitialized);
  asrkit::ops::log_softmax(TensorView<const T>(out.logits.view()), lp.view());
  return lp;
}

/// What inference gives for a batch: log-probabilities [T', B, V] and each item's frames.
struct Posteriors {
  Tensor<float> log_probs;
  Tensor<std::int32_t> lengths;
};

/// Inference on utterances' features ([frames_b, bins] each), padded into one batch.
inline Posteriors infer(const Model<float>& model,
                        const std::vector<TensorView<const float>>& features) {
  const auto batch =
      asrkit::make_batch<float>(features, std::vector<std::vector<std::int32_t>>(features.size()));
  auto out = model.forward(batch.features.view(), batch.input_lengths.view());
  return {log_probs(out), std::move(out.lengths)};
}

/// Best-path text of item b of [T', B, V] log-probabilities (blank 0, repeats merged).
inline std::string greedy_text(const Tensor<float>& log_probs, const Tensor<std::int32_t>& lengths,
                               index_t b, const asrkit::Vocabulary& vocabulary) {
  const auto h = asrkit::ctc_greedy(log_probs.view(), asrkit::DecodeInput{0, b, lengths.data()[b]});
  return vocabulary.decode(h.tokens);
}

}  // namespace ds2
