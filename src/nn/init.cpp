// Seeded initialisation of every tensor of a Network (see InitKind in recur/model.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/model.hpp"

namespace recur {

namespace {

// A per-tensor stream: the same tensor gets the same numbers whatever else the model holds.
Rng tensor_rng(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  std::uint64_t s = seed ^ h;
  return Rng(splitmix64(s));
}

double truncated_normal(Rng& rng, double sigma) {
  for (;;) {
    const double v = rng.normal();
    if (std::fabs(v) <= 2.0) return v * sigma;
  }
}

// Rows of an n x n matrix made orthonormal by modified Gram-Schmidt on Gaussian rows.
std::vector<double> orthogonal(Rng& rng, int n) {
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

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

template <typename T>
void Network<T>::init(std::uint64_t seed) {
  const ModelConfig& c = config_;
  const double rnn_bound = 1.0 / std::sqrt(static_cast<double>(c.hidden));
  const int H = c.hidden;
  for (const ParamInfo& info : layout_.entries()) {
    Rng rng = tensor_rng(seed, info.name);
    T* w = params_.data() + info.offset;
    const std::string& name = info.name;
    if (starts_with(name, "proj.") || starts_with(name, "head.")) {
      const WeightInit& spec = starts_with(name, "proj.") ? c.init.projection : c.init.head;
      const ParamInfo* weight = layout_.find(name.substr(0, 5) + "weight");
      const int out = static_cast<int>(weight->shape[0]), in = static_cast<int>(weight->shape[1]);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      RECUR_CHECK(spec.kind != InitKind::orthogonal,
                  starts_with(name, "proj.") ? "--projection-init" : "--head-init",
                  "orthogonal applies to recurrent matrices only (--init-recurrent)");
      if (name.ends_with(".weight"))
        fill_matrix(w, out, in, spec, bound, rng);
      else
        fill_bias(w, info.size, spec, bound, rng);
    } else if (starts_with(name, "rnn.weight_")) {
      const bool input_side = starts_with(name, "rnn.weight_ih");
      const WeightInit& spec = input_side ? c.init.input : c.init.recurrent;
      const int cols = static_cast<int>(info.shape.back());
      // One block per gate (and per timestep in the untied variant).
      const std::size_t blocks = info.size / (static_cast<std::size_t>(H) * cols);
      for (std::size_t k = 0; k < blocks; ++k)
        fill_matrix(w + k * H * cols, H, cols, spec, rnn_bound, rng);
    } else if (starts_with(name, "rnn.bias_")) {
      const bool input_side = starts_with(name, "rnn.bias_ih");
      fill_bias(w, info.size, input_side ? c.init.input : c.init.recurrent, rnn_bound, rng);
      if (input_side && c.cell == CellKind::lstm)
        for (int j = 0; j < H; ++j)
          w[lstm_gate::kForget * H + j] += static_cast<T>(c.init.forget_bias);
    } else {
      RECUR_ASSERT(false);
    }
  }
}

template void Network<float>::init(std::uint64_t);
template void Network<double>::init(std::uint64_t);

}  // namespace recur
