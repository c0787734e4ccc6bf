// bf16 products with fp32 accumulation for bf16 training (`recur train --precision bf16`): the
// recurrent layers' step products, forward and backward, and their weight gradients. Master
// weights, gradients and optimizer state stay fp32; both operands of each product are rounded to
// bf16 (round to nearest, ties to even; denormals to signed zero; NaN stays NaN) and every
// product of two bf16 values, exact in fp32, is added into an fp32 accumulator.
//
// Layout: a weight matrix for C[M,N] = A[M,K] * W is packed once per optimizer step into panels
// of 32 output columns, each inner pair (k, k+1) of a column side by side:
// panels [ceil(N/32)][Kp/2][32][2] (Kp = K rounded up to a multiple of 32, zero padded), the form
// the AVX512_BF16 instruction `vdpbf16ps` reads (16 columns x one pair per zmm) and, 16 pair rows
// at a time, the B operand of the AMX instruction `tdpbf16ps` (16 pairs x 16 columns a tile).
// A's rows are rounded to bf16 once per call into a scratch buffer (rows Kp apart, zero padded).
//
// Kernels, chosen at run time:
// - amx_bf16: AMX tiles (`tdpbf16ps`, 16 x 16 fp32 accumulators, 32 inner values per
//   instruction) on CPUs with AMX-BF16 (Intel Sapphire Rapids and later), once Linux grants the
//   process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM);
// - avx512_bf16: zmm `vdpbf16ps` on CPUs with AVX512_BF16 (Intel Cooper Lake and later, AMD
//   Zen 4 and later);
// - portable: an emulation in plain C++ that rounds both operands the same way and adds each
//   pair's two products in the order `vdpbf16ps` does (odd, then even).
// Each kernel's sums are fp32 sums of the same exact products, in its own order: the kernels
// agree to fp32 rounding, not bit for bit (AMX's internal order and rounding are its own, and
// match neither order of a pair: measured on a Xeon with AMX). Within one kernel a row's bits
// never depend on the rows beside it. The unit tests run every kernel this CPU has against a
// double-precision product and against each other (tests/unit/test_bf16_gemm.cpp). The
// environment variable RECUR_BF16_KERNEL names a kernel: amx_bf16, avx512_bf16, portable (the
// emulation; slow, for tests), or none (as on a CPU without bf16: `recur train --precision bf16`
// refuses to run).
#pragma once

#include <cstdint>
#include <string>

#include "core/aligned.hpp"

namespace recur::kernels {

enum class Bf16Kernel { none, portable, avx512_bf16, amx_bf16 };
std::string to_string(Bf16Kernel k);

// cpuid (leaf 7, subleaf 1, EAX bit 5) and the OS's saved zmm state: the CPU runs vdpbf16ps.
bool cpu_has_avx512_bf16();
// cpuid (leaf 7: AMX-TILE and AMX-BF16), the OS's tile state (XCR0 bits 17 and 18) and
// AVX512_BF16 (the kernel rounds and packs with it), and Linux's permission for this process to
// use the tiles, asked for once (arch_prctl).
bool cpu_has_amx_bf16();
// RECUR_BF16_KERNEL's kernel, else amx_bf16 where the CPU has it, else avx512_bf16 where it has
// that, else none. Throws
// Error("RECUR_BF16_KERNEL", ...) for an unknown name or a kernel this CPU lacks.
Bf16Kernel bf16_kernel();
// Makes `k` the kernel of the products from now on (tests compare kernels); returns the previous
// one. Throws Error("RECUR_BF16_KERNEL", ...) when this CPU lacks it.
Bf16Kernel set_bf16_kernel(Bf16Kernel k);
bool bf16_kernel_supported(Bf16Kernel k);

// fp32 -> bf16 bits, round to nearest even (denormals to signed zero, NaN quiet), and back.
std::uint16_t to_bf16(float x);
float from_bf16(std::uint16_t b);

inline constexpr int kBf16Panel = 32;
// The packed inner dimension's multiple: one AMX tile's 32 inner values.
inline constexpr int kBf16Depth = 32;

struct PackedBf16Matrix {
  int N = 0, K = 0, Kp = 0;             // Kp: K rounded up to a multiple of kBf16Depth
  AlignedVector<std::uint16_t> panels;  // [ceil(N/32)][Kp/2][32][2], zero beyond K and N
  AlignedVector<float> bias;            // [ceil(N/32) * 32] fp32, or empty
};

// Packs W for C[M,N] = A[M,K] * W^T when W is [N,K] row-major, or for C = A * W when
// `w_is_k_by_n` and W is [K,N] row-major.
void pack_bf16(const float* W, int N, int K, bool w_is_k_by_n, PackedBf16Matrix& out);
// Packs [W1 | W2] ([N,K1] and [N,K2] row-major; W2 may be null with K2 = 0) with the fp32 bias
// bias1 + bias2 (either may be null; both null: none): a cell's input and recurrent weights for
// one product per step, as pack_weights_pair does in fp32.
void pack_bf16_pair(int N, const float* W1, int K1, const float* W2, int K2, const float* bias1,
                    const float* bias2, PackedBf16Matrix& out);

// C[M,N] (ldc) = [A1 | A2] * W (+ its bias), or += when accumulate: row m of the left side is
// A1's row (k1 columns, stride lda1) followed by A2's (W.K - k1 columns, stride lda2; A2 may be
// null when k1 == W.K). `scratch` holds A rounded to bf16 (grown as needed).
void gemm_bf16(int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
               const PackedBf16Matrix& W, bool accumulate, float* C, int ldc,
               AlignedVector<std::uint16_t>& scratch);

// C[M,N] += A^T X with A [K,M] (row stride lda) and X [K,N] (row stride ldx): a weight gradient
// over all timesteps and rows, the inner dimension K. Both sides are rounded to bf16 block by
// block into `scratch`. When a_sums is not null, a_sums[M] += the sums of A's columns over the K
// rows in fp32 (a bias gradient, read on the way: one pass over A fewer).
void gemm_tn_bf16(int M, int N, int K, const float* A, int lda, const float* X, int ldx, float* C,
                  int ldc, AlignedVector<std::uint16_t>& scratch, float* a_sums = nullptr);

}  // namespace recur::kernels
