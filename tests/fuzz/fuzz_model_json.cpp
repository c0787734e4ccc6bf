// The model config reader (recur::model_config_from_json): the "recur.model" metadata entry of
// every checkpoint, read before any tensor. A config it accepts must be valid and must survive
// to_json then model_config_from_json unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_guard.hpp"
#include "recur/model.hpp"

namespace {

const std::string kSource = "fuzz.safetensors";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  recur::ModelConfig config;
  const bool parsed = recur::fuzz::returns_or_throws_error(
      {kSource}, [&] { config = recur::model_config_from_json(text, kSource); });
  if (!parsed) return 0;
  recur::fuzz::must_return([&] { config.validate(); });
  const std::string json = recur::to_json(config);
  recur::ModelConfig again;
  recur::fuzz::must_return([&] { again = recur::model_config_from_json(json, "round trip"); });
  recur::fuzz::check(recur::to_json(again) == json, "to_json then from_json keeps the config");
  return 0;
}
