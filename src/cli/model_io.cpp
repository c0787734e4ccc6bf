#include "cli/model_io.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <numeric>

#include "recur/error.hpp"
#include "recur/image.hpp"

namespace recur::cli {

std::vector<ClassProbability> top_k(const float* probs, int num_classes, int k) {
  std::vector<int> order(static_cast<std::size_t>(num_classes));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  order.resize(static_cast<std::size_t>(std::clamp(k, 0, num_classes)));
  std::vector<ClassProbability> out;
  for (int c : order) out.push_back({c, probs[c]});
  return out;
}

void require_positive(const std::string& flag, long long value) {
  if (value < 1) throw Error(flag, "must be a positive integer, got " + std::to_string(value));
}

PredictorOptions predictor_options(const std::string& precision) {
  PredictorOptions options;
  options.precision = parse_infer_precision(precision);
  if (options.precision == InferPrecision::int8 && int8_kernel_name() == "portable")
    fmt::print(stderr,
               "notice: this CPU has neither AVX-512 VNNI nor AVX-VNNI; --precision int8 runs "
               "recur's portable int8 kernel (the same results, slower than fp32)\n");
  return options;
}

std::string parent_folder(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace recur::cli
