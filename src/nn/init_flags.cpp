// recur train's initialisation flags on a layer list, and the automatic recurrent init.
#include "recur/layers.hpp"

namespace recur {

InitKind auto_recurrent_init(CellKind cell) {
  const bool plain = cell == CellKind::rnn_tanh || cell == CellKind::rnn_relu;
  return plain ? InitKind::pytorch : InitKind::orthogonal;
}

void apply_init_flags(const InitFlags& flags, std::vector<LayerSpec>& layers) {
  const InitConfig& in = flags.init;
  for (LayerSpec& l : layers) {
    if (l.type != "recurrent") continue;
    l.init = in.input;
    l.init_recurrent = in.recurrent;
    if (flags.recurrent_auto) l.init_recurrent.kind = auto_recurrent_init(l.cell);
    l.forget_bias = in.forget_bias;
    if (flags.no_bias) l.bias = false;
  }
  if (!layers.empty() && layers.back().type == "linear") layers.back().init = in.head;
}

}  // namespace recur
