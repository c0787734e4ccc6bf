// Activations shared by the fused cell kernels. The float versions use recur's own exp, written
// branch-free so that the compiler vectorizes the cell loops (libm's expf/tanhf are calls that
// block vectorization and dominated the step time). Accuracy against libm is tested over a sweep
// (tests/unit/test_activations.cpp): relative error of fast_exp below 3e-7, absolute error of
// sigmoid and tanh below 3e-7. The double versions use libm: they are the exact path used by the
// gradient checks and golden tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// The float kernels built on these are compiled for AVX-512, AVX2 and the baseline, picked at
// run time (kernels/dispatch.hpp).

namespace recur::kernels {

// fast_exp's clamp, {-87, 88}. It is defined in dispatch.cpp so that no kernel sees the values:
// when GCC knows them, it gives the clamped lanes a path of their own (their result is a constant
// it folds at compile time) and vectorizes the loop as masked arithmetic on every lane with that
// constant blended in, which ran the LSTM cell at two thirds of its speed with the same bits
// (bench/RESULTS.md, "Cells without a constant path").
extern const float kExpClamp[2];

// e^x for float: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n by building
// the exponent bits. Inputs are clamped to [-87, 88], so the result is finite and positive.
[[gnu::always_inline]] inline float fast_exp(float x) {
  const float lo = kExpClamp[0], hi = kExpClamp[1];
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  // Round to nearest by the 1.5 * 2^23 trick: no call to nearbyint, so loops vectorize.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // ln2 split in two so that n * ln2_hi is exact.
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n: n's bits into the exponent field, taken from n + 1.5 * 2^23 (whose low mantissa bits hold
  // n) in unsigned arithmetic, with no conversion to int: a NaN x, which has no int value, stays
  // defined behaviour and comes out NaN.
  const float shifted = n + 12582912.0f;
  std::uint32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  bits = (bits - 0x4B400000u + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

[[gnu::always_inline]] inline float sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}
// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7, which is what the cells need.
[[gnu::always_inline]] inline float tanh_act(float x) {
  return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f;
}

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline double tanh_act(double x) {
  return std::tanh(x);
}

}  // namespace recur::kernels
