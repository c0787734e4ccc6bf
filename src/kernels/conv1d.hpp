// 1-D convolution over time-major sequences [steps, batch, features] with "same" padding
// (kernel / 2 zeros each side, stride 1), the conv1d layer's kernels. Variable length follows
// recur/layers.hpp: step t of the buffer holds batch_sizes[t] real rows (a sample of length L has
// rows t < L); inputs past a sample's own end count as zeros, outputs at its padded steps are
// zero, and a padded row's output gradient is never read, so a padded batch computes exactly what
// each sample computes alone. Weights as torch.nn.Conv1d: w [C, F, k], b [C].
//
// conv1d_forward/backward: im2col + GEMM over chunks of at most kConv1dChunkRows rows (whole
// steps), so the column buffer stays a few MB at any batch size. conv1d_forward_direct: plain loops
// over the taps, kept to measure against (see conv1d.cpp for the figures). Parameter gradients are
// added (+=), the input gradient assigned (=). kernels/reference/conv1d_reference.hpp holds the
// oracle.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/packed_gemm.hpp"

namespace recur::kernels {

struct Conv1dDims {
  int steps = 0, batch = 0, in_features = 0, out_channels = 0, kernel = 1;
  int padding() const { return kernel / 2; }
  std::size_t col_width() const { return static_cast<std::size_t>(in_features) * kernel; }
};

inline constexpr int kConv1dChunkRows = 2048;

// batch_sizes: [steps] non-increasing row counts, or null when every row runs every step.
// col: resized as needed (the caller keeps it between calls). `packed` (float inference: w as
// [C, F*k] and b packed by pack_weights_pair) runs the product through recur's packed kernel,
// where each output row's bits do not depend on the batch; null: BLAS with w and b.
template <typename T>
void conv1d_forward(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w, const T* b,
                    T* y, std::vector<T>& col, const PackedMatrix* packed = nullptr);

// dy [S, B, C] (padded rows ignored) -> dx [S, B, F] (assigned, zero at padded rows; skipped when
// null); adds to dw [C, F, k] and db [C] (may be null).
template <typename T>
void conv1d_backward(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w,
                     const T* dy, T* dx, T* dw, T* db, std::vector<T>& col, std::vector<T>& dcol);

// The same forward by direct loops (for each output row, each tap, an axpy of the weight column).
template <typename T>
void conv1d_forward_direct(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w,
                           const T* b, T* y);

}  // namespace recur::kernels
