// Small helpers `eval` and `predict` share: the likeliest classes of a row, flag checks, folders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/data.hpp"
#include "recur/predictor.hpp"

namespace recur::cli {

// The k largest probabilities of one row, best first (ties: lower class first).
struct ClassProbability {
  int label = 0;
  float probability = 0;
};
std::vector<ClassProbability> top_k(const float* probs, int num_classes, int k);

// Throws Error(flag, "must be a positive integer, got N") unless value >= 1.
void require_positive(const std::string& flag, long long value);

// The Predictor's options for --precision (Error naming it for a bad value); says on stderr when
// int8 runs the portable kernel because the CPU has no VNNI.
PredictorOptions predictor_options(const std::string& precision);
// A path's folder, "." for a bare file name.
std::string parent_folder(const std::string& path);

}  // namespace recur::cli
