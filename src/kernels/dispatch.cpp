#include "kernels/dispatch.hpp"

#include <cstdlib>

#include "kernels/activations.hpp"
#include "recur/error.hpp"

namespace recur::kernels {

const float kExpClamp[2] = {-87.0f, 88.0f};

std::string to_string(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::portable:
      break;
  }
  return "portable";
}

Isa best_isa() {
  // libgcc's cpuid reading also checks (xgetbv) that the OS saves the vector registers.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2")) return Isa::avx2;
  return Isa::portable;
}

Isa choose_isa(const std::string& requested, Isa best) {
  if (requested.empty()) return best;
  for (Isa level : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (requested != to_string(level)) continue;
    RECUR_CHECK(static_cast<int>(level) <= static_cast<int>(best), "RECUR_ISA",
                "this CPU lacks " + requested + " (it has up to " + to_string(best) + ")");
    return level;
  }
  throw Error("RECUR_ISA", "unknown instruction set '" + requested + "' (portable, avx2, avx512)");
}

Isa isa() {
  static const Isa chosen = [] {
    const char* env = std::getenv("RECUR_ISA");
    return choose_isa(env ? env : "", best_isa());
  }();
  return chosen;
}

}  // namespace recur::kernels
