// The short form of a sequence classifier (`recur train --cell --hidden ...`, and the model of
// every version-1 checkpoint): an optional input projection (Dense), a recurrent stack (RNN, LSTM
// or GRU; stacked, bidirectional, optionally untied), a pooling of its outputs and a Dense head.
// ModelConfig describes it; model_spec_from_config (recur/layers.hpp) turns it into the layer
// list every model trains and runs as. Its tensors keep this PyTorch module's state_dict names:
//   proj = nn.Linear(input_size, projection)          (when projection > 0)
//   rnn  = nn.LSTM / nn.GRU / nn.RNN(..., batch_first=False)
//   head = nn.Linear(hidden * directions, num_classes)
// The untied variant keeps one input and one recurrent matrix per timestep, stored with a
// leading step dimension (rnn.weight_ih_l0 is [steps, G*hidden, in]); it has no PyTorch twin.
// Also here: the weight initialisations every layer uses, and softmax cross-entropy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recur/cell.hpp"
#include "recur/params.hpp"
#include "recur/rng.hpp"

namespace recur {

enum class Pooling { last, mean, max, maxmean };  // maxmean: [max, mean] side by side
Pooling parse_pooling(const std::string& name);   // Error("--pooling", ...)
std::string to_string(Pooling p);

// Weight initialisations (seeded, deterministic):
//   pytorch           U(-1/sqrt(H), 1/sqrt(H)) for recurrent tensors, U(-1/sqrt(fan_in), ..) for
//   Dense glorot            U(-a, a), a = sqrt(6 / (fan_in + fan_out)), per gate block orthogonal
//   an orthogonal H x H matrix per gate block (recurrent matrices only) normal            N(0,
//   sigma^2) truncated_normal  N(0, sigma^2) redrawn outside 2 sigma
enum class InitKind { pytorch, glorot, orthogonal, normal, truncated_normal };
// Errors name `flag` (--init, --init-recurrent, --head-init, --projection-init).
InitKind parse_init(const std::string& name, const std::string& flag = "--init");
std::string to_string(InitKind k);
// Biases: pytorch (the default of that PyTorch module), constant (bias_value), or normal (sigma).
enum class BiasKind { pytorch, constant, normal };
// Errors name `flag` (--bias-init, --head-bias-init, --projection-bias-init).
BiasKind parse_bias_init(const std::string& name, const std::string& flag = "--bias-init");
std::string to_string(BiasKind k);

struct WeightInit {
  InitKind kind = InitKind::pytorch;
  double sigma = 0.01;
  BiasKind bias = BiasKind::pytorch;
  double bias_value = 0.0;
};

struct InitConfig {
  WeightInit input;          // rnn.weight_ih_*, rnn.bias_ih_*
  WeightInit recurrent;      // rnn.weight_hh_*, rnn.bias_hh_*
  WeightInit projection;     // proj.*
  WeightInit head;           // head.*
  double forget_bias = 0.0;  // LSTM: added to the forget block of bias_ih after init
};

struct ModelConfig {
  CellKind cell = CellKind::lstm;
  int input_size = 28;
  int steps = 28;  // sequence length (fixed by the data view)
  int hidden = 128;
  int layers = 1;
  bool bidirectional = false;
  int projection = 0;  // width of the input Dense layer; 0 = none
  Pooling pooling = Pooling::last;
  int num_classes = 10;
  double dropout = 0.0;  // between stacked recurrent layers, training only
  // On the hidden state between steps, one mask per sequence (variational), training only.
  double recurrent_dropout = 0.0;
  bool untied = false;  // separate weights for every timestep
  bool bias = true;     // recurrent biases (b_ih, b_hh)
  InitConfig init;

  int directions() const { return bidirectional ? 2 : 1; }
  // Parameters the model holds (computed without building it; sizes are bounded by validate()).
  std::uint64_t parameter_count() const;
  static constexpr std::uint64_t kMaxParameters = 1ull << 28;  // 1 GiB of float32
  // Throws recur::Error naming the offending option (as its command-line flag) when invalid.
  void validate() const;
};

std::string to_json(const ModelConfig& c);
ModelConfig model_config_from_json(const std::string& json, const std::string& source);

// Mean softmax cross-entropy of logits [B, C] against labels, computed with log-sum-exp.
// Returns sum over the batch of per-sample losses times `scale` (pass 1/N for a mean over N).
// When dlogits is non-null it receives d(loss)/d(logits) with the same scale. `correct`, when
// non-null, receives the number of argmax hits. With label smoothing eps in (0, 1) the target is
// (1 - eps) on the label plus eps / C on every class, and the loss is the cross-entropy against
// that mixture; eps = 0 is the plain loss, computed exactly as without it.
template <typename T>
double softmax_cross_entropy(const T* logits, const std::int32_t* labels, int B, int C, T scale,
                             T* dlogits, int* correct, double smoothing = 0);

// The class probabilities of one row of logits z [C] into probs [C] (softmax, shifted by the
// largest logit, summed in double); returns the predicted class (the first largest logit). What
// every front end reports: recur predict, eval, Python and the report read it here.
int softmax_probabilities(const float* z, int C, float* probs);
// The same, and log sum_k e^(z_k) in *log_sum, as softmax_cross_entropy computes it: a row's loss
// for class y is *log_sum - z[y], with the bits of softmax_cross_entropy's.
int softmax_probabilities(const float* z, int C, float* probs, double* log_sum);

}  // namespace recur
