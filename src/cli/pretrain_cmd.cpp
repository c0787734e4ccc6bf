// recur pretrain: a language model on the training texts whose embedding and recurrent weights
// start a classifier (recur train --init-from RUN/lm.safetensors). See recur/pretrain.hpp.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "recur/cell.hpp"
#include "recur/pretrain.hpp"

namespace recur::cli {

void add_pretrain_command(CLI::App& app, Runner& run) {
  CLI::App* cmd = app.add_subcommand(
      "pretrain",
      "Train a next-word language model (forward and backward) on the training texts only; "
      "start a classifier from it with recur train --init-from OUT/lm.safetensors");
  auto o = std::make_shared<PretrainOptions>();
  auto cell = std::make_shared<std::string>("lstm");
  auto direction = std::make_shared<std::string>("both");
  cmd->add_option("--data", o->data_dir, "imdb (data/imdb), a text folder or label<TAB>text file")
      ->capture_default_str();
  cmd->add_option("--test-data", o->test_data,
                  "recur train's --test-data, if the classifier uses one (never read: it only "
                  "makes a label<TAB>text --data all training texts)");
  cmd->add_option("--out", o->out_dir, "Run folder (must be new or empty)")->capture_default_str();
  cmd->add_option("--vocab", o->vocab, "Vocabulary size, as the classifier's")
      ->capture_default_str();
  cmd->add_option("--min-count", o->min_count, "A word's least count, as the classifier's")
      ->capture_default_str();
  cmd->add_option("--embed", o->embed, "Embedding width, as the classifier's")
      ->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "Hidden units per direction, as the classifier's")
      ->capture_default_str();
  cmd->add_option("--cell", *cell, "lstm, gru, rnn (tanh), rnn_relu, as the classifier's")
      ->capture_default_str();
  cmd->add_option("--direction", *direction,
                  "both (forward and backward LMs: a bidirectional classifier), forward, backward")
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "Passes over the training texts")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Stop after this many steps; 0 = all epochs")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Text pieces per step")->capture_default_str();
  cmd->add_option("--bptt", o->bptt, "Tokens per piece (backpropagation through time)")
      ->capture_default_str();
  cmd->add_option("--negatives", o->negatives,
                  "Sampled softmax: candidate words per step (unigram^0.75), shared by the batch")
      ->capture_default_str();
  cmd->add_option("--lr", o->lr, "Adam's learning rate (cosine decay to lr/20)")
      ->capture_default_str();
  cmd->add_option("--clip-norm", o->clip_norm, "Clip gradients to this global norm; 0 = off")
      ->capture_default_str();
  cmd->add_option("--holdout", o->holdout,
                  "Training texts held out for the perplexity in metrics.jsonl")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of init, hold-out, shuffling and sampling")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads; 0 = all cores")->capture_default_str();
  cmd->add_option("--display-step", o->display_step, "Log the loss every N steps")
      ->capture_default_str();
  cmd->callback([&run, o, cell, direction] {
    run = [o, cell, direction] {
      o->cell = parse_cell(*cell);
      o->direction = parse_lm_direction(*direction);
      pretrain(*o, std::cout);
      return 0;
    };
  });
}

}  // namespace recur::cli
