#include "nn/recurrent.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/thread_pool.hpp"
#include "kernels/cell.hpp"
#include "kernels/gemm.hpp"
#include "kernels/rows.hpp"
#include "recur/error.hpp"

namespace recur::nn {

using kernels::add_bias_rows;
using kernels::add_column_sums;
using kernels::gemm;

namespace {

// Below this many rows, without weights packed beforehand, the steps' GEMMs go to BLAS instead of
// recur's packed kernel.
constexpr int kMinPackedRows = 8;

// The step GEMM h_prev[B,H] x W_hh^T -> [B,G*H] through BLAS (the unfused path).
template <typename T>
void step_forward_gemm(int B, int GH, int H, const T* h_prev, int ld_prev, const T* w_hh,
                       bool accumulate, T* out) {
  gemm<T>(false, true, B, GH, H, T(1), h_prev, ld_prev, w_hh, H, accumulate ? T(1) : T(0), out, GH);
}

// The backward step GEMM dgates[B,G*H] x W_hh -> [B,H].
template <typename T>
void step_backward_gemm(int B, int GH, int H, const T* dgates, const T* w_hh,
                        const kernels::PackedMatrix* packed, bool accumulate, T* dh,
                        const StackPacked::Bf16Direction* bf16,
                        AlignedVector<std::uint16_t>& scratch) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      kernels::gemm_bf16(B, dgates, GH, GH, nullptr, 0, bf16->w_hh_t, accumulate, dh, H, scratch);
      return;
    }
    if (packed) {
      kernels::gemm_packed(B, dgates, GH, *packed, accumulate, dh, H);
      return;
    }
  }
  gemm<T>(false, false, B, H, GH, T(1), dgates, GH, w_hh, H, accumulate ? T(1) : T(0), dh, H);
}

template <typename V>
void grow(V& v, std::size_t n) {
  grow_workspace(v, n);
}

// One bf16 training step: the input side with its biases into g and the recurrent side (h_in,
// masked or not) added to g (LSTM, RNN: one product) or into hid (GRU).
void bf16_step(const StackPacked::Bf16Direction& w, int B, const float* x_t, int I,
               const float* h_in, int ld_in, int H, float* g, float* hid, int GH,
               AlignedVector<std::uint16_t>& scratch) {
  if (hid) {
    kernels::gemm_bf16(B, x_t, I, I, nullptr, 0, w.w_in, false, g, GH, scratch);
    kernels::gemm_bf16(B, h_in, ld_in, H, nullptr, 0, w.w_hh, false, hid, GH, scratch);
  } else {
    kernels::gemm_bf16(B, x_t, I, I, h_in, ld_in, w.w_in, false, g, GH, scratch);
  }
}

}  // namespace

template <typename T>
RecurrentStack<T>::RecurrentStack(const StackSpec& spec, ParamLayout& layout,
                                  const std::string& prefix)
    : spec_(spec) {
  const int G = gate_count(spec.cell), H = spec.hidden, D = spec.directions;
  for (int l = 0; l < spec.layers; ++l) {
    for (int d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
      DirectionParams p;
      p.input_size = l == 0 ? spec.input_size : H * D;
      std::vector<int64_t> ih{G * H, p.input_size}, hh{G * H, H};
      if (spec.untied) {
        ih.insert(ih.begin(), spec.steps);
        hh.insert(hh.begin(), spec.steps);
      }
      p.w_ih = layout.add(prefix + "weight_ih" + suffix, ih);
      p.w_hh = layout.add(prefix + "weight_hh" + suffix, hh);
      if (spec.bias) {
        p.b_ih = layout.add(prefix + "bias_ih" + suffix, {G * H});
        p.b_hh = layout.add(prefix + "bias_hh" + suffix, {G * H});
      }
      params_.push_back(p);
    }
  }
}

// Inference of at most this many rows computes every step's input side first, in one product
// of S x B rows (gemm_packed_head), so that a step reads only W_hh: for batch 1 over MNIST rows
// the input side is 28 of an LSTM-128's 156 weight rows, and the step's time is the time to
// read its weights from L2. Bit for bit what the step-by-step pair product gives.
constexpr int kHeadRows = 4;

template <typename T>
void RecurrentStack<T>::reserve(StackWorkspace<T>& ws, int S, int B) const {
  const int G = gate_count(spec_.cell), H = spec_.hidden, D = spec_.directions;
  const std::size_t SB = static_cast<std::size_t>(S) * B;
  // Inference on the packed path computes each step's gates (and GRU's hidden products) in
  // place of the last step's and alternates two cell-state buffers: the memory of one step, not
  // of the whole sequence (an IMDb review of 500 steps in blocks of 64: 131 MB less per
  // direction). Training keeps every step for backward; the BLAS path computes every step's
  // input side at once.
  const bool train = ws.train, one_step = ws.one_step;
  const std::size_t gate_rows = one_step && B > kHeadRows ? static_cast<std::size_t>(B) : SB;
  const std::size_t cell_rows = one_step ? 2 * static_cast<std::size_t>(B) : SB;
  ws.steps = S;
  ws.batch = B;
  ws.layers.resize(spec_.layers);
  for (int l = 0; l < spec_.layers; ++l) {
    auto& L = ws.layers[l];
    const int I = params_[l * D].input_size;
    if (train && l > 0 && spec_.dropout > 0) {
      grow(L.input_dropped, SB * I);
      grow(L.mask, SB * I);
    }
    const bool last = l + 1 == spec_.layers;
    if (!(last && ws.caller_buffers)) grow(L.out, SB * D * H);
    if (train && !(last && ws.caller_buffers)) grow(L.dout, SB * D * H);
    for (int d = 0; d < D; ++d) {
      auto& dir = L.dir[d];
      grow(dir.gates, gate_rows * G * H);
      if (spec_.cell == CellKind::lstm) grow(dir.cell, cell_rows * H);
      if (spec_.cell == CellKind::gru) {
        grow(dir.hidden, (one_step ? static_cast<std::size_t>(B) : SB) * G * H);
      }
      if (train && spec_.recurrent_dropout > 0) {
        grow(dir.h_mask, static_cast<std::size_t>(B) * H);
        grow(dir.h_dropped, SB * H);
      }
    }
  }
  if (ws.int8) {
    // Every step's input quantized at once; h_{t-1} and h_t in turn (forward_direction_int8).
    int widest = 0;
    for (int l = 0; l < spec_.layers; ++l) widest = std::max(widest, params_[l * D].input_size);
    grow(ws.q_in, SB * kernels::quantized_row_bytes(widest));
    grow(ws.q_h, 2 * static_cast<std::size_t>(B) * kernels::quantized_row_bytes(H));
    grow(ws.s_in, SB);
    grow(ws.s_h, 2 * static_cast<std::size_t>(B));
  }
  const std::size_t states = static_cast<std::size_t>(spec_.layers) * D * B * H;
  grow(ws.hn, states);
  if (spec_.cell == CellKind::lstm) grow(ws.cn, states);
  grow(ws.zeros, static_cast<std::size_t>(B) * H);
  std::fill(ws.zeros.begin(), ws.zeros.end(), T(0));
  if (train) {
    grow(ws.dh, static_cast<std::size_t>(B) * H);
    grow(ws.dc, static_cast<std::size_t>(B) * H);
    grow(ws.dh_masked, static_cast<std::size_t>(B) * H);
    if (!ws.caller_buffers) grow(ws.dinput, SB * spec_.input_size);
    grow(ws.bias_sums, static_cast<std::size_t>(G) * H);
  }
}

template <typename T>
void RecurrentStack<T>::prepare(const T* params, StackPacked& out, bool for_training,
                                ThreadPool* pool) const {
  // Packed again in place when `out` was packed before (the buffers keep their memory).
  out.int8.clear();
  out.bf16.clear();
  out.every_batch = !for_training;
  if (!std::is_same_v<T, float> || spec_.untied) out.dirs.clear();
  if constexpr (std::is_same_v<T, float>) {
    if (spec_.untied) return;
    const int GH = gate_count(spec_.cell) * spec_.hidden, H = spec_.hidden;
    out.dirs.resize(params_.size());
    for (std::size_t k = 0; k < params_.size(); ++k) {
      const DirectionParams& p = params_[k];
      const T* b_ih = spec_.bias ? params + p.b_ih : nullptr;
      const T* b_hh = spec_.bias ? params + p.b_hh : nullptr;
      auto& d = out.dirs[k];
      if (spec_.cell == CellKind::gru) {
        kernels::pack_weights_pair(GH, params + p.w_ih, p.input_size, nullptr, 0, b_ih, nullptr,
                                   d.w_in);
        kernels::pack_weights_pair(GH, params + p.w_hh, H, nullptr, 0, b_hh, nullptr, d.w_hh);
        if (for_training) kernels::pack_weights(params + p.w_hh, H, GH, true, d.w_hh_t);
      } else {
        // The backward step's W_hh packed in the same pass (training), and the panels split
        // between the pool's threads: a training step reads the weights Adam has just written
        // from memory, and one core's share of its bandwidth left the other core waiting.
        kernels::PackedMatrix* w_hh_t = for_training ? &d.w_hh_t : nullptr;
        const int panels =
            kernels::pack_pair_shape(GH, p.input_size, H, b_ih, b_hh, d.w_in, w_hh_t);
        auto panels_range = [&](std::int64_t begin, std::int64_t end) {
          kernels::pack_pair_panels(GH, params + p.w_ih, p.input_size, params + p.w_hh, H, d.w_in,
                                    w_hh_t, static_cast<int>(begin), static_cast<int>(end));
        };
        if (pool)
          pool->parallel_for(panels, panels_range);
        else
          panels_range(0, panels);
      }
      if (!for_training) d.w_hh_t = {};
    }
  }
}

template <typename T>
bool RecurrentStack<T>::prepare_bf16(const T* params, StackPacked& out) const {
  if constexpr (std::is_same_v<T, float>) {
    if (!spec_.untied) {
      const int GH = gate_count(spec_.cell) * spec_.hidden, H = spec_.hidden;
      const bool gru = spec_.cell == CellKind::gru;
      out.dirs.clear();
      out.int8.clear();
      out.every_batch = false;
      out.bf16.resize(params_.size());
      for (std::size_t k = 0; k < params_.size(); ++k) {
        const DirectionParams& p = params_[k];
        const T* b_ih = spec_.bias ? params + p.b_ih : nullptr;
        const T* b_hh = spec_.bias ? params + p.b_hh : nullptr;
        auto& d = out.bf16[k];
        kernels::pack_bf16_pair(GH, params + p.w_ih, p.input_size, gru ? nullptr : params + p.w_hh,
                                gru ? 0 : H, b_ih, gru ? nullptr : b_hh, d.w_in);
        if (gru) kernels::pack_bf16_pair(GH, params + p.w_hh, H, nullptr, 0, b_hh, nullptr, d.w_hh);
        kernels::pack_bf16(params + p.w_hh, H, GH, true, d.w_hh_t);
        kernels::pack_bf16(params + p.w_ih, p.input_size, GH, true, d.w_ih_t);
      }
      return true;
    }
  }
  prepare(params, out, true);  // clears bf16
  return false;
}

template <typename T>
void RecurrentStack<T>::forward(const T* params, const T* x, int S, int B, const T* h0, const T* c0,
                                bool train, Rng* rng, StackWorkspace<T>& ws, const int* batch_sizes,
                                const StackPacked* packed, const std::uint8_t* pixels) const {
  RECUR_ASSERT(S > 0 && B > 0);
  RECUR_ASSERT(!spec_.untied || S == spec_.steps);
  ws.train = train;
  // Float with tied weights runs the packed kernel on batches of 8 rows or more, and on every
  // batch when the weights were packed for inference (forward_direction says why).
  ws.packed = packed && (!packed->dirs.empty() || !packed->int8.empty() || !packed->bf16.empty())
                  ? packed
                  : nullptr;
  ws.int8 = std::is_same_v<T, float> && !train && ws.packed && !ws.packed->int8.empty();
  // bf16 weights run every batch size through the bf16 products.
  ws.bf16 = std::is_same_v<T, float> && ws.packed && !ws.packed->bf16.empty() ? ws.packed : nullptr;
  if constexpr (std::is_same_v<T, float>)
    ws.fused = !spec_.untied && (B >= kMinPackedRows ||
                                 (ws.packed && (ws.packed->every_batch || ws.bf16 != nullptr)));
  else
    ws.fused = false;
  RECUR_ASSERT(!train || !packed || packed->int8.empty());  // int8 weights are for inference
  RECUR_ASSERT(!pixels || (ws.int8 && !x));
  ws.pixels = pixels;
  ws.one_step = ws.fused && !train;
  reserve(ws, S, B);
  ws.batch_sizes.assign(static_cast<std::size_t>(S), B);
  ws.lengths.assign(static_cast<std::size_t>(B), S);
  ws.variable = false;
  if (batch_sizes) {
    for (int t = 0; t < S; ++t) {
      RECUR_ASSERT(batch_sizes[t] >= 1 && batch_sizes[t] <= B &&
                   (t == 0 || batch_sizes[t] <= batch_sizes[t - 1]));
      ws.batch_sizes[t] = batch_sizes[t];
      if (batch_sizes[t] < B) ws.variable = true;
    }
    RECUR_ASSERT(batch_sizes[0] == B);
    for (int b = 0; b < B; ++b) {
      int len = 0;
      while (len < S && batch_sizes[len] > b) ++len;
      ws.lengths[b] = len;
    }
  }
  RECUR_ASSERT(!ws.variable || (h0 == nullptr && c0 == nullptr && !spec_.untied));
  ws.recurrent_dropped = train && spec_.recurrent_dropout > 0;
  RECUR_ASSERT(!ws.recurrent_dropped || (rng != nullptr && !spec_.untied));
  ws.input = x;
  ws.h0 = h0;
  ws.c0 = c0;
  const std::size_t SB = static_cast<std::size_t>(S) * B;
  const T* in = x;
  for (int l = 0; l < spec_.layers; ++l) {
    auto& L = ws.layers[l];
    L.dropped = false;
    if (l > 0 && train && spec_.dropout > 0) {
      RECUR_ASSERT(rng != nullptr);
      const int I = params_[l * spec_.directions].input_size;
      const T keep = T(1) - T(spec_.dropout);
      const T scale = T(1) / keep;
      for (std::size_t k = 0; k < SB * I; ++k) {
        L.mask[k] = rng->uniform() < static_cast<double>(keep) ? scale : T(0);
        L.input_dropped[k] = in[k] * L.mask[k];
      }
      L.dropped = true;
      in = L.input_dropped.data();
    }
    for (int d = 0; d < spec_.directions; ++d) {
      if (ws.recurrent_dropped) {
        // One mask per row and unit for the whole sequence.
        const T keep = T(1) - T(spec_.recurrent_dropout);
        const T scale = T(1) / keep;
        auto& m = L.dir[d].h_mask;
        for (std::size_t k = 0; k < static_cast<std::size_t>(B) * spec_.hidden; ++k)
          m[k] = rng->uniform() < static_cast<double>(keep) ? scale : T(0);
      }
      forward_direction(params, l, d, in, ws);
    }
    in = ws.last_out(l);
  }
}

// The sizes one direction of one layer works with: gates G, hidden H, directions D (and the
// products GH, DH), steps S, batch B, inputs I, the strides of a step's W_ih and W_hh blocks,
// and B * GH.
struct DirectionDims {
  int G, H, D, GH, DH, S, B, I;
  std::size_t ih_stride, hh_stride, BG;
};

template <typename T>
DirectionDims RecurrentStack<T>::direction_dims(const DirectionParams& p,
                                                const StackWorkspace<T>& ws) const {
  const int G = gate_count(spec_.cell), H = spec_.hidden, D = spec_.directions;
  const int GH = G * H;
  return {G,
          H,
          D,
          GH,
          D * H,
          ws.steps,
          ws.batch,
          p.input_size,
          static_cast<std::size_t>(GH) * p.input_size,
          static_cast<std::size_t>(GH) * H,
          static_cast<std::size_t>(ws.batch) * GH};
}

// Recurrent dropout: step t's h_{t-1} times the sequence's mask, kept in W.h_dropped for
// backward. Every row is written, so dW_hh reads no stale rows.
template <typename T>
const T* mask_state(const T* h_prev, int ld_prev, const T* mask, int t, int B, int H, T* dropped) {
  T* hd = dropped + static_cast<std::size_t>(t) * B * H;
  kernels::mul_rows<T>(B, H, h_prev, ld_prev, mask, hd);
  return hd;
}

// The GRU's hidden side of one packed step, W_hh h_{t-1} + b_hh, into hid. From a zero state it
// is b_hh alone: each of the product's terms is 0 * w and acc + 0 is acc, so copying the bias
// gives the same bits.
void gru_hidden_packed(int B, const float* h_in, int ld_in, bool zero_state,
                       const kernels::PackedMatrix& w_hh, float* hid, int GH) {
  if (!zero_state) return kernels::gemm_packed(B, h_in, ld_in, w_hh, false, hid, GH);
  for (int b = 0; b < B; ++b) {
    float* row = hid + static_cast<std::size_t>(b) * GH;
    if (w_hh.bias.empty())
      std::fill(row, row + GH, 0.0f);
    else
      std::copy(w_hh.bias.begin(), w_hh.bias.begin() + GH, row);
  }
}

// Untied weights: dW_ih, dW_hh and the input gradient one step (one weight set) at a time.
template <typename T>
void untied_weight_grads(const DirectionDims& d, int dir, const T* in, const T* out, const T* h0,
                         const T* dgates, const T* dgates_hid, const T* w_ih, T* gw_ih, T* gw_hh,
                         T* din, bool din_accumulate) {
  const int S = d.S, B = d.B, H = d.H, I = d.I, GH = d.GH, DH = d.DH;
  for (int t = 0; t < S; ++t) {
    const int s = dir == 0 ? t : S - 1 - t;
    const int t_prev = dir == 0 ? t - 1 : t + 1;
    const T* h_prev = s > 0 ? out + static_cast<std::size_t>(t_prev) * B * DH + dir * H : h0;
    const int ld_prev = s > 0 ? DH : H;
    const T* in_t = in + static_cast<std::size_t>(t) * B * I;
    gemm<T>(true, false, GH, I, B, T(1), dgates + t * d.BG, GH, in_t, I, T(1),
            gw_ih + t * d.ih_stride, I);
    gemm<T>(true, false, GH, H, B, T(1), dgates_hid + t * d.BG, GH, h_prev, ld_prev, T(1),
            gw_hh + t * d.hh_stride, H);
    if (din)
      gemm<T>(false, false, B, I, GH, T(1), dgates + t * d.BG, GH, w_ih + t * d.ih_stride, I,
              din_accumulate ? T(1) : T(0), din + static_cast<std::size_t>(t) * B * I, I);
  }
}

// Column splits pay once one direction's step weights outgrow what the cores' caches hold for
// a step (measured on the Zen 5 here, LSTM over 28 inputs, 2 threads: hidden 512, 4.4 MB, ran
// 2-7% slower split at batch 16 and 64; hidden 768, 9.8 MB, and 1024, 17 MB, ran level to 80%
// faster split at every batch from 16 to 4,096: bench/RESULTS.md, "Column splits"). Above the
// threshold they pay at any row count.
constexpr std::size_t kColumnSplitBytes = std::size_t{8} << 20;
constexpr int kColumnSplitRows = 1 << 20;

template <typename T>
int RecurrentStack<T>::column_split_rows(const StackPacked& packed) const {
  if (!std::is_same_v<T, float> || spec_.untied || packed.dirs.empty() ||
      spec_.hidden % kernels::kPanelWidth != 0)
    return 0;
  // Training splits the steps (forward and backward) without recurrent dropout
  // (backward_direction_columns).
  if (!packed.every_batch && spec_.recurrent_dropout > 0) return 0;
  const std::size_t G = gate_count(spec_.cell), H = spec_.hidden;
  std::size_t widest = 0;
  for (const DirectionParams& p : params_)
    widest = std::max(widest, G * H * (static_cast<std::size_t>(p.input_size) + H) * sizeof(T));
  return widest >= kColumnSplitBytes ? kColumnSplitRows : 0;
}

// Whether this forward (and its backward) splits each step's columns between ws.columns'
// threads: float on packed weights large enough (column_split_rows), inference on more than a
// few rows, or training without an initial state or recurrent dropout.
template <typename T>
bool RecurrentStack<T>::splits_columns(const StackWorkspace<T>& ws) const {
  if (!std::is_same_v<T, float> || !ws.columns || !ws.fused || ws.bf16 || !ws.packed ||
      ws.packed->dirs.empty() || column_split_rows(*ws.packed) == 0)
    return false;
  if (ws.one_step) return ws.batch > kHeadRows;
  return ws.train && !ws.h0 && !ws.c0 && !ws.recurrent_dropped && ws.batch >= kMinPackedRows;
}

namespace {

// Thread k's units [u0, u1) of `threads` splitting `panels` panels: whole panels each.
std::pair<int, int> split_units(int panels, int threads, int k) {
  return {panels * k / threads * kernels::kPanelWidth,
          panels * (k + 1) / threads * kernels::kPanelWidth};
}

// Threads of a column split meet here after every step: h_t is whole only once each has written
// its units. Spins briefly, then yields.
class StepBarrier {
 public:
  explicit StepBarrier(int threads) : threads_(threads) {}
  void wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins)
      if (spins > 2000) std::this_thread::yield();
  }

 private:
  const int threads_;
  std::atomic<int> arrived_{0}, generation_{0};
};

}  // namespace

// The packed time loop with each step's gate columns split between the threads of ws.columns:
// thread k takes units [u0, u1) (a multiple of the panel width), computes their columns in every
// gate block, then their cell, and waits for the others before the next step. Each element is
// computed as forward_direction computes it: the same bits. Inference keeps one step's buffers;
// training every step's gates, GRU hidden products and cell states (column_split_rows).
template <typename T>
void RecurrentStack<T>::forward_direction_columns(int layer, int dir, const T* in,
                                                  StackWorkspace<T>& ws) const {
  if constexpr (std::is_same_v<T, float>) {
    const CellKind cell = spec_.cell;
    const DirectionParams& p = params_[layer * spec_.directions + dir];
    const DirectionDims dims = direction_dims(p, ws);
    const int H = dims.H, D = dims.D, GH = dims.GH, DH = dims.DH, S = dims.S, B = dims.B,
              I = dims.I;
    const int G = gate_count(cell);
    auto& W = ws.layers[layer].dir[dir];
    const kernels::PackedMatrix& w_in = ws.packed->dirs[layer * D + dir].w_in;
    const kernels::PackedMatrix& w_hh = ws.packed->dirs[layer * D + dir].w_hh;
    const std::size_t state_off = static_cast<std::size_t>(layer * D + dir) * B * H;
    const float* h_start = ws.h0 ? ws.h0 + state_off : ws.zeros.data();
    const float* c_start = ws.c0 ? ws.c0 + state_off : ws.zeros.data();
    const bool keep = !ws.one_step;  // training: every step's buffers
    const std::size_t BH = static_cast<std::size_t>(B) * H;
    const int panels = H / kernels::kPanelWidth;
    const int threads = std::min(ws.columns->size(), panels);
    StepBarrier barrier(threads);
    ws.columns->run(threads, [&](int k) {
      const auto [u0, u1] = split_units(panels, threads, k);
      const float* h_prev = h_start;
      int ld_prev = H;
      const float* c_prev = c_start;
      for (int s = 0; s < S; ++s) {
        const int t = dir == 0 ? s : S - 1 - s;
        const int Bt = ws.batch_sizes[t];
        const float* x_t = in + static_cast<std::size_t>(t) * B * I;
        float* h = ws.last_out(layer) + static_cast<std::size_t>(t) * B * DH + dir * H;
        const std::size_t at = keep ? static_cast<std::size_t>(t) : 0;
        float* gates = W.gates.data() + at * dims.BG;
        float* hid = cell == CellKind::gru ? W.hidden.data() + at * dims.BG : nullptr;
        float* c = cell == CellKind::lstm
                       ? W.cell.data() + (keep ? at : static_cast<std::size_t>(s % 2)) * BH
                       : nullptr;
        for (int q = 0; q < G; ++q) {
          const int n0 = q * H + u0, n1 = q * H + u1;
          if (cell == CellKind::gru) {
            kernels::gemm_packed_cols(Bt, x_t, I, I, nullptr, 0, w_in, false, n0, n1, gates, GH);
            kernels::gemm_packed_cols(Bt, h_prev, ld_prev, H, nullptr, 0, w_hh, false, n0, n1, hid,
                                      GH);
          } else {
            kernels::gemm_packed_cols(Bt, x_t, I, I, h_prev, ld_prev, w_in, false, n0, n1, gates,
                                      GH);
          }
        }
        if (cell == CellKind::gru)
          kernels::gru_pointwise_forward<float>(Bt, H, gates, hid, h_prev, ld_prev, h, DH, u0, u1);
        else if (cell == CellKind::lstm)
          kernels::lstm_pointwise_forward<float>(Bt, H, gates, c_prev, c, h, DH, u0, u1);
        else
          kernels::rnn_pointwise_forward<float>(cell == CellKind::rnn_relu, Bt, H, gates, h, DH, u0,
                                                u1);
        // Rows whose last step this is keep their cell state (inference overwrites the cells);
        // rows past their end: zero output and state (as forward_direction does, for this
        // thread's units).
        if (c && !keep && ws.variable && dir == 0)
          keep_ending_cells(t + 1 < S ? ws.batch_sizes[t + 1] : 0, Bt, H, c,
                            ws.cn.data() + state_off, u0, u1);
        clear_ended_rows(Bt, B, H, DH, h, c, u0, u1);
        if (c) c_prev = c;
        h_prev = h;
        ld_prev = DH;
        barrier.wait();
      }
    });
    const int last = dir == 0 ? S - 1 : 0;
    const float* h_last = ws.last_out(layer) + static_cast<std::size_t>(last) * B * DH + dir * H;
    const std::size_t c_at = keep ? static_cast<std::size_t>(last) : (S - 1) % 2;
    const float* c_last = cell == CellKind::lstm ? W.cell.data() + c_at * BH : ws.zeros.data();
    store_final_states(layer, dir, h_last, DH, c_last, ws);
  } else {
    RECUR_ASSERT(false && "column splits are float inference only");
  }
}

// Float with tied weights and a batch of rows: pack the weights once for the whole sequence and
// let each step's GEMM do the input side too, the biases starting its accumulators (LSTM / RNN:
// [x_t | h_{t-1}] x [W_ih | W_hh]^T + b_ih + b_hh in one product; GRU keeps the two products
// apart because of r * (W_hn h + b_hn)). With weights packed for inference or bf16 training
// every batch size takes this path, so a row's bits never depend on the rows beside it;
// otherwise batches under kMinPackedRows rows go to BLAS (packing for a few rows costs more than
// it saves, and training stays as the fixed-shape network computes it).
template <typename T>
void RecurrentStack<T>::forward_direction(const T* params, int layer, int dir, const T* in,
                                          StackWorkspace<T>& ws) const {
  if (ws.int8) return forward_direction_int8(layer, dir, in, ws);
  if constexpr (std::is_same_v<T, float>) {
    if (splits_columns(ws)) return forward_direction_columns(layer, dir, in, ws);
  }
  const CellKind cell = spec_.cell;
  const DirectionParams& p = params_[layer * spec_.directions + dir];
  // Plain locals, not a structured binding: lambdas below capture them (clang 14 cannot
  // capture bindings).
  const DirectionDims dims = direction_dims(p, ws);
  const int H = dims.H, D = dims.D, GH = dims.GH, DH = dims.DH, S = dims.S, B = dims.B, I = dims.I;
  const std::size_t ih_stride = dims.ih_stride, hh_stride = dims.hh_stride, BG = dims.BG;
  auto& L = ws.layers[layer];
  auto& W = L.dir[dir];
  const T* w_ih = params + p.w_ih;
  const T* w_hh = params + p.w_hh;
  T* gates = W.gates.data();

  const T* b_ih = spec_.bias ? params + p.b_ih : nullptr;
  const T* b_hh = spec_.bias ? params + p.b_hh : nullptr;

  const bool fused = ws.fused;
  const kernels::PackedMatrix* w_in_packed = nullptr;
  const kernels::PackedMatrix* w_hh_packed = nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (fused && !ws.bf16) {
      if (ws.packed) {
        w_in_packed = &ws.packed->dirs[layer * D + dir].w_in;
        w_hh_packed = &ws.packed->dirs[layer * D + dir].w_hh;
      } else if (cell == CellKind::gru) {
        kernels::pack_weights_pair(GH, w_ih, I, nullptr, 0, b_ih, nullptr, W.w_in_packed);
        kernels::pack_weights_pair(GH, w_hh, H, nullptr, 0, b_hh, nullptr, W.w_hh_packed);
      } else {
        kernels::pack_weights_pair(GH, w_ih, I, w_hh, H, b_ih, b_hh, W.w_in_packed);
      }
      if (!ws.packed) {
        w_in_packed = &W.w_in_packed;
        w_hh_packed = &W.w_hh_packed;
      }
    }
  }
  if (!fused) {
    // Input side of every timestep at once.
    if (!spec_.untied) {
      gemm<T>(false, true, S * B, GH, I, T(1), in, I, w_ih, I, T(0), gates, GH);
    } else {
      for (int t = 0; t < S; ++t)
        gemm<T>(false, true, B, GH, I, T(1), in + static_cast<std::size_t>(t) * B * I, I,
                w_ih + t * ih_stride, I, T(0), gates + t * BG, GH);
    }
    if (b_ih) {
      add_bias_rows<T>(gates, static_cast<std::size_t>(S) * B, GH, b_ih);
      if (cell != CellKind::gru) add_bias_rows<T>(gates, static_cast<std::size_t>(S) * B, GH, b_hh);
    }
  }

  // Few rows in inference: every step's input side at once (kHeadRows).
  bool head = false;
  if constexpr (std::is_same_v<T, float>) {
    head = fused && ws.one_step && !ws.bf16 && B <= kHeadRows && I <= kernels::kPackedDepth;
    if (head && cell == CellKind::gru)
      kernels::gemm_packed(S * B, in, I, *w_in_packed, false, gates, GH);
    else if (head)
      kernels::gemm_packed_head(S * B, in, I, I, *w_in_packed, gates, GH);
  }
  const std::size_t state_off = static_cast<std::size_t>(layer * D + dir) * B * H;
  const T* h_prev = ws.h0 ? ws.h0 + state_off : ws.zeros.data();
  int ld_prev = H;
  const T* c_prev = ws.c0 ? ws.c0 + state_off : ws.zeros.data();
  for (int s = 0; s < S; ++s) {
    const int t = dir == 0 ? s : S - 1 - s;
    const int Bt = ws.batch_sizes[t];  // rows running at this step
    const T* w_hh_t = spec_.untied ? w_hh + t * hh_stride : w_hh;
    const T* x_t = in + static_cast<std::size_t>(t) * B * I;
    // One step's buffers in inference (ws.one_step; cells alternate between two), every
    // step's in training.
    const std::size_t at = ws.one_step && !head ? 0 : static_cast<std::size_t>(t);
    T* g = gates + at * BG;
    T* h = ws.last_out(layer) + static_cast<std::size_t>(t) * B * DH + dir * H;
    T* c = nullptr;
    if (cell == CellKind::lstm)
      c = W.cell.data() + (ws.one_step ? static_cast<std::size_t>(s % 2) : at) * B * H;
    T* hid = cell == CellKind::gru ? W.hidden.data() + (ws.one_step ? 0 : at) * BG : nullptr;
    // What the recurrent product reads: h_{t-1}, or (recurrent dropout) h_{t-1} times the
    // sequence's mask, kept for backward. Every row is written, so dW_hh reads no stale rows.
    const T* h_in = ws.recurrent_dropped ? mask_state<T>(h_prev, ld_prev, W.h_mask.data(), t, B, H,
                                                         W.h_dropped.data())
                                         : h_prev;
    const int ld_in = ws.recurrent_dropped ? H : ld_prev;
    // The first step from a zero state: h_{-1}'s product adds nothing to any sum (each of its
    // terms is 0 * w, and acc + 0 is acc), so the packed path leaves it out, with the same bits.
    const bool zero_state = s == 0 && !ws.h0;
    if (cell == CellKind::gru) {
      if constexpr (std::is_same_v<T, float>) {
        if (ws.bf16) {
          bf16_step(ws.bf16->bf16[layer * D + dir], Bt, x_t, I, h_in, ld_in, H, g, hid, GH,
                    ws.bf16_scratch);
        } else if (fused) {
          if (!head) kernels::gemm_packed(Bt, x_t, I, *w_in_packed, false, g, GH);
          gru_hidden_packed(Bt, h_in, ld_in, zero_state, *w_hh_packed, hid, GH);
        }
      }
      if (!fused) {
        step_forward_gemm<T>(Bt, GH, H, h_in, ld_in, w_hh_t, false, hid);
        if (b_hh) add_bias_rows<T>(hid, Bt, GH, b_hh);
      }
      kernels::gru_pointwise_forward<T>(Bt, H, g, hid, h_prev, ld_prev, h, DH);
    } else {
      if constexpr (std::is_same_v<T, float>) {
        if (ws.bf16)
          bf16_step(ws.bf16->bf16[layer * D + dir], Bt, x_t, I, h_in, ld_in, H, g, nullptr, GH,
                    ws.bf16_scratch);
        else if (head && !zero_state)
          kernels::gemm_packed_tail(Bt, h_in, ld_in, I, *w_in_packed, g, GH);
        else if (fused && zero_state && I <= kernels::kPackedDepth && !head)
          kernels::gemm_packed_head(Bt, x_t, I, I, *w_in_packed, g, GH);
        else if (fused && !head)
          kernels::gemm_packed_pair(Bt, x_t, I, I, h_in, ld_in, *w_in_packed, g, GH);
      }
      if (!fused) step_forward_gemm<T>(Bt, GH, H, h_in, ld_in, w_hh_t, true, g);
      if (cell == CellKind::lstm) {
        kernels::lstm_pointwise_forward<T>(Bt, H, g, c_prev, c, h, DH);
      } else {
        kernels::rnn_pointwise_forward<T>(cell == CellKind::rnn_relu, Bt, H, g, h, DH);
      }
    }
    // Rows whose last step this is keep their cell state (one step's buffers are overwritten).
    if (c && ws.one_step && ws.variable && dir == 0)
      keep_ending_cells(t + 1 < S ? ws.batch_sizes[t + 1] : 0, Bt, H, c, ws.cn.data() + state_off,
                        0, H);
    clear_ended_rows(Bt, B, H, DH, h, c, 0, H);
    if (c) c_prev = c;
    h_prev = h;
    ld_prev = DH;
  }
  store_final_states(layer, dir, h_prev, ld_prev, c_prev, ws);
}

// Final states: each row's state after its own last step (the forward direction's last step is
// the row's length - 1; the reverse direction ends at step 0 for every row). h_prev / c_prev: the
// loop's last step.
template <typename T>
void RecurrentStack<T>::store_final_states(int layer, int dir, const T* h_prev, int ld_prev,
                                           const T* c_prev, StackWorkspace<T>& ws) const {
  const int H = spec_.hidden, D = spec_.directions, DH = D * H, B = ws.batch;
  const std::size_t state_off = static_cast<std::size_t>(layer * D + dir) * B * H;
  const auto& W = ws.layers[layer].dir[dir];
  for (int b = 0; b < B; ++b) {
    const int last = dir == 0 ? ws.lengths[b] - 1 : 0;
    const T* hb = ws.variable
                      ? ws.last_out(layer) + (static_cast<std::size_t>(last) * B + b) * DH + dir * H
                      : h_prev + b * ld_prev;
    std::memcpy(ws.hn.data() + state_off + static_cast<std::size_t>(b) * H, hb, sizeof(T) * H);
    // The reverse direction's last step is step 0, the loop's last: c_prev.
    if (spec_.cell == CellKind::lstm && !(ws.one_step && ws.variable && dir == 0)) {
      const T* cb = ws.variable && dir == 0
                        ? W.cell.data() + (static_cast<std::size_t>(last) * B + b) * H
                        : c_prev + static_cast<std::size_t>(b) * H;
      std::memcpy(ws.cn.data() + state_off + static_cast<std::size_t>(b) * H, cb, sizeof(T) * H);
    }
  }
}

template <typename T>
void RecurrentStack<T>::backward(const T* params, const T* dhn, const T* dcn, StackWorkspace<T>& ws,
                                 T* grads, bool want_dinput, T* dh0, T* dc0) const {
  RECUR_ASSERT(ws.train);  // inference keeps neither every step's gates nor gradient buffers
  const int D = spec_.directions;
  const std::size_t SB = static_cast<std::size_t>(ws.steps) * ws.batch;
  for (int l = spec_.layers - 1; l >= 0; --l) {
    auto& L = ws.layers[l];
    const T* in =
        l == 0 ? ws.input : (L.dropped ? L.input_dropped.data() : ws.layers[l - 1].out.data());
    // Gradient on this layer's input: the previous layer's dout, or the stack's dinput.
    T* din = nullptr;
    if (l > 0)
      din = ws.layers[l - 1].dout.data();
    else if (want_dinput)
      din = ws.caller_buffers ? ws.dinput_to : ws.dinput.data();
    if (spec_.untied) {
      for (int d = 0; d < D; ++d)
        backward_direction(params, l, d, in, dhn, dcn, ws, grads, din, d > 0, dh0, dc0);
    } else {
      // Every direction's steps first (each reads its half of dout), then the input gradient
      // (the same products in the same order), which may overwrite dout.
      for (int d = 0; d < D; ++d)
        backward_direction(params, l, d, in, dhn, dcn, ws, grads, nullptr, false, dh0, dc0);
      if (din)
        for (int d = 0; d < D; ++d) input_gradient(params, l, d, ws, din, d > 0);
    }
    if (l > 0 && L.dropped) {
      const int I = params_[l * D].input_size;
      for (std::size_t k = 0; k < SB * I; ++k) din[k] *= L.mask[k];
    }
  }
}

namespace {

// The biases' gradients from the gate gradients of all S*B rows, dgates [SB, GH] (and, for GRU,
// dgates_hid, the hidden half's): GRU's b_ih and b_hh see different gradients; for the other
// cells both enter the same sum, so their gradients are equal: one pass over dgates into `sums`.
// `summed`: `sums` already holds dgates' column sums (bf16: the weight gradient's packing).
template <typename T>
void add_bias_grads(bool gru, const T* dgates, const T* dgates_hid, std::size_t SB, int GH, T* sums,
                    bool summed, T* g_b_ih, T* g_b_hh) {
  if (gru) {
    if (summed) {
      for (int j = 0; j < GH; ++j) g_b_ih[j] += sums[j];
    } else {
      add_column_sums<T>(dgates, SB, GH, GH, g_b_ih);
    }
    add_column_sums<T>(dgates_hid, SB, GH, GH, g_b_hh);
    return;
  }
  if (!summed) {
    std::fill(sums, sums + GH, T(0));
    add_column_sums<T>(dgates, SB, GH, GH, sums);
  }
  for (int j = 0; j < GH; ++j) {
    g_b_ih[j] += sums[j];
    g_b_hh[j] += sums[j];
  }
}

// dW [M, N] += A^T X over K rows (A: M of the gate gradients' columns, rows lda apart): recur's
// kernel for float (it reads A in place; bf16 products when training in bf16), BLAS for double.
template <typename T>
void add_weight_grad(int M, int lda, int N, int K, const T* A, const T* X, int ldx, T* C, bool bf16,
                     AlignedVector<float>& tn_scratch, StackWorkspace<T>& ws, T* a_sums = nullptr) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16)
      kernels::gemm_tn_bf16(M, N, K, A, lda, X, ldx, C, N, ws.bf16_scratch, a_sums);
    else
      kernels::gemm_tn_accumulate(M, N, K, A, lda, X, ldx, C, N, tn_scratch, a_sums);
  } else {
    (void)tn_scratch;
    gemm<T>(true, false, M, N, K, T(1), A, lda, X, ldx, T(1), C, N);
    if (a_sums) add_column_sums<T>(A, static_cast<std::size_t>(K), M, lda, a_sums);
  }
}

// din [M, I] = dgates [M, GH] x W_ih (+= when accumulate): bf16 products when training in bf16,
// else BLAS.
template <typename T>
void input_grad(int M, int I, int GH, const T* dgates, const T* w_ih,
                const StackPacked::Bf16Direction* bf16, bool accumulate, T* din,
                StackWorkspace<T>& ws) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      kernels::gemm_bf16(M, dgates, GH, GH, nullptr, 0, bf16->w_ih_t, accumulate, din, I,
                         ws.bf16_scratch);
      return;
    }
  }
  gemm<T>(false, false, M, I, GH, T(1), dgates, GH, w_ih, I, accumulate ? T(1) : T(0), din, I);
}

// The weight gradients of tied weights over all timesteps at once: dW_ih += dgates^T x and
// dW_hh += dgates_hid^T h_prev, h_prev each step's neighbour's output (the first processed step's
// is h0, added only when ws.h0 is given), or with recurrent dropout (h_dropped) every step's
// masked h_prev as the forward kept it. Column sums added on the way, by the product that reads
// the rows anyway (add_column_sums' bits: each column's rows in order): with `ih_sums`, dgates'
// over all S*B rows (dW_ih's product); with `hh_sums`, dgates_hid's (dW_hh's product; the rows
// it skips are summed in their place in the row order). LSTM and RNN take their biases' gradient
// from one of the two, GRU its b_ih's and b_hh's from both. Only the rows [m0, m1) of dW (the
// gate columns [m0, m1) and their sums): threads may share the work (tied_param_grads).
template <typename T>
void tied_weight_grads(const DirectionDims& d, int dir, const T* in, const T* out, const T* h0,
                       const T* dgates, const T* dgates_hid, const T* h_dropped, T* gw_ih, T* gw_hh,
                       bool bf16, T* ih_sums, T* hh_sums, int m0, int m1,
                       AlignedVector<float>& tn_scratch, StackWorkspace<T>& ws) {
  const int S = d.S, B = d.B, H = d.H, I = d.I, GH = d.GH, DH = d.DH, M = m1 - m0;
  const std::size_t BG = d.BG;
  dgates += m0;
  dgates_hid += m0;
  gw_ih += static_cast<std::size_t>(m0) * I;
  gw_hh += static_cast<std::size_t>(m0) * H;
  if (ih_sums) ih_sums += m0;
  if (hh_sums) hh_sums += m0;
  // dW += dgates^T x inputs: recur's kernel for float (it reads dgates in place), BLAS for
  // double.
  auto weight_grad = [&](int N, int K, const T* A, const T* X, int ldx, T* C, T* a_sums) {
    add_weight_grad<T>(M, GH, N, K, A, X, ldx, C, bf16, tn_scratch, ws, a_sums);
  };
  weight_grad(I, S * B, dgates, in, I, gw_ih, ih_sums);
  if (h_dropped) {
    weight_grad(H, S * B, dgates_hid, h_dropped, H, gw_hh, hh_sums);
    return;
  }
  if (S > 1) {
    const T* dg_rows = dgates_hid + (dir == 0 ? BG : 0);
    const T* h_rows = out + (dir == 0 ? 0 : static_cast<std::size_t>(B) * DH) + dir * H;
    // The first processed step's rows (h_prev = h0) are not in this product: step 0's come
    // before its rows, step S - 1's (the reverse direction) after them.
    if (hh_sums && dir == 0) add_column_sums<T>(dgates_hid, B, M, GH, hh_sums);
    weight_grad(H, (S - 1) * B, dg_rows, h_rows, DH, gw_hh, hh_sums);
    if (hh_sums && dir != 0) add_column_sums<T>(dgates_hid + (S - 1) * BG, B, M, GH, hh_sums);
  } else if (hh_sums) {
    add_column_sums<T>(dgates_hid, static_cast<std::size_t>(S) * B, M, GH, hh_sums);
  }
  if (ws.h0) {
    const int first = dir == 0 ? 0 : S - 1;
    gemm<T>(true, false, M, H, B, T(1), dgates_hid + first * BG, GH, h0, H, T(1), gw_hh, H);
  }
}

// The parameter gradients of tied weights over all timesteps (tied_weight_grads) and the biases'
// (add_bias_grads). The biases' gradients come with the weight gradients': LSTM's and RNN's
// (dgates' column sums) into ws.bias_sums, from dW_hh's product (bf16: dW_ih's); GRU's straight
// into b_ih's and b_hh's gradients, from dW_ih's and dW_hh's products (bf16: b_ih's only, into
// ws.bias_sums). With `pool`, its threads each compute a range of the weight gradients' rows
// (multiples of 64 gate columns: the float weight-gradient kernel packs A 64 columns at a time,
// so each element is summed as one thread sums it).
template <typename T>
void tied_param_grads(const DirectionDims& d, const DirectionParams& p, bool gru, bool bias,
                      int dir, const T* in, const T* out, const T* h0, const T* dgates,
                      const T* dgates_hid, const T* h_dropped, T* grads, bool bf16,
                      StackWorkspace<T>& ws, ThreadPool* pool = nullptr) {
  const int GH = d.GH;
  const bool summed = bias && (bf16 || !gru);
  const bool gru_direct = bias && gru && !bf16;
  if (summed) std::fill(ws.bias_sums.begin(), ws.bias_sums.begin() + GH, T(0));
  T* ih_sums = gru_direct ? grads + p.b_ih : summed && bf16 ? ws.bias_sums.data() : nullptr;
  T* hh_sums = gru_direct ? grads + p.b_hh : summed && !bf16 ? ws.bias_sums.data() : nullptr;
  auto rows = [&](int m0, int m1, AlignedVector<float>& scratch) {
    tied_weight_grads<T>(d, dir, in, out, h0, dgates, dgates_hid, h_dropped, grads + p.w_ih,
                         grads + p.w_hh, bf16, ih_sums, hh_sums, m0, m1, scratch, ws);
  };
  if (!pool) {
    rows(0, GH, ws.tn_scratch);
  } else {
    const int blocks = GH / 64, threads = std::min(pool->size(), blocks);
    if (ws.tn_scratch_threads.size() < static_cast<std::size_t>(threads))
      ws.tn_scratch_threads.resize(static_cast<std::size_t>(threads));
    pool->run(threads, [&](int k) {
      rows(blocks * k / threads * 64, blocks * (k + 1) / threads * 64,
           ws.tn_scratch_threads[static_cast<std::size_t>(k)]);
    });
  }
  if (bias && !gru_direct) {
    add_bias_grads<T>(gru, dgates, dgates_hid, static_cast<std::size_t>(d.S) * d.B, GH,
                      ws.bias_sums.data(), summed, grads + p.b_ih, grads + p.b_hh);
  }
}

}  // namespace

// backward_direction with each step split between ws.columns' threads as the forward was
// (forward_direction_columns): thread k takes units [u0, u1), runs their cell backward for every
// row, meets the others (the step's gate gradients are whole only then), and computes its units'
// columns of dh_{t-1} = dgates W_hh; the next step's cell reads only its own units of dh. Then
// the weight gradients over all steps, each thread a range of their rows (tied_param_grads).
// Each element is summed as one thread sums it: the same bits
// as backward_direction (tests ColumnSplitTraining.*). Tied weights, no initial state, no
// recurrent dropout (splits_columns, column_split_rows).
template <typename T>
void RecurrentStack<T>::backward_direction_columns(int layer, int dir, const T* in,
                                                   StackWorkspace<T>& ws, T* grads) const {
  if constexpr (std::is_same_v<T, float>) {
    const CellKind cell = spec_.cell;
    const DirectionParams& p = params_[layer * spec_.directions + dir];
    const DirectionDims dims = direction_dims(p, ws);
    const int H = dims.H, D = dims.D, GH = dims.GH, DH = dims.DH, S = dims.S, B = dims.B;
    const std::size_t BG = dims.BG, BH = static_cast<std::size_t>(B) * H;
    auto& L = ws.layers[layer];
    auto& W = L.dir[dir];
    const float* out = ws.last_out(layer);
    const bool top = ws.caller_buffers && layer + 1 == spec_.layers;
    const float* dout = top ? ws.dout_from : L.dout.data();
    const bool last_steps = top && ws.dout_last_steps;
    const bool gru = cell == CellKind::gru;
    float* dgates = W.gates.data();
    float* dgates_hid = gru ? W.hidden.data() : dgates;
    float* dh = ws.dh.data();
    float* dc = ws.dc.data();
    const kernels::PackedMatrix& w_hh_t = ws.packed->dirs[layer * D + dir].w_hh_t;
    std::fill(dh, dh + BH, 0.0f);
    if (cell == CellKind::lstm) std::fill(dc, dc + BH, 0.0f);
    const int panels = H / kernels::kPanelWidth;
    const int threads = std::min(ws.columns->size(), panels);
    StepBarrier barrier(threads);
    ws.columns->run(threads, [&](int k) {
      const auto [u0, u1] = split_units(panels, threads, k);
      for (int s = S - 1; s >= 0; --s) {
        const int t = dir == 0 ? s : S - 1 - s;
        const int t_prev = dir == 0 ? t - 1 : t + 1;
        const int Bt = ws.batch_sizes[t];
        const bool ends_here = dir == 0 ? rows_end_at(ws.batch_sizes, t) : t == 0;
        const float* dout_t = last_steps && !ends_here
                                  ? nullptr
                                  : dout + static_cast<std::size_t>(t) * B * DH + dir * H;
        float* dg = dgates + t * BG;
        float* dgh = dgates_hid + t * BG;
        // Rows past their end: zero gate gradients (this thread's columns of every gate block).
        for (int b = Bt; b < B; ++b)
          for (int q = 0; q < GH / H; ++q) {
            float* row = dg + static_cast<std::size_t>(b) * GH + q * H;
            std::fill(row + u0, row + u1, 0.0f);
            if (!gru) continue;
            row = dgh + static_cast<std::size_t>(b) * GH + q * H;
            std::fill(row + u0, row + u1, 0.0f);
          }
        if (gru) {
          const float* h_prev =
              s > 0 ? out + static_cast<std::size_t>(t_prev) * B * DH + dir * H : ws.zeros.data();
          const int ld_prev = s > 0 ? DH : H;
          kernels::gru_pointwise_backward<float>(Bt, H, dg, dgh, h_prev, ld_prev, dh, dout_t, DH,
                                                 dg, dgh, dh, u0, u1);
        } else if (cell == CellKind::lstm) {
          const float* c = W.cell.data() + t * BH;
          const float* c_prev = s > 0 ? W.cell.data() + t_prev * BH : ws.zeros.data();
          kernels::lstm_pointwise_backward<float>(Bt, H, dg, c_prev, c, dh, dout_t, DH, dc, dg, u0,
                                                  u1);
        } else {
          const float* h = out + static_cast<std::size_t>(t) * B * DH + dir * H;
          kernels::rnn_pointwise_backward<float>(cell == CellKind::rnn_relu, Bt, H, h, DH, dh,
                                                 dout_t, DH, dg, u0, u1);
        }
        barrier.wait();
        // dh_{t-1}: the product (GRU: added to the part that bypasses W_hh, which its cell wrote).
        if (s > 0)
          kernels::gemm_packed_cols(Bt, dgh, GH, GH, nullptr, 0, w_hh_t, gru, u0, u1, dh, H);
      }
    });
    // The weight gradients, each thread a range of their rows.
    tied_param_grads<float>(dims, p, gru, spec_.bias, dir, in, out, ws.zeros.data(), dgates,
                            dgates_hid, nullptr, grads, false, ws, ws.columns);
  } else {
    RECUR_ASSERT(false && "column splits are float only");
  }
}

template <typename T>
void RecurrentStack<T>::backward_direction(const T* params, int layer, int dir, const T* in,
                                           const T* dhn, const T* dcn, StackWorkspace<T>& ws,
                                           T* grads, T* din, bool din_accumulate, T* dh0,
                                           T* dc0) const {
  if (ws.int8) return forward_direction_int8(layer, dir, in, ws);
  if (!dhn && !dcn && !dh0 && !dc0 && !din && splits_columns(ws))
    return backward_direction_columns(layer, dir, in, ws, grads);
  const CellKind cell = spec_.cell;
  const DirectionParams& p = params_[layer * spec_.directions + dir];
  const DirectionDims dims = direction_dims(p, ws);
  const int H = dims.H, D = dims.D, GH = dims.GH, DH = dims.DH, S = dims.S, B = dims.B;
  const std::size_t hh_stride = dims.hh_stride, BG = dims.BG;
  auto& L = ws.layers[layer];
  auto& W = L.dir[dir];
  const T* w_ih = params + p.w_ih;
  const T* w_hh = params + p.w_hh;
  const std::size_t BH = static_cast<std::size_t>(B) * H;
  const std::size_t state_off = static_cast<std::size_t>(layer * D + dir) * BH;
  const T* h0 = ws.h0 ? ws.h0 + state_off : ws.zeros.data();
  const T* c0 = ws.c0 ? ws.c0 + state_off : ws.zeros.data();
  const T* out = ws.last_out(layer);
  const bool top = ws.caller_buffers && layer + 1 == spec_.layers;
  const T* dout = top ? ws.dout_from : L.dout.data();
  // Only the last steps carry an output gradient (the layer after the stack pools the last
  // outputs): the forward half's at the steps where rows end, the reverse half's at step 0.
  const bool last_steps = top && ws.dout_last_steps;
  // Gate gradients overwrite the gates (and GRU's hidden-side gradients its hidden products)
  // step by step: step t's activations are read only to make step t's gradients, element by
  // element before it is written, and nothing reads them after. Half the training memory of
  // a recurrent layer.
  T* dgates = W.gates.data();
  T* dgates_hid = cell == CellKind::gru ? W.hidden.data() : dgates;
  T* dh = ws.dh.data();
  T* dc = ws.dc.data();
  T* dh_masked = ws.dh_masked.data();
  const T* mask = ws.recurrent_dropped ? W.h_mask.data() : nullptr;  // recurrent dropout
  const kernels::PackedMatrix* packed = nullptr;
  const StackPacked::Bf16Direction* bf16 = ws.bf16 ? &ws.bf16->bf16[layer * D + dir] : nullptr;
  if constexpr (std::is_same_v<T, float>) {
    if (!spec_.untied && B >= kMinPackedRows && !bf16) {
      if (ws.packed) {
        packed = &ws.packed->dirs[layer * D + dir].w_hh_t;
      } else {
        kernels::pack_weights(w_hh, H, GH, true, W.w_hh_packed_t);
        packed = &W.w_hh_packed_t;
      }
    }
  }
  if (dhn)
    std::memcpy(dh, dhn + state_off, sizeof(T) * BH);
  else
    std::fill(dh, dh + BH, T(0));
  if (cell == CellKind::lstm) {
    if (dcn)
      std::memcpy(dc, dcn + state_off, sizeof(T) * BH);
    else
      std::fill(dc, dc + BH, T(0));
  }

  for (int s = S - 1; s >= 0; --s) {
    const int t = dir == 0 ? s : S - 1 - s;
    const int t_prev = dir == 0 ? t - 1 : t + 1;  // the step processed before t (if s > 0)
    const T* h_prev = s > 0 ? out + static_cast<std::size_t>(t_prev) * B * DH + dir * H : h0;
    const int ld_prev = s > 0 ? DH : H;
    const T* w_hh_t = spec_.untied ? w_hh + t * hh_stride : w_hh;
    // Rows [Bt, B) are past their end at this step: their state gradients wait untouched in
    // dh / dc for the step they end at, and their gate gradients are zero here, so the weight
    // gradients over all steps below see nothing of them.
    const int Bt = ws.batch_sizes[t];
    const bool ends_here = dir == 0 ? rows_end_at(ws.batch_sizes, t) : t == 0;
    const T* dout_t =
        last_steps && !ends_here ? nullptr : dout + static_cast<std::size_t>(t) * B * DH + dir * H;
    // The last step processed here (the sequence's first) passes dh on only to dh0.
    const bool want_dh = s > 0 || dh0 != nullptr;
    T* dg = dgates + t * BG;
    if (Bt < B) {
      std::fill(dg + static_cast<std::size_t>(Bt) * GH, dg + BG, T(0));
      if (cell == CellKind::gru)
        std::fill(dgates_hid + t * BG + static_cast<std::size_t>(Bt) * GH,
                  dgates_hid + (t + 1) * BG, T(0));
    }
    switch (cell) {
      case CellKind::lstm: {
        const T* c = W.cell.data() + t * BH;
        const T* c_prev = s > 0 ? W.cell.data() + t_prev * BH : c0;
        kernels::lstm_pointwise_backward<T>(Bt, H, dg, c_prev, c, dh, dout_t, DH, dc, dg);
        if (want_dh)
          step_backward_gemm<T>(Bt, GH, H, dg, w_hh_t, packed, false, dh, bf16, ws.bf16_scratch);
        if (want_dh && mask) kernels::mul_rows<T>(Bt, H, dh, H, mask, dh);
        break;
      }
      case CellKind::gru: {
        T* dgh = dgates_hid + t * BG;
        kernels::gru_pointwise_backward<T>(Bt, H, dg, dgh, h_prev, ld_prev, dh, dout_t, DH, dg, dgh,
                                           dh);
        if (want_dh && mask) {
          // The product read the masked state: its gradient is masked before it joins the
          // direct path's.
          step_backward_gemm<T>(Bt, GH, H, dgh, w_hh_t, packed, false, dh_masked, bf16,
                                ws.bf16_scratch);
          kernels::mul_add_rows<T>(Bt, H, dh_masked, mask, dh);
        } else if (want_dh) {
          step_backward_gemm<T>(Bt, GH, H, dgh, w_hh_t, packed, true, dh, bf16, ws.bf16_scratch);
        }
        break;
      }
      default: {
        const T* h = out + static_cast<std::size_t>(t) * B * DH + dir * H;
        kernels::rnn_pointwise_backward<T>(cell == CellKind::rnn_relu, Bt, H, h, DH, dh, dout_t, DH,
                                           dg);
        if (want_dh)
          step_backward_gemm<T>(Bt, GH, H, dg, w_hh_t, packed, false, dh, bf16, ws.bf16_scratch);
        if (want_dh && mask) kernels::mul_rows<T>(Bt, H, dh, H, mask, dh);
        break;
      }
    }
  }
  if (dh0) std::memcpy(dh0 + state_off, dh, sizeof(T) * BH);
  if (dc0 && cell == CellKind::lstm) std::memcpy(dc0 + state_off, dc, sizeof(T) * BH);

  // Parameter gradients over all timesteps at once.
  const bool gru = cell == CellKind::gru;
  if (!spec_.untied) {
    tied_param_grads<T>(dims, p, gru, spec_.bias, dir, in, out, h0, dgates, dgates_hid,
                        mask ? W.h_dropped.data() : nullptr, grads, bf16 != nullptr, ws);
    RECUR_ASSERT(!din);  // tied weights: input_gradient, once every direction is done
    return;
  }
  untied_weight_grads<T>(dims, dir, in, out, h0, dgates, dgates_hid, w_ih, grads + p.w_ih,
                         grads + p.w_hh, din, din_accumulate);
  if (spec_.bias) {
    add_bias_grads<T>(gru, dgates, dgates_hid, static_cast<std::size_t>(S) * B, GH,
                      ws.bias_sums.data(), false, grads + p.b_ih, grads + p.b_hh);
  }
}

template <typename T>
void RecurrentStack<T>::input_gradient(const T* params, int layer, int dir, StackWorkspace<T>& ws,
                                       T* din, bool accumulate) const {
  const DirectionParams& p = params_[layer * spec_.directions + dir];
  const DirectionDims dims = direction_dims(p, ws);
  const StackPacked::Bf16Direction* bf16 =
      ws.bf16 ? &ws.bf16->bf16[layer * spec_.directions + dir] : nullptr;
  input_grad<T>(dims.S * dims.B, dims.I, dims.GH, ws.layers[layer].dir[dir].gates.data(),
                params + p.w_ih, bf16, accumulate, din, ws);
}

template class RecurrentStack<float>;
template class RecurrentStack<double>;

}  // namespace recur::nn
