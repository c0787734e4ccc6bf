// train() on text and .npy arrays: the data opened by the factory (open_sequence_data), the
// model from the layer list or the short form read by an embedding, then fit.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/sources.hpp"
#include "train/train_parts.hpp"

namespace recur {

void check_text_options(const TrainOptions& o) {
  RECUR_CHECK(o.embed >= 1 && o.embed <= 4096, "--embed",
              "must be in [1, 4096], got " + std::to_string(o.embed));
  RECUR_CHECK(o.vocab >= 3 && o.vocab <= (1 << 24), "--vocab",
              "must be in [3, 16777216], got " + std::to_string(o.vocab));
  RECUR_CHECK(o.min_count >= 1, "--min-count",
              "must be at least 1, got " + std::to_string(o.min_count));
  RECUR_CHECK(o.max_len >= 1 && o.max_len <= 100000, "--max-len",
              "must be in [1, 100000], got " + std::to_string(o.max_len));
  RECUR_CHECK(o.head_dropout >= 0 && o.head_dropout < 1, "--head-dropout",
              fmt::format("must be in [0, 1), got {}", o.head_dropout));
  RECUR_CHECK(o.embed_dropout >= 0 && o.embed_dropout < 1, "--embed-dropout",
              fmt::format("must be in [0, 1), got {}", o.embed_dropout));
  RECUR_CHECK(o.word_dropout >= 0 && o.word_dropout < 1, "--word-dropout",
              fmt::format("must be in [0, 1), got {}", o.word_dropout));
  if (!o.test_data.empty()) {
    std::error_code ec;
    RECUR_CHECK(std::filesystem::is_regular_file(o.test_data, ec), "--test-data",
                o.test_data + " is not a file");
  }
}

namespace {

// The layer list of --model on this data: an embedding's rows come from the vocabulary.
ModelSpec listed_model(const TrainOptions& o, const SequenceData& d) {
  ModelSpec spec;
  spec.input = d.input;
  spec.num_classes = d.num_classes;
  spec.layers = o.layers;
  for (LayerSpec& l : spec.layers) {
    RECUR_CHECK(l.untied_steps == 0, "--model",
                "untied weights (untied=N) need sequences of one fixed length: images read "
                "through a view, not text or arrays");
    if (l.type != "embedding") continue;
    RECUR_CHECK(l.vocab == 0 || l.vocab == d.vocab_size, "--model",
                fmt::format("the embedding has vocab={} but the vocabulary holds {} words; leave "
                            "vocab= out (set --vocab instead)",
                            l.vocab, d.vocab_size));
    l.vocab = d.vocab_size;
  }
  try {
    spec.validate();
  } catch (const Error& e) {
    throw Error("--model", fmt::format("does not fit this data ({} in, {} classes): {}",
                                       to_string(d.input), d.num_classes, e.what()));
  }
  return spec;
}

LayerSpec dropout_layer(const char* name, double rate) {
  LayerSpec d;
  d.type = "dropout";
  d.name = name;
  d.dropout = rate;
  return d;
}

// The short form on text or arrays: the fixed-shape chain (model_spec_from_config: [linear
// "proj"], recurrent "rnn", pool, linear "head") read by an embedding for text, with the text
// options' dropouts around it.
ModelSpec sequence_model(const TrainOptions& o, const SequenceData& d) {
  if (!o.layers.empty()) return listed_model(o, d);
  RECUR_CHECK(!o.model.untied, "--untied", "untied weights need fixed-length images");
  ModelConfig m = o.model;
  m.input_size = std::max(1, d.input.features);
  m.num_classes = d.num_classes;
  if (d.input.ids) m.projection = 0;  // the embedding is the input layer
  ModelSpec spec = model_spec_from_config(m);
  spec.input = d.input;
  if (o.head_dropout > 0)
    spec.layers.insert(spec.layers.end() - 1, dropout_layer("head_dropout", o.head_dropout));
  if (d.input.ids) {
    LayerSpec e;
    e.type = "embedding";
    e.name = "embed";
    e.vocab = d.vocab_size;
    e.size = o.embed;
    e.dropout = o.word_dropout;
    std::vector<LayerSpec> front = {e};
    if (o.embed_dropout > 0) front.push_back(dropout_layer("embed_dropout", o.embed_dropout));
    spec.layers.insert(spec.layers.begin(), front.begin(), front.end());
  }
  try {
    spec.validate();
  } catch (const Error& e) {
    throw Error("--data", std::string("the model does not fit this data: ") + e.what());
  }
  return spec;
}

}  // namespace

TrainSummary train_sequence_data(const TrainOptions& o, const std::string& config,
                                 std::ostream& out, bool interactive) {
  check_text_options(o);
  RECUR_CHECK(o.augment_shift == 0 && o.augment_rotate == 0,
              o.augment_shift != 0 ? "--augment-shift" : "--augment-rotate",
              "moves and turns images; " + o.data_dir + " is text or arrays");
  FitPlan so;
  so.data_name = resolve_data_path(o.data_dir);
  // Everything is checked before the run folder is made.
  if (!o.resume)
    RECUR_CHECK(
        !std::filesystem::exists(o.out_dir) || std::filesystem::is_empty(o.out_dir), "--out",
        o.out_dir + " exists and is not empty; choose another folder, remove it, or --resume it");
  SequenceData d = open_sequence_data(
      o.data_dir, TextSettings{o.vocab, o.min_count, o.max_len, o.truncate, o.test_data});
  so.model = sequence_model(o, d);
  so.metadata.insert(d.metadata.begin(), d.metadata.end());
  so.metadata["recur.train_config"] = without_local_paths(config);
  so.config_text = config;
  so.title = d.title;
  if (!d.summary.empty()) out << d.summary << "\n";
  return fit(o, so, d.train, d.test, out, interactive);
}

}  // namespace recur
