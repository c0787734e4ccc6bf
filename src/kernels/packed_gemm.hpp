// The recurrent step's GEMM with the weight matrix packed once per batch.
//
// Every timestep multiplies a small activation block by the same W_hh; a BLAS call repacks W_hh
// each time (on MNIST rows, 56 repacks of a 256 KB matrix per layer and batch). Here W is packed
// once into column panels of 32 and a register-blocked kernel (8 rows x 32 columns of
// accumulators) streams through them. Float only; compiled for AVX-512, AVX2 and the baseline
// and picked at run time. Tested against gemm_reference (tests/unit/test_packed_gemm.cpp).
#pragma once

#include <vector>

namespace recur::kernels {

inline constexpr int kPanelWidth = 32;

// W packed for C = A * op(W): N output columns, K inner dimension, panels [ceil(N/32)][K][32]
// (the last panel zero-padded).
struct PackedMatrix {
  int N = 0, K = 0;
  std::vector<float> panels;
};

// Packs W for C[M,N] = A[M,K] * W^T when W is [N,K] row-major (ldw = K), or for
// C[M,N] = A[M,K] * W when `w_is_k_by_n` and W is [K,N] row-major (ldw = N).
void pack_weights(const float* W, int N, int K, bool w_is_k_by_n, PackedMatrix& out);

// C[M,N] (row stride ldc) = A[M,K] (row stride lda) * packed W, or += when accumulate.
void gemm_packed(int M, const float* A, int lda, const PackedMatrix& W, bool accumulate, float* C,
                 int ldc);

}  // namespace recur::kernels
