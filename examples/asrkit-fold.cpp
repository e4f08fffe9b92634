// asrkit-fold: a trained model with BatchNorms (safetensors) -> the same model with every BN
// folded into the layer before it (SPECS §10.3), plus a report of what was folded.
//
//   asrkit-fold --config model.json --in model.safetensors --out folded.safetensors
//               [--report report.json] [--threads N]
//
// model.json describes the model (docs/folding.md):
//   {"kind": "fusionformer", "input_features": 80, "d_model": 256, "layers": 12, "heads": 4,
//    "ff": 1024, "kernel": 15, "subsampling": 4}              (also "conformer"; "causal", "eps")
//   {"kind": "ds2_rnn", "input_size": 161, "hidden_size": 800, "layers": 5, "cell": "rnn",
//    "bidirectional": true, "share_input_weights": true, "merge": "sum"}
// State-dict names: "embed.*" (the Conv2dSubsampling front end), "encoders.<i>.*", "after_norm.*"
// (conformer) or "rnns.<i>.*" (ds2_rnn). Loading is strict: a missing, extra or mis-shaped tensor
// is an error naming it. As a self-check the tool runs the model on a random batch (variable
// lengths) before and after folding and prints the largest difference; it fails when that is
// above 1e-3 of the output scale. The folded file loads into the same config after
// asrkit::transform::fold_batch_norms on the freshly built model (docs/folding.md).
#include <asrkit/core/rng.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/nn/subsampling.hpp>
#include <asrkit/train/checkpoint.hpp>
#include <asrkit/transform/fold_recurrent.hpp>
#include <asrkit/transform/fusionformer.hpp>

#include <nlohmann/json.hpp>

#include "cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

const char* const kUsage = R"(usage: asrkit-fold --config FILE --in FILE --out FILE [options]

  --config FILE     model description (JSON): kind fusionformer | conformer | ds2_rnn and sizes
  --in FILE         trained weights (safetensors, state_dict names)
  --out FILE        folded weights (safetensors): no BatchNorm tensors
  --report FILE     also write the report as JSON
  --threads N       threads for the self-check forwards
)";

const asrkit_cli::Tool kTool{"asrkit-fold", kUsage};

[[noreturn]] void usage_error(const std::string& what) { kTool.error(what); }

struct Args {
  std::string config, in, out, report;
  int threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& flag = args.flag();
    if (flag == "--config") a.config = args.value();
    else if (flag == "--in") a.in = args.value();
    else if (flag == "--out") a.out = args.value();
    else if (flag == "--report") a.report = args.value();
    else if (flag == "--threads") a.threads = static_cast<int>(args.integer(1));
    else usage_error("unknown option " + flag);
  }
  if (a.config.empty() || a.in.empty() || a.out.empty()) usage_error("--config, --in and --out are required");
  return a;
}

/// A config error: names the file and the key.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The model description with typed, checked access to its keys.
class Config {
 public:
  Config(const std::string& path) : path_(path) {
    std::ifstream f(path);
    if (!f) throw ConfigError("cannot open config " + path);
    try {
      j_ = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("config " + path + " is not valid JSON: " + e.what());
    }
    if (!j_.is_object()) throw ConfigError("config " + path + " must be a JSON object");
  }
  std::string kind() const { return text("kind", ""); }
  asrkit::index_t size(const char* key, asrkit::index_t fallback = -1) const {
    if (!j_.contains(key)) {
      if (fallback >= 0) return fallback;
      throw ConfigError("config " + path_ + ": \"" + key + "\" is required for kind \"" + kind() + "\"");
    }
    const auto& v = j_.at(key);
    if (!v.is_number_integer() || v.get<long long>() < 1)
      throw ConfigError("config " + path_ + ": \"" + key + "\" must be a positive integer, got " + v.dump());
    return v.get<asrkit::index_t>();
  }
  bool flag(const char* key, bool fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_.at(key).is_boolean()) throw ConfigError("config " + path_ + ": \"" + key + "\" must be true or false");
    return j_.at(key).get<bool>();
  }
  double number(const char* key, double fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_.at(key).is_number()) throw ConfigError("config " + path_ + ": \"" + key + "\" must be a number");
    return j_.at(key).get<double>();
  }
  std::string text(const char* key, const char* fallback) const {
    if (!j_.contains(key)) {
      if (*fallback) return fallback;
      throw ConfigError("config " + path_ + ": \"" + key + "\" is required");
    }
    if (!j_.at(key).is_string()) throw ConfigError("config " + path_ + ": \"" + key + "\" must be a string");
    return j_.at(key).get<std::string>();
  }
  [[noreturn]] void bad(const char* key, const std::string& got, const char* allowed) const {
    throw ConfigError("config " + path_ + ": \"" + key + "\" must be " + allowed + ", got \"" + got + "\"");
  }
  const nlohmann::json& json() const { return j_; }

 private:
  std::string path_;
  nlohmann::json j_;
};

using Tensor = asrkit::Tensor<float>;

/// Conv2dSubsampling ("embed.*") + Encoder<Block> ("encoders.*", "after_norm.*").
template <class Block>
struct SubsampledEncoder {
  asrkit::Conv2dSubsampling<float> embed;
  asrkit::Encoder<Block> encoder;

  SubsampledEncoder(const Config& c, bool fusion, asrkit::Rng& rng)
      : embed(c.size("input_features"), c.size("d_model"), subsampling(c, fusion), rng),
        encoder(c.size("layers"), c.size("d_model"), block(c), {}, rng) {}

  static asrkit::SubsamplingOptions subsampling(const Config& c, bool fusion) {
    asrkit::SubsamplingOptions o;
    o.factor = c.size("subsampling", 4);
    o.fusionformer = fusion;
    o.norm.eps = c.number("eps", 1e-5);
    return o;
  }
  static asrkit::ConformerBlockOptions block(const Config& c) {
    asrkit::ConformerBlockOptions o;
    o.heads = c.size("heads");
    o.ff = c.size("ff");
    o.kernel = c.size("kernel");
    o.causal = c.flag("causal", false);
    o.dropout = 0.0;
    o.norm.eps = c.number("eps", 1e-5);
    return o;
  }

  asrkit::index_t input_features() const { return embed.in_features(); }
  asrkit::index_t check_frames() const { return 16 * embed.factor() + 7; }
  Tensor forward(const Tensor& x, const std::vector<std::int32_t>& lengths) const {
    const auto sub = embed.forward(x.view(), asrkit::as_view(lengths));
    return encoder.forward(sub.view(), asrkit::as_view(embed.output_lengths(lengths))).output;
  }
  asrkit::transform::FoldReport fold() {
    if constexpr (std::is_same_v<Block, asrkit::FusionFormerBlock<float>>) {
      return asrkit::transform::fold_fusionformer(embed, encoder);
    } else {
      auto r = asrkit::transform::fold_batch_norms(embed, "embed");
      r.append(asrkit::transform::fold_batch_norms(encoder));
      return r;
    }
  }
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    asrkit::visit_parameters(embed, f, asrkit::join_name(prefix, "embed"));
    asrkit::visit_parameters(encoder, f, prefix);
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    asrkit::visit_buffers(embed, f, asrkit::join_name(prefix, "embed"));
    asrkit::visit_buffers(encoder, f, prefix);
  }
};

/// DS2's recurrent stack ("rnns.<i>.*"): every layer with the sequence-wise input BN.
template <class Layer, class Options>
struct RecurrentStack {
  std::vector<Layer> rnns;

  RecurrentStack(const Config& c, Options o, asrkit::Rng& rng) {
    o.bidirectional = c.flag("bidirectional", true);
    o.share_input_weights = c.flag("share_input_weights", o.bidirectional);
    const std::string merge = c.text("merge", "sum");
    if (merge != "sum" && merge != "concat") c.bad("merge", merge, "sum or concat");
    o.merge = merge == "sum" ? asrkit::RecurrentMerge::sum : asrkit::RecurrentMerge::concat;
    o.input_batch_norm = true;
    o.bias = false;  // BN's β takes b_ih's role (SPECS §3.3)
    o.batch_norm.eps = c.number("eps", 1e-5);
    asrkit::index_t in = c.size("input_size");
    for (asrkit::index_t l = 0; l < c.size("layers"); ++l) {
      rnns.emplace_back(in, c.size("hidden_size"), o, rng);
      in = rnns.back().output_size();
    }
  }

  asrkit::index_t input_features() const { return rnns.front().input_size(); }
  asrkit::index_t check_frames() const { return 24; }
  Tensor forward(const Tensor& x, const std::vector<std::int32_t>& lengths) const {
    Tensor h(x);
    for (const auto& r : rnns) h = r.forward(h.view(), asrkit::as_view(lengths));
    return h;
  }
  asrkit::transform::FoldReport fold() {
    // Check every layer first so that a failing layer leaves the whole stack unfolded.
    for (std::size_t l = 0; l < rnns.size(); ++l) {
      Layer probe = rnns[l];
      asrkit::transform::fold_batch_norms(probe, name(l));
    }
    asrkit::transform::FoldReport r;
    for (std::size_t l = 0; l < rnns.size(); ++l) r.append(asrkit::transform::fold_batch_norms(rnns[l], name(l)));
    return r;
  }
  static std::string name(std::size_t l) { return "rnns." + std::to_string(l); }
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = {}) {
    for (std::size_t l = 0; l < rnns.size(); ++l)
      asrkit::visit_parameters(rnns[l], f, asrkit::join_name(prefix, name(l)));
  }
  template <class F>
  void for_each_buffer(F&& f, std::string_view prefix = {}) {
    for (std::size_t l = 0; l < rnns.size(); ++l)
      asrkit::visit_buffers(rnns[l], f, asrkit::join_name(prefix, name(l)));
  }
};

template <class Model>
std::size_t count_tensors(Model& m) {
  std::size_t n = 0;
  m.for_each_parameter([&](const std::string&, auto&) { ++n; });
  m.for_each_buffer([&](const std::string&, auto&) { ++n; });
  return n;
}

/// Load, self-check input, fold, compare, save, report.
template <class Model>
int fold_model(const Args& a, const Config& c, Model& model) {
  const auto file = asrkit::SafetensorsFile::open(a.in);
  asrkit::load_state_dict(file, model);
  const std::size_t tensors_in = count_tensors(model);

  // Self-check batch: three items of different lengths, features with a non-zero mean.
  const asrkit::index_t steps = model.check_frames();
  const std::vector<std::int32_t> lengths{static_cast<std::int32_t>(steps), static_cast<std::int32_t>(steps * 3 / 4),
                                          static_cast<std::int32_t>(steps / 2)};
  Tensor x({steps, 3, model.input_features()});
  asrkit::Rng rng(2024);
  rng.fill_normal(x.view(), 0.5f, 1.0f);
  const Tensor before = model.forward(x, lengths);
  const auto report = model.fold();
  const Tensor after = model.forward(x, lengths);
  double diff = 0, scale = 0;
  for (asrkit::index_t i = 0; i < before.numel(); ++i) {
    diff = std::max(diff, std::fabs(double(before.data()[i]) - double(after.data()[i])));
    scale = std::max(scale, std::fabs(double(before.data()[i])));
  }
  const double relative = scale > 0 ? diff / scale : diff;

  asrkit::SafetensorsWriter w;
  asrkit::add_state_dict(w, model);
  w.set_metadata("format", "pt");
  w.set_metadata("asrkit_fold", "folded " + std::to_string(report.size()) + " BatchNorms");
  w.set_metadata("config", c.json().dump());
  w.save(a.out);

  nlohmann::json folded = nlohmann::json::array();
  for (const auto& r : report.folded) {
    std::printf("folded %-48s into %-40s (%s, %s)\n", r.norm.c_str(), r.layer.c_str(),
                asrkit::transform::to_string(r.side), r.exact ? "exact" : "inexact");
    folded.push_back({{"norm", r.norm}, {"layer", r.layer}, {"side", asrkit::transform::to_string(r.side)},
                      {"exact", r.exact}, {"channels", r.channels}, {"note", r.note}});
  }
  std::printf("%zu BatchNorms folded; %zu tensors in, %zu out; self-check max |diff| = %.3g (%.3g of the output scale)\n",
              report.size(), tensors_in, count_tensors(model), diff, relative);
  if (!a.report.empty()) {
    nlohmann::json j = {{"kind", c.kind()},
                        {"input", a.in},
                        {"output", a.out},
                        {"folded", folded},
                        {"tensors_in", tensors_in},
                        {"tensors_out", count_tensors(model)},
                        {"self_check", {{"max_abs_diff", diff}, {"max_abs_output", scale}, {"relative", relative},
                                        {"frames", steps}, {"lengths", lengths}}}};
    std::ofstream(a.report) << j.dump(2) << "\n";
  }
  if (!(relative <= 1e-3)) {
    std::fprintf(stderr, "asrkit-fold: self-check failed: outputs before and after folding differ by %.3g of their scale\n",
                 relative);
    return 1;
  }
  return 0;
}

int run(const Args& a) {
  if (a.threads > 0) asrkit::set_num_threads(a.threads);
  const Config c(a.config);
  const std::string kind = c.kind();
  asrkit::Rng rng(0);  // the weights are overwritten by --in
  if (kind == "fusionformer" || kind == "conformer") {
    if (kind == "fusionformer") {
      SubsampledEncoder<asrkit::FusionFormerBlock<float>> m(c, true, rng);
      return fold_model(a, c, m);
    }
    SubsampledEncoder<asrkit::ConformerBlock<float>> m(c, false, rng);
    return fold_model(a, c, m);
  }
  if (kind == "ds2_rnn") {
    const std::string cell = c.text("cell", "rnn");
    if (cell == "rnn") {
      asrkit::RNNOptions o;
      o.activation = asrkit::RecurrentActivation::clipped_relu;
      RecurrentStack<asrkit::RNN<float>, asrkit::RNNOptions> m(c, o, rng);
      return fold_model(a, c, m);
    }
    if (cell == "gru") {
      asrkit::GRUOptions o;
      o.update = asrkit::GRUUpdate::ds2;
      o.candidate = asrkit::RecurrentActivation::clipped_relu;
      RecurrentStack<asrkit::GRU<float>, asrkit::GRUOptions> m(c, o, rng);
      return fold_model(a, c, m);
    }
    c.bad("cell", cell, "rnn or gru");
  }
  c.bad("kind", kind, "fusionformer, conformer or ds2_rnn");
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return kTool.guarded([&] { return run(args); });
}
