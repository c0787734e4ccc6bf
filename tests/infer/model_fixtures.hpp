// Small untrained checkpoints for the predictor's tests, written in-process: a layer list on
// float sequences, on images read through a view, or on texts with a vocabulary.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "recur/text.hpp"

namespace recur_infer_test {

// Writes a model of `layers` reading `input` with `classes` classes, initialised from `seed`.
inline std::string write_model(const std::filesystem::path& path, const std::string& layers,
                               const recur::ActShape& input, int classes,
                               const recur::Metadata& metadata, std::uint64_t seed = 7) {
  recur::ModelSpec spec;
  spec.input = input;
  spec.num_classes = classes;
  spec.layers = recur::parse_layer_list(layers, "test");
  recur::Model<float> model(spec);
  model.init(seed);
  // Biases away from zero, so a wrong offset or a missed bias shows in the logits.
  recur::Rng rng(seed + 1);
  for (float& p : model.params()) p += static_cast<float>(0.05 * rng.normal());
  recur::save_checkpoint(path.string(), model, metadata);
  return path.string();
}

// Float sequences of `features` per step.
inline std::string write_sequence_model(const std::filesystem::path& path,
                                        const std::string& layers, int features, int classes = 3) {
  return write_model(path, layers, recur::ActShape{recur::ActKind::sequence, features}, classes,
                     {});
}

// rows x cols images read through `view` (rows: steps = rows, features = cols).
inline std::string write_image_model(const std::filesystem::path& path, const std::string& layers,
                                     int rows, int cols, const std::string& view = "rows") {
  const recur::Metadata meta = {{"recur.image_rows", std::to_string(rows)},
                                {"recur.image_cols", std::to_string(cols)},
                                {"recur.view", view},
                                {"recur.view_seed", "3"}};
  const int features = view == "rows" ? cols : view == "cols" ? rows : 1;
  return write_model(path, layers, recur::ActShape{recur::ActKind::sequence, features}, 10, meta);
}

inline const std::vector<std::string>& sample_texts() {
  static const std::vector<std::string> texts = {
      "a wonderful film, the actor was superb", "boring and dull, an awful plot",
      "the camera moved and the story moved too", "terrible!", "great great great scene"};
  return texts;
}

// A text model whose vocabulary is built from sample_texts().
inline std::string write_text_model(const std::filesystem::path& path, const std::string& layers,
                                    int max_len = 100) {
  const recur::Vocabulary vocab = recur::Vocabulary::build(sample_texts(), 100, 1);
  const recur::Metadata meta = {
      {"recur.vocab", vocab.to_json()},
      {"recur.text",
       nlohmann::json{
           {"max_len", max_len}, {"truncate", "head"}, {"class_names", {"negative", "positive"}}}
           .dump()}};
  recur::ActShape ids{recur::ActKind::sequence, 0};
  ids.ids = true;
  std::string spec = layers;
  const auto at = spec.find("VOCAB");
  if (at != std::string::npos) spec.replace(at, 5, std::to_string(vocab.size()));
  return write_model(path, spec, ids, 2, meta);
}

}  // namespace recur_infer_test
