// JSON forms shared by the model descriptions (ModelConfig, ModelSpec).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "recur/model.hpp"

namespace recur {

nlohmann::json init_json(const WeightInit& w);
// Throws nlohmann::json exceptions or recur::Error(source, ...) for bad values.
WeightInit init_from(const nlohmann::json& j, const std::string& source);

}  // namespace recur
