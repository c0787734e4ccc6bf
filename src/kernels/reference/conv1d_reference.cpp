#include "kernels/reference/conv1d_reference.hpp"

#include <algorithm>
#include <cstddef>

namespace recur::kernels::reference {

namespace {
std::size_t at(int t, int b, int B, int width, int k) {
  return (static_cast<std::size_t>(t) * B + b) * width + k;
}
}  // namespace

template <typename T>
void conv1d_forward(const Conv1dDims& d, const std::vector<int>& lengths, const T* x, const T* w,
                    const T* b, T* y) {
  const int S = d.steps, B = d.batch, F = d.in_features, C = d.out_channels, K = d.kernel;
  const int p = d.padding();
  for (int s = 0; s < B; ++s)
    for (int t = 0; t < S; ++t)
      for (int c = 0; c < C; ++c) {
        if (t >= lengths[s]) {
          y[at(t, s, B, C, c)] = T(0);
          continue;
        }
        T sum = b ? b[c] : T(0);
        for (int f = 0; f < F; ++f)
          for (int j = 0; j < K; ++j) {
            const int ts = t + j - p;
            if (ts >= 0 && ts < lengths[s])
              sum += w[(static_cast<std::size_t>(c) * F + f) * K + j] * x[at(ts, s, B, F, f)];
          }
        y[at(t, s, B, C, c)] = sum;
      }
}

template <typename T>
void conv1d_backward(const Conv1dDims& d, const std::vector<int>& lengths, const T* x, const T* w,
                     const T* dy, T* dx, T* dw, T* db) {
  const int S = d.steps, B = d.batch, F = d.in_features, C = d.out_channels, K = d.kernel;
  const int p = d.padding();
  if (dx) std::fill(dx, dx + static_cast<std::size_t>(S) * B * F, T(0));
  for (int s = 0; s < B; ++s)
    for (int t = 0; t < lengths[s]; ++t)
      for (int c = 0; c < C; ++c) {
        const T g = dy[at(t, s, B, C, c)];
        if (db) db[c] += g;
        for (int f = 0; f < F; ++f)
          for (int j = 0; j < K; ++j) {
            const int ts = t + j - p;
            if (ts < 0 || ts >= lengths[s]) continue;
            const std::size_t wi = (static_cast<std::size_t>(c) * F + f) * K + j;
            dw[wi] += g * x[at(ts, s, B, F, f)];
            if (dx) dx[at(ts, s, B, F, f)] += g * w[wi];
          }
      }
}

template void conv1d_forward<float>(const Conv1dDims&, const std::vector<int>&, const float*,
                                    const float*, const float*, float*);
template void conv1d_forward<double>(const Conv1dDims&, const std::vector<int>&, const double*,
                                     const double*, const double*, double*);
template void conv1d_backward<float>(const Conv1dDims&, const std::vector<int>&, const float*,
                                     const float*, const float*, float*, float*, float*);
template void conv1d_backward<double>(const Conv1dDims&, const std::vector<int>&, const double*,
                                      const double*, const double*, double*, double*, double*);

}  // namespace recur::kernels::reference
