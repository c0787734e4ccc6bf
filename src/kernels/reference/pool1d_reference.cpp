#include "kernels/reference/pool1d_reference.hpp"

#include <cmath>
#include <cstddef>

namespace recur::kernels::reference {

namespace {

// The input step holding the maximum of sample b's window o, feature f: the first of equal
// values, a NaN as soon as one comes (PyTorch's CPU rule).
int argmax(const Pool1dDims& d, int len, const double* x, int o, int b, int f) {
  auto at = [&](int t) { return x[(static_cast<std::size_t>(t) * d.batch + b) * d.features + f]; };
  const int start = o * d.stride;
  const int end = start + d.kernel < len ? start + d.kernel : len;
  int best = start;
  for (int t = start + 1; t < end; ++t)
    if (at(t) > at(best) || std::isnan(at(t))) best = t;
  return best;
}

}  // namespace

void maxpool1d_forward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                       double* y) {
  const int S_out = d.out_steps();
  for (int b = 0; b < d.batch; ++b)
    for (int f = 0; f < d.features; ++f)
      for (int o = 0; o < S_out; ++o) {
        double& out = y[(static_cast<std::size_t>(o) * d.batch + b) * d.features + f];
        if (o >= pool1d_length(lengths[b], d.kernel, d.stride)) {
          out = 0;
          continue;
        }
        const int t = argmax(d, lengths[b], x, o, b, f);
        out = x[(static_cast<std::size_t>(t) * d.batch + b) * d.features + f];
      }
}

void maxpool1d_backward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                        const double* dy, double* dx) {
  const std::size_t n = static_cast<std::size_t>(d.steps) * d.batch * d.features;
  for (std::size_t k = 0; k < n; ++k) dx[k] = 0;
  for (int b = 0; b < d.batch; ++b)
    for (int f = 0; f < d.features; ++f)
      for (int o = 0; o < pool1d_length(lengths[b], d.kernel, d.stride); ++o) {
        const int t = argmax(d, lengths[b], x, o, b, f);
        dx[(static_cast<std::size_t>(t) * d.batch + b) * d.features + f] +=
            dy[(static_cast<std::size_t>(o) * d.batch + b) * d.features + f];
      }
}

// Per sample, per feature: the output o is (1/n) * sum of x over its window's n steps, so each of
// those steps' gradient is dy[o] / n.
void avgpool1d_forward(const Pool1dDims& d, const std::vector<int>& lengths, const double* x,
                       double* y) {
  const int S_out = d.out_steps();
  auto at = [&](int t, int b, int f) {
    return (static_cast<std::size_t>(t) * d.batch + b) * d.features + f;
  };
  for (int b = 0; b < d.batch; ++b)
    for (int f = 0; f < d.features; ++f)
      for (int o = 0; o < S_out; ++o) {
        y[at(o, b, f)] = 0;
        if (o >= pool1d_length(lengths[b], d.kernel, d.stride)) continue;
        const int start = o * d.stride;
        const int end = start + d.kernel < lengths[b] ? start + d.kernel : lengths[b];
        double sum = 0;
        for (int t = start; t < end; ++t) sum += x[at(t, b, f)];
        y[at(o, b, f)] = sum / (end - start);
      }
}

void avgpool1d_backward(const Pool1dDims& d, const std::vector<int>& lengths, const double* dy,
                        double* dx) {
  auto at = [&](int t, int b, int f) {
    return (static_cast<std::size_t>(t) * d.batch + b) * d.features + f;
  };
  const std::size_t n = static_cast<std::size_t>(d.steps) * d.batch * d.features;
  for (std::size_t k = 0; k < n; ++k) dx[k] = 0;
  for (int b = 0; b < d.batch; ++b)
    for (int f = 0; f < d.features; ++f)
      for (int o = 0; o < pool1d_length(lengths[b], d.kernel, d.stride); ++o) {
        const int start = o * d.stride;
        const int end = start + d.kernel < lengths[b] ? start + d.kernel : lengths[b];
        for (int t = start; t < end; ++t) dx[at(t, b, f)] += dy[at(o, b, f)] / (end - start);
      }
}

}  // namespace recur::kernels::reference
