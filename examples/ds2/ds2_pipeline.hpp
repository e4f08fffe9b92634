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
#include <string>
#include <vector>

namespace ds2 {

/// The model's sample rate: other rates are resampled first (frontend/resample.hpp).
inline constexpr int kSampleRate = 16000;

/// DS2 input features (SPECS §3.1): log(1 + |STFT|), 20 ms Hamming windows every 10 ms, 161
/// bins, each bin normalised to mean 0 / deviation 1 over the utterance. Rank-1 (mono) audio.
inline Tensor<float> features(const asrkit::Audio& audio) {
  if (audio.sample_rate == kSampleRate) {
    Tensor<float> f = asrkit::ds2_spectrogram(audio.samples.view());
    asrkit::normalize_utterance(f.view());
    return f;
  }
  return features(asrkit::resample(audio, kSampleRate));
}

/// Metadata keys of a ds2 checkpoint.
inline constexpr const char* kConfigKey = "ds2.config";
inline constexpr const char* kVocabularyKey = "ds2.vocabulary";

inline std::string vocabulary_text(const asrkit::Vocabulary& v) {
  std::string s;
  for (std::int32_t i = 0; i < v.size(); ++i) s += v.token(i) + "\n";
  return s;
}

/// A trained model with what is needed to run it.
struct Loaded {
  Config config;
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
  Loaded out{Config::from_json(j), nullptr, asrkit::Vocabulary(tokens, path), meta};
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
