// demo - a walk through asrkit's CTC machinery without a model (the speech recognition demo is
// `./asrkit demo`: tools/ds2-demo with the Deep Speech 2 model of examples/ds2). This program
// checks its own results (ctest example:demo):
//   1. audio I/O: synthesise one "beep" per character of a sentence (a tone burst per letter,
//      silence per space), write it as a 16-bit WAV, read it back;
//   2. CTC training machinery: free per-frame logits (one frame per 10 ms of that audio) are
//      fitted to the sentence with asrkit's CTC loss and gradient (plain gradient descent) until
//      greedy decoding spells the sentence; no audio feature reaches these logits;
//   3. CTC Viterbi forced alignment of the fitted posteriors: per-character start/end times;
//   4. a safetensors checkpoint of the fitted logits, written and read back bit-exactly.
#include <asrkit.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

const std::string kAlphabet = "_ abcdefghijklmnopqrstuvwxyz'";  // index 0 is the CTC blank

std::vector<std::int32_t> encode(const std::string& text) {
  std::vector<std::int32_t> out;
  for (char c : text) out.push_back(static_cast<std::int32_t>(kAlphabet.find(c)));
  return out;
}

// Best path decoding: argmax per frame, merge repeats, drop blanks.
std::string greedy(const asrkit::Tensor<float>& logits) {
  std::string out;
  int prev = -1;
  for (asrkit::index_t t = 0; t < logits.dim(0); ++t) {
    asrkit::index_t k = 0;
    logits[t].matrix().row(0).maxCoeff(&k);
    if (k != prev && k != 0) out += kAlphabet[static_cast<std::size_t>(k)];
    prev = static_cast<int>(k);
  }
  return out;
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  const std::string text = "hello asrkit";
  const int rate = 16000;
  std::printf("asrkit %s demo. NOT speech recognition yet: no acoustic model exists in asrkit so far.\n"
              "This run exercises WAV I/O, the CTC loss and gradient, forced alignment and safetensors.\n\n",
              asrkit::version());

  // 1. One 120 ms tone burst per letter (pitch by letter), 60 ms of silence per space.
  std::vector<float> audio;
  for (char c : text) {
    const int n = c == ' ' ? rate * 60 / 1000 : rate * 120 / 1000;
    const double hz = 300.0 + 40.0 * static_cast<double>(kAlphabet.find(c));
    for (int i = 0; i < n; ++i)
      audio.push_back(c == ' ' ? 0.0f : static_cast<float>(0.3 * std::sin(2 * M_PI * hz * i / rate)));
  }
  asrkit::Tensor<float> wave({static_cast<asrkit::index_t>(audio.size())});
  std::copy(audio.begin(), audio.end(), wave.data());
  asrkit::write_wav("demo.wav", wave.view(), rate);
  const asrkit::Audio back = asrkit::read_wav("demo.wav");
  const double seconds = static_cast<double>(back.samples.numel()) / back.sample_rate;
  std::printf("1. wrote and read demo.wav: %.2f s, %d Hz, %d channel(s), max |error| after 16-bit "
              "quantisation %.2e\n", seconds, back.sample_rate, back.num_channels,
              (back.samples.flat() - wave.flat()).cwiseAbs().maxCoeff());

  // 2. Fit free logits [T, 1, V] (T = one frame per 10 ms) to the text with CTC.
  const auto frames = static_cast<asrkit::index_t>(seconds * 100);
  const auto vocab = static_cast<asrkit::index_t>(kAlphabet.size());
  const std::vector<std::int32_t> labels = encode(text);
  const std::vector<std::int32_t> input_lengths{static_cast<std::int32_t>(frames)};
  const std::vector<std::int32_t> target_lengths{static_cast<std::int32_t>(labels.size())};
  asrkit::Tensor<float> logits({frames, 1, vocab}), grad(logits.shape());
  asrkit::Rng rng(7);
  rng.fill_normal(logits.view(), 0.0f, 0.1f);
  asrkit::CtcOptions opt;
  opt.input = asrkit::CtcInput::logits;  // softmax fused inside
  opt.reduction = asrkit::Reduction::sum;
  const asrkit::CtcProblem<float> problem{logits.view(), asrkit::as_view(labels),
                                          asrkit::as_view(input_lengths), asrkit::as_view(target_lengths)};
  std::printf("2. fitting %ld x %ld free logits to \"%s\" with CTC (gradient descent, lr 1.0):\n",
              static_cast<long>(frames), static_cast<long>(vocab), text.c_str());
  const int steps = 300;
  for (int step = 0; step <= steps; ++step) {
    const float loss = asrkit::ctc_loss(problem, opt, grad.view());
    if (step % 50 == 0)
      std::printf("   step %3d  CTC loss %8.4f  greedy: \"%s\"\n", step, loss, greedy(logits).c_str());
    if (step < steps) logits.flat() -= 1.0f * grad.flat();
  }
  std::printf("   greedy decoding %s the text\n", greedy(logits) == text ? "matches" : "does NOT match");

  // 3. Forced alignment of the fitted log-posteriors.
  asrkit::Tensor<float> log_probs = logits;
  for (asrkit::index_t t = 0; t < frames; ++t) {
    auto row = log_probs[t].matrix().row(0).array();
    const float m = row.maxCoeff();
    row -= m + std::log((row - m).exp().sum());
  }
  const auto align = asrkit::ctc_forced_align(log_probs.view(), asrkit::as_view(labels));
  std::printf("3. forced alignment (log-prob of the best path %.4f), character times:\n   ", align.log_prob);
  for (const auto& tok : align.tokens)
    std::printf("'%c' %.2f-%.2fs  ", kAlphabet[static_cast<std::size_t>(tok.label)], tok.start / 100.0,
                tok.end / 100.0);
  std::printf("\n   (the logits never saw the audio, so these times are where CTC put the characters,\n"
              "    not where the beeps are)\n");

  // 4. Checkpoint round trip.
  asrkit::SafetensorsWriter writer;
  writer.add("logits", logits);
  writer.set_metadata("text", text);
  writer.save("demo.safetensors");
  const auto file = asrkit::SafetensorsFile::open("demo.safetensors");
  const auto reread = file.read<float>("logits");
  const bool same = (reread.flat().array() == logits.flat().array()).all();
  std::printf("4. demo.safetensors: %ld tensor(s), metadata text=\"%s\", read back %s\n",
              static_cast<long>(file.names().size()), file.metadata().at("text").c_str(),
              same ? "bit-exactly" : "WITH DIFFERENCES");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("\ndone in %.0f ms\n", ms);
  return greedy(logits) == text && same ? 0 : 1;
}
