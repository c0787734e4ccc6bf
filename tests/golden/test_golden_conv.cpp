// Golden tests: recur's convolutional layers chained as torch.nn.Sequential against PyTorch, on
// the fixtures of tests/golden/make_conv_fixtures.py (LeNet-5's feature extractor; strides,
// padding, no bias, tanh; 1x1 and full-size kernels; a whole small CNN classifier). The layers
// are built by make_layer under the Sequential's names ("0", "3", ...), load the fixture's
// state_dict, and must give its output and the gradients of sum(y * dy) for every parameter and
// the input: err(a, ref) = max|a - ref| / max|ref| per tensor, 1e-9 in double, 1e-5 in float.
// The classifier also runs as a Model (recur/layers.hpp) built from its ModelSpec.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recur/layers.hpp"
#include "recur/safetensors.hpp"

namespace recur {
namespace {

const std::string kConvFixtures = std::string(RECUR_TEST_DIR) + "/golden/conv";

std::vector<double> f64(const StoredTensor& t) {
  EXPECT_EQ(t.dtype, DType::F64);
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), t.bytes.data(), v.size() * sizeof(double));
  return v;
}

template <typename T>
double rel_error(const std::vector<T>& a, const std::vector<double>& ref) {
  EXPECT_EQ(a.size(), ref.size());
  double diff = 0, scale = 0;
  for (std::size_t k = 0; k < ref.size() && k < a.size(); ++k) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[k]) - ref[k]));
    scale = std::max(scale, std::fabs(ref[k]));
  }
  return diff / std::max(scale, 1e-30);
}

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
    const auto v = f64(t);
    std::copy(v.begin(), v.end(), params.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  LayerContext<T> ctx;
  ctx.params = params.data();
  ctx.batch = B;
  ctx.train = true;
  // acts[i] is layer i's input; acts.back() the output.
  std::vector<std::vector<T>> acts;
  const auto x = f64(f.at("x"));
  acts.emplace_back(x.begin(), x.end());
  std::vector<std::unique_ptr<LayerWorkspace<T>>> ws;
  for (const auto& layer : layers) {
    ws.push_back(layer->make_workspace());
    acts.emplace_back(static_cast<std::size_t>(B) * layer->output_shape().per_row());
    layer->forward(ctx, nullptr, acts[acts.size() - 2].data(), acts.back().data(), ws.back().get());
  }
  EXPECT_LT(rel_error(acts.back(), f64(f.at("y"))), tol) << "y";
  const auto dy = f64(f.at("dy"));
  std::vector<T> grad(dy.begin(), dy.end()), grads(layout.total(), T(0));
  for (std::size_t i = layers.size(); i-- > 0;) {
    std::vector<T> din(acts[i].size());
    layers[i]->backward(ctx, nullptr, acts[i].data(), acts[i + 1].data(), grad.data(), din.data(),
                        grads.data(), ws[i].get());
    grad = std::move(din);
  }
  EXPECT_LT(rel_error(grad, f64(f.at("grad.x"))), tol) << "grad.x";
  for (const ParamInfo& p : layout.entries()) {
    const std::vector<T> g(grads.begin() + static_cast<std::ptrdiff_t>(p.offset),
                           grads.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size));
    EXPECT_LT(rel_error(g, f64(f.at("grad." + p.name))), tol) << "grad." << p.name;
  }
}

// The classifier fixture as a Model: logits, and the gradients of sum(logits * dy).
template <typename T>
void run_model(double tol) {
  const SafetensorsFile f = read_safetensors(kConvFixtures + "/classifier.safetensors");
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
    const auto v = f64(f.at(p.name));
    ASSERT_EQ(v.size(), p.size) << p.name;
    std::copy(v.begin(), v.end(), model.params().begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  const auto x64 = f64(f.at("x"));
  const std::vector<T> x(x64.begin(), x64.end());
  ModelInput<T> in;
  in.x = x.data();
  in.batch = input[0].get<int>();
  ModelWorkspace<T> ws;
  const T* logits = model.forward(in, ws, true);
  const std::vector<T> out(logits, logits + static_cast<std::size_t>(in.batch) * 10);
  EXPECT_LT(rel_error(out, f64(f.at("y"))), tol) << "logits";
  const auto dy64 = f64(f.at("dy"));
  const std::vector<T> dy(dy64.begin(), dy64.end());
  std::vector<T> grads(model.num_params(), T(0));
  model.backward(in, ws, dy.data(), grads.data());
  for (const ParamInfo& p : model.layout().entries()) {
    const std::vector<T> g(grads.begin() + static_cast<std::ptrdiff_t>(p.offset),
                           grads.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size));
    EXPECT_LT(rel_error(g, f64(f.at("grad." + p.name))), tol) << "grad." << p.name;
  }
}

TEST(GoldenConvModel, DoubleMatchesPyTorch) {
  run_model<double>(1e-9);
}
TEST(GoldenConvModel, FloatMatchesPyTorch) {
  run_model<float>(1e-5);
}

class GoldenConv : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConv, DoubleMatchesPyTorch) {
  run_fixture<double>(GetParam(), 1e-9);
}
TEST_P(GoldenConv, FloatMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenConv,
                         ::testing::Values("lenet", "strided", "pointwise", "classifier"));

TEST(GoldenConvFixtures, EveryFixtureIsTested) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kConvFixtures))
    if (e.path().extension() == ".safetensors") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"classifier", "lenet", "pointwise", "strided"}));
}

}  // namespace
}  // namespace recur
