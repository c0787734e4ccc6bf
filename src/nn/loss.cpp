// Softmax cross-entropy of a batch of logits (see recur/model.hpp).
#include <cmath>
#include <cstdint>

#include "recur/model.hpp"

namespace recur {

namespace {

// The first largest of z [C].
template <typename T>
int argmax(const T* z, int C) {
  int best = 0;
  for (int k = 1; k < C; ++k)
    if (z[k] > z[best]) best = k;
  return best;
}

// sum_k e^(z_k - top), in double.
template <typename T>
double shifted_exp_sum(const T* z, int C, T top) {
  double sum = 0;
  for (int k = 0; k < C; ++k) sum += std::exp(static_cast<double>(z[k] - top));
  return sum;
}

}  // namespace

int softmax_probabilities(const float* z, int C, float* probs, double* log_sum) {
  const int best = argmax(z, C);
  const float top = z[best];
  double sum = 0;
  // Each e^(z_k - top) once, kept for the division (up to kKept classes; beyond, computed
  // again): the same values and the same sum, in the same order, as shifted_exp_sum.
  constexpr int kKept = 64;
  double e[kKept];
  for (int k = 0; k < C; ++k) {
    const double v = std::exp(static_cast<double>(z[k] - top));
    if (k < kKept) e[k] = v;
    sum += v;
  }
  for (int k = 0; k < C; ++k) {
    const double v = k < kKept ? e[k] : std::exp(static_cast<double>(z[k] - top));
    probs[k] = static_cast<float>(v / sum);
  }
  if (log_sum) *log_sum = std::log(sum) + static_cast<double>(top);
  return best;
}

int softmax_probabilities(const float* z, int C, float* probs) {
  return softmax_probabilities(z, C, probs, nullptr);
}

template <typename T>
double softmax_cross_entropy(const T* logits, const std::int32_t* labels, int B, int C, T scale,
                             T* dlogits, int* correct, double smoothing) {
  double total = 0;
  int hits = 0;
  for (int b = 0; b < B; ++b) {
    const T* z = logits + static_cast<std::size_t>(b) * C;
    const int best = argmax(z, C);
    const T zmax = z[best];
    if (best == labels[b]) ++hits;
    const double sum = shifted_exp_sum(z, C, zmax);
    // The gradient's probabilities come from the log-sum: e^(z_k - log sum e^z).
    const double log_sum = std::log(sum) + static_cast<double>(zmax);
    if (smoothing == 0) {
      total += log_sum - static_cast<double>(z[labels[b]]);
    } else {
      // -sum_k q_k log p_k with q = (1 - eps) onehot + eps / C.
      double z_sum = 0;
      for (int k = 0; k < C; ++k) z_sum += static_cast<double>(z[k]);
      total +=
          log_sum - (1 - smoothing) * static_cast<double>(z[labels[b]]) - smoothing / C * z_sum;
    }
    if (dlogits) {
      T* d = dlogits + static_cast<std::size_t>(b) * C;
      for (int k = 0; k < C; ++k) {
        const double prob = std::exp(static_cast<double>(z[k]) - log_sum);
        d[k] = static_cast<T>(prob * static_cast<double>(scale));
      }
      if (smoothing == 0) {
        d[labels[b]] -= scale;
      } else {
        const double s = static_cast<double>(scale);
        for (int k = 0; k < C; ++k) {
          const double prob = std::exp(static_cast<double>(z[k]) - log_sum);
          const double target = (k == labels[b] ? 1 - smoothing : 0) + smoothing / C;
          d[k] = static_cast<T>((prob - target) * s);
        }
      }
    }
  }
  if (correct) *correct = hits;
  return total * static_cast<double>(scale);
}

template double softmax_cross_entropy<float>(const float*, const std::int32_t*, int, int, float,
                                             float*, int*, double);
template double softmax_cross_entropy<double>(const double*, const std::int32_t*, int, int, double,
                                              double*, int*, double);

}  // namespace recur
