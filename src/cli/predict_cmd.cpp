// recur predict MODEL INPUT... [--index N ...] [--json] [--invert auto|yes|no] [--top K] [--raw]
// Classifies digit pictures (PNG or PGM of any size) or images of an IDX file (with --index);
// texts (--text) with text models, .npy sequences (--lengths) with array models.
// A picture is first brought to MNIST's framing (recur/digit_frame.hpp): a digit photographed or
// drawn on paper, at any size and place, reaches the model as MNIST's own digits did. --raw
// only resizes (and inverts as --invert says). IDX images are MNIST-framed already and are
// taken as they are.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_io.hpp"
#include "cli/sequence_data.hpp"
#include "recur/digit_frame.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/image.hpp"
#include "recur/layers.hpp"
#include "recur/predictor.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur::cli {

namespace {

struct PredictOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::vector<std::int64_t> indices;
  bool json = false;
  std::string invert = "auto";
  int top = 3;
  bool raw = false;
  std::vector<std::string> texts;  // text models
  std::string lengths;             // array models: lengths of the one input's sequences
  std::string precision = "fp32";
};

enum class Invert { automatic, yes, no };

Invert parse_invert(const std::string& text) {
  if (text == "auto") return Invert::automatic;
  if (text == "yes") return Invert::yes;
  if (text == "no") return Invert::no;
  throw Error("--invert", "unknown value '" + text + "' (choose from auto, yes, no)");
}

// One picture to classify, already at the model's image size.
struct Sample {
  std::string input;                  // the file
  std::optional<std::int64_t> index;  // position in an IDX file
  std::optional<int> label;           // from the IDX labels file
  std::vector<std::uint8_t> pixels;
  bool inverted = false;
  bool framed = false;
  int blobs = 0;  // framed pictures: blobs of ink kept
  int source_rows = 0, source_cols = 0;
};

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// Resizes to rows x cols and inverts as asked, with a note on stderr for each change.
Sample prepare(GrayImage img, const std::string& name, int rows, int cols, Invert invert,
               bool quiet_resize) {
  Sample s;
  s.source_rows = img.height;
  s.source_cols = img.width;
  s.inverted =
      invert == Invert::yes || (invert == Invert::automatic && looks_like_ink_on_paper(img));
  if (img.width != cols || img.height != rows) {
    if (!quiet_resize)
      fmt::print(stderr, "note: {} is {}x{}, resized to {}x{}\n", name, img.width, img.height, cols,
                 rows);
    img = resize_area(img, cols, rows);
  }
  if (s.inverted) {
    for (std::uint8_t& p : img.pixels) p = static_cast<std::uint8_t>(255 - p);
    if (invert == Invert::automatic)
      fmt::print(stderr,
                 "note: {} looks like a dark digit on a light background; inverted it "
                 "(--invert no keeps it)\n",
                 name);
  }
  s.pixels = std::move(img.pixels);
  return s;
}

// The labels file that goes with an IDX images file: "images" -> "labels", "idx3" -> "idx1"
// in its name ("t10k-images-idx3-ubyte" -> "t10k-labels-idx1-ubyte"); empty when the name does
// not follow that pattern or there is no such file (the images are then read alone).
std::string labels_beside(const std::string& images_path) {
  namespace fs = std::filesystem;
  std::string name = fs::path(images_path).filename().string();
  const auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = name.find(from);
    if (at == std::string::npos) return false;
    name.replace(at, from.size(), to);
    return true;
  };
  if (!replace("images", "labels") || !replace("idx3", "idx1")) return {};
  std::error_code ec;
  const fs::path labels = fs::path(images_path).parent_path() / name;
  return fs::is_regular_file(labels, ec) ? labels.string() : std::string();
}

// A picture brought to MNIST's framing, with a note on stderr of what was done.
Sample frame(const GrayImage& img, const std::string& name, int rows, int cols, Invert invert) {
  DigitFrameReport r;
  const Polarity polarity = invert == Invert::yes  ? Polarity::invert
                            : invert == Invert::no ? Polarity::keep
                                                   : Polarity::automatic;
  GrayImage framed = frame_digit(img, rows, cols, polarity, name, &r);
  Sample s;
  s.source_rows = img.height;
  s.source_cols = img.width;
  s.inverted = r.inverted;
  s.framed = true;
  s.blobs = r.blobs;
  fmt::print(stderr,
             "note: {}: {}ink {}x{} at ({}, {}) framed as MNIST's digits (levels {}..{} "
             "stretched to 0..255{}); --raw skips this\n",
             name, r.inverted ? "dark ink on light paper, inverted; " : "", r.ink_width,
             r.ink_height, r.ink_left, r.ink_top, r.background, r.ink,
             r.specks > 0
                 ? fmt::format(", {} speck{} of noise erased", r.specks, r.specks == 1 ? "" : "s")
                 : "");
  if (r.blobs > 1)
    fmt::print(stderr,
               "note: {} holds {} separate blobs of ink; they are read together as one digit "
               "(crop the picture to one digit if it holds several)\n",
               name, r.blobs);
  s.pixels = std::move(framed.pixels);
  return s;
}

void add_idx_samples(const std::string& path, const std::vector<std::int64_t>& indices, int rows,
                     int cols, Invert invert, std::vector<Sample>& samples) {
  const std::string labels = labels_beside(path);
  const ImageSet set = labels.empty() ? load_idx_images(path) : load_idx(path, labels);
  if (set.rows != rows || set.cols != cols)
    fmt::print(stderr, "note: {} holds {}x{} images, resized to {}x{}\n", path, set.cols, set.rows,
               cols, rows);
  for (std::int64_t index : indices) {
    if (index < 0 || index >= set.count)
      throw Error("--index", fmt::format("{} is out of range: {} holds {} images (0..{})", index,
                                         path, set.count, set.count - 1));
    GrayImage img;
    img.width = set.cols;
    img.height = set.rows;
    img.pixels.assign(set.image(index),
                      set.image(index) + static_cast<std::size_t>(set.rows) * set.cols);
    Sample s = prepare(std::move(img), fmt::format("{}[{}]", file_name(path), index), rows, cols,
                       invert, true);
    s.input = path;
    s.index = index;
    if (!set.labels.empty()) s.label = set.labels[static_cast<std::size_t>(index)];
    samples.push_back(std::move(s));
  }
}

// Array models: each input a .npy of sequences x [N, T, F] (float32, or uint8 scaled by 1/255)
// as recur train reads x_train.npy; --lengths gives their lengths (one input only).
int run_array_predict(const Predictor& predictor, const PredictOptions& o) {
  if (o.inputs.empty())
    throw Error("predict",
                "missing inputs: give .npy files of sequences [N, steps, features] to classify");
  RECUR_CHECK(o.lengths.empty() || o.inputs.size() == 1, "--lengths",
              "goes with one input file; classify one .npy at a time");
  const int C = predictor.num_classes();
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& input : o.inputs) {
    const SequenceSet set = load_npy_sequences(input, "", o.lengths);
    RECUR_CHECK(set.features == predictor.features(), input,
                fmt::format("holds {} features per step but the model reads {}", set.features,
                            predictor.features()));
    const Predictions r =
        predictor.predict_sequences(set.x.data(), set.count, set.steps, set.lengths.data());
    for (std::int64_t i = 0; i < set.count; ++i) {
      const auto best = top_k(r.probabilities.data() + i * C, C, o.top);
      if (!o.json) {
        std::string ranks;
        for (const ClassProbability& c : best)
          ranks += fmt::format("{}{} {:.2f}%", ranks.empty() ? "" : ", ", c.label,
                               100.0 * c.probability);
        fmt::print("{}[{}]: {}  top {}: {}\n", input, i, best.front().label, best.size(), ranks);
        continue;
      }
      nlohmann::json top = nlohmann::json::array();
      for (const ClassProbability& c : best)
        top.push_back({{"class", c.label}, {"probability", c.probability}});
      all.push_back({{"input", input},
                     {"index", i},
                     {"length", set.lengths[static_cast<std::size_t>(i)]},
                     {"prediction", best.front().label},
                     {"probability", best.front().probability},
                     {"top", top},
                     {"logits", std::vector<float>(r.logits.begin() + i * C,
                                                   r.logits.begin() + (i + 1) * C)}});
    }
  }
  if (o.json) std::cout << all.dump(2) << "\n";
  return 0;
}

int run_predict(const PredictOptions& o) {
  require_positive("--top", o.top);
  const PredictorOptions options = predictor_options(o.precision);
  // Either checkpoint format: version 1 reads through its layer form.
  const Predictor predictor(o.model, options);
  RECUR_CHECK(o.lengths.empty() || predictor.input_kind() == InputKind::sequence, "--lengths",
              "only models trained on .npy arrays read sequences with lengths");
  if (predictor.input_kind() == InputKind::sequence && o.texts.empty())
    return run_array_predict(predictor, o);
  const bool images = predictor.input_kind() == InputKind::image_sequence ||
                      predictor.input_kind() == InputKind::whole_image;
  if (!o.texts.empty() || (o.inputs.empty() && !images)) {
    if (predictor.input_kind() != InputKind::text)
      throw Error("--text", o.model + " is not a text model; give it pictures to classify");
    RECUR_CHECK(o.inputs.empty(), "--text", "give either --text or picture files, not both");
    return run_text_predict(predictor, o.texts, o.json);
  }
  if (o.inputs.empty())
    throw Error("predict",
                "missing inputs: give the PNG or PGM files to classify (or --text "
                "for a text model)");
  const Invert invert = parse_invert(o.invert);
  if (!images)
    throw Error(o.model, "is not an image model; give it --text or the data it was trained on");
  const int num_classes = predictor.num_classes();
  const int model_rows = predictor.image_rows();
  const int model_cols = predictor.image_cols();

  std::vector<Sample> samples;
  for (const std::string& input : o.inputs) {
    if (!o.indices.empty()) {
      add_idx_samples(input, o.indices, model_rows, model_cols, invert, samples);
    } else {
      Sample s = o.raw
                     ? prepare(load_gray_image(input), input, model_rows, model_cols, invert, false)
                     : frame(load_gray_image(input), input, model_rows, model_cols, invert);
      s.input = input;
      samples.push_back(std::move(s));
    }
  }

  // All samples in one batch, read through the model's view.
  std::vector<std::uint8_t> pixels;
  for (const Sample& s : samples) pixels.insert(pixels.end(), s.pixels.begin(), s.pixels.end());
  const Predictions result =
      predictor.predict_images(pixels.data(), static_cast<std::int64_t>(samples.size()));
  const std::vector<float>& probs = result.probabilities;
  const std::vector<float>& logits = result.logits;

  nlohmann::json all = nlohmann::json::array();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    const auto best =
        top_k(probs.data() + i * static_cast<std::size_t>(num_classes), num_classes, o.top);
    if (o.json) {
      nlohmann::json top = nlohmann::json::array();
      for (const ClassProbability& c : best)
        top.push_back({{"class", c.label}, {"probability", c.probability}});
      nlohmann::json j = {{"input", s.input},
                          {"prediction", best.front().label},
                          {"probability", best.front().probability},
                          {"top", top},
                          {"inverted", s.inverted},
                          {"framed", s.framed},
                          {"width", s.source_cols},
                          {"height", s.source_rows}};
      j["logits"] =
          std::vector<float>(logits.begin() + static_cast<std::ptrdiff_t>(i) * num_classes,
                             logits.begin() + static_cast<std::ptrdiff_t>(i + 1) * num_classes);
      if (s.framed) j["blobs"] = s.blobs;
      if (s.index) j["index"] = *s.index;
      if (s.label) j["label"] = *s.label;
      all.push_back(std::move(j));
      continue;
    }
    std::string name = s.index ? fmt::format("{}[{}]", s.input, *s.index) : s.input;
    std::string line = fmt::format("{}: {}", name, best.front().label);
    if (s.label) line += fmt::format(" (label {})", *s.label);
    std::string ranks;
    for (const ClassProbability& c : best)
      ranks +=
          fmt::format("{}{} {:.2f}%", ranks.empty() ? "" : ", ", c.label, 100.0 * c.probability);
    fmt::print("{}  top {}: {}\n", line, best.size(), ranks);
  }
  if (o.json) std::cout << all.dump(2) << "\n";
  return 0;
}

}  // namespace

void add_predict_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify digit pictures (PNG, PGM), images of an IDX file, or texts with a model");
  cmd->add_option("model", o->model, "Checkpoint (.safetensors) written by recur train")
      ->required();
  cmd->add_option("inputs", o->inputs,
                  "PNG or PGM files; IDX images files with --index; .npy files of sequences "
                  "[N, steps, features] for models trained on arrays");
  cmd->add_option("--lengths", o->lengths,
                  "Array models: a .npy of the input's sequence lengths [N] (default: all steps)");
  cmd->add_option("--text", o->texts,
                  "Text models: a text to classify (repeatable); without it, one text per line "
                  "from stdin");
  cmd->add_option("--index", o->indices, "Classify image N of each IDX input (repeatable: 0,5,9)")
      ->delimiter(',')
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_flag("--json", o->json, "Print a JSON array instead of text");
  cmd->add_option("--precision", o->precision,
                  "fp32, or int8: recurrent and linear layers with int8 weights and activations "
                  "(other layers stay fp32; docs/INFERENCE.md)")
      ->capture_default_str();
  cmd->add_option("--invert", o->invert,
                  "auto: invert dark digits on light paper; yes, no: always, never")
      ->capture_default_str();
  cmd->add_option("--top", o->top, "How many of the likeliest classes to show")
      ->capture_default_str();
  cmd->add_flag("--raw", o->raw,
                "Only resize pictures to the model's size; skip MNIST's framing (crop to the "
                "ink, fit 20x20, centre by mass, stretch the contrast)");
  cmd->callback([o, &run] { run = [o] { return run_predict(*o); }; });
}

}  // namespace recur::cli
