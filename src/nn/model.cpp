// Model<T>: a chain of layers over one parameter arena; ModelSpec and its JSON form; SeqInfo.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/aligned.hpp"
#include "core/json_util.hpp"
#include "nn/layer_registry.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

// ---- shapes and lengths ----

std::string to_string(const ActShape& s) {
  switch (s.kind) {
    case ActKind::sequence:
      return s.ids ? "sequence of token ids" : "sequence of " + std::to_string(s.features);
    case ActKind::vector:
      return "vector of " + std::to_string(s.features);
    case ActKind::image:
      return "image " + std::to_string(s.features) + "x" + std::to_string(s.height) + "x" +
             std::to_string(s.width);
  }
  return "?";
}

SeqInfo SeqInfo::fixed(int steps, int batch) {
  SeqInfo s;
  s.steps = steps;
  s.batch = batch;
  s.lengths.assign(static_cast<std::size_t>(batch), steps);
  s.batch_sizes.assign(static_cast<std::size_t>(steps), batch);
  s.full = true;
  return s;
}

SeqInfo SeqInfo::from_lengths(const std::vector<int>& lengths) {
  RECUR_CHECK(!lengths.empty(), "lengths", "a batch needs at least one sample");
  SeqInfo s;
  s.batch = static_cast<int>(lengths.size());
  s.steps = lengths[0];
  s.lengths = lengths;
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    RECUR_CHECK(lengths[b] >= 1, "lengths", "every sample needs at least one step");
    RECUR_CHECK(b == 0 || lengths[b] <= lengths[b - 1], "lengths",
                "a batch must be sorted by length, longest first");
  }
  s.batch_sizes.assign(static_cast<std::size_t>(s.steps), 0);
  for (int len : lengths)
    for (int t = 0; t < len; ++t) ++s.batch_sizes[t];
  s.full = lengths.back() == s.steps;
  return s;
}

// ---- the spec ----

std::string ModelSpec::layer_name(std::size_t i) const {
  return layers[i].name.empty() ? std::to_string(i) : layers[i].name;
}

std::string ModelSpec::draw_name(std::size_t i) const {
  if (!layers[i].name.empty()) return layers[i].name;
  const std::string& type = layers[i].type;
  auto is_recurrent = [](const LayerSpec& l) { return l.type == "recurrent"; };
  auto first_of = [&](auto&& same) {
    for (std::size_t k = 0; k < i; ++k)
      if (same(layers[k])) return false;
    return true;
  };
  std::string role;
  if (type == "embedding" && first_of([](const LayerSpec& l) { return l.type == "embedding"; }))
    role = "embed";
  else if (is_recurrent(layers[i]) && first_of(is_recurrent))
    role = "rnn";
  else if (type == "linear" && i + 1 == layers.size())
    role = "head";
  else if (type == "linear" && first_of([](const LayerSpec& l) { return l.type == "linear"; })) {
    for (std::size_t k = i + 1; k < layers.size(); ++k)
      if (is_recurrent(layers[k])) role = "proj";
  }
  // A role's name that another layer carries as its own would share its draws: the index then.
  for (const LayerSpec& l : layers)
    if (!role.empty() && l.name == role) role.clear();
  return role.empty() ? std::to_string(i) : role;
}

namespace {

std::string where_of(const ModelSpec& spec, std::size_t i) {
  return "layer " + std::to_string(i) + " (" + spec.layers[i].type + ")";
}

// Builds the chain; shared by validate() (into a throwaway layout) and the Model constructor.
template <typename T>
std::vector<std::unique_ptr<Layer<T>>> build_chain(const ModelSpec& spec, ParamLayout& layout) {
  RECUR_CHECK(!spec.layers.empty(), "layers", "a model needs at least one layer");
  RECUR_CHECK(
      spec.num_classes >= 2 && spec.num_classes <= 100000, "classes",
      "the number of classes must be in [2, 100000], got " + std::to_string(spec.num_classes));
  std::vector<std::unique_ptr<Layer<T>>> chain;
  ActShape shape = spec.input;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    LayerSpec ls = spec.layers[i];
    const bool last = i + 1 == spec.layers.size();
    if (ls.type == "linear" && ls.size == 0 && last) ls.size = spec.num_classes;
    const std::string name = spec.layer_name(i);
    RECUR_CHECK(std::find(names.begin(), names.end(), name) == names.end(), where_of(spec, i),
                "two layers are named '" + name + "'");
    names.push_back(name);
    ls.draw = spec.draw_name(i);
    chain.push_back(make_layer<T>(ls, shape, name, layout, where_of(spec, i)));
    shape = chain.back()->output_shape();
  }
  RECUR_CHECK(shape.kind == ActKind::vector && shape.features == spec.num_classes,
              where_of(spec, spec.layers.size() - 1),
              "the last layer must give one score per class (" + std::to_string(spec.num_classes) +
                  "), not a " + to_string(shape) + "; end with pooling and a linear head");
  RECUR_CHECK(layout.total() <= ModelConfig::kMaxParameters, "layers",
              "the model would hold " + std::to_string(layout.total()) +
                  " parameters, over the limit of " + std::to_string(ModelConfig::kMaxParameters));
  return chain;
}

nlohmann::json shape_json(const ActShape& s) {
  const char* kind = s.kind == ActKind::sequence ? "sequence"
                     : s.kind == ActKind::vector ? "vector"
                                                 : "image";
  return {{"kind", kind},
          {"features", s.features},
          {"height", s.height},
          {"width", s.width},
          {"ids", s.ids}};
}

ActShape shape_from(const nlohmann::json& j, const std::string& source) {
  ActShape s;
  const std::string kind = j.at("kind").get<std::string>();
  if (kind == "sequence")
    s.kind = ActKind::sequence;
  else if (kind == "vector")
    s.kind = ActKind::vector;
  else if (kind == "image")
    s.kind = ActKind::image;
  else
    throw Error(source, "unknown input kind '" + kind + "'");
  s.features = json_integer<int>(j, "features", source);
  s.height = json_integer<int>(j, "height", source);
  s.width = json_integer<int>(j, "width", source);
  s.ids = j.at("ids").get<bool>();
  return s;
}

}  // namespace

void ModelSpec::validate() const {
  ParamLayout scratch;
  build_chain<double>(*this, scratch);
}

std::uint64_t ModelSpec::parameter_count() const {
  ParamLayout scratch;
  build_chain<double>(*this, scratch);
  return scratch.total();
}

std::string to_json(const ModelSpec& spec) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerSpec& l : spec.layers) layers.push_back(nn::layer_json(l));
  const nlohmann::json j = {{"input", shape_json(spec.input)},
                            {"num_classes", spec.num_classes},
                            {"layers", std::move(layers)}};
  return j.dump();
}

ModelSpec model_spec_from_json(const std::string& text, const std::string& source) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    ModelSpec spec;
    spec.input = shape_from(j.at("input"), source);
    spec.num_classes = json_integer<int>(j, "num_classes", source);
    const auto& layers = j.at("layers");
    if (!layers.is_array() || layers.size() > 1000)
      throw Error(source, "'layers' must be an array of at most 1000 layers");
    for (const auto& lj : layers) spec.layers.push_back(nn::layer_from_json(lj, source));
    spec.validate();
    return spec;
  } catch (const nlohmann::json::exception& e) {
    throw Error(source, std::string("model description in the metadata is invalid: ") + e.what());
  } catch (const Error& e) {
    throw Error(source, "model description in the metadata is invalid: " + std::string(e.what()));
  }
}

ModelSpec model_spec_from_config(const ModelConfig& c) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, c.input_size};
  spec.num_classes = c.num_classes;
  auto layer = [](const char* type, const char* name) {
    LayerSpec l;
    l.type = type;
    l.name = name;
    return l;
  };
  if (c.projection > 0) {
    LayerSpec p = layer("linear", "proj");
    p.size = c.projection;
    p.init = c.init.projection;
    spec.layers.push_back(p);
  }
  LayerSpec r = layer("recurrent", "rnn");
  r.cell = c.cell;
  r.size = c.hidden;
  r.layers = c.layers;
  r.bidirectional = c.bidirectional;
  r.untied_steps = c.untied ? c.steps : 0;
  r.bias = c.bias;
  r.dropout = c.dropout;
  r.recurrent_dropout = c.recurrent_dropout;
  r.init = c.init.input;
  r.init_recurrent = c.init.recurrent;
  r.forget_bias = c.init.forget_bias;
  spec.layers.push_back(r);
  LayerSpec pool = layer("pool", "pool");
  pool.pooling = c.pooling;
  spec.layers.push_back(pool);
  LayerSpec head = layer("linear", "head");
  head.size = c.num_classes;
  head.init = c.init.head;
  spec.layers.push_back(head);
  return spec;
}

// ---- the model ----

template <typename T>
Model<T>::Model(const ModelSpec& spec) : spec_(spec) {
  layers_ = build_chain<T>(spec_, layout_);
  params_.assign(layout_.total(), T(0));
}

template <typename T>
Model<T>::~Model() = default;

template <typename T>
void Model<T>::init(std::uint64_t seed) {
  for (const auto& layer : layers_) layer->init(params_.data(), seed);
  drop_prepared();
}

template <typename T>
void Model<T>::prepare(PrepareFor use, ThreadPool* pool) {
  prepared_.resize(layers_.size());
  for (std::size_t i = 0; i < layers_.size(); ++i)
    if (!prepared_[i] || !layers_[i]->prepare_into(params_.data(), use, *prepared_[i], pool))
      prepared_[i] = layers_[i]->prepare(params_.data(), use);
}

template <typename T>
void Model<T>::drop_prepared() {
  prepared_.clear();
}

namespace {

// Elements of a layer's output for `batch` samples running on `seq` (null for images).
std::size_t output_elements(const ActShape& out, const SeqInfo* seq, int batch) {
  const std::size_t rows = out.kind == ActKind::sequence
                               ? static_cast<std::size_t>(seq->steps) * batch
                               : static_cast<std::size_t>(batch);
  return rows * out.per_row();
}

}  // namespace

template <typename T>
const T* Model<T>::forward(const ModelInput<T>& in, ModelWorkspace<T>& ws, bool train, Rng* rng,
                           ThreadPool* columns) const {
  const std::size_t n = layers_.size();
  if (ws.layer_ws.size() != n) {
    ws.layer_ws.clear();
    for (const auto& layer : layers_) ws.layer_ws.push_back(layer->make_workspace());
    ws.outs.assign(n, {});
    ws.douts.assign(n, {});
  }
  ws.seqs.assign(n + 1, nullptr);
  ws.lengths.resize(n);
  ws.batch = in.batch;
  ws.ids = in.ids;
  const SeqInfo* seq = in.seq;
  if (!seq && spec_.input.kind == ActKind::sequence) {
    RECUR_ASSERT(false && "sequence input needs its lengths");
  }
  LayerContext<T> ctx{params_.data(), in.batch, seq, in.ids, train, rng};
  ctx.columns = columns;
  const T* x = in.x;
  if (in.pixels) {
    RECUR_ASSERT(!in.x && !train && seq && spec_.input.kind == ActKind::sequence);
    if (reads_pixels()) {
      ctx.pixels = in.pixels;
    } else {
      // The rows view's scaling (data/view.cpp): p / 255.f.
      const std::size_t size = output_elements(spec_.input, seq, in.batch);
      grow_workspace(ws.pixel_x, size);
      for (std::size_t k = 0; k < size; ++k)
        ws.pixel_x[k] = static_cast<T>(static_cast<float>(in.pixels[k]) / 255.f);
      x = ws.pixel_x.data();
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const Layer<T>& layer = *layers_[i];
    if (i == 1) ctx.pixels = nullptr;
    ws.seqs[i] = ctx.seq = seq;
    if (layer.changes_lengths()) {
      ws.lengths[i] = layer.output_lengths(*seq);
      seq = &ws.lengths[i];
    }
    const std::size_t size = output_elements(layer.output_shape(), seq, in.batch);
    grow_workspace(ws.outs[i], size);
    const PreparedWeights* prep = i < prepared_.size() ? prepared_[i].get() : nullptr;
    layer.forward(ctx, prep, x, ws.outs[i].data(), ws.layer_ws[i].get());
    x = ws.outs[i].data();
  }
  ws.seqs[n] = seq;
  return x;
}

template <typename T>
int Model<T>::column_split_rows() const {
  int rows = 0;
  for (std::size_t i = 0; i < layers_.size() && i < prepared_.size(); ++i)
    rows = std::max(rows, layers_[i]->column_split_rows(prepared_[i].get()));
  return rows;
}

template <typename T>
bool Model<T>::reads_pixels() const {
  return !layers_.empty() && !prepared_.empty() && layers_[0]->reads_pixels(prepared_[0].get());
}

template <typename T>
void Model<T>::backward(const ModelInput<T>& in, ModelWorkspace<T>& ws, const T* dlogits, T* grads,
                        RowGradients<T>* row_grads) const {
  const std::size_t n = layers_.size();
  RECUR_ASSERT(ws.layer_ws.size() == n && ws.batch == in.batch && ws.seqs.size() == n + 1);
  LayerContext<T> ctx{params_.data(), in.batch, in.seq, in.ids, true, nullptr, row_grads};
  // The gradient on layer i's input goes to douts[i - 1], or, when layer i works in place and
  // its output gradient is in douts[i] (not the caller's dlogits), over that gradient in
  // douts[i]. A buffer is sized when the layer after it writes it, for every layer that will
  // work in it.
  auto in_place = [&](std::size_t i) {
    return i > 0 && i + 1 < n && layers_[i]->backward_in_place();
  };
  const T* dout = dlogits;
  for (std::size_t i = n; i-- > 0;) {
    const Layer<T>& layer = *layers_[i];
    const T* x = i == 0 ? in.x : ws.outs[i - 1].data();
    T* din = nullptr;
    ctx.seq = ws.seqs[i];
    if (in_place(i)) {
      din = const_cast<T*>(dout);  // douts[i], sized for this below when layer i + 1 wrote it
    } else if (i > 0) {
      std::size_t size = 0;
      // Layers i - 1, i - 2, ... that work in place write their input gradients here too.
      for (std::size_t j = i; j > 0; --j) {
        size =
            std::max(size, output_elements(layers_[j - 1]->output_shape(), ws.seqs[j], in.batch));
        if (!in_place(j - 1)) break;
      }
      grow_workspace(ws.douts[i - 1], size);
      din = ws.douts[i - 1].data();
    }
    const PreparedWeights* prep = i < prepared_.size() ? prepared_[i].get() : nullptr;
    // Layer i writes, or reads, a gradient only the last steps carry.
    ctx.last_steps_gradient = (i > 0 && layer.input_gradient_at_last_steps() &&
                               layers_[i - 1]->reads_last_steps_gradient()) ||
                              (i + 1 < n && layer.reads_last_steps_gradient() &&
                               layers_[i + 1]->input_gradient_at_last_steps());
    layer.backward(ctx, prep, x, ws.outs[i].data(), dout, din, grads, ws.layer_ws[i].get());
    dout = din;
  }
}

template <typename T>
const ParamInfo* Model<T>::embedding_table() const {
  if (layers_.empty() || layers_[0]->spec().type != "embedding") return nullptr;
  // The first layer's one tensor: the first in the arena.
  const ParamInfo& table = layout_.entries().front();
  RECUR_ASSERT(table.offset == 0 && table.shape.size() == 2 &&
               table.shape[0] == layers_[0]->spec().vocab &&
               table.shape[1] == layers_[0]->spec().size);
  return &table;
}

template <typename T>
const T* Model<T>::activation(const ModelWorkspace<T>& ws, std::size_t i) const {
  return i == 0 ? nullptr : ws.outs[i - 1].data();
}

template class Model<float>;
template class Model<double>;

}  // namespace recur
