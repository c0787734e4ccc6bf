#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/json_util.hpp"
#include "nn/config_json.hpp"
#include "recur/error.hpp"
#include "recur/model.hpp"

namespace recur {

namespace {

template <typename E, std::size_t N>
E parse_enum(const std::string& name, const std::string& flag,
             const std::pair<const char*, E> (&table)[N]) {
  std::string choices;
  for (const auto& [text, value] : table) {
    if (name == text) return value;
    choices += (choices.empty() ? "" : ", ") + std::string(text);
  }
  throw Error(flag, "unknown value '" + name + "' (choose from " + choices + ")");
}

template <typename E, std::size_t N>
std::string enum_name(E v, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [text, value] : table)
    if (value == v) return text;
  return "?";
}

const std::pair<const char*, CellKind> kCells[] = {{"lstm", CellKind::lstm},
                                                   {"gru", CellKind::gru},
                                                   {"rnn", CellKind::rnn_tanh},
                                                   {"rnn_tanh", CellKind::rnn_tanh},
                                                   {"rnn_relu", CellKind::rnn_relu}};
const std::pair<const char*, Pooling> kPoolings[] = {{"last", Pooling::last},
                                                     {"mean", Pooling::mean},
                                                     {"max", Pooling::max},
                                                     {"maxmean", Pooling::maxmean}};
const std::pair<const char*, InitKind> kInits[] = {
    {"pytorch", InitKind::pytorch},
    {"glorot", InitKind::glorot},
    {"orthogonal", InitKind::orthogonal},
    {"normal", InitKind::normal},
    {"truncated_normal", InitKind::truncated_normal}};
const std::pair<const char*, BiasKind> kBiases[] = {
    {"pytorch", BiasKind::pytorch}, {"constant", BiasKind::constant}, {"normal", BiasKind::normal}};

}  // namespace

nlohmann::json init_json(const WeightInit& w) {
  return {{"kind", to_string(w.kind)},
          {"sigma", w.sigma},
          {"bias", to_string(w.bias)},
          {"bias_value", w.bias_value}};
}

WeightInit init_from(const nlohmann::json& j, const std::string& source) {
  WeightInit w;
  w.kind = parse_init(j.at("kind").get<std::string>());
  w.sigma = json_number(j, "sigma", source);
  w.bias = parse_bias_init(j.at("bias").get<std::string>());
  w.bias_value = json_number(j, "bias_value", source);
  return w;
}

CellKind parse_cell(const std::string& name) {
  return parse_enum(name, "--cell", kCells);
}
std::string to_string(CellKind c) {
  return c == CellKind::rnn_tanh ? "rnn_tanh" : enum_name(c, kCells);
}
Pooling parse_pooling(const std::string& name) {
  return parse_enum(name, "--pooling", kPoolings);
}
std::string to_string(Pooling p) {
  return enum_name(p, kPoolings);
}
InitKind parse_init(const std::string& name, const std::string& flag) {
  return parse_enum(name, flag, kInits);
}
std::string to_string(InitKind k) {
  return enum_name(k, kInits);
}
BiasKind parse_bias_init(const std::string& name, const std::string& flag) {
  return parse_enum(name, flag, kBiases);
}
std::string to_string(BiasKind k) {
  return enum_name(k, kBiases);
}

void ModelConfig::validate() const {
  // Each check names the flag that sets the value. input_size, steps and num_classes come from
  // the data set and its view, so those name --view and --data.
  auto in_range = [](long long v, long long lo, long long hi, const char* flag) {
    RECUR_CHECK(v >= lo && v <= hi, flag,
                "must be " +
                    (lo == 0 ? std::string("0 (none) or more") : "at least " + std::to_string(lo)) +
                    " and at most " + std::to_string(hi) + ", got " + std::to_string(v));
  };
  in_range(input_size, 1, 1 << 24, "--view");
  in_range(steps, 1, 1 << 20, "--view");
  RECUR_CHECK(num_classes >= 2 && num_classes <= (1 << 20), "--data",
              "needs between 2 and 1048576 classes, got " + std::to_string(num_classes));
  in_range(hidden, 1, 65536, "--hidden");
  in_range(layers, 1, 64, "--layers");
  in_range(projection, 0, 65536, "--projection");
  RECUR_CHECK(dropout >= 0.0 && dropout < 1.0, "--dropout", "must be in [0, 1)");
  RECUR_CHECK(recurrent_dropout >= 0.0 && recurrent_dropout < 1.0, "--recurrent-dropout",
              "must be in [0, 1)");
  RECUR_CHECK(recurrent_dropout == 0.0 || !untied, "--recurrent-dropout",
              "needs tied weights (one recurrent weight matrix for every step), not --untied");
  struct Named {
    const WeightInit& w;
    const char *kind, *sigma, *bias_value;
    bool recurrent_matrix;
  };
  const Named inits[] = {
      {init.input, "--init", "--init-sigma", "--bias-value", false},
      {init.recurrent, "--init-recurrent", "--init-sigma", "--bias-value", true},
      {init.projection, "--projection-init", "--init-sigma", "--projection-bias-value", false},
      {init.head, "--head-init", "--head-sigma", "--head-bias-value", false}};
  for (const Named& n : inits) {
    RECUR_CHECK(n.recurrent_matrix || n.w.kind != InitKind::orthogonal, n.kind,
                "orthogonal applies to recurrent matrices only (--init-recurrent)");
    RECUR_CHECK(std::isfinite(n.w.sigma) && n.w.sigma > 0, n.sigma, "must be a positive number");
    RECUR_CHECK(std::isfinite(n.w.bias_value), n.bias_value, "must be a finite number");
  }
  RECUR_CHECK(std::isfinite(init.forget_bias), "--forget-bias", "must be a finite number");
  RECUR_CHECK(parameter_count() <= kMaxParameters, "--hidden",
              "the model (--hidden, --layers, --projection) would have " +
                  std::to_string(parameter_count()) + " parameters, more than " +
                  std::to_string(kMaxParameters));
}

std::uint64_t ModelConfig::parameter_count() const {
  // In double: with every size at its bound the product overflows 64 bits.
  const double G = gate_count(cell), H = hidden, D = directions(), T = untied ? steps : 1;
  double n = 0, in = input_size;
  if (projection > 0) {
    n += static_cast<double>(projection) * (in + 1);
    in = projection;
  }
  for (int l = 0; l < layers; ++l)
    n += D * (T * G * H * ((l == 0 ? in : H * D) + H) + (bias ? 2 * G * H : 0));
  n += static_cast<double>(num_classes) * (H * D + 1);
  return n >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max() : static_cast<std::uint64_t>(n);
}

std::string to_json(const ModelConfig& c) {
  nlohmann::json j = {{"cell", to_string(c.cell)},
                      {"input_size", c.input_size},
                      {"steps", c.steps},
                      {"hidden", c.hidden},
                      {"layers", c.layers},
                      {"bidirectional", c.bidirectional},
                      {"projection", c.projection},
                      {"pooling", to_string(c.pooling)},
                      {"num_classes", c.num_classes},
                      {"dropout", c.dropout},
                      {"untied", c.untied},
                      {"bias", c.bias},
                      {"init",
                       {{"input", init_json(c.init.input)},
                        {"recurrent", init_json(c.init.recurrent)},
                        {"projection", init_json(c.init.projection)},
                        {"head", init_json(c.init.head)},
                        {"forget_bias", c.init.forget_bias}}}};
  if (c.recurrent_dropout > 0) j["recurrent_dropout"] = c.recurrent_dropout;
  return j.dump();
}

ModelConfig model_config_from_json(const std::string& text, const std::string& source) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    ModelConfig c;
    c.cell = parse_cell(j.at("cell").get<std::string>());
    c.input_size = json_integer<int>(j, "input_size", source);
    c.steps = json_integer<int>(j, "steps", source);
    c.hidden = json_integer<int>(j, "hidden", source);
    c.layers = json_integer<int>(j, "layers", source);
    c.bidirectional = j.at("bidirectional").get<bool>();
    c.projection = json_integer<int>(j, "projection", source);
    c.pooling = parse_pooling(j.at("pooling").get<std::string>());
    c.num_classes = json_integer<int>(j, "num_classes", source);
    c.dropout = json_number(j, "dropout", source);
    if (j.contains("recurrent_dropout"))
      c.recurrent_dropout = json_number(j, "recurrent_dropout", source);
    c.untied = j.at("untied").get<bool>();
    c.bias = j.at("bias").get<bool>();
    const auto& in = j.at("init");
    c.init.input = init_from(in.at("input"), source);
    c.init.recurrent = init_from(in.at("recurrent"), source);
    c.init.projection = init_from(in.at("projection"), source);
    c.init.head = init_from(in.at("head"), source);
    c.init.forget_bias = json_number(in, "forget_bias", source);
    c.validate();  // an Error naming a flag, rewritten below to name the file
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw Error(source, std::string("model config in the metadata is invalid: ") + e.what());
  } catch (const Error& e) {
    throw Error(source, "model config in the metadata is invalid: " + std::string(e.what()));
  }
}

}  // namespace recur
