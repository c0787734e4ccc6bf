// Model checkpoints: a safetensors file whose tensors carry the PyTorch state_dict names of the
// model (see recur/model.hpp), so `torch.nn.LSTM` & co. load them unchanged, and whose metadata
// holds the model config ("recur.model", JSON), the data view ("recur.view", "recur.view_seed")
// and whatever else the caller adds (training config, metrics). Optimizer state goes to a second
// file beside it, for resuming.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "recur/model.hpp"
#include "recur/optim.hpp"

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

// Optimizer state (its buffers and step count) in its own safetensors file.
void save_optimizer(const std::string& path, Optimizer& opt, const Metadata& extra);
// Restores state saved by save_optimizer into `opt` (same kind and size). Returns the metadata.
Metadata load_optimizer(const std::string& path, Optimizer& opt);

}  // namespace recur
