// The command line's side of sequence data (text, .npy arrays): which --data values name them,
// the text options, and training models built from layers on them.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/fit.hpp"
#include "recur/predictor.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur::cli {

// Options of models built from layers: the layer list (--model, on any data) and what only
// text and array data use (recur train's --embed, --vocab, ...).
struct SequenceFlags {
  // --model, parsed; empty = the short form (--cell, --hidden, ...). Embedding rows (vocab=0)
  // come from the data's vocabulary.
  std::vector<LayerSpec> layers;
  int embed = 128;
  int vocab = 20000;
  int min_count = 2;
  int max_len = 500;
  std::string truncate = "tail";  // a review's verdict tends to come at its end
  std::string test_data;
  double head_dropout = 0;
  double embed_dropout = 0;
};

// "imdb" is data/imdb; anything else is a path.
std::string resolve_data_path(const std::string& data);
// True when --data names text (imdb, a reviews.json / aclImdb folder, a label<TAB>text file) or
// a folder of .npy arrays, rather than IDX images.
bool is_sequence_data(const std::string& data);

// The recipe's values (flag, value) for the options a text or array run does not set itself;
// `recur train` applies them as if given, so config.toml records them.
std::vector<std::pair<std::string, std::string>> sequence_defaults();
// Throws Error naming the flag for a value out of range, whatever the data (so a bad value
// never waits for the data to be read, and never passes silently).
void check_sequence_flags(const SequenceFlags& f);

// Trains on the sequence data named by o.data_dir (continues the run in o.out_dir when
// o.resume); prints the test accuracy.
int run_sequence_training(const TrainOptions& o, const SequenceFlags& f, std::ostream& out,
                          bool interactive);
// run_sequence_training as `recur train` runs it: SIGINT / SIGTERM end the current step, write
// the checkpoint and return 128 + the signal; under mpirun rank 0 alone prints.
int run_sequence_train_command(const TrainOptions& o, const SequenceFlags& f);

// A text shortened for a terminal line or a report: line breaks and "<br />" become spaces, at
// most `limit` bytes, never cutting a UTF-8 character ("..." marks a cut).
std::string excerpt(const std::string& text, std::size_t limit);

// What a checkpoint says about its input lives in the library's predictor now.
using recur::is_image_model;
using recur::is_text_model;
using recur::text_codec;
using recur::TextCodec;

// True when the checkpoint at `path` is a model built from layers (format 2); false for a
// fixed-shape checkpoint and for a file that cannot be read (its own command then says why).
bool is_layer_list_file(const std::string& path);
// recur eval for text and array models. `data` "" = the data the model was trained on, when
// that is a named data set (imdb).
int run_sequence_eval(const Predictor& predictor, std::string data, const std::string& out_dir,
                      bool json, int threads, int batch);
// Texts from --text, or one per line from stdin when none is given. Throws Error("--text" or
// "stdin", ...) for a text it cannot read (empty, whitespace only, invalid UTF-8, too long).
int run_text_predict(const Predictor& predictor, std::vector<std::string> texts, bool json);

}  // namespace recur::cli
