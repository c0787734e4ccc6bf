// The int8 kernels against the reference quantization (kernels/reference/int8_reference.hpp):
// exact integer sums for every kernel this CPU has, the same fp32 bits from each, fp32 results
// within rounding of the fp64 quantize-dequantize product, and the kernel picked from cpuid.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/dispatch.hpp"
#include "kernels/int8_gemm.hpp"
#include "kernels/reference/int8_reference.hpp"
#include "recur/error.hpp"
#include "recur/rng.hpp"
#include "support/cpuinfo.hpp"

namespace recur::kernels {
namespace {

std::vector<Int8Kernel> kernels_here() {
  std::vector<Int8Kernel> ks;
  for (Int8Kernel k :
       {Int8Kernel::portable, Int8Kernel::avx_vnni, Int8Kernel::avx512_vnni, Int8Kernel::amx_int8})
    if (int8_kernel_supported(k)) ks.push_back(k);
  return ks;
}

std::vector<float> random(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.uniform(-1, 1));
  return v;
}

struct Quantized {
  std::vector<std::uint8_t> q;
  std::vector<float> scales;
  int ld = 0;
};

Quantized quantize(const std::vector<float>& A, int M, int K, int lda) {
  Quantized r;
  r.ld = quantized_row_bytes(K) + 4;  // a row stride beyond the row, as the layers use
  r.q.assign(static_cast<std::size_t>(M) * r.ld, 0);
  r.scales.assign(M, -1.0f);
  quantize_rows(M, A.data(), lda, K, r.q.data(), r.ld, r.scales.data());
  return r;
}

// sum_k q_a q_w from the reference's quantized values.
std::vector<std::int64_t> reference_sums(const std::vector<float>& A, int M, int lda,
                                         const std::vector<float>& W, int N, int K) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(M) * N);
  std::vector<std::vector<int>> wq(N);
  for (int n = 0; n < N; ++n)
    reference::quantize_row(W.data() + static_cast<std::size_t>(n) * K, K, wq[n]);
  std::vector<int> aq;
  for (int m = 0; m < M; ++m) {
    reference::quantize_row(A.data() + static_cast<std::size_t>(m) * lda, K, aq);
    for (int n = 0; n < N; ++n) {
      std::int64_t acc = 0;
      for (int k = 0; k < K; ++k) acc += static_cast<std::int64_t>(aq[k]) * wq[n][k];
      s[static_cast<std::size_t>(m) * N + n] = acc;
    }
  }
  return s;
}

void check_shape(int M, int N, int K) {
  SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K);
  const int lda = K + 3;
  const std::vector<float> A = random(static_cast<std::size_t>(M) * lda, M * 7 + K);
  const std::vector<float> W = random(static_cast<std::size_t>(N) * K, N * 13 + K, 0.3);
  const std::vector<float> bias = random(N, N + 1);
  const Quantized a = quantize(A, M, K, lda);
  // The activations' quantized values and scales are the reference's.
  for (int m = 0; m < M; ++m) {
    std::vector<int> q;
    const float s = reference::quantize_row(A.data() + static_cast<std::size_t>(m) * lda, K, q);
    ASSERT_EQ(a.scales[m], s);
    for (int k = 0; k < K; ++k) ASSERT_EQ(a.q[m * a.ld + k], q[k] + 128) << m << "," << k;
    for (int k = K; k < quantized_row_bytes(K); ++k) ASSERT_EQ(a.q[m * a.ld + k], 128);
  }
  const std::vector<std::int64_t> want = reference_sums(A, M, lda, W, N, K);
  std::vector<float> ref(static_cast<std::size_t>(M) * N);
  reference::qdq_gemm(M, N, K, A.data(), lda, W.data(), K, bias.data(), ref.data(), N);
  std::vector<float> first;  // the first kernel's fp32 results
  for (Int8Kernel kernel : kernels_here()) {
    SCOPED_TRACE(to_string(kernel));
    QuantizedMatrix Q;
    quantize_weights(W.data(), N, K, K, bias.data(), nullptr, kernel, Q);
    const int ldc = N + 1;
    std::vector<std::int32_t> s32(static_cast<std::size_t>(M) * ldc, 7);
    int8_gemm_s32(M, a.q.data(), a.ld, Q, s32.data(), ldc);
    for (int m = 0; m < M; ++m) {
      for (int n = 0; n < N; ++n)
        ASSERT_EQ(s32[m * ldc + n], want[m * N + n]) << "sum at " << m << "," << n;
      ASSERT_EQ(s32[m * ldc + N], 7) << "wrote past the row's " << N << " columns";
    }
    std::vector<float> C(static_cast<std::size_t>(M) * N);
    int8_gemm(M, a.q.data(), a.ld, a.scales.data(), Q, false, C.data(), N);
    for (std::size_t i = 0; i < C.size(); ++i)
      ASSERT_NEAR(C[i], ref[i], 2e-6f * (1 + std::fabs(ref[i]) + K * 0.3f)) << "at " << i;
    if (first.empty())
      first = C;
    else
      ASSERT_EQ(C, first) << "the fp32 results differ from the " << to_string(kernels_here()[0])
                          << " kernel's";
    // Accumulating adds the product (without the bias) to what C holds.
    std::vector<float> D(C.size(), 0.5f);
    int8_gemm(M, a.q.data(), a.ld, a.scales.data(), Q, true, D.data(), N);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n)
        ASSERT_NEAR(D[m * N + n], 0.5f + C[m * N + n] - bias[n],
                    1e-4f * (1 + std::fabs(C[m * N + n])));
  }
}

TEST(Int8Gemm, EveryKernelMatchesTheReferenceSumsExactly) {
  for (int M : {1, 2, 3, 5, 6, 7, 13, 17, 40})  // 17 and 40: AMX tiles with partial blocks
    for (int N : {1, 10, 31, 32, 33, 100})
      for (int K : {1, 3, 4, 28, 130}) check_shape(M, N, K);
  check_shape(9, 512, 128);  // an LSTM-128 step
  check_shape(1, 512, 128);  // batch 1
  check_shape(2, 384, 28);   // GRU input side
}

// quantize_rows writes each row's bytes (q + 128), its padding to a multiple of 4 (128) and
// nothing past it, with the reference's scale, for every length around the vector width (the
// AVX-512 copy ends a row with one masked pass; run under each RECUR_ISA by the test labels).
TEST(Int8Gemm, QuantizedRowsAreTheReferenceBytesAndPadding) {
  for (int K : {1, 3, 4, 5, 12, 15, 16, 17, 27, 28, 29, 31, 32, 33, 130}) {
    const int M = 3, ld = quantized_row_bytes(K) + 5;
    std::vector<float> A = random(static_cast<std::size_t>(M) * K, 40 + K);
    for (int k = 0; k < K; ++k) A[static_cast<std::size_t>(K) + k] = 0.0f;  // a row of zeros
    std::vector<std::uint8_t> q(static_cast<std::size_t>(M) * ld, 0xAB);
    std::vector<float> scales(M, -1.0f);
    quantize_rows(M, A.data(), K, K, q.data(), ld, scales.data());
    for (int m = 0; m < M; ++m) {
      std::vector<int> want;
      const float scale =
          reference::quantize_row(A.data() + static_cast<std::size_t>(m) * K, K, want);
      EXPECT_EQ(scales[m], scale) << "K=" << K << " row " << m;
      const std::uint8_t* row = q.data() + static_cast<std::size_t>(m) * ld;
      for (int k = 0; k < K; ++k) EXPECT_EQ(row[k], want[k] + 128) << "K=" << K << " k=" << k;
      for (int k = K; k < quantized_row_bytes(K); ++k) EXPECT_EQ(row[k], 128) << "K=" << K;
      for (int k = quantized_row_bytes(K); k < ld; ++k) EXPECT_EQ(row[k], 0xAB) << "K=" << K;
    }
  }
}

// The pair product (an LSTM step: x_t's side with the bias, then h_{t-1}'s) is the bits of the two
// products one after the other.
TEST(Int8Gemm, APairIsTheTwoProductsInTurn) {
  // N = 100: a last panel of 4 columns (masked stores in the four-row tiles).
  for (int M : {1, 2, 3, 7, 17, 64})  // 17 and 64: AMX tiles (a partial block at 17)
    for (int N : {96, 100}) {
      const int K1 = 28, K2 = 40;
      const std::vector<float> A1 = random(static_cast<std::size_t>(M) * K1, M + 1);
      const std::vector<float> A2 = random(static_cast<std::size_t>(M) * K2, M + 2);
      const std::vector<float> W1 = random(static_cast<std::size_t>(N) * K1, 3, 0.2);
      const std::vector<float> W2 = random(static_cast<std::size_t>(N) * K2, 4, 0.2);
      const std::vector<float> bias = random(N, 5);
      const Quantized a1 = quantize(A1, M, K1, K1), a2 = quantize(A2, M, K2, K2);
      for (Int8Kernel kernel : kernels_here()) {
        QuantizedMatrix Q1, Q2;
        quantize_weights(W1.data(), N, K1, K1, bias.data(), nullptr, kernel, Q1);
        quantize_weights(W2.data(), N, K2, K2, nullptr, nullptr, kernel, Q2);
        std::vector<float> pair(static_cast<std::size_t>(M) * N), turn(pair.size());
        int8_gemm_pair(M, a1.q.data(), a1.ld, a1.scales.data(), Q1, a2.q.data(), a2.ld,
                       a2.scales.data(), Q2, pair.data(), N);
        int8_gemm(M, a1.q.data(), a1.ld, a1.scales.data(), Q1, false, turn.data(), N);
        int8_gemm(M, a2.q.data(), a2.ld, a2.scales.data(), Q2, true, turn.data(), N);
        EXPECT_EQ(pair, turn) << to_string(kernel) << " M=" << M << " N=" << N;
      }
    }
}

// Largest magnitudes everywhere: 255 x 127 per product with the offset, 127 x 127 without, over a
// long inner dimension, exact (no 16-bit intermediate saturates).
TEST(Int8Gemm, ExtremeValuesSumExactly) {
  const int M = 3, N = 40, K = 4096;
  std::vector<float> A(static_cast<std::size_t>(M) * K, 1.0f), W(static_cast<std::size_t>(N) * K);
  for (int k = 0; k < K; ++k) A[K + k] = -1.0f;  // row 1: all -amax
  for (int k = 0; k < K; ++k) A[2 * K + k] = k % 2 ? 1.0f : -1.0f;
  for (std::size_t i = 0; i < W.size(); ++i) W[i] = (i / K) % 2 ? -2.0f : 2.0f;
  const Quantized a = quantize(A, M, K, K);
  for (Int8Kernel kernel : kernels_here()) {
    QuantizedMatrix Q;
    quantize_weights(W.data(), N, K, K, nullptr, nullptr, kernel, Q);
    std::vector<std::int32_t> s(static_cast<std::size_t>(M) * N);
    int8_gemm_s32(M, a.q.data(), a.ld, Q, s.data(), N);
    for (int n = 0; n < N; ++n) {
      const std::int32_t w = n % 2 ? -127 : 127;
      EXPECT_EQ(s[n], 127 * w * K) << to_string(kernel);
      EXPECT_EQ(s[N + n], -127 * w * K) << to_string(kernel);
      EXPECT_EQ(s[2 * N + n], 0) << to_string(kernel);
    }
  }
}

// A row of zeros has scale 0 and gives the bias; it does not divide by zero.
TEST(Int8Gemm, ZeroRowsGiveTheBias) {
  const int M = 2, N = 5, K = 8;
  std::vector<float> A(static_cast<std::size_t>(M) * K, 0.0f), W = random(N * K, 3);
  A[K + 3] = 0.25f;
  const std::vector<float> bias = {1, 2, 3, 4, 5};
  const Quantized a = quantize(A, M, K, K);
  EXPECT_EQ(a.scales[0], 0.0f);
  for (Int8Kernel kernel : kernels_here()) {
    QuantizedMatrix Q;
    quantize_weights(W.data(), N, K, K, bias.data(), nullptr, kernel, Q);
    std::vector<float> C(static_cast<std::size_t>(M) * N);
    int8_gemm(M, a.q.data(), a.ld, a.scales.data(), Q, false, C.data(), N);
    for (int n = 0; n < N; ++n) {
      EXPECT_EQ(C[n], bias[n]);
      EXPECT_TRUE(std::isfinite(C[N + n]));
    }
  }
}

using recur::test::cpuinfo_has;

TEST(Int8Gemm, TheSimdKernelsAreChosenOnlyWhereCpuidHasThem) {
  Int8CpuFeatures none;
  EXPECT_EQ(choose_int8_kernel(none), Int8Kernel::portable);
  Int8CpuFeatures avx2 = none;
  avx2.avx2 = avx2.fma = true;
  EXPECT_EQ(choose_int8_kernel(avx2), Int8Kernel::portable);
  Int8CpuFeatures avx_vnni = avx2;
  avx_vnni.avx_vnni = true;
  EXPECT_EQ(choose_int8_kernel(avx_vnni), Int8Kernel::avx_vnni);
  Int8CpuFeatures vnni_no_bw = avx2;
  vnni_no_bw.avx512_vnni = true;
  EXPECT_EQ(choose_int8_kernel(vnni_no_bw), Int8Kernel::portable);
  Int8CpuFeatures cascade_lake = vnni_no_bw;
  cascade_lake.avx512bw = true;
  EXPECT_EQ(choose_int8_kernel(cascade_lake), Int8Kernel::avx512_vnni);
  Int8CpuFeatures zen5 = cascade_lake;
  zen5.avx_vnni = true;
  EXPECT_EQ(choose_int8_kernel(zen5), Int8Kernel::avx512_vnni);
  Int8CpuFeatures sapphire_rapids = zen5;
  sapphire_rapids.amx_int8 = true;
  EXPECT_EQ(choose_int8_kernel(sapphire_rapids), Int8Kernel::amx_int8);
  Int8CpuFeatures amx_alone = avx2;  // tiles without AVX-512 VNNI to quantize and scale with
  amx_alone.amx_int8 = true;
  EXPECT_EQ(choose_int8_kernel(amx_alone), Int8Kernel::portable);

  const Int8CpuFeatures here = detect_int8_features();
  std::ifstream probe("/proc/cpuinfo");
  ASSERT_TRUE(probe.good()) << "the test reads the CPU's flags from /proc/cpuinfo";
  EXPECT_EQ(here.avx512_vnni, cpuinfo_has("avx512_vnni"));
  EXPECT_EQ(here.avx512bw, cpuinfo_has("avx512bw"));
  EXPECT_EQ(here.avx_vnni, cpuinfo_has("avx_vnni"));
  EXPECT_EQ(here.avx2, cpuinfo_has("avx2"));
  // The tiles also need the kernel's permission (granted on every Linux that lists the flags).
  EXPECT_EQ(here.amx_int8, cpuinfo_has("amx_int8") && cpuinfo_has("amx_tile"));
  EXPECT_EQ(int8_kernel_supported(Int8Kernel::avx512_vnni),
            cpuinfo_has("avx512_vnni") && cpuinfo_has("avx512bw"));
  for (Int8Kernel k : {Int8Kernel::avx_vnni, Int8Kernel::avx512_vnni, Int8Kernel::amx_int8}) {
    if (!int8_kernel_supported(k)) {
      EXPECT_THROW(set_int8_kernel(k), Error);
    }
  }
  // Unless the environment forces one, weights are quantized for cpuid's choice, lowered by
  // RECUR_ISA as the float kernels are.
  const char* forced = std::getenv("RECUR_INT8_KERNEL");
  if (forced == nullptr || *forced == '\0') {
    Int8CpuFeatures allowed = here;
    if (isa() != Isa::avx512) allowed.avx512_vnni = allowed.avx512bw = allowed.amx_int8 = false;
    if (isa() == Isa::portable) allowed.avx_vnni = allowed.avx2 = allowed.fma = false;
    EXPECT_EQ(int8_kernel(), choose_int8_kernel(allowed));
    if (isa() == Isa::portable) {
      EXPECT_EQ(int8_kernel(), Int8Kernel::portable);
    }
  }
  const Int8Kernel before = set_int8_kernel(Int8Kernel::portable);
  EXPECT_EQ(int8_kernel(), Int8Kernel::portable);
  set_int8_kernel(before);
  EXPECT_EQ(int8_kernel(), before);
}

}  // namespace
}  // namespace recur::kernels
