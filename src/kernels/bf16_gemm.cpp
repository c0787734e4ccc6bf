#include "kernels/bf16_gemm.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/amx.hpp"
#include "kernels/dispatch.hpp"
#include "recur/error.hpp"

namespace recur::kernels {

std::string to_string(Bf16Kernel k) {
  switch (k) {
    case Bf16Kernel::none:
      return "none";
    case Bf16Kernel::portable:
      return "portable";
    case Bf16Kernel::avx512_bf16:
      return "avx512_bf16";
    case Bf16Kernel::amx_bf16:
      return "amx_bf16";
  }
  return "none";
}

bool cpu_has_avx512_bf16() {
  // libgcc's cpuid reading checks (xgetbv) that the OS saves the zmm registers; AVX512_BF16
  // itself (leaf 7, subleaf 1, EAX bit 5) by hand: not every compiler's __builtin_cpu_supports
  // knows its name.
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 5)) != 0;
}

bool cpu_has_amx_bf16() {
  return cpu_has_avx512_bf16() && cpu_has_amx_bf16_tiles();
}

bool bf16_kernel_supported(Bf16Kernel k) {
  if (k == Bf16Kernel::amx_bf16) return cpu_has_amx_bf16();
  return k != Bf16Kernel::avx512_bf16 || cpu_has_avx512_bf16();
}

namespace {

Bf16Kernel initial_kernel() {
  const char* env = std::getenv("RECUR_BF16_KERNEL");
  // RECUR_ISA below avx512 (kernels/dispatch.hpp) takes the bf16 kernel away as it lowers the
  // float ones: bf16 training is then refused as on a CPU without it.
  if (!env || !*env) {
    if (isa() != Isa::avx512) return Bf16Kernel::none;
    if (cpu_has_amx_bf16()) return Bf16Kernel::amx_bf16;
    return cpu_has_avx512_bf16() ? Bf16Kernel::avx512_bf16 : Bf16Kernel::none;
  }
  const std::string name = env;
  for (Bf16Kernel k :
       {Bf16Kernel::none, Bf16Kernel::portable, Bf16Kernel::avx512_bf16, Bf16Kernel::amx_bf16}) {
    if (name != to_string(k)) continue;
    RECUR_CHECK(bf16_kernel_supported(k), "RECUR_BF16_KERNEL",
                "this CPU lacks the instructions of the " + name + " kernel");
    return k;
  }
  throw Error("RECUR_BF16_KERNEL",
              "unknown kernel '" + name + "' (amx_bf16, avx512_bf16, portable, none)");
}

std::atomic<int>& kernel_choice() {
  static std::atomic<int> choice{static_cast<int>(initial_kernel())};
  return choice;
}

}  // namespace

Bf16Kernel bf16_kernel() {
  return static_cast<Bf16Kernel>(kernel_choice().load());
}

Bf16Kernel set_bf16_kernel(Bf16Kernel k) {
  RECUR_CHECK(bf16_kernel_supported(k), "RECUR_BF16_KERNEL",
              "this CPU lacks the instructions of the " + to_string(k) + " kernel");
  return static_cast<Bf16Kernel>(kernel_choice().exchange(static_cast<int>(k)));
}

std::uint16_t to_bf16(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7f800000u) == 0) return static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

float from_bf16(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

namespace {

int even(int k) {
  return (k + 1) / 2 * 2;
}

// The packed depth: K rounded up to whole AMX tiles' inner values (zero padded).
int padded_depth(int k) {
  return (k + kBf16Depth - 1) / kBf16Depth * kBf16Depth;
}

// The kernels that pack and round with AVX-512 (the same bytes as the portable packing).
bool simd_packing() {
  const Bf16Kernel k = bf16_kernel();
  return k == Bf16Kernel::avx512_bf16 || k == Bf16Kernel::amx_bf16;
}

// Packs N columns of an operand read through w(n, k) into panels [ceil(N/32)][Kp/2][32][2].
template <class Get>
void pack_panels(int N, int K, Get w, PackedBf16Matrix& out) {
  const int panels = (N + kBf16Panel - 1) / kBf16Panel;
  out.N = N;
  out.K = K;
  out.Kp = padded_depth(K);
  out.panels.assign(static_cast<std::size_t>(panels) * out.Kp * kBf16Panel, 0);
  for (int p = 0; p < panels; ++p) {
    std::uint16_t* dst = out.panels.data() + static_cast<std::size_t>(p) * out.Kp * kBf16Panel;
    const int n0 = p * kBf16Panel, cols = std::min(kBf16Panel, N - n0);
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < cols; ++j)
        dst[(k / 2 * kBf16Panel + j) * 2 + k % 2] = to_bf16(w(n0 + j, k));
  }
}

}  // namespace

namespace {

// ---- the emulation: plain C++ over the same packed forms ----

// Rows of [A1 | A2] rounded to bf16 into rows of Kp (zero padded).
void round_rows_portable(int M, const float* A1, int lda1, int k1, const float* A2, int lda2, int K,
                         int Kp, std::uint16_t* out) {
  for (int m = 0; m < M; ++m) {
    std::uint16_t* row = out + static_cast<std::size_t>(m) * Kp;
    for (int k = 0; k < k1; ++k) row[k] = to_bf16(A1[static_cast<std::size_t>(m) * lda1 + k]);
    for (int k = k1; k < K; ++k)
      row[k] = to_bf16(A2[static_cast<std::size_t>(m) * lda2 + (k - k1)]);
    for (int k = K; k < Kp; ++k) row[k] = 0;
  }
}

// One pair's two products into acc in vdpbf16ps' order: the odd element's, then the even's.
inline float add_pair(float acc, const std::uint16_t* a, const std::uint16_t* b) {
  acc += from_bf16(a[1]) * from_bf16(b[1]);
  return acc + from_bf16(a[0]) * from_bf16(b[0]);
}

// Inner dimension per pass of the row products: a 512 x 32 slice of a panel (32 KB) stays in L1.
constexpr int kDepth = 512;

// A's rows are Kp apart; the sums run over the real pairs, [0, even(K)).
void gemm_rows_portable(int M, const std::uint16_t* A, int Kp, const PackedBf16Matrix& W,
                        bool accumulate, float* C, int ldc) {
  const int panels = (W.N + kBf16Panel - 1) / kBf16Panel, Kr = even(W.K);
  for (int k0 = 0; k0 < Kr; k0 += kDepth) {
    const int k_end = std::min(Kr, k0 + kDepth);
    for (int p = 0; p < panels; ++p) {
      const std::uint16_t* panel = W.panels.data() + static_cast<std::size_t>(p) * Kp * kBf16Panel;
      const int n0 = p * kBf16Panel, cols = std::min(kBf16Panel, W.N - n0);
      for (int m = 0; m < M; ++m) {
        const std::uint16_t* a = A + static_cast<std::size_t>(m) * Kp;
        for (int j = 0; j < cols; ++j) {
          float& c = C[static_cast<std::size_t>(m) * ldc + n0 + j];
          float acc = accumulate || k0 > 0 ? c : (W.bias.empty() ? 0.0f : W.bias[n0 + j]);
          for (int k = k0; k < k_end; k += 2)
            acc = add_pair(acc, a + k, panel + (k / 2 * kBf16Panel + j) * 2);
          c = acc;
        }
      }
    }
  }
}

// ---- AVX512_BF16 ----

#define RECUR_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

// The first `cols` (0..16) lanes.
inline __mmask16 lanes(int cols) {
  return cols >= 16 ? static_cast<__mmask16>(0xffff)
                    : static_cast<__mmask16>(cols <= 0 ? 0 : (1u << cols) - 1);
}

// n floats at src rounded to bf16 at dst (any 2-byte alignment).
RECUR_AVX512_BF16 inline void round_run(const float* src, int n, std::uint16_t* dst) {
  for (int i = 0; i < n; i += 32) {
    const int left = n - i;
    if (left >= 32) {
      // Whole vectors unmasked: masked stores are slow on AMD Zen 5.
      const __m512bh v =
          _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
      _mm512_storeu_si512(dst + i, reinterpret_cast<const __m512i&>(v));
      continue;
    }
    const __m512 lo = _mm512_maskz_loadu_ps(lanes(left), src + i);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes(left - 16), src + i + 16);
    const __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
    _mm512_mask_storeu_epi16(dst + i, static_cast<__mmask32>((1u << left) - 1),
                             reinterpret_cast<const __m512i&>(v));
  }
}

RECUR_AVX512_BF16 void round_rows_avx512(int M, const float* A1, int lda1, int k1, const float* A2,
                                         int lda2, int K, int Kp, std::uint16_t* out) {
  for (int m = 0; m < M; ++m) {
    std::uint16_t* row = out + static_cast<std::size_t>(m) * Kp;
    round_run(A1 + static_cast<std::size_t>(m) * lda1, k1, row);
    if (K > k1) round_run(A2 + static_cast<std::size_t>(m) * lda2, K - k1, row + k1);
    std::fill(row + K, row + Kp, std::uint16_t{0});
  }
}

// One row of a tile to its first `cols` (<= 32) columns at c: whole rows by plain stores (masked
// stores are slow on AMD Zen 5, even with every lane set).
RECUR_AVX512_BF16 inline void store_row(__m512 lo, __m512 hi, float* c, int cols) {
  if (cols == 32) {
    _mm512_storeu_ps(c, lo);
    _mm512_storeu_ps(c + 16, hi);
  } else {
    _mm512_mask_storeu_ps(c, lanes(cols), lo);
    _mm512_mask_storeu_ps(c + 16, lanes(cols - 16), hi);
  }
}

RECUR_AVX512_BF16 inline __m512bh load_bh(const std::uint16_t* p) {
  const __m512i v = _mm512_loadu_si512(p);
  return reinterpret_cast<const __m512bh&>(v);
}

RECUR_AVX512_BF16 inline __m512bh broadcast_pair(const std::uint16_t* p) {
  std::int32_t pair;
  std::memcpy(&pair, p, sizeof(pair));
  const __m512i v = _mm512_set1_epi32(pair);
  return reinterpret_cast<const __m512bh&>(v);
}

// Rows [0, MR) of A (rows lda apart, pairs [k0, k_end)) against one panel: accumulators start at
// C (`from_c`), the bias or zero; the first `cols` columns stored.
template <int MR>
[[gnu::always_inline]] RECUR_AVX512_BF16 inline void tile(const std::uint16_t* A, int lda, int k0,
                                                          int k_end, const std::uint16_t* panel,
                                                          const float* bias, bool from_c, float* C,
                                                          int ldc, int cols) {
  const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    if (from_c) {
      acc[r][0] = _mm512_maskz_loadu_ps(m0, C + static_cast<std::size_t>(r) * ldc);
      acc[r][1] = _mm512_maskz_loadu_ps(m1, C + static_cast<std::size_t>(r) * ldc + 16);
    } else if (bias) {
      acc[r][0] = _mm512_loadu_ps(bias);
      acc[r][1] = _mm512_loadu_ps(bias + 16);
    } else {
      acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    }
  }
  for (int k = k0; k < k_end; k += 2) {
    const __m512bh b0 = load_bh(panel + k * kBf16Panel);
    const __m512bh b1 = load_bh(panel + k * kBf16Panel + 32);
    for (int r = 0; r < MR; ++r) {
      const __m512bh a = broadcast_pair(A + static_cast<std::size_t>(r) * lda + k);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
    }
  }
  for (int r = 0; r < MR; ++r)
    store_row(acc[r][0], acc[r][1], C + static_cast<std::size_t>(r) * ldc, cols);
}

RECUR_AVX512_BF16 void gemm_rows_avx512(int M, const std::uint16_t* A, int Kp,
                                        const PackedBf16Matrix& W, bool accumulate, float* C,
                                        int ldc) {
  const int panels = (W.N + kBf16Panel - 1) / kBf16Panel, Kr = even(W.K);
  for (int k0 = 0; k0 < Kr; k0 += kDepth) {
    const int k_end = std::min(Kr, k0 + kDepth);
    const bool from_c = accumulate || k0 > 0;
    for (int p = 0; p < panels; ++p) {
      const std::uint16_t* panel = W.panels.data() + static_cast<std::size_t>(p) * Kp * kBf16Panel;
      const float* bias = W.bias.empty() ? nullptr : W.bias.data() + p * kBf16Panel;
      const int n0 = p * kBf16Panel, cols = std::min(kBf16Panel, W.N - n0);
      int m = 0;
      for (; m + 8 <= M; m += 8)
        tile<8>(A + static_cast<std::size_t>(m) * Kp, Kp, k0, k_end, panel, bias, from_c,
                C + static_cast<std::size_t>(m) * ldc + n0, ldc, cols);
      const std::uint16_t* a = A + static_cast<std::size_t>(m) * Kp;
      float* c = C + static_cast<std::size_t>(m) * ldc + n0;
      switch (M - m) {
        case 7:
          tile<7>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 6:
          tile<6>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 5:
          tile<5>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 4:
          tile<4>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 3:
          tile<3>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 2:
          tile<2>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        case 1:
          tile<1>(a, Kp, k0, k_end, panel, bias, from_c, c, ldc, cols);
          break;
        default:
          break;
      }
    }
  }
}

// ---- AMX (kernels/amx.hpp: the tiles' roles and configuration) ----
//
// Rows of A past M are zero rows of the scratch, columns past N zero columns of the panel, and
// partial blocks of C go through a staging tile.

#define RECUR_AMX __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

// One 16 x 16 fp32 accumulator tile's place in C: `rows` x `cols` of it real (cols may be <= 0:
// a block past N, computed on zero columns and not stored).
struct CTile {
  float* c;
  int ldc, rows, cols;
  bool whole() const { return rows == 16 && cols == 16; }
};

// Accumulator start: C's values (from_c; a partial block through the staging tile), the panel
// half's bias in every row (one 64-byte row loaded 16 times: stride 0), or zero.
#define RECUR_AMX_START(T, ct, from_c, bias, stage) \
  do {                                              \
    if (from_c && (ct).whole()) {                   \
      _tile_loadd(T, (ct).c, (ct).ldc * 4);         \
    } else if (from_c) {                            \
      stage_partial((stage), (ct));                 \
      memory_fence();                               \
      _tile_loadd(T, (stage), 64);                  \
    } else if (bias) {                              \
      _tile_loadd(T, (bias), 0);                    \
    } else {                                        \
      _tile_zero(T);                                \
    }                                               \
  } while (0)

// Accumulator T into its place in C (a partial block through the staging tile).
#define RECUR_AMX_STORE(T, ct, stage)            \
  do {                                           \
    if ((ct).whole()) {                          \
      _tile_stored(T, (ct).c, (ct).ldc * 4);     \
    } else if ((ct).rows > 0 && (ct).cols > 0) { \
      _tile_stored(T, (stage), 64);              \
      store_staged((stage), (ct));               \
    }                                            \
  } while (0)

// C's real rows and columns of a partial block into the staging tile, zeros around them.
RECUR_AMX inline void stage_partial(float* stage, const CTile& ct) {
  const __mmask16 mask = lanes(ct.cols);
  for (int r = 0; r < 16; ++r)
    _mm512_storeu_ps(stage + r * 16,
                     r < ct.rows
                         ? _mm512_maskz_loadu_ps(mask, ct.c + static_cast<std::size_t>(r) * ct.ldc)
                         : _mm512_setzero_ps());
}

// A staged 16 x 16 tile into C's real rows and columns.
RECUR_AMX inline void store_staged(const float* stage, const CTile& ct) {
  const __mmask16 mask = lanes(ct.cols);
  for (int r = 0; r < ct.rows; ++r) {
    float* c = ct.c + static_cast<std::size_t>(r) * ct.ldc;
    const __m512 v = _mm512_loadu_ps(stage + r * 16);
    if (ct.cols >= 16)
      _mm512_storeu_ps(c, v);
    else
      _mm512_mask_storeu_ps(c, mask, v);
  }
}

// C[M,N] = A * W (+ bias, or + C when accumulate): A's rows (Kp apart) rounded already, with zero
// rows up to the next multiple of 16. Each 32 x 32 block of C stays in tiles over all of Kp.
RECUR_AMX void gemm_rows_amx(int M, const std::uint16_t* A, int Kp, const PackedBf16Matrix& W,
                             bool accumulate, float* C, int ldc) {
  const int panels = (W.N + kBf16Panel - 1) / kBf16Panel, chunks = Kp / kBf16Depth;
  const std::size_t a_stride = static_cast<std::size_t>(Kp) * 2;  // bytes
  alignas(64) float stage[16 * 16];
  configure_tiles();
  memory_fence();
  for (int p = 0; p < panels; ++p) {
    const std::uint16_t* panel = W.panels.data() + static_cast<std::size_t>(p) * Kp * kBf16Panel;
    const int n0 = p * kBf16Panel, cols = std::min(kBf16Panel, W.N - n0);
    const float* bias = W.bias.empty() ? nullptr : W.bias.data() + n0;
    for (int m = 0; m < M; m += 32) {
      const int rows0 = std::min(16, M - m), rows1 = std::min(16, M - m - 16);
      float* c0 = C + static_cast<std::size_t>(m) * ldc + n0;
      const CTile t0{c0, ldc, rows0, cols}, t1{c0 + 16, ldc, rows0, cols - 16};
      const CTile t2{c0 + static_cast<std::size_t>(16) * ldc, ldc, rows1, cols};
      const CTile t3{t2.c + 16, ldc, rows1, cols - 16};
      const float* b1 = bias ? bias + 16 : nullptr;
      RECUR_AMX_START(0, t0, accumulate, bias, stage);
      RECUR_AMX_START(1, t1, accumulate, b1, stage);
      const std::uint16_t* a = A + static_cast<std::size_t>(m) * Kp;
      const bool two = rows1 > 0;
      if (two) {
        RECUR_AMX_START(2, t2, accumulate, bias, stage);
        RECUR_AMX_START(3, t3, accumulate, b1, stage);
      }
      for (int q = 0; q < chunks; ++q)
        amx_bf16_chunk(a + q * kBf16Depth, a + 16 * static_cast<std::size_t>(Kp) + q * kBf16Depth,
                       a_stride, panel + static_cast<std::size_t>(q) * 16 * kBf16Panel * 2, two);
      if (two) {
        RECUR_AMX_STORE(2, t2, stage);
        RECUR_AMX_STORE(3, t3, stage);
      }
      RECUR_AMX_STORE(0, t0, stage);
      RECUR_AMX_STORE(1, t1, stage);
    }
  }
  _tile_release();
}

Bf16Kernel running_kernel() {
  const Bf16Kernel k = bf16_kernel();
  RECUR_CHECK(k != Bf16Kernel::none, "--precision",
              "bf16 products need a CPU with AVX512_BF16 (RECUR_BF16_KERNEL=none or this CPU "
              "lacks it)");
  return k;
}

}  // namespace

void gemm_bf16(int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
               const PackedBf16Matrix& W, bool accumulate, float* C, int ldc,
               AlignedVector<std::uint16_t>& scratch) {
  if (M <= 0 || W.N <= 0) return;
  const Bf16Kernel kernel = running_kernel();
  // AMX reads A 16 rows at a time: rows up to the next multiple of 16, zero.
  const int rows = kernel == Bf16Kernel::amx_bf16 ? (M + 15) / 16 * 16 : M;
  const std::size_t need = static_cast<std::size_t>(rows) * W.Kp;
  if (scratch.size() < need) scratch.resize(need);
  if (kernel == Bf16Kernel::amx_bf16) {
    round_rows_avx512(M, A1, lda1, k1, A2, lda2, W.K, W.Kp, scratch.data());
    std::fill(scratch.data() + static_cast<std::size_t>(M) * W.Kp, scratch.data() + need,
              std::uint16_t{0});
    gemm_rows_amx(M, scratch.data(), W.Kp, W, accumulate, C, ldc);
  } else if (kernel == Bf16Kernel::avx512_bf16) {
    round_rows_avx512(M, A1, lda1, k1, A2, lda2, W.K, W.Kp, scratch.data());
    gemm_rows_avx512(M, scratch.data(), W.Kp, W, accumulate, C, ldc);
  } else {
    round_rows_portable(M, A1, lda1, k1, A2, lda2, W.K, W.Kp, scratch.data());
    gemm_rows_portable(M, scratch.data(), W.Kp, W, accumulate, C, ldc);
  }
}

// ---- the weight gradient: C[M,N] += A^T X over the inner dimension K ----

namespace {

// Inner rows per pass: X's block as 32-column panels (8 KB each) and A's as 8-column tiles
// (2 KB each) stay in L1 while the tiles meet the panels.
constexpr int kTnDepth = 128;
constexpr int kTnTile = 8;
constexpr int kPrefetchRows = 8;

// Rows [k0, k0 + kb) of X [*, N] as panels [ceil(N/32)][kb/2][32][2] and of A [*, M] as tiles
// [ceil(M/8)][kb/2][8][2] (kb even; a missing last row and columns beyond N, M zero).
void pack_tn_block(int M, int N, int kb, int kb_real, const float* A, int lda, const float* X,
                   int ldx, std::uint16_t* xs, std::uint16_t* as, float* a_sums) {
  const int panels = (N + kBf16Panel - 1) / kBf16Panel, tiles = (M + kTnTile - 1) / kTnTile;
  std::fill(xs, xs + static_cast<std::size_t>(panels) * kb * kBf16Panel, std::uint16_t{0});
  std::fill(as, as + static_cast<std::size_t>(tiles) * kb * kTnTile, std::uint16_t{0});
  for (int k = 0; k < kb_real; ++k) {
    const float* x = X + static_cast<std::size_t>(k) * ldx;
    for (int n = 0; n < N; ++n)
      xs[(static_cast<std::size_t>(n / kBf16Panel) * kb / 2 * kBf16Panel +
          static_cast<std::size_t>(k / 2) * kBf16Panel + n % kBf16Panel) *
             2 +
         k % 2] = to_bf16(x[n]);
    const float* a = A + static_cast<std::size_t>(k) * lda;
    if (a_sums)
      for (int m = 0; m < M; ++m) a_sums[m] += a[m];
    for (int m = 0; m < M; ++m)
      as[(static_cast<std::size_t>(m / kTnTile) * kb / 2 * kTnTile +
          static_cast<std::size_t>(k / 2) * kTnTile + m % kTnTile) *
             2 +
         k % 2] = to_bf16(a[m]);
  }
}

void tn_block_portable(int M, int N, int kb, const std::uint16_t* xs, const std::uint16_t* as,
                       float* C, int ldc) {
  for (int m = 0; m < M; ++m) {
    const std::uint16_t* a = as + static_cast<std::size_t>(m / kTnTile) * kb * kTnTile;
    for (int n = 0; n < N; ++n) {
      const std::uint16_t* x = xs + static_cast<std::size_t>(n / kBf16Panel) * kb * kBf16Panel;
      float acc = 0.0f;
      for (int q = 0; q < kb / 2; ++q)
        acc = add_pair(acc, a + (q * kTnTile + m % kTnTile) * 2,
                       x + (q * kBf16Panel + n % kBf16Panel) * 2);
      C[static_cast<std::size_t>(m) * ldc + n] += acc;
    }
  }
}

// Rows [k, k + 2) of X and A (already offset to them) interleaved into one pair row: 32 columns
// of X from n0 (cols of them real) and 16 columns of A from m0 (two tiles' pair rows).
RECUR_AVX512_BF16 inline __m512 load_row(const float* r, int cols) {
  return cols >= 16 ? _mm512_loadu_ps(r) : _mm512_maskz_loadu_ps(lanes(cols), r);
}

RECUR_AVX512_BF16 inline __m512i interleave(__m512 v0, __m512 v1) {
  const __m512bh both = _mm512_cvtne2ps_pbh(v1, v0);  // [r0's 16 | r1's 16]
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, reinterpret_cast<const __m512i&>(both));
}

RECUR_AVX512_BF16 inline __m512i interleave_rows(const float* r0, const float* r1, int cols) {
  return interleave(load_row(r0, cols), load_row(r1, cols));
}

// Rows [0, kb) of X (kb_real of them real; the rest zeros) as panels [ceil(N/32)][kb/2][32][2],
// each panel `stride` pair rows long (kb / 2 unless given).
RECUR_AVX512_BF16 void pack_x_avx512(int N, int kb, int kb_real, const float* X, int ldx,
                                     std::uint16_t* xs, int stride = 0) {
  const int panels = (N + kBf16Panel - 1) / kBf16Panel;
  if (stride == 0) stride = kb / 2;
  for (int q = 0; q < kb / 2; ++q) {
    const int k = 2 * q;
    if (k >= kb_real) {
      for (int p = 0; p < panels; ++p)
        std::fill_n(xs + (static_cast<std::size_t>(p) * stride + q) * kBf16Panel * 2,
                    kBf16Panel * 2, std::uint16_t{0});
      continue;
    }
    const float* x0 = X + static_cast<std::size_t>(k) * ldx;
    const bool second = k + 1 < kb_real;  // a missing second row reads as zeros
    const float* x1 = second ? x0 + ldx : x0;
    for (int p = 0; p < panels; ++p) {
      const int n0 = p * kBf16Panel;
      std::uint16_t* dst = xs + (static_cast<std::size_t>(p) * stride + q) * kBf16Panel * 2;
      for (int h = 0; h < 2; ++h) {
        __m512i v = interleave_rows(x0 + n0 + 16 * h, x1 + n0 + 16 * h, N - n0 - 16 * h);
        if (!second) v = _mm512_maskz_mov_epi16(0x55555555u, v);
        _mm512_storeu_si512(dst + 32 * h, v);
      }
    }
  }
}

// Columns [m0, m0 + 16) of A's rows [0, kb) as two tiles [2][kb/2][8][2] (columns beyond M and
// a missing last row zero). Packed just before the tiles use them, so that reading A (an
// LSTM-128's dgates, 3.6 MB per thread, from L3 or memory) overlaps the products: packing all
// of a block first left it waiting on memory, half the weight gradient's time.
RECUR_AVX512_BF16 void pack_a_pair_avx512(int M, int m0, int kb, int kb_real, const float* A,
                                          int lda, std::uint16_t* as, float* a_sums) {
  const int cols = std::min(16, M - m0);
  __m512 sum = _mm512_setzero_ps();
  for (int q = 0; q < kb / 2; ++q) {
    const int k = 2 * q;
    const float* a0 = A + static_cast<std::size_t>(k) * lda + m0;
    const bool second = k + 1 < kb_real;
    // A's rows are lda apart: the lines kPrefetchRows rows ahead are asked for early.
    if (k + kPrefetchRows + 1 < kb_real) {
      _mm_prefetch(reinterpret_cast<const char*>(a0 + kPrefetchRows * lda), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(a0 + (kPrefetchRows + 1) * lda), _MM_HINT_T0);
    }
    const __m512 v0 = load_row(a0, cols), v1 = second ? load_row(a0 + lda, cols) : v0;
    if (a_sums) sum = _mm512_add_ps(sum, second ? _mm512_add_ps(v0, v1) : v0);
    __m512i v = interleave(v0, v1);
    if (!second) v = _mm512_maskz_mov_epi16(0x55555555u, v);
    // The low 16 values to the first tile, the high 16 to the second (whole 256-bit stores:
    // masked ones are slow on AMD Zen 5; the halves through the zero-masking extract with a
    // full mask, as the plain extract and cast trip GCC 12's -Wmaybe-uninitialized).
    std::uint16_t* dst = as + static_cast<std::size_t>(q) * kTnTile * 2;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                        _mm512_maskz_extracti64x4_epi64(static_cast<__mmask8>(0xff), v, 0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + static_cast<std::size_t>(kb) * kTnTile),
                        _mm512_maskz_extracti64x4_epi64(static_cast<__mmask8>(0xff), v, 1));
  }
  if (a_sums)
    _mm512_mask_storeu_ps(a_sums + m0, lanes(cols),
                          _mm512_add_ps(_mm512_maskz_loadu_ps(lanes(cols), a_sums + m0), sum));
}

template <int MR>
[[gnu::always_inline]] RECUR_AVX512_BF16 inline void tile_tn(int kb, const std::uint16_t* a,
                                                             const std::uint16_t* x, float* C,
                                                             int ldc, int cols) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int q = 0; q < kb / 2; ++q) {
    const __m512bh b0 = load_bh(x + q * kBf16Panel * 2);
    const __m512bh b1 = load_bh(x + q * kBf16Panel * 2 + 32);
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = broadcast_pair(a + (q * kTnTile + r) * 2);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
  }
  const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<std::size_t>(r) * ldc;
    store_row(_mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), acc[r][0]),
              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), acc[r][1]), c, cols);
  }
}

// One block of kb rows: X packed whole, then A two tiles at a time, each tile against every panel.
RECUR_AVX512_BF16 void tn_block_avx512(int M, int N, int kb, int kb_real, const float* A, int lda,
                                       const std::uint16_t* xs, std::uint16_t* as, float* C,
                                       int ldc, float* a_sums) {
  const int panels = (N + kBf16Panel - 1) / kBf16Panel;
  for (int m = 0; m < M; m += kTnTile) {
    if (m % (2 * kTnTile) == 0) pack_a_pair_avx512(M, m, kb, kb_real, A, lda, as, a_sums);
    const std::uint16_t* a = as + static_cast<std::size_t>(m / kTnTile % 2) * kb * kTnTile;
    for (int p = 0; p < panels; ++p) {
      const std::uint16_t* x = xs + static_cast<std::size_t>(p) * kb * kBf16Panel;
      const int n0 = p * kBf16Panel, cols = std::min(kBf16Panel, N - n0);
      float* c = C + static_cast<std::size_t>(m) * ldc + n0;
      switch (std::min(kTnTile, M - m)) {
        case 8:
          tile_tn<8>(kb, a, x, c, ldc, cols);
          break;
        case 7:
          tile_tn<7>(kb, a, x, c, ldc, cols);
          break;
        case 6:
          tile_tn<6>(kb, a, x, c, ldc, cols);
          break;
        case 5:
          tile_tn<5>(kb, a, x, c, ldc, cols);
          break;
        case 4:
          tile_tn<4>(kb, a, x, c, ldc, cols);
          break;
        case 3:
          tile_tn<3>(kb, a, x, c, ldc, cols);
          break;
        case 2:
          tile_tn<2>(kb, a, x, c, ldc, cols);
          break;
        default:
          tile_tn<1>(kb, a, x, c, ldc, cols);
          break;
      }
    }
  }
}

// The weight gradient on AMX, turned around: C^T[N,M] += X^T A, in blocks of kAmxTnDepth rows of
// A and X. A's block is packed as panels of 32 of its columns (the B operand: the pair rows the
// AVX512_BF16 kernel packs X into), X's as rows of inner values (the A operand: X^T, N rows, a
// transpose of the narrower side). C^T's 32 x 32 blocks live in an fp32 scratch, in tiles for a
// block's depth; at the end C += (C^T)^T, one transpose of the result.
constexpr int kAmxTnDepth = 256;

// transpose16's permute indices, stage by stage (b = 1, 2, 4, 8): lane j of the lower row keeps
// its value where bit b of j is clear and takes the upper row's lane j - b where it is set; the
// upper row takes the lower's lane j + b, or keeps its own.
struct TransposeIndices {
  alignas(64) std::int32_t lo[4][16] = {};
  alignas(64) std::int32_t hi[4][16] = {};
  constexpr TransposeIndices() {
    for (int stage = 0; stage < 4; ++stage) {
      const int b = 1 << stage;
      for (int j = 0; j < 16; ++j) {
        lo[stage][j] = (j & b) == 0 ? j : 16 + j - b;
        hi[stage][j] = (j & b) == 0 ? j + b : 16 + j;
      }
    }
  }
};
constexpr TransposeIndices kTransposeIndices{};

// A 16 x 16 block of 32-bit values transposed in registers: stage b swaps bit b of the row and
// column indices (each stage one two-source permute per row).
RECUR_AMX inline void transpose16(__m512i r[16]) {
  for (int stage = 0; stage < 4; ++stage) {
    const int b = 1 << stage;
    const __m512i idx_lo = _mm512_load_si512(kTransposeIndices.lo[stage]);
    const __m512i idx_hi = _mm512_load_si512(kTransposeIndices.hi[stage]);
    for (int i = 0; i < 16; ++i) {
      if ((i & b) != 0) continue;
      const __m512i a = r[i], c = r[i + b];
      r[i] = _mm512_permutex2var_epi32(a, idx_lo, c);
      r[i + b] = _mm512_permutex2var_epi32(a, idx_hi, c);
    }
  }
}

// X's rows [0, kc) (kb_real real; the rest, and columns past N, zero) turned into Np rows of kc
// inner values at xt (row n at xt + n * kc; Np = N rounded up to 32).
RECUR_AMX void pack_xt_amx(int N, int kc, int kb_real, const float* X, int ldx, std::uint16_t* xt) {
  const int Np = (N + 31) / 32 * 32;
  for (int n0 = 0; n0 < Np; n0 += 16) {
    const int cols = std::min(16, N - n0);
    std::uint16_t* rows = xt + static_cast<std::size_t>(n0) * kc;
    if (cols <= 0) {
      std::fill(rows, rows + static_cast<std::size_t>(16) * kc, std::uint16_t{0});
      continue;
    }
    for (int q0 = 0; q0 < kc / 2; q0 += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        const int k = 2 * (q0 + i);
        if (k >= kb_real) {
          r[i] = _mm512_setzero_si512();
          continue;
        }
        const float* x0 = X + static_cast<std::size_t>(k) * ldx + n0;
        const __m512 v0 = load_row(x0, cols);
        const __m512 v1 = k + 1 < kb_real ? load_row(x0 + ldx, cols) : _mm512_setzero_ps();
        r[i] = interleave(v0, v1);
      }
      transpose16(r);
      for (int j = 0; j < 16; ++j)
        _mm512_storeu_si512(rows + static_cast<std::size_t>(j) * kc + 2 * q0, r[j]);
    }
  }
}

// Each of A's M columns summed over the block's real rows (pair by pair) and added to sums.
RECUR_AMX void add_block_sums(int M, int kb_real, const float* A, int lda, float* sums) {
  for (int m0 = 0; m0 < M; m0 += 16) {
    const int cols = std::min(16, M - m0);
    __m512 sum = _mm512_setzero_ps();
    for (int k = 0; k < kb_real; k += 2) {
      const float* a0 = A + static_cast<std::size_t>(k) * lda + m0;
      const __m512 v0 = load_row(a0, cols);
      sum = _mm512_add_ps(sum, k + 1 < kb_real ? _mm512_add_ps(v0, load_row(a0 + lda, cols)) : v0);
    }
    _mm512_mask_storeu_ps(sums + m0, lanes(cols),
                          _mm512_add_ps(_mm512_maskz_loadu_ps(lanes(cols), sums + m0), sum));
  }
}

RECUR_AMX void gemm_tn_amx(int M, int N, int K, const float* A, int lda, const float* X, int ldx,
                           float* C, int ldc, AlignedVector<std::uint16_t>& scratch,
                           float* a_sums) {
  const int Np = (N + 31) / 32 * 32, Mp = (M + 31) / 32 * 32, panels = Mp / kBf16Panel;
  const std::size_t xt_size = static_cast<std::size_t>(Np) * kAmxTnDepth;
  const std::size_t a_size = static_cast<std::size_t>(Mp) * kAmxTnDepth;
  if (scratch.size() < xt_size + a_size) scratch.resize(xt_size + a_size);
  std::uint16_t* xt = scratch.data();
  std::uint16_t* ap = scratch.data() + xt_size;
  static thread_local AlignedVector<float> ct;  // C^T [Np][Mp]
  if (ct.size() < static_cast<std::size_t>(Np) * Mp) ct.resize(static_cast<std::size_t>(Np) * Mp);
  const std::size_t ct_stride = static_cast<std::size_t>(Mp) * 4;  // bytes
  configure_tiles();
  for (int k0 = 0; k0 < K; k0 += kAmxTnDepth) {
    const int kb_real = std::min(kAmxTnDepth, K - k0), kc = padded_depth(kb_real);
    const int chunks = kc / kBf16Depth;
    const std::size_t xt_stride = static_cast<std::size_t>(kc) * 2;  // bytes
    const float* a = A + static_cast<std::size_t>(k0) * lda;
    pack_xt_amx(N, kc, kb_real, X + static_cast<std::size_t>(k0) * ldx, ldx, xt);
    pack_x_avx512(M, kc, kb_real, a, lda, ap);
    if (a_sums) add_block_sums(M, kb_real, a, lda, a_sums);
    memory_fence();
    for (int p = 0; p < panels; ++p) {
      const std::uint16_t* panel = ap + static_cast<std::size_t>(p) * kc * kBf16Panel;
      for (int n = 0; n < Np; n += 32) {
        float* c = ct.data() + static_cast<std::size_t>(n) * Mp + p * kBf16Panel;
        if (k0 == 0) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, c, ct_stride);
          _tile_loadd(1, c + 16, ct_stride);
          _tile_loadd(2, c + static_cast<std::size_t>(16) * Mp, ct_stride);
          _tile_loadd(3, c + static_cast<std::size_t>(16) * Mp + 16, ct_stride);
        }
        const std::uint16_t* x = xt + static_cast<std::size_t>(n) * kc;
        for (int q = 0; q < chunks; ++q)
          amx_bf16_chunk(x + q * kBf16Depth, x + static_cast<std::size_t>(16) * kc + q * kBf16Depth,
                         xt_stride, panel + static_cast<std::size_t>(q) * 16 * kBf16Panel * 2,
                         true);
        _tile_stored(0, c, ct_stride);
        _tile_stored(1, c + 16, ct_stride);
        _tile_stored(2, c + static_cast<std::size_t>(16) * Mp, ct_stride);
        _tile_stored(3, c + static_cast<std::size_t>(16) * Mp + 16, ct_stride);
      }
    }
  }
  _tile_release();
  // C += (C^T)^T, 16 x 16 blocks at a time.
  for (int m0 = 0; m0 < M; m0 += 16) {
    for (int n0 = 0; n0 < N; n0 += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = _mm512_loadu_si512(ct.data() + static_cast<std::size_t>(n0 + i) * Mp + m0);
      transpose16(r);
      const int cols = std::min(16, N - n0);
      const __mmask16 mask = lanes(cols);
      for (int j = 0; j < std::min(16, M - m0); ++j) {
        float* row = C + static_cast<std::size_t>(m0 + j) * ldc + n0;
        const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row), _mm512_castsi512_ps(r[j]));
        _mm512_mask_storeu_ps(row, mask, v);
      }
    }
  }
}

}  // namespace

void gemm_tn_bf16(int M, int N, int K, const float* A, int lda, const float* X, int ldx, float* C,
                  int ldc, AlignedVector<std::uint16_t>& scratch, float* a_sums) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const Bf16Kernel kernel = running_kernel();
  if (kernel == Bf16Kernel::amx_bf16)
    return gemm_tn_amx(M, N, K, A, lda, X, ldx, C, ldc, scratch, a_sums);
  const int panels = (N + kBf16Panel - 1) / kBf16Panel, tiles = (M + kTnTile - 1) / kTnTile;
  const std::size_t x_size = static_cast<std::size_t>(panels) * kTnDepth * kBf16Panel;
  // Tiles rounded up to even: the packing writes two tiles' pair rows at once.
  const std::size_t a_size = static_cast<std::size_t>(tiles + 1) * kTnDepth * kTnTile;
  if (scratch.size() < x_size + a_size) scratch.resize(x_size + a_size);
  std::uint16_t* xs = scratch.data();
  std::uint16_t* as = scratch.data() + x_size;
  for (int k0 = 0; k0 < K; k0 += kTnDepth) {
    const int kb_real = std::min(kTnDepth, K - k0), kb = even(kb_real);
    const float* a = A + static_cast<std::size_t>(k0) * lda;
    const float* x = X + static_cast<std::size_t>(k0) * ldx;
    if (kernel == Bf16Kernel::avx512_bf16) {
      pack_x_avx512(N, kb, kb_real, x, ldx, xs);
      tn_block_avx512(M, N, kb, kb_real, a, lda, xs, as, C, ldc, a_sums);
    } else {
      pack_tn_block(M, N, kb, kb_real, a, lda, x, ldx, xs, as, a_sums);
      tn_block_portable(M, N, kb, xs, as, C, ldc);
    }
  }
}

namespace {

void set_bias(int N, const float* bias1, const float* bias2, PackedBf16Matrix& out) {
  out.bias.clear();
  if (!bias1 && !bias2) return;
  const int panels = (N + kBf16Panel - 1) / kBf16Panel;
  out.bias.assign(static_cast<std::size_t>(panels) * kBf16Panel, 0.0f);
  for (int n = 0; n < N; ++n) out.bias[n] = (bias1 ? bias1[n] : 0.0f) + (bias2 ? bias2[n] : 0.0f);
}

// Rows of [W1 | W2] ([N, K1] and [N, K2] row-major) rounded a row at a time, each row's pairs
// then stored into its column of the panels: the packing every training step pays, 2-3x faster
// than element by element.
RECUR_AVX512_BF16 void pack_rows_avx512(int N, const float* W1, int K1, const float* W2, int K2,
                                        PackedBf16Matrix& out) {
  static thread_local AlignedVector<std::uint16_t> row;
  const int K = K1 + K2, Kr = even(K), Kp = out.Kp;
  if (row.size() < static_cast<std::size_t>(Kr)) row.resize(Kr);
  for (int n = 0; n < N; ++n) {
    round_run(W1 + static_cast<std::size_t>(n) * K1, K1, row.data());
    if (K2 > 0) round_run(W2 + static_cast<std::size_t>(n) * K2, K2, row.data() + K1);
    if (Kr > K) row[K] = 0;
    std::uint16_t* dst = out.panels.data() +
                         static_cast<std::size_t>(n / kBf16Panel) * Kp * kBf16Panel +
                         static_cast<std::size_t>(n % kBf16Panel) * 2;
    for (int q = 0; q < Kr / 2; ++q)
      std::memcpy(dst + static_cast<std::size_t>(q) * kBf16Panel * 2, row.data() + 2 * q,
                  2 * sizeof(std::uint16_t));
  }
}

}  // namespace

void pack_bf16(const float* W, int N, int K, bool w_is_k_by_n, PackedBf16Matrix& out) {
  if (!simd_packing()) {
    if (w_is_k_by_n)
      pack_panels(
          N, K, [&](int n, int k) { return W[static_cast<std::size_t>(k) * N + n]; }, out);
    else
      pack_panels(
          N, K, [&](int n, int k) { return W[static_cast<std::size_t>(n) * K + k]; }, out);
  } else if (w_is_k_by_n) {
    // Rows k and k + 1 of W are a pair row of the panels already.
    out.N = N;
    out.K = K;
    out.Kp = padded_depth(K);
    out.panels.assign(
        static_cast<std::size_t>((N + kBf16Panel - 1) / kBf16Panel) * out.Kp * kBf16Panel, 0);
    pack_x_avx512(N, even(K), K, W, N, out.panels.data(), out.Kp / 2);
  } else {
    pack_bf16_pair(N, W, K, nullptr, 0, nullptr, nullptr, out);
  }
  out.bias.clear();
}

void pack_bf16_pair(int N, const float* W1, int K1, const float* W2, int K2, const float* bias1,
                    const float* bias2, PackedBf16Matrix& out) {
  if (simd_packing()) {
    out.N = N;
    out.K = K1 + K2;
    out.Kp = padded_depth(out.K);
    // Zeros for the columns beyond N in the last panel.
    out.panels.assign(
        static_cast<std::size_t>((N + kBf16Panel - 1) / kBf16Panel) * out.Kp * kBf16Panel, 0);
    pack_rows_avx512(N, W1, K1, W2, K2, out);
  } else {
    pack_panels(
        N, K1 + K2,
        [&](int n, int k) {
          return k < K1 ? W1[static_cast<std::size_t>(n) * K1 + k]
                        : W2[static_cast<std::size_t>(n) * K2 + (k - K1)];
        },
        out);
  }
  set_bias(N, bias1, bias2, out);
}

}  // namespace recur::kernels
