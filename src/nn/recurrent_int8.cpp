// The int8 inference path of RecurrentStack (nn/recurrent.hpp): weights quantized once per output
// row (prepare_int8), then a time loop in which each step's products run on int8
// (kernels/int8_gemm.hpp) and each cell writes h_t both as fp32 (the output) and quantized for
// the next step's product (kernels/int8_cell.hpp).
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/int8_cell.hpp"
#include "kernels/int8_gemm.hpp"
#include "nn/recurrent.hpp"
#include "recur/error.hpp"

namespace recur::nn {

template <typename T>
bool RecurrentStack<T>::prepare_int8(const T* params, StackPacked& out) const {
  if constexpr (std::is_same_v<T, float>) {
    bool fits = !spec_.untied && spec_.hidden <= kernels::kMaxInt8Depth;
    for (const DirectionParams& p : params_) fits = fits && p.input_size <= kernels::kMaxInt8Depth;
    if (fits) {
      const int GH = gate_count(spec_.cell) * spec_.hidden, H = spec_.hidden;
      const kernels::Int8Kernel kernel = kernels::int8_kernel();
      out.dirs.clear();
      out.every_batch = true;
      out.int8.resize(params_.size());
      for (std::size_t k = 0; k < params_.size(); ++k) {
        const DirectionParams& p = params_[k];
        const T* b_ih = spec_.bias ? params + p.b_ih : nullptr;
        const T* b_hh = spec_.bias ? params + p.b_hh : nullptr;
        const bool gru = spec_.cell == CellKind::gru;
        auto& d = out.int8[k];
        kernels::quantize_weights(params + p.w_ih, GH, p.input_size, p.input_size, b_ih,
                                  gru ? nullptr : b_hh, kernel, d.w_ih);
        kernels::quantize_weights(params + p.w_hh, GH, H, H, gru ? b_hh : nullptr, nullptr, kernel,
                                  d.w_hh);
        if (k < static_cast<std::size_t>(spec_.directions)) {
          d.w_pixels = d.w_ih;
          std::fill(d.w_pixels.compensation.begin(), d.w_pixels.compensation.end(), 0);
        } else {
          d.w_pixels = {};
        }
      }
      return true;
    }
  }
  prepare(params, out, false);
  out.int8.clear();
  return false;
}

// The time loop of forward_direction for int8 weights. The same semantics (packed sequences,
// h0 / c0, final states, rows past their end zero); what differs: every step's x_t is quantized
// before the loop, and h_{t-1} is quantized by the cell of the step before (the first step's by
// quantize_rows: the same bytes).
template <typename T>
void RecurrentStack<T>::forward_direction_int8(int layer, int dir, const T* in,
                                               StackWorkspace<T>& ws) const {
  if constexpr (std::is_same_v<T, float>) {
    const CellKind cell = spec_.cell;
    const int H = spec_.hidden, D = spec_.directions, GH = gate_count(cell) * H, DH = D * H;
    const int S = ws.steps, B = ws.batch, I = params_[layer * D + dir].input_size;
    const StackPacked::Int8Direction& q = ws.packed->int8[layer * D + dir];
    auto& W = ws.layers[layer].dir[dir];
    const int ldx = kernels::quantized_row_bytes(I), ldh = kernels::quantized_row_bytes(H);
    // Pixel bytes are already quantized: p with the scale 1 / 255 and the zero point 0 (w_pixels,
    // no compensation), padded with zeros (p = 0 adds nothing).
    const bool pixels = layer == 0 && ws.pixels != nullptr;
    const kernels::QuantizedMatrix& w_x = pixels ? q.w_pixels : q.w_ih;
    // Both directions of a layer read the same input: the forward one quantizes it.
    // Rows of a multiple of 4 bytes (the rows view of 28 pixels) are read where they are.
    const std::uint8_t* q_in = pixels && ldx == I ? ws.pixels : ws.q_in.data();
    if (dir == 0 && pixels) {
      const std::size_t rows = static_cast<std::size_t>(S) * B;
      if (ldx != I)
        for (std::size_t r = 0; r < rows; ++r) {
          std::memcpy(ws.q_in.data() + r * ldx, ws.pixels + r * I, static_cast<std::size_t>(I));
          std::memset(ws.q_in.data() + r * ldx + I, 0, static_cast<std::size_t>(ldx - I));
        }
      std::fill(ws.s_in.data(), ws.s_in.data() + rows, 1.0f / 255.0f);
    } else if (dir == 0) {
      kernels::quantize_rows(S * B, in, I, I, ws.q_in.data(), ldx, ws.s_in.data());
    }
    const std::size_t state_off = static_cast<std::size_t>(layer * D + dir) * B * H;
    const float* h_prev = ws.h0 ? ws.h0 + state_off : ws.zeros.data();
    int ld_prev = H;
    const float* c_prev = ws.c0 ? ws.c0 + state_off : ws.zeros.data();
    std::uint8_t* const qh[2] = {ws.q_h.data(), ws.q_h.data() + static_cast<std::size_t>(B) * ldh};
    float* const sh[2] = {ws.s_h.data(), ws.s_h.data() + B};
    kernels::quantize_rows(B, h_prev, ld_prev, H, qh[0], ldh, sh[0]);
    float* g = W.gates.data();
    for (int s = 0; s < S; ++s) {
      const int t = dir == 0 ? s : S - 1 - s;
      const int Bt = ws.batch_sizes[t];  // rows running at this step
      const std::uint8_t* qx = q_in + static_cast<std::size_t>(t) * B * ldx;
      const float* sx = ws.s_in.data() + static_cast<std::size_t>(t) * B;
      const std::uint8_t* qp = qh[s % 2];
      const float* sp = sh[s % 2];
      // The last step's h_t is not read by another product.
      std::uint8_t* qn = s + 1 < S ? qh[(s + 1) % 2] : nullptr;
      float* sn = s + 1 < S ? sh[(s + 1) % 2] : nullptr;
      float* h = ws.last_out(layer) + static_cast<std::size_t>(t) * B * DH + dir * H;
      float* c = nullptr;
      if (cell == CellKind::gru) {
        float* hid = W.hidden.data();
        kernels::int8_gemm(Bt, qx, ldx, sx, w_x, false, g, GH);
        kernels::int8_gemm(Bt, qp, ldh, sp, q.w_hh, false, hid, GH);
        kernels::gru_int8_cell(Bt, H, g, hid, h_prev, ld_prev, h, DH, qn, ldh, sn);
      } else {
        kernels::int8_gemm_pair(Bt, qx, ldx, sx, w_x, qp, ldh, sp, q.w_hh, g, GH);
        if (cell == CellKind::lstm) {
          c = W.cell.data() + static_cast<std::size_t>(s % 2) * B * H;
          kernels::lstm_int8_cell(Bt, H, g, c_prev, c, h, DH, qn, ldh, sn);
        } else {
          kernels::rnn_int8_cell(cell == CellKind::rnn_relu, Bt, H, g, h, DH, qn, ldh, sn);
        }
      }
      // Rows whose last step this is keep their cell state (the two cell buffers alternate).
      if (c && ws.variable && dir == 0)
        keep_ending_cells(t + 1 < S ? ws.batch_sizes[t + 1] : 0, Bt, H, c, ws.cn.data() + state_off,
                          0, H);
      // Rows past their end: zero output and state, quantized too (the zero point, 128).
      clear_ended_rows(Bt, B, H, DH, h, c, 0, H);
      for (int b = Bt; qn && b < B; ++b) {
        std::memset(qn + static_cast<std::size_t>(b) * ldh, 128, ldh);
        sn[b] = 0.0f;
      }
      if (c) c_prev = c;
      h_prev = h;
      ld_prev = DH;
    }
    store_final_states(layer, dir, h_prev, ld_prev, c_prev, ws);
  } else {
    RECUR_ASSERT(!ws.int8);  // int8 weights are float
  }
}

template bool RecurrentStack<float>::prepare_int8(const float*, StackPacked&) const;
template bool RecurrentStack<double>::prepare_int8(const double*, StackPacked&) const;
template void RecurrentStack<float>::forward_direction_int8(int, int, const float*,
                                                            StackWorkspace<float>&) const;
template void RecurrentStack<double>::forward_direction_int8(int, int, const double*,
                                                             StackWorkspace<double>&) const;

}  // namespace recur::nn
