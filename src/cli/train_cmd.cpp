// recur train: every model, optimizer and data option as a flag; --config FILE.toml supplies
// defaults with the same names (flags override it); the resolved config goes to the run folder.
#include <toml++/toml.h>
#include <unistd.h>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/sequence_data.hpp"
#include "dist/comm.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/train.hpp"

namespace recur::cli {

namespace {

struct TrainFlags {
  std::string view = "rows", cell = "lstm", pooling = "last";
  // "auto": auto_recurrent_init of each recurrent layer's cell.
  std::string init_input = "pytorch", init_recurrent = "auto", init_head = "pytorch",
              init_projection = "pytorch";
  double init_sigma = 0.01, head_sigma = 0.01;
  std::string bias_init = "pytorch", head_bias_init = "pytorch", projection_bias_init = "pytorch";
  double bias_value = 0, head_bias_value = 0, projection_bias_value = 0;
  std::string optimizer = "adam", schedule = "cosine";  // as TrainOptions' defaults
  bool no_bias = false;
  TrainOptions o;
  std::string model;  // --model: the layer list ("" = the short form)
  SequenceFlags seq;  // text and .npy data, and --model
};

// Seeds are unsigned: "-1" would otherwise wrap to 2^64 - 1.
const CLI::Validator kNotNegative(
    [](std::string& text) {
      return text.find('-') != std::string::npos ? "must be 0 or more, got " + text : std::string();
    },
    "");

// Applies a TOML file's keys to the options not given on the command line. Keys are the flags'
// names without the dashes ("hidden", "forget-bias").
void apply_config(CLI::App& cmd, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream where;
    where << "line " << e.source().begin.line << ": " << e.description();
    throw Error(path, "not valid TOML: " + where.str());
  }
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (name == "config") continue;  // a resolved config names the file it came from
    CLI::Option* opt = cmd.get_option_no_throw("--" + name);
    if (!opt) throw Error(path, "unknown option '" + name + "' (see recur train --help)");
    if (opt->count() > 0) continue;  // the command line wins
    std::string value;
    if (auto v = node.value<std::string>(); v && node.is_string())
      value = *v;
    else if (node.is_boolean())
      value = *node.value<bool>() ? "true" : "false";
    else if (node.is_integer())
      value = std::to_string(*node.value<int64_t>());
    else if (node.is_floating_point()) {
      // The shortest text that reads back as the same double ("0.9", not 0.90000000000000002).
      value = fmt::format("{}", *node.value<double>());
    } else {
      throw Error(path, "option '" + name + "' must be a string, number or boolean");
    }
    try {
      opt->add_result(value);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw Error(path, "option '" + name + "': " + e.what());
    }
  }
}

// --model replaces the short form of the model: refuses a short-form option set away from its
// default (on the command line or in a config), naming it.
void check_short_form_unused(const TrainFlags& f) {
  const TrainFlags d;
  const ModelConfig &m = f.o.model, &dm = d.o.model;
  const std::pair<const char*, bool> changed[] = {
      {"--cell", f.cell != d.cell},
      {"--hidden", m.hidden != dm.hidden},
      {"--layers", m.layers != dm.layers},
      {"--bidirectional", m.bidirectional != dm.bidirectional},
      {"--projection", m.projection != dm.projection},
      {"--pooling", f.pooling != d.pooling},
      {"--dropout", m.dropout != dm.dropout},
      {"--untied", m.untied != dm.untied},
      {"--embed", f.seq.embed != d.seq.embed},
      {"--embed-dropout", f.seq.embed_dropout != d.seq.embed_dropout},
      {"--head-dropout", f.seq.head_dropout != d.seq.head_dropout}};
  for (const auto& [name, differs] : changed)
    if (differs)
      throw Error("--model", std::string("the layer list replaces ") + name +
                                 "; describe that in the list instead (docs/LAYERS.md)");
}

// The projection's init flags belong to the short form's --projection; a layer list has no
// projection layer for them to reach, so setting one beside --model is refused, not ignored.
void check_projection_init_unused(const TrainFlags& f) {
  const TrainFlags d;
  const std::pair<const char*, bool> changed[] = {
      {"--projection-init", f.init_projection != d.init_projection},
      {"--projection-bias-init", f.projection_bias_init != d.projection_bias_init},
      {"--projection-bias-value", f.projection_bias_value != d.projection_bias_value}};
  for (const auto& [name, differs] : changed)
    if (differs)
      throw Error("--model", std::string(name) +
                                 " applies to the short form's --projection only; a layer list "
                                 "initialises its linear layers as PyTorch does");
}

// The options as a TOML file that --config reads back; run-control options are left out.
std::string resolved_config(CLI::App& cmd) {
  std::istringstream in(cmd.config_to_str(true, false));
  std::string line, out;
  while (std::getline(in, line)) {
    const std::string key = line.substr(0, line.find('='));
    if (key == "config" || key == "resume") continue;
    out += line + "\n";
  }
  return out;
}

// --data and what text data needs (the first options, in the order --help lists them).
void add_data_options(CLI::App* cmd, TrainFlags& flags) {
  TrainOptions& o = flags.o;
  cmd->add_option("--data", o.data_dir,
                  "Folder with the IDX files (MNIST naming); imdb (data/imdb), a text folder or "
                  "label<TAB>text file, or a folder of .npy arrays (docs/TEXT.md)")
      ->capture_default_str();
  SequenceFlags& sf = flags.seq;
  cmd->add_option("--embed", sf.embed, "Text: embedding width")->capture_default_str();
  cmd->add_option("--vocab", sf.vocab, "Text: vocabulary size, <pad> and <unk> included")
      ->capture_default_str();
  cmd->add_option("--min-count", sf.min_count, "Text: a word's least count to enter the vocabulary")
      ->capture_default_str();
  cmd->add_option("--max-len", sf.max_len, "Text: tokens kept per text")->capture_default_str();
  cmd->add_option("--truncate", sf.truncate, "Text: keep the head or the tail of a longer text")
      ->capture_default_str();
  cmd->add_option("--test-data", sf.test_data,
                  "Text: a label<TAB>text file to test on instead of the data's own test side");
  cmd->add_option("--embed-dropout", sf.embed_dropout,
                  "Text: dropout on the embedded tokens, training only")
      ->capture_default_str();
  cmd->add_option("--head-dropout", sf.head_dropout,
                  "Text and arrays: dropout before the head, training only")
      ->capture_default_str();
}

// The model: a layer list (--model) or the short form and its view.
void add_model_options(CLI::App* cmd, TrainFlags& flags) {
  TrainOptions& o = flags.o;
  cmd->add_option("--model", flags.model,
                  "The model as a list of layers, e.g. \"lstm 128, pool last, linear\" or "
                  "\"conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 64, relu, "
                  "linear\" (docs/LAYERS.md); replaces --cell, --hidden, --layers, "
                  "--bidirectional, --projection, --pooling, --dropout, --embed. Layers: " +
                      layer_grammar());
  cmd->add_option("--view", flags.view,
                  "How an image becomes a sequence: rows, cols, pixels, permuted")
      ->capture_default_str();
  cmd->add_option("--view-seed", o.view_seed, "Seed of the permuted view's permutation")
      ->check(kNotNegative)
      ->capture_default_str();
  cmd->add_option("--cell", flags.cell, "rnn (tanh), rnn_relu, lstm, gru")->capture_default_str();
  cmd->add_option("--hidden", o.model.hidden, "Hidden units per layer and direction")
      ->capture_default_str();
  cmd->add_option("--layers", o.model.layers, "Stacked recurrent layers")->capture_default_str();
  cmd->add_flag("--bidirectional", o.model.bidirectional, "Run each layer in both directions");
  cmd->add_option("--projection", o.model.projection, "Width of a Dense input projection; 0 = none")
      ->capture_default_str();
  cmd->add_option("--pooling", flags.pooling, "Outputs to the head: last, mean, max")
      ->capture_default_str();
  cmd->add_option("--dropout", o.model.dropout, "Dropout between stacked layers")
      ->capture_default_str();
  cmd->add_flag("--untied", o.model.untied,
                "Separate input and recurrent weights for every timestep");
}

// Initialisation of the recurrent layers, the head and the projection.
void add_init_options(CLI::App* cmd, TrainFlags& flags) {
  TrainOptions& o = flags.o;
  cmd->add_flag("--no-bias", flags.no_bias, "No recurrent biases");
  cmd->add_option("--init", flags.init_input,
                  "Input weights: pytorch, glorot, normal, truncated_normal")
      ->capture_default_str();
  cmd->add_option("--init-recurrent", flags.init_recurrent,
                  "Recurrent weights: pytorch, glorot, orthogonal, normal, truncated_normal; auto "
                  "= orthogonal for lstm and gru, pytorch for rnn and rnn_relu")
      ->capture_default_str();
  cmd->add_option("--init-sigma", flags.init_sigma, "Sigma of normal inits of recurrent tensors")
      ->capture_default_str();
  cmd->add_option("--bias-init", flags.bias_init, "Recurrent biases: pytorch, constant, normal")
      ->capture_default_str();
  cmd->add_option("--bias-value", flags.bias_value, "Value of constant recurrent biases")
      ->capture_default_str();
  cmd->add_option("--forget-bias", o.model.init.forget_bias, "Added to the LSTM forget gate's bias")
      ->capture_default_str();
  cmd->add_option("--head-init", flags.init_head,
                  "Head weights: pytorch, glorot, normal, truncated_normal")
      ->capture_default_str();
  cmd->add_option("--head-sigma", flags.head_sigma, "Sigma of the head's normal init")
      ->capture_default_str();
  cmd->add_option("--head-bias-init", flags.head_bias_init, "Head bias: pytorch, constant, normal")
      ->capture_default_str();
  cmd->add_option("--head-bias-value", flags.head_bias_value, "Value of a constant head bias")
      ->capture_default_str();
  cmd->add_option("--projection-init", flags.init_projection, "Projection weights init")
      ->capture_default_str();
  cmd->add_option("--projection-bias-init", flags.projection_bias_init,
                  "Projection bias: pytorch, constant, normal")
      ->capture_default_str();
  cmd->add_option("--projection-bias-value", flags.projection_bias_value,
                  "Value of a constant projection bias")
      ->capture_default_str();
}

// Optimizer and learning-rate schedule.
void add_optimizer_options(CLI::App* cmd, TrainFlags& flags) {
  TrainOptions& o = flags.o;
  cmd->add_option("--optimizer", flags.optimizer, "sgd, adam, adamw, rmsprop")
      ->capture_default_str();
  cmd->add_option("--lr", o.optimizer.lr, "Learning rate")->capture_default_str();
  cmd->add_option("--momentum", o.optimizer.momentum, "Momentum (sgd, rmsprop)")
      ->capture_default_str();
  cmd->add_flag("--nesterov", o.optimizer.nesterov, "Nesterov momentum (sgd)");
  cmd->add_option("--weight-decay", o.optimizer.weight_decay, "Weight decay")
      ->capture_default_str();
  cmd->add_option("--beta1", o.optimizer.beta1, "Adam beta1")->capture_default_str();
  cmd->add_option("--beta2", o.optimizer.beta2, "Adam beta2")->capture_default_str();
  cmd->add_option("--eps", o.optimizer.eps, "Optimizer epsilon")->capture_default_str();
  cmd->add_option("--alpha", o.optimizer.alpha, "RMSProp smoothing constant")
      ->capture_default_str();
  cmd->add_option("--schedule", flags.schedule, "Learning-rate schedule: constant, step, cosine")
      ->capture_default_str();
  cmd->add_option("--warmup", o.schedule.warmup_steps, "Linear warmup steps")
      ->capture_default_str();
  cmd->add_option("--step-size", o.schedule.step_size, "Step schedule: decay every N steps")
      ->capture_default_str();
  cmd->add_option("--gamma", o.schedule.gamma, "Step schedule: decay factor")
      ->capture_default_str();
  cmd->add_option("--min-lr", o.schedule.min_lr, "Cosine schedule: final learning rate")
      ->capture_default_str();
}

// Clipping, batches, epochs, hold-out, seeds, threads, logging and the run folder.
void add_run_options(CLI::App* cmd, TrainFlags& flags) {
  TrainOptions& o = flags.o;
  cmd->add_option("--clip-norm", o.clip_norm, "Clip gradients to this global norm; 0 = off")
      ->capture_default_str();
  cmd->add_option("--clip-value", o.clip_value, "Clip each gradient to [-v, v]; 0 = off")
      ->capture_default_str();
  cmd->add_option("--patience", o.patience,
                  "Stop early after N epochs whose validation accuracy is not above the best; 0 = "
                  "off (needs --val)")
      ->capture_default_str();
  cmd->add_option("--label-smoothing", o.label_smoothing,
                  "Train against (1 - eps) on the label and eps / classes on every class; 0 = off "
                  "(validation and test report the plain loss)")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Batch size")->capture_default_str();
  cmd->add_option("--epochs", o.epochs, "Epochs")->capture_default_str();
  cmd->add_option("--steps", o.steps, "Stop after this many steps; 0 = all epochs")
      ->capture_default_str();
  cmd->add_option("--val", o.validation, "Validation images: the first N of the training file")
      ->capture_default_str();
  cmd->add_option("--train-limit", o.train_limit,
                  "Train on the first N remaining images only; 0 = all")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of init, shuffling and dropout")
      ->check(kNotNegative)
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads; 0 = all cores")->capture_default_str();
  cmd->add_option("--display-step", o.display_step,
                  "Log the training loss and accuracy every N steps")
      ->capture_default_str();
  cmd->add_option("--eval-batch", o.eval_batch, "Batch size of validation")->capture_default_str();
  cmd->add_option("--out", o.out_dir, "Run folder (must be new or empty)")->capture_default_str();
  cmd->add_option("--checkpoint-every", o.checkpoint_every,
                  "Also write the resume checkpoint every N steps")
      ->capture_default_str();
  cmd->add_flag("--skip-nonfinite", o.skip_nonfinite,
                "Skip and count steps with a non-finite loss or gradient instead of stopping");
}

}  // namespace

void add_train_command(CLI::App& app, Runner& run, TrainOptions* parsed_only) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a recurrent classifier on images read as sequences");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path,
                  "TOML file of options (same names as the flags); flags override it");

  add_data_options(cmd, *flags);
  add_model_options(cmd, *flags);
  add_init_options(cmd, *flags);
  add_optimizer_options(cmd, *flags);
  add_run_options(cmd, *flags);
  auto resume_dir = std::make_shared<std::string>();
  cmd->add_option(
      "--resume", *resume_dir,
      "Continue the interrupted run in this folder (its config.toml and resume.safetensors)");

  // Set when `train` itself is parsed, so that commands registered later cannot replace it.
  cmd->callback([flags, cmd, config_path, resume_dir, parsed_only, &run] {
    run = [flags, cmd, config_path, resume_dir, parsed_only]() {
      if (!resume_dir->empty()) {
        if (!config_path->empty())
          throw Error("--resume", "takes the run's own config.toml; do not give --config too");
        const std::string saved = *resume_dir + "/config.toml";
        if (!std::filesystem::exists(saved))
          throw Error("--resume", saved + " does not exist: not a recur run folder");
        apply_config(*cmd, saved);
        flags->o.out_dir = *resume_dir;
        flags->o.resume = true;
      }
      if (!config_path->empty()) {
        try {
          apply_config(*cmd, *config_path);
        } catch (const Error& e) {
          throw Error("--config", e.what());
        }
      }
      TrainFlags& f = *flags;
      const bool sequences = is_sequence_data(f.o.data_dir);
      const bool listed = !f.model.empty();
      if (listed) {
        f.seq.layers = parse_layer_list(f.model, "--model");
        check_short_form_unused(f);
        check_projection_init_unused(f);
      }
      if (sequences) {
        for (const auto& [name, value] : sequence_defaults()) {
          CLI::Option* opt = cmd->get_option(name);
          if (opt->count() > 0) continue;
          // The layer list says how the model pools and reads.
          if (listed && (name == "--pooling" || name == "--bidirectional")) continue;
          opt->add_result(value);
          opt->run_callback();
        }
      }
      check_sequence_flags(f.seq);
      TrainOptions opts = f.o;
      opts.view = parse_view(f.view);
      opts.model.cell = parse_cell(f.cell);
      opts.model.pooling = parse_pooling(f.pooling);
      opts.model.bias = !f.no_bias;
      auto& in = opts.model.init;
      in.input.kind = parse_init(f.init_input);
      const bool recurrent_auto = f.init_recurrent == "auto";
      in.recurrent.kind = recurrent_auto ? auto_recurrent_init(opts.model.cell)
                                         : parse_init(f.init_recurrent, "--init-recurrent");
      in.input.sigma = in.recurrent.sigma = f.init_sigma;
      in.input.bias = in.recurrent.bias = parse_bias_init(f.bias_init);
      in.input.bias_value = in.recurrent.bias_value = f.bias_value;
      in.head.kind = parse_init(f.init_head, "--head-init");
      in.head.sigma = f.head_sigma;
      in.head.bias = parse_bias_init(f.head_bias_init, "--head-bias-init");
      in.head.bias_value = f.head_bias_value;
      in.projection.kind = parse_init(f.init_projection, "--projection-init");
      in.projection.sigma = f.init_sigma;
      in.projection.bias = parse_bias_init(f.projection_bias_init, "--projection-bias-init");
      in.projection.bias_value = f.projection_bias_value;
      opts.optimizer.kind = parse_optimizer(f.optimizer);
      opts.schedule.kind = parse_schedule(f.schedule);
      opts.config_text = resolved_config(*cmd);
      // The flags reach a layer list once it is final and before anything copies it: the image
      // trainer reads opts.layers, text and arrays read f.seq.layers, Python reads opts.
      if (listed) apply_init_flags(InitFlags{in, recurrent_auto, f.no_bias}, f.seq.layers);
      opts.layers = f.seq.layers;
      if (parsed_only) {
        *parsed_only = std::move(opts);
        return 0;
      }
      if (sequences) return run_sequence_train_command(opts, f.seq);
      install_stop_signals();
      // In a data-parallel run (mpirun) rank 0 speaks for all.
      const bool speaker = dist::rank() == 0;
      std::ostream silent(nullptr);
      try {
        train(opts, speaker ? std::cout : silent, dist::size() == 1 && isatty(STDOUT_FILENO) != 0);
      } catch (const StopRequested& stop) {
        if (speaker) std::cerr << "recur: " << stop.message << "\n";
        return 128 + stop.signal;
      }
      return 0;
    };
  });
}

}  // namespace recur::cli
