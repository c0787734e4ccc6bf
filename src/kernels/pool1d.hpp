// Strided max and average pooling over time, the maxpool1d and avgpool1d layers' kernels, on
// time-major sequences [steps, batch, features] of their own lengths (recur/layers.hpp: the rows of
// a batch sorted longest first; step t holds the samples whose length exceeds t).
//
// Window o of a sample covers its steps [o * stride, o * stride + kernel), clipped to its own
// length; a sample of length L gives pool1d_length(L) outputs: PyTorch's rule for
// nn.MaxPool1d(kernel, stride) (no padding, floor mode), floor((L - kernel) / stride) + 1, when
// L >= kernel, and one output (the maximum of all its steps) when it is shorter. Outputs past a
// sample's own output length are zero. Max: a tie keeps the earliest step, and a NaN wins, as
// PyTorch does. Average: the mean of the window's steps (all `kernel` of them under PyTorch's
// rule; a short sample's one window averages its own steps). kernels/reference/pool1d_reference.hpp
// holds the oracle.
#pragma once

#include <cstdint>

namespace recur::kernels {

struct Pool1dDims {
  int steps = 0, batch = 0, features = 0;  // of the input
  int kernel = 1, stride = 1;
  int out_steps() const;  // pool1d_length(steps)
};

// The output length of a sample of `length` steps (>= 1).
int pool1d_length(int length, int kernel, int stride);

// x [S, B, F], lengths [B] -> y [out_steps, B, F] and arg [out_steps, B, F] (the input step of
// each maximum; -1 at padded outputs).
template <typename T>
void maxpool1d_forward(const Pool1dDims& d, const int* lengths, const T* x, T* y,
                       std::int32_t* arg);

// dy [out_steps, B, F] (padded rows ignored) -> dx [S, B, F], assigned: each output's gradient
// goes to the step of its maximum (summed where windows overlap, stride < kernel).
template <typename T>
void maxpool1d_backward(const Pool1dDims& d, const std::int32_t* arg, const T* dy, T* dx);

// x [S, B, F], lengths [B] -> y [out_steps, B, F], the window means.
template <typename T>
void avgpool1d_forward(const Pool1dDims& d, const int* lengths, const T* x, T* y);

// dy [out_steps, B, F] -> dx [S, B, F], assigned: each output's gradient spread evenly over its
// window's steps.
template <typename T>
void avgpool1d_backward(const Pool1dDims& d, const int* lengths, const T* dy, T* dx);

}  // namespace recur::kernels
