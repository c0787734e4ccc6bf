// `recur train --config FILE.toml` without the command line: the input is parsed with toml++ (the
// header-only build of the version Debian ships, so that the parser is instrumented), each key
// turned into its option's text as the library's apply_train_config_text does, and the pairs set
// through the library's option table (apply_train_config_values: each option's own parser).
// Then what training does first with the model options (ModelConfig::validate), and a valid
// config must round-trip through its JSON form, as a checkpoint stores it. Every failure must be
// a recur::Error naming the file or the option's flag.
#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/error.hpp"
#include "recur/model.hpp"
#include "recur/train_options.hpp"

namespace {

const std::string kPath = "fuzz-config.toml";

// A TOML value as option text (as src/train/train_options.cpp's option_text).
std::string option_text(const std::string& name, const toml::node& node) {
  if (auto v = node.value<std::string>(); v && node.is_string()) return *v;
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_floating_point()) return fmt::format("{}", *node.value<double>());
  throw recur::Error(kPath, "option '" + name + "' must be a string, number or boolean");
}

std::vector<std::pair<std::string, std::string>> parse(std::string_view text) {
  toml::table table;
  try {
    table = toml::parse(text, kPath);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line << ": " << e.description();
    throw recur::Error(kPath, "not valid TOML: " + where.str());
  }
  std::vector<std::pair<std::string, std::string>> values;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    values.emplace_back(name, name == "config" ? std::string() : option_text(name, node));
  }
  return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  recur::TrainOptions options = recur::default_train_options();
  const bool applied = recur::fuzz::returns_or_throws_error({kPath}, [&] {
    std::set<std::string> given;
    recur::apply_train_config_values(options, parse(text), kPath, given);
  });
  if (!applied) return 0;
  // A resolved config of these options reads back as the same options.
  recur::fuzz::must_return([&] {
    const std::string toml = recur::train_config_toml(options);
    recur::TrainOptions back = recur::default_train_options();
    std::set<std::string> none;
    recur::apply_train_config_values(back, parse(toml), "resolved", none);
    if (recur::train_config_toml(back) != toml) __builtin_trap();
  });
  // validate() names the option's flag ("--hidden"), as on the command line.
  recur::fuzz::returns_or_throws_error({}, [&] {
    options.model.validate();
    recur::fuzz::must_return(
        [&] { (void)recur::model_config_from_json(recur::to_json(options.model), "json"); });
  });
  return 0;
}
