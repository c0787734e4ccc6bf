// 2-D convolution and max-pooling over images in PyTorch's NCHW layout, as free functions on raw
// pointers. The convolution is im2col + GEMM per image (a direct kernel is kept for comparison:
// on a LeNet-5-sized layer im2col + GEMM measured faster, see conv.cpp). Parameter gradients are
// added (+=), input gradients assigned (=). kernels/reference/conv_reference.hpp holds the oracle.
#pragma once

#include <cstddef>

namespace recur::kernels {

// Sizes of a 2-D convolution or pooling over images [batch, channels, height, width].
struct Conv2dDims {
  int batch = 0, in_channels = 0, height = 0, width = 0;
  int out_channels = 0;  // conv2d only (pooling keeps the channels)
  int kernel = 1, stride = 1, padding = 0;
  int out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  int out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  // Elements of one image's im2col matrix: [C*k*k, OH*OW].
  std::size_t col_size() const {
    return static_cast<std::size_t>(in_channels) * kernel * kernel * out_height() * out_width();
  }
};

// One image x [C, H, W] -> col [C*k*k, OH*OW]: row (c, kh, kw), column (oh, ow) holds
// x[c, oh*stride - padding + kh, ow*stride - padding + kw], zero where that is padding.
template <typename T>
void im2col(const Conv2dDims& d, const T* x, T* col);

// The adjoint of im2col: dx [C, H, W] = the sum of every col entry at its image position
// (assigned; padding entries are dropped).
template <typename T>
void col2im(const Conv2dDims& d, const T* col, T* dx);

// x [B, C, H, W], w [O, C, k, k], b [O] (may be null) -> y [B, O, OH, OW].
// col: workspace of d.col_size() elements.
template <typename T>
void conv2d_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y, T* col);

// dy [B, O, OH, OW] -> dx [B, C, H, W] (assigned, skipped when null); adds to dw [O, C, k, k] and
// db [O] (may be null). col, dcol: workspaces of d.col_size() elements each.
template <typename T>
void conv2d_backward(const Conv2dDims& d, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                     T* col, T* dcol);

// The same forward as conv2d_forward by direct loops (vectorized over output columns), no
// workspace. Kept to measure against im2col + GEMM and tested like it.
template <typename T>
void conv2d_forward_direct(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y);

// x [B, C, H, W] -> y [B, C, OH, OW], the maximum of each window (padding never wins;
// d.out_channels is ignored).
template <typename T>
void maxpool2d_forward(const Conv2dDims& d, const T* x, T* y);

// dy [B, C, OH, OW] -> dx [B, C, H, W] (assigned): each window's gradient goes to its first
// maximum in row-major order, as PyTorch's CPU kernel does.
template <typename T>
void maxpool2d_backward(const Conv2dDims& d, const T* x, const T* dy, T* dx);

}  // namespace recur::kernels
