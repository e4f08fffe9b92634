// asrkit/train/checkpoint.hpp - saving and loading model (and optimizer) state as safetensors.
//
//   asrkit::save_checkpoint("ds2.safetensors", model, opt, {{"epoch", "7"}});
//   asrkit::load_checkpoint("ds2.safetensors", model, opt);     // strict: names and shapes
//   asrkit::load_checkpoint("from_pytorch.safetensors", model); // a torch state_dict export
//
// Model tensors are stored under their state_dict names (parameters, then buffers such as
// running statistics), so a file written from PyTorch with
//   safetensors.torch.save_file(model.state_dict(), path)
// loads directly, and ours loads into PyTorch. Optimizer state is PyTorch's
// optimizer.state_dict() flattened with '.' under "optimizer." as a module's state_dict is: the
// tensors "optimizer.state.<k>.<key>" (only parameters that have stepped, as in PyTorch) and the
// metadata "optimizer.param_groups.0.<option>" (JSON literals, "params" included);
// tools/torch_optimizer_state.py converts in Python. Loading the model alone ignores it.
// Loading is strict and atomic: every expected name must be present with the expected shape (a
// parameter's optimizer state: all of it or none) and the file may hold no other model tensor;
// otherwise an asrkit error names the tensor and its layer, the expected and the actual value,
// and the model is left unchanged. Floating-point tensors convert
// on load (F16/BF16/F32/F64 into float or double), as load_state_dict copies do.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/dtype.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/train/optimizer.hpp>

namespace asrkit {

/// Prefix of optimizer state in a checkpoint file.
inline constexpr std::string_view kOptimizerPrefix = "optimizer";

namespace detail {
namespace checkpoint {

/// One tensor of the model's state: its name and shape, a writer and a two-phase loader
/// (read into a temporary, then commit), so a failing load changes nothing. Entries that share a
/// `group` (one parameter's optimizer state, which PyTorch creates at the parameter's first
/// step) load all or none; when the file has none of them, each one's `absent` commit runs.
struct Entry {
  std::string name;
  std::string owner;  ///< for messages: "layer '1' (BatchNorm)"
  Shape shape;
  bool floating = true;
  std::function<void(SafetensorsWriter&)> save;
  std::function<std::function<void()>(const SafetensorsFile&)> read;
  std::string group;
  std::function<void()> absent;
};

template <class T>
Entry make_entry(const std::string& name, Tensor<T>& t) {
  Entry e;
  e.name = name;
  e.shape = t.shape();
  e.floating = std::is_floating_point_v<T>;
  e.save = [&t, name](SafetensorsWriter& w) { w.add(name, t); };
  e.read = [&t, name](const SafetensorsFile& f) -> std::function<void()> {
    auto value = std::make_shared<Tensor<T>>(f.read<T>(name));
    return [&t, value] { t = std::move(*value); };
  };
  return e;
}

/// Collects the entries of a model's tensors, each with the innermost layer that holds it (the
/// enter/leave hooks of nn/parameter.hpp).
struct ModelVisitor {
  std::vector<Entry>& out;
  std::vector<std::string> layers;

  void enter(std::string_view prefix, std::string_view type) {
    layers.push_back(prefix.empty() ? detail::str("layer ", type)
                                    : detail::str("layer '", prefix, "' (", type, ")"));
  }
  void leave() { layers.pop_back(); }
  template <class T>
  void operator()(const std::string& name, Parameter<T>& p) {
    (*this)(name, p.value);
  }
  template <class T>
  void operator()(const std::string& name, Tensor<T>& t) {
    out.push_back(make_entry(name, t));
    out.back().owner = layers.empty() ? "the model" : layers.back();
  }
};

/// Model state: parameters (their values) then buffers.
template <class Model>
std::vector<Entry> model_entries(Model& model, std::string_view prefix) {
  static_assert(detail::has_for_each_parameter<Model>::value,
                "checkpoint: the model needs for_each_parameter(f, std::string_view prefix) "
                "(nn/parameter.hpp)");
  std::vector<Entry> out;
  ModelVisitor visit{out, {}};
  visit_parameters(model, visit, prefix);
  visit_buffers(model, visit, prefix);
  return out;
}

/// PyTorch's "step" state is a count; anything else in a file would derail the bias correction.
inline void check_step_count(const char* what, const std::string& name, const std::string& owner,
                             const Tensor<double>& step) {
  const double v = step();
  if (!(std::isfinite(v) && v >= 0 && v == std::floor(v)))
    throw ValueError("checkpoint.5",
                     detail::str(what, ": tensor '", name, "' of ", owner, " holds ", v,
                                 ", expected a step count (a whole number >= 0)"));
}

/// Optimizer state: one group per parameter ("optimizer.state.<k>"), saved once it has stepped.
template <class Optimizer>
std::vector<Entry> optimizer_entries(Optimizer& opt) {
  std::vector<Entry> out;
  opt.for_each_state(
      [&](const std::string& group, auto& state) {
        for (std::size_t i = 0; i < state.keys.size(); ++i) {
          auto& t = state.values[i];
          bool& initialized = state.initialized;
          Entry e = make_entry(join_name(group, state.keys[i]), t);
          e.owner = detail::str("the optimizer state of parameter '", state.parameter, "'");
          if (!initialized) e.save = [](SafetensorsWriter&) {};
          const bool is_step = state.keys[i] == "step";
          e.read = [read = e.read, &initialized, name = e.name, owner = e.owner,
                    is_step](const SafetensorsFile& f) -> std::function<void()> {
            if (is_step) check_step_count("load_checkpoint", name, owner, f.read<double>(name));
            return [commit = read(f), &initialized] {
              commit();
              initialized = true;
            };
          };
          e.group = group;
          e.absent = [&t, &initialized] {
            t.fill(0);
            initialized = false;
          };
          out.push_back(std::move(e));
        }
      },
      kOptimizerPrefix);
  return out;
}

inline std::string param_group_prefix() { return std::string(kOptimizerPrefix) + ".param_groups."; }

/// The optimizer's param group as metadata, "optimizer.param_groups.0.<option>".
template <class Optimizer>
void add_param_group(SafetensorsWriter& w, const Optimizer& opt) {
  const std::string p = param_group_prefix() + "0.";
  for (const auto& kv : opt.param_group()) w.set_metadata(p + kv.first, kv.second);
  std::vector<std::size_t> params(opt.parameter_count());
  for (std::size_t k = 0; k < params.size(); ++k) params[k] = k;
  w.set_metadata(p + "params", nlohmann::json(params).dump());
}

/// Reads and checks the file's param group; returns the commit that applies it.
template <class Optimizer>
std::function<void()> read_param_group(const std::map<std::string, std::string>& metadata,
                                       Optimizer& opt, bool old_layout) {
  static constexpr const char* old_layout_hint =
      "; its optimizer state is in the layout before PyTorch's state_dict ('optimizer.step', "
      "'optimizer.<parameter>.exp_avg'), which is no longer read: load the model alone and start "
      "the optimizer afresh";
  const std::string p = param_group_prefix();
  ParamGroup group;
  for (const auto& kv : metadata) {
    if (kv.first.compare(0, p.size(), p) != 0) continue;
    const std::string rest = kv.first.substr(p.size());
    if (rest.compare(0, 2, "0.") != 0)
      throw ValueError("checkpoint.6",
                       detail::str("load_checkpoint: the file has metadata '", kv.first,
                                   "'; asrkit's optimizers have one param group (0)"));
    group[rest.substr(2)] = kv.second;
  }
  if (group.empty())
    throw ValueError(
        "checkpoint.6",
        detail::str("load_checkpoint: the file has no optimizer param group (metadata '", p,
                    "0.*')", old_layout ? old_layout_hint : ""));
  const std::size_t n = opt.parameter_count();
  const auto params = group.count("params") ? nlohmann::json::parse(group["params"], nullptr, false)
                                            : nlohmann::json();
  bool in_order = params.is_array() && params.size() == n;
  for (std::size_t k = 0; in_order && k < n; ++k)
    in_order = params[k].is_number_integer() && params[k] == k;
  if (!in_order)
    throw ValueError(
        "checkpoint.6",
        detail::str("load_checkpoint: metadata '", p, "0.params' is '",
                    group.count("params") ? group["params"] : "(absent)",
                    "', expected the optimizer's ", n, " parameter indices ",
                    n == 0 ? std::string("(none)") : detail::str("0..", n - 1), " in order"));
  group.erase("params");
  auto options = opt.options_from(group);
  return [&opt, options] { opt.set_options(options); };
}

inline bool in_optimizer_group(const std::string& name) {
  return name.size() > kOptimizerPrefix.size() && name.compare(0, kOptimizerPrefix.size(), kOptimizerPrefix) == 0 &&
         name[kOptimizerPrefix.size()] == '.';
}

inline std::string list_some(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 5) s += detail::str(" and ", names.size() - 5, " more");
  return s;
}

/// Checks names, shapes and dtype families of `entries` against the file (only the file's
/// tensors for which `in_group` is true count as unexpected), then reads all and commits all.
template <class InGroup>
void load_entries(const SafetensorsFile& file, std::vector<Entry>& entries, InGroup in_group,
                  const char* what) {
  std::set<std::string> expected, groups_present;
  for (const Entry& e : entries) {
    expected.insert(e.name);
    if (!e.group.empty() && file.contains(e.name)) groups_present.insert(e.group);
  }
  // An entry is loaded unless its whole group is absent.
  const auto loaded = [&](const Entry& e) {
    return e.group.empty() || groups_present.count(e.group) > 0;
  };
  std::vector<std::string> missing, unexpected;
  for (const Entry& e : entries)
    if (loaded(e) && !file.contains(e.name)) missing.push_back(e.name);
  for (const std::string& n : file.names())
    if (in_group(n) && expected.count(n) == 0) unexpected.push_back(n);
  if (!missing.empty()) {
    const Entry* first = nullptr;
    for (const Entry& e : entries)
      if (e.name == missing.front()) first = &e;
    throw ValueError("checkpoint.1",
                     detail::str(what, ": the file has no tensor '", missing.front(), "' of ",
                                 first->owner, " (expected shape ", first->shape.str(),
                                 "); missing ", missing.size(), ": ", list_some(missing)));
  }
  if (!unexpected.empty())
    throw ValueError("checkpoint.2", detail::str(what, ": the file has ", unexpected.size(),
                                                 " tensor(s) the model (or optimizer) does not: ",
                                                 list_some(unexpected)));
  for (const Entry& e : entries) {
    if (!loaded(e)) continue;
    const TensorInfo& info = file.info(e.name);
    const std::vector<std::int64_t> want(e.shape.begin(), e.shape.end());
    if (info.shape != want)
      throw ShapeError("checkpoint.3",
                       detail::str(what, ": tensor '", e.name, "' of ", e.owner, " has shape ",
                                   safetensors::shape_str(info.shape), " in the file, expected ",
                                   e.shape.str()));
    if (dtype_is_float(info.dtype) != e.floating)
      throw ValueError("checkpoint.4",
                       detail::str(what, ": tensor '", e.name, "' of ", e.owner, " is stored as ",
                                   dtype_name(info.dtype), ", expected a ",
                                   e.floating ? "floating-point" : "integer", " dtype"));
  }
  std::vector<std::function<void()>> commits;
  commits.reserve(entries.size());
  for (const Entry& e : entries) commits.push_back(loaded(e) ? e.read(file) : e.absent);
  for (auto& c : commits) c();
}

}  // namespace checkpoint
}  // namespace detail

/// Adds the model's state (parameters and buffers, state_dict names under `prefix`) to `w`.
template <class Model>
void add_state_dict(SafetensorsWriter& w, Model& model, std::string_view prefix = {}) {
  for (auto& e : detail::checkpoint::model_entries(model, prefix)) e.save(w);
}

/// Loads the model's state from `file` (names under `prefix`; tensors outside it are ignored,
/// as are "optimizer.*" tensors when the prefix is empty). Strict and atomic (see above).
template <class Model>
void load_state_dict(const SafetensorsFile& file, Model& model, std::string_view prefix = {}) {
  auto entries = detail::checkpoint::model_entries(model, prefix);
  const std::string p = prefix.empty() ? std::string() : std::string(prefix) + ".";
  detail::checkpoint::load_entries(
      file, entries,
      [&](const std::string& n) {
        if (p.empty()) return !detail::checkpoint::in_optimizer_group(n);
        return n.compare(0, p.size(), p) == 0;
      },
      "load_state_dict");
}

/// Writes the model's state (and `metadata`, plus "format": "pt") to `path`.
template <class Model>
void save_checkpoint(const std::string& path, Model& model,
                     const std::map<std::string, std::string>& metadata = {}) {
  SafetensorsWriter w;
  add_state_dict(w, model);
  w.set_metadata("format", "pt");
  for (const auto& kv : metadata) w.set_metadata(kv.first, kv.second);
  w.save(path);
}

/// Writes the model's and the optimizer's state ("optimizer.*") to `path`. (Not chosen for a
/// non-const metadata map in the optimizer's place: that is the overload above.) The caller's
/// metadata is written first, so it cannot replace the optimizer's param group.
template <class Model, class Optimizer,
          class = std::enable_if_t<!std::is_same_v<Optimizer, std::map<std::string, std::string>>>>
void save_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     const std::map<std::string, std::string>& metadata = {}) {
  SafetensorsWriter w;
  add_state_dict(w, model);
  for (auto& e : detail::checkpoint::optimizer_entries(optimizer)) e.save(w);
  w.set_metadata("format", "pt");
  for (const auto& kv : metadata) w.set_metadata(kv.first, kv.second);
  detail::checkpoint::add_param_group(w, optimizer);
  w.save(path);
}

/// Loads the model's state from `path`; returns the file's metadata.
template <class Model>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Model& model) {
  const auto file = SafetensorsFile::open(path);
  load_state_dict(file, model);
  return file.metadata();
}

/// Loads the model's and the optimizer's state (both strict; nothing changes on an error).
template <class Model, class Optimizer>
std::map<std::string, std::string> load_checkpoint(const std::string& path, Model& model,
                                                   Optimizer& optimizer) {
  const auto file = SafetensorsFile::open(path);
  // Check everything before committing anything: the param group, then the tensors.
  const auto set_options = detail::checkpoint::read_param_group(file.metadata(), optimizer,
                                                                file.contains("optimizer.step"));
  auto entries = detail::checkpoint::model_entries(model, {});
  auto opt = detail::checkpoint::optimizer_entries(optimizer);
  std::vector<detail::checkpoint::Entry> all = std::move(entries);
  for (auto& e : opt) all.push_back(std::move(e));
  detail::checkpoint::load_entries(file, all, [](const std::string&) { return true; }, "load_checkpoint");
  set_options();
  return file.metadata();
}

}  // namespace asrkit
