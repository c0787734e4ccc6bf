#include "cli/sequence_data.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "dist/comm.hpp"
#include "recur/error.hpp"
#include "recur/sha256.hpp"

namespace recur::cli {

std::string resolve_data_path(const std::string& data) {
  return data == "imdb" ? "data/imdb" : data;
}

bool is_sequence_data(const std::string& data) {
  if (data == "imdb") return true;
  const std::string path = resolve_data_path(data);
  return is_npy_folder(path) || is_text_data(path);
}

std::vector<std::pair<std::string, std::string>> sequence_defaults() {
  // The IMDb recipe (examples/imdb-bilstm.toml; README results): a bidirectional LSTM read out
  // by max pooling over the real steps.
  return {{"--pooling", "max"},     {"--bidirectional", "true"}, {"--epochs", "4"},
          {"--batch", "64"},        {"--lr", "0.002"},           {"--val", "0"},
          {"--display-step", "50"}, {"--eval-batch", "64"}};
}

void check_sequence_flags(const SequenceFlags& f) {
  RECUR_CHECK(f.embed >= 1 && f.embed <= 4096, "--embed",
              "must be in [1, 4096], got " + std::to_string(f.embed));
  RECUR_CHECK(f.vocab >= 3 && f.vocab <= (1 << 24), "--vocab",
              "must be in [3, 16777216], got " + std::to_string(f.vocab));
  RECUR_CHECK(f.min_count >= 1, "--min-count",
              "must be at least 1, got " + std::to_string(f.min_count));
  RECUR_CHECK(f.max_len >= 1 && f.max_len <= 100000, "--max-len",
              "must be in [1, 100000], got " + std::to_string(f.max_len));
  parse_truncate(f.truncate);
  RECUR_CHECK(f.head_dropout >= 0 && f.head_dropout < 1, "--head-dropout",
              fmt::format("must be in [0, 1), got {}", f.head_dropout));
  RECUR_CHECK(f.embed_dropout >= 0 && f.embed_dropout < 1, "--embed-dropout",
              fmt::format("must be in [0, 1), got {}", f.embed_dropout));
  if (!f.test_data.empty()) {
    std::error_code ec;
    RECUR_CHECK(std::filesystem::is_regular_file(f.test_data, ec), "--test-data",
                f.test_data + " is not a file");
  }
}

namespace {

// The layer list of --model on this data: an embedding's rows come from the vocabulary.
ModelSpec listed_model(const SequenceFlags& f, ActShape input, int vocab_size, int classes) {
  ModelSpec spec;
  spec.input = input;
  spec.num_classes = classes;
  spec.layers = f.layers;
  for (LayerSpec& l : spec.layers) {
    RECUR_CHECK(l.untied_steps == 0, "--model",
                "untied weights (untied=N) need sequences of one fixed length: images read "
                "through a view, not text or arrays");
    if (l.type != "embedding") continue;
    RECUR_CHECK(l.vocab == 0 || l.vocab == vocab_size, "--model",
                fmt::format("the embedding has vocab={} but the vocabulary holds {} words; leave "
                            "vocab= out (set --vocab instead)",
                            l.vocab, vocab_size));
    l.vocab = vocab_size;
  }
  try {
    spec.validate();
  } catch (const Error& e) {
    throw Error("--model", fmt::format("does not fit this data ({} in, {} classes): {}",
                                       to_string(input), classes, e.what()));
  }
  return spec;
}

// The short form on text or arrays: the fixed-shape chain (model_spec_from_config: [linear
// "proj"], recurrent "rnn", pool, linear "head") read by an embedding for text, with the text
// flags' dropouts around it.
ModelSpec sequence_model(const TrainOptions& o, const SequenceFlags& f, ActShape input,
                         int vocab_size, int classes) {
  if (!f.layers.empty()) return listed_model(f, input, vocab_size, classes);
  RECUR_CHECK(!o.model.untied, "--untied", "untied weights need fixed-length images");
  ModelConfig m = o.model;
  m.input_size = std::max(1, input.features);
  m.num_classes = classes;
  if (input.ids) m.projection = 0;  // the embedding is the input layer
  ModelSpec spec = model_spec_from_config(m);
  spec.input = input;
  if (f.head_dropout > 0) {
    LayerSpec d;
    d.type = "dropout";
    d.name = "head_dropout";
    d.dropout = f.head_dropout;
    spec.layers.insert(spec.layers.end() - 1, d);
  }
  if (input.ids) {
    LayerSpec e;
    e.type = "embedding";
    e.name = "embed";
    e.vocab = vocab_size;
    e.size = f.embed;
    std::vector<LayerSpec> front = {e};
    if (f.embed_dropout > 0) {
      LayerSpec d;
      d.type = "dropout";
      d.name = "embed_dropout";
      d.dropout = f.embed_dropout;
      front.push_back(d);
    }
    spec.layers.insert(spec.layers.begin(), front.begin(), front.end());
  }
  try {
    spec.validate();
  } catch (const Error& e) {
    throw Error("--data", std::string("the model does not fit this data: ") + e.what());
  }
  return spec;
}

std::string join_names(const std::vector<std::string>& names) {
  nlohmann::json j = names;
  return j.dump();
}

}  // namespace

int run_sequence_training(const TrainOptions& o, const SequenceFlags& f, std::ostream& out,
                          bool interactive) {
  const std::string path = resolve_data_path(o.data_dir);
  FitOptions so = fit_options(o);
  so.data_name = path;
  check_sequence_flags(f);
  // Everything is checked before the run folder is made.
  if (!o.resume)
    RECUR_CHECK(
        !std::filesystem::exists(so.out_dir) || std::filesystem::is_empty(so.out_dir), "--out",
        so.out_dir + " exists and is not empty; choose another folder, remove it, or --resume it");

  std::shared_ptr<const SequenceSource> train, test;
  nlohmann::json data_info;
  const auto t0 = std::chrono::steady_clock::now();
  if (is_npy_folder(path)) {
    auto split = std::make_shared<SequenceSplit>(load_npy_folder(path));
    auto tr = std::shared_ptr<const SequenceSet>(split, &split->train);
    auto te = std::shared_ptr<const SequenceSet>(split, &split->test);
    RECUR_CHECK(tr->features == te->features, path,
                fmt::format("x_train has {} features per step but x_test has {}", tr->features,
                            te->features));
    train = std::make_shared<ArraySequences>(tr);
    test = std::make_shared<ArraySequences>(te);
    so.model = sequence_model(o, f, ActShape{ActKind::sequence, tr->features}, 0,
                              std::max(tr->num_classes, te->num_classes));
    data_info = {{"kind", "arrays"},
                 {"train", tr->count},
                 {"test", te->count},
                 {"steps", tr->steps},
                 {"features", tr->features}};
    so.title = "recur " + std::filesystem::path(path).filename().string();
  } else {
    const Truncate keep = parse_truncate(f.truncate);
    if (o.data_dir == "imdb" && !std::filesystem::exists(path + "/reviews.json"))
      throw Error("--data", "data/imdb/reviews.json is missing; run `recur data fetch imdb` first");
    const TextSplit split = load_text_splits(path, f.test_data);
    const Vocabulary vocab = Vocabulary::build(split.train.texts, f.vocab, f.min_count);
    auto tr = std::make_shared<TokenSequences>(split.train, vocab, f.max_len, keep);
    auto te = std::make_shared<TokenSequences>(split.test, vocab, f.max_len, keep);
    RECUR_CHECK(split.test.num_classes <= split.train.num_classes, "--test-data",
                "the test texts have labels the training texts never use");
    ActShape ids{ActKind::sequence, 0};
    ids.ids = true;
    so.model = sequence_model(o, f, ids, vocab.size(), split.train.num_classes);
    so.metadata["recur.vocab"] = vocab.to_json();
    so.metadata["recur.text"] = nlohmann::json{
        {"max_len", f.max_len},
        {"truncate", to_string(keep)},
        {"class_names",
         split.train.class_names}}.dump();
    data_info = {{"kind", "text"},
                 {"name", o.data_dir == "imdb" ? std::string("imdb")
                                               : std::filesystem::path(path).filename().string()},
                 {"train", split.train.size()},
                 {"test", split.test.size()}};
    if (std::filesystem::exists(path + "/reviews.json"))
      data_info["reviews_sha256"] = sha256_file_hex(path + "/reviews.json");
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out << fmt::format(
        "text: {} training / {} test texts ({}), vocabulary {} (min count {}), at most {} tokens "
        "(keep {}), {:.1f}% unknown tokens; read in {:.1f} s\n",
        split.train.size(), split.test.size(), join_names(split.train.class_names), vocab.size(),
        f.min_count, f.max_len, to_string(keep),
        100.0 * static_cast<double>(tr->unknown_tokens()) /
            static_cast<double>(std::max<std::int64_t>(1, tr->total_tokens())),
        secs);
    train = tr;
    test = te;
    so.title = "recur " + (o.data_dir == "imdb" ? std::string("imdb") : path);
  }
  so.metadata["recur.train_config"] = without_local_paths(o.config_text);
  so.metadata["recur.train_data"] = data_info.dump();
  fit(so, train, test, out, interactive);
  return 0;
}

int run_sequence_train_command(const TrainOptions& o, const SequenceFlags& f) {
  install_stop_signals();
  // In a data-parallel run (mpirun) rank 0 speaks for all.
  const bool speaker = dist::rank() == 0;
  std::ostream silent(nullptr);
  try {
    return run_sequence_training(o, f, speaker ? std::cout : silent,
                                 dist::size() == 1 && isatty(STDOUT_FILENO) != 0);
  } catch (const StopRequested& stop) {
    if (speaker) std::cerr << "recur: " << stop.message << "\n";
    return 128 + stop.signal;
  }
}

}  // namespace recur::cli
