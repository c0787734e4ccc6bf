// recur report --text: the IMDb pair (report/report_text.hpp).
#include "report/report_text.hpp"

#include <fmt/core.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/fs.hpp"
#include "recur/predictor.hpp"
#include "recur/sources.hpp"
#include "recur/text.hpp"
#include "recur/train_options.hpp"

namespace recur {

namespace {

namespace fs = std::filesystem;

struct TextPlan {
  std::string name, family, description, fingerprint;
  int epochs = 0;
  bool via_train = false;              // the BiLSTM: `recur train` in the child
  std::vector<std::string> train_cmd;  // its arguments after the executable
  TrainOptions options;                // the CNN: train() with these, its layers after
  int embed = 0;                       // an embedding this wide
  std::vector<LayerSpec> layers;
};

std::string run_dir(const ReportRunOptions& o, const std::string& name) {
  return o.out_dir + "/runs/" + name;
}

// What bare `recur train --data imdb` trains with.
TrainOptions text_recipe() {
  TrainOptions o = default_train_options();
  std::set<std::string> none;
  apply_sequence_defaults(o, none);
  return o;
}

LayerSpec layer(const std::string& type, const std::string& name, int size = 0, int kernel = 0) {
  LayerSpec l;
  l.type = type;
  l.name = name;
  l.size = size;
  l.kernel = kernel;
  return l;
}

// The text data's identity for the fingerprint: its path and size in bytes.
std::string data_identity(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec) && fs::exists(path + "/reviews.json", ec))
    file = path + "/reviews.json";
  const auto size = fs::is_regular_file(file, ec) ? fs::file_size(file, ec) : 0;
  return fmt::format("{} bytes={}", fs::absolute(file).lexically_normal().string(), size);
}

bool tiny(const ReportRunOptions& o) {
  return o.budget == ReportBudget::tiny;
}

std::vector<TextPlan> text_plan(const ReportRunOptions& o) {
  const bool t = tiny(o);
  const std::string data = resolve_data_path(o.text_data);
  const std::int64_t validation = t ? 20 : 2500;
  const std::string common = fmt::format(" validation={} data={} threads={}", validation,
                                         data_identity(data), resolve_threads(o.threads));
  std::vector<TextPlan> plan;

  // The BiLSTM: `recur train --data PATH` with its defaults (sequence_defaults) but the
  // embedding, width and loss of the CNN beside it (embedding 128, BiLSTM-128, no label
  // smoothing: examples/imdb-bilstm.toml), so the pair compares two models of one size trained
  // alike; a held-out split to pick the checkpoint and draw the curves.
  TextPlan b;
  b.name = "imdb-bilstm";
  b.family = "BiLSTM";
  b.via_train = true;
  b.train_cmd = {"train",
                 "--data",
                 data,
                 "--out",
                 run_dir(o, b.name),
                 "--val",
                 std::to_string(validation),
                 "--threads",
                 std::to_string(o.threads)};
  const std::vector<std::string> tiny_flags = {
      "--embed",  "16", "--hidden", "8",  "--max-len",      "64", "--vocab", "2000",
      "--epochs", "2",  "--batch",  "16", "--display-step", "5"};
  const std::vector<std::string> pair_flags = {"--embed", "128", "--hidden", "128"};
  const std::vector<std::string>& size = t ? tiny_flags : pair_flags;
  b.train_cmd.insert(b.train_cmd.end(), size.begin(), size.end());
  b.train_cmd.insert(b.train_cmd.end(), {"--label-smoothing", "0"});
  const TrainOptions recipe = text_recipe();
  b.epochs = t ? 2 : recipe.epochs;
  b.description =
      t ? "tiny BiLSTM-8 over embeddings of 16, max pooling, 2 epochs"
        : fmt::format(
              "recur train --data {}'s recipe at the CNN's size: embedding 128, BiLSTM-128 "
              "(no label smoothing), max pooling over the real steps, linear; vocabulary {}, "
              "at most {} tokens (keep {}); Adam {} cosine, batch {}, {} epochs",
              o.text_data, recipe.vocab, recipe.max_len, to_string(recipe.truncate),
              recipe.optimizer.lr, recipe.batch, b.epochs);
  b.fingerprint = "recur-train";
  for (const auto& a : b.train_cmd)
    if (a != run_dir(o, b.name)) b.fingerprint += " " + a;
  b.fingerprint += common;
  plan.push_back(std::move(b));

  // The CNN: the same text pipeline and optimiser, conv1d over the embeddings.
  TextPlan c;
  c.name = "imdb-cnn";
  c.family = "CNN";
  const int embed = t ? 16 : 128, channels = t ? 16 : 128, kernel = t ? 3 : 5;
  const int epochs = t ? 2 : 3, batch = t ? 16 : 64;
  const double lr = 2e-3;
  c.epochs = epochs;
  TrainOptions& so = c.options;
  so.data_dir = data;
  so.optimizer.lr = static_cast<float>(lr);
  so.batch = batch;
  so.epochs = epochs;
  so.validation = validation;
  so.threads = o.threads;
  so.display_step = t ? 5 : 50;
  so.eval_batch = 64;
  so.out_dir = run_dir(o, c.name);
  c.embed = embed;
  if (t) {
    so.max_len = 64;
    so.vocab = 2000;
  }
  c.layers = {layer("conv1d", "conv", channels, kernel), layer("relu", "relu"),
              layer("pool", "pool"), layer("linear", "head")};
  c.layers[2].pooling = Pooling::max;
  so.layers = {layer("embedding", "embed", embed)};
  so.layers.insert(so.layers.end(), c.layers.begin(), c.layers.end());
  c.description = fmt::format(
      "embedding {}, conv1d {}@{} (same padding), ReLU, max over the real steps, linear; "
      "vocabulary {}, at most {} tokens (keep {}); Adam {:g} cosine, batch {}, {} epochs",
      embed, channels, kernel, so.vocab, so.max_len, to_string(so.truncate), lr, batch, epochs);
  c.fingerprint = "text-cnn " + without_local_paths(train_config_toml(so)) + common;
  plan.push_back(std::move(c));
  return plan;
}

const TextPlan& find_text_plan(const std::vector<TextPlan>& plan, const std::string& name) {
  for (const auto& p : plan)
    if (p.name == name) return p;
  throw Error("--train-one", "no text model '" + name + "' in the report's plan");
}

bool trained(const ReportRunOptions& o, const TextPlan& p) {
  const std::string dir = run_dir(o, p.name);
  std::error_code ec;
  for (const char* f : {"/plan.txt", "/summary.json", "/train.json", "/best.safetensors"})
    if (!fs::exists(dir + f, ec)) return false;
  return read_file(dir + "/plan.txt") == p.fingerprint;
}

std::int64_t self_peak_rss() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<std::int64_t>(u.ru_maxrss) * 1024;
}

ReportModel measure_text(const ReportRunOptions& o, const TextPlan& p, const TextSplit& split,
                         std::ostream& out) {
  const std::string dir = run_dir(o, p.name), ckpt = dir + "/best.safetensors";
  ReportModel m;
  m.name = p.name;
  m.family = p.family;
  m.epochs = p.epochs;
  m.checkpoint_bytes = static_cast<std::int64_t>(fs::file_size(ckpt));
  const Predictor predictor(ckpt);
  const TextCodec& codec = predictor.text();
  const Model<float>& model = predictor.model();
  m.parameters = static_cast<std::int64_t>(model.num_params());
  m.int8_bytes = static_cast<std::int64_t>(int8_parameter_bytes(model));
  m.class_names = codec.class_names;
  const TokenSequences test(split.test, codec.vocab, codec.max_len, codec.truncate);
  const int threads = resolve_threads(o.threads);
  BatchRunner runner(predictor, threads);
  const EvalResult r = runner.evaluate(test, 100);
  m.test_accuracy = r.accuracy();
  m.test_count = r.count;

  BatchRunner single(predictor, 1);
  std::vector<std::int32_t> pred(kReportThroughputBatch);
  std::vector<std::int64_t> one(1);
  const InferenceTiming timing = time_report_inference(
      test.size(),
      [&](const std::vector<std::int64_t>& idx) {
        std::vector<std::int64_t> sorted = idx;  // a batch runs longest first
        std::stable_sort(sorted.begin(), sorted.end(), [&](std::int64_t a, std::int64_t b) {
          return test.length(a) > test.length(b);
        });
        runner.infer(test, sorted, pred.data(), nullptr);
      },
      [&](std::int64_t i) {
        one[0] = i;
        single.infer(test, one, pred.data(), nullptr);
      });
  m.inference_per_second = timing.per_second;
  m.latency_us = timing.latency_us;
  // The reviews the latency ran on: test reviews 0, 1, ... (their lengths after truncation).
  std::vector<int> lengths;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(kReportLatencyRuns, test.size()); ++i)
    lengths.push_back(test.length(i));
  std::sort(lengths.begin(), lengths.end());
  const int median_length = lengths.empty() ? 0 : lengths[lengths.size() / 2];
  m.description = p.description + fmt::format(
                                      "; latency over test reviews 0-{} (median {} tokens, at "
                                      "most {})",
                                      lengths.size() - 1, median_length, codec.max_len);
  out << fmt::format(
      "{}: peak RSS of the measuring process so far {:.0f} MB (after its batch-{} pass)\n", p.name,
      self_peak_rss() / 1e6, kReportThroughputBatch);

  const int C = model.spec().num_classes;
  std::vector<std::int32_t> labels(static_cast<std::size_t>(test.size()));
  std::vector<std::int64_t> wrong;
  for (std::int64_t i = 0; i < test.size(); ++i) {
    labels[static_cast<std::size_t>(i)] = test.label(i);
    if (labels[static_cast<std::size_t>(i)] != r.predictions[static_cast<std::size_t>(i)])
      wrong.push_back(i);
  }
  m.confused = most_confused(confusion_counts(labels, r.predictions, C), C, 5);
  auto confidence = [&](std::int64_t i) {
    return static_cast<double>(
        r.probabilities[static_cast<std::size_t>(i) * C +
                        static_cast<std::size_t>(r.predictions[static_cast<std::size_t>(i)])]);
  };
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](std::int64_t a, std::int64_t b) { return confidence(a) > confidence(b); });
  for (std::size_t k = 0; k < std::min<std::size_t>(6, wrong.size()); ++k) {
    const std::int64_t i = wrong[k];
    MisclassifiedText t;
    t.excerpt = text_excerpt(split.test.texts[static_cast<std::size_t>(i)], 400);
    t.truth = test.label(i);
    t.predicted = r.predictions[static_cast<std::size_t>(i)];
    t.confidence = std::clamp(confidence(i), 0.0, 1.0);
    m.mistakes.push_back(std::move(t));
  }
  read_training_record(dir, p.epochs, m);
  return m;
}

std::string group_name(const ReportRunOptions& o) {
  const std::string data = resolve_data_path(o.text_data);
  std::error_code ec;
  return fs::exists(data + "/reviews.json", ec) ? "IMDb" : "Text";
}

}  // namespace

bool is_text_report_model(const std::string& name) {
  return name == "imdb-bilstm" || name == "imdb-cnn";
}

void check_text_report_data(const ReportRunOptions& o) {
  const std::string data = resolve_data_path(o.text_data);
  std::error_code ec;
  if (data == "data/imdb" && !fs::exists(data + "/reviews.json", ec))
    throw Error("--text",
                "data/imdb/reviews.json is missing; run `recur data fetch imdb` first "
                "(or point --text-data at other text data)");
  if (!fs::exists(data, ec))
    throw Error("--text", data + " is missing; run `recur data fetch imdb --data " + data +
                              "` for IMDb (or point --text-data at other text data)");
  RECUR_CHECK(fs::exists(data, ec) && is_text_data(data), "--text-data",
              data +
                  " is not text data (a folder holding reviews.json, an aclImdb folder with "
                  "train/ and test/, a .json file or a label<TAB>text file)");
}

void train_text_report_model(const ReportRunOptions& o, const std::string& name,
                             std::ostream& out) {
  const std::vector<TextPlan> plan = text_plan(o);
  const TextPlan& p = find_text_plan(plan, name);
  RECUR_CHECK(!p.via_train, "--train-one", name + " is trained by `recur train`");
  fs::remove_all(run_dir(o, p.name));
  // The text pipeline's embedding, then the plan's layers: a layer list as --model gives one.
  train(p.options, out, false);
}

void add_text_report_models(const ReportRunOptions& o, Report& report, std::ostream& out) {
  const std::vector<TextPlan> plan = text_plan(o);
  const std::string group = group_name(o);
  const std::string data = resolve_data_path(o.text_data);
  std::unique_ptr<TextSplit> split;
  // Every model that needs it is trained first, while this process is small (each child's peak
  // RSS comes from its own summary.json; see run_training_child).
  for (const TextPlan& p : plan) {
    const std::string dir = run_dir(o, p.name);
    if (trained(o, p)) continue;
    out << fmt::format("{}: training ({})\n", p.name, p.description);
    out.flush();
    fs::remove_all(dir);
    std::vector<std::string> args = {o.executable};
    if (p.via_train) {
      args.insert(args.end(), p.train_cmd.begin(), p.train_cmd.end());
    } else {
      args.insert(args.end(),
                  {"report", "--train-one", p.name, "--text", "--text-data", o.text_data, "--out",
                   o.out_dir, "--threads", std::to_string(o.threads), "--budget",
                   tiny(o) ? "tiny" : "default"});
    }
    const std::int64_t rss = run_training_child(args, p.name, dir);
    // The training loop's own time (summary.json): reading, tokenizing and the final test pass
    // of the child are left out, as are the held-out evaluations at the epochs' ends.
    const nlohmann::json summary = nlohmann::json::parse(read_file(dir + "/summary.json"));
    write_file_atomic(
        dir + "/train.json",
        nlohmann::json{{"train_seconds", summary.at("train_seconds")}, {"peak_rss_bytes", rss}}
                .dump() +
            "\n");
    write_file_atomic(dir + "/plan.txt", p.fingerprint);
    fs::remove(dir + "/measures.json");
  }
  for (const TextPlan& p : plan) {
    const std::string dir = run_dir(o, p.name);
    if (reuse_measures(dir, p.name, out, report)) continue;
    out << fmt::format("{}: measuring the trained model in {}\n", p.name, dir);
    if (!split) split = std::make_unique<TextSplit>(load_text_splits(data));
    ReportModel m = measure_text(o, p, *split, out);
    m.group = group;
    keep_measures(dir, p.name, std::move(m), out, report);
  }
  report.title += "; " + group + ": a BiLSTM against a 1-D CNN";
  report.data += fmt::format("; {}: {} ({} models, {} held out for validation)", group, data,
                             plan.size(), tiny(o) ? 20 : 2500);
}

}  // namespace recur
