// Seeded initialisation of every tensor of a Network (see InitKind in recur/model.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "nn/init_fill.hpp"
#include "recur/error.hpp"
#include "recur/model.hpp"

namespace recur {

namespace {

using nn::fill_bias;
using nn::fill_matrix;
using nn::tensor_rng;

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
