// recur's own GEMMs for the recurrent layers: the step product with the weights packed once per
// batch, and the weight gradient over all timesteps.
//
// Every timestep multiplies a small activation block by the same weights; a BLAS call repacks
// them each time (on MNIST rows, 56 repacks of a 256 KB matrix per layer and batch). Here W is
// packed once into column panels of 32 and a register-blocked kernel (8 rows x 32 columns of
// accumulators) streams through them; the packing can put [W_ih | W_hh] and the biases together
// so that one product per step does the input side too. The weight gradient uses the same tile
// with the roles turned (gemm_tn_accumulate). Float only; compiled for AVX-512, AVX2 and the
// baseline and picked at run time. Tested against gemm_reference
// (tests/unit/test_packed_gemm.cpp), timed in bench/kernels.cpp.
#pragma once

#include <vector>

#include "core/aligned.hpp"

namespace recur::kernels {

inline constexpr int kPanelWidth = 32;
// Inner rows summed per pass (a 256 x 32 panel slice, 32 KB, stays in L1).
inline constexpr int kPackedDepth = 256;

// W packed for C = A * op(W): N output columns, K inner dimension, panels [ceil(N/32)][K][32]
// (the last panel zero-padded), and optionally a bias [ceil(N/32) * 32] added to every row.
struct PackedMatrix {
  int N = 0, K = 0;
  AlignedVector<float> panels;
  AlignedVector<float> bias;  // empty: no bias
};

// Packs W for C[M,N] = A[M,K] * W^T when W is [N,K] row-major (ldw = K), or for
// C[M,N] = A[M,K] * W when `w_is_k_by_n` and W is [K,N] row-major (ldw = N).
void pack_weights(const float* W, int N, int K, bool w_is_k_by_n, PackedMatrix& out);

// Packs [W1 | W2] for C[M,N] = [A1 | A2] * [W1 | W2]^T + bias, with W1 [N,K1] and W2 [N,K2]
// row-major (PyTorch's weight_ih / weight_hh layout); W2 may be null with K2 = 0. The bias is
// bias1 + bias2 (either may be null; both null: none). This folds a cell's input projection and
// both biases into the recurrent step's GEMM.
void pack_weights_pair(int N, const float* W1, int K1, const float* W2, int K2, const float* bias1,
                       const float* bias2, PackedMatrix& out);

// pack_weights_pair in parts that threads can share: pack_pair_shape sizes `out` (and `w2_kn`)
// and writes the bias, then pack_pair_panels fills panels [p_begin, p_end) of `out`; calls on
// disjoint ranges may run at once. With `w2_kn` (W2 given), the same pass also packs W2 as
// pack_weights(W2, K2, N, true, *w2_kn) does (the backward step's weights), its rows [32 p_begin,
// 32 p_end): W2 is read once for both packings. Byte for byte the packings of one whole call.
int pack_pair_shape(int N, int K1, int K2, const float* bias1, const float* bias2,
                    PackedMatrix& out, PackedMatrix* w2_kn);
void pack_pair_panels(int N, const float* W1, int K1, const float* W2, int K2, PackedMatrix& out,
                      PackedMatrix* w2_kn, int p_begin, int p_end);

// C[M,N] (row stride ldc) = A[M,K] (row stride lda) * packed W (+ its bias), or += when
// accumulate.
void gemm_packed(int M, const float* A, int lda, const PackedMatrix& W, bool accumulate, float* C,
                 int ldc);

// C[M,N] = [A1 | A2] * packed W + its bias: row m of the left side is A1's row (k1 columns,
// stride lda1) followed by A2's row (W.K - k1 columns, stride lda2).
void gemm_packed_pair(int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
                      const PackedMatrix& W, float* C, int ldc);

// gemm_packed_pair in two parts, bit for bit the same: gemm_packed_head writes into C the sums of
// the bias and A1's k1 <= kPackedDepth columns, and gemm_packed_tail continues them in place with
// A2's W.K - k1 columns. Batch-1 inference runs the head for every timestep's x_t at once (one
// product of S rows), then only h_{t-1}'s part a step.
void gemm_packed_head(int M, const float* A1, int lda1, int k1, const PackedMatrix& W, float* C,
                      int ldc);
void gemm_packed_tail(int M, const float* A2, int lda2, int k1, const PackedMatrix& W, float* C,
                      int ldc);

// Columns [n_begin, n_end) of gemm_packed_pair (A2 may be null when k1 = W.K: gemm_packed),
// n_begin a multiple of kPanelWidth and n_end one or W.N; the other columns of C are not
// touched. Each element is the same bits as the whole product gives: threads can split a
// product's columns between them.
void gemm_packed_cols(int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
                      const PackedMatrix& W, bool accumulate, int n_begin, int n_end, float* C,
                      int ldc);

// C[M,N] += A^T X with A [K,M] (row stride lda) and X [K,N] (row stride ldx) row-major: the
// weight gradient of a layer, sum over all timesteps and rows of dgates^T x inputs. X is packed
// 128 rows at a time into `scratch` (grown as needed, kept by the caller to avoid allocating);
// A, 8 of its columns a tile, is read in place for N < 256 and packed 64 columns at a time
// beside X for wider products. Replaces BLAS here because BLAS packs all of A
// (the 3.6 MB of an LSTM's dgates) first and handles a 28-column X poorly.
// With `a_sums`, also a_sums[m] += the sum of A's column m over the K rows, row by row in order
// (add_column_sums' bits: a layer's bias gradient), taken while A is packed (N >= 256), or, read
// in place, by the first panel's tiles.
void gemm_tn_accumulate(int M, int N, int K, const float* A, int lda, const float* X, int ldx,
                        float* C, int ldc, AlignedVector<float>& scratch, float* a_sums = nullptr);

}  // namespace recur::kernels
