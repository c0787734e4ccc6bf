// The request parser of `recur serve` (src/serve/protocol.hpp), apart from HTTP: what it accepts
// for each model kind, and the field and reason of each refusal.
#include <gtest/gtest.h>

#include <bit>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// Every body is read by the fast path (when it takes it) exactly as the general parser reads it,
// and the fast path takes nothing the general parser refuses.
void expect_fast_path_agrees(const std::string& body, const ModelShape& m, bool taken) {
  const std::optional<InferRequest> fast = recur::serve::parse_infer_request_fast(body, m);
  EXPECT_EQ(fast.has_value(), taken) << body;
  if (!fast) return;
  try {
    EXPECT_TRUE(
        recur::serve::same_request(*fast, recur::serve::parse_infer_request_general(body, m)))
        << body;
  } catch (const BadRequest& e) {
    ADD_FAILURE() << "the fast path took a body the parser refuses (" << e.what() << "): " << body;
  }
}

TEST(ServeProtocol, TheFastPathTakesPlainRequestsAsTheParserReadsThem) {
  const ModelShape rows = rows_model(), text = text_model(true), arrays = array_model();
  const std::string img = R"("datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,255])";
  // Plain requests, keys in any order, with ids, outputs and sequence parameters.
  expect_fast_path_agrees(R"({"inputs":[{"name":"x",)" + img + "}]}", rows, true);
  expect_fast_path_agrees(
      R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[ 10 ,99,100, 199,200,254 ]}]})",
      rows, true);
  // Separators as JSON writers put them (", ", newlines, tabs), also next to the closing "]".
  for (const std::string data : {"[0, 1, 2, 3, 4, 255]", "[0,1,2,3,4,255 ]", "[ 7,8,9,10,11,12]",
                                 "[\n0,\n1,\t2,3 ,4,\r\n255\n]"})
    expect_fast_path_agrees(
        R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":)" + data + "}]}", rows, true);
  expect_fast_path_agrees(R"( { "id" : "r1" , "outputs":[{"name":"labels"},{"name":"logits"}],)"
                          R"( "inputs" : [ { )" +
                              img + R"(, "name" : "in" } ] } )",
                          rows, true);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"FP32","shape":[2,2,3],)"
                          R"("data":[0,1.5,-2,1e-3,-0,0.1,3E2,-7.25e-1,1,2,3,4]}]})",
                          rows, true);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[9,8,7]}],)"
                          R"("parameters":{"sequence_id":42,"sequence_start":true}})",
                          rows, true);
  expect_fast_path_agrees(R"({"parameters":{"sequence_end":false,"sequence_id":"s-1"},)"
                          R"("inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[1,2,3,4,5,6]}]})",
                          rows, true);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"INT32","shape":[1,3],"data":[0,9,4]}],)"
                          R"("parameters":{"sequence_id":7}})",
                          text, true);
  expect_fast_path_agrees(
      R"({"inputs":[{"datatype":"FP32","shape":[1,3,2],"data":[1,2,3,4,5,6.5]}]})", arrays, true);
  // Numbers at the edges of what the general parser reads the same way.
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"FP32","shape":[1,1,3],)"
                          R"("data":[18446744073709551616,-9223372036854775809,3.4028234e38]}],)"
                          R"("parameters":{"sequence_id":1}})",
                          rows, true);
  // Left to the general parser: refusals, nested or BYTES data, escapes, unknown or repeated keys,
  // a second input, data before its shape, sequence 0, and numbers the parser words itself.
  for (const std::string& body : std::vector<std::string>{
           R"({"inputs":[{)" + img + R"(}],"extra":1})",
           R"({"inputs":[{"name":"x\u0041",)" + img + "}]}",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[[0,1,2],[3,4,5]]}]})",
           R"({"inputs":[{"data":[0,1,2,3,4,5],"datatype":"UINT8","shape":[1,2,3]}]})",
           R"({"inputs":[{)" + img + "},{" + img + "}]}",
           R"({"inputs":[{)" + img + R"(}],"inputs":[{)" + img + "}]}",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,256]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,5.0]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,05]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,1000]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,-1]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,2e1]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,00]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,5,6]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,5,]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4 5]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,2,3,4,5)",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,2,3],"data":[0,1,,2,3,4,5]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[0,2,3],"data":[]}]})",
           R"({"inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[1,2,3,4,5,1e39]}]})",
           R"({"inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[1,2,3,4,5,.5]}]})",
           R"({"inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[1,2,3,4,5,1.]}]})",
           R"({"inputs":[{"datatype":"FP32","shape":[1,2,3],"data":[1,2,3,4,5,NaN]}]})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[1,2,3]}],)"
           R"("parameters":{"sequence_id":0}})",
           R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[1,2,3]}],)"
           R"("parameters":{"sequence_start":true}})",
           R"({"inputs":[{)" + img + R"(}],"outputs":[{"name":"nope"}]})",
           R"({"inputs":[{)" + img + "}]} x",
           R"({"inputs":[{)" + img + "}]",
       })
    expect_fast_path_agrees(body, rows, false);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"INT32","shape":[1,3],"data":[0,10,4]}],)"
                          R"("parameters":{"sequence_id":7}})",
                          text, false);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"BYTES","shape":[1],"data":["ok"]}]})", text,
                          false);
  expect_fast_path_agrees(R"({"inputs":[{"datatype":"UINT8","shape":[1,1,3],"data":[1,2,3]}],)"
                          R"("parameters":{"sequence_id":42}})",
                          text_model(false), false);
}

// The models of the fuzz harness (tests/fuzz/fuzz_infer_request.cpp), picked by a seed's byte 0.
ModelShape fuzz_model(int which) {
  ModelShape m;
  m.classes = 10;
  m.streamable = which != 1 && which != 4;
  m.not_streamable = "does not stream";
  switch (which) {
    case 0:
      m.kind = InputKind::image_sequence;
      m.rows = m.cols = m.steps = m.features = 28;
      break;
    case 1:
      m.kind = InputKind::whole_image;
      m.rows = m.cols = 8;
      break;
    case 2:
    case 4:
      m.kind = InputKind::text;
      m.vocab = 50;
      break;
    default:
      m.kind = InputKind::sequence;
      m.features = 3;
      break;
  }
  return m;
}

// The fuzz harness's seed bodies, and every truncation of them, for every kind of model.
TEST(ServeProtocol, TheFastPathAgreesWithTheParserOnTheFuzzSeeds) {
  const std::filesystem::path seeds =
      std::filesystem::path(RECUR_TEST_DIR) / "fuzz" / "corpus" / "infer_request";
  int taken = 0;
  for (const auto& entry : std::filesystem::directory_iterator(seeds)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (seed.empty()) continue;
    const std::string body = seed.substr(1);  // byte 0 picks the fuzz harness's model
    for (int which = 0; which < 5; ++which)
      for (std::size_t cut = body.size() + 1; cut-- > 0;) {
        const ModelShape m = fuzz_model(which);
        const std::string part = body.substr(0, cut);
        const std::optional<InferRequest> fast = recur::serve::parse_infer_request_fast(part, m);
        if (!fast) continue;
        ++taken;
        try {
          EXPECT_TRUE(
              recur::serve::same_request(*fast, recur::serve::parse_infer_request_general(part, m)))
              << part;
        } catch (const BadRequest& e) {
          ADD_FAILURE() << "the fast path took a body the parser refuses (" << e.what()
                        << "): " << part;
        }
      }
  }
  EXPECT_GT(taken, 0);
}

TEST(ServeProtocol, TheWrittenAnswerIsTheJsonDocument) {
  InferRequest r;
  r.id = "q\"\\\n\x01é";
  r.count = 2;
  r.sequence.present = true;
  r.sequence.id = "s\"1";
  r.sequence.end = true;
  recur::Predictions p;
  p.count = 2;
  p.classes = 3;
  p.labels = {2, 0};
  p.probabilities = {0.1f, 0.2f, 0.7f, 1.f, 0.f, 1e-30f};
  p.logits = {1, -2.5f, 3.4028235e38f, -0.f, 123456789.f, 1e-7f};
  const auto same = [&] {
    const std::string text = recur::serve::infer_response_text("m", r, p, 5);
    const nlohmann::json doc = recur::serve::infer_response("m", r, p, 5);
    EXPECT_EQ(nlohmann::json::parse(text), doc) << text;
    // Floats read back bit for bit, and whole numbers stay floats.
    const nlohmann::json back = nlohmann::json::parse(text);
    for (const auto& o : back["outputs"])
      if (o["datatype"] == "FP32")
        for (std::size_t i = 0; i < o["data"].size(); ++i) {
          EXPECT_TRUE(o["data"][i].is_number_float()) << text;
          const float want = o["name"] == "logits" ? p.logits[i] : p.probabilities[i];
          EXPECT_EQ(std::bit_cast<std::uint32_t>(o["data"][i].get<float>()),
                    std::bit_cast<std::uint32_t>(want));
        }
  };
  same();
  r.outputs = {"labels"};
  r.sequence = {};
  r.id.clear();
  same();
}

}  // namespace
