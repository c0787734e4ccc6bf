// The fixed-shape network of version-1 checkpoints, kept for the tests (see fixed_network.cpp):
// an optional input projection (Dense), a recurrent stack, a pooling of its outputs and a Dense
// head over one parameter arena, named as PyTorch names the same modules (proj, rnn, head).
// Inputs are time-major [steps, B, input_size]; final states [layers * directions, B, hidden].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/model.hpp"
#include "recur/params.hpp"
#include "recur/rng.hpp"

namespace recur {

template <typename T>
struct NetworkBuffers;

// Activations saved by forward() for backward(); sized on first use and reused, so a training
// loop allocates nothing after its first step. One per thread.
template <typename T>
class NetworkWorkspace {
 public:
  NetworkWorkspace();
  ~NetworkWorkspace();
  NetworkWorkspace(NetworkWorkspace&&) noexcept;
  NetworkWorkspace& operator=(NetworkWorkspace&&) noexcept;
  NetworkBuffers<T>& buffers() { return *buffers_; }
  const NetworkBuffers<T>& buffers() const { return *buffers_; }

 private:
  std::unique_ptr<NetworkBuffers<T>> buffers_;
};

template <typename T>
class Network {
 public:
  explicit Network(const ModelConfig& config);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }
  std::size_t num_params() const { return layout_.total(); }

  // Fills every parameter from `seed` according to config().init.
  void init(std::uint64_t seed);

  // Packs the recurrent weights once (float, tied weights) for every forward / backward until
  // drop_prepared(): one packing per optimizer step shared by all threads, instead of one per
  // thread and call. The caller drops them before the parameters change.
  void prepare();
  void drop_prepared();

  // Forward pass over a batch of B sequences. Returns the logits [B, C] (valid until the
  // workspace is used again). h0/c0 may be null (zeros). With train=true, dropout is applied
  // (drawing from rng) and everything backward() needs is kept in ws.
  const T* forward(const T* x, int B, NetworkWorkspace<T>& ws, bool train, Rng* rng = nullptr,
                   const T* h0 = nullptr, const T* c0 = nullptr) const;

  // Backward pass of the last forward(train=true) on ws. dlogits [B, C]. Adds parameter
  // gradients into grads (layout()); writes dx [steps, B, input_size], dh0 and dc0 when non-null.
  void backward(const T* x, int B, NetworkWorkspace<T>& ws, const T* dlogits, T* grads,
                T* dx = nullptr, T* dh0 = nullptr, T* dc0 = nullptr) const;

  // Final states of the last forward on ws: [layers * directions, B, hidden]; cn is LSTM only.
  const T* final_h(const NetworkWorkspace<T>& ws) const;
  const T* final_c(const NetworkWorkspace<T>& ws) const;
  // The recurrent stack's output sequence of the last forward: [steps, B, hidden * directions].
  const T* outputs(const NetworkWorkspace<T>& ws) const;

 private:
  struct Impl;  // the recurrent stack and the Dense layers' offsets
  ModelConfig config_;
  ParamLayout layout_;
  std::vector<T> params_;
  std::unique_ptr<Impl> impl_;
};

// Version-1 files: the tensors and "recur.model" (the ModelConfig as JSON).
// Writes the model atomically; `extra` entries are added to the metadata.
void save_model(const std::string& path, const Network<float>& net, const Metadata& extra);

}  // namespace recur
