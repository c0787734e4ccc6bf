#include "kernels/rows.hpp"

#include "kernels/activations.hpp"
#include "kernels/dispatch.hpp"

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
                                                        int ld, T* out) {
  for (std::size_t r = 0; r < n; ++r) {
    const T* row = rows + r * ld;
#pragma omp simd
    for (int j = 0; j < cols; ++j) out[j] += row[j];
  }
}

}  // namespace

// Float is compiled per instruction set (kernels/dispatch.hpp), double once.
RECUR_DISPATCHED(template <>, void, add_bias_rows<float>, add_bias_rows_f,
                 add_bias_rows_impl<float>,
                 (float* rows, std::size_t n, int cols, const float* bias), (rows, n, cols, bias))
RECUR_DISPATCHED(template <>, void, mul_rows<float>, mul_rows_f, mul_rows_impl<float>,
                 (int B, int H, const float* a, int lda, const float* mask, float* out),
                 (B, H, a, lda, mask, out))
RECUR_DISPATCHED(template <>, void, mul_add_rows<float>, mul_add_rows_f, mul_add_rows_impl<float>,
                 (int B, int H, const float* a, const float* mask, float* out),
                 (B, H, a, mask, out))
RECUR_DISPATCHED(template <>, void, add_column_sums<float>, add_column_sums_f,
                 add_column_sums_impl<float>,
                 (const float* rows, std::size_t n, int cols, int ld, float* out),
                 (rows, n, cols, ld, out))

template <>
void add_bias_rows<double>(double* rows, std::size_t n, int cols, const double* bias) {
  add_bias_rows_impl<double>(rows, n, cols, bias);
}
template <>
void mul_rows<double>(int B, int H, const double* a, int lda, const double* mask, double* out) {
  mul_rows_impl<double>(B, H, a, lda, mask, out);
}
template <>
void mul_add_rows<double>(int B, int H, const double* a, const double* mask, double* out) {
  mul_add_rows_impl<double>(B, H, a, mask, out);
}
template <>
void add_column_sums<double>(const double* rows, std::size_t n, int cols, int ld, double* out) {
  add_column_sums_impl<double>(rows, n, cols, ld, out);
}

}  // namespace recur::kernels
