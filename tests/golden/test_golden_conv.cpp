// Golden tests: recur's convolutional layers chained as torch.nn.Sequential against PyTorch, on
// the fixtures of tests/golden/make_conv_fixtures.py (LeNet-5's feature extractor; strides,
// padding, no bias, tanh; 1x1 and full-size kernels; a whole small CNN classifier, on batches of 3
// and 11). The layers are built by make_layer under the Sequential's names ("0", "3", ...), load
// the fixture's state_dict, and must give its output and the gradients of sum(y * dy) for every
// parameter and the input: err(a, ref) = max|a - ref| / max|ref| per tensor, 1e-9 in double, 1e-5
// in float. The classifiers also run as a Model (recur/layers.hpp) built from its ModelSpec.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "golden/golden_util.hpp"
#include "recur/layers.hpp"
#include "recur/safetensors.hpp"

namespace recur {
namespace {

const std::string kConvFixtures = std::string(RECUR_TEST_DIR) + "/golden/conv";

using golden::as_f64;
using golden::rel_error;

template <typename T>
void run_fixture(const std::string& fixture, double tol) {
  const SafetensorsFile f = read_safetensors(kConvFixtures + "/" + fixture + ".safetensors");
  const auto input = nlohmann::json::parse(f.metadata.at("recur.input"));
  const int B = input[0];
  ActShape shape{ActKind::image, input[1].get<int>(), input[2].get<int>(), input[3].get<int>(),
                 false};
  ParamLayout layout;
  std::vector<std::unique_ptr<Layer<T>>> layers;
  for (const auto& j : nlohmann::json::parse(f.metadata.at("recur.layers"))) {
    LayerSpec spec;
    spec.type = j.at("type");
    spec.size = j.value("size", 0);
    spec.kernel = j.value("kernel", 0);
    spec.stride = j.value("stride", 0);
    spec.padding = j.value("padding", 0);
    spec.bias = j.value("bias", true);
    const std::string name = std::to_string(layers.size());
    layers.push_back(make_layer<T>(spec, shape, name, layout, "layer " + name));
    shape = layers.back()->output_shape();
  }
  std::vector<T> params(layout.total());
  for (const ParamInfo& p : layout.entries()) {
    const StoredTensor& t = f.at(p.name);
    ASSERT_EQ(t.shape, p.shape) << p.name;
    const auto v = as_f64(t);
    std::copy(v.begin(), v.end(), params.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  LayerContext<T> ctx;
  ctx.params = params.data();
  ctx.batch = B;
  ctx.train = true;
  // acts[i] is layer i's input; acts.back() the output.
  std::vector<std::vector<T>> acts;
  const auto x = as_f64(f.at("x"));
  acts.emplace_back(x.begin(), x.end());
  std::vector<std::unique_ptr<LayerWorkspace<T>>> ws;
  for (const auto& layer : layers) {
    ws.push_back(layer->make_workspace());
    acts.emplace_back(static_cast<std::size_t>(B) * layer->output_shape().per_row());
    layer->forward(ctx, nullptr, acts[acts.size() - 2].data(), acts.back().data(), ws.back().get());
  }
  EXPECT_LT(rel_error(acts.back(), as_f64(f.at("y"))), tol) << "y";
  const auto dy = as_f64(f.at("dy"));
  std::vector<T> grad(dy.begin(), dy.end()), grads(layout.total(), T(0));
  for (std::size_t i = layers.size(); i-- > 0;) {
    std::vector<T> din(acts[i].size());
    layers[i]->backward(ctx, nullptr, acts[i].data(), acts[i + 1].data(), grad.data(), din.data(),
                        grads.data(), ws[i].get());
    grad = std::move(din);
  }
  EXPECT_LT(rel_error(grad, as_f64(f.at("grad.x"))), tol) << "grad.x";
  for (const ParamInfo& p : layout.entries()) {
    const std::vector<T> g(grads.begin() + static_cast<std::ptrdiff_t>(p.offset),
                           grads.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size));
    EXPECT_LT(rel_error(g, as_f64(f.at("grad." + p.name))), tol) << "grad." << p.name;
  }
}

// A classifier fixture as a Model: logits, and the gradients of sum(logits * dy).
template <typename T>
void run_model(const std::string& fixture, double tol) {
  const SafetensorsFile f = read_safetensors(kConvFixtures + "/" + fixture + ".safetensors");
  const auto input = nlohmann::json::parse(f.metadata.at("recur.input"));
  ModelSpec spec;
  spec.input = ActShape{ActKind::image, input[1].get<int>(), input[2].get<int>(),
                        input[3].get<int>(), false};
  spec.num_classes = 10;
  for (const auto& j : nlohmann::json::parse(f.metadata.at("recur.layers"))) {
    LayerSpec l;
    l.type = j.at("type");
    l.size = j.value("size", 0);
    l.kernel = j.value("kernel", 0);
    l.stride = j.value("stride", 0);
    l.padding = j.value("padding", 0);
    spec.layers.push_back(l);
  }
  Model<T> model(spec);
  ASSERT_EQ(model.layout().entries().size(), 8u);  // two convolutions, two linear layers
  for (const ParamInfo& p : model.layout().entries()) {
    const auto v = as_f64(f.at(p.name));
    ASSERT_EQ(v.size(), p.size) << p.name;
    std::copy(v.begin(), v.end(), model.params().begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  const auto x64 = as_f64(f.at("x"));
  const std::vector<T> x(x64.begin(), x64.end());
  ModelInput<T> in;
  in.x = x.data();
  in.batch = input[0].get<int>();
  ModelWorkspace<T> ws;
  const T* logits = model.forward(in, ws, true);
  const std::vector<T> out(logits, logits + static_cast<std::size_t>(in.batch) * 10);
  EXPECT_LT(rel_error(out, as_f64(f.at("y"))), tol) << "logits";
  const auto dy64 = as_f64(f.at("dy"));
  const std::vector<T> dy(dy64.begin(), dy64.end());
  std::vector<T> grads(model.num_params(), T(0));
  model.backward(in, ws, dy.data(), grads.data());
  for (const ParamInfo& p : model.layout().entries()) {
    const std::vector<T> g(grads.begin() + static_cast<std::ptrdiff_t>(p.offset),
                           grads.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size));
    EXPECT_LT(rel_error(g, as_f64(f.at("grad." + p.name))), tol) << "grad." << p.name;
  }
}

class GoldenConvModel : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConvModel, DoubleMatchesPyTorch) {
  run_model<double>(GetParam(), 1e-9);
}
TEST_P(GoldenConvModel, FloatMatchesPyTorch) {
  run_model<float>(GetParam(), 1e-5);
}

// Batches of 3 and of 11 (past the 8 rows from which the batched paths take over).
INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenConvModel,
                         ::testing::Values("classifier", "classifier_b11"));

class GoldenConv : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConv, DoubleMatchesPyTorch) {
  run_fixture<double>(GetParam(), 1e-9);
}
TEST_P(GoldenConv, FloatMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenConv,
                         ::testing::Values("lenet", "strided", "pointwise", "classifier",
                                           "classifier_b11"));

TEST(GoldenConvFixtures, EveryFixtureIsTested) {
  EXPECT_EQ(
      golden::fixture_files(kConvFixtures),
      (std::vector<std::string>{"classifier", "classifier_b11", "lenet", "pointwise", "strided"}));
}

}  // namespace
}  // namespace recur
