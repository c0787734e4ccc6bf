// Layer kinds declared once. Every kind of layer (embedding, linear, recurrent, pool, ...) is one
// LayerKind: its name, its parameters (how the list text, JSON, help and docs spell each, its
// range and default), its factory and its initialisation rule. The list parser and printer
// (nn/layer_list.cpp), the JSON reader and writer (layer_json, layer_from_json), make_layer,
// apply_init_flags, reads_whole_images, the --model help and the layer table of docs/LAYERS.md
// all read these entries and nothing else.
//
// Adding a kind: one source file that defines `const LayerKind& NAME_kind()` beside the layer
// (see nn/pool1d_layer.cpp), one line in the table of nn/layer_registry.cpp, its kernel and
// its tests (a gradient check, a golden test against PyTorch, a docs row).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "recur/layers.hpp"

namespace recur::nn {

// The LayerSpec field a parameter reads and writes.
using SpecField =
    std::variant<int LayerSpec::*, double LayerSpec::*, bool LayerSpec::*, Pooling LayerSpec::*,
                 CellKind LayerSpec::*, WeightInit LayerSpec::*>;

// One parameter of a kind. In the list it is the positional value ("lstm 128") or key=value
// ("layers=2"), or a bare switch ("bidirectional"); in JSON it is `json`. Integers are checked
// against [lo, hi] when read from the list (the layer's constructor holds the real bounds);
// doubles read from the list are probabilities in [0, 1).
struct LayerParam {
  const char* key = nullptr;   // list key; nullptr: not in the list (e.g. init)
  const char* json = nullptr;  // JSON key
  SpecField field{};
  const char* label = "";    // how list errors name it: "the hidden size", "layers"
  int lo = 0, hi = 0;        // integers: the range the list accepts
  bool positional = false;   // the value right after the type word
  bool required = false;     // absent: `missing` (positional) or "needs key=META"
  bool json_if_set = false;  // JSON: written only when it differs from LayerSpec's default
  const char* missing = "";  // "needs its hidden size, e.g. '{}'" ({} = the word and 128)
  const char* meta = "";     // help placeholder (H, N, P); "" for a switch
  const char* doc = "";      // docs/LAYERS.md's table: "`layers=N`"
  const char* switches[2] = {nullptr, nullptr};  // bare words that set a boolean true
  // Refuses a value the range check would word badly ("" = fine): untied=0.
  std::string (*precheck)(const std::string& value) = nullptr;
  const char* bare = nullptr;  // the message for its key given bare ("untied needs ...")
};

template <typename T>
using MakeLayer = std::unique_ptr<Layer<T>> (*)(const LayerSpec& spec, const ActShape& in,
                                                const std::string& name, ParamLayout& layout,
                                                const std::string& where);

template <template <typename> class L, typename T>
std::unique_ptr<Layer<T>> construct_layer(const LayerSpec& spec, const ActShape& in,
                                          const std::string& name, ParamLayout& layout,
                                          const std::string& where) {
  return std::make_unique<L<T>>(spec, in, name, layout, where);
}

struct LayerKind {
  std::string type{};                // LayerSpec::type and JSON "type"
  std::vector<std::string> words{};  // list words naming it; the first `shown` go in help
  std::size_t shown = 1;
  std::vector<LayerParam> params{};  // the list's print order; the positional one first
  const char* doc_layer = "";        // docs table: the layer as written ("`lstm H`, `gru H`")
  const char* twin = "";             // docs table: its PyTorch twin
  bool reads_images = false;         // first in a list: the model reads whole images
  void (*from_word)(const std::string& word, LayerSpec& spec) = nullptr;  // e.g. the cell
  std::string (*word_of)(const LayerSpec& spec) = nullptr;                // "" = type
  // recur train's initialisation flags on this layer (`last`: it ends the list).
  void (*init_rule)(const InitFlags& flags, bool last, LayerSpec& spec) = nullptr;
  MakeLayer<float> make_float = nullptr;
  MakeLayer<double> make_double = nullptr;

  template <typename T>
  MakeLayer<T> factory() const {
    if constexpr (std::is_same_v<T, float>)
      return make_float;
    else
      return make_double;
  }
};

// Every kind, in the order help and docs list them.
const std::vector<const LayerKind*>& layer_kinds();
// The kind of LayerSpec::type `type`; nullptr when none.
const LayerKind* find_layer_kind(const std::string& type);
// The kind a list word names ("gru" -> recurrent); nullptr when none.
const LayerKind* find_layer_word(const std::string& word);
// The known list words, for an error ("embedding, linear, lstm, ...").
std::string known_layer_words();

// Whether `l`'s field differs from a default LayerSpec's (an init always counts as set).
bool field_is_set(const LayerSpec& l, const SpecField& field);

// A layer's JSON object, as checkpoints store it ({"type", "name", then its parameters}).
nlohmann::json layer_json(const LayerSpec& spec);
// Throws recur::Error(source, ...) for an unknown type, nlohmann exceptions for bad values.
LayerSpec layer_from_json(const nlohmann::json& j, const std::string& source);

// The parameters of conv2d and conv1d: C kernel=K [stride=S] [padding=P] [bias=false], and init.
std::vector<LayerParam> conv_params(const char* stride_doc, const char* padding_doc);
// `bias=false`: the switch every layer with a bias (linear, recurrent, conv) takes.
LayerParam bias_param();

// The kinds with a registry entry, as the table of nn/layer_registry.cpp lists them.
const LayerKind& embedding_kind();
const LayerKind& linear_kind();
const LayerKind& recurrent_kind();
const LayerKind& pool_kind();
const LayerKind& dropout_kind();
const LayerKind& relu_kind();
const LayerKind& tanh_kind();
const LayerKind& flatten_kind();
const LayerKind& conv1d_kind();
const LayerKind& conv2d_kind();
const LayerKind& maxpool2d_kind();
const LayerKind& maxpool1d_kind();
const LayerKind& avgpool1d_kind();

}  // namespace recur::nn
