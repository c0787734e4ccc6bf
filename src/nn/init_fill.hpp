// Seeded fills shared by every layer's initialisation (see InitKind in recur/model.hpp): one
// random stream per tensor, keyed by its name, so a tensor gets the same numbers whatever else
// the model holds.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/model.hpp"
#include "recur/rng.hpp"

namespace recur::nn {

// A per-tensor stream: the same tensor gets the same numbers whatever else the model holds.
inline Rng tensor_rng(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  std::uint64_t s = seed ^ h;
  return Rng(splitmix64(s));
}

inline double truncated_normal(Rng& rng, double sigma) {
  for (;;) {
    const double v = rng.normal();
    if (std::fabs(v) <= 2.0) return v * sigma;
  }
}

// Rows of an n x n matrix made orthonormal by modified Gram-Schmidt on Gaussian rows.
inline std::vector<double> orthogonal(Rng& rng, int n) {
  std::vector<double> m(static_cast<std::size_t>(n) * n);
  for (auto& v : m) v = rng.normal();
  for (int i = 0; i < n; ++i) {
    double* ri = m.data() + static_cast<std::size_t>(i) * n;
    for (int k = 0; k < i; ++k) {
      const double* rk = m.data() + static_cast<std::size_t>(k) * n;
      double dot = 0;
      for (int j = 0; j < n; ++j) dot += ri[j] * rk[j];
      for (int j = 0; j < n; ++j) ri[j] -= dot * rk[j];
    }
    double norm = 0;
    for (int j = 0; j < n; ++j) norm += ri[j] * ri[j];
    norm = std::sqrt(norm);
    RECUR_ASSERT(norm > 1e-12);
    for (int j = 0; j < n; ++j) ri[j] /= norm;
  }
  return m;
}

// Fills a [rows, cols] block. `pytorch_bound` is what PyTorch's default would use.
template <typename T>
void fill_matrix(T* w, int rows, int cols, const WeightInit& spec, double pytorch_bound, Rng& rng) {
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  switch (spec.kind) {
    case InitKind::pytorch:
      for (std::size_t k = 0; k < n; ++k)
        w[k] = static_cast<T>(rng.uniform(-pytorch_bound, pytorch_bound));
      break;
    case InitKind::glorot: {
      const double a = std::sqrt(6.0 / (rows + cols));
      for (std::size_t k = 0; k < n; ++k) w[k] = static_cast<T>(rng.uniform(-a, a));
      break;
    }
    case InitKind::orthogonal: {
      RECUR_CHECK(rows == cols, "--init-recurrent", "orthogonal needs square blocks");
      const auto q = orthogonal(rng, rows);
      for (std::size_t k = 0; k < n; ++k) w[k] = static_cast<T>(q[k]);
      break;
    }
    case InitKind::normal:
      for (std::size_t k = 0; k < n; ++k) w[k] = static_cast<T>(rng.normal() * spec.sigma);
      break;
    case InitKind::truncated_normal:
      for (std::size_t k = 0; k < n; ++k) w[k] = static_cast<T>(truncated_normal(rng, spec.sigma));
      break;
  }
}

template <typename T>
void fill_bias(T* b, std::size_t n, const WeightInit& spec, double pytorch_bound, Rng& rng) {
  for (std::size_t k = 0; k < n; ++k) {
    switch (spec.bias) {
      case BiasKind::pytorch:
        b[k] = static_cast<T>(rng.uniform(-pytorch_bound, pytorch_bound));
        break;
      case BiasKind::constant:
        b[k] = static_cast<T>(spec.bias_value);
        break;
      case BiasKind::normal:
        b[k] = static_cast<T>(rng.normal() * spec.sigma);
        break;
    }
  }
}

}  // namespace recur::nn
