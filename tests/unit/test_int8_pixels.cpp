// An int8 recurrent layer given pixel bytes (ModelInput::pixels): a byte p is x = p / 255
// quantized with the zero point 0 and the scale 1 / 255, so the input side carries no rounding at
// all; only the weights are quantized. Checked against the fp64 product of the dequantized
// weights with p / 255, for every int8 kernel this CPU has, with rows of 6 bytes (copied and
// padded) and of 8 (read in place).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/int8_gemm.hpp"
#include "kernels/reference/int8_reference.hpp"
#include "nn/recurrent.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "support/random_stack.hpp"

namespace recur {
namespace {

using kernels::Int8Kernel;

TEST(Int8Pixels, TheFirstStepIsTheExactInputTimesTheQuantizedWeights) {
  for (Int8Kernel kernel : {Int8Kernel::portable, Int8Kernel::avx_vnni, Int8Kernel::avx512_vnni,
                            Int8Kernel::amx_int8}) {
    if (!kernels::int8_kernel_supported(kernel)) continue;
    const Int8Kernel before = kernels::set_int8_kernel(kernel);
    for (int I : {6, 8}) {
      SCOPED_TRACE(kernels::to_string(kernel) + ", " + std::to_string(I) + " inputs");
      const int H = 12, B = 5;
      test::RandomStack r(CellKind::rnn_tanh, I, H, 1, 17, 0.6);
      const nn::RecurrentStack<float>& stack = *r.stack;
      const std::vector<float>& params = r.params;
      std::vector<std::uint8_t> px(static_cast<std::size_t>(B) * I);
      for (auto& p : px) p = static_cast<std::uint8_t>(r.rng.below(256));
      std::vector<float> x(px.size());
      for (std::size_t k = 0; k < px.size(); ++k) x[k] = static_cast<float>(px[k]) / 255.f;

      nn::StackPacked packed;
      ASSERT_TRUE(stack.prepare_int8(params.data(), packed));
      ASSERT_TRUE(stack.reads_pixels(packed));
      nn::StackWorkspace<float> by_pixels, by_floats;
      stack.forward(params.data(), nullptr, 1, B, nullptr, nullptr, false, nullptr, by_pixels,
                    nullptr, &packed, px.data());
      stack.forward(params.data(), x.data(), 1, B, nullptr, nullptr, false, nullptr, by_floats,
                    nullptr, &packed);

      // h_1 = tanh(W_ih x + b_ih + b_hh) (h_0 = 0), W_ih quantized per row, x exact, in fp64.
      const nn::DirectionParams& d = stack.direction_params(0, 0);
      double worst_pixels = 0, worst_floats = 0;
      std::vector<int> q;
      for (int n = 0; n < H; ++n) {
        const float s = kernels::reference::quantize_row(params.data() + d.w_ih + n * I, I, q);
        for (int b = 0; b < B; ++b) {
          double z = static_cast<double>(params[d.b_ih + n]) + params[d.b_hh + n];
          for (int k = 0; k < I; ++k) z += static_cast<double>(q[k]) * s * (px[b * I + k] / 255.0);
          const double want = std::tanh(z);
          worst_pixels =
              std::max(worst_pixels, std::fabs(by_pixels.layers.back().out[b * H + n] - want));
          worst_floats =
              std::max(worst_floats, std::fabs(by_floats.layers.back().out[b * H + n] - want));
        }
      }
      EXPECT_LT(worst_pixels, 2e-6);
      // Floats are quantized per row: an error of the input's own on top, which pixels lack.
      EXPECT_GT(worst_floats, 20 * worst_pixels);
    }
    kernels::set_int8_kernel(before);
  }
}

// ModelInput::pixels on any model: the first layer reads the bytes when it can (an int8
// recurrent layer), else the model turns them into the view's floats, p / 255.f: then the same
// bits as giving those floats.
TEST(Int8Pixels, AModelThatReadsFloatsGetsTheViewsFloats) {
  const int S = 5, F = 7, B = 3;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(S) * B * F);
  Rng rng(4);
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.below(256));
  std::vector<float> x(px.size());
  for (std::size_t k = 0; k < px.size(); ++k) x[k] = static_cast<float>(px[k]) / 255.f;
  const SeqInfo seq = SeqInfo::fixed(S, B);
  for (const char* layers : {"lstm 8, pool last, linear", "linear 6, gru 8, pool mean, linear"}) {
    for (PrepareFor use : {PrepareFor::inference, PrepareFor::int8}) {
      ModelSpec spec;
      spec.input = ActShape{ActKind::sequence, F};
      spec.num_classes = 4;
      spec.layers = parse_layer_list(layers, "test");
      Model<float> model(spec);
      model.init(2);
      model.prepare(use);
      const bool reads = model.reads_pixels();
      EXPECT_EQ(reads, use == PrepareFor::int8 && layers[0] == 'l' && layers[1] == 's') << layers;
      ModelInput<float> by_floats, by_pixels;
      by_floats.x = x.data();
      by_pixels.pixels = px.data();
      by_floats.batch = by_pixels.batch = B;
      by_floats.seq = by_pixels.seq = &seq;
      ModelWorkspace<float> wf, wp;
      const float* a = model.forward(by_floats, wf, false);
      const float* b = model.forward(by_pixels, wp, false);
      const std::vector<float> la(a, a + B * 4), lb(b, b + B * 4);
      if (reads) {
        for (std::size_t k = 0; k < la.size(); ++k) EXPECT_NEAR(la[k], lb[k], 0.05f) << layers;
      } else {
        EXPECT_EQ(la, lb) << layers << (use == PrepareFor::int8 ? ", int8" : ", fp32");
      }
    }
  }
}

}  // namespace
}  // namespace recur
