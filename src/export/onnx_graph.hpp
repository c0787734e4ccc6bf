// An ONNX graph held in memory and written as protobuf bytes (ModelProto) by a small wire-format
// encoder: varints, length-delimited fields and fixed 32-bit floats are all ONNX's messages use,
// so recur needs neither libprotobuf nor ONNX's generated code (docs/EXPORT.md says why).
//
//   OnnxGraph g;
//   g.input("x", OnnxType::float32, {"batch", "28", "28"});
//   std::string w = g.initializer("w", {10, 784}, weights);
//   std::string y = g.node("Gemm", {"x", w}, {OnnxAttr::ints("transB", 1)});
//   g.output(y, "logits", OnnxType::float32, {"batch", "10"});
//   std::string bytes = g.serialize(metadata);
//
// Names are unique within the graph: node() invents its output names ("n12_Gemm"), constants
// and initializers get the name asked for with a number added when it is taken.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace recur::onnx {

// TensorProto.DataType values.
enum class OnnxType : int { float32 = 1, uint8 = 2, int32 = 6, int64 = 7, boolean = 9 };

// One attribute of a node: an int, a float, a string, a list of ints or of strings.
struct OnnxAttr {
  std::string name;
  int type = 0;  // AttributeProto.AttributeType
  std::int64_t i = 0;
  float f = 0.f;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<std::string> strings;

  static OnnxAttr integer(std::string name, std::int64_t v);
  static OnnxAttr real(std::string name, float v);
  static OnnxAttr string(std::string name, std::string v);
  static OnnxAttr ints_of(std::string name, std::vector<std::int64_t> v);
  static OnnxAttr strings_of(std::string name, std::vector<std::string> v);
};

class OnnxGraph {
 public:
  // A graph input or output; a dimension is a number ("28") or a symbolic name ("batch").
  void input(const std::string& name, OnnxType type, const std::vector<std::string>& dims);
  void output(const std::string& value, const std::string& name, OnnxType type,
              const std::vector<std::string>& dims);

  // A float tensor of the graph's weights; returns its (unique) name.
  std::string initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                          const std::vector<float>& values);
  // Small constants, as initializers; asking twice for the same value gives the same one.
  std::string ints(const std::string& name, const std::vector<std::int64_t>& values,
                   bool scalar = false);
  std::string scalar(const std::string& name, float value);

  // Appends a node; returns its first output's name. `outputs` > 1 gives more outputs, read
  // with last_outputs().
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<OnnxAttr>& attrs = {}, int outputs = 1);
  const std::vector<std::string>& last_outputs() const { return nodes_.back().outputs; }
  std::size_t node_count() const { return nodes_.size(); }

  // The ModelProto (ir_version 8, opset `opset` of the default domain) with `metadata` as its
  // metadata_props.
  std::string serialize(const std::map<std::string, std::string>& metadata, int opset,
                        const std::string& producer_version) const;

 private:
  struct Node {
    std::string op, name;
    std::vector<std::string> inputs, outputs;
    std::vector<OnnxAttr> attrs;
  };
  struct Tensor {
    std::string name;
    OnnxType type = OnnxType::float32;
    std::vector<std::int64_t> dims;
    std::string raw;  // little-endian values
  };
  struct Value {
    std::string name;
    OnnxType type = OnnxType::float32;
    std::vector<std::string> dims;
  };
  std::string unique(const std::string& name);
  std::string constant(const std::string& name, OnnxType type, std::vector<std::int64_t> dims,
                       std::string raw);

  std::vector<Node> nodes_;
  std::vector<Tensor> tensors_;
  std::vector<Value> inputs_, outputs_;
  std::map<std::string, int> taken_;
  std::map<std::string, std::string> constants_;  // type, rank and bytes -> name
};

}  // namespace recur::onnx
