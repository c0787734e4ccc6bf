// recur train: every option of the library's table (recur/train_options.hpp) as a flag;
// --config FILE.toml supplies values with the same names (flags override it), --resume DIR the
// run's own; the library writes the resolved config to the run folder.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <set>

#include "cli/commands.hpp"
#include "dist/comm.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/sources.hpp"
#include "recur/train.hpp"
#include "recur/train_options.hpp"

namespace recur::cli {

namespace {

const char* type_name(TrainOption::Kind kind) {
  switch (kind) {
    case TrainOption::Kind::integer:
      return "INT";
    case TrainOption::Kind::count:
      return "UINT";
    case TrainOption::Kind::real:
      return "FLOAT";
    default:
      return "TEXT";
  }
}

// What the command line gave: the text of each option (a switch's "true"/"false").
struct GivenFlags {
  std::map<std::string, std::string> text;
  std::map<std::string, bool> on;
  std::string config, resume, layer_grammar_help;
};

// Registers one flag per entry of the option table, in its order (--help lists them so).
void add_table_options(CLI::App* cmd, GivenFlags& given) {
  const TrainOptions defaults = default_train_options();
  for (const TrainOption& o : train_option_table()) {
    if (o.kind == TrainOption::Kind::toggle) {
      cmd->add_flag(o.flag(), given.on[o.name], o.help);
      continue;
    }
    std::string shown = o.get(defaults);
    if (o.kind == TrainOption::Kind::text) shown = shown.substr(1, shown.size() - 2);
    std::string help = o.help;
    if (o.name == "model") help += ". Layers: " + layer_grammar();
    CLI::Option* opt =
        cmd->add_option(o.flag(), given.text[o.name], help)->type_name(type_name(o.kind));
    // Paths and the layer list have no default worth showing.
    if (o.name != "test-data" && o.name != "model") opt->default_str(shown);
  }
}

// The options the command line set, in table order; the names it set go to `names`.
TrainOptions parsed_options(CLI::App* cmd, const GivenFlags& given, std::set<std::string>& names) {
  TrainOptions options = default_train_options();
  for (const TrainOption& o : train_option_table()) {
    if (cmd->get_option(o.flag())->count() == 0) continue;
    names.insert(o.name);
    o.set(options, o.kind == TrainOption::Kind::toggle ? (given.on.at(o.name) ? "true" : "false")
                                                       : given.text.at(o.name));
  }
  return options;
}

}  // namespace

void add_train_command(CLI::App& app, Runner& run) {
  auto given = std::make_shared<GivenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a recurrent classifier on images read as sequences, text or arrays");
  cmd->footer(
      "The defaults shown are those of images (MNIST rows). For text (--data imdb, a text file "
      "or folder) every option not given takes the IMDb recipe instead "
      "(examples/imdb-bilstm-wide.toml): --embed 512 --hidden 256 --bidirectional --pooling max "
      "--epochs 4 --batch 64 --lr 0.002 --val 0 --label-smoothing 0.1, no augmentation or "
      "weights' average; for a folder of .npy arrays the same at --hidden 128 without label "
      "smoothing (docs/TEXT.md).");
  cmd->add_option("--config", given->config,
                  "TOML file of options (same names as the flags); flags override it");
  add_table_options(cmd, *given);
  cmd->add_option(
      "--resume", given->resume,
      "Continue the interrupted run in this folder (its config.toml and resume.safetensors)");

  // Set when `train` itself is parsed, so that commands registered later cannot replace it.
  cmd->callback([given, cmd, &run] {
    run = [given, cmd]() {
      std::set<std::string> names;
      const TrainOptions options = resolve_train_options(parsed_options(cmd, *given, names), names,
                                                         given->config, given->resume);
      install_stop_signals();
      // In a data-parallel run (mpirun) rank 0 speaks for all.
      const bool speaker = dist::rank() == 0;
      std::ostream silent(nullptr);
      try {
        train(options, speaker ? std::cout : silent,
              dist::size() == 1 && isatty(STDOUT_FILENO) != 0);
      } catch (const StopRequested& stop) {
        if (speaker) std::cerr << "recur: " << stop.message << "\n";
        return 128 + stop.signal;
      }
      return 0;
    };
  });
}

}  // namespace recur::cli
