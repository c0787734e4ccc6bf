// Models built from layers: a chain of layers over one parameter arena, for any sequences (token
// ids, feature vectors) and, through the same interface, images.
//
//   input (token ids [S, B] or features [S, B, F], time-major; images [B, C, H, W])
//     -> layer 0 -> layer 1 -> ... -> logits [B, classes] -> softmax cross-entropy
//
// Variable length follows PyTorch's packed sequences: the samples of a batch are sorted by
// length, longest first, and step t runs on the first batch_sizes[t] rows. Padded steps leave
// states, outputs and gradients untouched (outputs and input gradients there are zero), the
// reverse direction of a bidirectional layer starts at each sample's own last step, and pooling
// covers real steps only; so a padded batch gives the results of its samples run one at a time.
//
// Every layer registers its tensors in the arena under PyTorch's state_dict names (prefix = the
// layer's name), has a reference implementation in double precision through the same code
// (gradient checks run the model in double), and a golden test against PyTorch (except a
// recurrent layer with untied weights, which no PyTorch module has).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recur/cell.hpp"
#include "recur/model.hpp"
#include "recur/params.hpp"
#include "recur/rng.hpp"

namespace recur {

class ThreadPool;  // core/thread_pool.hpp

// ---- what flows between layers ----

enum class ActKind { sequence, vector, image };
struct ActShape {
  ActKind kind = ActKind::sequence;
  int features = 0;            // sequence: per step; vector: width; image: channels
  int height = 0, width = 0;   // image only
  bool ids = false;            // a sequence of token ids (int32), the input of an embedding
  int directions = 1;          // a bidirectional layer's output: [forward half | reverse half]
  std::size_t per_row() const  // elements per sample per step (sequence) or per sample
  {
    return kind == ActKind::image ? static_cast<std::size_t>(features) * height * width
                                  : static_cast<std::size_t>(features);
  }
};
std::string to_string(const ActShape& s);

// Lengths of a batch of sequences, sorted longest first.
struct SeqInfo {
  int steps = 0;  // the longest length (time-major buffers hold steps * batch rows)
  int batch = 0;
  std::vector<int> lengths;      // [batch], non-increasing, each in [1, steps]
  std::vector<int> batch_sizes;  // [steps]: rows still running at step t
  bool full = true;              // every sample runs all steps

  static SeqInfo fixed(int steps, int batch);
  // Throws recur::Error("lengths", ...) unless lengths are non-increasing and >= 1.
  static SeqInfo from_lengths(const std::vector<int>& lengths);
};

// ---- layer descriptions ----

// One layer as configs and checkpoints describe it. Unused fields keep their defaults.
struct LayerSpec {
  std::string type;  // a kind of nn/layer_registry.cpp: embedding, linear, recurrent, pool,
                     // dropout, relu, tanh, flatten, conv1d, conv2d, maxpool2d, max/avgpool1d
  std::string name;  // tensor-name prefix; "" = the layer's index in the chain (nn.Sequential)
  int size = 0;      // embedding dim, linear outputs (0 = the classes, for a head), recurrent
                     // hidden size, conv1d/conv2d output channels
  int vocab = 0;     // embedding rows
  CellKind cell = CellKind::lstm;   // recurrent
  int layers = 1;                   // recurrent: stacked layers
  bool bidirectional = false;       // recurrent
  int untied_steps = 0;             // recurrent: 0 = one weight set shared by all steps (tied);
                                    // N = one W_ih and W_hh per step, for sequences of exactly
                                    // N steps (ModelConfig::untied)
  bool bias = true;                 // recurrent, linear, conv2d
  double dropout = 0.0;             // dropout: drop probability; recurrent: between stacked layers;
                                    // embedding: whole tokens dropped (word dropout)
  double recurrent_dropout = 0.0;   // recurrent: on h_{t-1} between steps, one mask per sequence
  Pooling pooling = Pooling::last;  // pool
  int kernel = 0, stride = 0, padding = 0;  // conv1d/2d, maxpool2d, max/avgpool1d (0: kernel)
  // Initialisation (see WeightInit in model.hpp); forget_bias for LSTM input biases.
  WeightInit init, init_recurrent;
  double forget_bias = 0.0;
  // What keys the layer's initial draws (set when the chain is built: ModelSpec::draw_name);
  // "" = its tensor names. Never stored.
  std::string draw;
};

struct ModelSpec {
  ActShape input;  // sequence of ids (embedding first), sequence of features, or image
  int num_classes = 2;
  std::vector<LayerSpec> layers;
  // The prefix each layer's tensors get (its name, or its index), e.g. "rnn", "3".
  std::string layer_name(std::size_t i) const;
  // What keys a layer's initial draws: its name when it has one, else its role's name in the
  // short form's chain when it is the first layer of that role ("embed" for an embedding, "rnn"
  // for a recurrent layer, "proj" for a linear layer before it, "head" for the last linear
  // layer), else its index. So a list that spells out the short form without names starts from
  // the short form's weights, and its tensors keep nn.Sequential's index names.
  std::string draw_name(std::size_t i) const;
  // Throws recur::Error naming the layer (its index and type) and the field when invalid,
  // e.g. a recurrent layer after pooling, or a last layer whose width is not num_classes.
  void validate() const;
  // Parameters the model holds (builds the layer list without allocating the arena).
  std::uint64_t parameter_count() const;
};

std::string to_json(const ModelSpec& spec);
ModelSpec model_spec_from_json(const std::string& json, const std::string& source);
// The chain equivalent to the fixed-shape ModelConfig: [linear "proj"], recurrent "rnn",
// pool, linear "head". Tensor names, shapes and initialisation are those of the fixed-shape
// network that wrote version-1 checkpoints (tests/support/fixed_network.hpp), so a
// version-1 checkpoint's arena loads unchanged and gives the same logits. Untied weights
// (ModelConfig::untied) become a recurrent layer with untied_steps = steps.
ModelSpec model_spec_from_config(const ModelConfig& config);

// The layer list as text, as `recur train --model` and the `model` key of a config take it:
// layers separated by commas, each a type, an optional positional value and key=value settings:
//   "conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 120, relu, linear"
//   "embedding 128, lstm 128 layers=2 bidirectional dropout=0.2, pool max, dropout 0.3, linear"
// The types and their settings are the layer registry's (nn/layer_registry.hpp; layer_grammar
// below, docs/LAYERS.md); any layer takes name=NAME (its tensor-name prefix). Throws
// recur::Error(where, ...) naming the layer and the reason. Shapes are checked later, against
// the data (ModelSpec::validate).
std::vector<LayerSpec> parse_layer_list(const std::string& text, const std::string& where);
// The text parse_layer_list reads back as the same layers (initialisation aside).
std::string layer_list_text(const std::vector<LayerSpec>& layers);
// Every layer type with its positional value and settings, for --model's help:
// "embedding W [vocab=N]; lstm|gru|rnn|rnn_relu H [layers=N] [bidirectional] ...".
std::string layer_grammar();
// The table of docs/LAYERS.md ("| layer | positional value | settings | PyTorch twin |"), one
// row per layer kind; a test holds the docs to it.
std::string layer_table_markdown();
// True when a list starting with this layer reads whole images (conv2d, maxpool2d, flatten):
// otherwise images go through a view as sequences.
bool reads_whole_images(const std::vector<LayerSpec>& layers);

// ---- initialisation flags ----

// `--init-recurrent auto`: orthogonal recurrent matrices for every cell (measured best with the
// recipe: docs/RECIPES.md; the plain RNNs had PyTorch's uniform before the recipe's training
// methods). The one place this rule is written; the short form, layer lists and the report's
// models all ask it.
InitKind auto_recurrent_init(CellKind cell);

// What recur train's initialisation flags ask of a model. The short form takes `init` through
// ModelConfig::init; a layer list through apply_init_flags.
struct InitFlags {
  InitConfig init;  // input, recurrent, head (projection: the short form's --projection only)
  bool recurrent_auto = false;  // each recurrent layer: init_recurrent.kind from its own cell
  bool no_bias = false;         // recurrent layers lose their biases
};
// Applies the flags to a finished layer list, each layer by its kind's rule: a recurrent layer
// takes init.input, init.recurrent (kind = auto_recurrent_init(cell) when recurrent_auto),
// init.forget_bias and, with no_bias, bias = false; the last layer, when linear (the head),
// takes init.head. Other layers keep their own.
void apply_init_flags(const InitFlags& flags, std::vector<LayerSpec>& layers);

// ---- the layer interface ----

template <typename T>
struct LayerWorkspace {
  virtual ~LayerWorkspace() = default;
};

// An embedding table's gradient held for the rows a batch touched only, in the order first
// touched: a worker thread's share of a text batch, added into the full gradient afterwards
// (SequenceRunner), so that a thread beyond the first holds no dense copy of the table's
// gradient. Each touched row sums its tokens in the same order as the dense gradient would.
template <typename T>
struct RowGradients {
  std::size_t offset = 0;  // the table's first element in the gradient arena
  int vocab = 0, width = 0;
  std::vector<std::int32_t> slot;  // [vocab]: the row's place in rows / values, or -1
  std::vector<std::int32_t> rows;  // the touched rows
  std::vector<T> values;           // [rows.size(), width]

  void reset(std::size_t table_offset, int table_vocab, int table_width) {
    offset = table_offset;
    vocab = table_vocab;
    width = table_width;
    slot.assign(static_cast<std::size_t>(vocab), -1);
    rows.clear();
    values.clear();
  }
  // Forgets the touched rows (their slots back to -1); keeps the memory.
  void clear() {
    for (const std::int32_t r : rows) slot[static_cast<std::size_t>(r)] = -1;
    rows.clear();
    values.clear();
  }
  // Row r's gradient, zero when first touched.
  T* row(std::int32_t r) {
    std::int32_t& k = slot[static_cast<std::size_t>(r)];
    if (k < 0) {
      k = static_cast<std::int32_t>(rows.size());
      rows.push_back(r);
      values.resize(values.size() + static_cast<std::size_t>(width), T(0));
    }
    return values.data() + static_cast<std::size_t>(k) * width;
  }
};

// Everything a layer's forward or backward needs besides its input and output.
template <typename T>
struct LayerContext {
  const T* params = nullptr;
  int batch = 0;
  const SeqInfo* seq = nullptr;       // sequences: the batch's lengths (never null for sequences)
  const std::int32_t* ids = nullptr;  // token ids [steps, batch] when the model input is ids
  bool train = false;
  Rng* rng = nullptr;  // dropout draws (train only)
  // backward only: when set, the embedding whose table starts at row_grads->offset adds its
  // gradient here instead of into grads (which then need not hold that table).
  RowGradients<T>* row_grads = nullptr;
  // forward of the first layer only, when the model input is pixel bytes and the layer said it
  // reads them (reads_pixels): [steps, batch, F], x = p / 255; `in` is then null.
  const std::uint8_t* pixels = nullptr;
  // When set (forward; a layer keeps it for the backward of a training forward): the threads of
  // this pool may split the columns of a layer's products between them (each reads a share of the
  // weights for every row) instead of taking a share of the rows each (see
  // Layer::column_split_rows).
  ThreadPool* columns = nullptr;
  // Backward only, set by the model for both layers of an adjacent pair that agree on it
  // (Layer::reads_last_steps_gradient, then Layer::input_gradient_at_last_steps): the gradient
  // between them is written only at the steps where some row ends (its lengths[b] - 1: the
  // forward half's last output) and at step 0 (a reverse half's), those steps' [batch, F] blocks
  // whole (zero where the rows do not end there); the other steps are left as they were and the
  // first layer does not read them.
  bool last_steps_gradient = false;
};

// Weights a layer packs once per optimizer step (shared by all threads, read-only while they
// run) or once per model for inference.
struct PreparedWeights {
  virtual ~PreparedWeights() = default;
};
// What the packing is for: a training step (the weights change after it) or inference (the
// weights stay; layers that train through BLAS pack their weights for inference only, where
// recur's kernels make each row's result independent of the batch around it). int8 is inference
// with the recurrent and linear layers' weights quantized to int8 per output row and their
// inputs quantized per row as they arrive (docs/INFERENCE.md); every other layer (embedding,
// conv, pooling, ...) prepares and runs as for fp32 inference. training_bf16 is a training step
// whose recurrent layers (tied weights) run their products in bf16 with fp32 accumulation
// (`recur train --precision bf16`); every other layer trains as in fp32.
enum class PrepareFor { training, inference, int8, training_bf16 };
inline bool for_training(PrepareFor use) {
  return use == PrepareFor::training || use == PrepareFor::training_bf16;
}

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  const LayerSpec& spec() const { return spec_; }
  const ActShape& input_shape() const { return in_; }
  const ActShape& output_shape() const { return out_; }

  // Output elements of a batch: rows x per_row, rows = steps * batch for sequences (the input's
  // steps: for a layer that keeps lengths).
  std::size_t output_size(const LayerContext<T>& ctx) const;

  // A layer that changes sequence lengths (maxpool1d) says so and gives the lengths of its
  // output for a batch of input lengths; the model runs the next layer on them. forward and
  // backward still get the input's lengths in ctx.seq. Default: lengths unchanged.
  virtual bool changes_lengths() const { return false; }
  virtual SeqInfo output_lengths(const SeqInfo& in) const { return in; }

  // Fills this layer's tensors from `seed` (each tensor its own stream, by name).
  virtual void init(T* params, std::uint64_t seed) const = 0;
  // Packs weights for the fast kernels; nullptr when the layer has nothing to pack.
  virtual std::unique_ptr<PreparedWeights> prepare(const T* params, PrepareFor use) const {
    (void)params;
    (void)use;
    return nullptr;
  }
  // Packs again into what an earlier prepare() of this layer returned, reusing its memory (the
  // trainer packs every optimizer step: fresh buffers cost page faults, a fifth of a hidden-512
  // LSTM's step). False when the layer cannot, and then prepare() is called instead. `pool`
  // (may be null): threads the layer may share the packing with, the same bytes either way.
  virtual bool prepare_into(const T* params, PrepareFor use, PreparedWeights& into,
                            ThreadPool* pool) const {
    (void)params;
    (void)use;
    (void)into;
    (void)pool;
    return false;
  }
  virtual std::unique_ptr<LayerWorkspace<T>> make_workspace() const { return nullptr; }
  // True when forward, as the model's first layer with these prepared weights, takes the input as
  // pixel bytes (ctx.pixels) instead of floats: an int8 recurrent layer quantizes x = p / 255 as
  // the byte p with the scale 1 / 255, exactly. Default: no (the model turns the bytes into
  // floats first).
  virtual bool reads_pixels(const PreparedWeights* prepared) const {
    (void)prepared;
    return false;
  }
  // With these prepared weights (for inference or training): the most rows per thread at which
  // threads do better splitting this layer's columns (LayerContext::columns) than its rows; 0
  // when never (weights that fit a core's cache, or a layer that cannot split).
  virtual int column_split_rows(const PreparedWeights* prepared) const {
    (void)prepared;
    return 0;
  }

  // in: the previous layer's output (null for an embedding, which reads ctx.ids). Writes out.
  virtual void forward(const LayerContext<T>& ctx, const PreparedWeights* prepared, const T* in,
                       T* out, LayerWorkspace<T>* ws) const = 0;
  // dout: gradient on out. ADDS parameter gradients into grads; writes din (assigned) when
  // non-null. Uses what forward kept in ws.
  virtual void backward(const LayerContext<T>& ctx, const PreparedWeights* prepared, const T* in,
                        const T* out, const T* dout, T* din, T* grads,
                        LayerWorkspace<T>* ws) const = 0;
  // True when backward may be given din == dout (one buffer as large as the larger of the two):
  // it reads all of dout before it writes din. The model then holds one gradient buffer for
  // both (a recurrent layer over IMDb reviews: one [steps, batch, width] buffer less a thread).
  virtual bool backward_in_place() const { return false; }
  // A pair the model may run with LayerContext::last_steps_gradient: this layer's input gradient
  // is zero except at each row's last step (pooling of the last outputs), or this layer reads
  // its output gradient only where ctx says it may be nonzero (a recurrent stack). A training
  // step then neither clears nor reads the other steps (1.5% of an LSTM-256's step).
  virtual bool input_gradient_at_last_steps() const { return false; }
  virtual bool reads_last_steps_gradient() const { return false; }

 protected:
  LayerSpec spec_;
  ActShape in_, out_;
};

// Builds one layer: checks `spec` against the input shape (Error naming `where` and the field),
// registers its tensors under `name` + "." in layout, and computes its output shape.
template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, const ActShape& in,
                                     const std::string& name, ParamLayout& layout,
                                     const std::string& where);

// ---- the model ----

template <typename T>
struct ModelWorkspace;

// What a batch gives the model: features (x) or token ids, time-major [steps, batch(, F)] for
// sequences, [batch, C, H, W] for images; lengths for sequences. For inference, image pixels may
// come as bytes instead of x (pixels, same layout, x = p / 255.f): the first layer reads them
// itself when it can (Layer::reads_pixels), else the model turns them into floats.
template <typename T>
struct ModelInput {
  const T* x = nullptr;
  const std::int32_t* ids = nullptr;
  const std::uint8_t* pixels = nullptr;
  int batch = 0;
  const SeqInfo* seq = nullptr;
};

template <typename T>
class Model {
 public:
  explicit Model(const ModelSpec& spec);  // validates; throws recur::Error
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelSpec& spec() const { return spec_; }
  const ParamLayout& layout() const { return layout_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }
  std::size_t num_params() const { return layout_.total(); }
  std::size_t num_layers() const { return layers_.size(); }
  const Layer<T>& layer(std::size_t i) const { return *layers_[i]; }

  void init(std::uint64_t seed);
  // Packs every layer's weights from params(); forward/backward use them until the next call.
  // Without it (or after params change without it), each call packs for itself. Repacking
  // (an earlier prepare's buffers) may share the work with `pool`'s threads
  // (SequenceRunner::prepare_model does), the same bytes either way.
  void prepare(PrepareFor use = PrepareFor::training, ThreadPool* pool = nullptr);
  void drop_prepared();
  // Layer i's packed weights from the last prepare(), or null.
  const PreparedWeights* prepared(std::size_t i) const {
    return i < prepared_.size() ? prepared_[i].get() : nullptr;
  }

  // Logits [batch, classes], valid until ws is used again. `columns`: a pool whose threads split
  // the columns of the layers that say so (column_split_rows), in this forward and (training)
  // its backward; same bits.
  const T* forward(const ModelInput<T>& in, ModelWorkspace<T>& ws, bool train, Rng* rng = nullptr,
                   ThreadPool* columns = nullptr) const;
  // The largest Layer::column_split_rows over the layers, as prepared (0: none splits).
  int column_split_rows() const;
  // Backward of the last forward(train=true) on ws; adds parameter gradients into grads. With
  // row_grads (reset to embedding_table()'s place), the embedding's gradient goes there instead
  // and grads' elements of the table are neither read nor written.
  void backward(const ModelInput<T>& in, ModelWorkspace<T>& ws, const T* dlogits, T* grads,
                RowGradients<T>* row_grads = nullptr) const;
  // True when forward reads ModelInput::pixels without turning them into floats first (the first
  // layer's prepared weights are int8).
  bool reads_pixels() const;
  // The first layer's embedding table (offset, vocab, width), or nullptr when the model has none.
  const ParamInfo* embedding_table() const;
  // The input of layer i as the last forward on ws saw it (layer 0: the model input's x).
  const T* activation(const ModelWorkspace<T>& ws, std::size_t i) const;

 private:
  ModelSpec spec_;
  ParamLayout layout_;
  std::vector<T> params_;
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<std::unique_ptr<PreparedWeights>> prepared_;
};

// Bytes of the model's parameters as int8 inference holds them (Model::prepare(PrepareFor::int8)):
// one per weight of the recurrent and linear matrices, four per row scale of those matrices, four
// per other parameter (biases, embeddings, convolution kernels, untied recurrent weights).
std::uint64_t int8_parameter_bytes(const Model<float>& model);

template <typename T>
struct ModelWorkspace {
  std::vector<std::vector<T>> outs, douts;  // per layer
  // Per layer, the lengths of its input (sequences): the batch's, or those of the last layer
  // before it that changes lengths (kept in `lengths`).
  std::vector<const SeqInfo*> seqs;
  std::vector<SeqInfo> lengths;
  std::vector<std::unique_ptr<LayerWorkspace<T>>> layer_ws;
  SeqInfo fixed_seq;
  const std::int32_t* ids = nullptr;
  int batch = 0;
  std::vector<T> pixel_x;  // ModelInput::pixels as floats, for a first layer that reads floats
};

}  // namespace recur
