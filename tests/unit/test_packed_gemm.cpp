// The packed recurrent-step GEMM against the reference triple loop, for both weight layouts,
// odd sizes (row and panel tails), row strides and accumulation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "kernels/rows.hpp"
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

// [A1 | A2] x [W1 | W2]^T + b1 + b2 against the reference on the concatenated matrices, with the
// depth-block boundary (256) inside A1, inside A2 and at the seam.
void check_pair(int M, int N, int K1, int K2, bool bias1, bool bias2, int lda1, int lda2, int ldc) {
  Rng rng(M * 7919 + N * 31 + K1 * 7 + K2);
  const int K = K1 + K2;
  std::vector<float> A1(static_cast<size_t>(M) * lda1), A2(static_cast<size_t>(M) * lda2),
      W1(static_cast<size_t>(N) * K1), W2(static_cast<size_t>(N) * K2), b1(N), b2(N),
      C(static_cast<size_t>(M) * ldc);
  for (auto* v : {&A1, &A2, &W1, &W2, &b1, &b2, &C})
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  // The concatenations, for the reference.
  std::vector<float> A(static_cast<size_t>(M) * K), W(static_cast<size_t>(N) * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) A[m * K + k] = k < K1 ? A1[m * lda1 + k] : A2[m * lda2 + k - K1];
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) W[n * K + k] = k < K1 ? W1[n * K1 + k] : W2[n * K2 + k - K1];
  std::vector<float> R = C;
  gemm_reference<float>(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, R.data(), ldc);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) R[m * ldc + n] += (bias1 ? b1[n] : 0.0f) + (bias2 ? b2[n] : 0.0f);
  PackedMatrix P;
  pack_weights_pair(N, W1.data(), K1, K2 ? W2.data() : nullptr, K2, bias1 ? b1.data() : nullptr,
                    bias2 ? b2.data() : nullptr, P);
  EXPECT_EQ(P.bias.empty(), !bias1 && !bias2);
  gemm_packed_pair(M, A1.data(), lda1, K1, A2.data(), lda2, P, C.data(), ldc);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < ldc; ++n) {
      const float got = C[m * ldc + n], want = R[m * ldc + n];
      ASSERT_NEAR(got, want, 1e-4f * (1 + std::fabs(want)))
          << M << "x" << N << "x" << K1 << "+" << K2 << " at " << m << "," << n;
    }
}

TEST(PackedGemm, PairMatchesReferenceWithBiases) {
  check_pair(64, 512, 28, 128, true, true, 28, 128, 512);   // the LSTM step on MNIST rows
  check_pair(64, 384, 28, 128, true, false, 28, 256, 384);  // GRU-like, strided h
  check_pair(13, 37, 5, 11, false, true, 5, 11, 40);        // tails; columns past N untouched
  check_pair(9, 64, 300, 40, true, true, 300, 40, 64);      // depth block ends inside A1
  check_pair(9, 64, 100, 300, false, false, 100, 310, 64);  // ... inside A2
  check_pair(3, 33, 256, 256, true, true, 256, 256, 33);    // ... at the seam
  check_pair(7, 40, 19, 0, true, false, 19, 1, 40);         // one source only
}

TEST(PackedGemm, BiasOfAPairPackIsAddedByGemmPacked) {
  const int M = 10, N = 40, K = 12;
  Rng rng(5);
  std::vector<float> A(M * K), W(N * K), b(N), C(M * N, 0.0f), R(M * N, 0.0f);
  for (auto* v : {&A, &W, &b})
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  PackedMatrix P;
  pack_weights_pair(N, W.data(), K, nullptr, 0, b.data(), nullptr, P);
  gemm_packed(M, A.data(), K, P, false, C.data(), N);
  gemm_reference<float>(false, true, M, N, K, 1.0f, A.data(), K, W.data(), K, 0.0f, R.data(), N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) ASSERT_NEAR(C[m * N + n], R[m * N + n] + b[n], 1e-5f);
  // Repacking without a bias drops it.
  pack_weights(W.data(), N, K, false, P);
  EXPECT_TRUE(P.bias.empty());
}

// A row's result is the same bits whatever rows run beside it: each row of a product of M rows
// (M = 1 .. 20: the one-to-four-row multi-panel path, whole 8-row tiles and every tail) equals
// that row computed alone. Pair and single products, with and without a bias, across depth
// blocks, N with and without a panel tail.
void check_rows_independent(int N, int K1, int K2, bool bias) {
  Rng rng(N * 7 + K1 * 3 + K2);
  const int Mmax = 20, K = K1 + K2;
  std::vector<float> A1(static_cast<size_t>(Mmax) * K1), A2(static_cast<size_t>(Mmax) * K2 + 1),
      W1(static_cast<size_t>(N) * K1), W2(static_cast<size_t>(N) * K2), b(N);
  for (auto* v : {&A1, &A2, &W1, &W2, &b})
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  PackedMatrix pair, single;
  pack_weights_pair(N, W1.data(), K1, K2 ? W2.data() : nullptr, K2, bias ? b.data() : nullptr,
                    nullptr, pair);
  pack_weights_pair(N, W1.data(), K1, nullptr, 0, bias ? b.data() : nullptr, nullptr, single);
  // Each row alone.
  std::vector<float> alone_pair(static_cast<size_t>(Mmax) * N),
      alone_single(static_cast<size_t>(Mmax) * N);
  for (int m = 0; m < Mmax; ++m) {
    gemm_packed_pair(1, A1.data() + m * K1, K1, K1, A2.data() + m * K2, K2, pair,
                     alone_pair.data() + m * N, N);
    gemm_packed(1, A1.data() + m * K1, K1, single, false, alone_single.data() + m * N, N);
  }
  for (int M = 1; M <= Mmax; ++M) {
    std::vector<float> cp(static_cast<size_t>(M) * N), cs(static_cast<size_t>(M) * N);
    gemm_packed_pair(M, A1.data(), K1, K1, A2.data(), K2, pair, cp.data(), N);
    gemm_packed(M, A1.data(), K1, single, false, cs.data(), N);
    for (int i = 0; i < M * N; ++i) {
      ASSERT_EQ(cp[i], alone_pair[i]) << "pair N=" << N << " K=" << K << " M=" << M << " at " << i;
      ASSERT_EQ(cs[i], alone_single[i]) << "single N=" << N << " K1=" << K1 << " M=" << M;
    }
  }
}

// pack_pair_shape + pack_pair_panels over uneven panel ranges, in reverse order, with W2 packed
// for the backward step in the same pass: byte for byte pack_weights_pair and pack_weights(W2,
// K2, N, true), padding included (their buffers start as another packing left them).
TEST(PackedGemm, PackingInPartsWithTheBackwardLayoutEqualsTheWholePackings) {
  struct Shape {
    int N, K1, K2;
  };
  for (const Shape& s : {Shape{100, 7, 45}, Shape{512, 28, 128}, Shape{96, 0, 33},
                         Shape{64, 300, 17}, Shape{31, 5, 64}}) {
    SCOPED_TRACE(testing::Message() << s.N << " x (" << s.K1 << " + " << s.K2 << ")");
    Rng rng(s.N + s.K1 + s.K2);
    std::vector<float> W1(static_cast<size_t>(s.N) * s.K1), W2(static_cast<size_t>(s.N) * s.K2),
        b1(s.N), b2(s.N);
    for (auto* v : {&W1, &W2, &b1, &b2})
      for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
    PackedMatrix pair, kn;
    pack_weights_pair(s.N, W1.data(), s.K1, W2.data(), s.K2, b1.data(), b2.data(), pair);
    pack_weights(W2.data(), s.K2, s.N, true, kn);
    // Buffers another packing left: full of other values, as a training step finds them.
    PackedMatrix parts, parts_kn;
    parts.panels.assign(pair.panels.size(), 7.0f);
    parts_kn.panels.assign(kn.panels.size(), -3.0f);
    const int panels = pack_pair_shape(s.N, s.K1, s.K2, b1.data(), b2.data(), parts, &parts_kn);
    const int cut = panels / 3 + 1 < panels ? panels / 3 + 1 : panels;
    pack_pair_panels(s.N, W1.data(), s.K1, W2.data(), s.K2, parts, &parts_kn, cut, panels);
    pack_pair_panels(s.N, W1.data(), s.K1, W2.data(), s.K2, parts, &parts_kn, 0, cut);
    EXPECT_EQ(parts.N, pair.N);
    EXPECT_EQ(parts.K, pair.K);
    ASSERT_EQ(parts.panels.size(), pair.panels.size());
    EXPECT_EQ(
        std::memcmp(parts.panels.data(), pair.panels.data(), pair.panels.size() * sizeof(float)),
        0);
    ASSERT_EQ(parts.bias.size(), pair.bias.size());
    EXPECT_EQ(std::memcmp(parts.bias.data(), pair.bias.data(), pair.bias.size() * sizeof(float)),
              0);
    EXPECT_EQ(parts_kn.N, kn.N);
    EXPECT_EQ(parts_kn.K, kn.K);
    ASSERT_EQ(parts_kn.panels.size(), kn.panels.size());
    EXPECT_EQ(
        std::memcmp(parts_kn.panels.data(), kn.panels.data(), kn.panels.size() * sizeof(float)), 0);
    EXPECT_TRUE(parts_kn.bias.empty());
  }
}

TEST(PackedGemm, RowsDoNotDependOnTheirNeighbours) {
  check_rows_independent(512, 28, 128, true);   // LSTM-128 step on MNIST rows
  check_rows_independent(384, 28, 128, false);  // GRU-128
  check_rows_independent(10, 128, 0, true);     // a classification head: one partial panel
  check_rows_independent(200, 300, 40, true);   // depth blocks, 6 whole panels and a tail
  check_rows_independent(96, 17, 5, true);      // three whole panels (a group and a single)
}

// C += A^T X (the weight-gradient kernel) against the reference, with row and column tails,
// strided X and C, and K across several depth blocks.
void check_tn(int M, int N, int K, int lda, int ldx, int ldc) {
  Rng rng(M * 131 + N * 17 + K);
  std::vector<float> A(static_cast<size_t>(K) * lda), X(static_cast<size_t>(K) * ldx),
      C(static_cast<size_t>(M) * ldc);
  AlignedVector<float> scratch;
  for (auto* v : {&A, &X, &C})
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  std::vector<float> R = C;
  gemm_reference<float>(true, false, M, N, K, 1.0f, A.data(), lda, X.data(), ldx, 1.0f, R.data(),
                        ldc);
  gemm_tn_accumulate(M, N, K, A.data(), lda, X.data(), ldx, C.data(), ldc, scratch);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < ldc; ++n) {
      const float got = C[m * ldc + n], want = R[m * ldc + n];
      ASSERT_NEAR(got, want, 1e-4f * (1 + std::fabs(want)))
          << M << "x" << N << "x" << K << " at " << m << "," << n;
    }
}

// gemm_packed_head then gemm_packed_tail equal gemm_packed_pair bit for bit: k1 inside the first
// depth block and at its end, A2 within one block and across two, whole and partial panels, the
// row counts of the few-row kernels and of the 8-row tiles, with and without a bias.
void check_head_tail(int M, int N, int K1, int K2, bool bias) {
  Rng rng(M * 131 + N * 17 + K1 * 3 + K2 + (bias ? 1 : 0));
  const int lda1 = K1 + 3, lda2 = K2 + 5, ldc = N + 7;
  std::vector<float> A1(static_cast<size_t>(M) * lda1), A2(static_cast<size_t>(M) * lda2),
      W1(static_cast<size_t>(N) * K1), W2(static_cast<size_t>(N) * K2), b(N);
  for (auto* v : {&A1, &A2, &W1, &W2, &b})
    for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
  PackedMatrix P;
  pack_weights_pair(N, W1.data(), K1, W2.data(), K2, bias ? b.data() : nullptr, nullptr, P);
  std::vector<float> whole(static_cast<size_t>(M) * ldc, 9.0f), parts = whole;
  gemm_packed_pair(M, A1.data(), lda1, K1, A2.data(), lda2, P, whole.data(), ldc);
  gemm_packed_head(M, A1.data(), lda1, K1, P, parts.data(), ldc);
  gemm_packed_tail(M, A2.data(), lda2, K1, P, parts.data(), ldc);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < ldc; ++n)
      ASSERT_EQ(std::memcmp(&whole[m * ldc + n], &parts[m * ldc + n], sizeof(float)), 0)
          << M << "x" << N << " K1 " << K1 << " K2 " << K2 << " at " << m << "," << n << ": "
          << whole[m * ldc + n] << " against " << parts[m * ldc + n];
}

TEST(PackedGemm, HeadThenTailEqualsThePairProduct) {
  for (int M : {1, 2, 3, 4, 5, 8, 28, 29})
    for (bool bias : {true, false}) {
      check_head_tail(M, 512, 28, 128, bias);  // LSTM-128 over image rows
      check_head_tail(M, 200, 28, 300, bias);  // a partial panel; A2 across the block boundary
      check_head_tail(M, 96, 256, 64, bias);   // k1 at the block boundary
      check_head_tail(M, 64, 100, 156, bias);  // A2 ends exactly at the boundary
    }
}

TEST(PackedGemm, WeightGradientKernelMatchesReference) {
  check_tn(512, 128, 27 * 64, 512, 128, 128);  // dW_hh of an LSTM-128 chunk
  check_tn(512, 28, 28 * 64, 512, 28, 28);     // dW_ih on MNIST rows
  check_tn(384, 128, 300, 384, 256, 128);      // GRU, h rows of a bidirectional output
  // A packed (8 panels of X or more): an LSTM-512's dW_hh, and row and column tails.
  check_tn(2048, 512, 300, 2048, 512, 512);
  check_tn(1003, 263, 261, 1010, 270, 280);
  check_tn(13, 37, 129, 20, 40, 45);  // tails everywhere; columns past N untouched
  check_tn(1, 1, 1, 1, 1, 1);
  AlignedVector<float> scratch;
  std::vector<float> C(4, 1.0f);
  gemm_tn_accumulate(2, 2, 0, nullptr, 2, nullptr, 2, C.data(), 2, scratch);  // K = 0: no-op
  EXPECT_EQ(C, std::vector<float>(4, 1.0f));
}

// The column sums the weight-gradient kernel takes on the way (a_sums, a layer's bias gradient):
// byte for byte add_column_sums over the same rows, where it packs A (N >= 256) and where it
// does not, with tails in both; the product itself is unchanged by asking for them.
TEST(PackedGemm, WeightGradientColumnSumsEqualAddColumnSums) {
  struct Shape {
    int M, N, K;
  };
  for (const Shape& s : {Shape{1024, 256, 300}, Shape{1003, 263, 261}, Shape{512, 28, 200},
                         Shape{13, 37, 129}, Shape{2048, 512, 64}}) {
    SCOPED_TRACE(testing::Message() << s.M << " x " << s.N << " x " << s.K);
    Rng rng(s.M + s.N + s.K);
    const int lda = s.M + 3;
    std::vector<float> A(static_cast<size_t>(s.K) * lda), X(static_cast<size_t>(s.K) * s.N),
        start(s.M);
    for (auto* v : {&A, &X, &start})
      for (auto& x : *v) x = static_cast<float>(rng.uniform(-1, 1));
    std::vector<float> C(static_cast<size_t>(s.M) * s.N, 0.5f), plain = C;
    std::vector<float> sums = start, want = start;
    AlignedVector<float> scratch;
    gemm_tn_accumulate(s.M, s.N, s.K, A.data(), lda, X.data(), s.N, C.data(), s.N, scratch,
                       sums.data());
    gemm_tn_accumulate(s.M, s.N, s.K, A.data(), lda, X.data(), s.N, plain.data(), s.N, scratch);
    for (int k = 0; k < s.K; ++k)
      add_column_sums<float>(A.data() + static_cast<size_t>(k) * lda, 1, s.M, s.M, want.data());
    EXPECT_EQ(std::memcmp(sums.data(), want.data(), want.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(C.data(), plain.data(), C.size() * sizeof(float)), 0);
  }
}

}  // namespace
}  // namespace recur::kernels
