// asrkit-svcca: SVCCA similarity of activations (Raghu et al. 2017; docs/svcca.md).
//
//   asrkit-svcca pair A.safetensors B.safetensors [--tensor-a NAME --tensor-b NAME] [--json]
//   asrkit-svcca layers acts.safetensors [--png out.png] [--json]
//   asrkit-svcca model --config enc.json --weights enc.safetensors --features feats.safetensors
//                [--png out.png] [--json]
//
// Activations are [N, D] tensors (rows = frames, columns = neurons), F32 (computed in float) or
// F64 (in double). `layers` compares every tensor of a file with every other, in natural name
// order (layer.2 before layer.10). `model` builds an asrkit::Encoder from the JSON config, loads
// the weights strictly by name, runs forward_streams over "features" [T, B, F] (+ I32 "lengths")
// and compares the residual streams at every position 0..L. Run with --help for every option.
#include <asrkit/analysis/activations.hpp>
#include <asrkit/analysis/heatmap.hpp>
#include <asrkit/analysis/similarity.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/core/rng.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/transformer_block.hpp>
#include <asrkit/train/checkpoint.hpp>

#include <nlohmann/json.hpp>

#include "cli.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

namespace an = asrkit::analysis;
using asrkit::index_t;
using asrkit::Tensor;

const char* const kUsage = R"(usage: asrkit-svcca pair A.safetensors B.safetensors [options]
       asrkit-svcca layers ACTS.safetensors [options]
       asrkit-svcca model --config ENC.json (--weights W.safetensors | --init-seed N)
                          --features FEATS.safetensors [options]

pair      SVCCA of two [N, D] activation tensors (the same N frames)
  --tensor-a NAME       tensor in A (default: its only tensor)
  --tensor-b NAME       tensor in B (default: its only tensor)
layers    the L x L SVCCA matrix of every [N, D_l] tensor in the file (natural name order)
model     the matrix of an encoder's residual streams at positions 0..L
  --config FILE         JSON: {"block": "transformer"|"conformer"|"fusionformer", "layers": L,
                        "d_model": D, "heads": H, "ff": F, "kernel": K}
  --weights FILE        safetensors state_dict (strict: every name, no extra, shapes checked)
  --init-seed N         random initial weights instead (trying the tool out)
  --save-weights FILE   write the encoder's weights (e.g. after --init-seed)
  --features FILE       "features" [T, B, D] float tensor and optional I32 "lengths" [B]
  --save-streams FILE   write the captured streams, "stream.0" ... "stream.L", each [N, D]
options
  --variance V          share of variance the SVD step keeps (default 0.99)
  --keep-dims K         keep exactly K SVD directions instead
  --epsilon E           cca_core's epsilon (default 1e-10)
  --png FILE            heatmap of the matrix (layers, model)
  --fit-range           heatmap colours span the matrix's min..max instead of 0..1
  --json                JSON instead of text
  --threads N           threads (default: all)
)";

const asrkit_cli::Tool kTool{"asrkit-svcca", kUsage};

[[noreturn]] void usage_error(const std::string& what) { kTool.error(what); }

struct Args {
  std::string mode;
  std::vector<std::string> files;
  std::string tensor_a, tensor_b, png, config, weights, save_weights, features, save_streams;
  long long init_seed = -1;
  bool json = false, fit_range = false;
  int threads = 0;
  an::SvccaOptions options;
};

Args parse(int argc, char** argv) {
  Args a;
  asrkit_cli::Arguments args(argc, argv, kTool);
  while (args.next()) {
    const std::string& flag = args.flag();
    if (flag == "--tensor-a") a.tensor_a = args.value();
    else if (flag == "--tensor-b") a.tensor_b = args.value();
    else if (flag == "--png") a.png = args.value();
    else if (flag == "--config") a.config = args.value();
    else if (flag == "--weights") a.weights = args.value();
    else if (flag == "--init-seed") a.init_seed = static_cast<long long>(args.number());
    else if (flag == "--save-weights") a.save_weights = args.value();
    else if (flag == "--features") a.features = args.value();
    else if (flag == "--save-streams") a.save_streams = args.value();
    else if (flag == "--variance") a.options.variance_kept = args.number();
    else if (flag == "--keep-dims") a.options.keep_dims = static_cast<index_t>(args.number());
    else if (flag == "--epsilon") a.options.cca.epsilon = args.number();
    else if (flag == "--json") a.json = true;
    else if (flag == "--fit-range") a.fit_range = true;
    else if (flag == "--threads") a.threads = static_cast<int>(args.number());
    else if (!flag.empty() && flag[0] == '-') usage_error("unknown option " + flag);
    else if (a.mode.empty()) a.mode = flag;
    else a.files.push_back(flag);
  }
  const std::size_t want = a.mode == "pair" ? 2 : a.mode == "layers" ? 1 : a.mode == "model" ? 0 : 99;
  if (want == 99) usage_error(a.mode.empty() ? "missing mode (pair, layers or model)" : "unknown mode " + a.mode);
  if (a.files.size() != want)
    usage_error(a.mode + " takes " + std::to_string(want) + " file argument(s), got " + std::to_string(a.files.size()));
  if (a.mode == "model" && (a.config.empty() || a.features.empty() || (a.weights.empty() == (a.init_seed < 0))))
    usage_error("model needs --config, --features and one of --weights or --init-seed");
  return a;
}

// The one tensor of a file, or the named one (FormatError-style message when absent).
std::string pick_tensor(const asrkit::SafetensorsFile& f, const std::string& path, const std::string& name) {
  const auto names = f.names();
  if (!name.empty()) {
    if (!f.contains(name)) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      throw std::runtime_error("no tensor '" + name + "' in " + path + " (it holds: " + all + ")");
    }
    return name;
  }
  if (names.size() != 1)
    throw std::runtime_error(path + " holds " + std::to_string(names.size()) +
                             " tensors; name one with --tensor-a / --tensor-b");
  return names[0];
}

// "layer.2" < "layer.10": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      const auto strip = [](const std::string& s) { return s.substr(std::min(s.find_first_not_of('0'), s.size())); };
      const std::string sa = strip(na), sb = strip(nb);
      if (sa.size() != sb.size()) return sa.size() < sb.size();
      if (sa != sb) return sa < sb;
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

nlohmann::json result_json(const an::SvccaResult& r, index_t n) {
  return {{"n", n}, {"mean", r.mean}, {"mean_squared", r.mean_squared}, {"thresholded_mean", r.thresholded_mean},
          {"pwcca", r.pwcca}, {"kept_a", r.kept_x}, {"kept_b", r.kept_y}, {"rho", r.rho}};
}

template <class T>
int run_pair(const Args& a) {
  const auto fa = asrkit::SafetensorsFile::open(a.files[0]);
  const auto fb = asrkit::SafetensorsFile::open(a.files[1]);
  const Tensor<T> x = fa.read<T>(pick_tensor(fa, a.files[0], a.tensor_a));
  const Tensor<T> y = fb.read<T>(pick_tensor(fb, a.files[1], a.tensor_b));
  const an::SvccaResult r = an::svcca(x, y, a.options);
  if (a.json) {
    std::cout << result_json(r, x.dim(0)).dump(2) << "\n";
    return 0;
  }
  std::printf("frames            %lld\nsvcca mean        %.6f\nmean of rho^2     %.6f\nthresholded mean  %.6f\n"
              "pwcca             %.6f\nkept directions   %lld (a), %lld (b)\nrho              ",
              static_cast<long long>(x.dim(0)), r.mean, r.mean_squared, r.thresholded_mean, r.pwcca,
              static_cast<long long>(r.kept_x), static_cast<long long>(r.kept_y));
  for (double v : r.rho) std::printf(" %.4f", v);
  std::printf("\n");
  return 0;
}

template <class T>
int report_matrix(const Args& a, const std::vector<std::string>& names, const std::vector<Tensor<T>>& layers) {
  const auto results = an::similarity_results(layers, a.options);
  std::vector<std::vector<double>> m(results.size(), std::vector<double>(results.size()));
  for (std::size_t i = 0; i < m.size(); ++i)
    for (std::size_t j = 0; j < m.size(); ++j) m[i][j] = results[i][j].mean;
  if (!a.png.empty()) {
    an::HeatmapOptions h;
    h.fit_range = a.fit_range;
    an::write_heatmap_png(a.png, m, h);
  }
  if (a.json) {
    nlohmann::json kept = nlohmann::json::array();
    for (std::size_t i = 0; i < m.size(); ++i) kept.push_back(results[i][i].kept_x);
    std::cout << nlohmann::json{{"layers", names}, {"n", layers.empty() ? 0 : layers[0].dim(0)},
                                {"kept", kept}, {"matrix", m}}.dump(2) << "\n";
    return 0;
  }
  std::size_t width = 6;
  for (const auto& n : names) width = std::max(width, n.size());
  std::printf("SVCCA mean, %zu layers, %lld frames\n", m.size(), static_cast<long long>(layers.empty() ? 0 : layers[0].dim(0)));
  for (std::size_t i = 0; i < m.size(); ++i) {
    std::printf("%-*s", static_cast<int>(width), names[i].c_str());
    for (double v : m[i]) std::printf(" %.4f", v);
    std::printf("\n");
  }
  if (!a.png.empty()) std::printf("heatmap written to %s\n", a.png.c_str());
  return 0;
}

template <class T>
int run_layers(const Args& a, const asrkit::SafetensorsFile& f) {
  auto names = f.names();
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<Tensor<T>> layers;
  for (const auto& n : names) layers.push_back(f.read<T>(n));
  return report_matrix(a, names, layers);
}

template <class Block>
int run_model(const Args& a, const nlohmann::json& cfg) {
  using T = float;
  typename Block::Options bo;
  bo.heads = cfg.value("heads", bo.heads);
  bo.ff = cfg.value("ff", bo.ff);
  if constexpr (Block::relative_positions) bo.kernel = cfg.value("kernel", bo.kernel);
  const index_t layers = cfg.value("layers", index_t(0)), d_model = cfg.value("d_model", index_t(0));
  asrkit::Rng rng(static_cast<std::uint64_t>(std::max(a.init_seed, 0LL)));
  asrkit::Encoder<Block> enc(layers, d_model, bo, asrkit::EncoderOptions{}, rng);
  if (!a.weights.empty()) asrkit::load_state_dict(asrkit::SafetensorsFile::open(a.weights), enc);
  if (!a.save_weights.empty()) {
    asrkit::SafetensorsWriter w;
    asrkit::add_state_dict(w, enc);
    w.save(a.save_weights);
  }
  const auto feats = asrkit::SafetensorsFile::open(a.features);
  an::SequenceBatch<T> batch{feats.read<T>(pick_tensor(feats, a.features, "features")), {}};
  if (feats.contains("lengths")) {
    const auto len = feats.read<std::int32_t>("lengths");
    batch.lengths.assign(len.data(), len.data() + len.numel());
  }
  const auto streams = an::capture_encoder_streams(enc, std::vector<an::SequenceBatch<T>>{batch});
  std::vector<std::string> names;
  for (std::size_t p = 0; p < streams.size(); ++p) names.push_back("stream." + std::to_string(p));
  if (!a.save_streams.empty()) {
    asrkit::SafetensorsWriter w;
    for (std::size_t p = 0; p < streams.size(); ++p) w.add(names[p], streams[p]);
    w.save(a.save_streams);
  }
  return report_matrix(a, names, streams);
}

int run(const Args& a) {
  if (a.threads > 0) asrkit::set_num_threads(a.threads);
  if (a.mode == "model") {
    std::ifstream in(a.config);
    if (!in) throw std::runtime_error("cannot open config " + a.config);
    const auto cfg = nlohmann::json::parse(in);
    const std::string block = cfg.value("block", std::string("transformer"));
    if (block == "transformer") return run_model<asrkit::TransformerBlock<float>>(a, cfg);
    if (block == "conformer") return run_model<asrkit::ConformerBlock<float>>(a, cfg);
    if (block == "fusionformer") return run_model<asrkit::FusionFormerBlock<float>>(a, cfg);
    throw std::runtime_error("config " + a.config + ": block must be transformer, conformer or fusionformer, got " + block);
  }
  // F64 files are analysed in double, anything else in float.
  const auto first = asrkit::SafetensorsFile::open(a.files[0]);
  bool f64 = true;
  for (const auto& n : first.names()) f64 = f64 && first.info(n).dtype == asrkit::DType::F64;
  if (a.mode == "pair") return f64 ? run_pair<double>(a) : run_pair<float>(a);
  return f64 ? run_layers<double>(a, first) : run_layers<float>(a, first);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  return kTool.guarded([&] { return run(args); });
}
