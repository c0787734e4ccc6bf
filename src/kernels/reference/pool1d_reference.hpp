// Reference strided max and average pooling over time: plain loops straight from
// torch.nn.MaxPool1d / AvgPool1d(kernel, stride) applied to each sample alone (its steps t <
// length), with kernels/pool1d.hpp's rule for a sample shorter than the window. The oracle of
// kernels/pool1d.hpp.
#pragma once

#include <vector>

#include "kernels/pool1d.hpp"

namespace recur::kernels::reference {

// x [S, B, F] -> y [out_steps, B, F] (zero past each sample's output length).
void maxpool1d_forward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                       double* y);

// dy [out_steps, B, F] -> dx [S, B, F] (assigned).
void maxpool1d_backward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                        const double* dy, double* dx);

// x [S, B, F] -> y [out_steps, B, F]: each window's mean over its steps.
void avgpool1d_forward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                       double* y);

// dy [out_steps, B, F] -> dx [S, B, F] (assigned).
void avgpool1d_backward(const Pool1dDims& d, const std::vector<int>& lengths, const double* dy,
                        double* dx);

}  // namespace recur::kernels::reference
