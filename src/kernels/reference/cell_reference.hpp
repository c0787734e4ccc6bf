// Reference cells: one timestep of each cell written as plain per-sample loops straight from the
// PyTorch equations, with no GEMM, no fusion and no saved workspace. Slow and obviously correct:
// the oracle the fast recurrent layer is tested against.
#pragma once

#include "recur/cell.hpp"

namespace recur::kernels::reference {

// Weights in PyTorch layout: w_ih [G*H, I], w_hh [G*H, H], b_ih and b_hh [G*H] (either bias may be
// null). x [B,I], h_prev [B,H], c_prev [B,H] (LSTM only) -> h [B,H], c [B,H] (LSTM only).
template <typename T>
void cell_step_forward(CellKind cell, int B, int I, int H, const T* x, const T* h_prev,
                       const T* c_prev, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                       T* h, T* c);

// Backward of the same step, recomputing its gates from the inputs. dh [B,H] and dc [B,H] (LSTM)
// are the gradients on h and c. Writes dx [B,I], dh_prev [B,H], dc_prev [B,H] (LSTM); adds to
// dw_ih, dw_hh, db_ih, db_hh (biases may be null).
template <typename T>
void cell_step_backward(CellKind cell, int B, int I, int H, const T* x, const T* h_prev,
                        const T* c_prev, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
                        const T* dh, const T* dc, T* dx, T* dh_prev, T* dc_prev, T* dw_ih, T* dw_hh,
                        T* db_ih, T* db_hh);

}  // namespace recur::kernels::reference
