// transformer_ctc: a depth-prunable Transformer-CTC (Lee, Kang & Watanabe 2021; SPECS §8) trained
// on a synthetic "phone" task, four ways (baseline, + intermediate CTC, + stochastic depth, both),
// then pruned at run time with each layer-selection strategy of SPECS §8.3 without fine-tuning.
//
//   transformer_ctc [--layers 8] [--d-model 48] [--steps 1500] [--threads 2] [--seed 1]
//                   [--lr 1e-3] [--dropout 0.1] [--variants baseline,interctc,sd,both]
//                   [--markdown] [--heatmaps DIR]
//
// The task needs context: each token ("word") is a sequence of three "phones" drawn from a small
// shared set, each phone lasts 2-4 noisy frames, so no single frame identifies a word and the
// encoder has to look along time. Output: dev token error rate (greedy CTC) for every variant,
// strategy and depth, and the cost of each strategy in forward passes over the dev set
// (SPECS §8.5: without regularisation pruning is catastrophic; with InterCTC + SD the pruned
// models stay close).
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/analysis/heatmap.hpp>
#include <asrkit/decode/greedy.hpp>
#include <asrkit/decode/metrics.hpp>
#include <asrkit/loss/ctc.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/transformer_block.hpp>
#include <asrkit/train/clip.hpp>
#include <asrkit/train/optimizer.hpp>
#include <asrkit/transform/depth_pruning.hpp>

#include "../cli.hpp"

#include <chrono>
#include <cstdio>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace {

using asrkit::index_t;
using asrkit::Tensor;
using Block = asrkit::TransformerBlock<float>;
using Batch = asrkit::analysis::SequenceBatch<float>;

// ---- the synthetic task -------------------------------------------------------------------------

index_t pick(asrkit::Rng& rng, index_t n) { return static_cast<index_t>(rng.uniform_int(static_cast<std::uint64_t>(n))); }

constexpr index_t kFeatures = 16, kPhones = 6, kPhonesPerWord = 3, kWords = 12, kVocab = kWords + 1;  // blank 0

struct Utterances {
  Batch features;                      // x [T, B, F], lengths
  std::vector<std::int32_t> targets;   // [B, S_max] padded
  std::vector<std::int32_t> target_lengths;
  index_t max_target = 0;
};

class PhoneTask {
 public:
  /// `language`: the phones and spellings (train and dev share it); `stream`: the utterances.
  PhoneTask(std::uint64_t language, std::uint64_t stream) : rng_(stream), phone_emb_(asrkit::Shape{kPhones + 1, kFeatures}) {
    asrkit::Rng r(language);
    r.fill_normal(phone_emb_.view(), 0.0f, 1.0f);  // row kPhones is silence
    for (index_t f = 0; f < kFeatures; ++f) phone_emb_(kPhones, f) = 0.0f;
    // distinct 3-phone spellings, phones shared between words
    while (static_cast<index_t>(spelling_.size()) < kWords) {
      std::vector<index_t> s(static_cast<std::size_t>(kPhonesPerWord));
      for (auto& p : s) p = pick(r, kPhones);
      bool dup = false;
      for (const auto& o : spelling_) dup = dup || o == s;
      if (!dup) spelling_.push_back(s);
    }
  }

  Utterances batch(index_t items) {
    std::vector<std::vector<std::int32_t>> words(static_cast<std::size_t>(items));
    std::vector<std::vector<index_t>> frames(static_cast<std::size_t>(items));  // phone per frame
    Utterances u;
    index_t steps = 0;
    for (index_t b = 0; b < items; ++b) {
      const index_t n = 3 + pick(rng_, 4);
      auto& fr = frames[static_cast<std::size_t>(b)];
      for (index_t i = 0; i < n; ++i) {
        const index_t w = pick(rng_, kWords);
        words[static_cast<std::size_t>(b)].push_back(static_cast<std::int32_t>(w + 1));
        for (index_t p : spelling_[static_cast<std::size_t>(w)])
          for (index_t k = 2 + pick(rng_, 3); k > 0; --k) fr.push_back(p);
        for (index_t k = pick(rng_, 3); k > 0; --k) fr.push_back(kPhones);
      }
      steps = std::max<index_t>(steps, static_cast<index_t>(fr.size()));
      u.max_target = std::max<index_t>(u.max_target, n);
    }
    u.features.x = Tensor<float>(asrkit::Shape{steps, items, kFeatures});
    for (index_t b = 0; b < items; ++b) {
      const auto& fr = frames[static_cast<std::size_t>(b)];
      u.features.lengths.push_back(static_cast<std::int32_t>(fr.size()));
      for (index_t t = 0; t < static_cast<index_t>(fr.size()); ++t)
        for (index_t f = 0; f < kFeatures; ++f)
          u.features.x(t, b, f) = phone_emb_(fr[static_cast<std::size_t>(t)], f) + 0.6f * static_cast<float>(rng_.normal());
    }
    u.targets.assign(static_cast<std::size_t>(items * u.max_target), 0);
    for (index_t b = 0; b < items; ++b) {
      const auto& w = words[static_cast<std::size_t>(b)];
      u.target_lengths.push_back(static_cast<std::int32_t>(w.size()));
      std::copy(w.begin(), w.end(), u.targets.begin() + b * u.max_target);
    }
    return u;
  }

 private:
  asrkit::Rng rng_;
  Tensor<float> phone_emb_;
  std::vector<std::vector<index_t>> spelling_;
};

// ---- the model: input projection, Transformer encoder, CTC head shared by final output and taps --

struct Variant {
  std::string name;
  bool interctc = false;
  bool stochastic_depth = false;
};

struct Model {
  asrkit::Linear<float> input;
  asrkit::Encoder<Block> encoder;
  asrkit::Linear<float> head;

  Model(index_t layers, index_t d, double dropout, const Variant& v, asrkit::Rng& rng)
      : input(kFeatures, d, rng), encoder(layers, d, block_options(d, dropout), encoder_options(layers, v), rng), head(d, kVocab, rng) {}

  static asrkit::TransformerBlockOptions block_options(index_t d, double dropout) {
    asrkit::TransformerBlockOptions o;
    o.heads = 4;
    o.ff = 4 * d;
    o.dropout = dropout;
    return o;
  }
  // SPECS §8.1: taps at L/4 and L/2 with w = 0.66; stochastic depth 0.3, linear in depth.
  static asrkit::EncoderOptions encoder_options(index_t layers, const Variant& v) {
    asrkit::EncoderOptions eo;
    if (v.interctc) eo.intermediate_layers = {std::max<index_t>(1, layers / 4), std::max<index_t>(2, layers / 2)};
    if (v.stochastic_depth) eo.stochastic_depth.rate = 0.3;
    eo.positional.x_scale = 1.0;  // the projected features are not embeddings: sqrt(D) would drown the positions
    return eo;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    asrkit::visit_parameters(input, f, "input");
    asrkit::visit_parameters(encoder, f, "encoder");
    asrkit::visit_parameters(head, f, "ctc");
  }
};

// CTC loss of `logits` [T, B, V] (softmax fused), gradient with respect to the logits, scaled.
float ctc(const Tensor<float>& logits, const Utterances& u, double scale, Tensor<float>& grad) {
  asrkit::CtcOptions o;
  o.input = asrkit::CtcInput::logits;
  o.grad_scale = scale;
  grad = Tensor<float>(logits.shape());
  const asrkit::Shape tshape{static_cast<index_t>(u.target_lengths.size()), u.max_target};
  asrkit::CtcProblem<float> p{logits.view(), asrkit::TensorView<const std::int32_t>(u.targets.data(), tshape),
                              asrkit::as_view(u.features.lengths), asrkit::as_view(u.target_lengths)};
  return asrkit::ctc_loss(p, o, grad.view());
}

// One training step; InterCTC loss (SPECS §7.1): (1 − w)·L_final + w/K·Σ_k L_tap_k.
float train_step(Model& m, asrkit::Adam<float>& opt, const Utterances& u) {
  asrkit::zero_grad(m);
  const auto& taps = m.encoder.options().intermediate_layers;
  const double w = taps.empty() ? 0.0 : 0.66;
  const auto len = asrkit::as_view(u.features.lengths);
  const auto h = m.input.forward_train(u.features.x.view());
  auto out = m.encoder.forward_train(h.view(), len);
  Tensor<float> g;
  const auto logits = m.head.forward_train(out.output.view());
  float loss = static_cast<float>(1 - w) * ctc(logits, u, 1 - w, g);
  const auto d_output = m.head.backward(g.view());
  std::vector<Tensor<float>> d_taps;
  for (std::size_t k = 0; k < taps.size(); ++k) {
    auto head = m.head;  // the shared head's cache is per input: a copy per tap, grads merged below
    asrkit::zero_grad(head);
    const auto tl = head.forward_train(out.intermediates[k].view());
    const double wk = w / static_cast<double>(taps.size());
    loss += static_cast<float>(wk) * ctc(tl, u, wk, g);
    d_taps.push_back(head.backward(g.view()));
    asrkit::add_grads<float>(m.head, head);
  }
  const auto dh = m.encoder.backward(d_output.view(), d_taps);
  m.input.backward(dh.view());
  asrkit::clip_grad_norm(m, 5.0);  // SPECS §8.1: grad-clip 5
  opt.step();
  return loss;
}

// ---- evaluation: dev token error rate of the encoder's active layers ----------------------------

struct DevSet {
  std::vector<Batch> projected;  // the input projection applied once: the encoder's input
  std::vector<Utterances> utterances;
};

DevSet make_dev(const Model& m, PhoneTask& task, index_t batches, index_t items) {
  DevSet dev;
  for (index_t i = 0; i < batches; ++i) {
    dev.utterances.push_back(task.batch(items));
    const auto& f = dev.utterances.back().features;
    dev.projected.push_back({m.input.forward(f.x.view()), f.lengths});
  }
  return dev;
}

double token_error_rate(const asrkit::Encoder<Block>& enc, const asrkit::Linear<float>& head, const DevSet& dev) {
  asrkit::EditCounts total;
  for (std::size_t i = 0; i < dev.projected.size(); ++i) {
    const auto& b = dev.projected[i];
    const auto logits = head.forward(enc.forward(b.x.view(), asrkit::as_view(b.lengths)).output.view());
    std::vector<index_t> lengths(b.lengths.begin(), b.lengths.end());
    const auto hyps = asrkit::ctc_greedy_batch(logits.view(), lengths);
    const auto& u = dev.utterances[i];
    for (std::size_t k = 0; k < hyps.size(); ++k) {
      const auto* t = u.targets.data() + k * static_cast<std::size_t>(u.max_target);
      std::vector<std::int32_t> ref(t, t + u.target_lengths[k]);
      total += asrkit::edit_counts(ref, hyps[k].tokens);
    }
  }
  return total.error_rate();
}

// ---- driver ----------------------------------------------------------------------------------------

struct Args {
  index_t layers = 8, d_model = 48, steps = 1500, batch = 16;
  double lr = 1e-3, dropout = 0.1;
  int threads = 2;
  std::uint64_t seed = 1;
  std::vector<std::string> variants{"baseline", "interctc", "sd", "both"};
  bool markdown = false;
  std::string heatmaps;  // folder for the SVCCA matrices (PNG), empty: none
};

const char* const kUsage =
    "usage: transformer_ctc [--layers N] [--d-model D] [--steps S] [--batch B] [--threads N] [--seed S]\n"
    "                       [--lr X] [--dropout P] [--variants baseline,interctc,sd,both]\n"
    "                       [--markdown] [--heatmaps DIR]\n";
const asrkit_cli::Tool kTool{"transformer_ctc", kUsage};

Args parse(int argc, char** argv) {
  Args a;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& k = args.flag();
    if (k == "--layers") a.layers = args.integer(4);
    else if (k == "--d-model") a.d_model = args.integer(8);
    else if (k == "--steps") a.steps = args.integer(1);
    else if (k == "--batch") a.batch = args.integer(2);
    else if (k == "--threads") a.threads = static_cast<int>(args.integer(1));
    else if (k == "--seed") a.seed = static_cast<std::uint64_t>(args.integer(0));
    else if (k == "--lr") a.lr = args.number();
    else if (k == "--dropout") a.dropout = args.number();
    else if (k == "--markdown") a.markdown = true;
    else if (k == "--heatmaps") a.heatmaps = args.value();
    else if (k == "--variants") {
      a.variants.clear();
      std::stringstream ss(args.value());
      for (std::string v; std::getline(ss, v, ',');) {
        if (v != "baseline" && v != "interctc" && v != "sd" && v != "both") args.error("unknown variant '" + v + "'");
        a.variants.push_back(v);
      }
    } else args.error("unknown option " + k);
  }
  if (a.d_model % 4 != 0) kTool.error("--d-model must be a multiple of 4 (4 heads)");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  asrkit::set_num_threads(args.threads);
  const index_t L = args.layers;
  const std::vector<index_t> depths{L / 4, L / 2, 3 * L / 4, L};
  const asrkit::transform::PruningStrategy strategies[] = {
      asrkit::transform::PruningStrategy::top, asrkit::transform::PruningStrategy::svcca_redundancy,
      asrkit::transform::PruningStrategy::svcca_blocks, asrkit::transform::PruningStrategy::greedy_score};
  std::printf("Transformer-CTC %lld x d%lld, %lld steps of batch %lld, %d threads, seed %llu\n",
              static_cast<long long>(L), static_cast<long long>(args.d_model), static_cast<long long>(args.steps),
              static_cast<long long>(args.batch), args.threads, static_cast<unsigned long long>(args.seed));
  if (args.markdown) {
    std::printf("\n| variant | strategy |");
    for (index_t k : depths) std::printf(" %lld layers |", static_cast<long long>(k));
    std::printf(" dev passes |\n|---|---|");
    for (std::size_t i = 0; i <= depths.size(); ++i) std::printf("---|");
    std::printf("\n");
  }
  for (const auto& name : args.variants) {
    const Variant v{name, name == "interctc" || name == "both", name == "sd" || name == "both"};
    asrkit::Rng rng(args.seed);
    Model m(L, args.d_model, args.dropout, v, rng);
    asrkit::AdamOptions ao;
    ao.lr = args.lr;
    asrkit::Adam<float> opt(m, ao);
    PhoneTask train(args.seed, args.seed * 1000 + 1), dev_task(args.seed, args.seed * 1000 + 2);
    const auto t0 = std::chrono::steady_clock::now();
    double avg = 0;
    for (index_t s = 1; s <= args.steps; ++s) {
      avg = 0.98 * avg + 0.02 * train_step(m, opt, train.batch(args.batch));
      if (!args.markdown && (s % 250 == 0 || s == args.steps))
        std::printf("  [%s] step %lld  loss %.3f\n", name.c_str(), static_cast<long long>(s), avg / (1 - std::pow(0.98, s)));
    }
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const DevSet dev = make_dev(m, dev_task, 8, 32);
    const auto problem = asrkit::transform::encoder_pruning_problem(
        m.encoder, dev.projected, [&](const asrkit::Encoder<Block>& e) { return token_error_rate(e, m.head, dev); });
    if (!args.markdown)
      std::printf("%s: trained in %.1f s, full-depth dev token error rate %.2f%%\n", name.c_str(), train_s,
                  100 * token_error_rate(m.encoder, m.head, dev));
    if (!args.heatmaps.empty()) {  // the L+1 x L+1 SVCCA matrix of the streams X^(0..L) on dev
      const auto S = asrkit::analysis::similarity_matrix(problem.streams(m.encoder.active_layers()));
      const std::string path = args.heatmaps + "/svcca_" + name + ".png";
      asrkit::analysis::write_heatmap_png(path, S);
      if (!args.markdown) std::printf("  SVCCA matrix of X^(0..%lld): %s\n", static_cast<long long>(L), path.c_str());
    }
    for (auto strategy : strategies) {
      const auto results = asrkit::transform::prune_sweep(problem, depths, strategy);
      index_t passes = 0;
      std::string row = args.markdown ? "| " + name + " | " + asrkit::transform::to_string(strategy) + " |"
                                      : "  " + std::string(asrkit::transform::to_string(strategy)) + ":";
      for (const auto& r : results) {
        passes += r.cost.forward_passes();
        char cell[64];
        std::snprintf(cell, sizeof cell, args.markdown ? " %.1f |" : " %.1f%%", 100 * r.score);
        row += cell;
      }
      std::printf("%s%s %lld%s\n", row.c_str(), args.markdown ? "" : "  (dev passes:", static_cast<long long>(passes),
                  args.markdown ? " |" : ")");
    }
  }
  return 0;
}
