// The cells of int8 inference: one step's elementwise work after the step's int8 products, which
// also writes h_t quantized for the next step's product (the bytes and scales quantize_rows would
// give for h_t, kernels/int8_rows.hpp), in the same pass. Inference only: the gate activations
// are not kept. B = batch, H = hidden size; "ld" arguments are row strides; q (row stride ldq,
// quantized_row_bytes(H) bytes a row) and scales [B] may both be null: the last step's h_t is
// not quantized.
//
// The AVX-512 copy computes sigmoid and tanh from kernels/activations.hpp's exponential reduction
// with a fitted degree-5 polynomial (relative error 2.3e-7), a plain division for the reciprocal
// (vdivps: faster here on Zen 5 than the 14-bit estimate and a Newton step, and exact), and in
// the LSTM one reciprocal for each product sigmoid(i) tanh(g), sigmoid(o) tanh(c); within 2e-6 of
// the fp32 cells. The other copies use activations.hpp's functions. The fp32 cells
// (kernels/cell.hpp) are not changed by any of this.
#pragma once

#include <cstdint>

namespace recur::kernels {

// LSTM: gates [B,4H] the summed pre-activations (i,f,g,o), read only. c_prev [B,H] -> c [B,H];
// h [B,H] (ldh) = o * tanh(c).
void lstm_int8_cell(int B, int H, const float* gates, const float* c_prev, float* c, float* h,
                    int ldh, std::uint8_t* q, int ldq, float* scales);

// GRU: gates [B,3H] the input side W_i x + b_i (r,z,n), hidden [B,3H] = W_h h_prev + b_h, both
// read only. h_prev [B,H] (ld_prev) -> h [B,H] (ldh).
void gru_int8_cell(int B, int H, const float* gates, const float* hidden, const float* h_prev,
                   int ld_prev, float* h, int ldh, std::uint8_t* q, int ldq, float* scales);

// RNN: pre [B,H] the summed pre-activations -> h [B,H] (ldh), tanh or relu.
void rnn_int8_cell(bool relu, int B, int H, const float* pre, float* h, int ldh, std::uint8_t* q,
                   int ldq, float* scales);

}  // namespace recur::kernels
