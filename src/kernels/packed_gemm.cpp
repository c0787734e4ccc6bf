#include "kernels/packed_gemm.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/activations.hpp"
#include "kernels/dispatch.hpp"

namespace recur::kernels {

namespace {

// 16 floats; the compiler maps it onto one zmm, two ymm or four xmm registers.
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

[[gnu::always_inline]] inline void load16(v16& v, const float* p) {
  std::memcpy(&v, p, sizeof(v));
}

// Writes (or adds) one row of a tile, lo | hi, to its first `cols` <= 32 columns at c. Whole
// panels take two vector stores: a variable-length copy loop would become a call to memcpy,
// which cost GRU 3% of its training step.
[[gnu::always_inline]] inline void store_row(v16 lo, v16 hi, bool accumulate, float* c, int cols) {
  if (cols == kPanelWidth) {
    if (accumulate) {
      v16 c0, c1;
      load16(c0, c);
      load16(c1, c + 16);
      lo += c0;
      hi += c1;
    }
    std::memcpy(c, &lo, sizeof(v16));
    std::memcpy(c + 16, &hi, sizeof(v16));
    return;
  }
  float out[kPanelWidth];
  std::memcpy(out, &lo, sizeof(v16));
  std::memcpy(out + 16, &hi, sizeof(v16));
  if (accumulate) {
    for (int j = 0; j < cols; ++j) c[j] += out[j];
  } else {
    for (int j = 0; j < cols; ++j) c[j] = out[j];
  }
}

// A run of consecutive inner-dimension columns read from one source matrix: row m of the run is
// a + m * lda, k columns long. A row of the product's left side is one or two runs side by side.
struct Run {
  const float* a;
  int lda;
  int k;
};

// Where a tile's accumulators start: a row of 32 values (a panel's bias) that every row shares
// (ld 0), or each row's own (row r at p + r * ld: the sums an earlier product left, continued
// element by element), or zero (p null). `cols` valid values; the rest start at zero.
struct Init {
  const float* p = nullptr;
  std::size_t ld = 0;

  [[gnu::always_inline]] void load(int r, int cols, v16& lo, v16& hi) const {
    lo = hi = v16{};
    if (!p) return;
    const float* row = p + r * ld;
    if (cols == kPanelWidth) {
      load16(lo, row);
      load16(hi, row + 16);
      return;
    }
    float padded[kPanelWidth] = {};
    std::memcpy(padded, row, sizeof(float) * cols);
    load16(lo, padded);
    load16(hi, padded + 16);
  }
};

// The start of a product's first depth block for a row tile and a panel: the bias of panel p
// (broadcast), row m's own starting sums, or zero.
struct Start {
  const float* bias = nullptr;  // the packed bias, or null
  const float* rows = nullptr;  // starting sums [M, N] (row stride ld), or null
  std::size_t ld = 0;

  [[gnu::always_inline]] Init at(std::size_t m, int p) const {
    if (rows) return {rows + m * ld + static_cast<std::size_t>(p) * kPanelWidth, ld};
    if (bias) return {bias + static_cast<std::size_t>(p) * kPanelWidth, 0};
    return {};
  }
};

// One tile: rows [m, m + MR) of the runs against one 32-column panel (already offset to the
// runs' first inner index). Accumulators start at `init`; cols <= 32 stored.
template <int MR>
[[gnu::always_inline]] inline void tile(const Run* runs, int nruns, std::size_t m,
                                        const float* panel, Init init, bool accumulate, float* C,
                                        int ldc, int cols) {
  v16 acc[MR][2];
  for (int r = 0; r < MR; ++r) init.load(r, cols, acc[r][0], acc[r][1]);
  for (int q = 0; q < nruns; ++q) {
    const int lda = runs[q].lda, K = runs[q].k;
    const float* A = runs[q].a + m * lda;
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
    panel += static_cast<std::size_t>(K) * kPanelWidth;
  }
  for (int r = 0; r < MR; ++r)
    store_row(acc[r][0], acc[r][1], accumulate, C + static_cast<std::size_t>(r) * ldc, cols);
}

// tile<mr> for a tail of 1 <= mr <= MR rows: a chain of compile-time row counts, inlined into
// the caller's per-instruction-set copy (as tile_tn_rows below).
template <int MR>
[[gnu::always_inline]] inline void tile_rows(int mr, const Run* runs, int nruns, std::size_t m,
                                             const float* panel, Init init, bool accumulate,
                                             float* C, int ldc, int cols) {
  if constexpr (MR > 1) {
    if (mr < MR)
      return tile_rows<MR - 1>(mr, runs, nruns, m, panel, init, accumulate, C, ldc, cols);
  }
  tile<MR>(runs, nruns, m, panel, init, accumulate, C, ldc, cols);
}

// A few rows against P adjacent panels at once (panel q at panel + q * panel_stride): for one
// row, one panel gives only two accumulator chains, and the step waits on the FMA latency. Each
// output element is summed exactly as tile<MR> sums it (its bias, then k in order, one FMA per
// k), so a row's result never depends on how many rows run beside it.
template <int MR, int P>
[[gnu::always_inline]] inline void tile_panels(const Run* runs, int nruns, std::size_t m,
                                               const float* panel, std::size_t panel_stride,
                                               Init init, bool accumulate, float* C, int ldc) {
  v16 acc[MR][P][2];
  for (int q = 0; q < P; ++q) {
    const Init at{init.p ? init.p + q * kPanelWidth : nullptr, init.ld};
    for (int r = 0; r < MR; ++r) at.load(r, kPanelWidth, acc[r][q][0], acc[r][q][1]);
  }
  for (int u = 0; u < nruns; ++u) {
    const int lda = runs[u].lda, K = runs[u].k;
    const float* A = runs[u].a + m * lda;
    for (int k = 0; k < K; ++k) {
#pragma GCC unroll 8
      for (int q = 0; q < P; ++q) {
        v16 b0, b1;
        load16(b0, panel + q * panel_stride + k * kPanelWidth);
        load16(b1, panel + q * panel_stride + k * kPanelWidth + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const float a = A[r * lda + k];
          acc[r][q][0] += a * b0;
          acc[r][q][1] += a * b1;
        }
      }
    }
    panel += static_cast<std::size_t>(K) * kPanelWidth;
  }
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < P; ++q)
      store_row(acc[r][q][0], acc[r][q][1], accumulate,
                C + static_cast<std::size_t>(r) * ldc + q * kPanelWidth, kPanelWidth);
}

// Rows [m, m + MR) against whole panels from p on in groups of P; returns the first panel left.
template <int MR, int P>
[[gnu::always_inline]] inline int panel_groups(const Run* runs, int nruns, std::size_t m,
                                               const PackedMatrix& W, int k0, Start start,
                                               bool accumulate, float* C, int ldc, int p) {
  const int whole = W.N / kPanelWidth;
  const std::size_t stride = static_cast<std::size_t>(W.K) * kPanelWidth;
  for (; p + P <= whole; p += P) {
    const float* panel = W.panels.data() + p * stride + static_cast<std::size_t>(k0) * kPanelWidth;
    tile_panels<MR, P>(runs, nruns, m, panel, stride, start.at(m, p), accumulate,
                       C + m * ldc + p * kPanelWidth, ldc);
  }
  return p;
}

// Rows [m, m + MR) of the runs against every panel: whole panels in groups of P, then of P/2
// down to 2, the rest one by one through tile<MR>; for the small row counts of batch-1 and
// streaming inference (LSTM-128 at batch 1: 64 against 87 us with groups of 4 only).
template <int MR, int P>
[[gnu::always_inline]] inline void row_block_panels(const Run* runs, int nruns, std::size_t m,
                                                    const PackedMatrix& W, int k0, Start start,
                                                    bool accumulate, float* C, int ldc) {
  int p = panel_groups<MR, P>(runs, nruns, m, W, k0, start, accumulate, C, ldc, 0);
  if constexpr (P >= 4)
    p = panel_groups<MR, P / 2>(runs, nruns, m, W, k0, start, accumulate, C, ldc, p);
  if constexpr (P >= 8)
    p = panel_groups<MR, P / 4>(runs, nruns, m, W, k0, start, accumulate, C, ldc, p);
  const int panels = (W.N + kPanelWidth - 1) / kPanelWidth;
  const std::size_t stride = static_cast<std::size_t>(W.K) * kPanelWidth;
  for (; p < panels; ++p) {
    const float* panel = W.panels.data() + p * stride + static_cast<std::size_t>(k0) * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, W.N - n0);
    tile<MR>(runs, nruns, m, panel, start.at(m, p), accumulate, C + m * ldc + n0, ldc, cols);
  }
}

// Rows [0, M) of the runs against rows [k0, k0 + sum of run lengths) of every panel. The tail's
// row count goes through tile_rows, a chain of always-inline templates: a generic lambda
// dispatching on it was compiled outside the per-instruction-set copies, without AVX-512, and the
// weight-gradient kernel fell from 135 to 2.6 GFLOP/s.
// Panels [p_begin, p_end) only when given (p_end >= 0): the columns one thread of a column split
// computes (nn/recurrent.cpp), each element summed as the whole product sums it.
[[gnu::always_inline]] inline void gemm_packed_block(int M, const Run* runs, int nruns,
                                                     const PackedMatrix& W, int k0, Start start,
                                                     bool accumulate, float* C, int ldc,
                                                     int p_begin = 0, int p_end = -1) {
  const int panels = (W.N + kPanelWidth - 1) / kPanelWidth;
  const bool all = p_end < 0;
  if (all) p_end = panels;
  // One to four rows (batch-1 and streaming inference, small server batches): several panels
  // per pass. The same arithmetic per element as the tiles below.
  switch (all ? M : 0) {
    case 1:
      // Groups of 8 panels only pay where there are 8 (an RNN-128's 4 panels ran 15 -> 18 us).
      if (W.N >= 8 * kPanelWidth)
        row_block_panels<1, 8>(runs, nruns, 0, W, k0, start, accumulate, C, ldc);
      else
        row_block_panels<1, 4>(runs, nruns, 0, W, k0, start, accumulate, C, ldc);
      return;
    case 2:
      row_block_panels<2, 4>(runs, nruns, 0, W, k0, start, accumulate, C, ldc);
      return;
    case 3:
      row_block_panels<3, 2>(runs, nruns, 0, W, k0, start, accumulate, C, ldc);
      return;
    case 4:
      row_block_panels<4, 2>(runs, nruns, 0, W, k0, start, accumulate, C, ldc);
      return;
    default:
      break;
  }
  for (int p = p_begin; p < p_end; ++p) {
    const float* panel = W.panels.data() + (static_cast<std::size_t>(p) * W.K + k0) * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, W.N - n0);
    std::size_t m = 0;
    for (; m + 8 <= static_cast<std::size_t>(M); m += 8)
      tile<8>(runs, nruns, m, panel, start.at(m, p), accumulate, C + m * ldc + n0, ldc, cols);
    if (m < static_cast<std::size_t>(M))
      tile_rows<7>(M - static_cast<int>(m), runs, nruns, m, panel, start.at(m, p), accumulate,
                   C + m * ldc + n0, ldc, cols);
  }
}

// Inner dimension per pass: a 256 x 32 slice of a panel (32 KB) stays in L1 while the row tiles
// stream past it; the backward step's K = 4H = 512 would not fit.
constexpr int kDepthBlock = kPackedDepth;

// C = [A1 | A2] * W (+ bias), A1 k1 columns wide, A2 W.K - k1, in depth blocks of kDepthBlock.
[[gnu::always_inline]] inline void gemm_packed_runs(int M, const float* A1, int lda1, int k1,
                                                    const float* A2, int lda2,
                                                    const PackedMatrix& W, bool accumulate,
                                                    float* C, int ldc, int p_begin = 0,
                                                    int p_end = -1) {
  for (int k0 = 0; k0 < W.K; k0 += kDepthBlock) {
    const int k_end = std::min(W.K, k0 + kDepthBlock);
    Run runs[2];
    int n = 0;
    if (k0 < k1) runs[n++] = {A1 + k0, lda1, std::min(k_end, k1) - k0};
    if (k_end > k1) {
      const int from = std::max(k0, k1);
      runs[n++] = {A2 + (from - k1), lda2, k_end - from};
    }
    const Start start{k0 == 0 && !W.bias.empty() ? W.bias.data() : nullptr};
    gemm_packed_block(M, runs, n, W, k0, start, accumulate || k0 > 0, C, ldc, p_begin, p_end);
  }
}

// One tile of C += A^T X: rows [0, MR) of C (columns of A, A already offset to them) against one
// packed 32-column panel of X over K inner steps. A is k-major: its MR values for step k are
// contiguous at A + k * lda.
// With kSums, also sums[r] += A's column r over the K steps, in order (add_column_sums' bits).
template <int MR, bool kPrefetchA, bool kSums>
[[gnu::always_inline]] inline void tile_tn(int K, const float* A, int lda, const float* panel,
                                           float* C, int ldc, int cols, float* sums) {
  v16 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = v16{};
  // The column sums: 8 in one register for a whole tile, else one by one.
  v8 sum8{};
  float sum[MR] = {};
  if constexpr (kSums) {
    if constexpr (MR == 8)
      std::memcpy(&sum8, sums, sizeof(sum8));
    else
      for (int r = 0; r < MR; ++r) sum[r] = sums[r];
  }
  for (int k = 0; k < K; ++k) {
    v16 b0, b1;
    load16(b0, panel + k * kPanelWidth);
    load16(b1, panel + k * kPanelWidth + 16);
    const float* a = A + static_cast<std::size_t>(k) * lda;
    // A's rows are lda apart (2 KB for an LSTM-128), too far for the hardware prefetcher:
    // asking 16 rows ahead took dW_hh from 125 to 135 GFLOP/s (BM_tn_weight_grad_hh). Packed A
    // (lda 8) is in L1 already, and the prefetch only took a load slot: without it
    // BM_tn_weight_grad_hh_512 went from about 188 to 193 GFLOP/s.
    if constexpr (kPrefetchA) __builtin_prefetch(a + 16 * static_cast<std::size_t>(lda));
    for (int r = 0; r < MR; ++r) {
      acc[r][0] += a[r] * b0;
      acc[r][1] += a[r] * b1;
    }
    if constexpr (kSums) {
      if constexpr (MR == 8) {
        v8 v;
        std::memcpy(&v, a, sizeof(v));
        sum8 += v;
      } else {
        for (int r = 0; r < MR; ++r) sum[r] += a[r];
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    store_row(acc[r][0], acc[r][1], true, C + static_cast<std::size_t>(r) * ldc, cols);
  if constexpr (kSums) {
    if constexpr (MR == 8)
      std::memcpy(sums, &sum8, sizeof(sum8));
    else
      for (int r = 0; r < MR; ++r) sums[r] = sum[r];
  }
}

// tile_tn for the tile's row count mr <= MR: a chain of compile-time row counts, each inlined
// into the caller's per-instruction-set copy (a generic lambda would not be; see
// gemm_packed_block).
template <int MR, bool kPrefetchA, bool kSums>
[[gnu::always_inline]] inline void tile_tn_rows(int mr, int K, const float* A, int lda,
                                                const float* panel, float* C, int ldc, int cols,
                                                float* sums) {
  if constexpr (MR > 1) {
    if (mr < MR)
      return tile_tn_rows<MR - 1, kPrefetchA, kSums>(mr, K, A, lda, panel, C, ldc, cols, sums);
  }
  tile_tn<MR, kPrefetchA, kSums>(K, A, lda, panel, C, ldc, cols, sums);
}

// Rows of A^T per pass of gemm_tn_accumulate: a 128 x 32 panel of X (16 KB) stays in L1 while
// the 8-column slices of A stream past it (128, 256: same speed; 32, 64 or 512: slower).
constexpr int kTnDepth = 128;

// Columns of A packed at a time (kTnDepth x kTnRows floats: 32 KB, L1), and the fewest panels of
// X for which the packing pays. Read in place, A's rows are lda apart; at lda = 1,024 or 2,048
// floats (the gates of an LSTM-256 or -512) all 128 rows a tile reads fall in one L1 set, and the
// weight gradient ran at 115-140 GFLOP/s against 160-180 packed (one core). With fewer than 8
// panels (hidden 128 and below) the copy costs more than it saves: 189 -> 168 GFLOP/s at 128.
constexpr int kTnRows = 64;
constexpr int kTnPackPanels = 8;

}  // namespace

namespace {

[[gnu::always_inline]] inline void gemm_tn_accumulate_impl(int M, int N, int K, const float* A,
                                                           int lda, const float* X, int ldx,
                                                           float* C, int ldc,
                                                           AlignedVector<float>& scratch,
                                                           float* a_sums) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int panels = (N + kPanelWidth - 1) / kPanelWidth;
  const bool pack = panels >= kTnPackPanels;
  const std::size_t panel_size = static_cast<std::size_t>(kTnDepth) * kPanelWidth;
  const std::size_t x_size = panels * panel_size;
  if (scratch.size() < x_size + kTnDepth * kTnRows) scratch.resize(x_size + kTnDepth * kTnRows);
  float* const a_pack = scratch.data() + x_size;
  for (int k0 = 0; k0 < K; k0 += kTnDepth) {
    const int kb = std::min(kTnDepth, K - k0);
    // X's rows [k0, k0 + kb) into zero-padded 32-column panels.
    for (int p = 0; p < panels; ++p) {
      float* dst = scratch.data() + p * panel_size;
      const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
      for (int k = 0; k < kb; ++k) {
        const float* src = X + static_cast<std::size_t>(k0 + k) * ldx + n0;
        float* row = dst + k * kPanelWidth;
        if (cols == kPanelWidth) {
          std::memcpy(row, src, sizeof(float) * kPanelWidth);
        } else {
          for (int j = 0; j < kPanelWidth; ++j) row[j] = j < cols ? src[j] : 0.0f;
        }
      }
    }
    const float* a_block = A + static_cast<std::size_t>(k0) * lda;
    for (int m0 = 0; m0 < M; m0 += kTnRows) {
      const int rows = std::min(kTnRows, M - m0);
      // A's columns [m0, m0 + rows) for these kb rows, 8 columns a tile, each tile's kb x 8
      // values contiguous.
      // The column sums (a_sums) from the same reads: each column's rows in order.
      for (int t = 0; pack && t < rows; t += 8) {
        const int w = std::min(8, rows - t);
        float* dst = a_pack + static_cast<std::size_t>(t) * kb;
        float* sums = a_sums ? a_sums + m0 + t : nullptr;
        // The 8 sums in a register across the rows (the same adds in the same order).
        v8 acc{};
        if (sums && w == 8) std::memcpy(&acc, sums, sizeof(acc));
        for (int k = 0; k < kb; ++k) {
          const float* src = a_block + static_cast<std::size_t>(k) * lda + m0 + t;
          if (w == 8) {
            v8 v;
            std::memcpy(&v, src, sizeof(v));
            std::memcpy(dst + k * 8, &v, sizeof(v));
            if (sums) acc += v;
          } else {
            for (int r = 0; r < 8; ++r) dst[k * 8 + r] = r < w ? src[r] : 0.0f;
            if (sums)
              for (int r = 0; r < w; ++r) sums[r] += src[r];
          }
        }
        if (sums && w == 8) std::memcpy(sums, &acc, sizeof(acc));
      }
      // The next block of A to pack (the next columns, or the next rows' first columns), asked
      // for a few lines a tile while this block's tiles run: read in place, its rows lda apart
      // come from memory, and the packing would wait on them. BM_tn_weight_grad_hh_512 went from
      // about 182 to 190 GFLOP/s, _256 from 170 to 174 (interleaved runs, one core).
      const float* next = nullptr;
      int next_rows = 0, next_kb = 0;
      if (pack && m0 + kTnRows < M) {
        next = a_block + m0 + kTnRows;
        next_rows = std::min(kTnRows, M - m0 - kTnRows);
        next_kb = kb;
      } else if (pack && k0 + kTnDepth < K) {
        next = a_block + static_cast<std::size_t>(kTnDepth) * lda;
        next_rows = std::min(kTnRows, M);
        next_kb = std::min(kTnDepth, K - k0 - kTnDepth);
      }
      const int row_lines = (next_rows + 15) / 16;
      const int next_lines = next_kb * row_lines;
      const int tiles = panels * ((rows + 7) / 8);
      const int per_tile = (next_lines + tiles - 1) / tiles;
      int line = 0;
      for (int p = 0; p < panels; ++p) {
        const float* panel = scratch.data() + p * panel_size;
        const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
        for (int t = 0; t < rows; t += 8) {
          for (int q = 0; q < per_tile && line < next_lines; ++q, ++line)
            __builtin_prefetch(next + static_cast<std::size_t>(line / row_lines) * lda +
                               16 * (line % row_lines));
          const float* a = pack ? a_pack + static_cast<std::size_t>(t) * kb : a_block + m0 + t;
          const int la = pack ? 8 : lda;
          float* c = C + static_cast<std::size_t>(m0 + t) * ldc + n0;
          const int mr = std::min(8, rows - t);
          if (pack)
            tile_tn_rows<8, false, false>(mr, kb, a, la, panel, c, ldc, cols, nullptr);
          else if (a_sums && p == 0)
            tile_tn_rows<8, true, true>(mr, kb, a, la, panel, c, ldc, cols, a_sums + m0 + t);
          else
            tile_tn_rows<8, true, false>(mr, kb, a, la, panel, c, ldc, cols, nullptr);
        }
      }
    }
  }
}

// The first k1 <= kDepthBlock inner rows of a pair product into C, as gemm_packed_runs sums them
// (the bias, then those rows in order).
[[gnu::always_inline]] inline void gemm_packed_head_impl(int M, const float* A1, int lda1, int k1,
                                                         const PackedMatrix& W, float* C, int ldc) {
  const Run run{A1, lda1, k1};
  const Start start{W.bias.empty() ? nullptr : W.bias.data()};
  gemm_packed_block(M, &run, 1, W, 0, start, false, C, ldc);
}

// The rest of that product, inner rows [k1, W.K), continued in C: within the depth block that
// holds k1 each sum goes on from where the head left it; a block that starts at or after k1 is
// summed from zero and added, as gemm_packed_runs does.
[[gnu::always_inline]] inline void gemm_packed_tail_impl(int M, const float* A2, int lda2, int k1,
                                                         const PackedMatrix& W, float* C, int ldc) {
  for (int k0 = 0; k0 < W.K; k0 += kDepthBlock) {
    const int k_end = std::min(W.K, k0 + kDepthBlock);
    if (k_end <= k1) continue;
    const int from = std::max(k0, k1);
    const Run run{A2 + (from - k1), lda2, k_end - from};
    const bool inside = from > k0;
    const Start start{nullptr, inside ? C : nullptr, inside ? static_cast<std::size_t>(ldc) : 0};
    gemm_packed_block(M, &run, 1, W, from, start, !inside, C, ldc);
  }
}

[[gnu::always_inline]] inline void gemm_packed_impl(int M, const float* A, int lda,
                                                    const PackedMatrix& W, bool accumulate,
                                                    float* C, int ldc) {
  gemm_packed_runs(M, A, lda, W.K, nullptr, 0, W, accumulate, C, ldc);
}

[[gnu::always_inline]] inline void gemm_packed_cols_impl(int M, const float* A1, int lda1, int k1,
                                                         const float* A2, int lda2,
                                                         const PackedMatrix& W, bool accumulate,
                                                         int n_begin, int n_end, float* C,
                                                         int ldc) {
  gemm_packed_runs(M, A1, lda1, k1, A2, lda2, W, accumulate, C, ldc, n_begin / kPanelWidth,
                   (n_end + kPanelWidth - 1) / kPanelWidth);
}

[[gnu::always_inline]] inline void gemm_packed_pair_impl(int M, const float* A1, int lda1, int k1,
                                                         const float* A2, int lda2,
                                                         const PackedMatrix& W, float* C, int ldc) {
  gemm_packed_runs(M, A1, lda1, k1, A2, lda2, W, false, C, ldc);
}

}  // namespace

// Compiled per instruction set (kernels/dispatch.hpp).
RECUR_DISPATCHED(, void, gemm_tn_accumulate, gemm_tn_accumulate_v, gemm_tn_accumulate_impl,
                 (int M, int N, int K, const float* A, int lda, const float* X, int ldx, float* C,
                  int ldc, AlignedVector<float>& scratch, float* a_sums),
                 (M, N, K, A, lda, X, ldx, C, ldc, scratch, a_sums))
RECUR_DISPATCHED(, void, gemm_packed, gemm_packed_v, gemm_packed_impl,
                 (int M, const float* A, int lda, const PackedMatrix& W, bool accumulate, float* C,
                  int ldc),
                 (M, A, lda, W, accumulate, C, ldc))
RECUR_DISPATCHED(, void, gemm_packed_pair, gemm_packed_pair_v, gemm_packed_pair_impl,
                 (int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
                  const PackedMatrix& W, float* C, int ldc),
                 (M, A1, lda1, k1, A2, lda2, W, C, ldc))
RECUR_DISPATCHED(, void, gemm_packed_cols, gemm_packed_cols_v, gemm_packed_cols_impl,
                 (int M, const float* A1, int lda1, int k1, const float* A2, int lda2,
                  const PackedMatrix& W, bool accumulate, int n_begin, int n_end, float* C,
                  int ldc),
                 (M, A1, lda1, k1, A2, lda2, W, accumulate, n_begin, n_end, C, ldc))
RECUR_DISPATCHED(, void, gemm_packed_head, gemm_packed_head_v, gemm_packed_head_impl,
                 (int M, const float* A1, int lda1, int k1, const PackedMatrix& W, float* C,
                  int ldc),
                 (M, A1, lda1, k1, W, C, ldc))
RECUR_DISPATCHED(, void, gemm_packed_tail, gemm_packed_tail_v, gemm_packed_tail_impl,
                 (int M, const float* A2, int lda2, int k1, const PackedMatrix& W, float* C,
                  int ldc),
                 (M, A2, lda2, k1, W, C, ldc))

namespace {

// Sizes `panels` for N columns over K and zeroes the last panel's padding columns: the packers
// write every other value, so a packing into the buffers of the previous one (each training step
// packs again) needs no pass clearing all of it first.
void size_panels(int panels, int K, int N, AlignedVector<float>& out) {
  out.resize(static_cast<std::size_t>(panels) * K * kPanelWidth);
  const int cols = N - (panels - 1) * kPanelWidth;
  if (panels == 0 || cols == kPanelWidth) return;
  float* last = out.data() + static_cast<std::size_t>(panels - 1) * K * kPanelWidth;
  for (int k = 0; k < K; ++k)
    std::fill(last + k * kPanelWidth + cols, last + (k + 1) * kPanelWidth, 0.0f);
}

// Rows [n0, n0 + cols) of W [*, K] (row-major, PyTorch's [out, in] layout) into a panel's
// inner rows [at, at + K) transposed: dst[(at + k) * 32 + j] = W[(n0 + j) * K + k]. In blocks of
// 16 inner rows, so that the 16 x 32 block being written (2 KB) stays in L1 while each of the
// panel's rows is read 16 floats at a time; writing all K of one row first sends every store to
// a different line of the whole panel (128 KB at K = 1,024) and ran at 40% of the speed
// (BM_pack_pair_512). With `kn` (W's rows as the inner dimension of pack_weights(W, K, *, true)'s
// panels [ceil(K / 32)][rows][32]), the 16 floats read are copied there too.
void transpose_into_panel(const float* W, int n0, int cols, int K, int at, float* dst,
                          float* kn = nullptr, int kn_rows = 0) {
  constexpr int kBlock = 16;
  static_assert(kPanelWidth % kBlock == 0, "a block of W's row stays within one kn panel");
  for (int k0 = 0; k0 < K; k0 += kBlock) {
    const int kb = std::min(kBlock, K - k0);
    float* block = dst + static_cast<std::size_t>(at + k0) * kPanelWidth;
    for (int j = 0; j < cols; ++j) {
      const float* w = W + static_cast<std::size_t>(n0 + j) * K + k0;
      for (int k = 0; k < kb; ++k) block[k * kPanelWidth + j] = w[k];
      if (kn) {
        float* row = kn +
                     (static_cast<std::size_t>(k0 / kPanelWidth) * kn_rows + n0 + j) * kPanelWidth +
                     k0 % kPanelWidth;
        for (int k = 0; k < kb; ++k) row[k] = w[k];
      }
    }
  }
}

}  // namespace

void pack_weights(const float* W, int N, int K, bool w_is_k_by_n, PackedMatrix& out) {
  const int panels = (N + kPanelWidth - 1) / kPanelWidth;
  out.N = N;
  out.K = K;
  out.bias.clear();
  size_panels(panels, K, N, out.panels);
  for (int p = 0; p < panels; ++p) {
    float* dst = out.panels.data() + static_cast<std::size_t>(p) * K * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    if (!w_is_k_by_n) {
      transpose_into_panel(W, n0, cols, K, 0, dst);
      continue;
    }
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < cols; ++j)
        dst[k * kPanelWidth + j] = W[static_cast<std::size_t>(k) * N + n0 + j];
  }
}

int pack_pair_shape(int N, int K1, int K2, const float* bias1, const float* bias2,
                    PackedMatrix& out, PackedMatrix* w2_kn) {
  const int panels = (N + kPanelWidth - 1) / kPanelWidth;
  out.N = N;
  out.K = K1 + K2;
  size_panels(panels, K1 + K2, N, out.panels);
  out.bias.clear();
  if (bias1 || bias2) {
    out.bias.assign(static_cast<std::size_t>(panels) * kPanelWidth, 0.0f);
    for (int n = 0; n < N; ++n) out.bias[n] = (bias1 ? bias1[n] : 0.0f) + (bias2 ? bias2[n] : 0.0f);
  }
  if (w2_kn) {
    // pack_weights(W2, K2, N, true, *w2_kn)'s shape: K2 columns over N inner rows.
    w2_kn->N = K2;
    w2_kn->K = N;
    w2_kn->bias.clear();
    size_panels((K2 + kPanelWidth - 1) / kPanelWidth, N, K2, w2_kn->panels);
  }
  return panels;
}

void pack_pair_panels(int N, const float* W1, int K1, const float* W2, int K2, PackedMatrix& out,
                      PackedMatrix* w2_kn, int p_begin, int p_end) {
  const int K = K1 + K2;
  for (int p = p_begin; p < p_end; ++p) {
    float* dst = out.panels.data() + static_cast<std::size_t>(p) * K * kPanelWidth;
    const int n0 = p * kPanelWidth, cols = std::min(kPanelWidth, N - n0);
    transpose_into_panel(W1, n0, cols, K1, 0, dst);
    if (W2)
      transpose_into_panel(W2, n0, cols, K2, K1, dst, w2_kn ? w2_kn->panels.data() : nullptr, N);
  }
}

void pack_weights_pair(int N, const float* W1, int K1, const float* W2, int K2, const float* bias1,
                       const float* bias2, PackedMatrix& out) {
  const int panels = pack_pair_shape(N, K1, K2, bias1, bias2, out, nullptr);
  pack_pair_panels(N, W1, K1, W2, K2, out, nullptr, 0, panels);
}

}  // namespace recur::kernels
