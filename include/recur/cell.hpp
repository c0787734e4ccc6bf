// The recurrent cells recur knows, in PyTorch's formulation and gate order.
#pragma once

#include <string>

namespace recur {

enum class CellKind { rnn_tanh, rnn_relu, lstm, gru };

// Gate blocks stacked in the weight matrices, in PyTorch's order.
namespace lstm_gate {
inline constexpr int kInput = 0, kForget = 1, kCell = 2, kOutput = 3, kCount = 4;
}
namespace gru_gate {
inline constexpr int kReset = 0, kUpdate = 1, kNew = 2, kCount = 3;
}

inline int gate_count(CellKind c) {
  switch (c) {
    case CellKind::lstm:
      return lstm_gate::kCount;
    case CellKind::gru:
      return gru_gate::kCount;
    default:
      return 1;
  }
}

// "rnn" (tanh), "rnn_tanh", "rnn_relu", "lstm", "gru". Throws recur::Error("--cell", ...).
CellKind parse_cell(const std::string& name);
std::string to_string(CellKind c);

}  // namespace recur
