// The bf16 products (kernels/bf16_gemm.hpp): the rounding to bf16, the portable emulation
// against a double-precision product of the rounded operands, the AVX512_BF16 kernel against the
// emulation where this CPU has it, and both against the fp32 product within bf16's precision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "kernels/bf16_gemm.hpp"
#include "kernels/dispatch.hpp"
#include "recur/error.hpp"
#include "recur/rng.hpp"
#include "support/cpuinfo.hpp"

namespace recur::kernels {
namespace {

std::vector<float> random(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.uniform(-1, 1));
  return v;
}

double rounded(float x) {
  return static_cast<double>(from_bf16(to_bf16(x)));
}

// Switches the kernel for one scope.
struct KernelScope {
  explicit KernelScope(Bf16Kernel k) : before(set_bf16_kernel(k)) {}
  ~KernelScope() { set_bf16_kernel(before); }
  Bf16Kernel before;
};

std::vector<Bf16Kernel> kernels_here() {
  std::vector<Bf16Kernel> ks{Bf16Kernel::portable};
  if (bf16_kernel_supported(Bf16Kernel::avx512_bf16)) ks.push_back(Bf16Kernel::avx512_bf16);
  if (bf16_kernel_supported(Bf16Kernel::amx_bf16)) ks.push_back(Bf16Kernel::amx_bf16);
  return ks;
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1.
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: up to the even one.
  EXPECT_EQ(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(to_bf16(-std::numeric_limits<float>::denorm_min()), 0x8000);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  for (float x : {0.1f, -3.3f, 1e-20f, 12345.678f})
    EXPECT_LE(std::fabs(from_bf16(to_bf16(x)) - x), std::fabs(x) * std::ldexp(1.0, -8));
}

// C = [A1 | A2] W^T + bias (+ C) checked against double sums of the rounded operands (tight)
// and of the fp32 operands (bf16's precision), for every kernel here, and the kernels against
// each other.
void check_rows(int M, int N, int K1, int K2, bool accumulate) {
  SCOPED_TRACE(testing::Message() << M << "x" << N << "x" << K1 << "+" << K2
                                  << (accumulate ? " accumulate" : ""));
  const int K = K1 + K2, lda1 = K1 + 3, lda2 = K2 + 5, ldc = N + 2;
  const auto A1 = random(static_cast<std::size_t>(M) * lda1, M + K1);
  const auto A2 = random(static_cast<std::size_t>(M) * lda2, M + K2 + 1);
  const auto W1 = random(static_cast<std::size_t>(N) * K1, N + 7, 0.3);
  const auto W2 = random(static_cast<std::size_t>(N) * K2, N + 8, 0.3);
  const auto b1 = random(N, 3), b2 = random(N, 4);
  const auto C0 = random(static_cast<std::size_t>(M) * ldc, 5);
  PackedBf16Matrix W;
  pack_bf16_pair(N, W1.data(), K1, K2 ? W2.data() : nullptr, K2, b1.data(), b2.data(), W);
  std::vector<std::vector<float>> results;
  for (Bf16Kernel kernel : kernels_here()) {
    SCOPED_TRACE(to_string(kernel));
    KernelScope scope(kernel);
    std::vector<float> C = C0;
    AlignedVector<std::uint16_t> scratch;
    gemm_bf16(M, A1.data(), lda1, K1, K2 ? A2.data() : nullptr, lda2, W, accumulate, C.data(), ldc,
              scratch);
    for (int m = 0; m < M; ++m) {
      for (int n = 0; n < N; ++n) {
        double exact = 0, full = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          const float a = k < K1 ? A1[m * lda1 + k] : A2[m * lda2 + k - K1];
          const float w = k < K1 ? W1[n * K1 + k] : W2[n * K2 + k - K1];
          exact += rounded(a) * rounded(w);
          full += static_cast<double>(a) * w;
          mag += std::fabs(static_cast<double>(a) * w);
        }
        const double base = accumulate ? C0[m * ldc + n] : static_cast<double>(b1[n] + b2[n]);
        const double got = C[m * ldc + n];
        // fp32 sums of K terms; bf16 operands: relative 2^-8 each.
        EXPECT_NEAR(got, base + exact, 1e-6 * (mag + std::fabs(base)) * (1 + K / 64.0))
            << m << "," << n;
        EXPECT_NEAR(got, base + full, std::ldexp(mag, -7) + 1e-6 * std::fabs(base))
            << m << "," << n;
      }
      // Columns beyond N and rows' padding are not written.
      EXPECT_EQ(C[m * ldc + N], C0[m * ldc + N]);
      EXPECT_EQ(C[m * ldc + N + 1], C0[m * ldc + N + 1]);
    }
    results.push_back(C);
  }
  for (std::size_t r = 1; r < results.size(); ++r)
    for (std::size_t i = 0; i < results[0].size(); ++i)
      ASSERT_NEAR(results[r][i], results[0][i], 2e-5 * (1 + std::fabs(results[0][i]))) << i;
}

TEST(Bf16, RowProductsMatchTheEmulationAndFp32) {
  check_rows(1, 5, 3, 0, false);
  check_rows(13, 40, 27, 128, false);  // the pairs straddle x_t and h_{t-1}
  check_rows(64, 512, 28, 128, false);
  check_rows(9, 128, 600, 0, true);  // two depth blocks, accumulating
  check_rows(8, 33, 1, 2, true);
}

TEST(Bf16, PackFromKByNMatchesTheTransposed) {
  const int N = 37, K = 19;
  const auto W = random(static_cast<std::size_t>(N) * K, 9);
  std::vector<float> Wt(W.size());
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) Wt[k * N + n] = W[n * K + k];
  PackedBf16Matrix a, b;
  pack_bf16(W.data(), N, K, false, a);
  pack_bf16(Wt.data(), N, K, true, b);
  EXPECT_EQ(a.Kp, 32);  // whole AMX tiles' depth
  EXPECT_TRUE(a.bias.empty());
  ASSERT_EQ(a.panels.size(), b.panels.size());
  for (std::size_t i = 0; i < a.panels.size(); ++i) ASSERT_EQ(a.panels[i], b.panels[i]) << i;
}

TEST(Bf16, EveryKernelPacksTheSameBits) {
  const int N = 70, K1 = 27, K2 = 40;
  auto W1 = random(static_cast<std::size_t>(N) * K1, 21), W2 = random(N * K2, 22);
  W1[3] = std::numeric_limits<float>::denorm_min();  // flushed to zero by every kernel
  W1[4] = -std::numeric_limits<float>::quiet_NaN();
  W2[5] = 1.0f + std::ldexp(1.0f, -8);  // a tie
  const auto b = random(N, 23);
  std::vector<PackedBf16Matrix> pair, kn, nk;
  for (Bf16Kernel kernel : kernels_here()) {
    KernelScope scope(kernel);
    pair.emplace_back();
    kn.emplace_back();
    nk.emplace_back();
    pack_bf16_pair(N, W1.data(), K1, W2.data(), K2, b.data(), nullptr, pair.back());
    pack_bf16(W2.data(), K2, N, true, kn.back());  // W2 read as [K = N, N = K2]
    pack_bf16(W1.data(), N, K1, false, nk.back());
  }
  // W1[0][3] and W1[0][4] in the panel layout [k / 2][32][2].
  EXPECT_EQ(pair[0].panels[(1 * 32 + 0) * 2 + 1], 0);
  EXPECT_EQ(pair[0].panels[(1 * 32 + 1) * 2 + 1], to_bf16(W1[K1 + 3]));
  EXPECT_TRUE(std::isnan(from_bf16(pair[0].panels[(2 * 32 + 0) * 2])));
  for (std::size_t i = 1; i < pair.size(); ++i) {
    EXPECT_EQ(pair[i].panels, pair[0].panels);
    EXPECT_EQ(pair[i].bias, pair[0].bias);
    EXPECT_EQ(kn[i].panels, kn[0].panels);
    EXPECT_EQ(nk[i].panels, nk[0].panels);
    EXPECT_EQ(pair[i].Kp, 96);
  }
}

// C += A^T X (A [K, M], X [K, N]) against double sums, every kernel, and the kernels together.
void check_tn(int M, int N, int K) {
  SCOPED_TRACE(testing::Message() << "tn " << M << "x" << N << "x" << K);
  const int lda = M + 3, ldx = N + 1, ldc = N + 4;
  const auto A = random(static_cast<std::size_t>(K) * lda, M * 3 + K);
  const auto X = random(static_cast<std::size_t>(K) * ldx, N * 5 + K);
  const auto C0 = random(static_cast<std::size_t>(M) * ldc, 11);
  std::vector<std::vector<float>> results;
  for (Bf16Kernel kernel : kernels_here()) {
    SCOPED_TRACE(to_string(kernel));
    KernelScope scope(kernel);
    std::vector<float> C = C0;
    AlignedVector<std::uint16_t> scratch;
    std::vector<float> sums(M, 0.5f);
    gemm_tn_bf16(M, N, K, A.data(), lda, X.data(), ldx, C.data(), ldc, scratch, sums.data());
    for (int m = 0; m < M; ++m) {  // A's column sums in fp32, added
      double sum = 0.5, mag = 0.5;
      for (int k = 0; k < K; ++k) {
        sum += A[k * lda + m];
        mag += std::fabs(A[k * lda + m]);
      }
      EXPECT_NEAR(sums[m], sum, 1e-6 * mag * (1 + K / 64.0)) << "column sum " << m;
    }
    for (int m = 0; m < M; ++m) {
      for (int n = 0; n < N; ++n) {
        double exact = 0, full = 0, mag = 0;
        for (int k = 0; k < K; ++k) {
          exact += rounded(A[k * lda + m]) * rounded(X[k * ldx + n]);
          full += static_cast<double>(A[k * lda + m]) * X[k * ldx + n];
          mag += std::fabs(static_cast<double>(A[k * lda + m]) * X[k * ldx + n]);
        }
        const double base = C0[m * ldc + n], got = C[m * ldc + n];
        EXPECT_NEAR(got, base + exact, 1e-6 * (mag + std::fabs(base)) * (1 + K / 64.0))
            << m << "," << n;
        EXPECT_NEAR(got, base + full, std::ldexp(mag, -7) + 1e-6 * std::fabs(base))
            << m << "," << n;
      }
      for (int n = N; n < ldc; ++n) EXPECT_EQ(C[m * ldc + n], C0[m * ldc + n]);
    }
    results.push_back(C);
  }
  for (std::size_t r = 1; r < results.size(); ++r)
    for (std::size_t i = 0; i < results[0].size(); ++i)
      ASSERT_NEAR(results[r][i], results[0][i], 2e-5 * (1 + std::fabs(results[0][i]))) << i;
}

TEST(Bf16, WeightGradientMatchesTheEmulationAndFp32) {
  check_tn(1, 1, 1);
  check_tn(13, 28, 131);  // odd rows, an odd tile count, a last block of odd depth
  check_tn(512, 40, 300);
  check_tn(24, 128, 64);
}

using recur::test::cpuinfo_has;

TEST(Bf16, KernelFollowsCpuidAndRefusesWhatTheCpuLacks) {
  std::ifstream probe("/proc/cpuinfo");
  ASSERT_TRUE(probe.good()) << "the test reads the CPU's flags from /proc/cpuinfo";
  EXPECT_EQ(cpu_has_avx512_bf16(), cpuinfo_has("avx512_bf16") && cpuinfo_has("avx512bw"));
  // AMX also needs the kernel's permission (granted on every Linux that lists the flags).
  EXPECT_EQ(cpu_has_amx_bf16(),
            cpu_has_avx512_bf16() && cpuinfo_has("amx_bf16") && cpuinfo_has("amx_tile"));
  if (!cpu_has_avx512_bf16()) {
    EXPECT_THROW(set_bf16_kernel(Bf16Kernel::avx512_bf16), Error);
  }
  if (!cpu_has_amx_bf16()) {
    EXPECT_THROW(set_bf16_kernel(Bf16Kernel::amx_bf16), Error);
  }
  const char* forced = std::getenv("RECUR_BF16_KERNEL");
  if (forced == nullptr || *forced == '\0') {
    // RECUR_ISA below avx512 takes the bf16 kernel away (kernels/dispatch.hpp); AMX first.
    const bool avx512 = recur::kernels::isa() == recur::kernels::Isa::avx512;
    EXPECT_EQ(bf16_kernel(), !avx512                 ? Bf16Kernel::none
                             : cpu_has_amx_bf16()    ? Bf16Kernel::amx_bf16
                             : cpu_has_avx512_bf16() ? Bf16Kernel::avx512_bf16
                                                     : Bf16Kernel::none);
  }
  // Without a kernel the products refuse, naming --precision.
  KernelScope none(Bf16Kernel::none);
  PackedBf16Matrix W;
  const std::vector<float> w(4, 1.0f), a(2, 1.0f);
  pack_bf16(w.data(), 2, 2, false, W);
  std::vector<float> c(2);
  AlignedVector<std::uint16_t> scratch;
  try {
    gemm_bf16(1, a.data(), 2, 2, nullptr, 0, W, false, c.data(), 2, scratch);
    FAIL() << "no error without a bf16 kernel";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace recur::kernels
