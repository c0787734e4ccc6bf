#include "cli/sequence_data.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

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

ModelSpec sequence_model(const TrainOptions& o, const SequenceFlags& f, ActShape input,
                         int vocab_size, int classes,
                         const std::vector<LayerSpec>& text_layers = {}) {
  const ModelConfig& m = o.model;
  RECUR_CHECK(!m.untied, "--untied", "untied weights need fixed-length images");
  ModelSpec spec;
  spec.input = input;
  spec.num_classes = classes;
  if (input.ids) {
    LayerSpec e;
    e.type = "embedding";
    e.name = "embed";
    e.vocab = vocab_size;
    e.size = f.embed;
    spec.layers.push_back(e);
    if (f.embed_dropout > 0) {
      LayerSpec d;
      d.type = "dropout";
      d.name = "embed_dropout";
      d.dropout = f.embed_dropout;
      spec.layers.push_back(d);
    }
  } else if (m.projection > 0) {
    LayerSpec p;
    p.type = "linear";
    p.name = "proj";
    p.size = m.projection;
    p.init = m.init.projection;
    spec.layers.push_back(p);
  }
  if (input.ids && !text_layers.empty()) {
    spec.layers.insert(spec.layers.end(), text_layers.begin(), text_layers.end());
    try {
      spec.validate();
    } catch (const Error& e) {
      throw Error("--data", std::string("the model does not fit this data: ") + e.what());
    }
    return spec;
  }
  LayerSpec r;
  r.type = "recurrent";
  r.name = "rnn";
  r.cell = m.cell;
  r.size = m.hidden;
  r.layers = m.layers;
  r.bidirectional = m.bidirectional;
  r.bias = m.bias;
  r.dropout = m.dropout;
  r.init = m.init.input;
  r.init_recurrent = m.init.recurrent;
  r.forget_bias = m.init.forget_bias;
  spec.layers.push_back(r);
  LayerSpec pool;
  pool.type = "pool";
  pool.name = "pool";
  pool.pooling = m.pooling;
  spec.layers.push_back(pool);
  if (f.head_dropout > 0) {
    LayerSpec d;
    d.type = "dropout";
    d.name = "head_dropout";
    d.dropout = f.head_dropout;
    spec.layers.push_back(d);
  }
  LayerSpec head;
  head.type = "linear";
  head.name = "head";
  head.size = classes;
  head.init = m.init.head;
  spec.layers.push_back(head);
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

bool is_text_model(const Metadata& metadata) {
  return metadata.count("recur.vocab") > 0;
}

TextCodec text_codec(const Metadata& metadata, const std::string& path) {
  auto v = metadata.find("recur.vocab");
  auto t = metadata.find("recur.text");
  if (v == metadata.end() || t == metadata.end())
    throw Error(path, "not a text model: its metadata has no vocabulary");
  TextCodec c;
  c.vocab = Vocabulary::from_json(v->second, path);
  try {
    const auto j = nlohmann::json::parse(t->second);
    c.max_len = j.at("max_len").get<int>();
    c.truncate = parse_truncate(j.at("truncate").get<std::string>());
    c.class_names = j.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("the text settings in the metadata are invalid: ") + e.what());
  } catch (const Error& e) {
    throw Error(path, std::string("the text settings in the metadata are invalid: ") + e.what());
  }
  if (c.max_len < 1) throw Error(path, "the text settings in the metadata are invalid: max_len");
  return c;
}

int run_sequence_training(const TrainOptions& o, const SequenceFlags& f, std::ostream& out,
                          bool interactive, const std::vector<LayerSpec>& text_layers) {
  const std::string path = resolve_data_path(o.data_dir);
  SeqTrainOptions so;
  so.optimizer = o.optimizer;
  so.schedule = o.schedule;
  so.clip_norm = o.clip_norm;
  so.batch = o.batch;
  so.epochs = o.epochs;
  so.steps = o.steps;
  so.validation = o.validation;
  so.seed = o.seed;
  so.threads = o.threads;
  so.eval_batch = o.eval_batch;
  so.display_step = o.display_step;
  so.out_dir = o.out_dir;
  so.config_text = o.config_text;
  so.on_event = o.on_event;
  RECUR_CHECK(o.display_step >= 1, "--display-step", "must be at least 1");
  check_sequence_flags(f);
  // Everything is checked before the run folder is made.
  RECUR_CHECK(!std::filesystem::exists(so.out_dir) || std::filesystem::is_empty(so.out_dir),
              "--out", so.out_dir + " exists and is not empty; choose another folder or remove it");

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
    so.model = sequence_model(o, f, ids, vocab.size(), split.train.num_classes, text_layers);
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
  train_sequences(so, train, test, out, interactive);
  return 0;
}

}  // namespace recur::cli
