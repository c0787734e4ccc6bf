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
#include "recur/error.hpp"
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

int run_inspect(const InspectOptions& o) {
  if (is_layered_file(o.model)) return run_layered_inspect(o.model, o.json);
  const ModelWithView m = load_model_with_view(o.model);
  const ModelConfig& c = m.net().config();
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(o.model, ec);
  const auto& entries = m.net().layout().entries();
  // Checkpoints written before recur dropped local folders from the metadata still hold them.
  const std::string train_config = without_local_paths(m.meta("recur.train_config"));
  const std::string train_data = m.meta("recur.train_data");
  const char* metric_keys[] = {"recur.step", "recur.epoch", "recur.val_accuracy", "recur.val_loss"};

  if (o.json) {
    nlohmann::json tensors = nlohmann::json::array();
    for (const ParamInfo& p : entries)
      tensors.push_back({{"name", p.name}, {"shape", p.shape}, {"parameters", p.size}});
    nlohmann::json metrics = nlohmann::json::object();
    for (const char* key : metric_keys)
      if (const std::string v = m.meta(key); !v.empty())
        metrics[std::string(key).substr(6)] = meta_value(v);
    const nlohmann::json report = {
        {"model", o.model},
        {"file_bytes", ec ? 0 : file_bytes},
        {"architecture",
         {{"cell", to_string(c.cell)},
          {"hidden", c.hidden},
          {"layers", c.layers},
          {"directions", c.directions()},
          {"projection", c.projection},
          {"pooling", to_string(c.pooling)},
          {"dropout", c.dropout},
          {"untied", c.untied},
          {"bias", c.bias},
          {"view", to_string(m.view_kind)},
          {"view_seed", m.view_seed},
          {"image_rows", m.rows},
          {"image_cols", m.cols},
          {"steps", c.steps},
          {"features", c.input_size},
          {"classes", c.num_classes}}},
        {"tensors", tensors},
        {"parameters", m.net().num_params()},
        {"train_config", train_config},
        {"train_data", train_data.empty() ? nlohmann::json() : nlohmann::json::parse(train_data)},
        {"metrics", metrics},
        {"model_config", nlohmann::json::parse(m.meta("recur.model"))}};
    std::cout << report.dump(2) << "\n";
    return 0;
  }

  fmt::print("model: {} ({} bytes)\n", o.model, ec ? 0 : file_bytes);
  const auto row = [](const char* name, const std::string& value) {
    fmt::print("  {:<12}{}\n", name, value);
  };
  row("cell", to_string(c.cell));
  row("hidden", std::to_string(c.hidden));
  row("layers", std::to_string(c.layers));
  row("directions", std::to_string(c.directions()));
  row("projection", c.projection > 0 ? std::to_string(c.projection) : "none");
  row("pooling", to_string(c.pooling));
  row("view",
      fmt::format("{} of {}x{} images{}", to_string(m.view_kind), m.rows, m.cols,
                  m.view_kind == ViewKind::permuted ? fmt::format(" (seed {})", m.view_seed) : ""));
  row("sequence", fmt::format("{} steps x {} features", c.steps, c.input_size));
  row("classes", std::to_string(c.num_classes));
  row("dropout", fmt::format("{:g}", c.dropout));
  row("weights", fmt::format("{}{}", c.untied ? "untied per step" : "shared over steps",
                             c.bias ? ", recurrent biases" : ", no recurrent biases"));

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
  fmt::print("total parameters {}\n", m.net().num_params());

  std::string metrics;
  const auto add = [&](const std::string& text) {
    metrics += (metrics.empty() ? "" : ", ") + text;
  };
  if (const std::string v = m.meta("recur.step"); !v.empty()) add("step " + v);
  if (const std::string v = m.meta("recur.epoch"); !v.empty()) add("epoch " + v);
  if (const std::string v = m.meta("recur.val_accuracy"); !v.empty()) {
    const nlohmann::json value = meta_value(v);
    add(value.is_number() ? fmt::format("validation accuracy {:.2f}%", 100.0 * value.get<double>())
                          : "validation accuracy " + v);
  }
  if (const std::string v = m.meta("recur.val_loss"); !v.empty()) add("validation loss " + v);
  fmt::print("\nmetrics: {}\n", metrics.empty() ? "none stored" : metrics);

  if (!train_data.empty()) {
    const nlohmann::json d = nlohmann::json::parse(train_data);
    fmt::print("training data: {}\n", d.value("name", "?"));
    for (const auto& [file, sha] : d.at("files").items())
      fmt::print("  {}  sha256 {}\n", file, sha.get<std::string>());
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
