#include "kernels/pool1d.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace recur::kernels {

int pool1d_length(int length, int kernel, int stride) {
  return length >= kernel ? (length - kernel) / stride + 1 : 1;
}

int Pool1dDims::out_steps() const {
  return pool1d_length(steps, kernel, stride);
}

template <typename T>
void maxpool1d_forward(const Pool1dDims& d, const int* lengths, const T* x, T* y,
                       std::int32_t* arg) {
  const int B = d.batch, F = d.features, S_out = d.out_steps();
  const std::size_t row = static_cast<std::size_t>(F);
  for (int o = 0; o < S_out; ++o)
    for (int b = 0; b < B; ++b) {
      T* yo = y + (static_cast<std::size_t>(o) * B + b) * row;
      std::int32_t* ao = arg + (static_cast<std::size_t>(o) * B + b) * row;
      const int len = lengths[b];
      if (o >= pool1d_length(len, d.kernel, d.stride)) {
        std::fill(yo, yo + F, T(0));
        std::fill(ao, ao + F, -1);
        continue;
      }
      // The window's first step seeds the maximum; later steps replace it only when larger
      // (the earliest of equal values stays) or NaN. Rows are contiguous in f: this vectorises.
      const int t0 = o * d.stride, t1 = std::min(t0 + d.kernel, len);
      const T* first = x + (static_cast<std::size_t>(t0) * B + b) * row;
      std::copy(first, first + F, yo);
      std::fill(ao, ao + F, t0);
      for (int t = t0 + 1; t < t1; ++t) {
        const T* xt = x + (static_cast<std::size_t>(t) * B + b) * row;
        for (int f = 0; f < F; ++f)
          if (xt[f] > yo[f] || std::isnan(xt[f])) {
            yo[f] = xt[f];
            ao[f] = t;
          }
      }
    }
}

template <typename T>
void maxpool1d_backward(const Pool1dDims& d, const std::int32_t* arg, const T* dy, T* dx) {
  const int B = d.batch, F = d.features, S_out = d.out_steps();
  std::fill(dx, dx + static_cast<std::size_t>(d.steps) * B * F, T(0));
  for (int o = 0; o < S_out; ++o)
    for (int b = 0; b < B; ++b) {
      const std::size_t at = (static_cast<std::size_t>(o) * B + b) * F;
      for (int f = 0; f < F; ++f) {
        const std::int32_t t = arg[at + f];
        if (t >= 0) dx[(static_cast<std::size_t>(t) * B + b) * F + f] += dy[at + f];
      }
    }
}

namespace {

// The steps [t0, t1) of window o of a sample of `len` steps.
void window(const Pool1dDims& d, int o, int len, int& t0, int& t1) {
  t0 = o * d.stride;
  t1 = std::min(t0 + d.kernel, len);
}

}  // namespace

template <typename T>
void avgpool1d_forward(const Pool1dDims& d, const int* lengths, const T* x, T* y) {
  const int B = d.batch, F = d.features, S_out = d.out_steps();
  for (int o = 0; o < S_out; ++o)
    for (int b = 0; b < B; ++b) {
      T* yo = y + (static_cast<std::size_t>(o) * B + b) * F;
      std::fill(yo, yo + F, T(0));
      if (o >= pool1d_length(lengths[b], d.kernel, d.stride)) continue;
      int t0, t1;
      window(d, o, lengths[b], t0, t1);
      for (int t = t0; t < t1; ++t) {
        const T* xt = x + (static_cast<std::size_t>(t) * B + b) * F;
        for (int f = 0; f < F; ++f) yo[f] += xt[f];
      }
      const T inv = T(1) / T(t1 - t0);
      for (int f = 0; f < F; ++f) yo[f] *= inv;
    }
}

template <typename T>
void avgpool1d_backward(const Pool1dDims& d, const int* lengths, const T* dy, T* dx) {
  const int B = d.batch, F = d.features, S_out = d.out_steps();
  std::fill(dx, dx + static_cast<std::size_t>(d.steps) * B * F, T(0));
  for (int o = 0; o < S_out; ++o)
    for (int b = 0; b < B; ++b) {
      if (o >= pool1d_length(lengths[b], d.kernel, d.stride)) continue;
      int t0, t1;
      window(d, o, lengths[b], t0, t1);
      const T inv = T(1) / T(t1 - t0);
      const T* g = dy + (static_cast<std::size_t>(o) * B + b) * F;
      for (int t = t0; t < t1; ++t) {
        T* dxt = dx + (static_cast<std::size_t>(t) * B + b) * F;
        for (int f = 0; f < F; ++f) dxt[f] += g[f] * inv;
      }
    }
}

template void avgpool1d_forward<float>(const Pool1dDims&, const int*, const float*, float*);
template void avgpool1d_forward<double>(const Pool1dDims&, const int*, const double*, double*);
template void avgpool1d_backward<float>(const Pool1dDims&, const int*, const float*, float*);
template void avgpool1d_backward<double>(const Pool1dDims&, const int*, const double*, double*);
template void maxpool1d_forward<float>(const Pool1dDims&, const int*, const float*, float*,
                                       std::int32_t*);
template void maxpool1d_forward<double>(const Pool1dDims&, const int*, const double*, double*,
                                        std::int32_t*);
template void maxpool1d_backward<float>(const Pool1dDims&, const std::int32_t*, const float*,
                                        float*);
template void maxpool1d_backward<double>(const Pool1dDims&, const std::int32_t*, const double*,
                                         double*);

}  // namespace recur::kernels
