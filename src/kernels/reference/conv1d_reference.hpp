// Reference 1-D "same" convolution over sequences of their own lengths: plain loops straight from
// torch.nn.Conv1d(F, C, k, padding=k//2) applied to each sample alone (its steps t < length; the
// output rows past its end are zero, their gradients ignored). The oracle of kernels/conv1d.hpp.
#pragma once

#include <vector>

#include "kernels/conv1d.hpp"

namespace recur::kernels::reference {

// lengths: [d.batch], each in [1, d.steps]. x [S, B, F] -> y [S, B, C].
template <typename T>
void conv1d_forward(const Conv1dDims& d, const std::vector<int>& lengths, const T* x, const T* w,
                    const T* b, T* y);

// Writes dx [S, B, F] (when non-null); adds to dw [C, F, k] and db [C] (may be null).
template <typename T>
void conv1d_backward(const Conv1dDims& d, const std::vector<int>& lengths, const T* x, const T* w,
                     const T* dy, T* dx, T* dw, T* db);

}  // namespace recur::kernels::reference
