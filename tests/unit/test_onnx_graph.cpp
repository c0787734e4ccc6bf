// The ONNX writer's protobuf bytes, read back by a minimal decoder written here from the wire
// format: field numbers and wire types of onnx.proto, varints past one byte, negative int64
// attributes, packed dims, raw little-endian tensor data, shared constants.
// (tests/export checks whole models with the onnx package's checker and ONNX Runtime.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "export/onnx_graph.hpp"

namespace {

using recur::onnx::OnnxAttr;
using recur::onnx::OnnxGraph;
using recur::onnx::OnnxType;

// One decoded field: a varint, or the bytes of a length-delimited / fixed32 field.
struct Field {
  int number = 0, wire = 0;
  std::uint64_t varint = 0;
  std::string bytes;
};

std::uint64_t read_varint(const std::string& s, std::size_t& at) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    EXPECT_LT(at, s.size());
    if (at >= s.size()) return v;
    const auto b = static_cast<unsigned char>(s[at++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

std::vector<Field> fields(const std::string& s) {
  std::vector<Field> out;
  std::size_t at = 0;
  while (at < s.size()) {
    const std::uint64_t key = read_varint(s, at);
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.wire == 0) {
      f.varint = read_varint(s, at);
    } else if (f.wire == 2) {
      const std::uint64_t n = read_varint(s, at);
      f.bytes = s.substr(at, n);
      at += n;
    } else if (f.wire == 5) {
      f.bytes = s.substr(at, 4);
      at += 4;
    } else {
      ADD_FAILURE() << "unexpected wire type " << f.wire;
      break;
    }
    out.push_back(f);
  }
  return out;
}

std::vector<Field> all(const std::string& s, int number) {
  std::vector<Field> out;
  for (const Field& f : fields(s))
    if (f.number == number) out.push_back(f);
  return out;
}

Field one(const std::string& s, int number) {
  const std::vector<Field> found = all(s, number);
  EXPECT_EQ(found.size(), 1u) << "field " << number;
  return found.empty() ? Field{} : found.front();
}

TEST(OnnxGraph, WritesModelGraphNodesTensorsAndValueInfosWithOnnxFieldNumbers) {
  OnnxGraph g;
  g.input("x", OnnxType::uint8, {"batch", "300"});
  const std::string w = g.initializer("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string axes = g.ints("axes", {-1});
  EXPECT_EQ(g.ints("axes", {-1}), axes);  // the same constant, once
  const std::string y = g.node("Gather", {"x", axes}, {OnnxAttr::integer("axis", -1)});
  g.node("LSTM", {y, w, "", ""},
         {OnnxAttr::string("direction", "forward"), OnnxAttr::real("clip", 0.5f),
          OnnxAttr::ints_of("perm", {1, 0}), OnnxAttr::strings_of("activations", {"Relu"})});
  g.output(y, "logits", OnnxType::float32, {"batch", "10"});
  const std::string model = g.serialize({{"recur.view", "rows"}}, 17, "test");

  EXPECT_EQ(one(model, 1).varint, 8u);  // ir_version
  EXPECT_EQ(one(model, 2).bytes, "recur");
  const std::string opset = one(model, 8).bytes;
  EXPECT_EQ(one(opset, 1).bytes, "");
  EXPECT_EQ(one(opset, 2).varint, 17u);
  const std::string meta = one(model, 14).bytes;
  EXPECT_EQ(one(meta, 1).bytes, "recur.view");
  EXPECT_EQ(one(meta, 2).bytes, "rows");

  const std::string graph = one(model, 7).bytes;
  const std::vector<Field> nodes = all(graph, 1);
  ASSERT_EQ(nodes.size(), 3u);  // Gather, LSTM, the output's Identity
  EXPECT_EQ(one(nodes[0].bytes, 4).bytes, "Gather");
  const std::string axis = one(nodes[0].bytes, 5).bytes;
  EXPECT_EQ(one(axis, 1).bytes, "axis");
  EXPECT_EQ(static_cast<std::int64_t>(one(axis, 3).varint), -1);  // ten-byte varint
  EXPECT_EQ(one(axis, 20).varint, 2u);                            // INT
  // Trailing absent optional inputs are left out.
  EXPECT_EQ(all(nodes[1].bytes, 1).size(), 2u);
  std::map<std::string, std::string> attrs;
  for (const Field& a : all(nodes[1].bytes, 5)) attrs[one(a.bytes, 1).bytes] = a.bytes;
  EXPECT_EQ(one(attrs["direction"], 4).bytes, "forward");
  float clip = 0.f;
  std::memcpy(&clip, one(attrs["clip"], 2).bytes.data(), 4);
  EXPECT_EQ(clip, 0.5f);
  EXPECT_EQ(all(attrs["perm"], 8).size(), 2u);
  EXPECT_EQ(one(attrs["activations"], 9).bytes, "Relu");
  EXPECT_EQ(all(nodes[2].bytes, 2).front().bytes, "logits");

  const std::vector<Field> tensors = all(graph, 5);
  ASSERT_EQ(tensors.size(), 2u);
  const std::string& wt = tensors[0].bytes;
  EXPECT_EQ(one(wt, 8).bytes, "w");
  EXPECT_EQ(one(wt, 2).varint, 1u);           // FLOAT
  const std::string dims = one(wt, 1).bytes;  // packed
  EXPECT_EQ(dims, std::string("\x02\x03", 2));
  const std::string raw = one(wt, 9).bytes;
  ASSERT_EQ(raw.size(), 24u);
  float last = 0.f;
  std::memcpy(&last, raw.data() + 20, 4);
  EXPECT_EQ(last, 6.f);
  EXPECT_EQ(one(tensors[1].bytes, 2).varint, 7u);  // INT64

  const std::string input = one(graph, 11).bytes;
  EXPECT_EQ(one(input, 1).bytes, "x");
  const std::string tensor_type = one(one(input, 2).bytes, 1).bytes;
  EXPECT_EQ(one(tensor_type, 1).varint, 2u);  // UINT8
  const std::vector<Field> dim = all(one(tensor_type, 2).bytes, 1);
  ASSERT_EQ(dim.size(), 2u);
  EXPECT_EQ(one(dim[0].bytes, 2).bytes, "batch");  // dim_param
  EXPECT_EQ(one(dim[1].bytes, 1).varint, 300u);    // dim_value, two-byte varint
  EXPECT_EQ(one(one(graph, 12).bytes, 1).bytes, "logits");
}

}  // namespace
