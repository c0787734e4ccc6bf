// The one table of recur train's options: each entry is an option's name (the flag without its
// dashes, the key of a TOML config and the Python keyword), its group and help, and how its text
// sets and reads a field of TrainOptions. `recur train` registers its flags from it, `--config`
// and a run's config.toml are read through it, the resolved config.toml is written from it, and
// the Python module sets its keyword arguments through it: an option means the same everywhere.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "recur/train.hpp"

namespace recur {

struct TrainOption {
  enum class Kind { integer, count, real, text, toggle };  // count: an integer of 0 or more
  std::string name;   // "hidden": flag --hidden, TOML key hidden, Python keyword hidden
  std::string group;  // data, model, init, optimizer, run: the order --help lists them in
  std::string help;
  Kind kind = Kind::text;
  // Sets the option from its text (a number, a name, "true"/"false" for a toggle). Throws
  // recur::Error("--name", reason) for text it cannot take.
  void (*set)(TrainOptions& options, const std::string& text) = nullptr;
  // The option's value as TOML writes it ("128", "0.004", "\"lstm\"", "false").
  std::string (*get)(const TrainOptions& options) = nullptr;

  std::string flag() const { return "--" + name; }
};

// Every option in --help order. The first option of each group starts it.
const std::vector<TrainOption>& train_option_table();
// The entry named `name` (no dashes), or nullptr.
const TrainOption* find_train_option(const std::string& name);

// The options `recur train` starts from: TrainOptions' defaults with --init-recurrent auto and
// the recipe's training methods (--augment-shift 2 --augment-rotate 10 --ema 0.999; text and
// arrays drop them in apply_sequence_defaults).
TrainOptions default_train_options();

// The options as the TOML file a run folder keeps (config.toml) and --config reads back: one
// `name=value` line per option, in table order.
std::string train_config_toml(const TrainOptions& options);

// Sets the keys of the TOML file `path` that are not in `given`, and adds them to it (a value
// given on the command line or as a keyword wins over the file). A "config" key is skipped (a
// resolved config names the file it came from). Throws Error(path, ...) for a file that is not
// TOML, an unknown key, or a value of the wrong type; Error(path, "option 'NAME': ...") for a
// value its option refuses.
void apply_train_config_file(TrainOptions& options, const std::string& path,
                             std::set<std::string>& given);
// The same for TOML text read from `source` (a file's name in errors).
void apply_train_config_text(TrainOptions& options, const std::string& text,
                             const std::string& source, std::set<std::string>& given);
// The same for (key, option text) pairs taken from a parsed file: a string's own text, a
// boolean's "true"/"false", a number's shortest round-trip text.
void apply_train_config_values(TrainOptions& options,
                               const std::vector<std::pair<std::string, std::string>>& values,
                               const std::string& source, std::set<std::string>& given);

// `--resume DIR`: the options of the run in DIR (its config.toml, keys not in `given`), trained
// on into DIR. Throws Error("--resume", ...) when DIR is no run folder.
void apply_resume(TrainOptions& options, const std::string& dir, std::set<std::string>& given);

// The text and array recipe (the IMDb BiLSTM: max pooling, bidirectional, 4 epochs of 64, ...)
// for the options not in `given`; pooling and direction stay the layer list's when there is one.
// Applied by recur train and Python when --data names text or arrays (is_sequence_data).
void apply_sequence_defaults(TrainOptions& options, const std::set<std::string>& given);

// The plain RNN's recipe on images (lr 0.002, 15 epochs) for the options not in `given`, when
// the short form's cell is rnn or rnn_relu. Applied by recur train and Python for image data.
void apply_cell_defaults(TrainOptions& options, const std::set<std::string>& given);

// What every front end does once it has set the options it was given (their names in `given`):
// --resume DIR (apply_resume; refused beside a config), --config FILE (apply_train_config_file;
// errors name --config), then the text and array recipe when the data is text or arrays, else
// the cell's (apply_cell_defaults).
TrainOptions resolve_train_options(TrainOptions options, std::set<std::string>& given,
                                   const std::string& config, const std::string& resume);

}  // namespace recur
