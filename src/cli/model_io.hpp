// What `eval`, `predict` and `inspect` share: a checkpoint together with the data view it was
// trained on (read from its metadata), the check that a model fits a view, and small helpers for
// probabilities and flag values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/data.hpp"

namespace recur::cli {

// A loaded checkpoint and the view of its training data. rows/cols are the image size the model
// was trained on (metadata recur.image_rows/cols).
struct ModelWithView {
  std::string path;
  LoadedModel model;
  ViewKind view_kind = ViewKind::rows;
  std::uint64_t view_seed = 0;
  int rows = 0, cols = 0;

  Network<float>& net() const { return *model.net; }
  // The metadata value of `key`, or "" when absent.
  std::string meta(const std::string& key) const;
};

// load_model plus the view metadata. Throws recur::Error naming `path` when the file is missing
// or corrupt, or when the metadata lacks or garbles recur.view, recur.view_seed,
// recur.image_rows or recur.image_cols.
ModelWithView load_model_with_view(const std::string& path);

// The model's view over images of rows x cols (the model's own size by default).
SequenceView make_view(const ModelWithView& m);
SequenceView make_view(const ModelWithView& m, int rows, int cols);

// "lstm 128x1, rows view: 28 steps x 28 features": one line naming the model.
std::string describe_model(const ModelWithView& m);

// Throws recur::Error(model path, reason) unless `net` reads sequences of the view's steps and
// features and has `num_classes` outputs. `data` names the images in the message, e.g.
// "the test images in data/mnist".
void check_model_fits(const ModelWithView& m, const SequenceView& view, int num_classes,
                      const std::string& data);

// The k largest probabilities of one row, best first (ties: lower class first).
struct ClassProbability {
  int label = 0;
  float probability = 0;
};
std::vector<ClassProbability> top_k(const float* probs, int num_classes, int k);

// Throws Error(flag, "must be a positive integer, got N") unless value >= 1.
void require_positive(const std::string& flag, long long value);

// A path's folder, "." for a bare file name.
std::string parent_folder(const std::string& path);

}  // namespace recur::cli
