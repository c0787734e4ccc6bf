// Run-time choice of the instruction set the float kernels run with.
//
// Each dispatched kernel is compiled three times (AVX-512, AVX2, and the portable baseline every
// x86-64 has) from one always-inline body, and picks its copy by isa() at each call. isa() is
// what the CPU (and the OS's saved register state) supports, unless the environment variable
// RECUR_ISA names a lower level: `RECUR_ISA=portable` runs every float kernel (and the int8
// kernels) on the baseline copies, which is how the test suite runs the portable path on a CPU
// that would never pick it (scripts/test.sh). Naming a level the CPU lacks, or an unknown one, is
// an Error naming RECUR_ISA.
#pragma once

#include <string>

namespace recur::kernels {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };

std::string to_string(Isa isa);
// The best level this CPU supports.
Isa best_isa();
// The level `requested` (RECUR_ISA's text; empty: none) asks for on a CPU whose best is `best`.
// Throws Error naming RECUR_ISA for an unknown name or a level above `best`.
Isa choose_isa(const std::string& requested, Isa best);
// The level of this process: choose_isa(RECUR_ISA, best_isa()), read once.
Isa isa();

}  // namespace recur::kernels

#define RECUR_TARGET_AVX512 __attribute__((target("avx512f")))
#define RECUR_TARGET_AVX2 __attribute__((target("avx2")))

// Defines `QUAL RET NAME PARAMS` to call `IMPL ARGS` (an always-inline body) compiled for each
// level, through three copies named ID_avx512, ID_avx2 and ID_portable. Use at namespace scope.
#define RECUR_DISPATCHED(QUAL, RET, NAME, ID, IMPL, PARAMS, ARGS) \
  RECUR_TARGET_AVX512 static RET ID##_avx512 PARAMS {             \
    return IMPL ARGS;                                             \
  }                                                               \
  RECUR_TARGET_AVX2 static RET ID##_avx2 PARAMS {                 \
    return IMPL ARGS;                                             \
  }                                                               \
  static RET ID##_portable PARAMS {                               \
    return IMPL ARGS;                                             \
  }                                                               \
  QUAL RET NAME PARAMS {                                          \
    switch (::recur::kernels::isa()) {                            \
      case ::recur::kernels::Isa::avx512:                         \
        return ID##_avx512 ARGS;                                  \
      case ::recur::kernels::Isa::avx2:                           \
        return ID##_avx2 ARGS;                                    \
      default:                                                    \
        return ID##_portable ARGS;                                \
    }                                                             \
  }
