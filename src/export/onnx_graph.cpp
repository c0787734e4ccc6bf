// The protobuf wire format, as much of it as ONNX's messages need, and the ONNX messages
// themselves (field numbers of onnx.proto, ONNX IR version 8).
#include "export/onnx_graph.hpp"

#include <cstring>

#include "recur/error.hpp"

namespace recur::onnx {

namespace {

// Wire types.
constexpr int kVarint = 0, kLengthDelimited = 2, kFixed32 = 5;

// One message being written: fields appended in order.
class Message {
 public:
  void varint(int field, std::uint64_t v) {
    key(field, kVarint);
    raw_varint(v);
  }
  void bytes(int field, const std::string& b) {
    key(field, kLengthDelimited);
    raw_varint(b.size());
    out_ += b;
  }
  void message(int field, const Message& m) { bytes(field, m.out_); }
  void fixed32(int field, float f) {
    key(field, kFixed32);
    std::uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    for (int k = 0; k < 4; ++k) out_ += static_cast<char>((u >> (8 * k)) & 0xff);
  }
  // A repeated varint field, packed (one length-delimited run).
  void packed_varints(int field, const std::vector<std::int64_t>& vs) {
    Message run;
    for (std::int64_t v : vs) run.raw_varint(static_cast<std::uint64_t>(v));
    bytes(field, run.out_);
  }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire) { raw_varint((static_cast<std::uint64_t>(field) << 3) | wire); }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

// onnx.proto field numbers.
namespace model_f {
constexpr int ir_version = 1, producer_name = 2, producer_version = 3, graph = 7, opset = 8,
              metadata = 14;
}
namespace graph_f {
constexpr int node = 1, name = 2, initializer = 5, input = 11, output = 12;
}
namespace node_f {
constexpr int input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
}
namespace attr_f {
constexpr int name = 1, f = 2, i = 3, s = 4, ints = 8, strings = 9, type = 20;
}
namespace attr_type {
constexpr int f = 1, i = 2, s = 3, ints = 7, strings = 8;
}
namespace tensor_f {
constexpr int dims = 1, data_type = 2, name = 8, raw_data = 9;
}

Message value_info(const std::string& name, OnnxType type, const std::vector<std::string>& dims) {
  Message shape;
  for (const std::string& d : dims) {
    Message dim;
    const bool numeric = !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
    if (numeric)
      dim.varint(1, std::stoull(d));  // dim_value
    else
      dim.bytes(2, d);  // dim_param
    shape.message(1, dim);
  }
  Message tensor_type;
  tensor_type.varint(1, static_cast<std::uint64_t>(type));  // elem_type
  tensor_type.message(2, shape);
  Message type_proto;
  type_proto.message(1, tensor_type);
  Message v;
  v.bytes(1, name);
  v.message(2, type_proto);
  return v;
}

template <typename V>
std::string little_endian(const std::vector<V>& values) {
  // Every machine recur builds on is little-endian (x86-64, aarch64), as ONNX's raw_data is.
  std::string raw(values.size() * sizeof(V), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  return raw;
}

}  // namespace

namespace {

// An attribute of `type` named `name` whose value `set` then fills.
template <typename Set>
OnnxAttr attribute(std::string name, int type, Set&& set) {
  OnnxAttr a;
  a.name = std::move(name);
  a.type = type;
  set(a);
  return a;
}

}  // namespace

OnnxAttr OnnxAttr::integer(std::string name, std::int64_t v) {
  return attribute(std::move(name), attr_type::i, [&](OnnxAttr& a) { a.i = v; });
}
OnnxAttr OnnxAttr::real(std::string name, float v) {
  return attribute(std::move(name), attr_type::f, [&](OnnxAttr& a) { a.f = v; });
}
OnnxAttr OnnxAttr::string(std::string name, std::string v) {
  return attribute(std::move(name), attr_type::s, [&](OnnxAttr& a) { a.s = std::move(v); });
}
OnnxAttr OnnxAttr::ints_of(std::string name, std::vector<std::int64_t> v) {
  return attribute(std::move(name), attr_type::ints, [&](OnnxAttr& a) { a.ints = std::move(v); });
}
OnnxAttr OnnxAttr::strings_of(std::string name, std::vector<std::string> v) {
  return attribute(std::move(name), attr_type::strings,
                   [&](OnnxAttr& a) { a.strings = std::move(v); });
}

std::string OnnxGraph::unique(const std::string& name) {
  int& n = taken_[name];
  ++n;
  if (n == 1) return name;
  std::string alt = name + "_" + std::to_string(n);
  while (taken_.count(alt)) alt += "_";
  taken_[alt] = 1;
  return alt;
}

void OnnxGraph::input(const std::string& name, OnnxType type,
                      const std::vector<std::string>& dims) {
  RECUR_ASSERT(taken_.count(name) == 0);
  taken_[name] = 1;
  inputs_.push_back(Value{name, type, dims});
}

void OnnxGraph::output(const std::string& value, const std::string& name, OnnxType type,
                       const std::vector<std::string>& dims) {
  RECUR_ASSERT(taken_.count(name) == 0);
  taken_[name] = 1;
  nodes_.push_back(Node{"Identity", unique(name + "_out"), {value}, {name}, {}});
  outputs_.push_back(Value{name, type, dims});
}

std::string OnnxGraph::initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                   const std::vector<float>& values) {
  std::int64_t count = 1;
  for (std::int64_t d : dims) count *= d;
  RECUR_ASSERT(count == static_cast<std::int64_t>(values.size()));
  Tensor t{unique(name), OnnxType::float32, dims, little_endian(values)};
  tensors_.push_back(std::move(t));
  return tensors_.back().name;
}

std::string OnnxGraph::constant(const std::string& name, OnnxType type,
                                std::vector<std::int64_t> dims, std::string raw) {
  std::string key =
      std::to_string(static_cast<int>(type)) + ":" + std::to_string(dims.size()) + ":" + raw;
  auto it = constants_.find(key);
  if (it != constants_.end()) return it->second;
  tensors_.push_back(Tensor{unique(name), type, std::move(dims), std::move(raw)});
  constants_.emplace(std::move(key), tensors_.back().name);
  return tensors_.back().name;
}

std::string OnnxGraph::ints(const std::string& name, const std::vector<std::int64_t>& values,
                            bool scalar) {
  RECUR_ASSERT(!scalar || values.size() == 1);
  std::vector<std::int64_t> dims;
  if (!scalar) dims.push_back(static_cast<std::int64_t>(values.size()));
  return constant(name, OnnxType::int64, std::move(dims), little_endian(values));
}

std::string OnnxGraph::scalar(const std::string& name, float value) {
  return constant(name, OnnxType::float32, {}, little_endian<float>({value}));
}

std::string OnnxGraph::node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<OnnxAttr>& attrs, int outputs) {
  Node n;
  n.op = op;
  std::string base = "n";
  base += std::to_string(nodes_.size());
  base += '_';
  base += op;
  n.name = unique(base);
  n.inputs = inputs;
  while (!n.inputs.empty() && n.inputs.back().empty()) n.inputs.pop_back();  // optional, absent
  n.attrs = attrs;
  for (int k = 0; k < outputs; ++k) n.outputs.push_back(unique(n.name + "_" + std::to_string(k)));
  nodes_.push_back(std::move(n));
  return nodes_.back().outputs.front();
}

std::string OnnxGraph::serialize(const std::map<std::string, std::string>& metadata, int opset,
                                 const std::string& producer_version) const {
  Message graph;
  for (const Node& n : nodes_) {
    Message m;
    for (const std::string& in : n.inputs) m.bytes(node_f::input, in);
    for (const std::string& out : n.outputs) m.bytes(node_f::output, out);
    m.bytes(node_f::name, n.name);
    m.bytes(node_f::op_type, n.op);
    for (const OnnxAttr& a : n.attrs) {
      Message am;
      am.bytes(attr_f::name, a.name);
      switch (a.type) {
        case attr_type::f:
          am.fixed32(attr_f::f, a.f);
          break;
        case attr_type::i:
          am.varint(attr_f::i, static_cast<std::uint64_t>(a.i));
          break;
        case attr_type::s:
          am.bytes(attr_f::s, a.s);
          break;
        case attr_type::ints:
          for (std::int64_t v : a.ints) am.varint(attr_f::ints, static_cast<std::uint64_t>(v));
          break;
        case attr_type::strings:
          for (const std::string& s : a.strings) am.bytes(attr_f::strings, s);
          break;
        default:
          RECUR_ASSERT(false);
      }
      am.varint(attr_f::type, static_cast<std::uint64_t>(a.type));
      m.message(node_f::attribute, am);
    }
    graph.message(graph_f::node, m);
  }
  graph.bytes(graph_f::name, "recur");
  for (const Tensor& t : tensors_) {
    Message tm;
    if (!t.dims.empty()) tm.packed_varints(tensor_f::dims, t.dims);
    tm.varint(tensor_f::data_type, static_cast<std::uint64_t>(t.type));
    tm.bytes(tensor_f::name, t.name);
    tm.bytes(tensor_f::raw_data, t.raw);
    graph.message(graph_f::initializer, tm);
  }
  for (const Value& v : inputs_) graph.message(graph_f::input, value_info(v.name, v.type, v.dims));
  for (const Value& v : outputs_)
    graph.message(graph_f::output, value_info(v.name, v.type, v.dims));

  Message model;
  model.varint(model_f::ir_version, 8);
  model.bytes(model_f::producer_name, "recur");
  model.bytes(model_f::producer_version, producer_version);
  model.message(model_f::graph, graph);
  Message op;
  op.bytes(1, "");  // the default domain
  op.varint(2, static_cast<std::uint64_t>(opset));
  model.message(model_f::opset, op);
  for (const auto& [key, value] : metadata) {
    Message entry;
    entry.bytes(1, key);
    entry.bytes(2, value);
    model.message(model_f::metadata, entry);
  }
  return model.str();
}

}  // namespace recur::onnx
