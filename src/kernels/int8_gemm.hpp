// int8 inference products: weights quantized once per output row (symmetric, an fp32 scale per
// row), activations quantized per row as they arrive (dynamic quantization), int32 sums, then
// scaled back to fp32.
//
//   weights      w_q[n][k] = round(w[n][k] / s_w[n]),  s_w[n] = max_k |w[n][k]| / 127
//   activations  a_q[m][k] = round(a[m][k] / s_a[m]),  s_a[m] = max_k |a[m][k]| / 127
//   product      C[m][n] = base + float(sum_k a_q[m][k] w_q[n][k]) * s_w[n] * s_a[m]
//
// Rounding is to nearest, ties to even; all values lie in [-127, 127]. A row of zeros has scale 0
// and contributes 0. Activations are stored with an offset of 128 (uint8 a_q + 128), the form
// `vpdpbusd` (u8 x s8 -> s32) takes; every kernel then computes sum_k (a_q + 128) w_q minus the
// row's compensation 128 * sum_k w_q[n][k], precomputed at quantization, which is exactly
// sum_k a_q w_q: integer arithmetic, no saturation (|sum| < 2^31 for K <= kMaxInt8Depth).
//
// Kernels, chosen at run time from cpuid: AMX (`tdpbusd`, u8 x s8 -> s32 on 16 x 16 tiles, 64
// inner values per instruction; kernels/amx.hpp), AVX-512 VNNI (zmm `vpdpbusd`), AVX-VNNI (ymm,
// the VEX form) and a portable one in plain C++ (u8 x s8 summed in int32; the compiler's AVX2 clone
// widens both to int16 and multiplies there, exact since |255 * 127| < 32768, then sums in int32).
// No `vpmaddubsw` anywhere: its int16 pair sums saturate (255 * 127 * 2 > 32767) unless weights are
// cut to 7 bits; weights keep 8. Every kernel gives the same int32 sums bit for bit and the same
// fp32 results (the scaling is the same multiply and fused multiply-add in each). The reference
// (kernels/reference/int8_reference.hpp) dequantizes and multiplies in fp64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/aligned.hpp"

namespace recur::kernels {

enum class Int8Kernel { portable, avx_vnni, avx512_vnni, amx_int8 };
std::string to_string(Int8Kernel k);

// What cpuid (and the OS's saved register state) says this CPU has.
struct Int8CpuFeatures {
  bool avx512_vnni = false, avx512bw = false, avx_vnni = false, avx2 = false, fma = false;
  bool amx_int8 = false;  // AMX-INT8 tiles the OS lets this process use (kernels/amx.hpp)
};
Int8CpuFeatures detect_int8_features();
// AMX-INT8 (with AVX-512 VNNI and AVX512BW, which quantize and scale around it) first, then
// AVX-512 VNNI (with AVX512BW), then AVX-VNNI (with AVX2 and FMA), else portable.
Int8Kernel choose_int8_kernel(const Int8CpuFeatures& f);
// The kernel weights are quantized for: choose_int8_kernel(detect_int8_features()), or what
// set_int8_kernel or the environment variable RECUR_INT8_KERNEL (portable, avx_vnni,
// avx512_vnni, amx_int8) asked for.
Int8Kernel int8_kernel();
bool int8_kernel_supported(Int8Kernel k);
// Makes `k` the kernel of weights quantized from now on (tests compare kernels on one machine);
// returns the previous one. Throws Error("RECUR_INT8_KERNEL", ...) when this CPU lacks it.
Int8Kernel set_int8_kernel(Int8Kernel k);

// Output columns per panel of the SIMD layouts.
inline constexpr int kInt8Panel = 32;
// Longest inner dimension quantized: 255 * 127 * K stays below 2^31.
inline constexpr int kMaxInt8Depth = 65536;

// Weights [N, K] quantized for one kernel.
struct QuantizedMatrix {
  int N = 0, K = 0;
  int Kp = 0;  // K rounded up to a multiple of 4 (zero weights beyond K)
  int Np = 0;  // N rounded up to a multiple of kInt8Panel
  Int8Kernel kernel = Int8Kernel::portable;
  // portable: rows [N][Kp]; SIMD: panels [Np / 32][Kp / 4][32 columns][4 inner values] (amx_int8:
  // then 2 KB of zeros, which its last tile reads)
  AlignedVector<std::int8_t> w;
  AlignedVector<float> scale;                // [Np] s_w (0 beyond N)
  AlignedVector<std::int32_t> compensation;  // [Np] 128 * sum_k w_q[n][k]
  AlignedVector<float> bias;                 // [Np], or empty: none
  // Bytes of the quantized form: int8 weights, fp32 scales and biases.
  std::size_t bytes() const {
    return static_cast<std::size_t>(N) * K + sizeof(float) * N * (bias.empty() ? 1 : 2);
  }
};

// Quantizes W [N, K] (row-major, rows ldw apart) per row for `kernel`; the bias is bias1 + bias2
// (either may be null; both null: none). Requires 1 <= K <= kMaxInt8Depth.
void quantize_weights(const float* W, int N, int K, int ldw, const float* bias1, const float* bias2,
                      Int8Kernel kernel, QuantizedMatrix& out);

// Bytes a quantized activation row of K values takes: K rounded up to 4.
inline int quantized_row_bytes(int K) {
  return (K + 3) / 4 * 4;
}

// Quantizes rows X [M, K] (row stride ldx) into q [M, quantized_row_bytes(K)] (row stride ldq,
// a_q + 128, padding 128) and scales [M].
void quantize_rows(int M, const float* X, int ldx, int K, std::uint8_t* q, int ldq, float* scales);

// C[m][n] (ldc) = sum_k a_q[m][k] w_q[n][k] exactly, A the output of quantize_rows (row stride
// lda) for W.K values: the integer sums alone, for tests.
void int8_gemm_s32(int M, const std::uint8_t* A, int lda, const QuantizedMatrix& W, std::int32_t* C,
                   int ldc);

// C[m][n] (ldc) = base + float(s32) * s_w[n] * s_a[m], where s32 is int8_gemm_s32's sum and base
// is C[m][n] when accumulate, else the bias (or 0). Each row's result depends on that row only.
void int8_gemm(int M, const std::uint8_t* A, int lda, const float* a_scales,
               const QuantizedMatrix& W, bool accumulate, float* C, int ldc);

// C = A1's product with W1 (with W1's bias) + A2's product with W2, the same bits as int8_gemm
// of A1 then int8_gemm of A2 accumulating (an LSTM or RNN step: x_t's side, then h_{t-1}'s);
// W1 and W2 have the same N and kernel.
void int8_gemm_pair(int M, const std::uint8_t* A1, int lda1, const float* scales1,
                    const QuantizedMatrix& W1, const std::uint8_t* A2, int lda2,
                    const float* scales2, const QuantizedMatrix& W2, float* C, int ldc);

}  // namespace recur::kernels
