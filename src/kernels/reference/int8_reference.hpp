// Reference int8 arithmetic: the quantization rule written out with std::nearbyint, and a
// quantize-dequantize product computed in fp64 on the dequantized values. The oracle of the int8
// kernels (kernels/int8_gemm.hpp): their integer sums equal the sums of these quantized values,
// and their fp32 results equal this product to fp32 rounding.
#pragma once

#include <vector>

namespace recur::kernels::reference {

// One row of K values quantized symmetrically: q[k] in [-127, 127]; returns the scale
// max |x| / 127 (0 for a row of zeros, whose q are all 0).
float quantize_row(const float* x, int K, std::vector<int>& q);

// C [M, N] = dequantize(A) x dequantize(W)^T + bias in fp64, rounded to fp32: A [M, K] quantized
// per row (lda), W [N, K] per row (ldw); bias [N] or null.
void qdq_gemm(int M, int N, int K, const float* A, int lda, const float* W, int ldw,
              const float* bias, float* C, int ldc);

}  // namespace recur::kernels::reference
