// The request parser of `recur serve` (src/serve/protocol.hpp), apart from HTTP: what it accepts
// for each model kind, and the field and reason of each refusal.
#include <gtest/gtest.h>

#include <string>

#include "serve/protocol.hpp"

namespace {

using recur::InputKind;
using recur::serve::BadRequest;
using recur::serve::InferRequest;
using recur::serve::ModelShape;
using recur::serve::parse_infer_request;
using recur::serve::Payload;

ModelShape rows_model() {
  ModelShape m;
  m.kind = InputKind::image_sequence;
  m.rows = 2;
  m.cols = 3;
  m.steps = 2;
  m.features = 3;
  m.classes = 4;
  m.streamable = true;
  return m;
}

ModelShape text_model(bool streams) {
  ModelShape m;
  m.kind = InputKind::text;
  m.vocab = 10;
  m.classes = 2;
  m.streamable = streams;
  m.not_streamable = "has a bidirectional layer";
  return m;
}

ModelShape array_model() {
  ModelShape m;
  m.kind = InputKind::sequence;
  m.features = 2;
  m.classes = 3;
  m.streamable = true;
  return m;
}

// The BadRequest parse_infer_request throws for `body`, or a failure.
BadRequest refusal(const std::string& body, const ModelShape& m) {
  try {
    parse_infer_request(body, m);
  } catch (const BadRequest& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return BadRequest(0, "", "");
}

TEST(ServeProtocol, ImagesFlatOrNestedGiveTheSamePixels) {
  const InferRequest flat = parse_infer_request(
      R"({"inputs":[{"name":"x","datatype":"UINT8","shape":[1,2,3],"data":[1,2,3,4,5,255]}]})",
      rows_model());
  const InferRequest nested =
      parse_infer_request(R"({"id":"a","inputs":[{"name":"x","datatype":"UINT8","shape":[1,2,3],)"
                          R"("data":[[[1,2,3],[4,5,255]]]}],"outputs":[{"name":"labels"}]})",
                          rows_model());
  EXPECT_EQ(flat.payload, Payload::images);
  EXPECT_EQ(flat.count, 1);
  EXPECT_EQ(flat.u8, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 255}));
  EXPECT_EQ(nested.u8, flat.u8);
  EXPECT_EQ(nested.id, "a");
  EXPECT_EQ(nested.outputs, std::vector<std::string>{"labels"});
}

TEST(ServeProtocol, RefusalsNameTheFieldAndTheReason) {
  const ModelShape m = rows_model();
  struct Case {
    std::string body, field, reason;
  };
  const Case cases[] = {
      {"{", "body", "not valid JSON"},
      {"[1]", "body", "JSON object"},
      {"{\"inputs\":[{\"data\":\"\xff\"}]}", "body", "invalid UTF-8 at byte 20"},
      {R"({"inputs":[]})", "inputs", "required"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,2,4],"data":[]}]})", "inputs[0].shape",
       "[N, 2, 3]"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[1,2,3]}]})", "inputs[0].data",
       "holds 3 elements but the shape says 6"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[1,2,3,4,5,256]}]})",
       "inputs[0].data", "element 5 is 256"},
      {R"({"inputs":[{"datatype":"INT64","shape":[1,2,3],"data":[1,2,3,4,5,6]}]})",
       "inputs[0].datatype", "UINT8 or FP32"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[0,2,3],"data":[]}]})", "inputs[0].shape",
       "no sample"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[4294967296,4294967296,3],"data":[]}]})",
       "inputs[0].shape", "more than"},
      {R"({"inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[[[[[1]]]]]}]})", "inputs[0].data",
       "nested deeper"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[1,2,3,4,5,6]}],)"
       R"("outputs":[{"name":"scores"}]})",
       "outputs[0].name", "'scores' is not an output"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[1,2,3]}],)"
       R"("parameters":{"sequence_start":true}})",
       "parameters.sequence_id", "required"},
      {R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[1,2,3]}],)"
       R"("parameters":{"sequence_id":-4}})",
       "parameters.sequence_id", "integer >= 0"},
  };
  for (const Case& c : cases) {
    const BadRequest e = refusal(c.body, m);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.field(), c.field) << c.body;
    EXPECT_NE(e.reason().find(c.reason), std::string::npos) << c.body << " -> " << e.reason();
  }
}

TEST(ServeProtocol, StreamingTakesTheNextStepsOfOneSequence) {
  const InferRequest r = parse_infer_request(
      R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[7,8,9]}],)"
      R"("parameters":{"sequence_id":12,"sequence_start":true,"sequence_end":false}})",
      rows_model());
  EXPECT_TRUE(r.sequence.present);
  EXPECT_EQ(r.sequence.id, "12");
  EXPECT_TRUE(r.sequence.start);
  EXPECT_FALSE(r.sequence.end);
  EXPECT_EQ(r.payload, Payload::steps_u8);
  EXPECT_EQ(r.steps, 1);
  const InferRequest tokens =
      parse_infer_request(R"({"inputs":[{"datatype":"INT32","shape":[1,2],"data":[3,9]}],)"
                          R"("parameters":{"sequence_id":"s1"}})",
                          text_model(true));
  EXPECT_EQ(tokens.payload, Payload::tokens);
  EXPECT_EQ(tokens.ids, (std::vector<std::int32_t>{3, 9}));
  const BadRequest out_of_vocab = refusal(
      R"({"inputs":[{"datatype":"INT32","shape":[1,1],"data":[10]}],"parameters":{"sequence_id":1}})",
      text_model(true));
  EXPECT_EQ(out_of_vocab.field(), "inputs[0].data");
  const BadRequest bidirectional = refusal(
      R"({"inputs":[{"datatype":"BYTES","shape":[1],"data":["good"]}],"parameters":{"sequence_id":1}})",
      text_model(false));
  EXPECT_EQ(bidirectional.field(), "parameters.sequence_id");
  EXPECT_EQ(bidirectional.reason(), "has a bidirectional layer");
  // sequence_id 0 is Triton's "no sequence": a plain batch request.
  EXPECT_FALSE(parse_infer_request(R"({"inputs":[{"datatype":"BYTES","shape":[1],"data":["ok"]}],)"
                                   R"("parameters":{"sequence_id":0}})",
                                   text_model(false))
                   .sequence.present);
}

TEST(ServeProtocol, ArrayModelsTakeSequencesWithLengths) {
  const InferRequest r = parse_infer_request(
      R"({"inputs":[{"name":"lengths","datatype":"INT32","shape":[2],"data":[3,1]},)"
      R"({"name":"x","datatype":"FP32","shape":[2,3,2],"data":[0,1,2,3,4,5,6,7,8,9,10,11.5]}]})",
      array_model());
  EXPECT_EQ(r.payload, Payload::steps_f32);
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(r.lengths, (std::vector<int>{3, 1}));
  EXPECT_EQ(r.f32.back(), 11.5f);
  const BadRequest long_length =
      refusal(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,2],"data":[0,1,2,3,4,5]},)"
              R"({"name":"lengths","datatype":"INT32","shape":[1],"data":[4]}]})",
              array_model());
  EXPECT_EQ(long_length.field(), "inputs[1].data");
  const BadRequest texts_as_bytes =
      refusal(R"({"inputs":[{"datatype":"BYTES","shape":[1],"data":["a"]}]})", array_model());
  EXPECT_EQ(texts_as_bytes.field(), "inputs[0].datatype");
}

TEST(ServeProtocol, TextsMustBeStringsOfValidUtf8) {
  const InferRequest r = parse_infer_request(
      R"({"inputs":[{"datatype":"BYTES","shape":[2],"data":["caf\u00e9","ok"]}]})",
      text_model(false));
  EXPECT_EQ(r.texts, (std::vector<std::string>{"caf\xc3\xa9", "ok"}));
  EXPECT_EQ(
      refusal(R"({"inputs":[{"datatype":"BYTES","shape":[1],"data":[5]}]})", text_model(false))
          .field(),
      "inputs[0].data");
}

TEST(ServeProtocol, TheAnswerHoldsTheOutputsAskedFor) {
  InferRequest r = parse_infer_request(
      R"({"id":"q","inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[1,2,3,4,5,6]}],)"
      R"("outputs":[{"name":"probabilities"},{"name":"labels"}]})",
      rows_model());
  recur::Predictions p;
  p.count = 1;
  p.classes = 4;
  p.labels = {2};
  p.probabilities = {0.1f, 0.2f, 0.6f, 0.1f};
  p.logits = {1, 2, 3, 1};
  const nlohmann::json a = recur::serve::infer_response("m", r, p);
  EXPECT_EQ(a["id"], "q");
  ASSERT_EQ(a["outputs"].size(), 2u);
  EXPECT_EQ(a["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(a["outputs"][0]["shape"], nlohmann::json::array({1, 4}));
  // Floats read back bit for bit.
  EXPECT_EQ(nlohmann::json::parse(a.dump())["outputs"][0]["data"][1].get<float>(), 0.2f);
  EXPECT_EQ(a["outputs"][1]["data"], nlohmann::json::array({2}));
  EXPECT_FALSE(a.contains("parameters"));
}

}  // namespace
