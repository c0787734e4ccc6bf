// The layers of sequence models: embedding, linear, recurrent stack, sequence pooling, dropout.
// Each works on time-major sequences [steps, batch, features] with the batch's lengths (rows
// sorted longest first), or on vectors [batch, features].
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/gemm.hpp"
#include "kernels/int8_gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "nn/conv_layers.hpp"
#include "nn/init_fill.hpp"
#include "nn/layer_registry.hpp"
#include "nn/recurrent.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

using kernels::gemm;

template <typename T>
std::size_t Layer<T>::output_size(const LayerContext<T>& ctx) const {
  const std::size_t rows = out_.kind == ActKind::sequence
                               ? static_cast<std::size_t>(ctx.seq->steps) * ctx.batch
                               : static_cast<std::size_t>(ctx.batch);
  return rows * out_.per_row();
}

namespace {

// Rows of a time-major sequence buffer that are past their sample's end: (t, b) with
// b >= batch_sizes[t].
template <typename T>
void zero_padded_rows(T* x, const SeqInfo& seq, int batch, std::size_t width) {
  if (seq.full) return;
  for (int t = 0; t < seq.steps; ++t) {
    const int bt = seq.batch_sizes[t];
    if (bt < batch)
      std::fill(x + (static_cast<std::size_t>(t) * batch + bt) * width,
                x + static_cast<std::size_t>(t + 1) * batch * width, T(0));
  }
}

template <typename T>
std::size_t rows_of(const ActShape& s, const LayerContext<T>& ctx) {
  return s.kind == ActKind::sequence ? static_cast<std::size_t>(ctx.seq->steps) * ctx.batch
                                     : static_cast<std::size_t>(ctx.batch);
}

// ---- embedding: ids [S, B] -> [S, B, dim]; nn.Embedding(vocab, dim) ----
// Word dropout's per-token scale (0 or 1 / keep) from the last training forward.
template <typename T>
struct EmbeddingWorkspace final : LayerWorkspace<T> {
  std::vector<T> scale;  // [S, B]
  bool active = false;
};

template <typename T>
class EmbeddingLayer final : public Layer<T> {
 public:
  EmbeddingLayer(const LayerSpec& spec, const ActShape& in, const std::string& name,
                 ParamLayout& layout, const std::string& where) {
    this->spec_ = spec;
    this->in_ = in;
    RECUR_CHECK(in.kind == ActKind::sequence && in.ids, where,
                "an embedding reads token ids, so it must be the first layer of a text model");
    RECUR_CHECK(spec.vocab >= 2 && spec.vocab <= (1 << 24), where,
                "vocab must be in [2, 16777216], got " + std::to_string(spec.vocab));
    RECUR_CHECK(spec.dropout >= 0 && spec.dropout < 1, where,
                "dropout (the share of tokens dropped whole) must be in [0, 1)");
    RECUR_CHECK(
        spec.size >= 1 && spec.size <= 65536, where,
        "size (the embedding width) must be in [1, 65536], got " + std::to_string(spec.size));
    name_ = name + ".weight";
    weight_ = layout.add(name_, {spec.vocab, spec.size});
    this->out_ = ActShape{ActKind::sequence, spec.size};
  }
  void init(T* params, std::uint64_t seed) const override {
    Rng rng = nn::tensor_rng(seed, this->spec_.draw.empty() ? name_ : this->spec_.draw + ".weight");
    const WeightInit& w = this->spec_.init;
    const std::size_t n = static_cast<std::size_t>(this->spec_.vocab) * this->spec_.size;
    T* p = params + weight_;
    if (w.kind == InitKind::pytorch) {  // nn.Embedding: N(0, 1)
      for (std::size_t k = 0; k < n; ++k) p[k] = static_cast<T>(rng.normal());
    } else {
      nn::fill_matrix(p, this->spec_.vocab, this->spec_.size, w, 1.0, rng);
    }
  }
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<EmbeddingWorkspace<T>>();
  }
  // Word dropout (training, dropout > 0): each token of each text is dropped whole (its vector
  // zero) with probability `dropout`, the kept ones scaled by 1 / (1 - dropout).
  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, T* out,
               LayerWorkspace<T>* ws) const override {
    const SeqInfo& seq = *ctx.seq;
    const int E = this->spec_.size, B = ctx.batch, V = this->spec_.vocab;
    const T* w = ctx.params + weight_;
    auto* words = static_cast<EmbeddingWorkspace<T>*>(ws);
    const bool drop = ctx.train && this->spec_.dropout > 0 && words;
    if (words) words->active = drop;
    const double keep = 1.0 - this->spec_.dropout;
    const T scale = static_cast<T>(1.0 / keep);
    if (drop) {
      RECUR_ASSERT(ctx.rng != nullptr);
      words->scale.assign(static_cast<std::size_t>(seq.steps) * B, T(0));
    }
    for (int t = 0; t < seq.steps; ++t) {
      const int bt = seq.batch_sizes[t];
      for (int b = 0; b < B; ++b) {
        T* o = out + (static_cast<std::size_t>(t) * B + b) * E;
        if (b >= bt) {
          std::fill(o, o + E, T(0));
          continue;
        }
        const std::int32_t id = ctx.ids[static_cast<std::size_t>(t) * B + b];
        RECUR_CHECK(id >= 0 && id < V, "token ids",
                    "id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(V));
        const T* row = w + static_cast<std::size_t>(id) * E;
        if (!drop) {
          std::memcpy(o, row, sizeof(T) * E);
          continue;
        }
        const T k = ctx.rng->uniform() < keep ? scale : T(0);
        words->scale[static_cast<std::size_t>(t) * B + b] = k;
        for (int e = 0; e < E; ++e) o[e] = row[e] * k;
      }
    }
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T*,
                const T* dout, T*, T* grads, LayerWorkspace<T>* ws) const override {
    const SeqInfo& seq = *ctx.seq;
    const int E = this->spec_.size, B = ctx.batch;
    const auto* words = static_cast<const EmbeddingWorkspace<T>*>(ws);
    const bool drop = words && words->active;
    RowGradients<T>* rows =
        ctx.row_grads && ctx.row_grads->offset == weight_ ? ctx.row_grads : nullptr;
    RECUR_ASSERT(!rows || (rows->width == E && rows->vocab == this->spec_.vocab));
    T* g = rows ? nullptr : grads + weight_;
    for (int t = 0; t < seq.steps; ++t)
      for (int b = 0; b < seq.batch_sizes[t]; ++b) {
        const std::size_t at = static_cast<std::size_t>(t) * B + b;
        const T k = drop ? words->scale[at] : T(1);
        if (k == T(0)) continue;
        const std::int32_t id = ctx.ids[at];
        const T* d = dout + at * E;
        T* gr = rows ? rows->row(id) : g + static_cast<std::size_t>(id) * E;
        if (drop)
          for (int e = 0; e < E; ++e) gr[e] += d[e] * k;
        else
          for (int e = 0; e < E; ++e) gr[e] += d[e];
      }
  }

 private:
  std::string name_;
  std::size_t weight_ = 0;
};

// ---- linear: [rows, in] -> [rows, out] (per step for sequences); nn.Linear(in, out) ----
struct LinearPrepared final : PreparedWeights {
  kernels::PackedMatrix packed;  // W and the bias, for inference
  kernels::QuantizedMatrix q;    // W and the bias for int8 inference (then `packed` is empty)
  bool int8 = false;
};

// int8 inference: the input rows quantized.
template <typename T>
struct LinearWorkspace final : LayerWorkspace<T> {
  AlignedVector<std::uint8_t> q;
  AlignedVector<float> scales;
};

template <typename T>
class LinearLayer final : public Layer<T> {
 public:
  LinearLayer(const LayerSpec& spec, const ActShape& in, const std::string& name,
              ParamLayout& layout, const std::string& where) {
    this->spec_ = spec;
    this->in_ = in;
    RECUR_CHECK(in.kind != ActKind::image, where,
                "a linear layer needs vectors or sequences; add a flatten layer before it");
    RECUR_CHECK(!in.ids, where, "a linear layer cannot read token ids; start with an embedding");
    RECUR_CHECK(spec.size >= 1 && spec.size <= 65536, where,
                "size must be in [1, 65536], got " + std::to_string(spec.size));
    name_ = name;
    weight_ = layout.add(name + ".weight", {spec.size, in.features});
    if (spec.bias) bias_ = layout.add(name + ".bias", {spec.size});
    this->out_ = ActShape{in.kind, spec.size};
  }
  void init(T* params, std::uint64_t seed) const override {
    const int out = this->spec_.size, in = this->in_.features;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    RECUR_CHECK(this->spec_.init.kind != InitKind::orthogonal, name_ + " init",
                "orthogonal applies to recurrent matrices only");
    const std::string& key = this->spec_.draw.empty() ? name_ : this->spec_.draw;
    Rng rw = nn::tensor_rng(seed, key + ".weight");
    nn::fill_matrix(params + weight_, out, in, this->spec_.init, bound, rw);
    if (this->spec_.bias) {
      Rng rb = nn::tensor_rng(seed, key + ".bias");
      nn::fill_bias(params + bias_, static_cast<std::size_t>(out), this->spec_.init, bound, rb);
    }
  }
  // Inference packs W (and the bias, which starts each accumulator) for recur's kernel: a row's
  // result is then the same bits alone or in any batch. Training keeps BLAS (its backward is
  // BLAS too, and packing every optimizer step would cost more than it saves).
  std::unique_ptr<PreparedWeights> prepare(const T* params, PrepareFor use) const override {
    if constexpr (!std::is_same_v<T, float>) {
      return nullptr;
    } else {
      if (for_training(use)) return nullptr;
      auto p = std::make_unique<LinearPrepared>();
      if (use == PrepareFor::int8 && this->in_.features <= kernels::kMaxInt8Depth) {
        const int I = this->in_.features;
        kernels::quantize_weights(params + weight_, this->spec_.size, I, I,
                                  this->spec_.bias ? params + bias_ : nullptr, nullptr,
                                  kernels::int8_kernel(), p->q);
        p->int8 = true;
        return p;
      }
      kernels::pack_weights_pair(this->spec_.size, params + weight_, this->in_.features, nullptr, 0,
                                 this->spec_.bias ? params + bias_ : nullptr, nullptr, p->packed);
      return p;
    }
  }
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<LinearWorkspace<T>>();
  }
  void forward(const LayerContext<T>& ctx, const PreparedWeights* prepared, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    const int O = this->spec_.size, I = this->in_.features;
    const std::size_t rows = rows_of(this->in_, ctx);
    if constexpr (std::is_same_v<T, float>) {
      if (prepared && !ctx.train) {
        const auto& prep = *static_cast<const LinearPrepared*>(prepared);
        if (prep.int8) {
          // Each row quantized on its own: a row's result never depends on the others.
          auto* w = static_cast<LinearWorkspace<T>*>(ws);
          LinearWorkspace<T> local;
          if (!w) w = &local;
          const int ldq = kernels::quantized_row_bytes(I);
          if (w->q.size() < rows * ldq) w->q.resize(rows * ldq);
          if (w->scales.size() < rows) w->scales.resize(rows);
          kernels::quantize_rows(static_cast<int>(rows), in, I, I, w->q.data(), ldq,
                                 w->scales.data());
          kernels::int8_gemm(static_cast<int>(rows), w->q.data(), ldq, w->scales.data(), prep.q,
                             false, out, O);
        } else {
          kernels::gemm_packed(static_cast<int>(rows), in, I, prep.packed, false, out, O);
        }
        if (this->in_.kind == ActKind::sequence) zero_padded_rows(out, *ctx.seq, ctx.batch, O);
        return;
      }
    }
    gemm<T>(false, true, static_cast<int>(rows), O, I, T(1), in, I, ctx.params + weight_, I, T(0),
            out, O);
    if (this->spec_.bias) {
      const T* b = ctx.params + bias_;
      for (std::size_t r = 0; r < rows; ++r)
        for (int j = 0; j < O; ++j) out[r * O + j] += b[j];
    }
    if (this->in_.kind == ActKind::sequence) zero_padded_rows(out, *ctx.seq, ctx.batch, O);
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, const T*,
                const T* dout, T* din, T* grads, LayerWorkspace<T>*) const override {
    const int O = this->spec_.size, I = this->in_.features;
    const std::size_t rows = rows_of(this->in_, ctx);
    gemm<T>(true, false, O, I, static_cast<int>(rows), T(1), dout, O, in, I, T(1), grads + weight_,
            I);
    if (this->spec_.bias) {
      T* gb = grads + bias_;
      for (std::size_t r = 0; r < rows; ++r)
        for (int j = 0; j < O; ++j) gb[j] += dout[r * O + j];
    }
    if (din)
      gemm<T>(false, false, static_cast<int>(rows), I, O, T(1), dout, O, ctx.params + weight_, I,
              T(0), din, I);
  }

 private:
  std::string name_;
  std::size_t weight_ = 0, bias_ = 0;
};

// ---- recurrent stack: [S, B, in] -> [S, B, hidden * directions]; nn.LSTM / GRU / RNN ----
// With untied_steps = N (the short form's --untied) every step t has its own W_ih[t] and W_hh[t],
// stored with a leading step dimension (weight_ih_l0 is [N, G*hidden, in]); the biases stay
// shared. Such a layer runs on batches of exactly N steps with every sample full length. No
// PyTorch module has untied weights, so this variant has no golden test: it is held to the
// fixed-shape network of tests/support (same tensors, initial values, logits and gradients, bit
// for bit) and to finite differences.
struct StackPrepared final : PreparedWeights {
  nn::StackPacked packed;
};

template <typename T>
struct StackLayerWorkspace final : LayerWorkspace<T> {
  nn::StackWorkspace<T> stack;
};

template <typename T>
class RecurrentLayer final : public Layer<T> {
 public:
  RecurrentLayer(const LayerSpec& spec, const ActShape& in, const std::string& name,
                 ParamLayout& layout, const std::string& where)
      : stack_(make_stack(spec, in, name, layout, where)) {
    this->spec_ = spec;
    this->in_ = in;
    name_ = name;
    where_ = where;
    const int D = spec.bidirectional ? 2 : 1;
    this->out_ = ActShape{ActKind::sequence, spec.size * D};
    this->out_.directions = D;
  }
  void init(T* params, std::uint64_t seed) const override {
    const LayerSpec& s = this->spec_;
    const int H = s.size, G = gate_count(s.cell), D = s.bidirectional ? 2 : 1;
    const double bound = 1.0 / std::sqrt(static_cast<double>(H));
    // One H-row block per gate, and per step when untied (step-major, as the tensors are laid
    // out), each tensor drawing from its own stream: the fixed-shape network's order.
    const std::size_t blocks = static_cast<std::size_t>(G) * std::max(1, s.untied_steps);
    for (int l = 0; l < s.layers; ++l)
      for (int d = 0; d < D; ++d) {
        const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
        const nn::DirectionParams& p = stack_.direction_params(l, d);
        const std::string pre = (s.draw.empty() ? name_ : s.draw) + ".";
        Rng r1 = nn::tensor_rng(seed, pre + "weight_ih" + suffix);
        for (std::size_t k = 0; k < blocks; ++k)
          nn::fill_matrix(params + p.w_ih + k * H * p.input_size, H, p.input_size, s.init, bound,
                          r1);
        Rng r2 = nn::tensor_rng(seed, pre + "weight_hh" + suffix);
        for (std::size_t k = 0; k < blocks; ++k)
          nn::fill_matrix(params + p.w_hh + k * H * H, H, H, s.init_recurrent, bound, r2);
        if (s.bias) {
          Rng r3 = nn::tensor_rng(seed, pre + "bias_ih" + suffix);
          nn::fill_bias(params + p.b_ih, static_cast<std::size_t>(G) * H, s.init, bound, r3);
          if (s.cell == CellKind::lstm)
            for (int j = 0; j < H; ++j)
              params[p.b_ih + lstm_gate::kForget * H + j] += static_cast<T>(s.forget_bias);
          Rng r4 = nn::tensor_rng(seed, pre + "bias_hh" + suffix);
          nn::fill_bias(params + p.b_hh, static_cast<std::size_t>(G) * H, s.init_recurrent, bound,
                        r4);
        }
      }
  }
  std::unique_ptr<PreparedWeights> prepare(const T* params, PrepareFor use) const override {
    if constexpr (!std::is_same_v<T, float>) {
      return nullptr;
    } else {
      auto p = std::make_unique<StackPrepared>();
      pack(params, use, p->packed);
      return p;
    }
  }
  bool prepare_into(const T* params, PrepareFor use, PreparedWeights& into,
                    ThreadPool* pool) const override {
    auto* p = dynamic_cast<StackPrepared*>(&into);
    if (!std::is_same_v<T, float> || !p) return false;
    // The stack's prepare functions reuse the buffers they find.
    pack(params, use, p->packed, pool);
    return true;
  }
  void pack(const T* params, PrepareFor use, nn::StackPacked& out,
            ThreadPool* pool = nullptr) const {
    if (use == PrepareFor::int8)
      stack_.prepare_int8(params, out);
    else if (use == PrepareFor::training_bf16)
      stack_.prepare_bf16(params, out);
    else
      stack_.prepare(params, out, use == PrepareFor::training, pool);
  }
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<StackLayerWorkspace<T>>();
  }
  void forward(const LayerContext<T>& ctx, const PreparedWeights* prepared, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    auto& w = static_cast<StackLayerWorkspace<T>*>(ws)->stack;
    const SeqInfo& seq = *ctx.seq;
    if (const int N = this->spec_.untied_steps; N > 0) {
      RECUR_CHECK(seq.steps == N, where_,
                  fmt::format("'{}' has untied weights for exactly {} steps, but the batch has {} "
                              "steps (the data view must give sequences of {} steps)",
                              name_, N, seq.steps, N));
      RECUR_CHECK(seq.full, where_,
                  fmt::format("'{}' has untied weights, one set per step, so every sequence must "
                              "have all {} steps; this batch has samples of other lengths",
                              name_, N));
    }
    const nn::StackPacked* packed =
        prepared ? &static_cast<const StackPrepared*>(prepared)->packed : nullptr;
    // The stack writes its output into the model's buffer and reads its gradients from there
    // (an IMDb training thread: 41 MB not held twice).
    w.caller_buffers = true;
    w.out_to = out;
    w.columns = ctx.columns;
    stack_.forward(ctx.params, in, seq.steps, ctx.batch, nullptr, nullptr, ctx.train, ctx.rng, w,
                   seq.full ? nullptr : seq.batch_sizes.data(), packed, ctx.pixels);
  }
  int column_split_rows(const PreparedWeights* prepared) const override {
    const auto* p = dynamic_cast<const StackPrepared*>(prepared);
    return p ? stack_.column_split_rows(p->packed) : 0;
  }
  bool reads_pixels(const PreparedWeights* prepared) const override {
    const auto* p = dynamic_cast<const StackPrepared*>(prepared);
    return p && stack_.reads_pixels(p->packed);
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T* out,
                const T* dout, T* din, T* grads, LayerWorkspace<T>* ws) const override {
    auto& w = static_cast<StackLayerWorkspace<T>*>(ws)->stack;
    w.out_to = const_cast<T*>(out);  // read only in backward; the buffer forward wrote
    w.dout_from = dout;
    w.dout_last_steps = ctx.last_steps_gradient;
    w.dinput_to = din;
    stack_.backward(ctx.params, nullptr, nullptr, w, grads, din != nullptr, nullptr, nullptr);
  }
  bool backward_in_place() const override { return stack_.backward_in_place(); }
  bool reads_last_steps_gradient() const override { return true; }

 private:
  static nn::RecurrentStack<T> make_stack(const LayerSpec& spec, const ActShape& in,
                                          const std::string& name, ParamLayout& layout,
                                          const std::string& where) {
    RECUR_CHECK(in.kind == ActKind::sequence && !in.ids, where,
                "a recurrent layer reads a sequence of features (after an embedding for text; "
                "before any pooling)");
    RECUR_CHECK(spec.size >= 1 && spec.size <= 8192, where,
                "size (the hidden size) must be in [1, 8192], got " + std::to_string(spec.size));
    RECUR_CHECK(spec.layers >= 1 && spec.layers <= 16, where,
                "layers must be in [1, 16], got " + std::to_string(spec.layers));
    RECUR_CHECK(spec.dropout >= 0 && spec.dropout < 1, where, "dropout must be in [0, 1)");
    RECUR_CHECK(spec.recurrent_dropout >= 0 && spec.recurrent_dropout < 1, where,
                "recurrent_dropout must be in [0, 1)");
    RECUR_CHECK(spec.recurrent_dropout == 0 || spec.untied_steps == 0, where,
                "recurrent_dropout needs tied weights (leave out untied=)");
    RECUR_CHECK(spec.untied_steps >= 0 && spec.untied_steps <= kMaxUntiedSteps, where,
                "untied_steps (the steps of untied weights; 0 = tied) must be in [0, " +
                    std::to_string(kMaxUntiedSteps) + "], got " +
                    std::to_string(spec.untied_steps));
    nn::StackSpec s;
    s.cell = spec.cell;
    s.input_size = in.features;
    s.hidden = spec.size;
    s.layers = spec.layers;
    s.directions = spec.bidirectional ? 2 : 1;
    s.bias = spec.bias;
    s.dropout = spec.dropout;
    s.recurrent_dropout = spec.recurrent_dropout;
    s.untied = spec.untied_steps > 0;
    s.steps = spec.untied_steps;
    return nn::RecurrentStack<T>(s, layout, name + ".");
  }
  static constexpr int kMaxUntiedSteps = 1 << 20;  // ModelConfig's bound on steps
  nn::RecurrentStack<T> stack_;
  std::string name_, where_;
};

// ---- pooling over real steps: [S, B, F] -> [B, F] ----
template <typename T>
struct PoolWorkspace final : LayerWorkspace<T> {
  std::vector<int> argmax;  // max: the step each maximum came from
};

template <typename T>
class PoolLayer final : public Layer<T> {
 public:
  PoolLayer(const LayerSpec& spec, const ActShape& in, const std::string&, ParamLayout&,
            const std::string& where) {
    this->spec_ = spec;
    this->in_ = in;
    RECUR_CHECK(in.kind == ActKind::sequence && !in.ids, where,
                "pooling reads a sequence of features");
    this->out_ =
        ActShape{ActKind::vector, spec.pooling == Pooling::maxmean ? 2 * in.features : in.features};
  }
  void init(T*, std::uint64_t) const override {}
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<PoolWorkspace<T>>();
  }
  bool input_gradient_at_last_steps() const override {
    return this->spec_.pooling == Pooling::last;
  }
  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    const SeqInfo& seq = *ctx.seq;
    const int B = ctx.batch, F = this->in_.features;
    const int D = this->in_.directions, H = F / D;
    auto at = [&](int t, int b) { return in + (static_cast<std::size_t>(t) * B + b) * F; };
    auto& arg = static_cast<PoolWorkspace<T>*>(ws)->argmax;
    switch (this->spec_.pooling) {
      case Pooling::last:
        // The forward half's last step is the sample's own last; a reverse half ends at step 0.
        for (int b = 0; b < B; ++b) {
          std::memcpy(out + static_cast<std::size_t>(b) * F, at(seq.lengths[b] - 1, b),
                      sizeof(T) * H);
          if (D == 2)
            std::memcpy(out + static_cast<std::size_t>(b) * F + H, at(0, b) + H, sizeof(T) * H);
        }
        break;
      case Pooling::mean:
        mean_forward(seq, B, F, in, out, F);
        break;
      case Pooling::max:
        max_forward(seq, B, F, in, out, F, arg);
        break;
      case Pooling::maxmean:
        // [B, 2F]: each sample's maximum, then its mean (torch.cat([max, mean], dim=1)).
        max_forward(seq, B, F, in, out, 2 * F, arg);
        mean_forward(seq, B, F, in, out + F, 2 * F);
        break;
    }
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T*,
                const T* dout, T* din, T*, LayerWorkspace<T>* ws) const override {
    if (!din) return;
    const SeqInfo& seq = *ctx.seq;
    const int B = ctx.batch, F = this->in_.features;
    const int D = this->in_.directions, H = F / D;
    if (this->spec_.pooling == Pooling::last && ctx.last_steps_gradient) {
      // Only the steps the layer before reads (LayerContext::last_steps_gradient) are cleared.
      const std::size_t block = static_cast<std::size_t>(B) * F;
      for (int t = 0; t < seq.steps; ++t)
        if (t == 0 || nn::rows_end_at(seq.batch_sizes, t))
          std::fill_n(din + t * block, block, T(0));
    } else {
      std::fill(din, din + static_cast<std::size_t>(seq.steps) * B * F, T(0));
    }
    auto at = [&](int t, int b) { return din + (static_cast<std::size_t>(t) * B + b) * F; };
    const auto& arg = static_cast<PoolWorkspace<T>*>(ws)->argmax;
    switch (this->spec_.pooling) {
      case Pooling::last:
        for (int b = 0; b < B; ++b) {
          std::memcpy(at(seq.lengths[b] - 1, b), dout + static_cast<std::size_t>(b) * F,
                      sizeof(T) * H);
          if (D == 2)
            std::memcpy(at(0, b) + H, dout + static_cast<std::size_t>(b) * F + H, sizeof(T) * H);
        }
        break;
      case Pooling::mean:
        mean_backward(seq, B, F, dout, F, din);
        break;
      case Pooling::max:
        max_backward(B, F, arg, dout, F, din);
        break;
      case Pooling::maxmean:
        mean_backward(seq, B, F, dout + F, 2 * F, din);
        max_backward(B, F, arg, dout, 2 * F, din);
        break;
    }
  }

 private:
  // Output rows are `stride` apart (F alone, 2F for maxmean).
  static void mean_forward(const SeqInfo& seq, int B, int F, const T* in, T* out, int stride) {
    for (int b = 0; b < B; ++b) std::fill_n(out + static_cast<std::size_t>(b) * stride, F, T(0));
    for (int t = 0; t < seq.steps; ++t)
      for (int b = 0; b < seq.batch_sizes[t]; ++b) {
        const T* x = in + (static_cast<std::size_t>(t) * B + b) * F;
        T* o = out + static_cast<std::size_t>(b) * stride;
        for (int f = 0; f < F; ++f) o[f] += x[f];
      }
    for (int b = 0; b < B; ++b) {
      const T inv = T(1) / T(seq.lengths[b]);
      T* o = out + static_cast<std::size_t>(b) * stride;
      for (int f = 0; f < F; ++f) o[f] *= inv;
    }
  }
  static void max_forward(const SeqInfo& seq, int B, int F, const T* in, T* out, int stride,
                          std::vector<int>& arg) {
    arg.assign(static_cast<std::size_t>(B) * F, 0);
    for (int b = 0; b < B; ++b)
      std::memcpy(out + static_cast<std::size_t>(b) * stride, in + static_cast<std::size_t>(b) * F,
                  sizeof(T) * F);
    for (int t = 1; t < seq.steps; ++t)
      for (int b = 0; b < seq.batch_sizes[t]; ++b) {
        const T* x = in + (static_cast<std::size_t>(t) * B + b) * F;
        T* o = out + static_cast<std::size_t>(b) * stride;
        int* a = arg.data() + static_cast<std::size_t>(b) * F;
        for (int f = 0; f < F; ++f)
          if (x[f] > o[f]) {
            o[f] = x[f];
            a[f] = t;
          }
      }
  }
  // Both add into din (zeroed by the caller), so maxmean's two halves sum.
  static void mean_backward(const SeqInfo& seq, int B, int F, const T* dout, int stride, T* din) {
    for (int t = 0; t < seq.steps; ++t)
      for (int b = 0; b < seq.batch_sizes[t]; ++b) {
        const T inv = T(1) / T(seq.lengths[b]);
        const T* d = dout + static_cast<std::size_t>(b) * stride;
        T* x = din + (static_cast<std::size_t>(t) * B + b) * F;
        for (int f = 0; f < F; ++f) x[f] += d[f] * inv;
      }
  }
  static void max_backward(int B, int F, const std::vector<int>& arg, const T* dout, int stride,
                           T* din) {
    for (int b = 0; b < B; ++b)
      for (int f = 0; f < F; ++f) {
        const std::size_t k = static_cast<std::size_t>(b) * F + f;
        din[(static_cast<std::size_t>(arg[k]) * B + b) * F + f] +=
            dout[static_cast<std::size_t>(b) * stride + f];
      }
  }
};

// ---- dropout (training only; inverted, so inference is the identity) ----
template <typename T>
struct DropoutWorkspace final : LayerWorkspace<T> {
  std::vector<T> mask;
  bool active = false;
};

template <typename T>
class DropoutLayer final : public Layer<T> {
 public:
  DropoutLayer(const LayerSpec& spec, const ActShape& in, const std::string&, ParamLayout&,
               const std::string& where) {
    this->spec_ = spec;
    this->in_ = in;
    RECUR_CHECK(!in.ids, where, "dropout cannot act on token ids; put it after the embedding");
    RECUR_CHECK(spec.dropout >= 0 && spec.dropout < 1, where,
                "dropout (the drop probability) must be in [0, 1)");
    this->out_ = in;
  }
  void init(T*, std::uint64_t) const override {}
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<DropoutWorkspace<T>>();
  }
  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    auto& w = *static_cast<DropoutWorkspace<T>*>(ws);
    const std::size_t n = this->output_size(ctx);
    w.active = ctx.train && this->spec_.dropout > 0;
    if (!w.active) {
      std::memcpy(out, in, sizeof(T) * n);
      return;
    }
    RECUR_ASSERT(ctx.rng != nullptr);
    const double keep = 1.0 - this->spec_.dropout;
    const T scale = static_cast<T>(1.0 / keep);
    w.mask.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      w.mask[k] = ctx.rng->uniform() < keep ? scale : T(0);
      out[k] = in[k] * w.mask[k];
    }
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T*,
                const T* dout, T* din, T*, LayerWorkspace<T>* ws) const override {
    if (!din) return;
    const auto& w = *static_cast<DropoutWorkspace<T>*>(ws);
    const std::size_t n = this->output_size(ctx);
    if (!w.active) {
      std::memcpy(din, dout, sizeof(T) * n);
      return;
    }
    for (std::size_t k = 0; k < n; ++k) din[k] = dout[k] * w.mask[k];
  }
};

}  // namespace

// ---- registry entries (nn/layer_registry.hpp) ----

namespace nn {

namespace {

constexpr int kMaxWidth = 1 << 20;      // the list's bound; each layer checks its own
constexpr int kListMaxSteps = 1 << 20;  // ModelConfig's bound on steps

std::string untied_precheck(const std::string& value) {
  if (value == "0" || (!value.empty() && value[0] == '-'))
    return "untied must be the sequences' number of steps (at least 1), got '" + value +
           "'; leave untied out for weights shared by all steps";
  return "";
}

}  // namespace

LayerParam bias_param() {
  return {.key = "bias",
          .json = "bias",
          .field = &LayerSpec::bias,
          .label = "bias",
          .meta = "false",
          .doc = "`bias=false`"};
}

const LayerKind& embedding_kind() {
  static const LayerKind k{.type = "embedding",
                           .words = {"embedding"},
                           .params = {{.key = "size",
                                       .json = "size",
                                       .field = &LayerSpec::size,
                                       .label = "the width",
                                       .lo = 1,
                                       .hi = kMaxWidth,
                                       .positional = true,
                                       .required = true,
                                       .missing = "needs its width, e.g. 'embedding 128'",
                                       .meta = "W",
                                       .doc = "width"},
                                      {.key = "vocab",
                                       .json = "vocab",
                                       .field = &LayerSpec::vocab,
                                       .label = "vocab",
                                       .lo = 3,
                                       .hi = 1 << 24,
                                       .meta = "N",
                                       .doc = "`vocab=N` (default: the vocabulary's size)"},
                                      {.key = "dropout",
                                       .json = "dropout",
                                       .field = &LayerSpec::dropout,
                                       .label = "dropout",
                                       .json_if_set = true,
                                       .meta = "P",
                                       .doc = "`dropout=P` (word dropout: whole tokens, "
                                              "training only)"},
                                      {.json = "init", .field = &LayerSpec::init}},
                           .doc_layer = "`embedding W`",
                           .twin = "`nn.Embedding`",
                           .make_float = &construct_layer<EmbeddingLayer, float>,
                           .make_double = &construct_layer<EmbeddingLayer, double>};
  return k;
}

const LayerKind& linear_kind() {
  static const LayerKind k{.type = "linear",
                           .words = {"linear"},
                           .params = {{.key = "size",
                                       .json = "size",
                                       .field = &LayerSpec::size,
                                       .label = "the width",
                                       .lo = 1,
                                       .hi = kMaxWidth,
                                       .positional = true,
                                       .meta = "W",
                                       .doc = "outputs; none = one per class (the head)"},
                                      bias_param(),
                                      {.json = "init", .field = &LayerSpec::init}},
                           .doc_layer = "`linear [W]`",
                           .twin = "`nn.Linear`",
                           // The last layer is the head: --head-init and its bias options.
                           .init_rule =
                               [](const InitFlags& f, bool last, LayerSpec& l) {
                                 if (last) l.init = f.init.head;
                               },
                           .make_float = &construct_layer<LinearLayer, float>,
                           .make_double = &construct_layer<LinearLayer, double>};
  return k;
}

const LayerKind& recurrent_kind() {
  static const LayerKind k{
      .type = "recurrent",
      .words = {"lstm", "gru", "rnn", "rnn_relu", "rnn_tanh"},
      .shown = 4,
      .params = {{.key = "size",
                  .json = "size",
                  .field = &LayerSpec::size,
                  .label = "the hidden size",
                  .lo = 1,
                  .hi = kMaxWidth,
                  .positional = true,
                  .required = true,
                  .missing = "needs its hidden size, e.g. '{} 128'",
                  .meta = "H",
                  .doc = "hidden units per direction"},
                 {.key = "layers",
                  .json = "layers",
                  .field = &LayerSpec::layers,
                  .label = "layers",
                  .lo = 1,
                  .hi = 64,
                  .meta = "N",
                  .doc = "`layers=N`"},
                 {.key = "bidirectional",
                  .json = "bidirectional",
                  .field = &LayerSpec::bidirectional,
                  .label = "bidirectional",
                  .doc = "`bidirectional` (or `bi`)",
                  .switches = {"bidirectional", "bi"}},
                 {.key = "dropout",
                  .json = "dropout",
                  .field = &LayerSpec::dropout,
                  .label = "dropout",
                  .meta = "P",
                  .doc = "`dropout=P` (between stacked layers)"},
                 {.key = "recurrent_dropout",
                  .json = "recurrent_dropout",
                  .field = &LayerSpec::recurrent_dropout,
                  .label = "recurrent_dropout",
                  .json_if_set = true,
                  .meta = "P",
                  .doc = "`recurrent_dropout=P` (on the state between steps, one mask per "
                         "sequence)"},
                 {.key = "untied",
                  .json = "untied_steps",
                  .field = &LayerSpec::untied_steps,
                  .label = "untied (the number of steps)",
                  .lo = 1,
                  .hi = kListMaxSteps,
                  .json_if_set = true,
                  .meta = "STEPS",
                  .doc = "`untied=S` (one weight set per step)",
                  .precheck = &untied_precheck,
                  .bare = "untied needs the sequences' number of steps, e.g. 'untied=28'"},
                 bias_param(),
                 {.json = "cell", .field = &LayerSpec::cell},
                 {.json = "init", .field = &LayerSpec::init},
                 {.json = "init_recurrent", .field = &LayerSpec::init_recurrent},
                 {.json = "forget_bias", .field = &LayerSpec::forget_bias}},
      .doc_layer = "`lstm H`, `gru H`, `rnn H` (tanh), `rnn_relu H`",
      .twin = "`nn.LSTM`, `nn.GRU`, `nn.RNN` (none for `untied`)",
      .from_word = [](const std::string& word,
                      LayerSpec& l) { l.cell = parse_cell(word == "rnn" ? "rnn_tanh" : word); },
      .word_of = [](const LayerSpec& l) -> std::string {
        return l.cell == CellKind::rnn_tanh ? "rnn" : to_string(l.cell);
      },
      // --init, --init-recurrent (auto: by the cell), --bias-init, --forget-bias, --no-bias.
      .init_rule =
          [](const InitFlags& f, bool, LayerSpec& l) {
            l.init = f.init.input;
            l.init_recurrent = f.init.recurrent;
            if (f.recurrent_auto) l.init_recurrent.kind = auto_recurrent_init(l.cell);
            l.forget_bias = f.init.forget_bias;
            if (f.no_bias) l.bias = false;
          },
      .make_float = &construct_layer<RecurrentLayer, float>,
      .make_double = &construct_layer<RecurrentLayer, double>};
  return k;
}

const LayerKind& pool_kind() {
  static const LayerKind k{
      .type = "pool",
      .words = {"pool"},
      .params = {{.key = "pooling",
                  .json = "pooling",
                  .field = &LayerSpec::pooling,
                  .label = "pooling",
                  .positional = true,
                  .required = true,
                  .missing = "needs last, mean, max or maxmean, e.g. 'pool max'",
                  .meta = "last|mean|max|maxmean",
                  .doc = "the pooling"}},
      .doc_layer = "`pool last\\|mean\\|max\\|maxmean`",
      .twin =
          "over each sequence's real steps; `maxmean`: max and mean side by side "
          "(`torch.cat([max, mean], 1)`)",
      .make_float = &construct_layer<PoolLayer, float>,
      .make_double = &construct_layer<PoolLayer, double>};
  return k;
}

const LayerKind& dropout_kind() {
  static const LayerKind k{.type = "dropout",
                           .words = {"dropout"},
                           .params = {{.key = "p",
                                       .json = "dropout",
                                       .field = &LayerSpec::dropout,
                                       .label = "the drop probability",
                                       .positional = true,
                                       .required = true,
                                       .missing = "needs its drop probability, e.g. 'dropout 0.3'",
                                       .meta = "P",
                                       .doc = "drop probability in [0, 1)"}},
                           .doc_layer = "`dropout P`",
                           .twin = "`nn.Dropout`",
                           .make_float = &construct_layer<DropoutLayer, float>,
                           .make_double = &construct_layer<DropoutLayer, double>};
  return k;
}

}  // namespace nn

template class Layer<float>;
template class Layer<double>;

std::uint64_t int8_parameter_bytes(const Model<float>& model) {
  std::uint64_t quantized = 0, rows = 0;
  auto count = [&](const kernels::QuantizedMatrix& q) {
    quantized += static_cast<std::uint64_t>(q.N) * q.K;
    rows += static_cast<std::uint64_t>(q.N);
  };
  for (std::size_t i = 0; i < model.num_layers(); ++i) {
    const auto prepared = model.layer(i).prepare(model.params().data(), PrepareFor::int8);
    if (const auto* l = dynamic_cast<const LinearPrepared*>(prepared.get()); l && l->int8)
      count(l->q);
    if (const auto* r = dynamic_cast<const StackPrepared*>(prepared.get()))
      for (const auto& d : r->packed.int8) {
        count(d.w_ih);
        count(d.w_hh);
      }
  }
  return 4 * (static_cast<std::uint64_t>(model.num_params()) - quantized) + quantized + 4 * rows;
}

}  // namespace recur
