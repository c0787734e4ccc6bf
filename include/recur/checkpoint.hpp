// Model checkpoints: a safetensors file whose tensors carry the PyTorch state_dict names of the
// model, so `torch.nn.LSTM` & co. load them unchanged, and whose metadata holds the model
// ("recur.spec": the layer list as JSON; version-1 files hold the fixed-shape config in
// "recur.model"), the data view ("recur.view", "recur.view_seed") and whatever else the caller
// adds (training config, metrics). Optimizer state for resuming lives in the run's
// resume.safetensors (src/train/resume_file.hpp).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "recur/layers.hpp"
#include "recur/model.hpp"

namespace recur {

using Metadata = std::map<std::string, std::string>;

// Models built from layers (format "recur-model-2"): the layer list as JSON in "recur.spec",
// the tensors under their PyTorch names; text models add "recur.vocab" and "recur.text".
void save_checkpoint(const std::string& path, const Model<float>& model, const Metadata& extra);

struct LoadedCheckpoint {
  std::unique_ptr<Model<float>> model;
  Metadata metadata;
  int format = 2;  // 1: a fixed-shape checkpoint read through its layer form
};
// Reads either format: version 2 by its layer list; version 1 (recur.model) through
// model_spec_from_config, so every existing checkpoint loads and gives the same logits. Errors
// (not a safetensors file, no recur model, tensors missing or of the wrong shape) name the file.
LoadedCheckpoint load_checkpoint(const std::string& path);
// True when the file's metadata describes a model built from layers (version 2).
bool is_layer_list_checkpoint(const Metadata& metadata);

}  // namespace recur
