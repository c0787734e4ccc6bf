#include "kernels/rows.hpp"

#include "kernels/activations.hpp"

namespace recur::kernels {

namespace {

template <typename T>
[[gnu::always_inline]] inline void add_bias_rows_impl(T* rows, std::size_t n, int cols,
                                                      const T* bias) {
  for (std::size_t r = 0; r < n; ++r) {
    T* row = rows + r * cols;
#pragma omp simd
    for (int j = 0; j < cols; ++j) row[j] += bias[j];
  }
}

template <typename T>
[[gnu::always_inline]] inline void add_rows_impl(int B, int H, const T* a, const T* b, int ldb,
                                                 T* out) {
  for (int r = 0; r < B; ++r) {
    const T* ar = a + static_cast<std::size_t>(r) * H;
    const T* br = b + static_cast<std::size_t>(r) * ldb;
    T* o = out + static_cast<std::size_t>(r) * H;
#pragma omp simd
    for (int j = 0; j < H; ++j) o[j] = ar[j] + br[j];
  }
}

template <typename T>
[[gnu::always_inline]] inline void mul_rows_impl(int B, int H, const T* a, int lda, const T* mask,
                                                 T* out) {
  for (int r = 0; r < B; ++r) {
    const T* ar = a + static_cast<std::size_t>(r) * lda;
    const T* mr = mask + static_cast<std::size_t>(r) * H;
    T* o = out + static_cast<std::size_t>(r) * H;
#pragma omp simd
    for (int j = 0; j < H; ++j) o[j] = ar[j] * mr[j];
  }
}

template <typename T>
[[gnu::always_inline]] inline void mul_add_rows_impl(int B, int H, const T* a, const T* mask,
                                                     T* out) {
  const std::size_t n = static_cast<std::size_t>(B) * H;
#pragma omp simd
  for (std::size_t k = 0; k < n; ++k) out[k] += a[k] * mask[k];
}

template <typename T>
[[gnu::always_inline]] inline void add_column_sums_impl(const T* rows, std::size_t n, int cols,
                                                        T* out) {
  for (std::size_t r = 0; r < n; ++r) {
    const T* row = rows + r * cols;
#pragma omp simd
    for (int j = 0; j < cols; ++j) out[j] += row[j];
  }
}

}  // namespace

// Float is compiled per instruction set (RECUR_CPU_DISPATCH), double once.
#define RECUR_ROWS_ENTRY(ATTR, T)                                                   \
  template <>                                                                       \
  ATTR void add_bias_rows<T>(T * rows, std::size_t n, int cols, const T* bias) {    \
    add_bias_rows_impl<T>(rows, n, cols, bias);                                     \
  }                                                                                 \
  template <>                                                                       \
  ATTR void add_rows<T>(int B, int H, const T* a, const T* b, int ldb, T* out) {    \
    add_rows_impl<T>(B, H, a, b, ldb, out);                                         \
  }                                                                                 \
  template <>                                                                       \
  ATTR void mul_rows<T>(int B, int H, const T* a, int lda, const T* mask, T* out) { \
    mul_rows_impl<T>(B, H, a, lda, mask, out);                                      \
  }                                                                                 \
  template <>                                                                       \
  ATTR void mul_add_rows<T>(int B, int H, const T* a, const T* mask, T* out) {      \
    mul_add_rows_impl<T>(B, H, a, mask, out);                                       \
  }                                                                                 \
  template <>                                                                       \
  ATTR void add_column_sums<T>(const T* rows, std::size_t n, int cols, T* out) {    \
    add_column_sums_impl<T>(rows, n, cols, out);                                    \
  }
RECUR_ROWS_ENTRY(RECUR_CPU_DISPATCH, float)
RECUR_ROWS_ENTRY(, double)

}  // namespace recur::kernels
