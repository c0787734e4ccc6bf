// The packed path leaves out h_{-1}'s product on the first step when the stack starts from zero
// (no h0): every term of it is 0 * w, so the result must be the bits of multiplying the zeros.
// Checked against a forward given an explicit zero h0 (and c0), which runs the whole product.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nn/recurrent.hpp"
#include "recur/cell.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

TEST(ZeroState, SkippingTheFirstRecurrentProductKeepsTheBits) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh}) {
    for (int B : {1, 3, 12}) {
      for (bool training : {false, true}) {
        SCOPED_TRACE(to_string(cell) + ", batch " + std::to_string(B) +
                     (training ? ", training" : ", inference"));
        const int S = 5, I = 7, H = 40, D = 2;
        nn::StackSpec spec;
        spec.cell = cell;
        spec.input_size = I;
        spec.hidden = H;
        spec.directions = D;
        ParamLayout layout;
        nn::RecurrentStack<float> stack(spec, layout, "rnn.");
        Rng rng(21);
        std::vector<float> params(layout.total());
        for (float& v : params) v = static_cast<float>(rng.uniform(-0.4, 0.4));
        std::vector<float> x(static_cast<std::size_t>(S) * B * I);
        for (float& v : x) v = static_cast<float>(rng.uniform(-1, 1));
        std::vector<float> zeros(static_cast<std::size_t>(D) * B * H, 0.0f);
        nn::StackPacked packed;
        stack.prepare(params.data(), packed, training);
        nn::StackWorkspace<float> skipped, multiplied;
        const float* c0 = cell == CellKind::lstm ? zeros.data() : nullptr;
        stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, training, nullptr, skipped,
                      nullptr, &packed);
        stack.forward(params.data(), x.data(), S, B, zeros.data(), c0, training, nullptr,
                      multiplied, nullptr, &packed);
        const std::size_t out = static_cast<std::size_t>(S) * B * D * H;
        EXPECT_EQ(std::memcmp(skipped.layers.back().out.data(), multiplied.layers.back().out.data(),
                              out * sizeof(float)),
                  0);
        EXPECT_EQ(std::memcmp(skipped.hn.data(), multiplied.hn.data(), zeros.size() * 4), 0);
      }
    }
  }
}

}  // namespace
}  // namespace recur
