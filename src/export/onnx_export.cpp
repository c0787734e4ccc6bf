// recur's models as ONNX graphs: the model's input as its front ends take it, each layer as the
// operators that compute it exactly, logits and probabilities out (recur/export.hpp; the layer
// to operator table is docs/EXPORT.md's).
//
// Sequences flow time-major, [steps, batch, features], as recur and ONNX's recurrent operators
// hold them (layout 0; ONNX Runtime refuses layout 1). Where samples have their own lengths
// (text, arrays, and after a layer that changes lengths) the graph carries them: the recurrent
// operators get them as sequence_lens, pooling and the windowed layers build masks from them.
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "export/onnx_graph.hpp"
#include "recur/error.hpp"
#include "recur/export.hpp"
#include "recur/fs.hpp"

namespace recur {

namespace {

using onnx::OnnxAttr;
using onnx::OnnxGraph;
using onnx::OnnxType;

constexpr int kOpset = 17;

// A sequence in the graph, with what it knows of its samples' lengths.
struct Seq {
  std::string x;  // float [T, B, F]
  int features = 0;
  int directions = 1;  // 2: [forward | reverse] halves, as the model's pooling reads them
  std::string lens;    // int64 [B]; "" when every sample has all T steps
  std::string lens32;  // int32 [B], for the recurrent operators
  std::string keep;    // bool [T, B, 1]: step t is one of sample b's (made when needed)
};

// What flows between layers.
struct Act {
  ActKind kind = ActKind::sequence;
  Seq seq;        // sequences
  std::string x;  // vectors [B, F], images [B, C, H, W]
};

class Exporter {
 public:
  Exporter(const Predictor& p, const OnnxExportOptions& o) : p_(p), opt_(o) {}
  std::string build(std::string& inputs_text);
  std::size_t nodes() const { return g_.node_count(); }

 private:
  Act input(std::string& text);
  void layer(std::size_t i, Act& a);
  void recurrent(std::size_t i, Seq& s);
  void recurrent_tied(std::size_t i, int l, Seq& s);
  std::string untied_direction(std::size_t i, int l, int d, const Seq& s, int steps);
  std::string pool(const LayerSpec& spec, Seq& s);
  std::string windowed_pool(const LayerSpec& spec, Seq& s);
  std::string conv1d(std::size_t i, Seq& s);
  void linear(std::size_t i, Act& a);

  // Masks of real steps.
  const std::string& keep(Seq& s);
  std::string masked(Seq& s, float fill);
  void set_lengths(Seq& s, const std::string& lens);

  // The weights of a tensor of the checkpoint.
  const float* tensor(const std::string& name, std::vector<std::int64_t>* shape = nullptr) const;
  std::string weight(const std::string& name);  // as stored
  std::string where(std::size_t i) const {
    return "layer " + std::to_string(i) + " (" + p_.model().layer(i).spec().type + ")";
  }

  // Small graph idioms.
  std::string unsqueeze(const std::string& x, std::vector<std::int64_t> axes) {
    return g_.node("Unsqueeze", {x, g_.ints("axes", axes)});
  }
  std::string transpose(const std::string& x, std::vector<std::int64_t> perm) {
    return g_.node("Transpose", {x}, {OnnxAttr::ints_of("perm", std::move(perm))});
  }
  std::string dim(const std::string& x, int axis) {  // int64 [1]
    return g_.node("Shape", {x},
                   {OnnxAttr::integer("start", axis), OnnxAttr::integer("end", axis + 1)});
  }
  std::string zeros(const std::string& like_rows, int width) {  // float [B, width]
    const std::string shape = g_.node("Concat", {dim(like_rows, 1), g_.ints("width", {width})},
                                      {OnnxAttr::integer("axis", 0)});
    return g_.node("ConstantOfShape", {shape});
  }

  const Predictor& p_;
  OnnxExportOptions opt_;
  OnnxGraph g_;
};

const float* Exporter::tensor(const std::string& name, std::vector<std::int64_t>* shape) const {
  const ParamInfo* info = p_.model().layout().find(name);
  RECUR_ASSERT(info != nullptr);
  if (shape) *shape = info->shape;
  return p_.model().params().data() + info->offset;
}

std::string Exporter::weight(const std::string& name) {
  std::vector<std::int64_t> shape;
  const float* w = tensor(name, &shape);
  const ParamInfo* info = p_.model().layout().find(name);
  return g_.initializer(name, shape, std::vector<float>(w, w + info->size));
}

// ---- input ----

Act Exporter::input(std::string& text) {
  Act a;
  const ModelSpec& spec = p_.model().spec();
  switch (p_.input_kind()) {
    case InputKind::whole_image:
    case InputKind::image_sequence: {
      const int R = p_.image_rows(), C = p_.image_cols();
      g_.input("images", OnnxType::uint8, {"batch", std::to_string(R), std::to_string(C)});
      text = "images uint8 [batch, " + std::to_string(R) + ", " + std::to_string(C) + "]";
      // pixel / 255 in float, as recur's views scale them.
      const std::string unit = g_.node(
          "Div",
          {g_.node("Cast", {"images"}, {OnnxAttr::integer("to", 1)}), g_.scalar("255", 255.f)});
      if (p_.input_kind() == InputKind::whole_image) {
        a.kind = ActKind::image;
        a.x = unsqueeze(unit, {1});  // [B, 1, R, C]
        return a;
      }
      const Metadata& m = p_.metadata();
      const ViewKind view = parse_view(m.at("recur.view"));
      a.seq.features = p_.features();
      if (view == ViewKind::rows) {
        a.seq.x = transpose(unit, {1, 0, 2});
      } else if (view == ViewKind::cols) {
        a.seq.x = transpose(unit, {2, 0, 1});
      } else {
        std::string flat = g_.node("Reshape", {unit, g_.ints("pixels_shape", {0, R * C})});
        if (view == ViewKind::permuted) {
          const SequenceView v = SequenceView::make(
              view, R, C, static_cast<std::uint64_t>(std::stoull(m.at("recur.view_seed"))));
          const std::vector<std::int64_t> order(v.order.begin(), v.order.end());
          flat = g_.node("Gather", {flat, g_.ints("view_order", order)},
                         {OnnxAttr::integer("axis", 1)});
        }
        a.seq.x = unsqueeze(transpose(flat, {1, 0}), {2});
      }
      return a;
    }
    case InputKind::text:
      g_.input("tokens", OnnxType::int64, {"batch", "steps"});
      g_.input("lengths", OnnxType::int64, {"batch"});
      text = "tokens int64 [batch, steps], lengths int64 [batch]";
      a.seq.x = transpose("tokens", {1, 0});  // ids [T, B]; the embedding makes features
      set_lengths(a.seq, "lengths");
      return a;
    case InputKind::sequence:
      g_.input("sequences", OnnxType::float32,
               {"batch", "steps", std::to_string(spec.input.features)});
      g_.input("lengths", OnnxType::int64, {"batch"});
      text = "sequences float [batch, steps, " + std::to_string(spec.input.features) +
             "], lengths int64 [batch]";
      a.seq.x = transpose("sequences", {1, 0, 2});
      a.seq.features = spec.input.features;
      set_lengths(a.seq, "lengths");
      return a;
  }
  return a;
}

void Exporter::set_lengths(Seq& s, const std::string& lens) {
  s.lens = lens;
  s.lens32 = g_.node("Cast", {lens}, {OnnxAttr::integer("to", 6)});
  s.keep.clear();
}

// keep[t, b, 0] = t < lengths[b]
const std::string& Exporter::keep(Seq& s) {
  if (!s.keep.empty()) return s.keep;
  RECUR_ASSERT(!s.lens.empty());
  const std::string T = g_.node("Squeeze", {dim(s.x, 0), g_.ints("axes", {0})});
  const std::string steps =
      g_.node("Range", {g_.ints("zero", {0}, true), T, g_.ints("one", {1}, true)});
  const std::string less =
      g_.node("Less", {unsqueeze(steps, {1}), unsqueeze(s.lens, {0})});  // [T, B]
  s.keep = unsqueeze(less, {2});
  return s.keep;
}

// The sequence with `fill` at every step past a sample's end.
std::string Exporter::masked(Seq& s, float fill) {
  if (s.lens.empty()) return s.x;
  return g_.node("Where", {keep(s), s.x, g_.scalar(fill == 0.f ? "zero" : "fill", fill)});
}

// ---- layers ----

void Exporter::layer(std::size_t i, Act& a) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const std::string& t = spec.type;
  std::string& x = a.kind == ActKind::sequence ? a.seq.x : a.x;
  if (t == "dropout") return;  // inference: identity
  if (t == "relu") {
    x = g_.node("Relu", {x});
  } else if (t == "tanh") {
    x = g_.node("Tanh", {x});
  } else if (t == "embedding") {
    x = g_.node("Gather", {weight(p_.model().spec().layer_name(i) + ".weight"), x},
                {OnnxAttr::integer("axis", 0)});
    a.seq.features = spec.size;
  } else if (t == "linear") {
    linear(i, a);
  } else if (t == "recurrent") {
    recurrent(i, a.seq);
  } else if (t == "pool") {
    // Which half is a reverse direction's, as the model's own pooling reads it.
    a.seq.directions = p_.model().layer(i).input_shape().directions;
    a.x = pool(spec, a.seq);
    a.kind = ActKind::vector;
  } else if (t == "conv1d") {
    a.seq.x = conv1d(i, a.seq);
    a.seq.features = spec.size;
  } else if (t == "maxpool1d" || t == "avgpool1d") {
    a.seq.x = windowed_pool(spec, a.seq);
  } else if (t == "flatten") {
    x = g_.node("Flatten", {x}, {OnnxAttr::integer("axis", 1)});
    a.kind = ActKind::vector;
  } else if (t == "conv2d" || t == "maxpool2d") {
    const int k = spec.kernel, pad = spec.padding;
    const int stride = spec.stride != 0 ? spec.stride : (t == "conv2d" ? 1 : k);
    std::vector<OnnxAttr> attrs = {OnnxAttr::ints_of("kernel_shape", {k, k}),
                                   OnnxAttr::ints_of("strides", {stride, stride}),
                                   OnnxAttr::ints_of("pads", {pad, pad, pad, pad})};
    if (t == "maxpool2d") {
      x = g_.node("MaxPool", {x}, attrs);
    } else {
      const std::string name = p_.model().spec().layer_name(i);
      std::vector<std::string> in = {x, weight(name + ".weight")};
      if (spec.bias) in.push_back(weight(name + ".bias"));
      x = g_.node("Conv", in, attrs);
    }
  } else {
    throw Error(p_.path(), where(i) + " has no ONNX form in this version of recur");
  }
}

void Exporter::linear(std::size_t i, Act& a) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const std::string name = p_.model().spec().layer_name(i);
  if (a.kind == ActKind::vector) {
    std::vector<std::string> in = {a.x, weight(name + ".weight")};
    if (spec.bias) in.push_back(weight(name + ".bias"));
    a.x = g_.node("Gemm", in, {OnnxAttr::integer("transB", 1)});
    return;
  }
  // Per step: MatMul by the transposed weight [in, out], then the bias.
  std::vector<std::int64_t> shape;
  const float* w = tensor(name + ".weight", &shape);
  const std::int64_t O = shape[0], I = shape[1];
  std::vector<float> wt(static_cast<std::size_t>(O * I));
  for (std::int64_t o = 0; o < O; ++o)
    for (std::int64_t k = 0; k < I; ++k) wt[k * O + o] = w[o * I + k];
  std::string y = g_.node("MatMul", {a.seq.x, g_.initializer(name + ".weight_t", {I, O}, wt)});
  if (spec.bias) y = g_.node("Add", {y, weight(name + ".bias")});
  a.seq.x = y;
  a.seq.features = static_cast<int>(O);
}

// ---- recurrent layers ----

void Exporter::recurrent(std::size_t i, Seq& s) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const int D = spec.bidirectional ? 2 : 1;
  for (int l = 0; l < spec.layers; ++l) {
    if (spec.untied_steps == 0) {
      recurrent_tied(i, l, s);
      continue;
    }
    std::vector<std::string> dirs;
    for (int d = 0; d < D; ++d) dirs.push_back(untied_direction(i, l, d, s, spec.untied_steps));
    s.x = D == 1 ? dirs[0] : g_.node("Concat", dirs, {OnnxAttr::integer("axis", 2)});
  }
  s.features = spec.size * D;
}

// Gate blocks in ONNX's order, as indices of PyTorch's blocks: LSTM i,o,f,c from i,f,g,o; GRU
// z,r,h from r,z,n; RNN has one block.
std::vector<int> onnx_gate_order(CellKind cell, OnnxFault fault) {
  if (fault == OnnxFault::pytorch_gate_order) cell = CellKind::rnn_tanh;
  switch (cell) {
    case CellKind::lstm:
      return {lstm_gate::kInput, lstm_gate::kOutput, lstm_gate::kForget, lstm_gate::kCell};
    case CellKind::gru:
      return {gru_gate::kUpdate, gru_gate::kReset, gru_gate::kNew};
    default:
      return {0, 1, 2, 3};
  }
}

// One stacked layer l of a tied recurrent layer: ONNX's LSTM / GRU / RNN, both directions in one
// operator, real lengths as sequence_lens.
void Exporter::recurrent_tied(std::size_t i, int l, Seq& s) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const int D = spec.bidirectional ? 2 : 1, H = spec.size, G = gate_count(spec.cell);
  const std::string prefix = p_.model().spec().layer_name(i) + ".";
  const std::vector<int> order = onnx_gate_order(spec.cell, opt_.fault);
  std::vector<float> W, R, B;
  int I = 0;
  auto append_blocks = [&](std::vector<float>& dst, const float* src, int cols) {
    for (int gate = 0; gate < G; ++gate) {
      const float* block = src + static_cast<std::size_t>(order[gate]) * H * cols;
      dst.insert(dst.end(), block, block + static_cast<std::size_t>(H) * cols);
    }
  };
  for (int d = 0; d < D; ++d) {
    const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
    std::vector<std::int64_t> shape;
    const float* w_ih = tensor(prefix + "weight_ih" + suffix, &shape);
    I = static_cast<int>(shape[1]);
    append_blocks(W, w_ih, I);
    append_blocks(R, tensor(prefix + "weight_hh" + suffix), H);
    if (spec.bias) {
      append_blocks(B, tensor(prefix + "bias_ih" + suffix), 1);
      append_blocks(B, tensor(prefix + "bias_hh" + suffix), 1);
    } else {
      B.insert(B.end(), static_cast<std::size_t>(2 * G * H), 0.f);
    }
  }
  const std::string name = prefix + "l" + std::to_string(l);
  const std::vector<std::string> in = {s.x, g_.initializer(name + ".W", {D, G * H, I}, W),
                                       g_.initializer(name + ".R", {D, G * H, H}, R),
                                       g_.initializer(name + ".B", {D, 2 * G * H}, B), s.lens32};
  std::vector<OnnxAttr> attrs = {
      OnnxAttr::integer("hidden_size", H),
      OnnxAttr::string("direction", D == 2 ? "bidirectional" : "forward")};
  std::string op = "RNN";
  if (spec.cell == CellKind::lstm) {
    op = "LSTM";
  } else if (spec.cell == CellKind::gru) {
    op = "GRU";
    // PyTorch's GRU (and recur's) applies the reset gate after the recurrent product.
    const int before = opt_.fault == OnnxFault::gru_reset_before ? 0 : 1;
    attrs.push_back(OnnxAttr::integer("linear_before_reset", before));
  } else {
    const std::string act = spec.cell == CellKind::rnn_relu ? "Relu" : "Tanh";
    attrs.push_back(OnnxAttr::strings_of("activations", std::vector<std::string>(D, act)));
  }
  const std::string y = g_.node(op, in, attrs);  // [T, D, B, H]
  s.x = g_.node("Reshape", {transpose(y, {0, 2, 1, 3}), g_.ints("seq_shape", {0, 0, D * H})});
}

// One direction of stacked layer l of an untied layer (a weight set per step), unrolled: ONNX's
// recurrent operators share one weight set over all steps. Every sample has all `steps` steps.
// Returns the direction's outputs [T, B, H] in time order.
std::string Exporter::untied_direction(std::size_t i, int l, int d, const Seq& s, int steps) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const int H = spec.size, G = gate_count(spec.cell);
  const std::string prefix = p_.model().spec().layer_name(i) + ".";
  const std::string suffix = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
  std::vector<std::int64_t> ih_shape;
  const float* w_ih = tensor(prefix + "weight_ih" + suffix, &ih_shape);
  const float* w_hh = tensor(prefix + "weight_hh" + suffix);
  const std::int64_t I = ih_shape[2], GH = static_cast<std::int64_t>(G) * H;
  std::string b_ih, b_hh;
  if (spec.bias) {
    b_ih = weight(prefix + "bias_ih" + suffix);
    b_hh = weight(prefix + "bias_hh" + suffix);
  }
  const std::string gate_split = g_.ints("gate_split", std::vector<std::int64_t>(G, H));
  auto split = [&](const std::string& v) {
    g_.node("Split", {v, gate_split}, {OnnxAttr::integer("axis", 1)}, G);
    return g_.last_outputs();
  };
  std::string h = zeros(s.x, H), c = h;
  std::vector<std::string> outs(static_cast<std::size_t>(steps));
  for (int k = 0; k < steps; ++k) {
    const int t = d == 0 ? k : steps - 1 - k;
    const std::string tag = prefix + "step" + std::to_string(t) + suffix;
    const float* wi = w_ih + static_cast<std::size_t>(t) * GH * I;
    const float* wh = w_hh + static_cast<std::size_t>(t) * GH * H;
    const std::string x_t =
        g_.node("Gather", {s.x, g_.ints("t", {t}, true)}, {OnnxAttr::integer("axis", 0)});
    std::vector<std::string> in_i = {
        x_t, g_.initializer(tag + ".W", {GH, I}, std::vector<float>(wi, wi + GH * I))};
    std::vector<std::string> in_h = {
        h, g_.initializer(tag + ".R", {GH, H}, std::vector<float>(wh, wh + GH * H))};
    if (spec.bias) {
      in_i.push_back(b_ih);
      in_h.push_back(b_hh);
    }
    const std::string gi = g_.node("Gemm", in_i, {OnnxAttr::integer("transB", 1)});
    const std::string gh = g_.node("Gemm", in_h, {OnnxAttr::integer("transB", 1)});
    if (spec.cell == CellKind::lstm) {
      const std::vector<std::string> gates = split(g_.node("Add", {gi, gh}));
      const std::string in_gate = g_.node("Sigmoid", {gates[lstm_gate::kInput]});
      const std::string forget = g_.node("Sigmoid", {gates[lstm_gate::kForget]});
      const std::string cand = g_.node("Tanh", {gates[lstm_gate::kCell]});
      const std::string out_gate = g_.node("Sigmoid", {gates[lstm_gate::kOutput]});
      c = g_.node("Add", {g_.node("Mul", {forget, c}), g_.node("Mul", {in_gate, cand})});
      h = g_.node("Mul", {out_gate, g_.node("Tanh", {c})});
    } else if (spec.cell == CellKind::gru) {
      const std::vector<std::string> xi = split(gi);
      const std::vector<std::string> hh = split(gh);
      using namespace gru_gate;
      const std::string r = g_.node("Sigmoid", {g_.node("Add", {xi[kReset], hh[kReset]})});
      const std::string z = g_.node("Sigmoid", {g_.node("Add", {xi[kUpdate], hh[kUpdate]})});
      const std::string n =
          g_.node("Tanh", {g_.node("Add", {xi[kNew], g_.node("Mul", {r, hh[kNew]})})});
      // h' = (1 - z) n + z h = n + z (h - n)
      h = g_.node("Add", {n, g_.node("Mul", {z, g_.node("Sub", {h, n})})});
    } else {
      h = g_.node(spec.cell == CellKind::rnn_relu ? "Relu" : "Tanh", {g_.node("Add", {gi, gh})});
    }
    outs[static_cast<std::size_t>(t)] = unsqueeze(h, {0});
  }
  return g_.node("Concat", outs, {OnnxAttr::integer("axis", 0)});
}

// ---- sequence to vector ----

// pool last / mean / max over each sample's real steps: [T, B, F] -> [B, F].
std::string Exporter::pool(const LayerSpec& spec, Seq& s) {
  const OnnxAttr drop = OnnxAttr::integer("keepdims", 0);
  switch (spec.pooling) {
    case Pooling::maxmean: {
      LayerSpec half = spec;
      half.pooling = Pooling::max;
      const std::string mx = pool(half, s);
      half.pooling = Pooling::mean;
      return g_.node("Concat", {mx, pool(half, s)}, {OnnxAttr::integer("axis", 1)});
    }
    case Pooling::mean: {
      const std::string sum = g_.node("ReduceSum", {masked(s, 0.f), g_.ints("axes", {0})}, {drop});
      const std::string count =
          s.lens.empty() ? g_.node("Cast", {dim(s.x, 0)}, {OnnxAttr::integer("to", 1)})
                         : unsqueeze(g_.node("Cast", {s.lens}, {OnnxAttr::integer("to", 1)}), {1});
      return g_.node("Mul", {sum, g_.node("Reciprocal", {count})});
    }
    case Pooling::max:
      // ReduceMax takes its axes as an attribute until opset 18.
      return g_.node("ReduceMax", {masked(s, -INFINITY)}, {OnnxAttr::ints_of("axes", {0}), drop});
    case Pooling::last:
      break;
  }
  // The forward half at each sample's last step; a reverse half ends at step 0.
  std::string last;
  if (s.lens.empty()) {
    last = g_.node("Gather", {s.x, g_.ints("t", {-1}, true)}, {OnnxAttr::integer("axis", 0)});
  } else {
    // lengths - 1 as [1, B, F] indices into the time axis.
    const std::string idx = unsqueeze(g_.node("Sub", {s.lens, g_.ints("one", {1}, true)}), {0, 2});
    const std::string shape = g_.node("Concat", {g_.ints("one", {1}), dim(s.x, 1), dim(s.x, 2)},
                                      {OnnxAttr::integer("axis", 0)});
    last = g_.node("GatherElements", {s.x, g_.node("Expand", {idx, shape})},
                   {OnnxAttr::integer("axis", 0)});
    last = g_.node("Squeeze", {last, g_.ints("axes", {0})});
  }
  if (s.directions == 1) return last;
  const int H = s.features / 2;
  const std::string first =
      g_.node("Gather", {s.x, g_.ints("t", {0}, true)}, {OnnxAttr::integer("axis", 0)});
  const std::string axis1 = g_.ints("axes", {1});
  const std::string fwd =
      g_.node("Slice", {last, g_.ints("start", {0}), g_.ints("end", {H}), axis1});
  const std::string rev =
      g_.node("Slice", {first, g_.ints("start", {H}), g_.ints("end", {2 * H}), axis1});
  return g_.node("Concat", {fwd, rev}, {OnnxAttr::integer("axis", 1)});
}

// ---- layers across steps ----

// conv1d, "same" padding: each sample alone, zeros past its end.
std::string Exporter::conv1d(std::size_t i, Seq& s) {
  const LayerSpec& spec = p_.model().layer(i).spec();
  const std::string name = p_.model().spec().layer_name(i);
  const std::string x = transpose(masked(s, 0.f), {1, 2, 0});  // [B, F, T]
  std::vector<std::string> in = {x, weight(name + ".weight")};
  if (spec.bias) in.push_back(weight(name + ".bias"));
  const int pad = spec.kernel / 2;
  const std::string y = g_.node(
      "Conv", in,
      {OnnxAttr::ints_of("kernel_shape", {spec.kernel}), OnnxAttr::ints_of("pads", {pad, pad})});
  return transpose(y, {2, 0, 1});
}

// maxpool1d / avgpool1d K stride S: windows inside each sample, and one window over all the
// steps of a sample shorter than K. The sequence is padded at its end by K - 1 steps of -inf
// (max) or 0 (mean) so that window 0 of a short sample exists and sees only its own steps; the
// new lengths are floor((L - K) / S) + 1, or 1 for L < K.
std::string Exporter::windowed_pool(const LayerSpec& spec, Seq& s) {
  const bool average = spec.type == "avgpool1d";
  const std::int64_t K = spec.kernel, S = spec.stride != 0 ? spec.stride : spec.kernel;
  if (s.lens.empty()) {  // every sample has T steps: lengths T from the graph
    const std::string T = dim(s.x, 0);
    set_lengths(s, g_.node("Expand", {T, dim(s.x, 1)}));
  }
  const std::string fill = g_.scalar(average ? "zero" : "minus_inf", average ? 0.f : -INFINITY);
  const std::string x = transpose(masked(s, average ? 0.f : -INFINITY), {1, 2, 0});  // [B, F, T]
  const std::string padded = g_.node("Pad", {x, g_.ints("pads", {0, 0, 0, 0, 0, K - 1}), fill});
  const std::vector<OnnxAttr> attrs = {OnnxAttr::ints_of("kernel_shape", {K}),
                                       OnnxAttr::ints_of("strides", {S})};
  std::string y = transpose(g_.node(average ? "AveragePool" : "MaxPool", {padded}, attrs),
                            {2, 0, 1});  // [T', B, F]
  const std::string k = g_.ints("K", {K}, true);
  const std::string short_sample = g_.node("Less", {s.lens, k});  // [B]
  if (average) {
    // A short sample's window averaged K steps, L of them its own: scale by K / L.
    const std::string lf = g_.node("Cast", {s.lens}, {OnnxAttr::integer("to", 1)});
    const std::string scale =
        g_.node("Where", {short_sample, g_.node("Div", {g_.scalar("K", static_cast<float>(K)), lf}),
                          g_.scalar("one", 1.f)});
    y = g_.node("Mul", {y, unsqueeze(scale, {1})});  // [T', B, F] by [B, 1]
  }
  const std::string full =
      g_.node("Add", {g_.node("Div", {g_.node("Sub", {s.lens, k}), g_.ints("S", {S}, true)}),
                      g_.ints("one", {1}, true)});
  set_lengths(s, g_.node("Where", {short_sample, g_.ints("one", {1}, true), full}));
  s.x = y;
  s.x = masked(s, 0.f);
  return s.x;
}

std::string Exporter::build(std::string& inputs_text) {
  Act a = input(inputs_text);
  const Model<float>& model = p_.model();
  for (std::size_t i = 0; i < model.num_layers(); ++i) layer(i, a);
  RECUR_ASSERT(a.kind == ActKind::vector);
  const int C = model.spec().num_classes;
  g_.output(a.x, "logits", OnnxType::float32, {"batch", std::to_string(C)});
  g_.output(g_.node("Softmax", {a.x}, {OnnxAttr::integer("axis", 1)}), "probabilities",
            OnnxType::float32, {"batch", std::to_string(C)});
  Metadata meta = p_.metadata();
  meta["recur.onnx.inputs"] = inputs_text;
  meta["recur.onnx.input_kind"] = to_string(p_.input_kind());
  return g_.serialize(meta, kOpset, "recur");
}

}  // namespace

std::string onnx_tokenizer_path(const std::string& onnx_path) {
  const std::string ext = ".onnx";
  std::string base = onnx_path;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".tokenizer.json";
}

OnnxExport export_onnx(const Predictor& predictor, const std::string& path,
                       const OnnxExportOptions& options) {
  OnnxExport r;
  r.path = path;
  Exporter e(predictor, options);
  const std::string bytes = e.build(r.inputs);
  r.nodes = e.nodes();
  r.bytes = bytes.size();
  if (predictor.input_kind() == InputKind::text) {
    const TextCodec& codec = predictor.text();
    nlohmann::json j;
    j["vocab"] = nlohmann::json::parse(predictor.metadata().at("recur.vocab"));
    j["max_len"] = codec.max_len;
    j["truncate"] = to_string(codec.truncate);
    j["class_names"] = codec.class_names;
    j["inputs"] = r.inputs;
    r.tokenizer_path = onnx_tokenizer_path(path);
    // The tokenizer first, then the model; when the model cannot be written, a tokenizer file
    // this call created goes too, so a failure leaves nothing new behind.
    std::error_code ec;
    const bool had_tokenizer = std::filesystem::exists(r.tokenizer_path, ec);
    write_file_atomic(r.tokenizer_path, j.dump(1) + "\n");
    try {
      write_file_atomic(path, bytes.data(), bytes.size());
    } catch (const Error&) {
      if (!had_tokenizer) std::filesystem::remove(r.tokenizer_path, ec);
      throw;
    }
    return r;
  }
  write_file_atomic(path, bytes.data(), bytes.size());
  return r;
}

}  // namespace recur
