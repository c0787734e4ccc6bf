// The stack's row helpers (kernels/rows.hpp) against plain loops, float and double, with odd
// widths (vector tails).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/rows.hpp"
#include "recur/rng.hpp"

namespace recur::kernels {
namespace {

template <typename T>
std::vector<T> random_vector(std::size_t n, Rng& rng) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform(-1, 1));
  return v;
}

template <typename T>
void check_rows(int rows, int cols) {
  Rng rng(rows * 100 + cols);
  const auto a = random_vector<T>(static_cast<std::size_t>(rows) * cols, rng);
  const auto bias = random_vector<T>(cols, rng);

  std::vector<T> biased = a;
  add_bias_rows<T>(biased.data(), rows, cols, bias.data());
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) ASSERT_EQ(biased[r * cols + j], a[r * cols + j] + bias[j]);

  std::vector<T> sums = bias, want = bias;  // adds to what is there
  add_column_sums<T>(a.data(), rows, cols, cols, sums.data());
  for (int r = 0; r < rows; ++r)
    for (int j = 0; j < cols; ++j) want[j] += a[r * cols + j];
  for (int j = 0; j < cols; ++j) ASSERT_EQ(sums[j], want[j]) << j;
}

TEST(Rows, MatchPlainLoops) {
  for (int cols : {1, 15, 16, 17, 33, 512}) {
    check_rows<float>(7, cols);
    check_rows<double>(7, cols);
  }
  check_rows<float>(0, 5);  // no rows: nothing changes
}

}  // namespace
}  // namespace recur::kernels
