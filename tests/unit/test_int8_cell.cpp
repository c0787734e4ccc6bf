// The int8 cells (kernels/int8_cell.hpp) against the fp32 cells (kernels/cell.hpp): the same h and
// c within the int8 path's looser activations, and h quantized as quantize_rows quantizes it, byte
// for byte, in the ISA copy this process runs (RECUR_ISA=portable runs the baseline copy).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cell.hpp"
#include "kernels/int8_cell.hpp"
#include "kernels/int8_gemm.hpp"
#include "recur/rng.hpp"

namespace recur::kernels {
namespace {

std::vector<float> random(std::size_t n, std::uint64_t seed, double scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.uniform(-1, 1));
  return v;
}

// h [B, H] (row stride ldh) quantized by the cell must be what quantize_rows gives.
void expect_quantized_as_rows(int B, int H, const std::vector<float>& h, int ldh,
                              const std::vector<std::uint8_t>& q, int ldq,
                              const std::vector<float>& scales) {
  std::vector<std::uint8_t> want(q.size(), 0);
  std::vector<float> want_scales(B);
  quantize_rows(B, h.data(), ldh, H, want.data(), ldq, want_scales.data());
  for (int b = 0; b < B; ++b) {
    EXPECT_EQ(scales[b], want_scales[b]) << "row " << b;
    for (int k = 0; k < quantized_row_bytes(H); ++k)
      ASSERT_EQ(q[static_cast<std::size_t>(b) * ldq + k],
                want[static_cast<std::size_t>(b) * ldq + k])
          << "row " << b << " k " << k;
  }
}

// Hidden sizes with and without a tail of fewer than 16 units; gates wide enough to saturate.
const int kSizes[] = {128, 37, 5};

TEST(Int8Cell, LstmMatchesTheFp32CellAndQuantizesItsOutput) {
  const int B = 6;
  for (int H : kSizes) {
    const int ldh = H + 3, ldq = quantized_row_bytes(H) + 4;
    const auto gates = random(static_cast<std::size_t>(B) * 4 * H, 1, 6.0);
    const auto c_prev = random(static_cast<std::size_t>(B) * H, 2, 2.0);
    std::vector<float> g32 = gates, c32(B * H), h32(B * ldh), c8(B * H), h8(B * ldh);
    lstm_pointwise_forward<float>(B, H, g32.data(), c_prev.data(), c32.data(), h32.data(), ldh);
    std::vector<std::uint8_t> q(static_cast<std::size_t>(B) * ldq, 0);
    std::vector<float> scales(B, -1.0f);
    lstm_int8_cell(B, H, gates.data(), c_prev.data(), c8.data(), h8.data(), ldh, q.data(), ldq,
                   scales.data());
    for (int b = 0; b < B; ++b)
      for (int j = 0; j < H; ++j) {
        EXPECT_NEAR(c8[b * H + j], c32[b * H + j], 2e-6) << H;
        EXPECT_NEAR(h8[b * ldh + j], h32[b * ldh + j], 2e-6) << H;
      }
    expect_quantized_as_rows(B, H, h8, ldh, q, ldq, scales);
  }
}

TEST(Int8Cell, GruMatchesTheFp32CellAndQuantizesItsOutput) {
  const int B = 5;
  for (int H : kSizes) {
    const int ldh = H + 2, ld_prev = H + 1, ldq = quantized_row_bytes(H);
    const auto gates = random(static_cast<std::size_t>(B) * 3 * H, 3, 6.0);
    const auto hidden = random(static_cast<std::size_t>(B) * 3 * H, 4, 3.0);
    const auto h_prev = random(static_cast<std::size_t>(B) * ld_prev, 5, 1.0);
    std::vector<float> g32 = gates, h32(B * ldh), h8(B * ldh);
    gru_pointwise_forward<float>(B, H, g32.data(), hidden.data(), h_prev.data(), ld_prev,
                                 h32.data(), ldh);
    std::vector<std::uint8_t> q(static_cast<std::size_t>(B) * ldq, 0);
    std::vector<float> scales(B, -1.0f);
    gru_int8_cell(B, H, gates.data(), hidden.data(), h_prev.data(), ld_prev, h8.data(), ldh,
                  q.data(), ldq, scales.data());
    for (int b = 0; b < B; ++b)
      for (int j = 0; j < H; ++j) EXPECT_NEAR(h8[b * ldh + j], h32[b * ldh + j], 2e-6) << H;
    expect_quantized_as_rows(B, H, h8, ldh, q, ldq, scales);
  }
}

TEST(Int8Cell, RnnMatchesTheFp32CellAndQuantizesItsOutput) {
  const int B = 4;
  for (bool relu : {false, true})
    for (int H : kSizes) {
      const int ldh = H + 5, ldq = quantized_row_bytes(H);
      const auto pre = random(static_cast<std::size_t>(B) * H, 6, 5.0);
      std::vector<float> h32(B * ldh), h8(B * ldh);
      rnn_pointwise_forward<float>(relu, B, H, pre.data(), h32.data(), ldh);
      std::vector<std::uint8_t> q(static_cast<std::size_t>(B) * ldq, 0);
      std::vector<float> scales(B, -1.0f);
      rnn_int8_cell(relu, B, H, pre.data(), h8.data(), ldh, q.data(), ldq, scales.data());
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < H; ++j) EXPECT_NEAR(h8[b * ldh + j], h32[b * ldh + j], 2e-6) << H;
      expect_quantized_as_rows(B, H, h8, ldh, q, ldq, scales);
    }
}

TEST(Int8Cell, ARowOfZerosHasScaleZeroAndTheOffsetBytes) {
  const int B = 2, H = 20, ldq = quantized_row_bytes(H);
  const std::vector<float> pre(static_cast<std::size_t>(B) * H, 0.0f);
  std::vector<float> h(static_cast<std::size_t>(B) * H, 1.0f);
  std::vector<std::uint8_t> q(static_cast<std::size_t>(B) * ldq, 0);
  std::vector<float> scales(B, -1.0f);
  rnn_int8_cell(false, B, H, pre.data(), h.data(), H, q.data(), ldq, scales.data());
  for (int b = 0; b < B; ++b) EXPECT_EQ(scales[b], 0.0f);
  for (std::uint8_t v : q) EXPECT_EQ(v, 128);
}

TEST(Int8Cell, WithoutAQuantizedBufferOnlyHIsWritten) {
  const int B = 3, H = 16;
  const auto pre = random(static_cast<std::size_t>(B) * H, 7, 2.0);
  std::vector<float> h(static_cast<std::size_t>(B) * H, 0.0f), h32(h);
  rnn_int8_cell(false, B, H, pre.data(), h.data(), H, nullptr, 0, nullptr);
  rnn_pointwise_forward<float>(false, B, H, pre.data(), h32.data(), H);
  for (int k = 0; k < B * H; ++k) EXPECT_NEAR(h[k], h32[k], 2e-6);
}

}  // namespace
}  // namespace recur::kernels
