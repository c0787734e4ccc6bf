// Convolutional models through Model<T> (recur/layers.hpp), with the conv layers wired into
// make_layer: LeNet-5's shapes and parameter count (torch's 61,706), a finite-difference check
// of a whole small CNN in double (every parameter: loss sum(logits * r)), the model description
// round trip through JSON, and the errors a wrong chain gets.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "support/finite_difference.hpp"

namespace recur {
namespace {

LayerSpec layer(const std::string& type, int size = 0, int kernel = 0, int stride = 0,
                int padding = 0) {
  LayerSpec s;
  s.type = type;
  s.size = size;
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  return s;
}

ModelSpec lenet5() {
  ModelSpec spec;
  spec.input = ActShape{ActKind::image, 1, 28, 28, false};
  spec.num_classes = 10;
  spec.layers = {layer("conv2d", 6, 5, 1, 2),
                 layer("relu"),
                 layer("maxpool2d", 0, 2),
                 layer("conv2d", 16, 5),
                 layer("relu"),
                 layer("maxpool2d", 0, 2),
                 layer("flatten"),
                 layer("linear", 120),
                 layer("relu"),
                 layer("linear", 84),
                 layer("relu"),
                 layer("linear")};
  return spec;
}

TEST(ConvModel, LeNet5ShapesAndParameterCount) {
  Model<float> model(lenet5());
  EXPECT_EQ(model.num_params(), 61706u);  // sum(p.numel()) of the same torch.nn.Sequential
  EXPECT_EQ(model.layer(2).output_shape().height, 14);
  EXPECT_EQ(model.layer(5).output_shape().features, 16);
  EXPECT_EQ(model.layer(5).output_shape().width, 5);
  EXPECT_EQ(model.layer(6).output_shape().features, 400);
  std::vector<std::string> names;
  for (const ParamInfo& p : model.layout().entries()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight",
                                      "7.bias", "9.weight", "9.bias", "11.weight", "11.bias"}));
  // Seeded init stays within PyTorch's bound for conv1: 1/sqrt(1*5*5).
  model.init(1);
  for (std::size_t i = 0; i < 150; ++i) ASSERT_LE(std::fabs(model.params()[i]), 0.2f);
}

TEST(ConvModel, GradientCheckOfASmallCnn) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::image, 2, 6, 5, false};
  spec.num_classes = 3;
  spec.layers = {layer("conv2d", 3, 3, 1, 1),
                 layer("tanh"),
                 layer("maxpool2d", 0, 2),
                 layer("conv2d", 2, 2, 1, 1),
                 layer("relu"),
                 layer("flatten"),
                 layer("linear")};
  Model<double> model(spec);
  model.init(5);
  for (double& p : model.params()) p *= 2.0;  // order-1 weights: every term visible
  const int B = 2;
  Rng rng(3);
  std::vector<double> x(static_cast<std::size_t>(B) * 2 * 6 * 5),
      r(static_cast<std::size_t>(B) * 3);
  for (double& v : x) v = rng.uniform(-1, 1);
  for (double& v : r) v = rng.uniform(-1, 1);
  ModelInput<double> in;
  in.x = x.data();
  in.batch = B;
  ModelWorkspace<double> ws;
  auto loss = [&]() {
    const double* logits = model.forward(in, ws, false);
    double l = 0;
    for (std::size_t i = 0; i < r.size(); ++i) l += logits[i] * r[i];
    return l;
  };
  model.forward(in, ws, true);
  std::vector<double> grads(model.num_params(), 0.0);
  model.backward(in, ws, r.data(), grads.data());
  const double h = 1e-5;
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const double numeric = test::central_difference(model.params()[i], h, loss);
    // A relu or pooling tie within h of switching would move the numeric value; the inputs are
    // random and continuous, so a mismatch here means a wrong gradient.
    ASSERT_LE(std::fabs(grads[i] - numeric),
              1e-6 * (std::fabs(grads[i]) + std::fabs(numeric)) + 1e-9)
        << model.layout().entries().size() << " tensors; parameter " << i << ": analytic "
        << grads[i] << ", numeric " << numeric;
  }
}

TEST(ConvModel, DescriptionRoundTripsThroughJson) {
  const ModelSpec spec = lenet5();
  const ModelSpec back = model_spec_from_json(to_json(spec), "test");
  ASSERT_EQ(back.layers.size(), spec.layers.size());
  for (std::size_t i = 0; i < spec.layers.size(); ++i) {
    EXPECT_EQ(back.layers[i].type, spec.layers[i].type) << i;
    EXPECT_EQ(back.layers[i].size, spec.layers[i].size) << i;
    EXPECT_EQ(back.layers[i].kernel, spec.layers[i].kernel) << i;
    EXPECT_EQ(back.layers[i].stride, spec.layers[i].stride) << i;
    EXPECT_EQ(back.layers[i].padding, spec.layers[i].padding) << i;
  }
  EXPECT_EQ(Model<float>(back).num_params(), 61706u);
}

TEST(ConvModel, CheckpointRoundTripGivesTheSameLogits) {
  Model<float> model(lenet5());
  model.init(7);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("recur-lenet-" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  save_checkpoint(path, model, {});
  const LoadedCheckpoint loaded = load_checkpoint(path);
  std::filesystem::remove(path);
  ASSERT_EQ(loaded.format, 2);
  ASSERT_EQ(loaded.model->params(), model.params());
  Rng rng(9);
  std::vector<float> x(3 * 28 * 28);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  ModelInput<float> in;
  in.x = x.data();
  in.batch = 3;
  ModelWorkspace<float> a, b;
  const float* la = model.forward(in, a, false);
  const float* lb = loaded.model->forward(in, b, false);
  EXPECT_EQ(std::vector<float>(la, la + 30), std::vector<float>(lb, lb + 30));
}

TEST(ConvModel, WrongChainsAreRefusedNamingTheLayer) {
  ModelSpec spec = lenet5();
  spec.layers.erase(spec.layers.begin() + 6);  // no flatten before the first linear layer
  try {
    spec.validate();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layer 6 (linear)");
  }
  spec = lenet5();
  spec.layers[3].kernel = 15;  // larger than the 14x14 input of conv2
  try {
    spec.validate();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layer 3 (conv2d)");
    EXPECT_NE(e.reason().find("kernel 15 is larger than the padded input 14x14"), std::string::npos)
        << e.what();
  }
  spec = lenet5();
  spec.layers[0].type = "conv3d";
  EXPECT_THROW(spec.validate(), Error);
}

}  // namespace
}  // namespace recur
