// 1-D "same" convolution over packed-length sequences (kernels/conv1d.hpp).
//
// im2col + GEMM against direct loops, forward, float, one thread, S = 256, F = C = 128, k = 5, on
// the 2-core AMD EPYC of this project: batch 1 0.45 ms against 1.88 ms, batch 64 30.1 ms against
// 109 ms (about 90 against 25 GFLOP/s; docs/REPORT.md). The layer uses im2col + GEMM.
#include "kernels/conv1d.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/gemm.hpp"

namespace recur::kernels {

namespace {

// Rows (samples) of step t that are real.
inline int rows_at(const Conv1dDims& d, const int* batch_sizes, int t) {
  return batch_sizes ? batch_sizes[t] : d.batch;
}

// Steps per chunk: whole steps, at most kConv1dChunkRows rows (at least one step).
inline int chunk_steps(const Conv1dDims& d) {
  return std::max(1, kConv1dChunkRows / d.batch);
}

// col rows for steps [t0, t1): row (t - t0) * B + b, column f * k + j holds x[t + j - p, b, f],
// zero where that step is outside [0, steps) or past the sample's end; a padded output row is all
// zero.
template <typename T>
void fill_col(const Conv1dDims& d, const int* batch_sizes, const T* x, int t0, int t1, T* col) {
  const int B = d.batch, F = d.in_features, K = d.kernel, p = d.padding();
  const std::size_t W = d.col_width();
  for (int t = t0; t < t1; ++t) {
    const int bt = rows_at(d, batch_sizes, t);
    T* c0 = col + static_cast<std::size_t>(t - t0) * B * W;
    std::fill(c0 + static_cast<std::size_t>(bt) * W, c0 + static_cast<std::size_t>(B) * W, T(0));
    for (int j = 0; j < K; ++j) {
      const int ts = t + j - p;
      const int real = (ts < 0 || ts >= d.steps) ? 0 : std::min(bt, rows_at(d, batch_sizes, ts));
      for (int b = 0; b < real; ++b) {
        const T* xs = x + (static_cast<std::size_t>(ts) * B + b) * F;
        T* c = c0 + static_cast<std::size_t>(b) * W + j;
        for (int f = 0; f < F; ++f) c[static_cast<std::size_t>(f) * K] = xs[f];
      }
      for (int b = real; b < bt; ++b) {
        T* c = c0 + static_cast<std::size_t>(b) * W + j;
        for (int f = 0; f < F; ++f) c[static_cast<std::size_t>(f) * K] = T(0);
      }
    }
  }
}

}  // namespace

template <typename T>
void conv1d_forward(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w, const T* b,
                    T* y, std::vector<T>& col, const PackedMatrix* packed) {
  const int B = d.batch, C = d.out_channels, S = d.steps;
  const std::size_t W = d.col_width();
  const int cs = chunk_steps(d);
  col.resize(static_cast<std::size_t>(std::min(cs, S)) * B * W);
  for (int t0 = 0; t0 < S; t0 += cs) {
    const int t1 = std::min(S, t0 + cs);
    fill_col(d, batch_sizes, x, t0, t1, col.data());
    T* y0 = y + static_cast<std::size_t>(t0) * B * C;
    bool bias_added = false;
    if constexpr (std::is_same_v<T, float>) {
      if (packed) {
        gemm_packed((t1 - t0) * B, col.data(), static_cast<int>(W), *packed, false, y0, C);
        bias_added = true;  // the packed bias starts each accumulator
      }
    }
    if (!bias_added)
      gemm<T>(false, true, (t1 - t0) * B, C, static_cast<int>(W), T(1), col.data(),
              static_cast<int>(W), w, static_cast<int>(W), T(0), y0, C);
    for (int t = t0; t < t1; ++t) {
      const int bt = rows_at(d, batch_sizes, t);
      T* yt = y + static_cast<std::size_t>(t) * B * C;
      if (b && !bias_added)
        for (int r = 0; r < bt; ++r)
          for (int c = 0; c < C; ++c) yt[static_cast<std::size_t>(r) * C + c] += b[c];
      std::fill(yt + static_cast<std::size_t>(bt) * C, yt + static_cast<std::size_t>(B) * C, T(0));
    }
  }
}

template <typename T>
void conv1d_backward(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w,
                     const T* dy, T* dx, T* dw, T* db, std::vector<T>& col, std::vector<T>& dcol) {
  const int B = d.batch, C = d.out_channels, S = d.steps, F = d.in_features, K = d.kernel;
  const int p = d.padding();
  const std::size_t W = d.col_width();
  const int cs = chunk_steps(d);
  col.resize(static_cast<std::size_t>(std::min(cs, S)) * B * W);
  if (dx) {
    dcol.resize(col.size());
    std::fill(dx, dx + static_cast<std::size_t>(S) * B * F, T(0));
  }
  for (int t0 = 0; t0 < S; t0 += cs) {
    const int t1 = std::min(S, t0 + cs);
    const int rows = (t1 - t0) * B;
    const T* dy0 = dy + static_cast<std::size_t>(t0) * B * C;
    fill_col(d, batch_sizes, x, t0, t1, col.data());
    // Padded rows of col are zero, so whatever dy holds there adds nothing to dw.
    gemm<T>(true, false, C, static_cast<int>(W), rows, T(1), dy0, C, col.data(),
            static_cast<int>(W), T(1), dw, static_cast<int>(W));
    if (db)
      for (int t = t0; t < t1; ++t) {
        const T* dyt = dy + static_cast<std::size_t>(t) * B * C;
        for (int r = 0; r < rows_at(d, batch_sizes, t); ++r)
          for (int c = 0; c < C; ++c) db[c] += dyt[static_cast<std::size_t>(r) * C + c];
      }
    if (!dx) continue;
    gemm<T>(false, false, rows, static_cast<int>(W), C, T(1), dy0, C, w, static_cast<int>(W), T(0),
            dcol.data(), static_cast<int>(W));
    // col2im over real output rows into real input rows only.
    for (int t = t0; t < t1; ++t) {
      const int bt = rows_at(d, batch_sizes, t);
      const T* c0 = dcol.data() + static_cast<std::size_t>(t - t0) * B * W;
      for (int j = 0; j < K; ++j) {
        const int ts = t + j - p;
        if (ts < 0 || ts >= S) continue;
        const int real = std::min(bt, rows_at(d, batch_sizes, ts));
        for (int b = 0; b < real; ++b) {
          T* xs = dx + (static_cast<std::size_t>(ts) * B + b) * F;
          const T* c = c0 + static_cast<std::size_t>(b) * W + j;
          for (int f = 0; f < F; ++f) xs[f] += c[static_cast<std::size_t>(f) * K];
        }
      }
    }
  }
}

template <typename T>
void conv1d_forward_direct(const Conv1dDims& d, const int* batch_sizes, const T* x, const T* w,
                           const T* b, T* y) {
  const int B = d.batch, C = d.out_channels, S = d.steps, F = d.in_features, K = d.kernel;
  const int p = d.padding();
  // wt[j][f][c] = w[c][f][j]: the inner loop runs over output channels, contiguous.
  std::vector<T> wt(static_cast<std::size_t>(K) * F * C);
  for (int c = 0; c < C; ++c)
    for (int f = 0; f < F; ++f)
      for (int j = 0; j < K; ++j)
        wt[(static_cast<std::size_t>(j) * F + f) * C + c] =
            w[(static_cast<std::size_t>(c) * F + f) * K + j];
  for (int t = 0; t < S; ++t) {
    const int bt = rows_at(d, batch_sizes, t);
    for (int r = 0; r < B; ++r) {
      T* yr = y + (static_cast<std::size_t>(t) * B + r) * C;
      if (r >= bt) {
        std::fill(yr, yr + C, T(0));
        continue;
      }
      for (int c = 0; c < C; ++c) yr[c] = b ? b[c] : T(0);
      for (int j = 0; j < K; ++j) {
        const int ts = t + j - p;
        if (ts < 0 || ts >= S || r >= rows_at(d, batch_sizes, ts)) continue;
        const T* xs = x + (static_cast<std::size_t>(ts) * B + r) * F;
        for (int f = 0; f < F; ++f) {
          const T v = xs[f];
          const T* wc = wt.data() + (static_cast<std::size_t>(j) * F + f) * C;
#pragma omp simd
          for (int c = 0; c < C; ++c) yr[c] += v * wc[c];
        }
      }
    }
  }
}

#define RECUR_CONV1D_INSTANTIATE(T)                                                                \
  template void conv1d_forward<T>(const Conv1dDims&, const int*, const T*, const T*, const T*, T*, \
                                  std::vector<T>&, const PackedMatrix*);                           \
  template void conv1d_backward<T>(const Conv1dDims&, const int*, const T*, const T*, const T*,    \
                                   T*, T*, T*, std::vector<T>&, std::vector<T>&);                  \
  template void conv1d_forward_direct<T>(const Conv1dDims&, const int*, const T*, const T*,        \
                                         const T*, T*);
RECUR_CONV1D_INSTANTIATE(float)
RECUR_CONV1D_INSTANTIATE(double)
#undef RECUR_CONV1D_INSTANTIATE

}  // namespace recur::kernels
