// The packed recurrent-step GEMM against the reference triple loop, for both weight layouts,
// odd sizes (row and panel tails), row strides and accumulation.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "recur/rng.hpp"

namespace recur::kernels {
namespace {

void check(int M, int N, int K, bool k_by_n, bool accumulate, int lda, int ldc) {
  Rng rng(M * 1000 + N * 10 + K);
  std::vector<float> A(static_cast<size_t>(M) * lda), W(static_cast<size_t>(N) * K),
      C(static_cast<size_t>(M) * ldc), R;
  for (auto& v : A) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : W) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : C) v = static_cast<float>(rng.uniform(-1, 1));
  R = C;
  PackedMatrix P;
  pack_weights(W.data(), N, K, k_by_n, P);
  gemm_packed(M, A.data(), lda, P, accumulate, C.data(), ldc);
  gemm_reference<float>(false, !k_by_n, M, N, K, 1.0f, A.data(), lda, W.data(), k_by_n ? N : K,
                        accumulate ? 1.0f : 0.0f, R.data(), ldc);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < ldc; ++n) {
      const float got = C[m * ldc + n], want = R[m * ldc + n];
      ASSERT_NEAR(got, want, 1e-4f * (1 + std::fabs(want)))
          << M << "x" << N << "x" << K << " at " << m << "," << n;
    }
}

TEST(PackedGemm, MatchesReferenceBothLayouts) {
  for (bool k_by_n : {false, true})
    for (bool acc : {false, true}) {
      check(64, 512, 128, k_by_n, acc, 128, 512);  // the LSTM step
      check(13, 37, 19, k_by_n, acc, 19, 37);      // tails everywhere
      check(1, 5, 3, k_by_n, acc, 3, 5);
      check(9, 64, 33, k_by_n, acc, 50, 70);  // strided rows; columns past N untouched
    }
}

}  // namespace
}  // namespace recur::kernels
