// One activation row quantized as kernels/int8_gemm.hpp describes (s_a = max |x| / 127, a_q + 128
// rounded to nearest even, padding 128), in two forms that give the same bits: plain C++ (which
// the compiler vectorizes) and AVX-512. Shared by quantize_rows and the int8 cells, which quantize
// h_t as they write it: a state quantized there or by quantize_rows (a stream's carried state) is
// the same bytes.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.hpp"

namespace recur::kernels {

// The bits of |x| for a float x: for floats that are not NaN the order of |x| is the order of
// these bits, and an integer maximum vectorizes where a float one (NaN rules) does not.
[[gnu::always_inline]] inline std::uint32_t abs_bits(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits & 0x7fffffffu;
}

[[gnu::always_inline]] inline float float_of_bits(std::uint32_t bits) {
  float r;
  std::memcpy(&r, &bits, sizeof(r));
  return r;
}

// max |x| over K values.
[[gnu::always_inline]] inline float abs_max(const float* x, int K) {
  std::uint32_t m = 0;
#pragma omp simd reduction(max : m)
  for (int k = 0; k < K; ++k) {
    const std::uint32_t bits = abs_bits(x[k]);
    m = bits > m ? bits : m;
  }
  return float_of_bits(m);
}

// 127 / amax (0 for a row of zeros): what every value is multiplied by before rounding.
[[gnu::always_inline]] inline float quantize_multiplier(float amax) {
  return amax > 0.0f ? 127.0f / amax : 0.0f;
}

// Writes x [K] quantized with max |x| = amax into out [quantized_row_bytes(K)]; returns s_a.
[[gnu::always_inline]] inline float quantize_row_with_max(const float* x, int K, float amax,
                                                          std::uint8_t* out) {
  const float inv = quantize_multiplier(amax);
  // No clamp is needed (a float one would not vectorize): |x| <= amax makes |x * inv| at most
  // 127 and two roundings, which rounds to 127 at most. nearbyint, not the 1.5 * 2^23 trick:
  // x * inv + 2^23 * 1.5 would be contracted into one fused multiply-add in the clones that
  // have FMA, rounding differently from those that do not.
#pragma omp simd
  for (int k = 0; k < K; ++k)
    out[k] = static_cast<std::uint8_t>(static_cast<int>(std::nearbyint(x[k] * inv)) + 128);
  for (int k = K; k < (K + 3) / 4 * 4; ++k) out[k] = 128;
  return amax / 127.0f;
}

// The AVX-512 form of quantize_row_with_max: the same multiply and the same rounding (to
// nearest, ties to even, as nearbyint in the default rounding mode).
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline float quantize_row_with_max_avx512(
    const float* x, int K, float amax, std::uint8_t* out) {
  const float inv = quantize_multiplier(amax);
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i offset = _mm512_set1_epi32(128);
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    // Zero-masked forms with every lane set: the unmasked ones trip GCC 12's
    // -Wmaybe-uninitialized.
    const __m512i q =
        _mm512_maskz_cvt_roundps_epi32(0xFFFF, _mm512_mul_ps(_mm512_loadu_ps(x + k), vinv),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k),
                     _mm512_maskz_cvtepi32_epi8(0xFFFF, _mm512_add_epi32(q, offset)));
  }
  if (k < K) {
    // The last K - k values in one masked pass, the padding bytes (128) with them: an MNIST row
    // of 28 pixels is one full vector and this one.
    const int rest = K - k, padded = (K + 3) / 4 * 4 - k;  // padded <= 16
    const __mmask16 live = static_cast<__mmask16>((1u << rest) - 1u);
    const __mmask16 written = static_cast<__mmask16>((1u << padded) - 1u);
    const __m512i q = _mm512_maskz_cvt_roundps_epi32(
        0xFFFF, _mm512_mul_ps(_mm512_maskz_loadu_ps(live, x + k), vinv),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i bytes = _mm512_mask_add_epi32(offset, live, q, offset);
    _mm512_mask_cvtepi32_storeu_epi8(out + k, written, bytes);
  }
  return amax / 127.0f;
}

// The largest of 16 |x| bit patterns, as a float: the halves folded onto each other in registers.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline float max_lane(__m512i bits) {
  const __m256i m8 = _mm256_max_epu32(_mm512_maskz_extracti64x4_epi64(0xFF, bits, 0),
                                      _mm512_maskz_extracti64x4_epi64(0xFF, bits, 1));
  const __m128i m4 = _mm_max_epu32(_mm256_castsi256_si128(m8), _mm256_extracti128_si256(m8, 1));
  const __m128i m2 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m128i m1 = _mm_max_epu32(m2, _mm_shuffle_epi32(m2, _MM_SHUFFLE(2, 3, 0, 1)));
  return float_of_bits(static_cast<std::uint32_t>(_mm_cvtsi128_si32(m1)));
}

// max |x| over K values, AVX-512.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline float abs_max_avx512(const float* x, int K) {
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
  __m512i m = _mm512_setzero_si512();
  int k = 0;
  for (; k + 16 <= K; k += 16)
    m = _mm512_maskz_max_epu32(0xFFFF, m, _mm512_and_si512(_mm512_loadu_si512(x + k), magnitude));
  if (k < K) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (K - k)) - 1u);
    m = _mm512_maskz_max_epu32(0xFFFF, m,
                               _mm512_and_si512(_mm512_maskz_loadu_epi32(tail, x + k), magnitude));
  }
  return max_lane(m);
}

}  // namespace recur::kernels
