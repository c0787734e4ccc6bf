// Reading numbers out of JSON that came from a file: integers must be JSON integers within the
// target's range (nlohmann's get<int>() converts 1e10 or 12.5 without a word), floats finite.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "recur/error.hpp"

namespace recur {

template <typename Int>
Int json_integer(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number_integer())
    throw Error(source, std::string("'") + key + "' must be an integer, got " + v.dump());
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<Int>::max()))
      throw Error(source, std::string("'") + key + "' is out of range: " + v.dump());
    return static_cast<Int>(u);
  }
  const auto s = v.get<std::int64_t>();
  if (s < static_cast<std::int64_t>(std::numeric_limits<Int>::min()) ||
      s > static_cast<std::int64_t>(std::numeric_limits<Int>::max()))
    throw Error(source, std::string("'") + key + "' is out of range: " + v.dump());
  return static_cast<Int>(s);
}

inline double json_number(const nlohmann::json& j, const char* key, const std::string& source) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number())
    throw Error(source, std::string("'") + key + "' must be a number, got " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw Error(source, std::string("'") + key + "' must be finite");
  return d;
}

}  // namespace recur
