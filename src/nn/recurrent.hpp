// The recurrent stack: `layers` layers of one cell type, each uni- or bidirectional, with
// dropout between layers. For float batches the weights are packed once per sequence and each
// step's GEMM does the input side, the recurrent side and the biases at once (kernels/
// packed_gemm.hpp); otherwise (double, one sequence, untied weights) the input projection of all
// timesteps is one BLAS GEMM ([S*B, I] x [I, G*H]) and the time loop does h_{t-1} x W_hh^T. Each
// step ends with the fused elementwise pass, which keeps what backward needs. Backward loops over
// time for the state gradient only; dW_ih, dW_hh and the biases are single GEMMs / reductions over
// all timesteps.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/aligned.hpp"
#include "core/thread_pool.hpp"
#include "kernels/bf16_gemm.hpp"
#include "kernels/int8_gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "recur/cell.hpp"
#include "recur/params.hpp"
#include "recur/rng.hpp"

namespace recur {
class ThreadPool;  // core/thread_pool.hpp
}

namespace recur::nn {

// True when some row's last step is t, for rows sorted longest first that run at step t as
// batch_sizes [steps] says (SeqInfo::batch_sizes). These steps and step 0 are the ones a
// gradient that only the last outputs carry is written at (StackWorkspace::dout_last_steps).
inline bool rows_end_at(const std::vector<int>& batch_sizes, int t) {
  return t + 1 == static_cast<int>(batch_sizes.size()) || batch_sizes[t + 1] < batch_sizes[t];
}

struct StackSpec {
  CellKind cell = CellKind::lstm;
  int input_size = 0;
  int hidden = 0;
  int layers = 1;
  int directions = 1;
  int steps = 0;        // used by the untied variant
  bool untied = false;  // one W_ih and W_hh per timestep
  bool bias = true;
  double dropout = 0.0;  // on the input of layers 1.., training only
  // On h_{t-1} where it enters the recurrent product, training only: one mask per sequence,
  // layer and direction, the same at every step (variational dropout). Tied weights only.
  double recurrent_dropout = 0.0;
};

// Offsets of one (layer, direction)'s tensors in the parameter arena.
struct DirectionDims;
struct DirectionParams {
  std::size_t w_ih = 0, w_hh = 0, b_ih = 0, b_hh = 0;
  int input_size = 0;
};

// Weights packed once (per optimizer step, shared by all threads; or once for inference) for the
// float fast path: per (layer, direction) what forward_direction / backward_direction would pack.
struct StackPacked {
  struct Direction {
    kernels::PackedMatrix w_in, w_hh, w_hh_t;
  };
  std::vector<Direction> dirs;  // [layer * D + dir]
  // int8 inference (prepare_int8): per (layer, direction) W_ih with the biases of the input side
  // (LSTM, RNN: b_ih + b_hh; GRU: b_ih) and W_hh (GRU: with b_hh), quantized per output row.
  // When present, forward runs on these (nn/recurrent_int8.cpp): x_t and h_{t-1} quantized per
  // row, every step's x_t before the time loop, h_t by the cell that writes it.
  // The first layer's W_ih also in a second form, w_pixels, for input given as pixel bytes: the
  // same weights, scales and bias with no compensation, since a byte p is x = p / 255 quantized
  // with the zero point 0 and the scale 1 / 255 (exact: no rounding of x at all), not x_q + 128.
  struct Int8Direction {
    kernels::QuantizedMatrix w_ih, w_hh, w_pixels;
  };
  std::vector<Int8Direction> int8;  // [layer * D + dir], or empty
  // bf16 training (prepare_bf16): per (layer, direction) the step products' weights, forward
  // ([W_ih | W_hh] with the biases; GRU: W_ih, b_ih and W_hh, b_hh) and backward (W_hh and W_ih
  // read as [G*H, H] and [G*H, I]), rounded to bf16 (kernels/bf16_gemm.hpp). When present, every
  // batch's step products, forward and backward, its weight gradients and its input gradient run
  // in bf16 with fp32 accumulation; the weights themselves stay fp32.
  struct Bf16Direction {
    kernels::PackedBf16Matrix w_in, w_hh, w_hh_t, w_ih_t;
  };
  std::vector<Bf16Direction> bf16;  // [layer * D + dir], or empty
  // Packed for inference: every batch size runs through the packed kernel (a row's bits then
  // never depend on its batch). Packed for training, batches under 8 rows keep BLAS, as the
  // fixed-shape network the trainer is held to does.
  bool every_batch = false;
};

template <typename T>
struct StackWorkspace {
  struct Direction {
    AlignedVector<T> gates;   // [S, B, G*H] pre-activations, activations, then (backward) their
                              // gradients
    AlignedVector<T> cell;    // [S, B, H] LSTM cell states
    AlignedVector<T> hidden;  // [S, B, G*H] GRU: W_hh h_prev + b_hh
    kernels::PackedMatrix w_in_packed;    // float: [W_ih | W_hh] and biases (GRU: W_ih, b_ih)
    kernels::PackedMatrix w_hh_packed;    // float GRU: W_hh and b_hh for the forward step
    kernels::PackedMatrix w_hh_packed_t;  // float: W_hh packed for the backward step
    // Recurrent dropout (training): the mask [B, H] (0 or 1/keep) and every step's masked
    // h_{t-1} [S, B, H], which the recurrent product read and dW_hh is made from.
    AlignedVector<T> h_mask, h_dropped;
  };
  struct Layer {
    AlignedVector<T> input_dropped;  // [S, B, I] this layer's input after dropout (layers > 0)
    AlignedVector<T> mask;           // [S, B, I] dropout scale per element
    bool dropped = false;
    AlignedVector<T> out;   // [S, B, D*H]
    AlignedVector<T> dout;  // [S, B, D*H] gradient on out
    Direction dir[2];
  };
  int steps = 0, batch = 0;
  std::vector<Layer> layers;
  AlignedVector<T> hn, cn;          // [L*D, B, H]
  AlignedVector<T> zeros;           // [B, H]
  AlignedVector<T> dh, dc;          // [B, H] running state gradients
  AlignedVector<T> dh_masked;       // [B, H] GRU, recurrent dropout: dh before its mask
  AlignedVector<T> dinput;          // [S, B, I0] gradient on the stack's input
  AlignedVector<T> bias_sums;       // [G*H] column sums of dgates
  AlignedVector<float> tn_scratch;  // float: packing space of the weight-gradient kernel
  std::vector<AlignedVector<float>> tn_scratch_threads;  // the same for each column-split thread
  AlignedVector<std::uint16_t> bf16_scratch;             // bf16: operands rounded for the products
  std::vector<int> batch_sizes;    // [S] rows running at step t (packed sequences)
  std::vector<int> lengths;        // [B] each row's length
  bool variable = false;           // some row is shorter than S
  bool recurrent_dropped = false;  // the last forward masked h_{t-1} (StackSpec)
  // The last forward ran for training: every step's gates and cell states are kept for backward
  // and the gradient buffers exist. Inference on the packed path keeps one step of them.
  bool train = false;
  bool fused = false;     // float, tied weights, packed kernel (see forward_direction)
  bool one_step = false;  // fused inference: gates, GRU hidden products and cells of one step
  const StackPacked* packed = nullptr;   // shared packed weights, or null
  const StackPacked* bf16 = nullptr;     // training on packed->bf16, or null
  bool int8 = false;                     // float inference on packed->int8
  AlignedVector<std::uint8_t> q_in;      // int8: every step's x_t [S, B], quantized
  AlignedVector<std::uint8_t> q_h;       // int8: h_{t-1} and h_t [2, B], quantized
  AlignedVector<float> s_in, s_h;        // int8: their scales per row
  const std::uint8_t* pixels = nullptr;  // int8: the first layer's input as bytes, this forward
  ThreadPool* columns = nullptr;         // float: threads splitting the columns (splits_columns)
  // The caller owns the last layer's out and dout and the stack's dinput (the model's own
  // activation and gradient buffers: each held once, not copied): it sets out_to before forward
  // and backward, dout_from and dinput_to (null when not wanted) before backward.
  bool caller_buffers = false;
  T* out_to = nullptr;           // [S, B, D*H]
  const T* dout_from = nullptr;  // [S, B, D*H]
  // dout_from holds only the last steps' gradients (LayerContext::last_steps_gradient): a row's
  // at its own last step in the forward half, at step 0 in the reverse half; no other step is
  // read.
  bool dout_last_steps = false;
  T* dinput_to = nullptr;  // [S, B, I0]
  T* last_out(int l) {
    return caller_buffers && l + 1 == static_cast<int>(layers.size()) ? out_to
                                                                      : layers[l].out.data();
  }
  const T* input = nullptr;  // the forward's input, h0, c0 (kept for backward)
  const T* h0 = nullptr;
  const T* c0 = nullptr;
};

template <typename T>
class RecurrentStack {
 public:
  // Registers the stack's tensors under `prefix` (e.g. "rnn.") in PyTorch's naming.
  RecurrentStack(const StackSpec& spec, ParamLayout& layout, const std::string& prefix);

  const StackSpec& spec() const { return spec_; }
  int output_size() const { return spec_.hidden * spec_.directions; }
  const DirectionParams& direction_params(int layer, int dir) const {
    return params_[layer * spec_.directions + dir];
  }

  // x [S, B, input_size]; h0, c0 [L*D, B, H] or null. Output in ws.layers.back().out, final
  // states in ws.hn / ws.cn (each row's state after its own last step).
  // batch_sizes [S] (null: all B rows every step): rows sorted by length, longest first, and
  // step t runs on rows [0, batch_sizes[t]) only, as PyTorch's packed sequences do; outputs of
  // padded steps are zero, the reverse direction starts at each row's own last step. h0 and c0
  // must be null when some row is shorter than S. `packed` (float, from prepare()) replaces the
  // packing each call would do. `pixels` (inference on int8 weights only, reads_pixels): the
  // input as bytes [S, B, input_size] with x = p / 255, in place of x (then null).
  void forward(const T* params, const T* x, int S, int B, const T* h0, const T* c0, bool train,
               Rng* rng, StackWorkspace<T>& ws, const int* batch_sizes = nullptr,
               const StackPacked* packed = nullptr, const std::uint8_t* pixels = nullptr) const;
  // True when forward on `packed` takes pixel bytes: int8 weights (StackPacked::Int8Direction).
  bool reads_pixels(const StackPacked& packed) const { return !packed.int8.empty(); }
  // Float on `packed` with a pool in ws.columns splits each step's gate columns (and the cell's
  // units) between the pool's threads, a barrier a step, when this returns more than the rows
  // per thread: weights too large for a core's L2 cache, read by each thread in part for every
  // row instead of in whole for its share of the rows. Inference packing: every cell; training
  // packing: without recurrent dropout (forward and backward split). 0: never.
  int column_split_rows(const StackPacked& packed) const;

  // Packs every direction's weights for the float fast path (does nothing for double or untied);
  // the backward step's only `for_training`. With `pool`, its threads share the packing (the
  // same bytes).
  void prepare(const T* params, StackPacked& out, bool for_training = true,
               ThreadPool* pool = nullptr) const;
  // Quantizes every direction's weights for int8 inference (kernels/int8_gemm.hpp) with the
  // kernel this CPU runs; float with tied weights only. Returns false (and packs for fp32
  // inference instead) for double, untied weights or an inner dimension beyond the kernels'.
  bool prepare_int8(const T* params, StackPacked& out) const;
  // Rounds every direction's weights to bf16 for bf16 training (StackPacked::bf16); float with
  // tied weights only. Returns false (and packs for fp32 training instead) otherwise.
  bool prepare_bf16(const T* params, StackPacked& out) const;

  // Needs a forward with train = true on ws, and ws.layers.back().dout filled with the gradient on
  // the output sequence (zero at padded steps). dhn, dcn [L*D, B, H] may be null. Adds into grads;
  // writes ws.dinput when want_dinput, and dh0 / dc0 when non-null. With tied weights, a layer's
  // input gradient is made after every direction has read its gradient on the output, so the
  // caller's dinput_to may be its dout_from (backward_in_place).
  void backward(const T* params, const T* dhn, const T* dcn, StackWorkspace<T>& ws, T* grads,
                bool want_dinput, T* dh0, T* dc0) const;
  // The stack's backward may write its input gradient over its output gradient (tied weights).
  bool backward_in_place() const { return !spec_.untied; }

 private:
  DirectionDims direction_dims(const DirectionParams& p, const StackWorkspace<T>& ws) const;
  void reserve(StackWorkspace<T>& ws, int S, int B) const;
  void forward_direction(const T* params, int layer, int dir, const T* in,
                         StackWorkspace<T>& ws) const;
  // forward_direction on ws.packed->int8 (nn/recurrent_int8.cpp).
  void forward_direction_int8(int layer, int dir, const T* in, StackWorkspace<T>& ws) const;
  // forward_direction's time loop with the columns split between ws.columns' threads.
  void forward_direction_columns(int layer, int dir, const T* in, StackWorkspace<T>& ws) const;
  bool splits_columns(const StackWorkspace<T>& ws) const;
  // backward_direction's time loop and weight gradients with the columns split.
  void backward_direction_columns(int layer, int dir, const T* in, StackWorkspace<T>& ws,
                                  T* grads) const;
  void store_final_states(int layer, int dir, const T* h_prev, int ld_prev, const T* c_prev,
                          StackWorkspace<T>& ws) const;
  // din (untied weights only; tied ones take input_gradient after every direction): the
  // gradient on this layer's input, written or (din_accumulate) added to.
  void backward_direction(const T* params, int layer, int dir, const T* in, const T* dhn,
                          const T* dcn, StackWorkspace<T>& ws, T* grads, T* din,
                          bool din_accumulate, T* dh0, T* dc0) const;
  // din [S*B, I] = (or += when accumulate) this direction's gate gradients x W_ih (tied weights).
  void input_gradient(const T* params, int layer, int dir, StackWorkspace<T>& ws, T* din,
                      bool accumulate) const;

  StackSpec spec_;
  std::vector<DirectionParams> params_;  // [layer * D + dir]
};

// The time loops' bookkeeping for rows of different lengths (fp32, column-split and int8), on
// units [j0, j1) of each row: a thread's share of a column-split step, or all H.

// Inference on one step's buffers: rows [next, Bt) end at this step and keep their cell state c
// in cn (both B x H).
template <typename T>
void keep_ending_cells(int next, int Bt, int H, const T* c, T* cn, int j0, int j1) {
  for (int b = next; b < Bt; ++b)
    std::copy(c + static_cast<std::size_t>(b) * H + j0, c + static_cast<std::size_t>(b) * H + j1,
              cn + static_cast<std::size_t>(b) * H + j0);
}
// Rows [Bt, B) are past their end at this step: their output h (rows DH apart) and cell state c
// (LSTM, else null) are zero, which is also where the reverse direction starts them when it
// reaches their last step.
template <typename T>
void clear_ended_rows(int Bt, int B, int H, int DH, T* h, T* c, int j0, int j1) {
  for (int b = Bt; b < B; ++b) {
    std::fill(h + static_cast<std::size_t>(b) * DH + j0, h + static_cast<std::size_t>(b) * DH + j1,
              T(0));
    if (c)
      std::fill(c + static_cast<std::size_t>(b) * H + j0, c + static_cast<std::size_t>(b) * H + j1,
                T(0));
  }
}

}  // namespace recur::nn
