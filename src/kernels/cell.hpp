// Fused per-step elementwise work of each cell (the part after the step's GEMM), forward and
// backward, on raw pointers. B = batch, H = hidden size; "ld" arguments are row strides. The
// kernels, forward and backward, compute units [j0, j1) only when given
// (j1 >= 0; default all H): threads that split a step's units between them (nn/recurrent.cpp);
// each unit's bits are the same.
// Activation gradients are assigned (=); nothing here touches parameter gradients.
#pragma once

namespace recur::kernels {

// RNN: pre [B,H] = W_ih x + b_ih + W_hh h_prev + b_hh. Writes h [B,H] (row stride ldh).
template <typename T>
void rnn_pointwise_forward(bool relu, int B, int H, const T* pre, T* h, int ldh, int j0 = 0,
                           int j1 = -1);

// The backward kernels take the gradient on the step's output h in two parts and add them: dh
// [B,H], what reaches h through the next step, and dout [B,H] (row stride ld_out), the layer's
// output gradient at this step, or null where the step has none (a separate pass adding them cost
// about 1% of a training step).

// RNN backward: h [B,H] (ldh) the step's output, dh + dout the total gradient on it.
// Writes dpre [B,H], the gradient on the pre-activation.
template <typename T>
void rnn_pointwise_backward(bool relu, int B, int H, const T* h, int ldh, const T* dh,
                            const T* dout, int ld_out, T* dpre, int j0 = 0, int j1 = -1);

// LSTM: gates [B,4H] holds the summed pre-activations (i,f,g,o) on entry and the activations on
// return. c_prev [B,H] -> c [B,H]; h [B,H] (ldh) = o * tanh(c).
template <typename T>
void lstm_pointwise_forward(int B, int H, T* gates, const T* c_prev, T* c, T* h, int ldh,
                            int j0 = 0, int j1 = -1);

// LSTM backward: gates [B,4H] activations, c_prev and c [B,H], dh + dout the total gradient on h.
// dc [B,H]: on entry the gradient reaching c from the next step, on return the gradient on c_prev.
// Writes dgates [B,4H], the gradient on the pre-activations; dgates may be gates itself (each
// element's activations are read before its gradient is written).
template <typename T>
void lstm_pointwise_backward(int B, int H, const T* gates, const T* c_prev, const T* c, const T* dh,
                             const T* dout, int ld_out, T* dc, T* dgates, int j0 = 0, int j1 = -1);

// GRU: gates [B,3H] holds the input side W_i x + b_i (r,z,n) on entry, the activations r,z,n on
// return. hidden [B,3H] = W_h h_prev + b_h. h_prev [B,H] (ld_prev) -> h [B,H] (ldh).
template <typename T>
void gru_pointwise_forward(int B, int H, T* gates, const T* hidden, const T* h_prev, int ld_prev,
                           T* h, int ldh, int j0 = 0, int j1 = -1);

// GRU backward: gates [B,3H] activations, hidden [B,3H], h_prev (ld_prev), dh + dout the total
// gradient. Writes dgate_in [B,3H] (gradient on the input-side pre-activations), dgate_hid [B,3H]
// (on W_h h_prev + b_h) and dh_prev [B,H] = the part of dh_prev that bypasses W_h ((dh + dout) z).
// dgate_in may be gates, dgate_hid hidden and dh_prev dh (in place: each element is read before
// it is written).
template <typename T>
void gru_pointwise_backward(int B, int H, const T* gates, const T* hidden, const T* h_prev,
                            int ld_prev, const T* dh, const T* dout, int ld_out, T* dgate_in,
                            T* dgate_hid, T* dh_prev, int j0 = 0, int j1 = -1);

}  // namespace recur::kernels
