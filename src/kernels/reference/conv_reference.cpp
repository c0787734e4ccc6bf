#include "kernels/reference/conv_reference.hpp"

#include <cstddef>

namespace recur::kernels::reference {

namespace {

std::size_t at(int n, int c, int h, int w, int C, int H, int W) {
  return ((static_cast<std::size_t>(n) * C + c) * H + h) * W + w;
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y) {
  const int C = d.in_channels, O = d.out_channels, K = d.kernel;
  const int OH = d.out_height(), OW = d.out_width();
  for (int n = 0; n < d.batch; ++n)
    for (int o = 0; o < O; ++o)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          T acc = b ? b[o] : T(0);
          for (int c = 0; c < C; ++c)
            for (int kh = 0; kh < K; ++kh)
              for (int kw = 0; kw < K; ++kw) {
                const int ih = oh * d.stride - d.padding + kh;
                const int iw = ow * d.stride - d.padding + kw;
                if (ih < 0 || ih >= d.height || iw < 0 || iw >= d.width) continue;
                acc += w[at(o, c, kh, kw, C, K, K)] * x[at(n, c, ih, iw, C, d.height, d.width)];
              }
          y[at(n, o, oh, ow, O, OH, OW)] = acc;
        }
}

template <typename T>
void conv2d_backward(const Conv2dDims& d, const T* x, const T* w, const T* dy, T* dx, T* dw,
                     T* db) {
  const int C = d.in_channels, O = d.out_channels, K = d.kernel;
  const int OH = d.out_height(), OW = d.out_width();
  if (dx)
    for (std::size_t k = 0; k < static_cast<std::size_t>(d.batch) * C * d.height * d.width; ++k)
      dx[k] = T(0);
  for (int n = 0; n < d.batch; ++n)
    for (int o = 0; o < O; ++o)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const T g = dy[at(n, o, oh, ow, O, OH, OW)];
          if (db) db[o] += g;
          for (int c = 0; c < C; ++c)
            for (int kh = 0; kh < K; ++kh)
              for (int kw = 0; kw < K; ++kw) {
                const int ih = oh * d.stride - d.padding + kh;
                const int iw = ow * d.stride - d.padding + kw;
                if (ih < 0 || ih >= d.height || iw < 0 || iw >= d.width) continue;
                const std::size_t xi = at(n, c, ih, iw, C, d.height, d.width);
                const std::size_t wi = at(o, c, kh, kw, C, K, K);
                dw[wi] += g * x[xi];
                if (dx) dx[xi] += g * w[wi];
              }
        }
}

namespace {

// The flat index into x of the first maximum of output (n, c, oh, ow)'s window.
std::size_t argmax_window(const Conv2dDims& d, const auto* x, int n, int c, int oh, int ow) {
  std::size_t best = 0;
  bool found = false;
  for (int kh = 0; kh < d.kernel; ++kh)
    for (int kw = 0; kw < d.kernel; ++kw) {
      const int ih = oh * d.stride - d.padding + kh;
      const int iw = ow * d.stride - d.padding + kw;
      if (ih < 0 || ih >= d.height || iw < 0 || iw >= d.width) continue;
      const std::size_t i = at(n, c, ih, iw, d.in_channels, d.height, d.width);
      if (!found || x[i] > x[best]) best = i, found = true;
    }
  return best;
}

}  // namespace

template <typename T>
void maxpool2d_forward(const Conv2dDims& d, const T* x, T* y) {
  const int C = d.in_channels, OH = d.out_height(), OW = d.out_width();
  for (int n = 0; n < d.batch; ++n)
    for (int c = 0; c < C; ++c)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow)
          y[at(n, c, oh, ow, C, OH, OW)] = x[argmax_window(d, x, n, c, oh, ow)];
}

template <typename T>
void maxpool2d_backward(const Conv2dDims& d, const T* x, const T* dy, T* dx) {
  const int C = d.in_channels, OH = d.out_height(), OW = d.out_width();
  for (std::size_t k = 0; k < static_cast<std::size_t>(d.batch) * C * d.height * d.width; ++k)
    dx[k] = T(0);
  for (int n = 0; n < d.batch; ++n)
    for (int c = 0; c < C; ++c)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow)
          dx[argmax_window(d, x, n, c, oh, ow)] += dy[at(n, c, oh, ow, C, OH, OW)];
}

template void conv2d_forward<float>(const Conv2dDims&, const float*, const float*, const float*,
                                    float*);
template void conv2d_forward<double>(const Conv2dDims&, const double*, const double*, const double*,
                                     double*);
template void conv2d_backward<float>(const Conv2dDims&, const float*, const float*, const float*,
                                     float*, float*, float*);
template void conv2d_backward<double>(const Conv2dDims&, const double*, const double*,
                                      const double*, double*, double*, double*);
template void maxpool2d_forward<float>(const Conv2dDims&, const float*, float*);
template void maxpool2d_forward<double>(const Conv2dDims&, const double*, double*);
template void maxpool2d_backward<float>(const Conv2dDims&, const float*, const float*, float*);
template void maxpool2d_backward<double>(const Conv2dDims&, const double*, const double*, double*);

}  // namespace recur::kernels::reference
