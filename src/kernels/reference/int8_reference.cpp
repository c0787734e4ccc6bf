#include "kernels/reference/int8_reference.hpp"

#include <algorithm>
#include <cmath>

namespace recur::kernels::reference {

float quantize_row(const float* x, int K, std::vector<int>& q) {
  float amax = 0.0f;
  for (int k = 0; k < K; ++k) amax = std::max(amax, std::fabs(x[k]));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  q.assign(K, 0);
  for (int k = 0; k < K; ++k) {
    const float v = std::nearbyint(x[k] * inv);
    q[k] = static_cast<int>(std::min(127.0f, std::max(-127.0f, v)));
  }
  return amax / 127.0f;
}

void qdq_gemm(int M, int N, int K, const float* A, int lda, const float* W, int ldw,
              const float* bias, float* C, int ldc) {
  std::vector<std::vector<double>> w(N);
  std::vector<int> q;
  for (int n = 0; n < N; ++n) {
    const float s = quantize_row(W + static_cast<std::size_t>(n) * ldw, K, q);
    for (int k = 0; k < K; ++k) w[n].push_back(static_cast<double>(q[k]) * s);
  }
  for (int m = 0; m < M; ++m) {
    const float s = quantize_row(A + static_cast<std::size_t>(m) * lda, K, q);
    for (int n = 0; n < N; ++n) {
      double acc = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k) acc += static_cast<double>(q[k]) * s * w[n][k];
      C[static_cast<std::size_t>(m) * ldc + n] = static_cast<float>(acc);
    }
  }
}

}  // namespace recur::kernels::reference
