// recur train --precision: the names and the check that this CPU can train in bf16.
#include "kernels/bf16_gemm.hpp"
#include "recur/error.hpp"
#include "recur/train.hpp"

namespace recur {

std::string to_string(TrainPrecision precision) {
  return precision == TrainPrecision::bf16 ? "bf16" : "fp32";
}

TrainPrecision parse_train_precision(const std::string& name, const std::string& where) {
  if (name == "fp32") return TrainPrecision::fp32;
  if (name == "bf16") return TrainPrecision::bf16;
  throw Error(where, "must be fp32 or bf16, got '" + name + "'");
}

void check_train_precision(TrainPrecision precision) {
  if (precision != TrainPrecision::bf16) return;
  if (kernels::bf16_kernel() != kernels::Bf16Kernel::none) return;
  throw Error("--precision",
              kernels::cpu_has_avx512_bf16()
                  ? "bf16 training is switched off here (RECUR_BF16_KERNEL=none); use "
                    "--precision fp32"
                  : "bf16 training needs a CPU with AVX512_BF16 and this one lacks it; use "
                    "--precision fp32");
}

}  // namespace recur
