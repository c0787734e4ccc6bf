// The KServe v2 request and answer bodies (protocol.hpp).
#include "serve/protocol.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "recur/error.hpp"
#include "recur/text.hpp"

namespace recur::serve {

namespace {

using nlohmann::json;

// Nested data deeper than a tensor's rank is refused before it is walked.
constexpr int kMaxRank = 4;
// No tensor holds more elements than this (64 Mi): a shape cannot ask for more memory than a
// body of the default size limit could fill.
constexpr std::int64_t kMaxElements = std::int64_t{1} << 26;

[[noreturn]] void refuse(const std::string& field, const std::string& reason) {
  throw BadRequest(400, field, reason);
}

std::string kind_phrase(const ModelShape& s) {
  switch (s.kind) {
    case InputKind::image_sequence:
      return fmt::format("images {}x{} read as {} steps of {}", s.rows, s.cols, s.steps,
                         s.features);
    case InputKind::whole_image:
      return fmt::format("whole images {}x{}", s.rows, s.cols);
    case InputKind::text:
      return "texts";
    case InputKind::sequence:
      return fmt::format("sequences of {} features per step", s.features);
  }
  return "?";
}

std::vector<std::int64_t> read_shape(const json& input, const std::string& field) {
  const auto it = input.find("shape");
  if (it == input.end() || !it->is_array()) refuse(field + ".shape", "is required: an array");
  if (it->empty() || it->size() > kMaxRank)
    refuse(field + ".shape",
           fmt::format("has {} dimensions; 1 to {} expected", it->size(), kMaxRank));
  std::vector<std::int64_t> shape;
  std::int64_t total = 1;
  for (const json& d : *it) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0)
      refuse(field + ".shape", "holds " + d.dump() + "; dimensions are integers >= 0");
    const std::int64_t v = d.get<std::int64_t>();
    if (v > kMaxElements || (v > 0 && total > kMaxElements / v))
      refuse(field + ".shape", fmt::format("asks for more than {} elements", kMaxElements));
    total *= v;
    shape.push_back(v);
  }
  return shape;
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Calls take(element, flat index) for every leaf of `data` (flat or nested up to kMaxRank).
template <typename Take>
void walk(const json& data, int depth, std::int64_t& index, std::int64_t limit,
          const std::string& field, Take&& take) {
  if (!data.is_array()) {
    if (index >= limit)
      refuse(field, fmt::format("holds more than the shape's {} elements", limit));
    take(data, index++);
    return;
  }
  if (depth >= kMaxRank) refuse(field, fmt::format("is nested deeper than {} levels", kMaxRank));
  for (const json& e : data) walk(e, depth + 1, index, limit, field, take);
}

template <typename Take>
void read_data(const json& input, const std::string& field, std::int64_t count, Take&& take) {
  const auto it = input.find("data");
  if (it == input.end()) refuse(field + ".data", "is required");
  std::int64_t index = 0;
  walk(*it, 0, index, count, field + ".data", take);
  if (index != count)
    refuse(field + ".data", fmt::format("holds {} elements but the shape says {}", index, count));
}

std::vector<std::uint8_t> read_u8(const json& input, const std::string& field, std::int64_t n) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n));
  read_data(input, field, n, [&](const json& v, std::int64_t i) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 255)
      refuse(field + ".data",
             fmt::format("element {} is {}; UINT8 holds integers 0..255", i, v.dump()));
    out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v.get<std::int64_t>());
  });
  return out;
}

std::vector<float> read_f32(const json& input, const std::string& field, std::int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n));
  read_data(input, field, n, [&](const json& v, std::int64_t i) {
    if (!v.is_number())
      refuse(field + ".data", fmt::format("element {} is {}; FP32 holds numbers", i, v.dump()));
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
      refuse(field + ".data",
             fmt::format("element {} is {}; inputs must be finite floats", i, v.dump()));
    out[static_cast<std::size_t>(i)] = static_cast<float>(d);
  });
  return out;
}

std::vector<std::int32_t> read_i32(const json& input, const std::string& field, std::int64_t n,
                                   std::int64_t below) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  read_data(input, field, n, [&](const json& v, std::int64_t i) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= below)
      refuse(field + ".data",
             fmt::format("element {} is {}; integers in [0, {}) expected", i, v.dump(), below));
    out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(v.get<std::int64_t>());
  });
  return out;
}

std::vector<std::string> read_texts(const json& input, const std::string& field, std::int64_t n) {
  std::vector<std::string> out(static_cast<std::size_t>(n));
  read_data(input, field, n, [&](const json& v, std::int64_t i) {
    if (!v.is_string())
      refuse(field + ".data",
             fmt::format("element {} is {}; BYTES holds strings", i, v.type_name()));
    out[static_cast<std::size_t>(i)] = v.get<std::string>();
    std::size_t bad = 0;
    if (!valid_utf8(out[static_cast<std::size_t>(i)], &bad))
      refuse(field + ".data", fmt::format("text {} has invalid UTF-8 at byte {}", i, bad));
  });
  return out;
}

SequenceParams read_sequence(const json& body) {
  SequenceParams s;
  const auto params = body.find("parameters");
  if (params == body.end() || params->is_null()) return s;
  if (!params->is_object()) refuse("parameters", "must be an object");
  const auto id = params->find("sequence_id");
  const auto flag = [&](const char* name) {
    const auto it = params->find(name);
    if (it == params->end()) return false;
    if (!it->is_boolean()) refuse(std::string("parameters.") + name, "must be true or false");
    return it->get<bool>();
  };
  s.start = flag("sequence_start");
  s.end = flag("sequence_end");
  if (id == params->end()) {
    if (s.start || s.end)
      refuse("parameters.sequence_id", "is required with sequence_start or sequence_end");
    return s;
  }
  if (id->is_number_unsigned()) {
    s.id = std::to_string(id->get<std::uint64_t>());
  } else if (id->is_string() && !id->get<std::string>().empty() &&
             id->get<std::string>().size() <= 128 && valid_utf8(id->get<std::string>())) {
    s.id = id->get<std::string>();
  } else {
    refuse("parameters.sequence_id", "must be an integer >= 0 or a string of 1 to 128 bytes");
  }
  // Triton: sequence_id 0 means "no sequence".
  s.present = s.id != "0";
  if (!s.present && (s.start || s.end))
    refuse("parameters.sequence_id", "0 means no sequence; give a sequence id other than 0");
  return s;
}

std::vector<std::string> read_outputs(const json& body) {
  std::vector<std::string> names;
  const auto it = body.find("outputs");
  if (it == body.end() || it->is_null()) return names;
  if (!it->is_array()) refuse("outputs", "must be an array of {\"name\": ...}");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& o = (*it)[i];
    const std::string field = fmt::format("outputs[{}].name", i);
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
      refuse(field, "is required: a string");
    const std::string name = o["name"].get<std::string>();
    if (name != kLogits && name != kProbabilities && name != kLabels)
      refuse(field, "'" + name + "' is not an output; choose from logits, probabilities, labels");
    names.push_back(name);
  }
  return names;
}

std::string datatype_of(const json& input, const std::string& field) {
  const auto it = input.find("datatype");
  if (it == input.end() || !it->is_string()) refuse(field + ".datatype", "is required: a string");
  return it->get<std::string>();
}

void expect_dims(const std::vector<std::int64_t>& shape, std::size_t rank, const std::string& field,
                 const std::string& what) {
  if (shape.size() != rank) refuse(field + ".shape", shape_text(shape) + " is not " + what);
}

// A batch request's one input (or the first of an array model's two).
void read_batch_input(const json& input, const std::string& field, const ModelShape& m,
                      InferRequest& r) {
  const std::string type = datatype_of(input, field);
  const std::vector<std::int64_t> shape = read_shape(input, field);
  const std::int64_t n = element_count(shape);
  const bool image = m.kind == InputKind::image_sequence || m.kind == InputKind::whole_image;
  if (m.kind == InputKind::text) {
    if (type != "BYTES")
      refuse(field + ".datatype", "'" + type + "' is not what a text model reads: BYTES texts");
    expect_dims(shape, 1, field, "[N]: one text per element");
    r.payload = Payload::texts;
    r.count = shape[0];
    r.texts = read_texts(input, field, n);
    return;
  }
  if (image && type == "UINT8") {
    if (shape.size() != 3 || shape[1] != m.rows || shape[2] != m.cols)
      refuse(field + ".shape", fmt::format("{} is not [N, {}, {}]: the model reads {}",
                                           shape_text(shape), m.rows, m.cols, kind_phrase(m)));
    r.payload = Payload::images;
    r.count = shape[0];
    r.u8 = read_u8(input, field, n);
    return;
  }
  if (type != "FP32")
    refuse(
        field + ".datatype",
        "'" + type + "' is not what the model reads: " +
            (image ? (m.kind == InputKind::image_sequence ? "UINT8 or FP32" : "UINT8") : "FP32") +
            " (" + kind_phrase(m) + ")");
  if (m.kind == InputKind::whole_image)
    refuse(field + ".datatype", "'FP32' is not what a whole-image model reads: UINT8 images");
  const bool fixed = m.kind == InputKind::image_sequence;
  if (shape.size() != 3 || shape[2] != m.features || (fixed && shape[1] != m.steps) || shape[1] < 1)
    refuse(field + ".shape",
           fmt::format("{} is not [N, {}, {}]: the model reads {}", shape_text(shape),
                       fixed ? std::to_string(m.steps) : std::string("T >= 1"), m.features,
                       kind_phrase(m)));
  r.payload = Payload::steps_f32;
  r.count = shape[0];
  r.steps = static_cast<int>(shape[1]);
  r.f32 = read_f32(input, field, n);
}

void read_lengths(const json& input, const std::string& field, InferRequest& r) {
  if (datatype_of(input, field) != "INT32") refuse(field + ".datatype", "lengths are INT32");
  const std::vector<std::int64_t> shape = read_shape(input, field);
  if (shape.size() != 1 || shape[0] != r.count)
    refuse(field + ".shape",
           fmt::format("{} is not [{}]: one length per sequence", shape_text(shape), r.count));
  const std::vector<std::int32_t> v = read_i32(input, field, r.count, std::int64_t{r.steps} + 1);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] < 1) refuse(field + ".data", fmt::format("element {} is 0; lengths are >= 1", i));
  r.lengths.assign(v.begin(), v.end());
}

// A streaming request's input: the next k steps of one sequence.
void read_stream_input(const json& input, const std::string& field, const ModelShape& m,
                       InferRequest& r) {
  if (!m.streamable) throw BadRequest(400, "parameters.sequence_id", m.not_streamable);
  const std::string type = datatype_of(input, field);
  const std::vector<std::int64_t> shape = read_shape(input, field);
  const std::int64_t n = element_count(shape);
  r.count = 1;
  if (m.kind == InputKind::text) {
    if (type == "BYTES") {
      if (shape != std::vector<std::int64_t>{1})
        refuse(field + ".shape", shape_text(shape) + " is not [1]: one piece of text per request");
      r.payload = Payload::texts;
      r.texts = read_texts(input, field, 1);
      return;
    }
    if (type != "INT32")
      refuse(field + ".datatype", "'" + type + "' is not BYTES (text) or INT32 (token ids)");
    if (shape.size() != 2 || shape[0] != 1 || shape[1] < 1)
      refuse(field + ".shape", shape_text(shape) + " is not [1, k] token ids, k >= 1");
    r.payload = Payload::tokens;
    r.steps = static_cast<int>(shape[1]);
    r.ids = read_i32(input, field, n, m.vocab);
    return;
  }
  if (shape.size() != 3 || shape[0] != 1 || shape[1] < 1 || shape[2] != m.features)
    refuse(field + ".shape",
           fmt::format("{} is not [1, k, {}]: the next k >= 1 steps of one sequence ({})",
                       shape_text(shape), m.features, kind_phrase(m)));
  r.steps = static_cast<int>(shape[1]);
  if (type == "UINT8" && m.kind == InputKind::image_sequence) {
    r.payload = Payload::steps_u8;
    r.u8 = read_u8(input, field, n);
  } else if (type == "FP32") {
    r.payload = Payload::steps_f32;
    r.f32 = read_f32(input, field, n);
  } else {
    refuse(field + ".datatype",
           "'" + type + "' is not what the model reads: " +
               (m.kind == InputKind::image_sequence ? "UINT8 or FP32" : "FP32"));
  }
}

}  // namespace

ModelShape shape_of(const Predictor& p) {
  ModelShape s;
  s.kind = p.input_kind();
  s.rows = p.image_rows();
  s.cols = p.image_cols();
  s.steps = s.kind == InputKind::image_sequence ? p.steps() : 0;
  s.features = s.kind == InputKind::text ? 0 : p.features();
  s.classes = p.num_classes();
  if (s.kind == InputKind::text) {
    s.vocab = p.text().vocab.size();
    s.class_names = p.text().class_names;
  }
  s.streamable = p.streamable();
  if (!s.streamable) {
    try {
      p.check_streamable();
    } catch (const Error& e) {
      s.not_streamable = e.reason();
    }
    if (s.not_streamable.empty()) s.not_streamable = "the model cannot be read step by step";
  }
  return s;
}

InferRequest parse_infer_request(std::string_view body, const ModelShape& m) {
  if (std::optional<InferRequest> fast = parse_infer_request_fast(body, m)) return *std::move(fast);
  return parse_infer_request_general(body, m);
}

bool same_request(const InferRequest& a, const InferRequest& b) {
  const auto& x = a.sequence;
  const auto& y = b.sequence;
  return a.id == b.id && a.payload == b.payload && a.count == b.count && a.steps == b.steps &&
         a.u8 == b.u8 && a.f32.size() == b.f32.size() &&
         (a.f32.empty() ||
          std::memcmp(a.f32.data(), b.f32.data(), a.f32.size() * sizeof(float)) == 0) &&
         a.texts == b.texts && a.ids == b.ids && a.lengths == b.lengths && x.present == y.present &&
         x.id == y.id && x.start == y.start && x.end == y.end && a.outputs == b.outputs;
}

InferRequest parse_infer_request_general(std::string_view body, const ModelShape& m) {
  // JSON is UTF-8: say where it is not (a text in Latin-1, a binary upload sent as JSON).
  if (std::size_t bad = 0; !valid_utf8(body, &bad))
    refuse("body",
           fmt::format("has invalid UTF-8 at byte {}: JSON and its texts must be UTF-8", bad));
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) refuse("body", "is not valid JSON");
  if (!j.is_object()) refuse("body", "must be a JSON object");
  InferRequest r;
  if (const auto id = j.find("id"); id != j.end()) {
    if (!id->is_string()) refuse("id", "must be a string");
    r.id = id->get<std::string>();
  }
  r.sequence = read_sequence(j);
  r.outputs = read_outputs(j);
  const auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array() || inputs->empty())
    refuse("inputs", "is required: an array of one input tensor");
  for (std::size_t i = 0; i < inputs->size(); ++i)
    if (!(*inputs)[i].is_object()) refuse(fmt::format("inputs[{}]", i), "must be an object");
  const std::size_t allowed = m.kind == InputKind::sequence && !r.sequence.present ? 2 : 1;
  if (inputs->size() > allowed)
    refuse("inputs", fmt::format("holds {} tensors; the model takes {}", inputs->size(),
                                 allowed == 2 ? "one (and an optional INT32 \"lengths\")" : "one"));
  // With two inputs, the one named "lengths" holds the lengths.
  std::size_t main = 0;
  if (inputs->size() == 2 && (*inputs)[0].value("name", "") == "lengths") main = 1;
  const std::string field = fmt::format("inputs[{}]", main);
  if (r.sequence.present)
    read_stream_input((*inputs)[main], field, m, r);
  else
    read_batch_input((*inputs)[main], field, m, r);
  if (inputs->size() == 2) {
    const std::size_t other = 1 - main;
    if ((*inputs)[other].value("name", "") != "lengths")
      refuse(fmt::format("inputs[{}].name", other), "the second input must be named \"lengths\"");
    read_lengths((*inputs)[other], fmt::format("inputs[{}]", other), r);
  }
  if (!r.sequence.present && r.count < 1) refuse(field + ".shape", "holds no sample (N is 0)");
  return r;
}

nlohmann::json infer_response(const std::string& model_name, const InferRequest& request,
                              const Predictions& p, std::int64_t stream_steps) {
  const auto wanted = [&](const char* name) {
    if (request.outputs.empty()) return true;
    for (const std::string& o : request.outputs)
      if (o == name) return true;
    return false;
  };
  json outputs = json::array();
  const std::vector<std::int64_t> matrix = {p.count, p.classes};
  if (wanted(kLogits))
    outputs.push_back(
        {{"name", kLogits}, {"datatype", "FP32"}, {"shape", matrix}, {"data", p.logits}});
  if (wanted(kProbabilities))
    outputs.push_back({{"name", kProbabilities},
                       {"datatype", "FP32"},
                       {"shape", matrix},
                       {"data", p.probabilities}});
  if (wanted(kLabels))
    outputs.push_back({{"name", kLabels},
                       {"datatype", "INT32"},
                       {"shape", std::vector<std::int64_t>{p.count}},
                       {"data", p.labels}});
  json answer = {{"model_name", model_name}, {"model_version", "1"}, {"outputs", outputs}};
  if (!request.id.empty()) answer["id"] = request.id;
  if (request.sequence.present) {
    json params = {{"sequence_id", request.sequence.id}, {"sequence_steps", stream_steps}};
    if (request.sequence.end) params["sequence_end"] = true;
    answer["parameters"] = params;
  }
  return answer;
}

namespace {

void put_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
}

template <typename T>
void put_integer(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// A float as the JSON document writes it: the shortest text that reads back to the same double
// (the float widened), with ".0" on whole numbers; null for what JSON cannot hold.
void put_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(v));
  out.append(buf, r.ptr);
  if (std::find_if(buf, r.ptr, [](char c) { return c == '.' || c == 'e'; }) == r.ptr) out += ".0";
}

void put_output(std::string& out, const char* name, const char* datatype,
                const std::vector<std::int64_t>& shape, bool floats, const float* f,
                const std::int32_t* i, std::size_t n) {
  if (out.back() != '[') out += ',';
  out += "{\"name\":\"";
  out += name;
  out += "\",\"datatype\":\"";
  out += datatype;
  out += "\",\"shape\":[";
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d) out += ',';
    put_integer(out, shape[d]);
  }
  out += "],\"data\":[";
  for (std::size_t k = 0; k < n; ++k) {
    if (k) out += ',';
    if (floats)
      put_float(out, f[k]);
    else
      put_integer(out, i[k]);
  }
  out += "]}";
}

}  // namespace

std::string infer_response_text(const std::string& model_name, const InferRequest& request,
                                const Predictions& p, std::int64_t stream_steps) {
  const auto wanted = [&](const char* name) {
    if (request.outputs.empty()) return true;
    for (const std::string& o : request.outputs)
      if (o == name) return true;
    return false;
  };
  std::string out;
  out.reserve(256 + static_cast<std::size_t>(p.count) * (p.classes * 48 + 8));
  out += "{\"model_name\":";
  put_string(out, model_name);
  out += ",\"model_version\":\"1\"";
  if (!request.id.empty()) {
    out += ",\"id\":";
    put_string(out, request.id);
  }
  out += ",\"outputs\":[";
  const std::vector<std::int64_t> matrix = {p.count, p.classes};
  if (wanted(kLogits))
    put_output(out, kLogits, "FP32", matrix, true, p.logits.data(), nullptr, p.logits.size());
  if (wanted(kProbabilities))
    put_output(out, kProbabilities, "FP32", matrix, true, p.probabilities.data(), nullptr,
               p.probabilities.size());
  if (wanted(kLabels))
    put_output(out, kLabels, "INT32", {p.count}, false, nullptr, p.labels.data(), p.labels.size());
  out += ']';
  if (request.sequence.present) {
    out += ",\"parameters\":{\"sequence_id\":";
    put_string(out, request.sequence.id);
    out += ",\"sequence_steps\":";
    put_integer(out, stream_steps);
    if (request.sequence.end) out += ",\"sequence_end\":true";
    out += '}';
  }
  out += '}';
  return out;
}

nlohmann::json model_metadata(const std::string& name, const ModelShape& m,
                              const std::string& view) {
  json inputs = json::array();
  switch (m.kind) {
    case InputKind::image_sequence:
      inputs.push_back({{"name", "input"}, {"datatype", "UINT8"}, {"shape", {-1, m.rows, m.cols}}});
      inputs.push_back(
          {{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, m.steps, m.features}}});
      break;
    case InputKind::whole_image:
      inputs.push_back({{"name", "input"}, {"datatype", "UINT8"}, {"shape", {-1, m.rows, m.cols}}});
      break;
    case InputKind::text:
      inputs.push_back({{"name", "input"}, {"datatype", "BYTES"}, {"shape", {-1}}});
      break;
    case InputKind::sequence:
      inputs.push_back({{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, -1, m.features}}});
      inputs.push_back({{"name", "lengths"}, {"datatype", "INT32"}, {"shape", {-1}}});
      break;
  }
  json outputs =
      json::array({{{"name", kLogits}, {"datatype", "FP32"}, {"shape", {-1, m.classes}}},
                   {{"name", kProbabilities}, {"datatype", "FP32"}, {"shape", {-1, m.classes}}},
                   {{"name", kLabels}, {"datatype", "INT32"}, {"shape", {-1}}}});
  json params = {{"kind", to_string(m.kind)}, {"classes", m.classes}, {"streamable", m.streamable}};
  if (!view.empty()) params["view"] = view;
  if (!m.class_names.empty()) params["class_names"] = m.class_names;
  if (m.kind == InputKind::image_sequence)
    params["stream_step"] = {{"datatype", "UINT8 or FP32"}, {"shape", {1, -1, m.features}}};
  if (!m.streamable) params["not_streamable"] = m.not_streamable;
  return {{"name", name},     {"versions", {"1"}},  {"platform", "recur"},
          {"inputs", inputs}, {"outputs", outputs}, {"parameters", params}};
}

nlohmann::json error_body(const std::string& field, const std::string& reason) {
  return {{"error", field.empty() ? reason : field + ": " + reason},
          {"field", field},
          {"reason", reason}};
}

}  // namespace recur::serve
