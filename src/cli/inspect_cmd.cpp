// recur inspect MODEL [--json]
// A checkpoint's architecture, its tensors and their parameter counts, the training config and
// the metrics stored with it.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_io.hpp"
#include "cli/sequence_data.hpp"
#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

// The metadata value as a JSON number when it is one, else as the string it is.
nlohmann::json meta_value(const std::string& text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) {
    if (text.find_first_of(".eE") == std::string::npos) return static_cast<std::int64_t>(value);
    return value;
  }
  return text;
}

std::string meta_of(const Metadata& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

// What inspect shows of a checkpoint, either format, read as its layer list (version 1 through
// its layer form).
struct Inspection {
  std::string path, format, train_config, train_data;
  LoadedCheckpoint loaded;
  std::uintmax_t file_bytes = 0;
  // The architecture in a few rows: the recurrent stack (the short form's settings), the view
  // of image models, the sequence or image each sample is.
  std::vector<std::pair<std::string, nlohmann::json>> arch;
  bool images = false;
  std::string view;
  std::vector<std::string> shown;  // a text model's most frequent tokens
  nlohmann::json text_info;        // null for models that do not read text
  const Model<float>& model() const { return *loaded.model; }
  const Metadata& meta() const { return loaded.metadata; }
};

const char* const kMetricKeys[] = {"recur.step", "recur.epoch", "recur.val_accuracy",
                                   "recur.val_loss"};

Inspection inspect_checkpoint(const std::string& path) {
  Inspection in;
  in.path = path;
  in.loaded = load_checkpoint(path);
  const ModelSpec& spec = in.model().spec();
  const Metadata& m = in.meta();
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  in.file_bytes = ec ? 0 : file_bytes;
  // Checkpoints written before recur dropped local folders from the metadata still hold them.
  in.train_config = without_local_paths(meta_of(m, "recur.train_config"));
  in.train_data = meta_of(m, "recur.train_data");
  in.format = meta_of(m, "recur.format").empty() ? "recur-model-1" : meta_of(m, "recur.format");
  auto& arch = in.arch;
  arch.emplace_back("layers", layer_list_text(spec.layers));
  for (const LayerSpec& l : spec.layers) {
    if (l.type != "recurrent") continue;
    arch.emplace_back("cell", to_string(l.cell));
    arch.emplace_back("hidden", l.size);
    arch.emplace_back("layers_stacked", l.layers);
    arch.emplace_back("directions", l.bidirectional ? 2 : 1);
    arch.emplace_back("dropout", l.dropout);
    arch.emplace_back("untied", l.untied_steps > 0);
    arch.emplace_back("bias", l.bias);
    break;
  }
  for (const LayerSpec& l : spec.layers)
    if (l.type == "linear" && l.name == "proj") arch.emplace_back("projection", l.size);
  for (const LayerSpec& l : spec.layers)
    if (l.type == "pool") {
      arch.emplace_back("pooling", to_string(l.pooling));
      break;
    }
  in.images = is_image_model(m);
  in.view = meta_of(m, "recur.view");
  const bool images = in.images;
  if (images) {
    arch.emplace_back("view", in.view.empty() ? "image" : in.view);
    arch.emplace_back(
        "view_seed",
        meta_value(meta_of(m, "recur.view_seed").empty() ? "0" : meta_of(m, "recur.view_seed")));
    arch.emplace_back("image_rows", meta_value(meta_of(m, "recur.image_rows")));
    arch.emplace_back("image_cols", meta_value(meta_of(m, "recur.image_cols")));
  }
  if (spec.input.kind == ActKind::sequence && !spec.input.ids && images) {
    const int rows = std::atoi(meta_of(m, "recur.image_rows").c_str());
    const int cols = std::atoi(meta_of(m, "recur.image_cols").c_str());
    // The view's steps: rows (cols) read rows x cols images as rows (cols) steps; pixel views
    // one pixel a step.
    const int features = spec.input.features;
    arch.emplace_back("steps", features > 0 ? rows * cols / features : 0);
    arch.emplace_back("features", features);
  }
  arch.emplace_back("classes", spec.num_classes);

  if (is_text_model(m)) {
    const TextCodec codec = text_codec(m, path);
    for (int i = 0; i < std::min(codec.vocab.size(), 30); ++i)
      in.shown.push_back(codec.vocab.token(i));
    in.text_info = {{"vocabulary", codec.vocab.size()},
                    {"max_len", codec.max_len},
                    {"truncate", to_string(codec.truncate)},
                    {"class_names", codec.class_names},
                    {"first_tokens", in.shown}};
  }
  return in;
}

void print_json(const Inspection& in) {
  const ModelSpec& spec = in.model().spec();
  const Metadata& m = in.meta();
  const auto& arch = in.arch;
  nlohmann::json tensors = nlohmann::json::array();
  for (const ParamInfo& p : in.model().layout().entries())
    tensors.push_back({{"name", p.name}, {"shape", p.shape}, {"parameters", p.size}});
  nlohmann::json metrics = nlohmann::json::object();
  for (const char* key : kMetricKeys)
    if (const std::string v = meta_of(m, key); !v.empty())
      metrics[std::string(key).substr(6)] = meta_value(v);
  nlohmann::json architecture = nlohmann::json::object();
  for (const auto& [k, v] : arch) architecture[k == "layers_stacked" ? "stacked" : k] = v;
  architecture["layers"] = architecture.value("stacked", 0);  // recurrent layers stacked
  architecture.erase("stacked");
  architecture["layers_text"] = layer_list_text(spec.layers);
  nlohmann::json report = {{"model", in.path},
                           {"format", in.format},
                           {"file_bytes", in.file_bytes},
                           {"architecture", architecture},
                           {"layers", nlohmann::json::parse(to_json(spec))["layers"]},
                           {"tensors", tensors},
                           {"parameters", in.model().num_params()},
                           {"fp32_bytes", 4 * in.model().num_params()},
                           {"int8_bytes", int8_parameter_bytes(in.model())},
                           {"classes", spec.num_classes},
                           {"train_config", in.train_config},
                           {"metrics", metrics}};
  if (!in.train_data.empty()) {
    try {
      report["train_data"] = nlohmann::json::parse(in.train_data);
    } catch (const nlohmann::json::exception&) {
      report["train_data"] = in.train_data;
    }
  }
  if (!in.text_info.is_null()) report["text"] = in.text_info;
  if (const std::string v = meta_of(m, "recur.train_precision"); !v.empty())
    report["train_precision"] = v;
  if (const std::string v1 = meta_of(m, "recur.model"); !v1.empty())
    report["model_config"] = nlohmann::json::parse(v1);
  std::cout << report.dump(2) << "\n";
}

// The architecture, the layers and their outputs, the tensors.
void print_model(const Inspection& in) {
  const Model<float>& model = in.model();
  const ModelSpec& spec = model.spec();
  const Metadata& m = in.meta();
  const auto& entries = model.layout().entries();
  const bool images = in.images;
  const std::string& view = in.view;
  fmt::print("model: {} ({}, {} bytes)\n", in.path, in.format, in.file_bytes);
  const auto row = [](const std::string& name, const std::string& value) {
    fmt::print("  {:<12}{}\n", name, value);
  };
  for (const auto& [k, v] : in.arch) {
    if (k == "view_seed" || k == "image_rows" || k == "image_cols" || k == "steps" ||
        k == "features" || k == "untied" || k == "bias")
      continue;
    if (k == "view") {
      row("view",
          images && view != ""
              ? fmt::format("{} of {}x{} images{}", view, meta_of(m, "recur.image_rows"),
                            meta_of(m, "recur.image_cols"),
                            view == "permuted" ? " (seed " + meta_of(m, "recur.view_seed") + ")"
                                               : std::string())
              : fmt::format("whole {}x{} images", meta_of(m, "recur.image_rows"),
                            meta_of(m, "recur.image_cols")));
      continue;
    }
    row(k == "layers_stacked" ? "stacked" : k, v.is_string() ? v.get<std::string>() : v.dump());
  }
  for (const auto& [k, v] : in.arch)
    if (k == "steps")
      for (const auto& [k2, f] : in.arch)
        if (k2 == "features")
          row("sequence", fmt::format("{} steps x {} features", v.get<int>(), f.get<int>()));

  fmt::print("\n  {:<12} {:<10}    {}\n", "layer", "type", "output");
  for (std::size_t i = 0; i < model.num_layers(); ++i) {
    const Layer<float>& l = model.layer(i);
    fmt::print("  {:<12} {:<10} -> {}\n", spec.layer_name(i), l.spec().type,
               to_string(l.output_shape()));
  }
  std::size_t name_width = 6, shape_width = 5;
  for (const ParamInfo& p : entries) {
    name_width = std::max(name_width, p.name.size());
    shape_width = std::max(shape_width, shape_text(p.shape).size());
  }
  fmt::print("\n  {:<{}}  {:<{}}  {:>10}\n", "tensor", name_width, "shape", shape_width,
             "parameters");
  for (const ParamInfo& p : entries)
    fmt::print("  {:<{}}  {:<{}}  {:>10}\n", p.name, name_width, shape_text(p.shape), shape_width,
               p.size);
  fmt::print("total parameters {}\n", model.num_params());
  // What the weights take in memory: fp32, and with --precision int8 (a byte per weight of the
  // recurrent and linear matrices, a scale per row; the rest stays fp32).
  fmt::print("weights: fp32 size: {:.1f} kB, int8 size: {:.1f} kB\n",
             4.0 * static_cast<double>(model.num_params()) / 1e3,
             static_cast<double>(int8_parameter_bytes(model)) / 1e3);
}

// The metrics, the text settings, the training data and config stored with the weights.
void print_training(const Inspection& in) {
  const Metadata& m = in.meta();
  const std::string &train_data = in.train_data, &train_config = in.train_config;
  std::string metrics;
  const auto add = [&](const std::string& text) {
    metrics += (metrics.empty() ? "" : ", ") + text;
  };
  if (const std::string v = meta_of(m, "recur.step"); !v.empty()) add("step " + v);
  if (const std::string v = meta_of(m, "recur.epoch"); !v.empty()) add("epoch " + v);
  if (const std::string v = meta_of(m, "recur.val_accuracy"); !v.empty()) {
    const nlohmann::json value = meta_value(v);
    add(value.is_number() ? fmt::format("validation accuracy {:.2f}%", 100.0 * value.get<double>())
                          : "validation accuracy " + v);
  }
  if (const std::string v = meta_of(m, "recur.val_loss"); !v.empty()) add("validation loss " + v);
  fmt::print("\nmetrics: {}\n", metrics.empty() ? "none stored" : metrics);
  if (const std::string v = meta_of(m, "recur.train_precision"); !v.empty())
    fmt::print("trained in: {}\n",
               v == "bf16" ? "bf16 (bf16 products, fp32 accumulation and weights)" : v);

  if (!in.text_info.is_null()) {
    std::string first;
    for (const auto& t : in.shown) first += (first.empty() ? "" : " ") + t;
    fmt::print("text: vocabulary of {} tokens, at most {} tokens per text (keep {}), classes {}\n",
               in.text_info["vocabulary"].get<int>(), in.text_info["max_len"].get<int>(),
               in.text_info["truncate"].get<std::string>(), in.text_info["class_names"].dump());
    fmt::print("  most frequent: {}\n", first);
  }
  if (!train_data.empty()) {
    try {
      const nlohmann::json d = nlohmann::json::parse(train_data);
      fmt::print("training data: {}\n", d.value("name", "?"));
      if (d.contains("files") && d["files"].is_object())
        for (const auto& [file, sha] : d.at("files").items())
          fmt::print("  {}  {}\n", file,
                     sha.is_string() ? "sha256 " + sha.get<std::string>() : sha.dump());
      for (const auto& [key, value] : d.items())
        if (key != "name" && key != "files")
          fmt::print("  {}  {}\n", key,
                     value.is_string() ? value.get<std::string>() : value.dump());
    } catch (const nlohmann::json::exception&) {
      fmt::print("training data: {}\n", train_data);
    }
  }
  if (train_config.empty()) {
    fmt::print("training config: none stored\n");
  } else {
    fmt::print("training config:\n");
    std::size_t start = 0;
    while (start < train_config.size()) {
      std::size_t end = train_config.find('\n', start);
      if (end == std::string::npos) end = train_config.size();
      fmt::print("  {}\n", train_config.substr(start, end - start));
      start = end + 1;
    }
  }
}

int run_inspect(const InspectOptions& o) {
  const Inspection in = inspect_checkpoint(o.model);
  if (o.json) {
    print_json(in);
  } else {
    print_model(in);
    print_training(in);
  }
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show a checkpoint's architecture, tensors, training config and metrics");
  cmd->add_option("model", o->model, "Checkpoint (.safetensors)")->required();
  cmd->add_flag("--json", o->json, "Print JSON instead of text");
  cmd->callback([o, &run] { run = [o] { return run_inspect(*o); }; });
}

}  // namespace recur::cli
