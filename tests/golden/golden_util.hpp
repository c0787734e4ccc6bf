// Helpers of the golden tests: read a fixture's tensors, compare a result with PyTorch's, and
// list the fixture files of a folder (each suite names its fixtures and checks the folder holds
// exactly those, so that a fixture cannot vanish, or be added untested, with the suite green).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "recur/safetensors.hpp"

namespace recur::golden {

inline std::vector<double> as_f64(const StoredTensor& t) {
  EXPECT_EQ(t.dtype, DType::F64);
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), t.bytes.data(), v.size() * sizeof(double));
  return v;
}

inline std::vector<std::int32_t> as_i32(const StoredTensor& t) {
  EXPECT_EQ(t.dtype, DType::I32);
  std::vector<std::int32_t> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), t.bytes.data(), v.size() * sizeof(std::int32_t));
  return v;
}

// max|a - ref| / max|ref|; a result of another size than the reference fails the test (and
// compares only the common part).
template <typename T>
double rel_error(std::span<const T> a, const std::vector<double>& ref) {
  EXPECT_EQ(a.size(), ref.size()) << "result and reference differ in size";
  double diff = 0, scale = 0;
  for (std::size_t k = 0; k < ref.size() && k < a.size(); ++k) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[k]) - ref[k]));
    scale = std::max(scale, std::fabs(ref[k]));
  }
  return diff / std::max(scale, 1e-30);
}

template <typename T>
double rel_error(const std::vector<T>& a, const std::vector<double>& ref) {
  return rel_error(std::span<const T>(a), ref);
}

// The names (without .safetensors) of the fixture files in `dir`, sorted.
inline std::vector<std::string> fixture_files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace recur::golden
