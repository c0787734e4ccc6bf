// Sampled and full softmax cross-entropy over a large output layer (see sampled_softmax.hpp).
#include "kernels/sampled_softmax.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/gemm.hpp"

namespace recur::kernels {

template <typename T>
double sampled_softmax_loss(const T* h, const std::int32_t* targets, int N, int H, const T* W,
                            const T* b, const std::int32_t* cand, int K, const T* logq, T scale,
                            T* dh, T* dW, T* db, SampledSoftmaxScratch<T>& scratch) {
  if (N <= 0) return 0.0;
  const std::size_t nh = static_cast<std::size_t>(H);
  // scratch: Wc [K, H] (the candidates' rows), S [N, K] (their logits, then gradients),
  // dWc [K, H].
  const std::size_t wc_size = static_cast<std::size_t>(K) * nh;
  const std::size_t s_size = static_cast<std::size_t>(N) * K;
  scratch.values.resize(2 * wc_size + s_size);
  T* Wc = scratch.values.data();
  T* S = Wc + wc_size;
  T* dWc = S + s_size;
  for (int k = 0; k < K; ++k) std::copy(W + cand[k] * nh, W + (cand[k] + 1) * nh, Wc + k * nh);
  if (K > 0) {
    if constexpr (std::is_same_v<T, float>) {
      pack_weights(Wc, K, H, false, scratch.rows_t);
      gemm_packed(N, h, H, scratch.rows_t, false, S, K);
    } else {
      gemm<T>(false, true, N, K, H, T(1), h, H, Wc, H, T(0), S, K);
    }
  }
  scratch.expo.resize(static_cast<std::size_t>(K));
  double* expo = scratch.expo.data();
  double total = 0;
  for (int n = 0; n < N; ++n) {
    const std::int32_t t = targets[n];
    const T* hn = h + n * nh;
    const T* wt = W + t * nh;
    double st = static_cast<double>(b[t]) - logq[t];
    for (int j = 0; j < H; ++j) st += static_cast<double>(hn[j]) * wt[j];
    T* s = S + static_cast<std::size_t>(n) * K;
    double top = st;
    for (int k = 0; k < K; ++k) {
      if (cand[k] == t) continue;
      top = std::max(top, static_cast<double>(s[k]) + b[cand[k]] - logq[cand[k]]);
    }
    // Each exponential once: summed for the loss, then scaled into the probabilities.
    const double e_true = std::exp(st - top);
    double sum = e_true;
    for (int k = 0; k < K; ++k) {
      expo[k] = cand[k] == t
                    ? 0.0
                    : std::exp(static_cast<double>(s[k]) + b[cand[k]] - logq[cand[k]] - top);
      sum += expo[k];
    }
    const double log_z = top + std::log(sum);
    total += log_z - st;
    if (!dh) continue;
    // d(loss)/d(logit) = p - [true]; rows of accidental hits get none.
    const double to_grad = static_cast<double>(scale) / sum;
    for (int k = 0; k < K; ++k) s[k] = static_cast<T>(expo[k] * to_grad);
    const T gt = static_cast<T>(e_true * to_grad - static_cast<double>(scale));
    T* dhn = dh + n * nh;
    for (int j = 0; j < H; ++j) dhn[j] = gt * wt[j];
    T* dwt = dW + t * nh;
    for (int j = 0; j < H; ++j) dwt[j] += gt * hn[j];
    db[t] += gt;
  }
  if (dh && K > 0) {
    // dh += dS [N, K] x Wc [K, H]; dWc = dS^T [K, N] x h [N, H], scattered into dW.
    if constexpr (std::is_same_v<T, float>) {
      pack_weights(Wc, H, K, true, scratch.rows);
      gemm_packed(N, S, K, scratch.rows, true, dh, H);
      std::fill(dWc, dWc + wc_size, 0.0f);
      gemm_tn_accumulate(K, H, N, S, K, h, H, dWc, H, scratch.tn);
    } else {
      gemm<T>(false, false, N, H, K, T(1), S, K, Wc, H, T(1), dh, H);
      gemm<T>(true, false, K, H, N, T(1), S, K, h, H, T(0), dWc, H);
    }
    for (int k = 0; k < K; ++k) {
      T* dw = dW + cand[k] * nh;
      const T* g = dWc + k * nh;
      for (int j = 0; j < H; ++j) dw[j] += g[j];
      T col = 0;
      for (int n = 0; n < N; ++n) col += S[static_cast<std::size_t>(n) * K + k];
      db[cand[k]] += col;
    }
  }
  return static_cast<double>(scale) * total;
}

template <typename T>
double full_softmax_loss(const T* h, const std::int32_t* targets, int N, int H, const T* W,
                         const T* b, int V, std::vector<T>& scratch) {
  constexpr int kBlock = 64;
  scratch.resize(static_cast<std::size_t>(kBlock) * V);
  double total = 0;
  for (int n0 = 0; n0 < N; n0 += kBlock) {
    const int rows = std::min(kBlock, N - n0);
    gemm<T>(false, true, rows, V, H, T(1), h + static_cast<std::size_t>(n0) * H, H, W, H, T(0),
            scratch.data(), V);
    for (int r = 0; r < rows; ++r) {
      const T* s = scratch.data() + static_cast<std::size_t>(r) * V;
      double top = -std::numeric_limits<double>::infinity();
      for (int v = 0; v < V; ++v) top = std::max(top, static_cast<double>(s[v]) + b[v]);
      double sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(static_cast<double>(s[v]) + b[v] - top);
      const std::int32_t t = targets[n0 + r];
      total += top + std::log(sum) - (static_cast<double>(s[t]) + b[t]);
    }
  }
  return total;
}

template double sampled_softmax_loss<float>(const float*, const std::int32_t*, int, int,
                                            const float*, const float*, const std::int32_t*, int,
                                            const float*, float, float*, float*, float*,
                                            SampledSoftmaxScratch<float>&);
template double sampled_softmax_loss<double>(const double*, const std::int32_t*, int, int,
                                             const double*, const double*, const std::int32_t*, int,
                                             const double*, double, double*, double*, double*,
                                             SampledSoftmaxScratch<double>&);
template double full_softmax_loss<float>(const float*, const std::int32_t*, int, int, const float*,
                                         const float*, int, std::vector<float>&);
template double full_softmax_loss<double>(const double*, const std::int32_t*, int, int,
                                          const double*, const double*, int, std::vector<double>&);

}  // namespace recur::kernels
