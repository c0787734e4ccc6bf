#include "kernels/int8_cell.hpp"

#include <immintrin.h>

#include <cstddef>

#include "kernels/activations.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/int8_rows.hpp"
#include "recur/cell.hpp"

namespace recur::kernels {

namespace {

// ---- AVX-512: 16 units at a time ----

// GCC 12 warns (-Wmaybe-uninitialized) about the undefined source register of the unmasked
// forms of several AVX-512 instructions; their zero-masked forms with every lane set are the
// same instructions.
constexpr __mmask16 kAll = 0xFFFF;

// e^x for x clamped to [-lim, lim]: fast_exp's reduction (n = round(x log2 e), r = x - n ln 2 in
// two parts) with a degree-5 polynomial fitted to e^r on [-ln2/2, ln2/2] (relative error 2.3e-7
// in fp32 arithmetic, like fast_exp's degree-6 Taylor polynomial's 2.7e-7, one fma fewer),
// evaluated by Estrin's scheme, and 2^n applied by scalef.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 exp16(__m512 x, float lim) {
  x = _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, x, _mm512_set1_ps(-lim)),
                          _mm512_set1_ps(lim));
  const __m512 n =
      _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 p01 =
      _mm512_fmadd_ps(r, _mm512_set1_ps(9.999997020e-01f), _mm512_set1_ps(1.000000119e+00f));
  const __m512 p23 =
      _mm512_fmadd_ps(r, _mm512_set1_ps(1.666757464e-01f), _mm512_set1_ps(4.999889433e-01f));
  const __m512 p45 =
      _mm512_fmadd_ps(r, _mm512_set1_ps(8.297654800e-03f), _mm512_set1_ps(4.191538319e-02f));
  const __m512 p = _mm512_fmadd_ps(r2, _mm512_fmadd_ps(r2, p45, p23), p01);
  return _mm512_maskz_scalef_ps(kAll, p, n);
}

// 1 / d for d >= 1, a plain division: on Zen 5 vdivps (zmm) is faster in these cells than the
// 14-bit estimate refined by a Newton step (three dependent instructions), and exact.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 reciprocal16(__m512 d) {
  return _mm512_div_ps(_mm512_set1_ps(1.0f), d);
}

// e^-x and e^-2x for sigmoid and tanh, their arguments clamped to [-40, 40]: e^40 keeps the
// product of two (1 + e) below fp32's largest number, and sigmoid and tanh are exactly 0, 1 or
// -1 in fp32 (or within 5e-18) beyond it.
constexpr float kExpLimit = 40.0f;
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 exp_neg16(__m512 x) {
  return exp16(_mm512_sub_ps(_mm512_setzero_ps(), x), kExpLimit);
}
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 exp_neg2x16(__m512 x) {
  return exp16(_mm512_mul_ps(x, _mm512_set1_ps(-2.0f)), kExpLimit);
}

[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 sigmoid16(__m512 x) {
  return reciprocal16(_mm512_add_ps(_mm512_set1_ps(1.0f), exp_neg16(x)));
}

// tanh(x) = 2 sigmoid(2x) - 1.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 s = reciprocal16(_mm512_add_ps(one, exp_neg2x16(x)));
  return _mm512_fmsub_ps(s, _mm512_set1_ps(2.0f), one);
}

// sigmoid(a) tanh(b) = (1 - e^-2b) / ((1 + e^-a)(1 + e^-2b)): one reciprocal for the two.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline __m512 sigmoid_tanh16(__m512 a, __m512 b) {
  const __m512 one = _mm512_set1_ps(1.0f), ea = exp_neg16(a), eb = exp_neg2x16(b);
  const __m512 d = _mm512_mul_ps(_mm512_add_ps(one, ea), _mm512_add_ps(one, eb));
  return _mm512_mul_ps(_mm512_sub_ps(one, eb), reciprocal16(d));
}

// Lanes [0, n) of a 16-lane block.
[[gnu::always_inline]] inline __mmask16 lanes(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// Stores h's lanes and folds their |h| into the row's running maximum.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline void store_h16(float* h, __mmask16 m, __m512 v,
                                                                 __m512i& amax) {
  _mm512_mask_storeu_ps(h, m, v);
  const __m512i bits = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
  amax = _mm512_mask_max_epu32(amax, m, amax, bits);
}

// Row `row`'s h quantized into q's row and its scale, its maximum already known; nothing when no
// quantized h is asked for (q null: no offset is taken from q or scales).
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline void finish_row16(const float* h, int H,
                                                                    __m512i amax, std::uint8_t* q,
                                                                    int ldq, float* scales,
                                                                    int row) {
  if (q)
    scales[row] =
        quantize_row_with_max_avx512(h, H, max_lane(amax), q + static_cast<std::size_t>(row) * ldq);
}

RECUR_TARGET_AVX512 void lstm_cell_avx512(int B, int H, const float* gates, const float* c_prev,
                                          float* c, float* h, int ldh, std::uint8_t* q, int ldq,
                                          float* scales) {
  using namespace lstm_gate;
  for (int b = 0; b < B; ++b) {
    const float* g = gates + static_cast<std::size_t>(b) * kCount * H;
    const float* cp = c_prev + static_cast<std::size_t>(b) * H;
    float* cb = c + static_cast<std::size_t>(b) * H;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    __m512i amax = _mm512_setzero_si512();
    for (int j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(H - j);
      const __m512 iu = sigmoid_tanh16(_mm512_maskz_loadu_ps(m, g + kInput * H + j),
                                       _mm512_maskz_loadu_ps(m, g + kCell * H + j));
      const __m512 f = sigmoid16(_mm512_maskz_loadu_ps(m, g + kForget * H + j));
      const __m512 cn = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, cp + j), iu);
      _mm512_mask_storeu_ps(cb + j, m, cn);
      store_h16(hb + j, m, sigmoid_tanh16(_mm512_maskz_loadu_ps(m, g + kOutput * H + j), cn), amax);
    }
    finish_row16(hb, H, amax, q, ldq, scales, b);
  }
}

// One row's 16 units [j, j + 16) of the GRU cell: h stored, |h| folded into amax.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline void gru_block16(const float* g, const float* hd,
                                                                   const float* hp, int H,
                                                                   float* hb, int j, __mmask16 m,
                                                                   __m512i& amax) {
  using namespace gru_gate;
  const __m512 r = sigmoid16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, g + kReset * H + j),
                                           _mm512_maskz_loadu_ps(m, hd + kReset * H + j)));
  const __m512 z = sigmoid16(_mm512_add_ps(_mm512_maskz_loadu_ps(m, g + kUpdate * H + j),
                                           _mm512_maskz_loadu_ps(m, hd + kUpdate * H + j)));
  const __m512 n = tanh16(_mm512_fmadd_ps(r, _mm512_maskz_loadu_ps(m, hd + kNew * H + j),
                                          _mm512_maskz_loadu_ps(m, g + kNew * H + j)));
  // (1 - z) n + z h_prev
  const __m512 v = _mm512_fmadd_ps(z, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, hp + j), n), n);
  store_h16(hb + j, m, v, amax);
}

// Two rows at a time: two independent dependency chains side by side.
RECUR_TARGET_AVX512 void gru_cell_avx512(int B, int H, const float* gates, const float* hidden,
                                         const float* h_prev, int ld_prev, float* h, int ldh,
                                         std::uint8_t* q, int ldq, float* scales) {
  using namespace gru_gate;
  const std::size_t G = static_cast<std::size_t>(kCount) * H;
  int b = 0;
  for (; b + 2 <= B; b += 2) {
    const float* g = gates + static_cast<std::size_t>(b) * G;
    const float* hd = hidden + static_cast<std::size_t>(b) * G;
    const float* hp = h_prev + static_cast<std::size_t>(b) * ld_prev;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    __m512i amax0 = _mm512_setzero_si512(), amax1 = amax0;
    for (int j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(H - j);
      gru_block16(g, hd, hp, H, hb, j, m, amax0);
      gru_block16(g + G, hd + G, hp + ld_prev, H, hb + ldh, j, m, amax1);
    }
    finish_row16(hb, H, amax0, q, ldq, scales, b);
    finish_row16(hb + ldh, H, amax1, q, ldq, scales, b + 1);
  }
  for (; b < B; ++b) {
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    __m512i amax = _mm512_setzero_si512();
    for (int j = 0; j < H; j += 16)
      gru_block16(gates + static_cast<std::size_t>(b) * G, hidden + static_cast<std::size_t>(b) * G,
                  h_prev + static_cast<std::size_t>(b) * ld_prev, H, hb, j, lanes(H - j), amax);
    finish_row16(hb, H, amax, q, ldq, scales, b);
  }
}

// One row's 16 units of the RNN cell.
[[gnu::always_inline]] RECUR_TARGET_AVX512 inline void rnn_block16(bool relu, const float* p,
                                                                   float* hb, int j, __mmask16 m,
                                                                   __m512i& amax) {
  const __m512 x = _mm512_maskz_loadu_ps(m, p + j);
  store_h16(hb + j, m, relu ? _mm512_maskz_max_ps(kAll, x, _mm512_setzero_ps()) : tanh16(x), amax);
}

RECUR_TARGET_AVX512 void rnn_cell_avx512(bool relu, int B, int H, const float* pre, float* h,
                                         int ldh, std::uint8_t* q, int ldq, float* scales) {
  int b = 0;
  for (; b + 2 <= B; b += 2) {
    const float* p = pre + static_cast<std::size_t>(b) * H;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    __m512i amax0 = _mm512_setzero_si512(), amax1 = amax0;
    for (int j = 0; j < H; j += 16) {
      const __mmask16 m = lanes(H - j);
      rnn_block16(relu, p, hb, j, m, amax0);
      rnn_block16(relu, p + H, hb + ldh, j, m, amax1);
    }
    finish_row16(hb, H, amax0, q, ldq, scales, b);
    finish_row16(hb + ldh, H, amax1, q, ldq, scales, b + 1);
  }
  for (; b < B; ++b) {
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    __m512i amax = _mm512_setzero_si512();
    for (int j = 0; j < H; j += 16)
      rnn_block16(relu, pre + static_cast<std::size_t>(b) * H, hb, j, lanes(H - j), amax);
    finish_row16(hb, H, amax, q, ldq, scales, b);
  }
}

// ---- the other copies: kernels/activations.hpp's functions, vectorized by the compiler ----

[[gnu::always_inline]] inline void quantize_h(const float* hb, int H, std::uint8_t* q, int ldq,
                                              float* scales, int b) {
  if (q)
    scales[b] = quantize_row_with_max(hb, H, abs_max(hb, H), q + static_cast<std::size_t>(b) * ldq);
}

[[gnu::always_inline]] inline void lstm_cell_impl(int B, int H, const float* gates,
                                                  const float* c_prev, float* c, float* h, int ldh,
                                                  std::uint8_t* q, int ldq, float* scales) {
  using namespace lstm_gate;
  for (int b = 0; b < B; ++b) {
    const float* g = gates + static_cast<std::size_t>(b) * kCount * H;
    const float* cp = c_prev + static_cast<std::size_t>(b) * H;
    float* cb = c + static_cast<std::size_t>(b) * H;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
#pragma omp simd
    for (int j = 0; j < H; ++j) {
      const float i = sigmoid(g[kInput * H + j]), f = sigmoid(g[kForget * H + j]),
                  u = tanh_act(g[kCell * H + j]), o = sigmoid(g[kOutput * H + j]);
      const float cn = f * cp[j] + i * u;
      cb[j] = cn;
      hb[j] = o * tanh_act(cn);
    }
    quantize_h(hb, H, q, ldq, scales, b);
  }
}

[[gnu::always_inline]] inline void gru_cell_impl(int B, int H, const float* gates,
                                                 const float* hidden, const float* h_prev,
                                                 int ld_prev, float* h, int ldh, std::uint8_t* q,
                                                 int ldq, float* scales) {
  using namespace gru_gate;
  for (int b = 0; b < B; ++b) {
    const float* g = gates + static_cast<std::size_t>(b) * kCount * H;
    const float* hd = hidden + static_cast<std::size_t>(b) * kCount * H;
    const float* hp = h_prev + static_cast<std::size_t>(b) * ld_prev;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
#pragma omp simd
    for (int j = 0; j < H; ++j) {
      const float r = sigmoid(g[kReset * H + j] + hd[kReset * H + j]);
      const float z = sigmoid(g[kUpdate * H + j] + hd[kUpdate * H + j]);
      const float n = tanh_act(g[kNew * H + j] + r * hd[kNew * H + j]);
      hb[j] = (1.0f - z) * n + z * hp[j];
    }
    quantize_h(hb, H, q, ldq, scales, b);
  }
}

[[gnu::always_inline]] inline void rnn_cell_impl(bool relu, int B, int H, const float* pre,
                                                 float* h, int ldh, std::uint8_t* q, int ldq,
                                                 float* scales) {
  for (int b = 0; b < B; ++b) {
    const float* p = pre + static_cast<std::size_t>(b) * H;
    float* hb = h + static_cast<std::size_t>(b) * ldh;
    if (relu) {
#pragma omp simd
      for (int j = 0; j < H; ++j) hb[j] = p[j] > 0.0f ? p[j] : 0.0f;
    } else {
#pragma omp simd
      for (int j = 0; j < H; ++j) hb[j] = tanh_act(p[j]);
    }
    quantize_h(hb, H, q, ldq, scales, b);
  }
}

RECUR_TARGET_AVX2 void lstm_cell_avx2(int B, int H, const float* gates, const float* c_prev,
                                      float* c, float* h, int ldh, std::uint8_t* q, int ldq,
                                      float* scales) {
  lstm_cell_impl(B, H, gates, c_prev, c, h, ldh, q, ldq, scales);
}
void lstm_cell_portable(int B, int H, const float* gates, const float* c_prev, float* c, float* h,
                        int ldh, std::uint8_t* q, int ldq, float* scales) {
  lstm_cell_impl(B, H, gates, c_prev, c, h, ldh, q, ldq, scales);
}
RECUR_TARGET_AVX2 void gru_cell_avx2(int B, int H, const float* gates, const float* hidden,
                                     const float* h_prev, int ld_prev, float* h, int ldh,
                                     std::uint8_t* q, int ldq, float* scales) {
  gru_cell_impl(B, H, gates, hidden, h_prev, ld_prev, h, ldh, q, ldq, scales);
}
void gru_cell_portable(int B, int H, const float* gates, const float* hidden, const float* h_prev,
                       int ld_prev, float* h, int ldh, std::uint8_t* q, int ldq, float* scales) {
  gru_cell_impl(B, H, gates, hidden, h_prev, ld_prev, h, ldh, q, ldq, scales);
}
RECUR_TARGET_AVX2 void rnn_cell_avx2(bool relu, int B, int H, const float* pre, float* h, int ldh,
                                     std::uint8_t* q, int ldq, float* scales) {
  rnn_cell_impl(relu, B, H, pre, h, ldh, q, ldq, scales);
}
void rnn_cell_portable(bool relu, int B, int H, const float* pre, float* h, int ldh,
                       std::uint8_t* q, int ldq, float* scales) {
  rnn_cell_impl(relu, B, H, pre, h, ldh, q, ldq, scales);
}

}  // namespace

void lstm_int8_cell(int B, int H, const float* gates, const float* c_prev, float* c, float* h,
                    int ldh, std::uint8_t* q, int ldq, float* scales) {
  switch (isa()) {
    case Isa::avx512:
      return lstm_cell_avx512(B, H, gates, c_prev, c, h, ldh, q, ldq, scales);
    case Isa::avx2:
      return lstm_cell_avx2(B, H, gates, c_prev, c, h, ldh, q, ldq, scales);
    default:
      return lstm_cell_portable(B, H, gates, c_prev, c, h, ldh, q, ldq, scales);
  }
}

void gru_int8_cell(int B, int H, const float* gates, const float* hidden, const float* h_prev,
                   int ld_prev, float* h, int ldh, std::uint8_t* q, int ldq, float* scales) {
  switch (isa()) {
    case Isa::avx512:
      return gru_cell_avx512(B, H, gates, hidden, h_prev, ld_prev, h, ldh, q, ldq, scales);
    case Isa::avx2:
      return gru_cell_avx2(B, H, gates, hidden, h_prev, ld_prev, h, ldh, q, ldq, scales);
    default:
      return gru_cell_portable(B, H, gates, hidden, h_prev, ld_prev, h, ldh, q, ldq, scales);
  }
}

void rnn_int8_cell(bool relu, int B, int H, const float* pre, float* h, int ldh, std::uint8_t* q,
                   int ldq, float* scales) {
  switch (isa()) {
    case Isa::avx512:
      return rnn_cell_avx512(relu, B, H, pre, h, ldh, q, ldq, scales);
    case Isa::avx2:
      return rnn_cell_avx2(relu, B, H, pre, h, ldh, q, ldq, scales);
    default:
      return rnn_cell_portable(relu, B, H, pre, h, ldh, q, ldq, scales);
  }
}

}  // namespace recur::kernels
