// The layer registry is the one description of every layer kind: docs/LAYERS.md's table is the
// registry's, every kind's list text and JSON round-trip through it, its factory builds it, and
// the list words, help and init rules all come from its entries.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "nn/layer_registry.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LayerRegistry, DocsTableIsTheRegistrys) {
  const std::string docs = read_text(std::string(RECUR_SOURCE_DIR) + "/docs/LAYERS.md");
  ASSERT_FALSE(docs.empty());
  const std::string table = layer_table_markdown();
  EXPECT_NE(docs.find(table), std::string::npos)
      << "docs/LAYERS.md's layer table differs from the registry's; it should read:\n"
      << table;
  for (const nn::LayerKind* k : nn::layer_kinds())
    EXPECT_NE(table.find(k->doc_layer), std::string::npos) << k->type;
}

TEST(LayerRegistry, EveryKindIsComplete) {
  std::set<std::string> types, words;
  for (const nn::LayerKind* k : nn::layer_kinds()) {
    EXPECT_TRUE(types.insert(k->type).second) << "two kinds named " << k->type;
    ASSERT_FALSE(k->words.empty()) << k->type;
    EXPECT_LE(k->shown, k->words.size()) << k->type;
    for (const std::string& w : k->words) EXPECT_TRUE(words.insert(w).second) << w;
    EXPECT_NE(k->make_float, nullptr) << k->type;
    EXPECT_NE(k->make_double, nullptr) << k->type;
    EXPECT_NE(std::string(k->doc_layer), "") << k->type;
    EXPECT_EQ(nn::find_layer_kind(k->type), k);
    for (const std::string& w : k->words) EXPECT_EQ(nn::find_layer_word(w), k) << w;
    EXPECT_NE(layer_grammar().find(k->words[0]), std::string::npos) << k->type;
  }
  EXPECT_EQ(nn::find_layer_kind("dense"), nullptr);
  EXPECT_GE(types.size(), 12u);
}

// One list per kind, every setting away from its default: text and JSON read back the same.
TEST(LayerRegistry, EveryKindRoundTripsThroughTextAndJson) {
  const std::string text =
      "embedding 8 vocab=50 name=e, conv1d 6 kernel=3 bias=false, maxpool1d 3 stride=2, "
      "gru 5 layers=2 bidirectional dropout=0.1 bias=false, maxpool1d 2, pool mean, "
      "dropout 0.25, linear 7 bias=false, relu, tanh, linear";
  const auto layers = parse_layer_list(text, "--model");
  EXPECT_EQ(layer_list_text(layers), text);
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 0, 0, 0, true};
  spec.num_classes = 3;
  spec.layers = layers;
  EXPECT_NO_THROW(spec.validate());
  const std::string json = to_json(spec);
  EXPECT_EQ(to_json(model_spec_from_json(json, "test")), json);
  EXPECT_NE(json.find("\"type\":\"maxpool1d\""), std::string::npos) << json;

  const std::string images =
      "conv2d 4 kernel=3 stride=2 padding=1 bias=false, maxpool2d 2 stride=1 padding=1, flatten, "
      "linear";
  EXPECT_EQ(layer_list_text(parse_layer_list(images, "--model")), images);
  EXPECT_TRUE(reads_whole_images(parse_layer_list(images, "--model")));
  EXPECT_TRUE(reads_whole_images(parse_layer_list("flatten, linear", "--model")));
  EXPECT_FALSE(reads_whole_images(parse_layer_list("maxpool1d 2, pool max, linear", "--model")));
}

TEST(LayerRegistry, UnknownTypesAreRefusedWhereverTheyAreRead) {
  try {
    parse_layer_list("lstm 8, dense 3", "--model");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("maxpool1d"), std::string::npos) << e.what();
  }
  const std::string json =
      R"({"input":{"kind":"sequence","features":3,"height":0,"width":0,"ids":false},)"
      R"("num_classes":2,"layers":[{"type":"dense","name":""}]})";
  try {
    model_spec_from_json(json, "file.safetensors");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown layer type 'dense'"), std::string::npos)
        << e.what();
  }
}

// Only the kinds whose entries have an init rule take the flags: recurrent layers and the head.
TEST(LayerRegistry, InitRulesComeFromTheEntries) {
  auto layers =
      parse_layer_list("rnn 4, maxpool1d 2, gru 4, pool max, linear 5, relu, linear", "--model");
  InitFlags f;
  f.init.input.kind = InitKind::glorot;
  f.init.recurrent.kind = InitKind::normal;
  f.init.head.kind = InitKind::truncated_normal;
  f.init.forget_bias = 2;
  f.recurrent_auto = true;
  f.no_bias = true;
  apply_init_flags(f, layers);
  EXPECT_EQ(layers[0].init.kind, InitKind::glorot);
  EXPECT_EQ(layers[0].init_recurrent.kind, InitKind::orthogonal);  // auto, plain RNN
  EXPECT_EQ(layers[2].init_recurrent.kind, InitKind::orthogonal);  // auto, GRU
  EXPECT_FALSE(layers[0].bias);
  EXPECT_DOUBLE_EQ(layers[2].forget_bias, 2.0);
  EXPECT_EQ(layers[4].init.kind, InitKind::pytorch);  // not the head
  EXPECT_TRUE(layers[4].bias);
  EXPECT_EQ(layers[6].init.kind, InitKind::truncated_normal);
  f.recurrent_auto = false;
  apply_init_flags(f, layers);
  EXPECT_EQ(layers[0].init_recurrent.kind, InitKind::normal);
  EXPECT_EQ(auto_recurrent_init(CellKind::lstm), InitKind::orthogonal);
  EXPECT_EQ(auto_recurrent_init(CellKind::rnn_relu), InitKind::orthogonal);
}

}  // namespace
}  // namespace recur
