// `recur train --config FILE.toml` without the command line: the input is parsed with toml++ (the
// header-only build of the version Debian ships, so the parser is instrumented), each key is
// turned into option text the way src/cli/train_cmd.cpp's apply_config does, converted to the
// option's type, and the model and optimizer names go through recur's own parsers; the model
// options then build a ModelConfig that must validate or throw recur::Error.
//
// apply_config itself lives in the CLI and ends in a training run, so this harness mirrors its
// key handling (the table below lists train's options); keep the two in step.
#include <toml++/toml.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include "fuzz_guard.hpp"
#include "recur/data.hpp"
#include "recur/model.hpp"
#include "recur/optim.hpp"

namespace {

const std::string kPath = "fuzz-config.toml";

enum class Kind { text, integer, real, flag };

const std::map<std::string, Kind, std::less<>>& options() {
  static const std::map<std::string, Kind, std::less<>> table = {
      {"data", Kind::text},
      {"view", Kind::text},
      {"view-seed", Kind::integer},
      {"cell", Kind::text},
      {"hidden", Kind::integer},
      {"layers", Kind::integer},
      {"bidirectional", Kind::flag},
      {"projection", Kind::integer},
      {"pooling", Kind::text},
      {"dropout", Kind::real},
      {"untied", Kind::flag},
      {"no-bias", Kind::flag},
      {"init", Kind::text},
      {"init-recurrent", Kind::text},
      {"init-sigma", Kind::real},
      {"bias-init", Kind::text},
      {"bias-value", Kind::real},
      {"forget-bias", Kind::real},
      {"head-init", Kind::text},
      {"head-sigma", Kind::real},
      {"head-bias-init", Kind::text},
      {"head-bias-value", Kind::real},
      {"projection-init", Kind::text},
      {"projection-bias-init", Kind::text},
      {"projection-bias-value", Kind::real},
      {"optimizer", Kind::text},
      {"lr", Kind::real},
      {"momentum", Kind::real},
      {"nesterov", Kind::flag},
      {"weight-decay", Kind::real},
      {"beta1", Kind::real},
      {"beta2", Kind::real},
      {"eps", Kind::real},
      {"alpha", Kind::real},
      {"schedule", Kind::text},
      {"warmup", Kind::integer},
      {"step-size", Kind::integer},
      {"gamma", Kind::real},
      {"min-lr", Kind::real},
      {"clip-norm", Kind::real},
      {"clip-value", Kind::real},
      {"batch", Kind::integer},
      {"epochs", Kind::integer},
      {"steps", Kind::integer},
      {"val", Kind::integer},
      {"train-limit", Kind::integer},
      {"seed", Kind::integer},
      {"threads", Kind::integer},
      {"display-step", Kind::integer},
      {"eval-batch", Kind::integer},
      {"out", Kind::text},
      {"checkpoint-every", Kind::integer},
      {"skip-nonfinite", Kind::flag},
      {"resume", Kind::text}};
  return table;
}

// A TOML value as the option text apply_config hands to the command line parser.
std::string option_text(const std::string& name, const toml::node& node) {
  if (auto v = node.value<std::string>(); v && node.is_string()) return *v;
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_floating_point()) {
    std::ostringstream ss;
    ss.precision(17);
    ss << *node.value<double>();
    return ss.str();
  }
  throw recur::Error(kPath, "option '" + name + "' must be a string, number or boolean");
}

template <typename T>
T convert(const std::string& name, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end)
    throw recur::Error(kPath, "option '" + name + "': '" + text + "' is not a number");
  return value;
}

struct Values {
  std::map<std::string, std::string> text;
  std::map<std::string, long long> integer;
  std::map<std::string, double> real;
  std::map<std::string, bool> flag;
};

Values apply(const toml::table& table) {
  Values out;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (name == "config") continue;
    const auto it = options().find(name);
    if (it == options().end()) throw recur::Error(kPath, "unknown option '" + name + "'");
    const std::string text = option_text(name, node);
    switch (it->second) {
      case Kind::text:
        out.text[name] = text;
        break;
      case Kind::integer:
        out.integer[name] = convert<long long>(name, text);
        break;
      case Kind::real:
        out.real[name] = convert<double>(name, text);
        break;
      case Kind::flag:
        if (text != "true" && text != "false")
          throw recur::Error(kPath, "option '" + name + "' is a flag: true or false");
        out.flag[name] = text == "true";
        break;
    }
  }
  return out;
}

template <typename T>
T get(const std::map<std::string, T>& values, const char* name, T fallback) {
  const auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

int to_int(long long v) {
  return v < -(1LL << 31) || v >= (1LL << 31) ? -1 : static_cast<int>(v);
}

// What train's command does with the options once they are applied.
void resolve(const Values& v) {
  const auto& t = v.text;
  (void)recur::parse_view(get<std::string>(t, "view", "rows"));
  recur::ModelConfig c;
  c.cell = recur::parse_cell(get<std::string>(t, "cell", "lstm"));
  c.pooling = recur::parse_pooling(get<std::string>(t, "pooling", "last"));
  c.init.input.kind = recur::parse_init(get<std::string>(t, "init", "pytorch"));
  c.init.recurrent.kind = recur::parse_init(get<std::string>(t, "init-recurrent", "pytorch"));
  c.init.head.kind = recur::parse_init(get<std::string>(t, "head-init", "pytorch"));
  c.init.projection.kind = recur::parse_init(get<std::string>(t, "projection-init", "pytorch"));
  c.init.input.bias = c.init.recurrent.bias =
      recur::parse_bias_init(get<std::string>(t, "bias-init", "pytorch"));
  c.init.head.bias = recur::parse_bias_init(get<std::string>(t, "head-bias-init", "pytorch"));
  c.init.projection.bias =
      recur::parse_bias_init(get<std::string>(t, "projection-bias-init", "pytorch"));
  (void)recur::parse_optimizer(get<std::string>(t, "optimizer", "adam"));
  (void)recur::parse_schedule(get<std::string>(t, "schedule", "constant"));
  c.hidden = to_int(get<long long>(v.integer, "hidden", 128));
  c.layers = to_int(get<long long>(v.integer, "layers", 1));
  c.projection = to_int(get<long long>(v.integer, "projection", 0));
  c.dropout = get<double>(v.real, "dropout", 0.0);
  c.bidirectional = get<bool>(v.flag, "bidirectional", false);
  c.untied = get<bool>(v.flag, "untied", false);
  c.bias = !get<bool>(v.flag, "no-bias", false);
  c.init.input.sigma = c.init.recurrent.sigma = c.init.projection.sigma =
      get<double>(v.real, "init-sigma", 0.01);
  c.init.head.sigma = get<double>(v.real, "head-sigma", 0.01);
  c.init.forget_bias = get<double>(v.real, "forget-bias", 0.0);
  c.validate();
  // A valid model config is what a checkpoint stores; it must read back.
  recur::fuzz::must_return([&] { (void)recur::model_config_from_json(recur::to_json(c), "json"); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Values values;
  const bool applied = recur::fuzz::returns_or_throws_error({kPath}, [&] {
    toml::table table;
    try {
      table = toml::parse(text, kPath);
    } catch (const toml::parse_error& e) {
      std::ostringstream where;
      where << "line " << e.source().begin.line << ": " << e.description();
      throw recur::Error(kPath, "not valid TOML: " + where.str());
    }
    values = apply(table);
  });
  if (!applied) return 0;
  // The enum parsers and validate() name the option's flag ("--cell"), as on the command line.
  recur::fuzz::returns_or_throws_error({}, [&] { resolve(values); });
  return 0;
}
