// The convolutional layers (src/nn/conv_layers.cpp) and their kernels (src/kernels/conv.cpp):
//  - the fast kernels (im2col + GEMM, direct, pooling) against the naive reference loops, float
//    and double, over strides, paddings, 1x1 and full-size kernels;
//  - finite-difference gradient checks (double) of every layer through the Layer interface:
//    parameters and input, with the loss L = sum(out * r) for a fixed random r;
//  - closed forms (a 1x1 convolution is an affine map; ties in a pooling window);
//  - PyTorch's initialisation bounds and per-tensor determinism; the errors for bad specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/reference/conv_reference.hpp"
#include "nn/conv_layers.hpp"
#include "recur/error.hpp"
#include "support/finite_difference.hpp"

namespace recur {
namespace {

using kernels::Conv2dDims;

template <typename T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform(-scale, scale));
  return v;
}

template <typename T>
double max_rel_error(const std::vector<T>& a, const std::vector<T>& ref) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

Conv2dDims dims(int B, int C, int H, int W, int O, int k, int s, int p) {
  Conv2dDims d;
  d.batch = B;
  d.in_channels = C;
  d.height = H;
  d.width = W;
  d.out_channels = O;
  d.kernel = k;
  d.stride = s;
  d.padding = p;
  return d;
}

std::vector<Conv2dDims> conv_cases() {
  return {dims(2, 3, 7, 6, 4, 3, 1, 1),    dims(2, 1, 28, 28, 6, 5, 1, 2),
          dims(3, 6, 14, 14, 16, 5, 1, 0), dims(2, 2, 9, 7, 3, 3, 2, 1),
          dims(1, 3, 8, 8, 2, 3, 3, 2),    dims(2, 3, 5, 5, 2, 1, 1, 0),
          dims(2, 2, 5, 4, 3, 7, 1, 2),    dims(1, 1, 1, 1, 1, 1, 1, 0)};
}

template <typename T>
void check_conv_kernels(double tol) {
  for (const Conv2dDims& d : conv_cases()) {
    SCOPED_TRACE(::testing::Message()
                 << "C" << d.in_channels << " " << d.height << "x" << d.width << " O"
                 << d.out_channels << " k" << d.kernel << " s" << d.stride << " p" << d.padding);
    const std::size_t nx = static_cast<std::size_t>(d.batch) * d.in_channels * d.height * d.width;
    const std::size_t ny =
        static_cast<std::size_t>(d.batch) * d.out_channels * d.out_height() * d.out_width();
    const std::size_t nw =
        static_cast<std::size_t>(d.out_channels) * d.in_channels * d.kernel * d.kernel;
    const auto x = random_vector<T>(nx, 1), w = random_vector<T>(nw, 2),
               b = random_vector<T>(d.out_channels, 3), dy = random_vector<T>(ny, 4);
    std::vector<T> y(ny), y_ref(ny), y_direct(ny), col(d.col_size()), dcol(d.col_size());
    kernels::conv2d_forward(d, x.data(), w.data(), b.data(), y.data(), col.data());
    kernels::conv2d_forward_direct(d, x.data(), w.data(), b.data(), y_direct.data());
    kernels::reference::conv2d_forward(d, x.data(), w.data(), b.data(), y_ref.data());
    EXPECT_LT(max_rel_error(y, y_ref), tol) << "im2col forward";
    EXPECT_LT(max_rel_error(y_direct, y_ref), tol) << "direct forward";
    // Gradients start from non-zero values: dw and db must be added to, dx overwritten.
    std::vector<T> dx(nx, T(7)), dw(nw, T(0.5)), db(d.out_channels, T(-1));
    std::vector<T> dx_ref(nx, T(-3)), dw_ref(nw, T(0.5)), db_ref(d.out_channels, T(-1));
    kernels::conv2d_backward(d, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(),
                             col.data(), dcol.data());
    kernels::reference::conv2d_backward(d, x.data(), w.data(), dy.data(), dx_ref.data(),
                                        dw_ref.data(), db_ref.data());
    EXPECT_LT(max_rel_error(dx, dx_ref), tol) << "dx";
    EXPECT_LT(max_rel_error(dw, dw_ref), tol) << "dw";
    EXPECT_LT(max_rel_error(db, db_ref), tol) << "db";
    // No bias, no dx.
    std::vector<T> y_nb(ny), y_nb_ref(ny), dw2(nw, T(0)), dw2_ref(nw, T(0));
    kernels::conv2d_forward(d, x.data(), w.data(), static_cast<const T*>(nullptr), y_nb.data(),
                            col.data());
    kernels::reference::conv2d_forward(d, x.data(), w.data(), static_cast<const T*>(nullptr),
                                       y_nb_ref.data());
    EXPECT_LT(max_rel_error(y_nb, y_nb_ref), tol) << "forward without bias";
    kernels::conv2d_backward(d, x.data(), w.data(), dy.data(), static_cast<T*>(nullptr), dw2.data(),
                             static_cast<T*>(nullptr), col.data(), dcol.data());
    kernels::reference::conv2d_backward(d, x.data(), w.data(), dy.data(), static_cast<T*>(nullptr),
                                        dw2_ref.data(), static_cast<T*>(nullptr));
    EXPECT_LT(max_rel_error(dw2, dw2_ref), tol) << "dw without dx and db";
  }
}

TEST(ConvKernels, FastMatchesReferenceDouble) {
  check_conv_kernels<double>(1e-12);
}
TEST(ConvKernels, FastMatchesReferenceFloat) {
  check_conv_kernels<float>(1e-5);
}

TEST(ConvKernels, Im2colPlacesPaddingAndPixels) {
  // One 2x2 image, kernel 2, padding 1: a 3x3 output; row (kh=0, kw=0) sees the image shifted
  // down-right with zeros on the top row and left column.
  const Conv2dDims d = dims(1, 1, 2, 2, 1, 2, 1, 1);
  const std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> col(d.col_size(), -1);
  kernels::im2col(d, x.data(), col.data());
  const std::vector<double> row0(col.begin(), col.begin() + 9);
  EXPECT_EQ(row0, (std::vector<double>{0, 0, 0, 0, 1, 2, 0, 3, 4}));
  const std::vector<double> row3(col.begin() + 27, col.begin() + 36);
  EXPECT_EQ(row3, (std::vector<double>{1, 2, 0, 3, 4, 0, 0, 0, 0}));
  // col2im is its adjoint: <im2col(x), c> == <x, col2im(c)>.
  const auto c = random_vector<double>(d.col_size(), 9);
  std::vector<double> back(4);
  kernels::col2im(d, c.data(), back.data());
  double lhs = 0, rhs = 0;
  for (std::size_t i = 0; i < col.size(); ++i) lhs += col[i] * c[i];
  for (std::size_t i = 0; i < 4; ++i) rhs += x[i] * back[i];
  EXPECT_NEAR(lhs, rhs, 1e-12);
}

template <typename T>
void check_pool_kernels() {
  const Conv2dDims cases[] = {dims(2, 3, 8, 8, 0, 2, 2, 0), dims(2, 2, 9, 7, 0, 3, 1, 1),
                              dims(1, 2, 7, 7, 0, 3, 2, 1), dims(1, 1, 5, 6, 0, 2, 3, 0)};
  for (const Conv2dDims& d : cases) {
    const std::size_t nx = static_cast<std::size_t>(d.batch) * d.in_channels * d.height * d.width;
    const std::size_t ny =
        static_cast<std::size_t>(d.batch) * d.in_channels * d.out_height() * d.out_width();
    // Small integers: many ties, so the first-maximum rule is exercised; results are exact.
    Rng rng(5);
    std::vector<T> x(nx);
    for (auto& v : x) v = static_cast<T>(static_cast<int>(rng.below(4)) - 2);
    const auto dy = random_vector<T>(ny, 6);
    std::vector<T> y(ny), y_ref(ny), dx(nx, T(9)), dx_ref(nx, T(-9));
    kernels::maxpool2d_forward(d, x.data(), y.data());
    kernels::reference::maxpool2d_forward(d, x.data(), y_ref.data());
    EXPECT_EQ(y, y_ref);
    kernels::maxpool2d_backward(d, x.data(), dy.data(), dx.data());
    kernels::reference::maxpool2d_backward(d, x.data(), dy.data(), dx_ref.data());
    EXPECT_EQ(dx, dx_ref);
  }
}

TEST(ConvKernels, MaxPoolMatchesReference) {
  check_pool_kernels<float>();
  check_pool_kernels<double>();
}

TEST(ConvKernels, MaxPoolTieGoesToFirstMaximum) {
  // One 2x2 window holding 5 twice: the gradient goes to the first (row-major) only.
  const Conv2dDims d = dims(1, 1, 2, 2, 0, 2, 2, 0);
  const std::vector<double> x = {1, 5, 5, 2}, dy = {3};
  std::vector<double> y(1), dx(4);
  kernels::maxpool2d_forward(d, x.data(), y.data());
  kernels::maxpool2d_backward(d, x.data(), dy.data(), dx.data());
  EXPECT_EQ(y[0], 5);
  EXPECT_EQ(dx, (std::vector<double>{0, 3, 0, 0}));
}

// ---- layers ----

ActShape image(int c, int h, int w) {
  return ActShape{ActKind::image, c, h, w, false};
}

LayerSpec spec_of(const std::string& type, int size = 0, int kernel = 0, int stride = 0,
                  int padding = 0) {
  LayerSpec s;
  s.type = type;
  s.size = size;
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  return s;
}

template <typename T>
std::unique_ptr<Layer<T>> make(const LayerSpec& spec, const ActShape& in, ParamLayout& layout,
                               const std::string& name = "0") {
  if (spec.type == "conv2d") return make_conv2d<T>(spec, in, name, layout, "layer 0");
  if (spec.type == "maxpool2d") return make_maxpool2d<T>(spec, in, name, layout, "layer 0");
  if (spec.type == "flatten") return make_flatten<T>(spec, in, name, layout, "layer 0");
  return make_activation<T>(spec, in, name, layout, "layer 0");
}

std::size_t elements(const ActShape& s, int batch, int steps) {
  return s.per_row() * batch * (s.kind == ActKind::sequence ? steps : 1);
}

// Central differences of L = sum(out * r) against the layer's backward, for every parameter and
// input element. Inputs of pooling/relu layers are kept away from ties and kinks by the caller.
void gradient_check(const LayerSpec& spec, const ActShape& in_shape, int batch,
                    const std::vector<double>& x_in = {}) {
  ParamLayout layout;
  auto layer = make<double>(spec, in_shape, layout);
  std::vector<double> params(layout.total());
  layer->init(params.data(), 11);
  // Not PyTorch's small weights: order-1 values make every gradient term visible.
  for (std::size_t i = 0; i < params.size(); ++i) params[i] *= 3.0;
  const int steps = 3;
  SeqInfo seq = SeqInfo{};
  seq.steps = steps;
  seq.batch = batch;
  seq.lengths.assign(batch, steps);
  seq.batch_sizes.assign(steps, batch);
  LayerContext<double> ctx;
  ctx.params = params.data();
  ctx.batch = batch;
  ctx.seq = &seq;
  ctx.train = true;
  const std::size_t nx = elements(in_shape, batch, steps);
  const std::size_t ny = elements(layer->output_shape(), batch, steps);
  std::vector<double> x = x_in.empty() ? random_vector<double>(nx, 21) : x_in;
  ASSERT_EQ(x.size(), nx);
  const auto r = random_vector<double>(ny, 22);
  auto ws = layer->make_workspace();
  auto loss = [&]() {
    std::vector<double> y(ny);
    layer->forward(ctx, nullptr, x.data(), y.data(), ws.get());
    double l = 0;
    for (std::size_t i = 0; i < ny; ++i) l += y[i] * r[i];
    return l;
  };
  std::vector<double> y(ny), dx(nx, 123.0), grads(layout.total(), 0.0);
  layer->forward(ctx, nullptr, x.data(), y.data(), ws.get());
  layer->backward(ctx, nullptr, x.data(), y.data(), r.data(), dx.data(), grads.data(), ws.get());
  const double h = 1e-5;
  auto check = [&](std::vector<double>& v, const std::vector<double>& analytic,
                   const std::string& what) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double numeric = test::central_difference(v[i], h, loss);
      ASSERT_LE(std::fabs(analytic[i] - numeric),
                1e-6 * (std::fabs(analytic[i]) + std::fabs(numeric)) + 1e-9)
          << spec.type << " " << what << "[" << i << "]: analytic " << analytic[i] << ", numeric "
          << numeric;
    }
  };
  check(params, grads, "param");
  check(x, dx, "input");
  // Parameter gradients are added to what grads held.
  if (!grads.empty()) {
    std::vector<double> twice(grads);
    layer->backward(ctx, nullptr, x.data(), y.data(), r.data(), nullptr, twice.data(), ws.get());
    for (std::size_t i = 0; i < grads.size(); ++i) ASSERT_NEAR(twice[i], 2 * grads[i], 1e-12);
  }
}

// Distinct values spaced well beyond the finite-difference step: no ties in a pooling window,
// none within 1e-5 of a relu kink.
std::vector<double> distinct_inputs(std::size_t n, std::uint64_t seed) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = -1.0 + 2.0 * (static_cast<double>(i) + 0.25) / n;
  Rng(seed).shuffle(v.data(), n);
  return v;
}

TEST(ConvLayers, GradientCheckConv2d) {
  gradient_check(spec_of("conv2d", 3, 3, 1, 1), image(2, 5, 4), 2);
  gradient_check(spec_of("conv2d", 2, 3, 2, 1), image(3, 7, 6), 2);
  LayerSpec no_bias = spec_of("conv2d", 2, 2, 1, 0);
  no_bias.bias = false;
  gradient_check(no_bias, image(2, 4, 4), 3);
}

TEST(ConvLayers, GradientCheckMaxPool) {
  gradient_check(spec_of("maxpool2d", 0, 2), image(2, 6, 6), 2, distinct_inputs(144, 1));
  gradient_check(spec_of("maxpool2d", 0, 3, 2, 1), image(2, 7, 5), 2, distinct_inputs(140, 2));
}

TEST(ConvLayers, GradientCheckFlattenAndActivations) {
  gradient_check(spec_of("flatten"), image(3, 2, 4), 2);
  gradient_check(spec_of("relu"), image(2, 3, 3), 2, distinct_inputs(36, 3));
  gradient_check(spec_of("tanh"), image(2, 3, 3), 2);
  // Activations on vectors and (time-major) sequences too.
  gradient_check(spec_of("relu"), ActShape{ActKind::vector, 5, 0, 0, false}, 3,
                 distinct_inputs(15, 4));
  gradient_check(spec_of("tanh"), ActShape{ActKind::sequence, 4, 0, 0, false}, 2);
}

TEST(ConvLayers, PointwiseConvolutionIsAnAffineMap) {
  // 1x1 conv, 2 -> 1 channels, weight (2, -1), bias 0.5: y = 2 x0 - x1 + 0.5 at every pixel.
  ParamLayout layout;
  auto layer = make<double>(spec_of("conv2d", 1, 1), image(2, 2, 3), layout);
  std::vector<double> params = {2.0, -1.0, 0.5};
  ASSERT_EQ(layout.total(), 3u);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};
  std::vector<double> y(6);
  LayerContext<double> ctx;
  ctx.params = params.data();
  ctx.batch = 1;
  layer->forward(ctx, nullptr, x.data(), y.data(), nullptr);  // no workspace: the layer makes one
  EXPECT_EQ(y, (std::vector<double>{-7.5, -15.5, -23.5, -31.5, -39.5, -47.5}));
}

TEST(ConvLayers, ShapesAndPyTorchNames) {
  ParamLayout layout;
  auto conv = make<float>(spec_of("conv2d", 6, 5, 0, 2), image(1, 28, 28), layout, "features.0");
  EXPECT_EQ(conv->output_shape().kind, ActKind::image);
  EXPECT_EQ(conv->output_shape().features, 6);
  EXPECT_EQ(conv->output_shape().height, 28);
  auto pool = make<float>(spec_of("maxpool2d", 0, 2), conv->output_shape(), layout, "features.2");
  EXPECT_EQ(pool->output_shape().height, 14);
  EXPECT_EQ(pool->output_shape().width, 14);
  auto conv2 = make<float>(spec_of("conv2d", 16, 5, 2), pool->output_shape(), layout, "features.3");
  EXPECT_EQ(conv2->output_shape().height, 5);  // (14 - 5) / 2 + 1
  auto flat = make<float>(spec_of("flatten"), conv2->output_shape(), layout, "features.4");
  EXPECT_EQ(flat->output_shape().kind, ActKind::vector);
  EXPECT_EQ(flat->output_shape().features, 16 * 5 * 5);
  ASSERT_EQ(layout.entries().size(), 4u);
  EXPECT_EQ(layout.entries()[0].name, "features.0.weight");
  EXPECT_EQ(layout.entries()[0].shape, (std::vector<int64_t>{6, 1, 5, 5}));
  EXPECT_EQ(layout.entries()[1].name, "features.0.bias");
  EXPECT_EQ(layout.entries()[2].name, "features.3.weight");
  EXPECT_EQ(layout.entries()[2].shape, (std::vector<int64_t>{16, 6, 5, 5}));
  EXPECT_EQ(layout.entries()[3].shape, (std::vector<int64_t>{16}));
}

TEST(ConvLayers, PyTorchInitBoundsAndPerTensorStreams) {
  ParamLayout layout;
  auto conv = make<double>(spec_of("conv2d", 8, 3), image(4, 6, 6), layout, "c");
  std::vector<double> a(layout.total()), b(layout.total());
  conv->init(a.data(), 42);
  conv->init(b.data(), 42);
  EXPECT_EQ(a, b);
  const double bound = 1.0 / std::sqrt(4.0 * 3 * 3);  // 1/sqrt(fan_in), weight and bias
  double wmax = 0, bmax = 0;
  for (std::size_t i = 0; i < 288; ++i) wmax = std::max(wmax, std::fabs(a[i]));
  for (std::size_t i = 288; i < 296; ++i) bmax = std::max(bmax, std::fabs(a[i]));
  EXPECT_LE(wmax, bound);
  EXPECT_GT(wmax, 0.9 * bound);  // uniform over the whole range, not a narrower one
  EXPECT_LE(bmax, bound);
  EXPECT_GT(bmax, 0.5 * bound);
  // Another seed, or another name, draws other numbers.
  conv->init(b.data(), 43);
  EXPECT_NE(a, b);
  ParamLayout other;
  auto renamed = make<double>(spec_of("conv2d", 8, 3), image(4, 6, 6), other, "d");
  renamed->init(b.data(), 42);
  EXPECT_NE(a, b);
}

void expect_error(const LayerSpec& spec, const ActShape& in, const std::string& reason_part) {
  ParamLayout layout;
  try {
    make<float>(spec, in, layout);
    ADD_FAILURE() << spec.type << ": no error, expected '" << reason_part << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layer 0");
    EXPECT_NE(e.reason().find(reason_part), std::string::npos) << e.what();
  }
}

TEST(ConvLayers, BadSpecsNameTheFieldAndReason) {
  const ActShape seq{ActKind::sequence, 28, 0, 0, false};
  expect_error(spec_of("conv2d", 4, 3), seq, "conv2d needs an image input");
  expect_error(spec_of("maxpool2d", 0, 2), ActShape{ActKind::vector, 8, 0, 0, false},
               "maxpool2d needs an image input");
  expect_error(spec_of("flatten"), seq, "flatten needs an image input");
  expect_error(spec_of("conv2d", 0, 3), image(1, 8, 8), "output channels");
  expect_error(spec_of("conv2d", 4, 0), image(1, 8, 8), "kernel must be at least 1");
  expect_error(spec_of("conv2d", 4, 3, -1), image(1, 8, 8), "stride");
  expect_error(spec_of("conv2d", 4, 3, 1, -2), image(1, 8, 8), "padding must not be negative");
  expect_error(spec_of("conv2d", 4, 9, 1, 0), image(1, 8, 8),
               "kernel 9 is larger than the padded input 8x8");
  expect_error(spec_of("maxpool2d", 0, 2, 0, 2), image(1, 8, 8), "at most half the kernel");
  LayerSpec ortho = spec_of("conv2d", 4, 3);
  ortho.init.kind = InitKind::orthogonal;
  expect_error(ortho, image(1, 8, 8), "orthogonal");
  expect_error(spec_of("relu"), ActShape{ActKind::sequence, 1, 0, 0, true}, "token ids");
  // Sizes from a file cannot overflow the kernels' arithmetic.
  expect_error(spec_of("conv2d", 4, 3, 1, 1 << 30), image(1, 8, 8), "at most 1024");
  expect_error(spec_of("maxpool2d", 0, 2000000000), image(1, 8, 8), "at most 1024");
  expect_error(spec_of("conv2d", 1 << 20, 3), image(1, 8, 8), "at most 65536");
  expect_error(spec_of("flatten"), image(1 << 16, 16384, 16384), "values per image");
  expect_error(spec_of("conv2d", 4, 3), image(0, 8, 8), "channels and sides");
  expect_error(spec_of("conv2d", 60000, 7, 1, 3), image(600, 100, 100), "over the limit");
}

}  // namespace
}  // namespace recur
