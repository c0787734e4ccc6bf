// Model checkpoints: a safetensors file whose tensors carry the PyTorch state_dict names of the
// model (see recur/model.hpp), so `torch.nn.LSTM` & co. load them unchanged, and whose metadata
// holds the model config ("recur.model", JSON), the data view ("recur.view", "recur.view_seed")
// and whatever else the caller adds (training config, metrics). Optimizer state for resuming
// lives in the run's resume.safetensors (src/train/trainer.cpp).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "recur/model.hpp"

namespace recur {

using Metadata = std::map<std::string, std::string>;

// Writes the model atomically; `extra` entries are added to the metadata.
void save_model(const std::string& path, const Network<float>& net, const Metadata& extra);

struct LoadedModel {
  std::unique_ptr<Network<float>> net;
  Metadata metadata;
};
// Reads and validates a checkpoint: every tensor of the config present with the right dtype
// (F32, or F64 converted) and shape, and nothing else. Errors name the file.
LoadedModel load_model(const std::string& path);

}  // namespace recur
