// The table of layer kinds, and what reads it generically: lookup, JSON, the init flags, help and
// the docs table. The list text is in nn/layer_list.cpp; each kind's entry sits beside its layer.
#include "nn/layer_registry.hpp"

#include <fmt/format.h>

#include "core/json_util.hpp"
#include "nn/config_json.hpp"
#include "recur/error.hpp"

namespace recur {

namespace nn {

const std::vector<const LayerKind*>& layer_kinds() {
  // Help and docs list the kinds in this order.
  static const std::vector<const LayerKind*> kinds = {
      &embedding_kind(), &recurrent_kind(), &pool_kind(),     &linear_kind(), &dropout_kind(),
      &relu_kind(),      &tanh_kind(),      &flatten_kind(),  &conv1d_kind(), &conv2d_kind(),
      &maxpool2d_kind(), &maxpool1d_kind(), &avgpool1d_kind()};
  return kinds;
}

const LayerKind* find_layer_kind(const std::string& type) {
  for (const LayerKind* k : layer_kinds())
    if (k->type == type) return k;
  return nullptr;
}

const LayerKind* find_layer_word(const std::string& word) {
  for (const LayerKind* k : layer_kinds())
    for (const std::string& w : k->words)
      if (w == word) return k;
  return nullptr;
}

std::string known_layer_words() {
  std::string out;
  for (const LayerKind* k : layer_kinds())
    for (std::size_t i = 0; i < k->shown; ++i) out += (out.empty() ? "" : ", ") + k->words[i];
  return out;
}

bool field_is_set(const LayerSpec& l, const SpecField& field) {
  static const LayerSpec kDefault;
  return std::visit(
      [&](auto member) {
        using V = std::decay_t<decltype(l.*member)>;
        if constexpr (std::is_same_v<V, WeightInit>)
          return true;  // never compared: JSON always holds a layer's init
        else
          return !(l.*member == kDefault.*member);
      },
      field);
}

namespace {

nlohmann::json field_json(const LayerSpec& l, const SpecField& field) {
  return std::visit(
      [&](auto member) -> nlohmann::json {
        using V = std::decay_t<decltype(l.*member)>;
        if constexpr (std::is_same_v<V, Pooling> || std::is_same_v<V, CellKind>)
          return to_string(l.*member);
        else if constexpr (std::is_same_v<V, WeightInit>)
          return init_json(l.*member);
        else
          return l.*member;
      },
      field);
}

void field_from_json(const nlohmann::json& j, const char* key, const SpecField& field, LayerSpec& l,
                     const std::string& source) {
  std::visit(
      [&](auto member) {
        using V = std::decay_t<decltype(l.*member)>;
        if constexpr (std::is_same_v<V, int>)
          l.*member = json_integer<int>(j, key, source);
        else if constexpr (std::is_same_v<V, double>)
          l.*member = json_number(j, key, source);
        else if constexpr (std::is_same_v<V, bool>)
          l.*member = j.at(key).get<bool>();
        else if constexpr (std::is_same_v<V, Pooling>)
          l.*member = parse_pooling(j.at(key).get<std::string>());
        else if constexpr (std::is_same_v<V, CellKind>)
          l.*member = parse_cell(j.at(key).get<std::string>());
        else
          l.*member = init_from(j.at(key), source);
      },
      field);
}

}  // namespace

nlohmann::json layer_json(const LayerSpec& l) {
  nlohmann::json j = {{"type", l.type}, {"name", l.name}};
  const LayerKind* kind = find_layer_kind(l.type);
  if (!kind) return j;
  for (const LayerParam& p : kind->params) {
    if (!p.json) continue;
    if (!p.json_if_set || field_is_set(l, p.field)) j[p.json] = field_json(l, p.field);
  }
  return j;
}

LayerSpec layer_from_json(const nlohmann::json& j, const std::string& source) {
  LayerSpec l;
  l.type = j.at("type").get<std::string>();
  l.name = j.at("name").get<std::string>();
  const LayerKind* kind = find_layer_kind(l.type);
  if (!kind) throw Error(source, "unknown layer type '" + l.type + "'");
  for (const LayerParam& p : kind->params)
    if (p.json && j.contains(p.json)) field_from_json(j, p.json, p.field, l, source);
  return l;
}

}  // namespace nn

// ---- what the registry answers for the rest of the library ----

InitKind auto_recurrent_init(CellKind cell) {
  (void)cell;  // every cell: orthogonal recurrent weights measured best (docs/RECIPES.md)
  return InitKind::orthogonal;
}

void apply_init_flags(const InitFlags& flags, std::vector<LayerSpec>& layers) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const nn::LayerKind* kind = nn::find_layer_kind(layers[i].type);
    if (kind && kind->init_rule) kind->init_rule(flags, i + 1 == layers.size(), layers[i]);
  }
}

bool reads_whole_images(const std::vector<LayerSpec>& layers) {
  if (layers.empty()) return false;
  const nn::LayerKind* kind = nn::find_layer_kind(layers.front().type);
  return kind && kind->reads_images;
}

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerSpec& spec, const ActShape& in,
                                     const std::string& name, ParamLayout& layout,
                                     const std::string& where) {
  const nn::LayerKind* kind = nn::find_layer_kind(spec.type);
  if (!kind) {
    std::string types;
    for (const nn::LayerKind* k : nn::layer_kinds()) types += (types.empty() ? "" : ", ") + k->type;
    throw Error(where, "unknown layer type '" + spec.type + "' (" + types + ")");
  }
  return kind->factory<T>()(spec, in, name, layout, where);
}

template std::unique_ptr<Layer<float>> make_layer<float>(const LayerSpec&, const ActShape&,
                                                         const std::string&, ParamLayout&,
                                                         const std::string&);
template std::unique_ptr<Layer<double>> make_layer<double>(const LayerSpec&, const ActShape&,
                                                           const std::string&, ParamLayout&,
                                                           const std::string&);

std::string layer_grammar() {
  std::string out;
  for (const nn::LayerKind* k : nn::layer_kinds()) {
    std::string words;
    for (std::size_t i = 0; i < k->shown; ++i) words += (i ? "|" : "") + k->words[i];
    std::string s = words;
    for (const nn::LayerParam& p : k->params) {
      if (!p.key) continue;
      std::string item = p.positional    ? std::string(p.meta)
                         : p.switches[0] ? std::string(p.switches[0])
                                         : fmt::format("{}={}", p.key, p.meta);
      s += p.required ? " " + item : " [" + item + "]";
    }
    out += (out.empty() ? "" : "; ") + s;
  }
  return out + "; any layer takes name=NAME";
}

std::string layer_table_markdown() {
  std::string out = "| layer | positional value | settings | PyTorch twin |\n|---|---|---|---|\n";
  for (const nn::LayerKind* k : nn::layer_kinds()) {
    std::string positional, settings;
    for (const nn::LayerParam& p : k->params) {
      if (!p.key || !*p.doc) continue;
      if (p.positional)
        positional = p.doc;
      else
        settings += (settings.empty() ? "" : ", ") + std::string(p.doc);
    }
    out += fmt::format("| {} | {} | {} | {} |\n", k->doc_layer, positional, settings, k->twin);
  }
  return out;
}

}  // namespace recur
