#include "kernels/packed_gemm.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/activations.hpp"

namespace recur::kernels {

namespace {

// 16 floats; the compiler maps it onto one zmm, two ymm or four xmm registers.
typedef float v16 __attribute__((vector_size(64)));

[[gnu::always_inline]] inline void load16(v16& v, const float* p) {
  std::memcpy(&v, p, sizeof(v));
}

// One tile: rows [0, MR) of A against one 32-column panel. cols <= 32 are stored.
template <int MR>
[[gnu::always_inline]] inline void tile(int K, const float* A, int lda, const float* panel,
                                        bool accumulate, float* C, int ldc, int cols) {
  v16 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = v16{};
  for (int k = 0; k < K; ++k) {
    v16 b0, b1;
    load16(b0, panel + k * kPanelWidth);
    load16(b1, panel + k * kPanelWidth + 16);
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      acc[r][0] += a * b0;
      acc[r][1] += a * b1;
    }
  }
  for (int r = 0; r < MR; ++r) {
    float out[kPanelWidth];
    std::memcpy(out, &acc[r][0], sizeof(v16));
    std::memcpy(out + 16, &acc[r][1], sizeof(v16));
    float* c = C + r * ldc;
    if (accumulate) {
      for (int j = 0; j < cols; ++j) c[j] += out[j];
    } else {
      for (int j = 0; j < cols; ++j) c[j] = out[j];
    }
  }
}

// Rows [0, M) of A (already offset to column k0) against rows [k0, k0 + K) of every panel.
[[gnu::always_inline]] inline void gemm_packed_block(int M, const float* A, int lda,
                                                     const PackedMatrix& W, int k0, int K,
                                                     bool accumulate, float* C, int ldc) {
  const int panels = (W.N + kPanelWidth - 1) / kPanelWidth;
  for (int p = 0; p < panels; ++p) {
    const float* panel = W.panels.data() + (static_cast<std::size_t>(p) * W.K + k0) * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, W.N - n0);
    int m = 0;
    for (; m + 8 <= M; m += 8)
      tile<8>(K, A + static_cast<std::size_t>(m) * lda, lda, panel, accumulate,
              C + static_cast<std::size_t>(m) * ldc + n0, ldc, cols);
    const float* a = A + static_cast<std::size_t>(m) * lda;
    float* c = C + static_cast<std::size_t>(m) * ldc + n0;
    switch (M - m) {
      case 7:
        tile<7>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 6:
        tile<6>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 5:
        tile<5>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 4:
        tile<4>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 3:
        tile<3>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 2:
        tile<2>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      case 1:
        tile<1>(K, a, lda, panel, accumulate, c, ldc, cols);
        break;
      default:
        break;
    }
  }
}

// Inner dimension per pass: a 256 x 32 slice of a panel (32 KB) stays in L1 while the row tiles
// stream past it; the backward step's K = 4H = 512 would not fit.
constexpr int kDepthBlock = 256;

}  // namespace

RECUR_CPU_DISPATCH
void gemm_packed(int M, const float* A, int lda, const PackedMatrix& W, bool accumulate, float* C,
                 int ldc) {
  for (int k0 = 0; k0 < W.K; k0 += kDepthBlock) {
    const int K = std::min(kDepthBlock, W.K - k0);
    gemm_packed_block(M, A + k0, lda, W, k0, K, accumulate || k0 > 0, C, ldc);
  }
}

void pack_weights(const float* W, int N, int K, bool w_is_k_by_n, PackedMatrix& out) {
  const int panels = (N + kPanelWidth - 1) / kPanelWidth;
  out.N = N;
  out.K = K;
  out.panels.assign(static_cast<std::size_t>(panels) * K * kPanelWidth, 0.0f);
  for (int p = 0; p < panels; ++p) {
    float* dst = out.panels.data() + static_cast<std::size_t>(p) * K * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < cols; ++j)
        dst[k * kPanelWidth + j] = w_is_k_by_n ? W[static_cast<std::size_t>(k) * N + n0 + j]
                                               : W[static_cast<std::size_t>(n0 + j) * K + k];
  }
}

}  // namespace recur::kernels
