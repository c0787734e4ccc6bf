// The model config as stored in checkpoints: JSON round trip, and the values a file or a flag
// can carry that must be refused (fuzzing findings F1-F3 in docs/FUZZING.md).
#include <gtest/gtest.h>

#include <cmath>

#include "recur/error.hpp"
#include "recur/model.hpp"

namespace recur {
namespace {

std::string with(const std::string& key, const std::string& value) {
  std::string j = to_json(ModelConfig{});
  const std::string needle = "\"" + key + "\":";
  const size_t at = j.find(needle) + needle.size();
  const size_t end = j.find_first_of(",}", at);
  return j.replace(at, end - at, value);
}

void expect_refused(const std::string& json, const std::string& part) {
  try {
    model_config_from_json(json, "m.safetensors");
    FAIL() << "accepted " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ModelConfigJson, RoundTrip) {
  ModelConfig c;
  c.cell = CellKind::gru;
  c.bidirectional = true;
  c.layers = 3;
  c.init.forget_bias = 1.5;
  EXPECT_EQ(to_json(model_config_from_json(to_json(c), "x")), to_json(c));
}

TEST(ModelConfigJson, IntegersMustBeIntegersInRange) {
  expect_refused(with("hidden", "1e10"), "'hidden' must be an integer");
  expect_refused(with("hidden", "12.5"), "'hidden' must be an integer");
  expect_refused(with("hidden", "4294967424"), "'hidden' is out of range");
  expect_refused(with("layers", "-9223372036854775808"), "'layers' is out of range");
  expect_refused(with("dropout", "\"x\""), "'dropout' must be a number");
}

TEST(ModelConfigValidate, NonFiniteAndHugeModelsRefused) {
  ModelConfig c;
  c.init.forget_bias = INFINITY;
  EXPECT_THROW(c.validate(), Error);
  c = ModelConfig{};
  c.init.head.sigma = NAN;
  EXPECT_THROW(c.validate(), Error);
  c = ModelConfig{};
  c.hidden = 65536;
  c.layers = 64;
  try {
    c.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parameters, more than"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ModelConfig{}.parameter_count(), 82186u);  // LSTM-128 on 28 inputs, 10 classes
}

}  // namespace
}  // namespace recur
