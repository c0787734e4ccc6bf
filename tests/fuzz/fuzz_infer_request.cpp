// The request parser of `recur serve` (src/serve/protocol.hpp): parse_infer_request on the body
// of POST /v2/models/NAME/infer, for every kind of model the server holds.
//
// Input: byte 0 picks the model (mod 5): 0 = image rows (28x28, 28 steps of 28, streams),
// 1 = whole images (8x8), 2 = text (vocabulary 50, streams), 3 = arrays (3 features, streams),
// 4 = a bidirectional text model (does not stream); the rest is the body.
//
// Checked beyond "no crash": the parser returns or throws BadRequest with a 4xx status and a
// field, and nothing else; an accepted request holds exactly the data its shape says (u8 pixels
// count x rows x cols, f32 count x steps x features, all finite; texts valid UTF-8; token ids in
// the vocabulary; lengths in [1, steps]); a stream request is only accepted by a model that
// streams and holds one sample; the answer built from it is JSON that parses back (the
// hand-written answer too, equal to the JSON document's); and the fast path accepts only what
// the general parser accepts, with the same fields bit for bit.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_guard.hpp"
#include "recur/text.hpp"
#include "serve/protocol.hpp"

namespace {

using recur::InputKind;
using recur::fuzz::check;
using recur::serve::ModelShape;
using recur::serve::Payload;

ModelShape model(int which) {
  ModelShape m;
  m.classes = 10;
  m.streamable = true;
  switch (which) {
    case 0:
      m.kind = InputKind::image_sequence;
      m.rows = m.cols = m.steps = m.features = 28;
      break;
    case 1:
      m.kind = InputKind::whole_image;
      m.rows = m.cols = 8;
      m.streamable = false;
      m.not_streamable = "reads whole images";
      break;
    case 2:
    case 4:
      m.kind = InputKind::text;
      m.vocab = 50;
      m.classes = 2;
      if (which == 4) {
        m.streamable = false;
        m.not_streamable = "has a bidirectional layer";
      }
      break;
    default:
      m.kind = InputKind::sequence;
      m.features = 3;
      m.classes = 4;
      break;
  }
  return m;
}

void check_accepted(const recur::serve::InferRequest& r, const ModelShape& m) {
  const auto n = static_cast<std::size_t>(r.count);
  switch (r.payload) {
    case Payload::images:
      check(r.u8.size() == n * m.rows * m.cols, "images hold count x rows x cols pixels");
      break;
    case Payload::steps_f32:
      check(r.f32.size() == n * r.steps * m.features, "sequences hold count x steps x features");
      for (float v : r.f32) check(std::isfinite(v), "every float is finite");
      check(m.kind != InputKind::image_sequence || r.sequence.present || r.steps == m.steps,
            "an image model's batch has the view's steps");
      break;
    case Payload::steps_u8:
      check(r.u8.size() == static_cast<std::size_t>(r.steps) * m.features, "steps hold k x F");
      break;
    case Payload::texts:
      check(r.texts.size() == n, "one text per sample");
      for (const std::string& t : r.texts) check(recur::valid_utf8(t), "texts are UTF-8");
      break;
    case Payload::tokens:
      check(r.ids.size() == static_cast<std::size_t>(r.steps), "k token ids");
      for (std::int32_t id : r.ids) check(id >= 0 && id < m.vocab, "ids in the vocabulary");
      break;
  }
  for (int len : r.lengths) check(len >= 1 && len <= r.steps, "lengths in [1, steps]");
  check(r.lengths.empty() || r.lengths.size() == n, "one length per sequence");
  if (r.sequence.present) {
    check(m.streamable, "only a streaming model takes a sequence");
    check(r.count == 1, "a stream request holds one sample");
  } else {
    check(r.count >= 1, "a batch holds a sample");
  }
  recur::Predictions p;
  p.count = r.count;
  p.classes = m.classes;
  p.labels.assign(n, 0);
  p.probabilities.assign(n * m.classes, 0.5f);
  p.logits.assign(n * m.classes, -1.f);
  const std::string answer = recur::serve::infer_response("m", r, p, 1).dump();
  check(!nlohmann::json::parse(answer, nullptr, false).is_discarded(), "the answer is JSON");
  const nlohmann::json text =
      nlohmann::json::parse(recur::serve::infer_response_text("m", r, p, 1), nullptr, false);
  check(text == recur::serve::infer_response("m", r, p, 1), "the written answer is the document");
}

// The fast path accepts nothing the general parser refuses, and reads what it reads.
void check_fast_path(std::string_view body, const ModelShape& m) {
  const std::optional<recur::serve::InferRequest> fast =
      recur::serve::parse_infer_request_fast(body, m);
  if (!fast) return;
  try {
    const recur::serve::InferRequest general = recur::serve::parse_infer_request_general(body, m);
    check(recur::serve::same_request(*fast, general), "the fast path reads what the parser reads");
  } catch (const recur::serve::BadRequest& e) {
    recur::fuzz::fail(std::string("the fast path accepted a request the parser refuses: ") +
                      e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const ModelShape m = model(data[0] % 5);
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_fast_path(body, m);
  try {
    check_accepted(recur::serve::parse_infer_request(body, m), m);
  } catch (const recur::serve::BadRequest& e) {
    check(e.status() >= 400 && e.status() < 500, "a refusal is a 4xx");
    check(!e.field().empty() && !e.reason().empty(), "a refusal names the field and the reason");
  } catch (const std::exception& e) {
    recur::fuzz::fail("unexpected " + recur::fuzz::type_name(typeid(e)) + ": " + e.what());
  }
  return 0;
}
