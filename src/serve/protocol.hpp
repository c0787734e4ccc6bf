// The KServe v2 / Triton REST inference protocol as recur speaks it, apart from any HTTP code:
// what a model looks like to a client (its metadata), how an infer request's JSON body becomes
// the tensors a Predictor reads, and how predictions become the answer's JSON. The HTTP layer
// (server.cpp) and the fuzz harness (tests/fuzz/fuzz_infer_request.cpp) both drive this file.
//
// A request ({"id", "inputs": [{"name", "shape", "datatype", "data"}], "parameters",
// "outputs"}) carries one input tensor, by model kind:
//   image models         UINT8 [N, rows, cols] images, or FP32 [N, steps, features] scaled to
//                        [0, 1] as the view reads them (image-sequence models only)
//   text models          BYTES [N] texts (UTF-8), or INT32 [1, k] token ids (streaming only)
//   array models         FP32 [N, T, F] sequences, with an optional INT32 [N] input "lengths"
// and in a streaming request (parameters sequence_id / sequence_start / sequence_end) the next
// k timesteps of one sequence: [1, k, features] (UINT8 or FP32), BYTES [1] or INT32 [1, k].
// `data` may be flat or nested as the shape; its element count must equal the shape's.
//
// Every refusal is a BadRequest naming the field ("inputs[0].shape", "parameters.sequence_id")
// and the reason; nothing a client sends reaches the model unchecked.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "recur/predictor.hpp"

namespace recur::serve {

// A refused request: the HTTP status (400, 404, 409, 413, 429...), the field and the reason.
class BadRequest : public std::runtime_error {
 public:
  BadRequest(int status, std::string field, std::string reason)
      : std::runtime_error(field.empty() ? reason : field + ": " + reason),
        status_(status),
        field_(std::move(field)),
        reason_(std::move(reason)) {}
  int status() const { return status_; }
  const std::string& field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  int status_;
  std::string field_;
  std::string reason_;
};

// What the protocol needs to know of a model: taken from its Predictor once.
struct ModelShape {
  InputKind kind = InputKind::sequence;
  int rows = 0, cols = 0;  // image models
  int steps = 0;           // image-sequence models: the view's steps; else 0 (any length)
  int features = 0;        // per step (image-sequence and array models)
  int classes = 0;
  std::int64_t vocab = 0;                // text models: ids are in [0, vocab)
  std::vector<std::string> class_names;  // text models, when training named them
  bool streamable = false;
  std::string not_streamable;  // why, when not
};
ModelShape shape_of(const Predictor& predictor);

// The Triton sequence parameters of a request.
struct SequenceParams {
  bool present = false;  // sequence_id given: a streaming request
  std::string id;        // as text (a number or a string in the request)
  bool start = false, end = false;
};

enum class Payload {
  images,     // u8 [count, rows, cols]
  steps_f32,  // f32 [count, steps, features] (+ lengths for array models)
  steps_u8,   // u8 [1, steps, features] (streaming image rows)
  texts,      // texts [count]
  tokens,     // ids [steps] (streaming text)
};

struct InferRequest {
  std::string id;
  Payload payload = Payload::images;
  std::int64_t count = 0;  // samples (1 in a streaming request)
  int steps = 0;           // steps per sample (steps_f32, steps_u8, tokens)
  std::vector<std::uint8_t> u8;
  std::vector<float> f32;
  std::vector<std::string> texts;
  std::vector<std::int32_t> ids;
  std::vector<int> lengths;  // array models, when given
  SequenceParams sequence;
  std::vector<std::string> outputs;  // names asked for; empty: all three
};

// Parses and checks an infer request's body for a model of `shape`. Throws BadRequest.
// A plain, valid request takes the fast path; anything else the general parser.
InferRequest parse_infer_request(std::string_view body, const ModelShape& shape);
// The fast path alone (fast_request.cpp): a request with one input tensor whose `data` is a
// flat array of numbers, strings without escapes and no keys the protocol does not define,
// read in one pass straight into its buffers (no JSON document). nullopt for anything else and
// for every request the general parser would refuse: it accepts only what the general parser
// accepts, with the same result (the fuzz harness holds the two to that).
std::optional<InferRequest> parse_infer_request_fast(std::string_view body,
                                                     const ModelShape& shape);
// The general parser alone (a JSON document; words every refusal).
InferRequest parse_infer_request_general(std::string_view body, const ModelShape& shape);
// Two parsed requests hold the same fields, floats compared bit for bit.
bool same_request(const InferRequest& a, const InferRequest& b);

// The names of the three outputs every model answers.
inline constexpr const char* kLogits = "logits";
inline constexpr const char* kProbabilities = "probabilities";
inline constexpr const char* kLabels = "labels";

// The answer to an infer request: the outputs asked for, the request's id, and for a stream
// its sequence id and the steps read so far.
nlohmann::json infer_response(const std::string& model_name, const InferRequest& request,
                              const Predictions& predictions, std::int64_t stream_steps = -1);

// The same answer written straight to text (no JSON document): what the server sends. Floats
// in the shortest form that reads back to the same number.
std::string infer_response_text(const std::string& model_name, const InferRequest& request,
                                const Predictions& predictions, std::int64_t stream_steps = -1);

// GET /v2/models/NAME: name, platform, inputs and outputs with their datatypes and shapes (-1
// for any size), and what the model reads ("recur" parameters: kind, view, streamable).
nlohmann::json model_metadata(const std::string& name, const ModelShape& shape,
                              const std::string& view);

// {"error": "FIELD: REASON", "field": ..., "reason": ...}
nlohmann::json error_body(const std::string& field, const std::string& reason);

}  // namespace recur::serve
