// Row-wise helpers of the recurrent stack's loops, vectorized (float compiled per instruction
// set like the cell kernels): bias rows, masked rows, column sums for bias gradients.
#pragma once

#include <cstddef>

namespace recur::kernels {

// rows [n, cols] += bias [cols] on every row.
template <typename T>
void add_bias_rows(T* rows, std::size_t n, int cols, const T* bias);

// out [B, H] = a [B, H] (rows lda apart) * mask [B, H], elementwise; out may be a (lda = H).
template <typename T>
void mul_rows(int B, int H, const T* a, int lda, const T* mask, T* out);

// out [B, H] += a [B, H] * mask [B, H], elementwise.
template <typename T>
void mul_add_rows(int B, int H, const T* a, const T* mask, T* out);

// out [cols] += the column sums of rows [n, cols] (row r at rows + r * ld), each column's rows
// in order.
template <typename T>
void add_column_sums(const T* rows, std::size_t n, int cols, int ld, T* out);

}  // namespace recur::kernels
