// Golden tests: recur's convolutional layers chained as torch.nn.Sequential against PyTorch, on
// the fixtures of tests/golden/make_conv_fixtures.py (LeNet-5's feature extractor; strides,
// padding, no bias, tanh; 1x1 and full-size kernels). The layers are built by their factories
// under the Sequential's names ("0", "3", ...), load the fixture's state_dict, and must give its
// output and the gradients of sum(y * dy) for every parameter and the input:
// err(a, ref) = max|a - ref| / max|ref| per tensor, 1e-9 in double, 1e-5 in float.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/conv_layers.hpp"
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
std::unique_ptr<Layer<T>> build(const LayerSpec& spec, const ActShape& in, const std::string& name,
                                ParamLayout& layout) {
  const std::string where = "layer " + name;
  if (spec.type == "conv2d") return make_conv2d<T>(spec, in, name, layout, where);
  if (spec.type == "maxpool2d") return make_maxpool2d<T>(spec, in, name, layout, where);
  if (spec.type == "flatten") return make_flatten<T>(spec, in, name, layout, where);
  return make_activation<T>(spec, in, name, layout, where);
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
    layers.push_back(build<T>(spec, shape, std::to_string(layers.size()), layout));
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

class GoldenConv : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConv, DoubleMatchesPyTorch) {
  run_fixture<double>(GetParam(), 1e-9);
}
TEST_P(GoldenConv, FloatMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenConv, ::testing::Values("lenet", "strided", "pointwise"));

TEST(GoldenConvFixtures, EveryFixtureIsTested) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kConvFixtures))
    if (e.path().extension() == ".safetensors") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"lenet", "pointwise", "strided"}));
}

}  // namespace
}  // namespace recur
