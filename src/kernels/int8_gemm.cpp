#include "kernels/int8_gemm.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/activations.hpp"
#include "kernels/amx.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/int8_rows.hpp"
#include "recur/error.hpp"

namespace recur::kernels {

std::string to_string(Int8Kernel k) {
  switch (k) {
    case Int8Kernel::amx_int8:
      return "amx_int8";
    case Int8Kernel::avx512_vnni:
      return "avx512_vnni";
    case Int8Kernel::avx_vnni:
      return "avx_vnni";
    case Int8Kernel::portable:
      return "portable";
  }
  return "portable";
}

Int8CpuFeatures detect_int8_features() {
  // libgcc's cpuid reading also checks (xgetbv) that the OS saves the vector registers.
  __builtin_cpu_init();
  Int8CpuFeatures f;
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  // AVX-VNNI (CPUID leaf 7, subleaf 1, EAX bit 4) by hand: not every compiler's
  // __builtin_cpu_supports knows its name. The ymm state is the OS's whenever avx2 is usable.
  unsigned a = 0, b = 0, c = 0, d = 0;
  f.avx_vnni = __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 &&
               (a & (1u << 4)) != 0;
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.amx_int8 = cpu_has_amx_int8_tiles();
  return f;
}

Int8Kernel choose_int8_kernel(const Int8CpuFeatures& f) {
  if (f.amx_int8 && f.avx512_vnni && f.avx512bw && f.fma) return Int8Kernel::amx_int8;
  if (f.avx512_vnni && f.avx512bw) return Int8Kernel::avx512_vnni;
  if (f.avx_vnni && f.avx2 && f.fma) return Int8Kernel::avx_vnni;
  return Int8Kernel::portable;
}

bool int8_kernel_supported(Int8Kernel k) {
  const Int8CpuFeatures f = detect_int8_features();
  switch (k) {
    case Int8Kernel::amx_int8:
      return f.amx_int8 && f.avx512_vnni && f.avx512bw && f.fma;
    case Int8Kernel::avx512_vnni:
      return f.avx512_vnni && f.avx512bw;
    case Int8Kernel::avx_vnni:
      return f.avx_vnni && f.avx2 && f.fma;
    case Int8Kernel::portable:
      return true;
  }
  return false;
}

namespace {

Int8Kernel initial_kernel() {
  const char* env = std::getenv("RECUR_INT8_KERNEL");
  if (!env || !*env) {
    // RECUR_ISA lowers the int8 kernels as it lowers the float ones (kernels/dispatch.hpp).
    Int8CpuFeatures f = detect_int8_features();
    if (isa() != Isa::avx512) f.avx512_vnni = f.avx512bw = f.amx_int8 = false;
    if (isa() == Isa::portable) f.avx_vnni = f.avx2 = f.fma = false;
    return choose_int8_kernel(f);
  }
  const std::string name = env;
  for (Int8Kernel k : {Int8Kernel::portable, Int8Kernel::avx_vnni, Int8Kernel::avx512_vnni,
                       Int8Kernel::amx_int8}) {
    if (name != to_string(k)) continue;
    RECUR_CHECK(int8_kernel_supported(k), "RECUR_INT8_KERNEL",
                "this CPU lacks the instructions of the " + name + " kernel");
    return k;
  }
  throw Error("RECUR_INT8_KERNEL",
              "unknown kernel '" + name + "' (portable, avx_vnni, avx512_vnni, amx_int8)");
}

std::atomic<int>& kernel_choice() {
  static std::atomic<int> choice{static_cast<int>(initial_kernel())};
  return choice;
}

}  // namespace

Int8Kernel int8_kernel() {
  return static_cast<Int8Kernel>(kernel_choice().load());
}

Int8Kernel set_int8_kernel(Int8Kernel k) {
  RECUR_CHECK(int8_kernel_supported(k), "RECUR_INT8_KERNEL",
              "this CPU lacks the instructions of the " + to_string(k) + " kernel");
  return static_cast<Int8Kernel>(kernel_choice().exchange(static_cast<int>(k)));
}

namespace {

[[gnu::always_inline]] inline void quantize_rows_impl(int M, const float* X, int ldx, int K,
                                                      std::uint8_t* q, int ldq, float* scales) {
  for (int m = 0; m < M; ++m) {
    const float* x = X + static_cast<std::size_t>(m) * ldx;
    scales[m] = quantize_row_with_max(x, K, abs_max(x, K), q + static_cast<std::size_t>(m) * ldq);
  }
}

RECUR_TARGET_AVX512 void quantize_rows_avx512(int M, const float* X, int ldx, int K,
                                              std::uint8_t* q, int ldq, float* scales) {
  for (int m = 0; m < M; ++m) {
    const float* x = X + static_cast<std::size_t>(m) * ldx;
    scales[m] = quantize_row_with_max_avx512(x, K, abs_max_avx512(x, K),
                                             q + static_cast<std::size_t>(m) * ldq);
  }
}

// The fp32 result of one sum: the same operations, in the same order, in every kernel.
[[gnu::always_inline]] inline float dequantize(std::int32_t s, float w_scale, float a_scale,
                                               float base) {
  return std::fma(static_cast<float>(s) * w_scale, a_scale, base);
}

// What a kernel writes: the int32 sums, or the fp32 results.
struct Job {
  int M;
  const std::uint8_t* A;
  int lda;
  const float* a_scales;  // fp32 results only
  const QuantizedMatrix* W;
  bool accumulate;
  float* C;
  std::int32_t* C32;  // int32 sums only
  int ldc;
};

// ---- portable: row dot products over K ----

template <bool kFloat>
[[gnu::always_inline]] inline void gemm_portable_impl(const Job& j) {
  const QuantizedMatrix& W = *j.W;
  for (int m = 0; m < j.M; ++m) {
    const std::uint8_t* a = j.A + static_cast<std::size_t>(m) * j.lda;
    for (int n = 0; n < W.N; ++n) {
      const std::int8_t* w = W.w.data() + static_cast<std::size_t>(n) * W.Kp;
      std::int32_t s = 0;
#pragma omp simd reduction(+ : s)
      for (int k = 0; k < W.Kp; ++k) s += static_cast<std::int32_t>(a[k]) * w[k];
      s -= W.compensation[n];
      const std::size_t at = static_cast<std::size_t>(m) * j.ldc + n;
      if constexpr (kFloat) {
        const float base = j.accumulate ? j.C[at] : (W.bias.empty() ? 0.0f : W.bias[n]);
        j.C[at] = dequantize(s, W.scale[n], j.a_scales[m], base);
      } else {
        j.C32[at] = s;
      }
    }
  }
}

RECUR_DISPATCHED(, void, gemm_portable_float, gemm_portable_float_v, gemm_portable_impl<true>,
                 (const Job& j), (j))
RECUR_DISPATCHED(, void, gemm_portable_s32, gemm_portable_s32_v, gemm_portable_impl<false>,
                 (const Job& j), (j))

// ---- AVX-512 VNNI: tiles of MR rows x P panels of 32 columns, two zmm accumulators each ----

// _mm512_maskz_cvtepi32_ps with a full mask: the unmasked form trips GCC 12's
// -Wmaybe-uninitialized on its undefined source register.
#define RECUR_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni,fma")))

// The 4 activation bytes of row r at k = 4 k4, as one int32 to broadcast.
[[gnu::always_inline]] inline std::int32_t four_bytes(const std::uint8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// -128 sum_k w_q[n][k] for 16 columns from n0: an accumulator starting there ends on the exact
// sum_k a_q w_q, with no subtraction after the loop.
[[gnu::always_inline]] RECUR_AVX512_VNNI inline __m512i negated_compensation(
    const QuantizedMatrix& W, int n0) {
  return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_load_si512(W.compensation.data() + n0));
}

// What the 16 output columns from n0 need to turn sums into results: the store mask (nothing
// beyond W.N), the weights' scales and the bias. False when no column is left.
struct Columns16 {
  __mmask16 mask;
  __m512 ws, bias;
};
[[gnu::always_inline]] RECUR_AVX512_VNNI inline bool columns16(const QuantizedMatrix& W, int n0,
                                                               Columns16& c) {
  const int cols = std::min(16, W.N - n0);
  if (cols <= 0) return false;
  c.mask = static_cast<__mmask16>((1u << cols) - 1u);
  c.ws = _mm512_load_ps(W.scale.data() + n0);
  c.bias = W.bias.empty() ? _mm512_setzero_ps() : _mm512_load_ps(W.bias.data() + n0);
  return true;
}

// One row's 16 sums from column n0 (compensation subtracted) written as rows512 writes them.
template <bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void store_sums16(const Job& j, int row, int n0,
                                                                  const Columns16& c, __m512i s) {
  const std::size_t at = static_cast<std::size_t>(row) * j.ldc + n0;
  if constexpr (kFloat) {
    const __m512 base = j.accumulate ? _mm512_maskz_loadu_ps(c.mask, j.C + at) : c.bias;
    const __m512 v = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, s), c.ws);
    _mm512_mask_storeu_ps(j.C + at, c.mask,
                          _mm512_fmadd_ps(v, _mm512_set1_ps(j.a_scales[row]), base));
  } else {
    _mm512_mask_storeu_epi32(j.C32 + at, c.mask, s);
  }
}

// Four rows' sums of the 16 columns from n0 (nothing beyond W.N).
template <bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void store_column16(const Job& j, int m, int n0,
                                                                    __m512i s0, __m512i s1,
                                                                    __m512i s2, __m512i s3) {
  Columns16 c;
  if (!columns16(*j.W, n0, c)) return;
  store_sums16<kFloat>(j, m, n0, c, s0);
  store_sums16<kFloat>(j, m + 1, n0, c, s1);
  store_sums16<kFloat>(j, m + 2, n0, c, s2);
  store_sums16<kFloat>(j, m + 3, n0, c, s3);
}

// Writes a tile's sums (acc[r][q][h]: row m + r, columns (p + q) * 32 + 16 h + [0, 16)), their
// compensation already subtracted (the accumulators start from it).
template <int MR, int P, bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void store_tile512(const Job& j, int m, int p,
                                                                   const __m512i (&acc)[MR][P][2]) {
  for (int q = 0; q < P; ++q)
    for (int h = 0; h < 2; ++h) {
      const int n0 = (p + q) * kInt8Panel + 16 * h;
      Columns16 c;
      if (!columns16(*j.W, n0, c)) continue;
      for (int r = 0; r < MR; ++r) store_sums16<kFloat>(j, m + r, n0, c, acc[r][q][h]);
    }
}

template <int MR, int P, bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void tile512(const Job& j, int m, int p) {
  const QuantizedMatrix& W = *j.W;
  const int Kq = W.Kp / 4;
  const std::size_t stride = static_cast<std::size_t>(Kq) * kInt8Panel * 4;
  const std::int8_t* panel = W.w.data() + static_cast<std::size_t>(p) * stride;
  const std::uint8_t* A = j.A + static_cast<std::size_t>(m) * j.lda;
  __m512i acc[MR][P][2];
  for (int q = 0; q < P; ++q)
    for (int h = 0; h < 2; ++h) {
      const __m512i start = negated_compensation(W, (p + q) * kInt8Panel + 16 * h);
      for (int r = 0; r < MR; ++r) acc[r][q][h] = start;
    }
  for (int k4 = 0; k4 < Kq; ++k4) {
    __m512i w[P][2];
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) {
      const std::int8_t* b = panel + q * stride + static_cast<std::size_t>(k4) * 128;
      w[q][0] = _mm512_load_si512(b);
      w[q][1] = _mm512_load_si512(b + 64);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i a =
          _mm512_set1_epi32(four_bytes(A + static_cast<std::size_t>(r) * j.lda + 4 * k4));
#pragma GCC unroll 8
      for (int q = 0; q < P; ++q) {
        acc[r][q][0] = _mm512_dpbusd_epi32(acc[r][q][0], a, w[q][0]);
        acc[r][q][1] = _mm512_dpbusd_epi32(acc[r][q][1], a, w[q][1]);
      }
    }
  }
  store_tile512<MR, P, kFloat>(j, m, p, acc);
}

// The tile of most rows: 4 rows x 2 panels, its 16 accumulators named one by one (in an array,
// GCC 12 copied them between registers on every step of the loop).
template <bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void tile512_4x2(const Job& j, int m, int p) {
  const QuantizedMatrix& W = *j.W;
  const int Kq = W.Kp / 4;
  const std::size_t stride = static_cast<std::size_t>(Kq) * kInt8Panel * 4;
  const std::int8_t* b0 = W.w.data() + static_cast<std::size_t>(p) * stride;
  const std::int8_t* b1 = b0 + stride;
  const std::uint8_t* a0 = j.A + static_cast<std::size_t>(m) * j.lda;
  const std::uint8_t* a1 = a0 + j.lda;
  const std::uint8_t* a2 = a1 + j.lda;
  const std::uint8_t* a3 = a2 + j.lda;
  const int n0 = p * kInt8Panel;
  __m512i c00 = negated_compensation(W, n0), c01 = negated_compensation(W, n0 + 16),
          c02 = negated_compensation(W, n0 + 32), c03 = negated_compensation(W, n0 + 48);
  __m512i c10 = c00, c11 = c01, c12 = c02, c13 = c03;
  __m512i c20 = c00, c21 = c01, c22 = c02, c23 = c03;
  __m512i c30 = c00, c31 = c01, c32 = c02, c33 = c03;
  for (int k4 = 0; k4 < Kq; ++k4) {
    const std::size_t at = static_cast<std::size_t>(k4) * 128;
    const __m512i w0 = _mm512_load_si512(b0 + at), w1 = _mm512_load_si512(b0 + at + 64);
    const __m512i w2 = _mm512_load_si512(b1 + at), w3 = _mm512_load_si512(b1 + at + 64);
    __m512i a = _mm512_set1_epi32(four_bytes(a0 + 4 * k4));
    c00 = _mm512_dpbusd_epi32(c00, a, w0);
    c01 = _mm512_dpbusd_epi32(c01, a, w1);
    c02 = _mm512_dpbusd_epi32(c02, a, w2);
    c03 = _mm512_dpbusd_epi32(c03, a, w3);
    a = _mm512_set1_epi32(four_bytes(a1 + 4 * k4));
    c10 = _mm512_dpbusd_epi32(c10, a, w0);
    c11 = _mm512_dpbusd_epi32(c11, a, w1);
    c12 = _mm512_dpbusd_epi32(c12, a, w2);
    c13 = _mm512_dpbusd_epi32(c13, a, w3);
    a = _mm512_set1_epi32(four_bytes(a2 + 4 * k4));
    c20 = _mm512_dpbusd_epi32(c20, a, w0);
    c21 = _mm512_dpbusd_epi32(c21, a, w1);
    c22 = _mm512_dpbusd_epi32(c22, a, w2);
    c23 = _mm512_dpbusd_epi32(c23, a, w3);
    a = _mm512_set1_epi32(four_bytes(a3 + 4 * k4));
    c30 = _mm512_dpbusd_epi32(c30, a, w0);
    c31 = _mm512_dpbusd_epi32(c31, a, w1);
    c32 = _mm512_dpbusd_epi32(c32, a, w2);
    c33 = _mm512_dpbusd_epi32(c33, a, w3);
  }
  // Column by column from the named registers (an array of them went through the stack).
  store_column16<kFloat>(j, m, n0, c00, c10, c20, c30);
  store_column16<kFloat>(j, m, n0 + 16, c01, c11, c21, c31);
  store_column16<kFloat>(j, m, n0 + 32, c02, c12, c22, c32);
  store_column16<kFloat>(j, m, n0 + 48, c03, c13, c23, c33);
}

// Rows [m, m + MR) against panels [p, end) in groups of P, the rest one by one.
template <int MR, int P, bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void rows512(const Job& j, int m, int p, int end) {
  if constexpr (MR == 4 && P == 2) {
    for (; p + P <= end; p += P) tile512_4x2<kFloat>(j, m, p);
  } else {
    for (; p + P <= end; p += P) tile512<MR, P, kFloat>(j, m, p);
  }
  for (; p < end; ++p) tile512<MR, 1, kFloat>(j, m, p);
}

template <bool kFloat>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void gemm512_impl(const Job& j) {
  const int panels = j.W->Np / kInt8Panel;
  // One or two rows (batch-1 and streaming): four panels at once for independent chains.
  if (j.M == 1) return rows512<1, 4, kFloat>(j, 0, 0, panels);
  if (j.M == 2) return rows512<2, 4, kFloat>(j, 0, 0, panels);
  // Two panels (2 x 32 x K bytes) stay in L1 while the rows stream past them, 4 rows a tile
  // (16 accumulators: with 6 rows, 24, GCC shuffled registers and ran at half the speed).
  for (int p = 0; p < panels; p += 2) {
    const int end = std::min(panels, p + 2);
    int m = 0;
    for (; m + 4 <= j.M; m += 4) rows512<4, 2, kFloat>(j, m, p, end);
    switch (j.M - m) {
      case 3:
        rows512<3, 2, kFloat>(j, m, p, end);
        break;
      case 2:
        rows512<2, 2, kFloat>(j, m, p, end);
        break;
      case 1:
        rows512<1, 2, kFloat>(j, m, p, end);
        break;
      default:
        break;
    }
  }
}

RECUR_AVX512_VNNI void gemm512_float(const Job& j) {
  gemm512_impl<true>(j);
}

// The sums of `rows` rows of one panel (two zmm of 16 columns each) over a job's K, in acc
// (started from the negated compensation).
template <int R>
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void panel_sums(const Job& j, int m, int p,
                                                                __m512i (&acc)[R][2]) {
  const QuantizedMatrix& W = *j.W;
  const int Kq = W.Kp / 4;
  const std::int8_t* b = W.w.data() + static_cast<std::size_t>(p) * Kq * kInt8Panel * 4;
  const std::uint8_t* A = j.A + static_cast<std::size_t>(m) * j.lda;
  const __m512i start0 = negated_compensation(W, p * kInt8Panel),
                start1 = negated_compensation(W, p * kInt8Panel + 16);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    acc[r][0] = start0;
    acc[r][1] = start1;
  }
  for (int k4 = 0; k4 < Kq; ++k4) {
    const __m512i w0 = _mm512_load_si512(b + static_cast<std::size_t>(k4) * 128);
    const __m512i w1 = _mm512_load_si512(b + static_cast<std::size_t>(k4) * 128 + 64);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i a =
          _mm512_set1_epi32(four_bytes(A + static_cast<std::size_t>(r) * j.lda + 4 * k4));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, w1);
    }
  }
}

// Four rows x one panel of the pair: j1's sums and j2's side by side in registers (16
// accumulators), then C = (j1's result with its bias) + j2's, the same two roundings as j1's
// store followed by j2's accumulating one, without C's trip through memory between them.
[[gnu::always_inline]] RECUR_AVX512_VNNI inline void pair_tile4(const Job& j1, const Job& j2, int m,
                                                                int p) {
  __m512i s1[4][2], s2[4][2];
  panel_sums<4>(j1, m, p, s1);
  panel_sums<4>(j2, m, p, s2);
  for (int h = 0; h < 2; ++h) {
    const int n0 = p * kInt8Panel + 16 * h;
    Columns16 c;  // j1's mask, scales and bias (j2, added as an accumulating store, has none)
    if (!columns16(*j1.W, n0, c)) continue;
    const __m512 ws2 = _mm512_load_ps(j2.W->scale.data() + n0);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const __m512 v1 =
          _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, s1[r][h]), c.ws),
                          _mm512_set1_ps(j1.a_scales[m + r]), c.bias);
      const __m512 v2 = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, s2[r][h]), ws2);
      _mm512_mask_storeu_ps(j1.C + static_cast<std::size_t>(m + r) * j1.ldc + n0, c.mask,
                            _mm512_fmadd_ps(v2, _mm512_set1_ps(j2.a_scales[m + r]), v1));
    }
  }
}

// j1's product into C, then j2's added: four rows at a time both sums are kept in registers;
// the last rows go through C tile by tile.
RECUR_AVX512_VNNI void gemm512_pair(const Job& j1, const Job& j2) {
  const int panels = j1.W->Np / kInt8Panel;
  if (j1.M <= 2) {
    gemm512_impl<true>(j1);
    gemm512_impl<true>(j2);
    return;
  }
  for (int p = 0; p < panels; ++p) {
    int m = 0;
    for (; m + 4 <= j1.M; m += 4) pair_tile4(j1, j2, m, p);
    for (; m < j1.M; ++m) {
      rows512<1, 1, true>(j1, m, p, p + 1);
      rows512<1, 1, true>(j2, m, p, p + 1);
    }
  }
}
RECUR_AVX512_VNNI void gemm512_s32(const Job& j) {
  gemm512_impl<false>(j);
}

// ---- AMX: 32 x 32 blocks of C in four int32 tiles (kernels/amx.hpp), tdpbusd ----
//
// The accumulators start at the panel's negated compensation (a 16-value row loaded 16 times:
// stride 0), as the VNNI kernel's do, so the int32 sums are the same exact integers; each tile's
// sums then go through a staging tile to store_sums16, the VNNI kernel's own scaling: the same
// fp32 results, bit for bit. The weights are the VNNI kernel's panels (Kp a multiple of 4): a
// tile reads 16 quad rows, and the last one of a panel runs into the next panel (or the slack
// after the last), which it multiplies by zeros: A's rows are copied into a scratch whose rows
// are whole tiles long, zero bytes past Kp, and whose row count is a multiple of 16.

#define RECUR_AMX_INT8 __attribute__((target("avx512f,avx512bw,avx512vnni,fma,amx-tile,amx-int8")))

inline constexpr int kAmxInt8Depth = 64;
// Fewer rows go to the VNNI kernel.
inline constexpr int kAmxMinRows = 16;

#define RECUR_AMX_INT8_STORE(T, row0, rows, n0)                                             \
  do {                                                                                      \
    Columns16 c_;                                                                           \
    if ((rows) > 0 && columns16(*j.W, (n0), c_)) {                                          \
      _tile_stored(T, stage, 64);                                                           \
      for (int r_ = 0; r_ < (rows); ++r_)                                                   \
        store_sums16<kFloat>(j, (row0) + r_, (n0), c_, _mm512_load_si512(stage + 16 * r_)); \
    }                                                                                       \
  } while (0)

// A job's rows copied for the tiles into `rows` (row stride returned: Kp rounded up to whole
// tiles): each row's Kp bytes (what every kernel reads of a row) by 64-byte masked moves, zeros
// after, and zero rows up to a multiple of 16.
RECUR_AMX_INT8 int copy_rows_for_tiles(const Job& j, AlignedVector<std::uint8_t>& rows) {
  const int Kp = j.W->Kp, Ka = (Kp + kAmxInt8Depth - 1) / kAmxInt8Depth * kAmxInt8Depth;
  const int M16 = (j.M + 15) / 16 * 16;
  const std::size_t need = static_cast<std::size_t>(M16) * Ka;
  if (rows.size() < need) rows.resize(need);
  for (int m = 0; m < M16; ++m) {
    std::uint8_t* dst = rows.data() + static_cast<std::size_t>(m) * Ka;
    const std::uint8_t* src = j.A + static_cast<std::size_t>(m) * j.lda;
    for (int k = 0; k < Ka; k += kAmxInt8Depth) {
      const int left = m < j.M ? Kp - k : 0;
      const __mmask64 mask = left >= 64  ? ~__mmask64{0}
                             : left <= 0 ? __mmask64{0}
                                         : (__mmask64{1} << left) - 1;
      _mm512_storeu_si512(dst + k, _mm512_maskz_loadu_epi8(mask, src + k));
    }
  }
  return Ka;
}

template <bool kFloat>
[[gnu::always_inline]] RECUR_AMX_INT8 inline void gemm_amx_impl(const Job& j) {
  const QuantizedMatrix& W = *j.W;
  static thread_local AlignedVector<std::uint8_t> a_rows;
  const int Ka = copy_rows_for_tiles(j, a_rows);
  const int chunks = Ka / kAmxInt8Depth, panels = W.Np / kInt8Panel;
  alignas(64) std::int32_t negated[kInt8Panel];
  alignas(64) std::int32_t stage[16 * 16];
  memory_fence();
  configure_tiles();
  for (int p = 0; p < panels; ++p) {
    const int n0 = p * kInt8Panel;
    for (int i = 0; i < kInt8Panel; ++i) negated[i] = -W.compensation[n0 + i];
    memory_fence();
    const std::int8_t* panel = W.w.data() + static_cast<std::size_t>(p) * W.Kp * kInt8Panel;
    for (int m = 0; m < j.M; m += 32) {
      const int rows0 = std::min(16, j.M - m), rows1 = std::min(16, j.M - m - 16);
      const std::uint8_t* a = a_rows.data() + static_cast<std::size_t>(m) * Ka;
      const bool two = rows1 > 0;
      _tile_loadd(0, negated, 0);
      _tile_loadd(1, negated + 16, 0);
      if (two) {
        _tile_loadd(2, negated, 0);
        _tile_loadd(3, negated + 16, 0);
      }
      for (int q = 0; q < chunks; ++q)
        amx_int8_chunk(a + q * kAmxInt8Depth,
                       a + static_cast<std::size_t>(16) * Ka + q * kAmxInt8Depth, Ka,
                       panel + static_cast<std::size_t>(q) * 16 * kInt8Panel * 4, two);
      if (two) {
        RECUR_AMX_INT8_STORE(2, m + 16, rows1, n0);
        RECUR_AMX_INT8_STORE(3, m + 16, rows1, n0 + 16);
      }
      RECUR_AMX_INT8_STORE(0, m, rows0, n0);
      RECUR_AMX_INT8_STORE(1, m, rows0, n0 + 16);
    }
  }
  _tile_release();
}

// The pair (j1 with its bias, then j2 added) 16 rows x one panel at a time: j1's sums in tmm0-1,
// j2's in tmm2-3, then C = (j1's result with its bias) + j2's in one pass, the operations of
// pair_tile4 (the same bits as the two products in turn), without C's trip through memory.
#define RECUR_AMX_INT8_PAIR_STORE(T1, T2, h)                                                   \
  do {                                                                                         \
    const int n0_ = p * kInt8Panel + 16 * (h);                                                 \
    Columns16 c_;                                                                              \
    if (!columns16(W1, n0_, c_)) break;                                                        \
    _tile_stored(T1, stage1, 64);                                                              \
    _tile_stored(T2, stage2, 64);                                                              \
    const __m512 ws2_ = _mm512_load_ps(W2.scale.data() + n0_);                                 \
    for (int r_ = 0; r_ < rows; ++r_) {                                                        \
      const __m512 v1_ = _mm512_fmadd_ps(                                                      \
          _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(stage1 + 16 * r_)), \
                        c_.ws),                                                                \
          _mm512_set1_ps(j1.a_scales[m + r_]), c_.bias);                                       \
      const __m512 v2_ = _mm512_mul_ps(                                                        \
          _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_load_si512(stage2 + 16 * r_)), ws2_);        \
      _mm512_mask_storeu_ps(j1.C + static_cast<std::size_t>(m + r_) * j1.ldc + n0_, c_.mask,   \
                            _mm512_fmadd_ps(v2_, _mm512_set1_ps(j2.a_scales[m + r_]), v1_));   \
    }                                                                                          \
  } while (0)

RECUR_AMX_INT8 void gemm_amx_pair(const Job& j1, const Job& j2) {
  const QuantizedMatrix& W1 = *j1.W;
  const QuantizedMatrix& W2 = *j2.W;
  static thread_local AlignedVector<std::uint8_t> rows1, rows2;
  const int Ka1 = copy_rows_for_tiles(j1, rows1), Ka2 = copy_rows_for_tiles(j2, rows2);
  const int chunks1 = Ka1 / kAmxInt8Depth, chunks2 = Ka2 / kAmxInt8Depth;
  const int panels = W1.Np / kInt8Panel;
  alignas(64) std::int32_t negated1[kInt8Panel], negated2[kInt8Panel];
  alignas(64) std::int32_t stage1[16 * 16], stage2[16 * 16];
  memory_fence();
  configure_tiles();
  for (int p = 0; p < panels; ++p) {
    const int n0 = p * kInt8Panel;
    for (int i = 0; i < kInt8Panel; ++i) {
      negated1[i] = -W1.compensation[n0 + i];
      negated2[i] = -W2.compensation[n0 + i];
    }
    memory_fence();
    const std::int8_t* panel1 = W1.w.data() + static_cast<std::size_t>(p) * W1.Kp * kInt8Panel;
    const std::int8_t* panel2 = W2.w.data() + static_cast<std::size_t>(p) * W2.Kp * kInt8Panel;
    for (int m = 0; m < j1.M; m += 16) {
      const int rows = std::min(16, j1.M - m);
      _tile_loadd(0, negated1, 0);
      _tile_loadd(1, negated1 + 16, 0);
      _tile_loadd(2, negated2, 0);
      _tile_loadd(3, negated2 + 16, 0);
      const std::uint8_t* a1 = rows1.data() + static_cast<std::size_t>(m) * Ka1;
      for (int q = 0; q < chunks1; ++q)
        amx_int8_chunk(a1 + q * kAmxInt8Depth, nullptr, Ka1,
                       panel1 + static_cast<std::size_t>(q) * 16 * kInt8Panel * 4, false);
      const std::uint8_t* a2 = rows2.data() + static_cast<std::size_t>(m) * Ka2;
      for (int q = 0; q < chunks2; ++q)
        amx_int8_chunk_second(a2 + q * kAmxInt8Depth, Ka2,
                              panel2 + static_cast<std::size_t>(q) * 16 * kInt8Panel * 4);
      RECUR_AMX_INT8_PAIR_STORE(0, 2, 0);
      RECUR_AMX_INT8_PAIR_STORE(1, 3, 1);
    }
  }
  _tile_release();
}

RECUR_AMX_INT8 void gemm_amx_float(const Job& j) {
  gemm_amx_impl<true>(j);
}
RECUR_AMX_INT8 void gemm_amx_s32(const Job& j) {
  gemm_amx_impl<false>(j);
}

// ---- AVX-VNNI (VEX, 256-bit): tiles of MR <= 2 rows x one panel, four ymm accumulators each ----

#define RECUR_AVX_VNNI __attribute__((target("avx2,fma,avxvnni")))

template <int MR, bool kFloat>
[[gnu::always_inline]] RECUR_AVX_VNNI inline void tile256(const Job& j, int m, int p) {
  const QuantizedMatrix& W = *j.W;
  const int Kq = W.Kp / 4;
  const std::int8_t* panel = W.w.data() + static_cast<std::size_t>(p) * Kq * kInt8Panel * 4;
  const std::uint8_t* A = j.A + static_cast<std::size_t>(m) * j.lda;
  __m256i acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 4; ++h) acc[r][h] = _mm256_setzero_si256();
  for (int k4 = 0; k4 < Kq; ++k4) {
    __m256i w[4];
    for (int h = 0; h < 4; ++h)
      w[h] = _mm256_load_si256(
          reinterpret_cast<const __m256i*>(panel + static_cast<std::size_t>(k4) * 128 + 32 * h));
    for (int r = 0; r < MR; ++r) {
      const __m256i a =
          _mm256_set1_epi32(four_bytes(A + static_cast<std::size_t>(r) * j.lda + 4 * k4));
      for (int h = 0; h < 4; ++h) acc[r][h] = _mm256_dpbusd_avx_epi32(acc[r][h], a, w[h]);
    }
  }
  for (int h = 0; h < 4; ++h) {
    const int n0 = p * kInt8Panel + 8 * h;
    const int cols = std::min(8, W.N - n0);
    if (cols <= 0) continue;
    const __m256i comp =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(W.compensation.data() + n0));
    const __m256 ws = _mm256_load_ps(W.scale.data() + n0);
    const __m256 bias = W.bias.empty() ? _mm256_setzero_ps() : _mm256_load_ps(W.bias.data() + n0);
    for (int r = 0; r < MR; ++r) {
      const __m256i s = _mm256_sub_epi32(acc[r][h], comp);
      const std::size_t at = static_cast<std::size_t>(m + r) * j.ldc + n0;
      alignas(32) float f[8];
      alignas(32) std::int32_t i[8];
      if constexpr (kFloat) {
        __m256 base = bias;
        if (j.accumulate) {
          for (int c = 0; c < 8; ++c) f[c] = c < cols ? j.C[at + c] : 0.0f;
          base = _mm256_load_ps(f);
        }
        const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), ws);
        _mm256_store_ps(f, _mm256_fmadd_ps(v, _mm256_set1_ps(j.a_scales[m + r]), base));
        for (int c = 0; c < cols; ++c) j.C[at + c] = f[c];
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(i), s);
        for (int c = 0; c < cols; ++c) j.C32[at + c] = i[c];
      }
    }
  }
}

template <bool kFloat>
[[gnu::always_inline]] RECUR_AVX_VNNI inline void gemm256_impl(const Job& j) {
  const int panels = j.W->Np / kInt8Panel;
  for (int p = 0; p < panels; ++p) {
    int m = 0;
    for (; m + 2 <= j.M; m += 2) tile256<2, kFloat>(j, m, p);
    if (m < j.M) tile256<1, kFloat>(j, m, p);
  }
}

RECUR_AVX_VNNI void gemm256_float(const Job& j) {
  gemm256_impl<true>(j);
}
RECUR_AVX_VNNI void gemm256_s32(const Job& j) {
  gemm256_impl<false>(j);
}

void run(const Job& j, bool as_float) {
  if (j.M <= 0 || j.W->N <= 0) return;
  switch (j.W->kernel) {
    case Int8Kernel::amx_int8:
      // Few rows: the tiles' 16 rows would be mostly padding; the VNNI kernel reads the same
      // panels and gives the same bits.
      if (j.M < kAmxMinRows) return as_float ? gemm512_float(j) : gemm512_s32(j);
      return as_float ? gemm_amx_float(j) : gemm_amx_s32(j);
    case Int8Kernel::avx512_vnni:
      return as_float ? gemm512_float(j) : gemm512_s32(j);
    case Int8Kernel::avx_vnni:
      return as_float ? gemm256_float(j) : gemm256_s32(j);
    case Int8Kernel::portable:
      return as_float ? gemm_portable_float(j) : gemm_portable_s32(j);
  }
}

}  // namespace

void quantize_weights(const float* W, int N, int K, int ldw, const float* bias1, const float* bias2,
                      Int8Kernel kernel, QuantizedMatrix& out) {
  RECUR_ASSERT(N >= 1 && K >= 1 && K <= kMaxInt8Depth);
  out.N = N;
  out.K = K;
  out.Kp = quantized_row_bytes(K);
  out.Np = (N + kInt8Panel - 1) / kInt8Panel * kInt8Panel;
  out.kernel = kernel;
  out.scale.assign(out.Np, 0.0f);
  out.compensation.assign(out.Np, 0);
  // AMX's last tile of the last panel reads up to 15 quad rows past it (multiplied by zeros).
  const std::size_t slack = kernel == Int8Kernel::amx_int8 ? std::size_t{16} * kInt8Panel * 4 : 0;
  out.w.assign(static_cast<std::size_t>(out.Np) * out.Kp + slack, 0);
  std::vector<std::int8_t> row(out.Kp);
  for (int n = 0; n < N; ++n) {
    const float* w = W + static_cast<std::size_t>(n) * ldw;
    const float amax = abs_max(w, K);
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    out.scale[n] = amax / 127.0f;
    std::int32_t sum = 0;
    for (int k = 0; k < K; ++k) {
      const float v = std::clamp(std::nearbyint(w[k] * inv), -127.0f, 127.0f);
      row[k] = static_cast<std::int8_t>(v);
      sum += row[k];
    }
    out.compensation[n] = 128 * sum;
    for (int k = 0; k < K; ++k) {
      std::size_t at;
      if (kernel == Int8Kernel::portable) {
        at = static_cast<std::size_t>(n) * out.Kp + k;
      } else {
        const int p = n / kInt8Panel, col = n % kInt8Panel;
        at = ((static_cast<std::size_t>(p) * (out.Kp / 4) + k / 4) * kInt8Panel + col) * 4 + k % 4;
      }
      out.w[at] = row[k];
    }
  }
  out.bias.clear();
  if (bias1 || bias2) {
    out.bias.assign(out.Np, 0.0f);
    for (int n = 0; n < N; ++n) out.bias[n] = (bias1 ? bias1[n] : 0.0f) + (bias2 ? bias2[n] : 0.0f);
  }
}

RECUR_TARGET_AVX2 static void quantize_rows_avx2(int M, const float* X, int ldx, int K,
                                                 std::uint8_t* q, int ldq, float* scales) {
  quantize_rows_impl(M, X, ldx, K, q, ldq, scales);
}
static void quantize_rows_portable(int M, const float* X, int ldx, int K, std::uint8_t* q, int ldq,
                                   float* scales) {
  quantize_rows_impl(M, X, ldx, K, q, ldq, scales);
}

void quantize_rows(int M, const float* X, int ldx, int K, std::uint8_t* q, int ldq, float* scales) {
  switch (isa()) {
    case Isa::avx512:
      return quantize_rows_avx512(M, X, ldx, K, q, ldq, scales);
    case Isa::avx2:
      return quantize_rows_avx2(M, X, ldx, K, q, ldq, scales);
    default:
      return quantize_rows_portable(M, X, ldx, K, q, ldq, scales);
  }
}

void int8_gemm_s32(int M, const std::uint8_t* A, int lda, const QuantizedMatrix& W, std::int32_t* C,
                   int ldc) {
  run(Job{M, A, lda, nullptr, &W, false, nullptr, C, ldc}, false);
}

void int8_gemm_pair(int M, const std::uint8_t* A1, int lda1, const float* scales1,
                    const QuantizedMatrix& W1, const std::uint8_t* A2, int lda2,
                    const float* scales2, const QuantizedMatrix& W2, float* C, int ldc) {
  RECUR_ASSERT(W1.N == W2.N && W1.kernel == W2.kernel);
  const Job j1{M, A1, lda1, scales1, &W1, false, C, nullptr, ldc};
  const Job j2{M, A2, lda2, scales2, &W2, true, C, nullptr, ldc};
  const bool vnni_rows = W1.kernel == Int8Kernel::avx512_vnni ||
                         (W1.kernel == Int8Kernel::amx_int8 && M < kAmxMinRows);
  if (M > 0 && vnni_rows) return gemm512_pair(j1, j2);
  if (M > 0 && W1.kernel == Int8Kernel::amx_int8) return gemm_amx_pair(j1, j2);
  run(j1, true);
  run(j2, true);
}

void int8_gemm(int M, const std::uint8_t* A, int lda, const float* a_scales,
               const QuantizedMatrix& W, bool accumulate, float* C, int ldc) {
  run(Job{M, A, lda, a_scales, &W, accumulate, C, nullptr, ldc}, true);
}

}  // namespace recur::kernels
