// Softmax cross-entropy of a batch of logits (see recur/model.hpp).
#include <cmath>
#include <cstdint>

#include "recur/model.hpp"

namespace recur {

template <typename T>
double softmax_cross_entropy(const T* logits, const std::int32_t* labels, int B, int C, T scale,
                             T* dlogits, int* correct) {
  double total = 0;
  int hits = 0;
  for (int b = 0; b < B; ++b) {
    const T* z = logits + static_cast<std::size_t>(b) * C;
    int best = 0;
    T zmax = z[0];
    for (int k = 1; k < C; ++k)
      if (z[k] > zmax) {
        zmax = z[k];
        best = k;
      }
    if (best == labels[b]) ++hits;
    double sum = 0;
    for (int k = 0; k < C; ++k) sum += std::exp(static_cast<double>(z[k] - zmax));
    const double log_sum = std::log(sum) + static_cast<double>(zmax);
    total += log_sum - static_cast<double>(z[labels[b]]);
    if (dlogits) {
      T* d = dlogits + static_cast<std::size_t>(b) * C;
      for (int k = 0; k < C; ++k) {
        const double prob = std::exp(static_cast<double>(z[k]) - log_sum);
        d[k] = static_cast<T>(prob * static_cast<double>(scale));
      }
      d[labels[b]] -= scale;
    }
  }
  if (correct) *correct = hits;
  return total * static_cast<double>(scale);
}

template double softmax_cross_entropy<float>(const float*, const std::int32_t*, int, int, float,
                                             float*, int*);
template double softmax_cross_entropy<double>(const double*, const std::int32_t*, int, int, double,
                                              double*, int*);

}  // namespace recur
