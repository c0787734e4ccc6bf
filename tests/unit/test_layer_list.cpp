// The layer list as text (recur train --model): every layer type and setting is read into the
// LayerSpec it names, the text written back reads as the same layers, bad text is refused with
// the flag, the layer and the reason; the example configs describe the report's MLP and CNN.
#include <gtest/gtest.h>

#include <set>

#include <fstream>
#include <sstream>
#include <string>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/report_runner.hpp"
#include "recur/train_options.hpp"

namespace recur {
namespace {

TEST(LayerList, ReadsEveryLayerType) {
  const auto l = parse_layer_list(
      " embedding 64 vocab=500, dropout 0.25 , gru 32 layers=2 bidirectional dropout=0.1 "
      "bias=false name=enc, pool mean, linear 16 bias=false, relu, tanh, linear",
      "--model");
  ASSERT_EQ(l.size(), 8u);
  EXPECT_EQ(l[0].type, "embedding");
  EXPECT_EQ(l[0].size, 64);
  EXPECT_EQ(l[0].vocab, 500);
  EXPECT_EQ(l[1].type, "dropout");
  EXPECT_DOUBLE_EQ(l[1].dropout, 0.25);
  EXPECT_EQ(l[2].type, "recurrent");
  EXPECT_EQ(l[2].cell, CellKind::gru);
  EXPECT_EQ(l[2].size, 32);
  EXPECT_EQ(l[2].layers, 2);
  EXPECT_TRUE(l[2].bidirectional);
  EXPECT_DOUBLE_EQ(l[2].dropout, 0.1);
  EXPECT_FALSE(l[2].bias);
  EXPECT_EQ(l[2].name, "enc");
  EXPECT_EQ(l[3].type, "pool");
  EXPECT_EQ(l[3].pooling, Pooling::mean);
  EXPECT_EQ(l[4].type, "linear");
  EXPECT_EQ(l[4].size, 16);
  EXPECT_FALSE(l[4].bias);
  EXPECT_EQ(l[5].type, "relu");
  EXPECT_EQ(l[6].type, "tanh");
  EXPECT_EQ(l[7].type, "linear");
  EXPECT_EQ(l[7].size, 0);  // the classes
  EXPECT_TRUE(l[7].bias);

  const auto c = parse_layer_list(
      "conv2d 6 kernel=5 padding=2 stride=1, maxpool2d 3 stride=2, flatten, rnn 8, rnn_relu 8, "
      "lstm 4 bi",
      "m");
  EXPECT_EQ(c[0].type, "conv2d");
  EXPECT_EQ(c[0].size, 6);
  EXPECT_EQ(c[0].kernel, 5);
  EXPECT_EQ(c[0].padding, 2);
  EXPECT_EQ(c[0].stride, 1);
  EXPECT_EQ(c[1].type, "maxpool2d");
  EXPECT_EQ(c[1].kernel, 3);
  EXPECT_EQ(c[1].stride, 2);
  EXPECT_EQ(c[2].type, "flatten");
  EXPECT_EQ(c[3].cell, CellKind::rnn_tanh);
  EXPECT_EQ(c[4].cell, CellKind::rnn_relu);
  EXPECT_EQ(c[5].cell, CellKind::lstm);
  EXPECT_TRUE(c[5].bidirectional);
}

TEST(LayerList, TextReadsBackAsTheSameLayers) {
  for (const std::string text :
       {"embedding 128, lstm 128 bidirectional, pool max, linear",
        "embedding 64 vocab=500, dropout 0.25, gru 32 layers=2 bidirectional dropout=0.1 "
        "bias=false name=enc, pool mean, linear 16 bias=false, relu, tanh, linear",
        "conv2d 6 kernel=5 padding=2, relu, maxpool2d 2, conv2d 16 kernel=5 stride=2, relu, "
        "maxpool2d 2 stride=1, flatten, linear 120, relu, linear 84, relu, linear",
        "rnn 8, rnn_relu 8 layers=3, pool last, linear name=head"}) {
    const auto layers = parse_layer_list(text, "--model");
    EXPECT_EQ(layer_list_text(layers), text);
    ModelSpec a, b;
    a.layers = layers;
    b.layers = parse_layer_list(layer_list_text(layers), "--model");
    EXPECT_EQ(to_json(a), to_json(b)) << text;
  }
}

// The message of the error parse_layer_list throws for `text` ("" when none).
std::string refusal(const std::string& text) {
  try {
    parse_layer_list(text, "--model");
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "--model") << text;
    return e.what();
  }
  return "";
}

TEST(LayerList, BadTextIsRefusedNamingTheLayerAndTheReason) {
  EXPECT_NE(refusal("").find("is empty"), std::string::npos);
  EXPECT_NE(refusal("   ").find("is empty"), std::string::npos);
  EXPECT_NE(refusal("lstm 128,, linear").find("layer 1 '': is empty"), std::string::npos);
  EXPECT_NE(refusal("lstm 128, linear,").find("layer 2"), std::string::npos);
  EXPECT_NE(refusal("lstm 128, dense 10").find("layer 1 'dense 10': unknown layer type"),
            std::string::npos);
  EXPECT_NE(refusal("lstm").find("needs its hidden size"), std::string::npos);
  EXPECT_NE(refusal("lstm 0, linear").find("hidden size must be a whole number in [1,"),
            std::string::npos);
  EXPECT_NE(refusal("lstm 12x, linear").find("got '12x'"), std::string::npos);
  EXPECT_NE(refusal("lstm 99999999999999999999, linear").find("whole number"), std::string::npos);
  EXPECT_NE(refusal("dropout 1.5, linear").find("[0, 1)"), std::string::npos);
  EXPECT_NE(refusal("dropout nan, linear").find("[0, 1)"), std::string::npos);
  EXPECT_NE(refusal("pool median").find("last, mean or max, got 'median'"), std::string::npos);
  EXPECT_NE(refusal("conv2d 6, relu").find("needs kernel=K"), std::string::npos);
  EXPECT_NE(refusal("linear 10 kernel=3").find("'kernel' is not a setting of linear"),
            std::string::npos);
  EXPECT_NE(refusal("lstm 8 bias=maybe").find("bias must be true or false"), std::string::npos);
  EXPECT_NE(refusal("relu bidirectional").find("unexpected 'bidirectional'"), std::string::npos);
  EXPECT_NE(refusal("lstm 8 name=a.b").find("without '.'"), std::string::npos);
  EXPECT_NE(refusal("embedding 8 vocab=2").find("vocab must be"), std::string::npos);
}

// untied=S: one weight set per step, for sequences of exactly S steps.
TEST(LayerList, UntiedReadsAndWritesBack) {
  const auto l = parse_layer_list("lstm 16 untied=5", "--model");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].type, "recurrent");
  EXPECT_EQ(l[0].cell, CellKind::lstm);
  EXPECT_EQ(l[0].size, 16);
  EXPECT_EQ(l[0].untied_steps, 5);
  EXPECT_EQ(layer_list_text(l), "lstm 16 untied=5");
  for (const std::string text :
       {"lstm 16 untied=5", "gru 8 layers=2 bidirectional dropout=0.2 untied=28, pool mean, linear",
        "rnn 50 untied=784 bias=false, pool last, linear", "rnn_relu 4 untied=1 name=enc"}) {
    const auto layers = parse_layer_list(text, "--model");
    EXPECT_EQ(layer_list_text(layers), text);
    ModelSpec a, b;
    a.layers = layers;
    b.layers = parse_layer_list(layer_list_text(layers), "--model");
    EXPECT_EQ(to_json(a), to_json(b)) << text;
  }
  EXPECT_EQ(parse_layer_list("lstm 16", "--model")[0].untied_steps, 0);

  EXPECT_NE(refusal("lstm 16 untied=0")
                .find("layer 0 'lstm 16 untied=0': untied must be the "
                      "sequences' number of steps (at least 1), got '0'"),
            std::string::npos)
      << refusal("lstm 16 untied=0");
  EXPECT_NE(refusal("gru 16 untied=-3").find("at least 1"), std::string::npos);
  EXPECT_NE(refusal("rnn 16 untied=x").find("untied (the number of steps) must be a whole number"),
            std::string::npos);
  EXPECT_NE(refusal("rnn 16 untied=").find("whole number"), std::string::npos);
  EXPECT_NE(refusal("rnn 16 untied=99999999999").find("whole number"), std::string::npos);
  EXPECT_NE(refusal("lstm 16 untied").find("untied needs the sequences' number of steps"),
            std::string::npos);
  EXPECT_NE(refusal("linear 10 untied=5").find("'untied' is not a setting of linear"),
            std::string::npos);

  // The parameters: 5 copies of each weight matrix, one set of biases.
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 28};
  spec.num_classes = 10;
  spec.layers = parse_layer_list("lstm 16 untied=5 bidirectional, pool last, linear", "--model");
  EXPECT_EQ(spec.parameter_count(), 2u * (5u * 4 * 16 * (28 + 16) + 2 * 4 * 16) + 10 * 32 + 10);
}

TEST(LayerList, ShapesAreCheckedAgainstTheInput) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 28};
  spec.num_classes = 10;
  spec.layers = parse_layer_list("lstm 16, linear", "--model");  // no pooling
  EXPECT_THROW(spec.validate(), Error);
  spec.layers = parse_layer_list("lstm 16, pool last, linear", "--model");
  EXPECT_NO_THROW(spec.validate());
  EXPECT_EQ(spec.parameter_count(), 4u * 16 * (28 + 16 + 2) + 10 * 16 + 10);
  spec.layers = parse_layer_list("conv2d 4 kernel=3, flatten, linear", "--model");
  EXPECT_THROW(spec.validate(), Error);  // a sequence is not an image
}

std::string config_model(const std::string& file) {
  std::ifstream in(std::string(RECUR_SOURCE_DIR) + "/examples/" + file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model = \"", 0) == 0) return line.substr(9, line.size() - 10);
  ADD_FAILURE() << file << " has no model line";
  return "";
}

// examples/mnist-mlp.toml and mnist-cnn.toml are the report's MLP and CNN, layer for layer.
TEST(LayerList, ExampleConfigsAreTheReportsModels) {
  ImageSet set;
  set.source = "memory";
  set.count = 1;
  set.rows = set.cols = 28;
  set.pixels.assign(28 * 28, 0);
  set.labels = {0};
  ReportRunOptions o;
  const auto plan = report_plan(o, set);
  int found = 0;
  for (const auto& p : plan) {
    if (p.name != "mlp" && p.name != "cnn") continue;
    ++found;
    // The example's whole config read as recur train reads it: the same layers and recipe.
    TrainOptions example = default_train_options();
    std::set<std::string> given;
    apply_train_config_file(
        example, std::string(RECUR_SOURCE_DIR) + "/examples/mnist-" + p.name + ".toml", given);
    EXPECT_EQ(layer_list_text(example.layers), layer_list_text(p.options.layers)) << p.name;
    EXPECT_EQ(layer_list_text(example.layers),
              layer_list_text(parse_layer_list(config_model("mnist-" + p.name + ".toml"), p.name)));
    EXPECT_EQ(example.optimizer.lr, p.options.optimizer.lr) << p.name;
    EXPECT_EQ(example.schedule.kind, p.options.schedule.kind) << p.name;
    EXPECT_EQ(example.schedule.min_lr, p.options.schedule.min_lr) << p.name;
    EXPECT_EQ(example.batch, p.options.batch) << p.name;
    EXPECT_EQ(example.epochs, p.options.epochs) << p.name;
    EXPECT_EQ(example.clip_norm, p.options.clip_norm) << p.name;
    EXPECT_EQ(example.seed, p.options.seed) << p.name;
  }
  EXPECT_EQ(found, 2);
}

}  // namespace
}  // namespace recur
