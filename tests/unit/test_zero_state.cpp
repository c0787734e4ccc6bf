// The packed path leaves out h_{-1}'s product on the first step when the stack starts from zero
// (no h0): every term of it is 0 * w, so the result must be the bits of multiplying the zeros.
// Checked against a forward given an explicit zero h0 (and c0), which runs the whole product.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nn/recurrent.hpp"
#include "recur/cell.hpp"
#include "support/random_stack.hpp"

namespace recur {
namespace {

TEST(ZeroState, SkippingTheFirstRecurrentProductKeepsTheBits) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh}) {
    for (int B : {1, 3, 12}) {
      for (bool training : {false, true}) {
        SCOPED_TRACE(to_string(cell) + ", batch " + std::to_string(B) +
                     (training ? ", training" : ", inference"));
        const int S = 5, I = 7, H = 40, D = 2;
        test::RandomStack r(cell, I, H, D, 21, 0.4);
        const nn::RecurrentStack<float>& stack = *r.stack;
        const std::vector<float>& params = r.params;
        const std::vector<float> x = r.inputs(static_cast<std::size_t>(S) * B * I);
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
