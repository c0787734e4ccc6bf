// The streaming plan of a Predictor: the layers before the pooling run on the new timesteps only,
// each recurrent layer starting from the state the previous feed left; the pooling keeps a
// running accumulator; the layers after it run on the pooled vector when a prediction is read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/recurrent.hpp"
#include "recur/predictor.hpp"

namespace recur {

struct Predictor::Stream {
  // One layer before the pooling: a recurrent layer runs through its own RecurrentStack (the
  // model's layer keeps its stack private and always starts from zero states) over the same
  // tensors of the model's arena; any other layer (embedding, linear, relu, tanh, dropout) works
  // on each step alone and runs as the model's layer.
  struct Stage {
    std::size_t layer = 0;                             // index in the model
    std::unique_ptr<nn::RecurrentStack<float>> stack;  // recurrent layers only
    const float* params = nullptr;                     // the stack's tensors: arena + offset
    nn::StackPacked packed;      // its weights packed as the model's layer packs them for inference
    std::size_t state_size = 0;  // h (and c) elements: layers * hidden
    bool lstm = false;
  };
  std::vector<Stage> stages;  // layers [0, pool)
  std::size_t pool = 0;       // the pooling layer's index
  Pooling pooling = Pooling::last;
  int pooled = 0;  // features of the pooled vector
  // The first stage takes image steps as pixel bytes (its int8 weights read them as they are,
  // as the whole model does: Model::reads_pixels), not as floats.
  bool reads_pixels = false;
};

// The plan for `model`, or null with `why_not` saying why the model cannot be streamed. `int8`:
// the recurrent layers' weights quantized as Model::prepare(PrepareFor::int8) quantizes them.
std::unique_ptr<Predictor::Stream> plan_stream(const Model<float>& model, const std::string& path,
                                               std::string& why_not, bool int8 = false);

}  // namespace recur
