// Gradient clipping over the whole gradient arena at once.
#include <cmath>
#include <cstddef>

#include <fmt/format.h>

#include "recur/error.hpp"
#include "recur/optim.hpp"

namespace recur {

namespace {

constexpr std::size_t kParallelMinimum = std::size_t{1} << 15;

}  // namespace

float clip_grad_norm(float* grads, std::size_t n, float max_norm) {
  if (!(max_norm > 0)) {
    throw Error("--clip-norm", fmt::format("must be a positive number, got {}", max_norm));
  }
  // Squares summed in double: a float sum over millions of values loses digits PyTorch's
  // pairwise reduction keeps.
  double sum = 0;
#pragma omp parallel for simd reduction(+ : sum) schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    const double g = grads[i];
    sum += g * g;
  }
  const auto norm = static_cast<float>(std::sqrt(sum));
  if (!std::isfinite(norm)) return norm;
  // As torch: max_norm / (norm + 1e-6) in float, applied only when it shrinks the gradients.
  const float coef = max_norm / (norm + 1e-6f);
  if (coef < 1.0f) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
    for (std::size_t i = 0; i < n; ++i) grads[i] = grads[i] * coef;
  }
  return norm;
}

void clip_grad_value(float* grads, std::size_t n, float limit) {
  if (!(limit > 0)) {
    throw Error("--clip-value", fmt::format("must be a positive number, got {}", limit));
  }
  const float low = -limit;
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    const float g = grads[i];
    grads[i] = g < low ? low : (g > limit ? limit : g);
  }
}

}  // namespace recur
