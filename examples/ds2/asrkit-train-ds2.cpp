// asrkit-train-ds2: trains Deep Speech 2 (examples/ds2/ds2_model.hpp) on make-corpus manifests.
//
//   asrkit-train-ds2 --train corpus/train.jsonl --dev corpus/dev.jsonl --out run/ [--config small]
//                    [--epochs 12] [--batch 32] [--optimizer adam|sgd] [--lr 1e-3] [--threads 2]
//
// SortaGrad (first epoch by length, then shuffled length buckets; SPECS §3.6), Adam or Nesterov
// SGD with global-norm clipping and the per-epoch annealing of SPECS §3.11, additive noise on a
// fraction of the utterances (SPECS §3.1: 40%), CTC on logits. After every epoch: greedy CER/WER
// on the dev manifest, run/last.safetensors (weights, optimizer state, epoch: --resume goes on
// from it) and run/best.safetensors (the best dev CER so far: the model to ship). run/log.txt
// holds what the terminal shows; run/curves.png plots loss and dev CER per epoch.
#include "ds2_pipeline.hpp"
#include "plot.hpp"

#include <asrkit/core/threading.hpp>
#include <asrkit/decode/metrics.hpp>
#include <asrkit/frontend/augment.hpp>
#include <asrkit/loss/ctc.hpp>
#include <asrkit/train/clip.hpp>
#include <asrkit/train/loader.hpp>
#include <asrkit/train/manifest.hpp>
#include <asrkit/train/optimizer.hpp>
#include <asrkit/train/progress.hpp>
#include <asrkit/train/schedule.hpp>
#include <asrkit/train/sortagrad.hpp>

#include "../cli.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

using asrkit::index_t;
using asrkit::Tensor;

const char* const kUsage = R"(usage: asrkit-train-ds2 --train FILE --dev FILE --out DIR [options]
       asrkit-train-ds2 --export CHECKPOINT MODEL    (the model to ship: F16 weights, no optimizer)

data
  --train FILE          training manifest (JSONL, tools/make-corpus)
  --dev FILE            validation manifest: greedy CER/WER after every epoch
  --vocab FILE          vocabulary (default: the 29 English characters of make-corpus)
  --limit N             use only the first N training utterances (smoke runs)
  --noise P             add noise to a fraction P of the training utterances (default 0.4)
  --snr LO,HI           SNR range of that noise in dB (default 10,30)
  --normalize MODE      utterance (default: each bin over each utterance, DS2's) or global
                        (fixed statistics of the training set, stored in the checkpoint: the
                        model can then transcribe audio as it arrives, asrkit-transcribe --stream)
model
  --config NAME|FILE    tiny, small (default), paper, paper-forward or a JSON file
training
  --epochs N            default 12
  --batch N             utterances per batch (default 32)
  --optimizer adam|sgd  adam (default) or Nesterov SGD with momentum 0.99 (SPECS §3.11)
  --lr X                initial learning rate (default 1e-3 for adam, 3e-4 for sgd)
  --anneal X            divide the learning rate by X after each epoch (default 1.2)
  --clip X              global gradient-norm clip (default 400)
  --seed N              initialisation, batch order and noise (default 1)
  --threads N           worker threads (default: all cores)
  --minutes X           stop after the first epoch that ends past X minutes (default: none)
output
  --out DIR             checkpoints, log.txt and curves.png go here
  --resume              go on from DIR/last.safetensors
)";

const asrkit_cli::Tool kTool{"asrkit-train-ds2", kUsage};

struct Args {
  std::string train, dev, vocab, config = "small", out, optimizer = "adam", export_from, export_to;
  index_t limit = -1, epochs = 12, batch = 32;
  double noise = 0.4, snr_lo = 10, snr_hi = 30, lr = -1, anneal = 1.2, clip = 400, minutes = -1;
  std::uint64_t seed = 1;
  int threads = 0;
  bool resume = false;
  std::string normalize = "utterance";
};

Args parse(int argc, char** argv) {
  Args a;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& flag = args.flag();
    if (flag == "--train")
      a.train = args.value();
    else if (flag == "--dev")
      a.dev = args.value();
    else if (flag == "--vocab")
      a.vocab = args.value();
    else if (flag == "--limit")
      a.limit = static_cast<index_t>(args.number());
    else if (flag == "--noise")
      a.noise = args.number();
    else if (flag == "--snr") {
      const std::string v = args.value();
      const auto comma = v.find(',');
      if (comma == std::string::npos) kTool.error("--snr expects LO,HI, got \"" + v + "\"");
      a.snr_lo = kTool.number(flag, v.substr(0, comma));
      a.snr_hi = kTool.number(flag, v.substr(comma + 1));
    } else if (flag == "--config")
      a.config = args.value();
    else if (flag == "--epochs")
      a.epochs = static_cast<index_t>(args.number());
    else if (flag == "--batch")
      a.batch = static_cast<index_t>(args.number());
    else if (flag == "--optimizer") {
      a.optimizer = args.value();
      if (a.optimizer != "adam" && a.optimizer != "sgd")
        kTool.error("--optimizer is adam or sgd, got \"" + a.optimizer + "\"");
    } else if (flag == "--lr")
      a.lr = args.number();
    else if (flag == "--anneal")
      a.anneal = args.number();
    else if (flag == "--clip")
      a.clip = args.number();
    else if (flag == "--seed")
      a.seed = static_cast<std::uint64_t>(args.number());
    else if (flag == "--threads")
      a.threads = static_cast<int>(args.number());
    else if (flag == "--minutes")
      a.minutes = args.number();
    else if (flag == "--out")
      a.out = args.value();
    else if (flag == "--resume")
      a.resume = true;
    else if (flag == "--normalize") {
      a.normalize = args.value();
      if (a.normalize != "utterance" && a.normalize != "global")
        kTool.error("--normalize must be utterance or global, got \"" + a.normalize + "\"");
    } else if (flag == "--export") {
      a.export_from = args.value();
      if (!args.next() || !args.positional()) kTool.error("--export needs CHECKPOINT and MODEL");
      a.export_to = args.flag();
    } else
      kTool.error("unknown option " + flag);
  }
  if (!a.export_from.empty()) return a;
  if (a.train.empty() || a.dev.empty() || a.out.empty())
    kTool.error("--train, --dev and --out are required");
  if (a.epochs < 1 || a.batch < 1) kTool.error("--epochs and --batch must be >= 1");
  if (!(a.anneal > 0)) kTool.error("--anneal must be > 0");
  if (a.lr < 0) a.lr = a.optimizer == "adam" ? 1e-3 : 3e-4;
  return a;
}

ds2::Config config_of(const std::string& name) {
  if (name == "tiny") return ds2::Config::tiny();
  if (name == "small") return ds2::Config::small();
  if (name == "paper") return ds2::Config::paper(true);
  if (name == "paper-forward") return ds2::Config::paper(false);
  return ds2::Config::load(name);
}

// Writes every line to the terminal and to DIR/log.txt.
class Log {
 public:
  explicit Log(const std::string& path, bool append)
      : file_(path, append ? std::ios::app : std::ios::trunc) {}
  template <class... A>
  void operator()(const char* fmt, A... a) {
    char buf[1024];
    std::snprintf(buf, sizeof buf, fmt, a...);
    std::cout << buf << std::endl;
    file_ << buf << std::endl;
  }

 private:
  std::ofstream file_;
};

// Noise for augmentation: white, pink-ish (one-pole low-passed white) and brown (leaky integral),
// 5 s each, drawn once from the seed.
std::vector<Tensor<float>> noise_bank(std::uint64_t seed) {
  asrkit::Rng rng(seed, 7);
  const index_t n = 5 * ds2::kSampleRate;
  std::vector<Tensor<float>> bank;
  for (int kind = 0; kind < 3; ++kind) {
    Tensor<float> x(asrkit::Shape{n});
    double state = 0;
    for (index_t i = 0; i < n; ++i) {
      const double w = rng.normal();
      state = kind == 0 ? w : kind == 1 ? 0.9 * state + w : 0.995 * state + 0.1 * w;
      x.data()[i] = static_cast<float>(state);
    }
    bank.push_back(std::move(x));
  }
  return bank;
}

struct DevSet {
  std::vector<Tensor<float>> features;
  std::vector<std::string> texts;
  std::vector<std::vector<index_t>> batches;  // by length, so padding stays small
};

DevSet load_dev(const std::vector<asrkit::Utterance>& utts, index_t batch,
                const ds2::FrontEnd& front_end) {
  DevSet d;
  for (const auto& u : utts) {
    d.features.push_back(front_end(asrkit::read_wav(u.audio)));
    d.texts.push_back(u.text);
  }
  std::vector<index_t> order(utts.size());
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return d.features[static_cast<std::size_t>(a)].dim(0) <
           d.features[static_cast<std::size_t>(b)].dim(0);
  });
  for (std::size_t i = 0; i < order.size(); i += static_cast<std::size_t>(batch))
    d.batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                           order.begin() + static_cast<std::ptrdiff_t>(std::min(
                                               order.size(), i + static_cast<std::size_t>(batch))));
  return d;
}

asrkit::CorpusScore evaluate(const ds2::Model<float>& model, const DevSet& dev,
                             const asrkit::Vocabulary& vocab) {
  asrkit::CorpusScore score;
  for (const auto& items : dev.batches) {
    std::vector<asrkit::TensorView<const float>> feats;
    for (index_t i : items) feats.push_back(dev.features[static_cast<std::size_t>(i)].view());
    const auto post = ds2::infer(model, feats);
    for (std::size_t k = 0; k < items.size(); ++k) {
      const auto i = static_cast<std::size_t>(items[k]);
      score.add(std::to_string(i), dev.texts[i],
                ds2::greedy_text(post.log_probs, post.lengths, static_cast<index_t>(k), vocab));
    }
  }
  return score;
}

template <class Optimizer>
int train(const Args& a, Optimizer& opt, ds2::Model<float>& model, const ds2::Config& cfg,
          const asrkit::Vocabulary& vocab, const ds2::FrontEnd& front_end,
          std::vector<asrkit::Utterance> utts, const DevSet& dev, Log& log, index_t first_epoch,
          double best_cer, std::vector<ds2::EpochPoint> history) {
  namespace fs = std::filesystem;
  std::vector<double> durations;
  for (const auto& u : utts) durations.push_back(u.duration);
  asrkit::SortaGradSampler sampler(durations, a.batch, a.seed);
  const auto bank = noise_bank(a.seed);
  asrkit::NoiseAugmentOptions noise;
  noise.probability = a.noise;
  noise.min_snr_db = a.snr_lo;
  noise.max_snr_db = a.snr_hi;
  asrkit::EpochDecay anneal{a.lr, 1.0 / a.anneal};
  const auto start = std::chrono::steady_clock::now();
  auto minutes = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60;
  };

  for (index_t epoch = first_epoch; epoch < a.epochs; ++epoch) {
    opt.set_lr(anneal(epoch));
    // The loader's worker thread owns this generator: one stream per epoch, drawn in batch order.
    auto feature_fn = [rng = asrkit::Rng(a.seed, 1000 + static_cast<std::uint64_t>(epoch)), &bank,
                       noise, &front_end](const asrkit::Audio& audio) mutable {
      if (noise.probability > 0) {
        asrkit::Audio noisy = audio;
        asrkit::maybe_add_noise(noisy.samples.view(), bank, noise, rng);
        return front_end(noisy);
      }
      return front_end(audio);
    };
    asrkit::Loader loader(utts, vocab, feature_fn, sampler.epoch(epoch));
    asrkit::Progress bar(static_cast<index_t>(loader.size()), "epoch " + std::to_string(epoch + 1));
    double loss_sum = 0, norm_sum = 0;
    index_t batches = 0, skipped = 0;
    const auto epoch_start = std::chrono::steady_clock::now();
    while (auto batch = loader.next()) {
      auto out = model.forward_train(batch->features.view(), batch->input_lengths.view());
      asrkit::CtcOptions co;
      co.input = asrkit::CtcInput::logits;
      co.zero_infinity = true;  // an utterance too short for its text after striding: no gradient
      Tensor<float> grad(out.logits.shape());
      Tensor<float> losses(asrkit::Shape{batch->size()});
      const float loss = asrkit::ctc_loss<float>({out.logits.view(), batch->targets.view(),
                                                  out.lengths.view(), batch->target_lengths.view()},
                                                 co, grad.view(), losses.view());
      for (index_t b = 0; b < batch->size(); ++b) skipped += losses.data()[b] == 0.0f;
      opt.zero_grad();
      model.backward(grad.view());
      const double norm = asrkit::clip_grad_norm(model, a.clip);
      if (std::isfinite(norm) && std::isfinite(loss)) {
        opt.step();
        loss_sum += loss;
        norm_sum += norm;
        ++batches;
      }
      bar.tick();
    }
    bar.finish();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    const auto score = evaluate(model, dev, vocab);
    const double mean_loss = batches ? loss_sum / static_cast<double>(batches) : NAN;
    history.push_back(
        {static_cast<double>(epoch + 1), mean_loss, 100 * score.cer(), 100 * score.wer()});
    log("epoch %lld  lr %.3g  train loss %.4f  grad norm %.2f  dev CER %.2f%%  WER %.2f%%  %.0f s "
        "(%.0f utt/s, "
        "data waits %.1f s)%s",
        static_cast<long long>(epoch + 1), anneal(epoch), mean_loss,
        batches ? norm_sum / static_cast<double>(batches) : NAN, 100 * score.cer(),
        100 * score.wer(), secs, static_cast<double>(utts.size()) / secs, loader.wait_seconds(),
        skipped ? (" skipped " + std::to_string(skipped) + " infeasible items").c_str() : "");
    std::map<std::string, std::string> meta{{ds2::kConfigKey, cfg.to_json().dump()},
                                            {ds2::kVocabularyKey, ds2::vocabulary_text(vocab)},
                                            {"epoch", std::to_string(epoch + 1)},
                                            {"dev_cer", std::to_string(100 * score.cer())},
                                            {"dev_wer", std::to_string(100 * score.wer())},
                                            {"history", ds2::history_json(history)}};
    if (front_end.streamable()) meta[ds2::kNormalizationKey] = front_end.to_metadata();
    const std::string last = (fs::path(a.out) / "last.safetensors").string();
    asrkit::save_checkpoint(last + ".tmp", model, opt, meta);
    fs::rename(last + ".tmp", last);  // a crash mid-write never leaves a broken last.safetensors
    if (score.cer() * 100 < best_cer) {
      best_cer = score.cer() * 100;
      meta["best_cer"] = meta["dev_cer"];
      asrkit::save_checkpoint((fs::path(a.out) / "best.safetensors").string(), model, meta);
      log("  new best: %s", (fs::path(a.out) / "best.safetensors").string().c_str());
    }
    ds2::plot_curves((fs::path(a.out) / "curves.png").string(), history);
    if (a.minutes > 0 && minutes() > a.minutes) {
      log("stopping: %.1f minutes passed (--minutes %.1f)", minutes(), a.minutes);
      break;
    }
  }
  log("best dev CER %.2f%%; curves in %s", best_cer,
      (fs::path(a.out) / "curves.png").string().c_str());
  return 0;
}

int run(const Args& a) {
  namespace fs = std::filesystem;
  if (!a.export_from.empty()) {
    auto m = ds2::load_model(a.export_from);
    auto meta = m.metadata;
    meta["exported_from"] = fs::path(a.export_from).filename().string();
    ds2::export_model(a.export_to, *m.model, meta, asrkit::DType::F16);
    std::printf("wrote %s (F16, %lld parameters)\n", a.export_to.c_str(),
                static_cast<long long>(m.model->num_parameters()));
    return 0;
  }
  if (a.threads > 0) asrkit::set_num_threads(a.threads);
  fs::create_directories(a.out);
  Log log((fs::path(a.out) / "log.txt").string(), a.resume);
  const auto vocab =
      a.vocab.empty() ? asrkit::Vocabulary::english() : asrkit::Vocabulary::load(a.vocab);
  ds2::Config cfg = config_of(a.config);
  cfg.vocab = vocab.size();
  cfg.validate();
  auto utts = asrkit::read_manifest(a.train);
  if (a.limit > 0 && static_cast<std::size_t>(a.limit) < utts.size())
    utts.resize(static_cast<std::size_t>(a.limit));
  const auto dev_utts = asrkit::read_manifest(a.dev);
  asrkit::Rng rng(a.seed);
  ds2::Model<float> model(cfg, rng);
  log("asrkit-train-ds2: config %s, %lld parameters, %zu training utterances, %zu dev, %d threads",
      cfg.to_json().dump().c_str(), static_cast<long long>(model.num_parameters()), utts.size(),
      dev_utts.size(), asrkit::num_threads());
  log("optimizer %s lr %g anneal 1/%g clip %g batch %lld noise %.0f%% at %g-%g dB",
      a.optimizer.c_str(), a.lr, a.anneal, a.clip, static_cast<long long>(a.batch), 100 * a.noise,
      a.snr_lo, a.snr_hi);
  ds2::FrontEnd front_end;
  if (a.normalize == "global") {
    // One pass over the clean training audio (the same sums on every run and on --resume).
    asrkit::CmvnStats<float> stats(161);
    for (const auto& u : utts)
      stats.accumulate(ds2::FrontEnd::spectrogram(asrkit::read_wav(u.audio)));
    front_end.global = std::make_shared<const asrkit::CmvnStats<float>>(std::move(stats));
    log("normalisation: fixed per-bin statistics of %.0f training frames",
        front_end.global->count());
  }
  const DevSet dev = load_dev(dev_utts, a.batch, front_end);

  auto go = [&](auto& opt) {
    index_t first = 0;
    double best = 1e300;
    std::vector<ds2::EpochPoint> history;
    if (a.resume) {
      const auto meta =
          asrkit::load_checkpoint((fs::path(a.out) / "last.safetensors").string(), model, opt);
      first = static_cast<index_t>(std::stoll(meta.at("epoch")));
      history = ds2::parse_history(meta.count("history") ? meta.at("history") : "[]");
      for (const auto& h : history) best = std::min(best, h.cer);
      log("resumed after epoch %lld (best dev CER %.2f%%)", static_cast<long long>(first), best);
    }
    return train(a, opt, model, cfg, vocab, front_end, utts, dev, log, first, best, history);
  };
  if (a.optimizer == "adam") {
    asrkit::AdamOptions o;
    o.lr = a.lr;
    asrkit::Adam<float> opt(model, o);
    return go(opt);
  }
  asrkit::SgdOptions o;
  o.lr = a.lr;
  o.momentum = 0.99;
  o.nesterov = true;
  asrkit::Sgd<float> opt(model, o);
  return go(opt);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return kTool.guarded([&] { return run(args); });
}
