// Scalar activations shared by the fused cell kernels and the reference kernels.
#pragma once

#include <cmath>

namespace recur::kernels {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T tanh_act(T x) {
  return std::tanh(x);
}

}  // namespace recur::kernels
