// recur eval MODEL [--data DIR] [--out DIR] [--json] [--threads N] [--batch N] [--gallery N]
// Scores a checkpoint on the MNIST test set: accuracy, loss, per-class precision/recall/F1, the
// confusion matrix, and pictures of misclassified and correct digits.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_io.hpp"
#include "cli/sequence_data.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/fs.hpp"
#include "recur/layers.hpp"
#include "recur/plot.hpp"
#include "recur/predictor.hpp"
#include "recur/train.hpp"

namespace recur::cli {

namespace {

// Defaults that depend on what the model reads: images are small and come from MNIST; text
// batches hold hundreds of steps, and text or array data is named by the model's metadata.
constexpr int kImageEvalBatch = 1000;
constexpr int kSequenceEvalBatch = 64;
constexpr const char* kImageData = "data/mnist";

struct EvalOptions {
  std::string model;
  std::optional<std::string> data;  // unset: data/mnist for images, else the model's data set
  std::string out;                  // empty: the model's folder
  bool json = false;
  int threads = 0;
  std::optional<int> batch;  // unset: kImageEvalBatch for images, else kSequenceEvalBatch
  int gallery = 24;
  std::string precision = "fp32";
};

constexpr int kGalleryColumns = 6;
const Rgb kWrongColor{200, 30, 30};
const Rgb kRightColor{20, 130, 40};

struct ClassScore {
  double precision = 0, recall = 0, f1 = 0;
  std::int64_t support = 0;
};

// counts: k x k, row = true class, column = predicted class.
std::vector<ClassScore> class_scores(const std::vector<std::int64_t>& counts, int k) {
  std::vector<ClassScore> scores(static_cast<std::size_t>(k));
  for (int c = 0; c < k; ++c) {
    std::int64_t row = 0, column = 0;
    for (int j = 0; j < k; ++j) {
      row += counts[static_cast<std::size_t>(c) * k + j];
      column += counts[static_cast<std::size_t>(j) * k + c];
    }
    const double hits = static_cast<double>(counts[static_cast<std::size_t>(c) * k + c]);
    ClassScore& s = scores[static_cast<std::size_t>(c)];
    s.support = row;
    s.precision = column ? hits / static_cast<double>(column) : 0.0;
    s.recall = row ? hits / static_cast<double>(row) : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  }
  return scores;
}

std::string confusion_text(const std::vector<std::int64_t>& counts, int k) {
  std::int64_t largest = *std::max_element(counts.begin(), counts.end());
  const int width =
      static_cast<int>(std::max(std::to_string(largest).size(), std::to_string(k - 1).size())) + 2;
  std::string text = "confusion matrix (rows: true class, columns: predicted class)\n";
  text += fmt::format("{:>6}", "t\\p");
  for (int j = 0; j < k; ++j) text += fmt::format("{:>{}}", j, width);
  text += "\n";
  for (int i = 0; i < k; ++i) {
    text += fmt::format("{:>6}", i);
    for (int j = 0; j < k; ++j)
      text += fmt::format("{:>{}}", counts[static_cast<std::size_t>(i) * k + j], width);
    text += "\n";
  }
  return text;
}

std::string scores_text(const std::vector<ClassScore>& scores) {
  std::string text = fmt::format("{:>5}  {:>9}  {:>7}  {:>7}  {:>7}\n", "class", "precision",
                                 "recall", "F1", "support");
  ClassScore macro;
  for (std::size_t c = 0; c < scores.size(); ++c) {
    const ClassScore& s = scores[c];
    text += fmt::format("{:>5}  {:>9.4f}  {:>7.4f}  {:>7.4f}  {:>7}\n", c, s.precision, s.recall,
                        s.f1, s.support);
    macro.precision += s.precision / static_cast<double>(scores.size());
    macro.recall += s.recall / static_cast<double>(scores.size());
    macro.f1 += s.f1 / static_cast<double>(scores.size());
    macro.support += s.support;
  }
  text += fmt::format("{:>5}  {:>9.4f}  {:>7.4f}  {:>7.4f}  {:>7}\n", "macro", macro.precision,
                      macro.recall, macro.f1, macro.support);
  return text;
}

// The first `limit` test digits whose prediction is (or is not) right, as captioned tiles.
std::vector<DigitTile> gallery_tiles(const ImageSet& set, const EvalResult& r, bool right,
                                     int limit) {
  std::vector<DigitTile> tiles;
  const std::size_t pixels = static_cast<std::size_t>(set.rows) * set.cols;
  for (std::int64_t i = 0; i < r.count && static_cast<int>(tiles.size()) < limit; ++i) {
    const int truth = set.labels[static_cast<std::size_t>(i)];
    const int guess = r.predictions[static_cast<std::size_t>(i)];
    if ((truth == guess) != right) continue;
    DigitTile t;
    t.pixels.assign(set.image(i), set.image(i) + pixels);
    t.rows = set.rows;
    t.cols = set.cols;
    t.caption = fmt::format("t:{} p:{}", truth, guess);
    t.caption_color = right ? kRightColor : kWrongColor;
    tiles.push_back(std::move(t));
  }
  return tiles;
}

void make_folder(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw Error("--out", "cannot create folder " + dir + (ec ? ": " + ec.message() : ""));
}

// Digits in one gallery picture: enough for any screen, and the picture's size stays bounded.
constexpr int kMaxGallery = 1000;

int run_eval(const EvalOptions& o) {
  if (o.batch)
    RECUR_CHECK(*o.batch >= 1 && *o.batch <= kMaxEvalBatch, "--batch",
                fmt::format("must be between 1 and {}, got {}", kMaxEvalBatch, *o.batch));
  resolve_threads(o.threads);  // refuses a count beyond the machine before anything starts
  RECUR_CHECK(o.gallery >= 0 && o.gallery <= kMaxGallery, "--gallery",
              fmt::format("must be 0 (no pictures) up to {}, got {}", kMaxGallery, o.gallery));
  const PredictorOptions options = predictor_options(o.precision);
  // Either checkpoint format: version 1 reads through its layer form. Loaded once, whatever
  // the model reads.
  const Predictor predictor(o.model, options);
  if (predictor.input_kind() == InputKind::text || predictor.input_kind() == InputKind::sequence)
    return run_sequence_eval(predictor, o.data.value_or(""), o.out, o.json, o.threads,
                             o.batch.value_or(kSequenceEvalBatch));
  const std::string data = o.data.value_or(kImageData);
  const auto images = std::make_shared<ImageSet>(load_mnist(data, false));
  const auto source = predictor.image_source(images);
  RECUR_CHECK(images->num_classes <= predictor.num_classes(), images->source,
              fmt::format("labels go up to {} but the model has {} classes",
                          images->num_classes - 1, predictor.num_classes()));
  make_folder(o.out.empty() ? parent_folder(o.model) : o.out);
  BatchRunner runner(predictor, resolve_threads(o.threads));
  const EvalResult r = runner.evaluate(*source, o.batch.value_or(kImageEvalBatch));
  const std::string described = layer_list_text(predictor.model().spec().layers);
  const std::string view_name = predictor.view_name();
  const ImageSet& set = *images;
  const std::string out = o.out.empty() ? parent_folder(o.model) : o.out;

  const int k = set.num_classes;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(k) * k, 0);
  for (std::int64_t i = 0; i < r.count; ++i) {
    const auto truth = static_cast<std::size_t>(set.labels[static_cast<std::size_t>(i)]);
    const auto guess = static_cast<std::size_t>(r.predictions[static_cast<std::size_t>(i)]);
    ++counts[truth * k + guess];
  }
  const std::vector<ClassScore> scores = class_scores(counts, k);
  const std::int64_t wrong = r.count - r.correct;

  std::vector<std::string> written;
  write_confusion_png(
      out + "/confusion.png", counts, k, {},
      fmt::format("confusion on {} test digits, accuracy {:.2f}%", r.count, 100.0 * r.accuracy()));
  written.push_back("confusion.png");
  if (o.gallery > 0) {
    write_digit_grid(out + "/misclassified.png",
                     fmt::format("misclassified: {} of {} test digits", wrong, r.count),
                     gallery_tiles(set, r, false, o.gallery), kGalleryColumns);
    write_digit_grid(out + "/correct.png",
                     fmt::format("correct: {} of {} test digits", r.correct, r.count),
                     gallery_tiles(set, r, true, o.gallery), kGalleryColumns);
    written.push_back("misclassified.png");
    written.push_back("correct.png");
  }

  nlohmann::json per_class = nlohmann::json::array();
  for (std::size_t c = 0; c < scores.size(); ++c) {
    per_class.push_back({{"class", c},
                         {"precision", scores[c].precision},
                         {"recall", scores[c].recall},
                         {"f1", scores[c].f1},
                         {"support", scores[c].support}});
  }
  nlohmann::json confusion = nlohmann::json::array();
  for (int i = 0; i < k; ++i) {
    const auto row = counts.begin() + static_cast<std::ptrdiff_t>(i) * k;
    confusion.push_back(std::vector<std::int64_t>(row, row + k));
  }
  const nlohmann::json report = {{"model", o.model},       {"data", data},
                                 {"images", set.source},   {"view", view_name},
                                 {"count", r.count},       {"correct", r.correct},
                                 {"misclassified", wrong}, {"accuracy", r.accuracy()},
                                 {"loss", r.loss},         {"per_class", per_class},
                                 {"confusion", confusion}, {"precision", o.precision}};
  const std::string json_text = report.dump(2) + "\n";
  write_file_atomic(out + "/eval.json", json_text);
  written.push_back("eval.json");

  if (o.json) {
    std::cout << json_text;
    return 0;
  }
  fmt::print("model: {} ({})\n", o.model, described);
  fmt::print("data: {} test images from {}\n", set.count, data);
  if (predictor.precision() == InferPrecision::int8)
    fmt::print("precision: int8 ({} kernel; embeddings and convolutions stay fp32)\n",
               int8_kernel_name());
  fmt::print("test accuracy {:.2f}% (loss {:.4f}) on {} images, {} misclassified\n\n",
             100.0 * r.accuracy(), r.loss, r.count, wrong);
  fmt::print("{}\n{}\n", scores_text(scores), confusion_text(counts, k));
  std::string names;
  for (const std::string& name : written) names += (names.empty() ? "" : ", ") + name;
  fmt::print("wrote {} in {}\n", names, out);
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd =
      app.add_subcommand("eval", "Score a trained model on a test set (MNIST, IMDb, text, arrays)");
  cmd->add_option("model", o->model, "Checkpoint (.safetensors) written by recur train")
      ->required();
  cmd->add_option("--data", o->data,
                  "Folder with the MNIST files (default: data/mnist); for text and array models: "
                  "imdb, a text folder or file, a folder of .npy arrays (default: the model's own "
                  "data set)");
  cmd->add_option("--out", o->out, "Folder for eval.json and the pictures (default: the model's)");
  cmd->add_flag("--json", o->json, "Print the report as JSON instead of text");
  cmd->add_option("--threads", o->threads, "Threads; 0 = all cores")->capture_default_str();
  cmd->add_option("--batch", o->batch,
                  "Samples per forward pass (default: 1000 images, 64 texts or sequences)");
  cmd->add_option("--gallery", o->gallery, "Digits in each picture of (mis)classified digits")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision,
                  "fp32, or int8: recurrent and linear layers with int8 weights and activations "
                  "(other layers stay fp32; docs/INFERENCE.md)")
      ->capture_default_str();
  cmd->callback([o, &run] { run = [o] { return run_eval(*o); }; });
}

}  // namespace recur::cli
