// The option table of recur train (recur/train_options.hpp): one entry per option, the text
// parsers its entries share, and the TOML reading and writing built on it.
#include "recur/train_options.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/sources.hpp"
#include "recur/text.hpp"

namespace recur {

namespace {

using Kind = TrainOption::Kind;

template <class T>
T parse_integer(const char* name, const std::string& text, bool count) {
  const std::string flag = std::string("--") + name;
  if (count && text.find('-') != std::string::npos)
    throw Error(flag, "must be 0 or more, got " + text);
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec == std::errc::result_out_of_range)
    throw Error(flag, "must be an integer in range, got '" + text + "'");
  if (ec != std::errc() || ptr != end) throw Error(flag, "must be an integer, got '" + text + "'");
  return value;
}

template <class T>
T parse_real(const char* name, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end)
    throw Error(std::string("--") + name, "must be a number, got '" + text + "'");
  return value;
}

bool parse_toggle(const char* name, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  throw Error(std::string("--") + name, "is a switch: true or false, got '" + text + "'");
}

// A TOML basic string.
std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\')
      q += std::string("\\") + ch;
    else if (u < 0x20 || u == 0x7f)
      q += fmt::format("\\u{:04X}", u);
    else
      q += ch;
  }
  return q + "\"";
}

template <class T>
std::string number_text(T value) {
  if constexpr (std::is_same_v<T, bool>)
    return value ? "true" : "false";
  else
    return fmt::format("{}", value);  // floats: the shortest text that reads back the same
}

// The cell as users type it ("rnn" for the tanh RNN).
std::string cell_text(CellKind c) {
  return c == CellKind::rnn_tanh ? "rnn" : to_string(c);
}

// Entries whose text is a number or a switch stored in one field.
#define RECUR_NUMBER(NAME, GROUP, HELP, KIND, FIELD)                  \
  TrainOption {                                                       \
    NAME, GROUP, HELP, KIND,                                          \
        [](TrainOptions& o, const std::string& t) {                   \
          using T = std::decay_t<decltype(o.FIELD)>;                  \
          if constexpr (std::is_same_v<T, bool>)                      \
            o.FIELD = parse_toggle(NAME, t);                          \
          else if constexpr (std::is_floating_point_v<T>)             \
            o.FIELD = parse_real<T>(NAME, t);                         \
          else                                                        \
            o.FIELD = parse_integer<T>(NAME, t, KIND == Kind::count); \
        },                                                            \
        [](const TrainOptions& o) { return number_text(o.FIELD); }    \
  }
// Entries whose text is a name or a path: SET(o, t) stores it, GET(o) is the text.
#define RECUR_TEXT(NAME, GROUP, HELP, SET, GET)                                        \
  TrainOption {                                                                        \
    NAME, GROUP, HELP, Kind::text, [](TrainOptions& o, const std::string& t) { SET; }, \
        [](const TrainOptions& o) { return quoted(GET); }                              \
  }

std::vector<TrainOption> data_options() {
  return {
      RECUR_TEXT("data", "data",
                 "Folder with the IDX files (MNIST naming); imdb (data/imdb), a text folder or "
                 "label<TAB>text file, or a folder of .npy arrays (docs/TEXT.md)",
                 o.data_dir = t, o.data_dir),
      RECUR_NUMBER("embed", "data", "Text: embedding width", Kind::integer, embed),
      RECUR_NUMBER("vocab", "data", "Text: vocabulary size, <pad> and <unk> included",
                   Kind::integer, vocab),
      RECUR_NUMBER("min-count", "data", "Text: a word's least count to enter the vocabulary",
                   Kind::integer, min_count),
      RECUR_NUMBER("max-len", "data", "Text: tokens kept per text", Kind::integer, max_len),
      RECUR_TEXT("truncate", "data", "Text: keep the head or the tail of a longer text",
                 o.truncate = parse_truncate(t), to_string(o.truncate)),
      RECUR_TEXT("test-data", "data",
                 "Text: a label<TAB>text file to test on instead of the data's own test side",
                 o.test_data = t, o.test_data),
      RECUR_NUMBER("embed-dropout", "data", "Text: dropout on the embedded tokens, training only",
                   Kind::real, embed_dropout),
      RECUR_NUMBER("word-dropout", "data",
                   "Text: share of tokens dropped whole (word dropout), training only", Kind::real,
                   word_dropout),
      RECUR_NUMBER("augment-shift", "data",
                   "Images: move each training image by up to N pixels along each axis",
                   Kind::count, augment_shift),
      RECUR_NUMBER("augment-rotate", "data",
                   "Images: turn each training image by up to DEG degrees either way", Kind::real,
                   augment_rotate),
      RECUR_NUMBER("head-dropout", "data",
                   "Text and arrays: dropout before the head, training only", Kind::real,
                   head_dropout),
  };
}

std::vector<TrainOption> model_options() {
  return {
      RECUR_TEXT("model", "model",
                 "The model as a list of layers, e.g. \"lstm 128, pool last, linear\" or "
                 "\"conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 64, relu, "
                 "linear\" (docs/LAYERS.md); replaces --cell, --hidden, --layers, "
                 "--bidirectional, --projection, --pooling, --dropout, --embed",
                 o.layers = t.empty() ? std::vector<LayerSpec>{} : parse_layer_list(t, "--model"),
                 layer_list_text(o.layers)),
      RECUR_TEXT("view", "model", "How an image becomes a sequence: rows, cols, pixels, permuted",
                 o.view = parse_view(t), to_string(o.view)),
      RECUR_NUMBER("view-seed", "model", "Seed of the permuted view's permutation", Kind::count,
                   view_seed),
      RECUR_TEXT("cell", "model", "rnn (tanh), rnn_relu, lstm, gru", o.model.cell = parse_cell(t),
                 cell_text(o.model.cell)),
      RECUR_NUMBER("hidden", "model", "Hidden units per layer and direction", Kind::integer,
                   model.hidden),
      RECUR_NUMBER("layers", "model", "Stacked recurrent layers", Kind::integer, model.layers),
      RECUR_NUMBER("bidirectional", "model", "Run each layer in both directions", Kind::toggle,
                   model.bidirectional),
      RECUR_NUMBER("projection", "model", "Width of a Dense input projection; 0 = none",
                   Kind::integer, model.projection),
      RECUR_TEXT("pooling", "model", "Outputs to the head: last, mean, max, maxmean ([max, mean])",
                 o.model.pooling = parse_pooling(t), to_string(o.model.pooling)),
      RECUR_NUMBER("dropout", "model", "Dropout between stacked layers", Kind::real, model.dropout),
      RECUR_NUMBER("recurrent-dropout", "model",
                   "Dropout on the hidden state between steps, one mask per sequence "
                   "(variational), training only",
                   Kind::real, model.recurrent_dropout),
      RECUR_NUMBER("untied", "model", "Separate input and recurrent weights for every timestep",
                   Kind::toggle, model.untied),
  };
}

std::vector<TrainOption> init_options() {
  return {
      TrainOption{
          "no-bias", "init", "No recurrent biases", Kind::toggle,
          [](TrainOptions& o, const std::string& t) { o.model.bias = !parse_toggle("no-bias", t); },
          [](const TrainOptions& o) { return number_text(!o.model.bias); }},
      RECUR_TEXT("init", "init", "Input weights: pytorch, glorot, normal, truncated_normal",
                 o.model.init.input.kind = parse_init(t, "--init"),
                 to_string(o.model.init.input.kind)),
      RECUR_TEXT(
          "init-recurrent", "init",
          "Recurrent weights: pytorch, glorot, orthogonal, normal, truncated_normal; auto "
          "= orthogonal for lstm and gru, pytorch for rnn and rnn_relu",
          {
            o.recurrent_init_auto = t == "auto";
            if (!o.recurrent_init_auto)
              o.model.init.recurrent.kind = parse_init(t, "--init-recurrent");
          },
          o.recurrent_init_auto ? std::string("auto") : to_string(o.model.init.recurrent.kind)),
      TrainOption{"init-sigma", "init", "Sigma of normal inits of recurrent tensors", Kind::real,
                  [](TrainOptions& o, const std::string& t) {
                    auto& in = o.model.init;
                    in.input.sigma = in.recurrent.sigma = in.projection.sigma =
                        parse_real<double>("init-sigma", t);
                  },
                  [](const TrainOptions& o) { return number_text(o.model.init.recurrent.sigma); }},
      RECUR_TEXT("bias-init", "init", "Recurrent biases: pytorch, constant, normal",
                 o.model.init.input.bias = o.model.init.recurrent.bias = parse_bias_init(t),
                 to_string(o.model.init.recurrent.bias)),
      TrainOption{
          "bias-value", "init", "Value of constant recurrent biases", Kind::real,
          [](TrainOptions& o, const std::string& t) {
            auto& in = o.model.init;
            in.input.bias_value = in.recurrent.bias_value = parse_real<double>("bias-value", t);
          },
          [](const TrainOptions& o) { return number_text(o.model.init.recurrent.bias_value); }},
      RECUR_NUMBER("forget-bias", "init", "Added to the LSTM forget gate's bias", Kind::real,
                   model.init.forget_bias),
      RECUR_TEXT("head-init", "init", "Head weights: pytorch, glorot, normal, truncated_normal",
                 o.model.init.head.kind = parse_init(t, "--head-init"),
                 to_string(o.model.init.head.kind)),
      RECUR_NUMBER("head-sigma", "init", "Sigma of the head's normal init", Kind::real,
                   model.init.head.sigma),
      RECUR_TEXT("head-bias-init", "init", "Head bias: pytorch, constant, normal",
                 o.model.init.head.bias = parse_bias_init(t, "--head-bias-init"),
                 to_string(o.model.init.head.bias)),
      RECUR_NUMBER("head-bias-value", "init", "Value of a constant head bias", Kind::real,
                   model.init.head.bias_value),
      RECUR_TEXT("projection-init", "init", "Projection weights init",
                 o.model.init.projection.kind = parse_init(t, "--projection-init"),
                 to_string(o.model.init.projection.kind)),
      RECUR_TEXT("projection-bias-init", "init", "Projection bias: pytorch, constant, normal",
                 o.model.init.projection.bias = parse_bias_init(t, "--projection-bias-init"),
                 to_string(o.model.init.projection.bias)),
      RECUR_NUMBER("projection-bias-value", "init", "Value of a constant projection bias",
                   Kind::real, model.init.projection.bias_value),
      RECUR_TEXT("init-from", "init",
                 "Start from the tensors of this checkpoint whose names and shapes match (e.g. "
                 "recur pretrain's lm.safetensors: embedding and recurrent weights)",
                 o.init_from = t, o.init_from),
  };
}

std::vector<TrainOption> optimizer_options() {
  return {
      RECUR_TEXT("optimizer", "optimizer", "sgd, adam, adamw, rmsprop",
                 o.optimizer.kind = parse_optimizer(t),
                 std::string(optimizer_name(o.optimizer.kind))),
      RECUR_NUMBER("lr", "optimizer", "Learning rate", Kind::real, optimizer.lr),
      RECUR_NUMBER("momentum", "optimizer", "Momentum (sgd, rmsprop)", Kind::real,
                   optimizer.momentum),
      RECUR_NUMBER("nesterov", "optimizer", "Nesterov momentum (sgd)", Kind::toggle,
                   optimizer.nesterov),
      RECUR_NUMBER("weight-decay", "optimizer", "Weight decay", Kind::real, optimizer.weight_decay),
      RECUR_NUMBER("decoupled-weight-decay", "optimizer",
                   "Decay the weights apart from the gradient (p *= 1 - lr * wd, as adamw) for "
                   "sgd, adam and rmsprop too",
                   Kind::toggle, optimizer.decoupled_weight_decay),
      RECUR_NUMBER("beta1", "optimizer", "Adam beta1", Kind::real, optimizer.beta1),
      RECUR_NUMBER("beta2", "optimizer", "Adam beta2", Kind::real, optimizer.beta2),
      RECUR_NUMBER("eps", "optimizer", "Optimizer epsilon", Kind::real, optimizer.eps),
      RECUR_NUMBER("alpha", "optimizer", "RMSProp smoothing constant", Kind::real, optimizer.alpha),
      RECUR_TEXT("schedule", "optimizer", "Learning-rate schedule: constant, step, cosine",
                 o.schedule.kind = parse_schedule(t), std::string(schedule_name(o.schedule.kind))),
      RECUR_NUMBER("warmup", "optimizer", "Linear warmup steps", Kind::integer,
                   schedule.warmup_steps),
      RECUR_NUMBER("step-size", "optimizer", "Step schedule: decay every N steps", Kind::integer,
                   schedule.step_size),
      RECUR_NUMBER("gamma", "optimizer", "Step schedule: decay factor", Kind::real, schedule.gamma),
      RECUR_NUMBER("min-lr", "optimizer", "Cosine schedule: final learning rate", Kind::real,
                   schedule.min_lr),
  };
}

std::vector<TrainOption> run_options() {
  return {
      RECUR_NUMBER("clip-norm", "run", "Clip gradients to this global norm; 0 = off", Kind::real,
                   clip_norm),
      RECUR_NUMBER("clip-value", "run", "Clip each gradient to [-v, v]; 0 = off", Kind::real,
                   clip_value),
      RECUR_NUMBER("patience", "run",
                   "Stop early after N epochs whose validation accuracy is not above the best; "
                   "0 = off (needs --val)",
                   Kind::integer, patience),
      RECUR_NUMBER("label-smoothing", "run",
                   "Train against (1 - eps) on the label and eps / classes on every class; 0 = "
                   "off (validation and test report the plain loss)",
                   Kind::real, label_smoothing),
      RECUR_NUMBER("ema", "run",
                   "Keep a moving average of the weights with this decay (e.g. 0.999) and "
                   "validate, checkpoint and test it; 0 = off",
                   Kind::real, optimizer.ema),
      RECUR_NUMBER("batch", "run", "Batch size", Kind::integer, batch),
      RECUR_NUMBER("epochs", "run", "Epochs", Kind::integer, epochs),
      RECUR_NUMBER("steps", "run", "Stop after this many steps; 0 = all epochs", Kind::integer,
                   steps),
      RECUR_NUMBER("val", "run", "Validation images: the first N of the training file",
                   Kind::integer, validation),
      RECUR_NUMBER("train-limit", "run", "Train on the first N remaining images only; 0 = all",
                   Kind::integer, train_limit),
      RECUR_NUMBER("seed", "run", "Seed of init, shuffling and dropout", Kind::count, seed),
      RECUR_NUMBER("threads", "run", "Threads; 0 = all cores", Kind::integer, threads),
      RECUR_NUMBER("display-step", "run", "Log the training loss and accuracy every N steps",
                   Kind::integer, display_step),
      RECUR_NUMBER("eval-batch", "run", "Batch size of validation", Kind::integer, eval_batch),
      RECUR_TEXT("out", "run", "Run folder (must be new or empty)", o.out_dir = t, o.out_dir),
      RECUR_NUMBER("checkpoint-every", "run", "Also write the resume checkpoint every N steps",
                   Kind::integer, checkpoint_every),
      RECUR_NUMBER("skip-nonfinite", "run",
                   "Skip and count steps with a non-finite loss or gradient instead of stopping",
                   Kind::toggle, skip_nonfinite),
      RECUR_TEXT("precision", "run",
                 "fp32, or bf16: the recurrent layers' products in bf16 with fp32 accumulation "
                 "(fp32 weights and optimizer state); needs a CPU with AVX512_BF16 "
                 "(docs/TRAINING.md)",
                 o.precision = parse_train_precision(t), to_string(o.precision)),
  };
}

#undef RECUR_NUMBER
#undef RECUR_TEXT

// A TOML value as the option text its entry's set() reads.
std::string option_text(const toml::node& node, const std::string& name,
                        const std::string& source) {
  if (auto v = node.value<std::string>(); v && node.is_string()) return *v;
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  // The shortest text that reads back as the same double ("0.9", not 0.90000000000000002).
  if (node.is_floating_point()) return fmt::format("{}", *node.value<double>());
  throw Error(source, "option '" + name + "' must be a string, number or boolean");
}

}  // namespace

const std::vector<TrainOption>& train_option_table() {
  static const std::vector<TrainOption> table = [] {
    std::vector<TrainOption> all;
    for (auto part :
         {data_options(), model_options(), init_options(), optimizer_options(), run_options()})
      all.insert(all.end(), part.begin(), part.end());
    return all;
  }();
  return table;
}

const TrainOption* find_train_option(const std::string& name) {
  for (const TrainOption& o : train_option_table())
    if (o.name == name) return &o;
  return nullptr;
}

TrainOptions default_train_options() {
  TrainOptions o;
  o.recurrent_init_auto = true;
  // The training methods of the recipe (docs/RECIPES.md): images moved by up to 2 pixels and
  // turned by up to 10 degrees, and the moving average of the weights evaluated.
  o.augment_shift = 2;
  o.augment_rotate = 10;
  o.optimizer.ema = 0.999;
  return o;
}

std::string train_config_toml(const TrainOptions& options) {
  std::string text;
  for (const TrainOption& o : train_option_table()) text += o.name + "=" + o.get(options) + "\n";
  return text;
}

void apply_train_config_values(TrainOptions& options,
                               const std::vector<std::pair<std::string, std::string>>& values,
                               const std::string& source, std::set<std::string>& given) {
  std::set<std::string> applied;
  for (const auto& [name, value] : values) {
    if (name == "config") continue;  // a resolved config names the file it came from
    const TrainOption* opt = find_train_option(name);
    if (!opt) throw Error(source, "unknown option '" + name + "' (see recur train --help)");
    if (given.count(name) > 0) continue;  // the command line wins
    try {
      opt->set(options, value);
    } catch (const Error& e) {
      throw Error(source, "option '" + name + "': " + e.what());
    }
    applied.insert(name);
  }
  given.insert(applied.begin(), applied.end());
}

void apply_train_config_text(TrainOptions& options, const std::string& text,
                             const std::string& source, std::set<std::string>& given) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line << ": " << e.description();
    throw Error(source, "not valid TOML: " + where.str());
  }
  std::vector<std::pair<std::string, std::string>> values;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (name == "config") continue;
    if (!find_train_option(name))
      throw Error(source, "unknown option '" + name + "' (see recur train --help)");
    values.emplace_back(name, option_text(node, name, source));
  }
  apply_train_config_values(options, values, source, given);
}

void apply_train_config_file(TrainOptions& options, const std::string& path,
                             std::set<std::string>& given) {
  std::error_code ec;
  RECUR_CHECK(std::filesystem::is_regular_file(path, ec), path, "no such file");
  std::ifstream in(path, std::ios::binary);
  RECUR_CHECK(in.good(), path, "cannot be read");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  apply_train_config_text(options, bytes.str(), path, given);
}

void apply_resume(TrainOptions& options, const std::string& dir, std::set<std::string>& given) {
  const std::string saved = dir + "/config.toml";
  if (!std::filesystem::exists(saved))
    throw Error("--resume", saved + " does not exist: not a recur run folder");
  apply_train_config_file(options, saved, given);
  options.out_dir = dir;
  options.resume = true;
}

void apply_sequence_defaults(TrainOptions& options, const std::set<std::string>& given) {
  // The IMDb recipe (examples/imdb-bilstm-wide.toml; README results): a bidirectional LSTM read
  // out by max pooling over the real steps; for text, an embedding of 512 into 256 units a
  // direction with label smoothing of 0.1 (docs/RECIPES.md, "Eighth round"). Arrays keep 128
  // units (nothing was measured on them).
  static const std::pair<const char*, const char*> recipe[] = {
      {"pooling", "max"},
      {"bidirectional", "true"},
      {"epochs", "4"},
      {"batch", "64"},
      {"lr", "0.002"},
      {"val", "0"},
      {"display-step", "50"},
      {"eval-batch", "64"},
      {"augment-shift", "0"},
      {"augment-rotate", "0"},
      {"ema", "0"}};  // the average did not help here (docs/RECIPES.md)
  static const std::pair<const char*, const char*> text_recipe[] = {
      {"embed", "512"}, {"hidden", "256"}, {"label-smoothing", "0.1"}};
  const bool listed = !options.layers.empty();
  const bool text = !options.images && !is_npy_folder(resolve_data_path(options.data_dir));
  auto apply = [&](const char* name, const char* value) {
    if (given.count(name) > 0) return;
    // The layer list says how the model pools and reads, and how wide it is.
    const std::string n = name;
    if (listed && (n == "pooling" || n == "bidirectional" || n == "embed" || n == "hidden")) return;
    find_train_option(name)->set(options, value);
  };
  for (const auto& [name, value] : recipe) apply(name, value);
  if (text)
    for (const auto& [name, value] : text_recipe) apply(name, value);
}

void apply_cell_defaults(TrainOptions& options, const std::set<std::string>& given) {
  // The plain RNN's recipe (examples/mnist-rnn.toml; docs/RECIPES.md): half the LSTM's step
  // size, 15 epochs.
  const CellKind cell = options.model.cell;
  if (!options.layers.empty() || (cell != CellKind::rnn_tanh && cell != CellKind::rnn_relu)) return;
  static const std::pair<const char*, const char*> recipe[] = {{"lr", "0.002"}, {"epochs", "15"}};
  for (const auto& [name, value] : recipe)
    if (given.count(name) == 0) find_train_option(name)->set(options, value);
}

TrainOptions resolve_train_options(TrainOptions options, std::set<std::string>& given,
                                   const std::string& config, const std::string& resume) {
  if (!resume.empty()) {
    if (!config.empty())
      throw Error("--resume", "takes the run's own config.toml; do not give --config too");
    apply_resume(options, resume, given);
  }
  if (!config.empty()) {
    try {
      apply_train_config_file(options, config, given);
    } catch (const Error& e) {
      throw Error("--config", e.what());
    }
  }
  if (!options.images && is_sequence_data(options.data_dir))
    apply_sequence_defaults(options, given);
  else
    apply_cell_defaults(options, given);
  return options;
}

}  // namespace recur
