// Gradient clipping over the whole gradient arena at once.
#include <cmath>
#include <cstddef>

#include <fmt/format.h>

#include "recur/error.hpp"
#include "recur/optim.hpp"

namespace recur {

namespace {

// The squares of a gradient of n elements in four partial sums (element i in sum i mod 4, the
// last n mod 4 elements in the first; one sum for n < 32,768), each added to in index order, then
// the four in order: a zero adds nothing, so the runs of for_each_gradient_run (untouched table
// rows skipped) give the sum of the whole dense gradient bit for bit. (The order of the vectorized
// loop recur used before, so earlier runs' clipping is reproduced.)
struct SquareSums {
  double lane[4] = {0, 0, 0, 0};
  std::size_t body_end = 0;  // n rounded down to a multiple of 4; 0 for one sum

  explicit SquareSums(std::size_t n) : body_end(n < (std::size_t{1} << 15) ? 0 : n / 4 * 4) {}

  static double square(float g) {
    const double d = g;
    return d * d;
  }
  void add(std::size_t begin, const float* g, std::size_t len) {
    std::size_t i = 0;
    for (; i < len && begin + i < body_end && (begin + i) % 4 != 0; ++i)
      lane[(begin + i) % 4] += square(g[i]);
    double l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3];
    for (; begin + i + 4 <= body_end && i + 4 <= len; i += 4) {
      l0 += square(g[i]);
      l1 += square(g[i + 1]);
      l2 += square(g[i + 2]);
      l3 += square(g[i + 3]);
    }
    lane[0] = l0, lane[1] = l1, lane[2] = l2, lane[3] = l3;
    for (; i < len; ++i) {
      const std::size_t at = begin + i;
      lane[at < body_end ? at % 4 : 0] += square(g[i]);
    }
  }
  double total() const {
    double sum = 0;
    for (const double l : lane) sum += l;
    return sum;
  }
};

}  // namespace

bool all_finite(const float* grads, std::size_t n, const TableRows* table) {
  float acc = 0;
  for_each_gradient_run(const_cast<float*>(grads), n, table, false,
                        [&](std::size_t, const float* g, std::size_t len) {
                          for (std::size_t i = 0; i < len; ++i)
                            acc += g[i] * 0.0f;  // NaN or inf anywhere makes the sum NaN
                        });
  return acc == 0.0f;
}

float clip_grad_norm(float* grads, std::size_t n, float max_norm, const TableRows* table) {
  if (!(max_norm > 0)) {
    throw Error("--clip-norm", fmt::format("must be a positive number, got {}", max_norm));
  }
  // Squares summed in double: a float sum over millions of values loses digits PyTorch's
  // pairwise reduction keeps.
  SquareSums sums(n);
  for_each_gradient_run(
      grads, n, table, false,
      [&](std::size_t begin, const float* g, std::size_t len) { sums.add(begin, g, len); });
  const auto norm = static_cast<float>(std::sqrt(sums.total()));
  if (!std::isfinite(norm)) return norm;
  // As torch: max_norm / (norm + 1e-6) in float, applied only when it shrinks the gradients.
  const float coef = max_norm / (norm + 1e-6f);
  if (coef < 1.0f) {
    for_each_gradient_run(grads, n, table, false, [&](std::size_t, float* g, std::size_t len) {
      for (std::size_t i = 0; i < len; ++i) g[i] = g[i] * coef;
    });
  }
  return norm;
}

void clip_grad_value(float* grads, std::size_t n, float limit, const TableRows* table) {
  if (!(limit > 0)) {
    throw Error("--clip-value", fmt::format("must be a positive number, got {}", limit));
  }
  const float low = -limit;
  for_each_gradient_run(grads, n, table, false, [&](std::size_t, float* g, std::size_t len) {
    for (std::size_t i = 0; i < len; ++i) {
      const float x = g[i];
      g[i] = x < low ? low : (x > limit ? limit : x);
    }
  });
}

}  // namespace recur
