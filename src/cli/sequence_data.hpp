// The command line's side of text and .npy models: eval, predict and the helpers they share
// (training them is the library's train(), recur/train.hpp).
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/fit.hpp"
#include "recur/predictor.hpp"
#include "recur/sources.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur::cli {

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
