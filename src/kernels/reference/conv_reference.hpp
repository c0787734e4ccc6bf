// Reference convolution and max-pooling: plain nested loops straight from PyTorch's definitions
// (torch.nn.Conv2d with zero padding, torch.nn.MaxPool2d with -inf padding, the first maximum of
// a window taking the gradient). Slow and obviously correct: the oracle the fast conv layers are
// tested against.
#pragma once

#include "kernels/conv.hpp"

namespace recur::kernels::reference {

// x [B, C, H, W], w [O, C, k, k], b [O] (may be null) -> y [B, O, OH, OW].
template <typename T>
void conv2d_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y);

// dy [B, O, OH, OW]. Writes dx [B, C, H, W] (when non-null); adds to dw [O, C, k, k] and db [O]
// (db may be null).
template <typename T>
void conv2d_backward(const Conv2dDims& d, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

// x [B, C, H, W] -> y [B, C, OH, OW], each the maximum of its window (padding never wins).
template <typename T>
void maxpool2d_forward(const Conv2dDims& d, const T* x, T* y);

// Writes dx [B, C, H, W]: each dy goes to the first maximum of its window (row-major scan).
template <typename T>
void maxpool2d_backward(const Conv2dDims& d, const T* x, const T* dy, T* dx);

}  // namespace recur::kernels::reference
