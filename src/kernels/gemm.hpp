// Row-major GEMM on raw pointers, the one place recur calls BLAS (OpenBLAS through CBLAS).
//   C[M,N] = alpha * op(A) * op(B) + beta * C,  op(X) = X or X^T
// A is [M,K] (or [K,M] when trans_a), B is [K,N] (or [N,K] when trans_b); lda/ldb/ldc are row
// strides in elements. Runs single-threaded inside BLAS: recur owns the threading.
#pragma once

namespace recur::kernels {

template <typename T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc);

// The same product by three plain loops: the oracle the BLAS path is tested against.
template <typename T>
void gemm_reference(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda,
                    const T* B, int ldb, T beta, T* C, int ldc);

// Makes BLAS single-threaded (idempotent; called before any timed or threaded work).
void blas_single_threaded();

}  // namespace recur::kernels
