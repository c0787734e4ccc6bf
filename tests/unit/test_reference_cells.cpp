// The fast recurrent stack against the reference cells stepped one timestep at a time in double
// precision, on both of its paths: a batch below 8 rows (BLAS input projection of all steps, BLAS
// step GEMMs) and a batch of 8 or more (weights packed once, each step's GEMM doing input side,
// recurrent side and biases), with fused vectorized cell kernels and weight gradients merged
// across time on both. Tolerance: 2e-5 of each tensor's largest magnitude, float32 rounding over
// 7 steps with recur's own exp (relative error < 3e-7 per call) stays far below it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/reference/cell_reference.hpp"
#include "nn/recurrent.hpp"

namespace recur {
namespace {

double max_error(const std::vector<double>& ref, const float* got, size_t n, size_t stride = 1,
                 size_t width = 0) {
  double diff = 0, scale = 1e-12;
  for (size_t k = 0; k < n; ++k) {
    const size_t idx = width ? (k / width) * stride + k % width : k;
    diff = std::max(diff, std::fabs(ref[k] - got[idx]));
    scale = std::max(scale, std::fabs(ref[k]));
  }
  return diff / scale;
}

struct CellCase {
  CellKind cell;
  bool bidirectional;
  int batch;
};

class FastVsReference : public ::testing::TestWithParam<CellCase> {};

TEST_P(FastVsReference, ForwardAndBackwardAgree) {
  const auto [cell, bidirectional, B] = GetParam();
  const int S = 7, I = 6, H = 8, D = bidirectional ? 2 : 1, G = gate_count(cell);
  nn::StackSpec spec;
  spec.cell = cell;
  spec.input_size = I;
  spec.hidden = H;
  spec.directions = D;
  spec.steps = S;
  ParamLayout layout;
  nn::RecurrentStack<float> stack(spec, layout, "rnn.");
  Rng rng(3);
  std::vector<float> params(layout.total()), x(static_cast<size_t>(S) * B * I),
      h0(static_cast<size_t>(D) * B * H), c0(h0.size()), dy(static_cast<size_t>(S) * B * D * H);
  for (auto& v : params) v = static_cast<float>(rng.uniform(-0.5, 0.5));
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  for (auto& v : h0) v = static_cast<float>(rng.uniform(-0.5, 0.5));
  for (auto& v : c0) v = static_cast<float>(rng.uniform(-0.5, 0.5));
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  const bool lstm = cell == CellKind::lstm;

  nn::StackWorkspace<float> ws;
  stack.forward(params.data(), x.data(), S, B, h0.data(), lstm ? c0.data() : nullptr, true, nullptr,
                ws);
  std::copy(dy.begin(), dy.end(), ws.layers[0].dout.begin());
  std::vector<float> grads(layout.total(), 0.0f), dh0(h0.size()), dc0(c0.size());
  stack.backward(params.data(), nullptr, nullptr, ws, grads.data(), true, dh0.data(),
                 lstm ? dc0.data() : nullptr);

  auto d = [](const float* p, size_t n) { return std::vector<double>(p, p + n); };
  for (int dir = 0; dir < D; ++dir) {
    const nn::DirectionParams& p = stack.direction_params(0, dir);
    const auto w_ih = d(params.data() + p.w_ih, static_cast<size_t>(G) * H * I);
    const auto w_hh = d(params.data() + p.w_hh, static_cast<size_t>(G) * H * H);
    const auto b_ih = d(params.data() + p.b_ih, static_cast<size_t>(G) * H);
    const auto b_hh = d(params.data() + p.b_hh, static_cast<size_t>(G) * H);
    // Reference forward, keeping every state.
    std::vector<std::vector<double>> hs(S + 1), cs(S + 1);
    hs[0] = d(h0.data() + static_cast<size_t>(dir) * B * H, static_cast<size_t>(B) * H);
    cs[0] = d(c0.data() + static_cast<size_t>(dir) * B * H, static_cast<size_t>(B) * H);
    std::vector<double> out(static_cast<size_t>(S) * B * H);
    for (int s = 0; s < S; ++s) {
      const int t = dir == 0 ? s : S - 1 - s;
      const auto xt = d(x.data() + static_cast<size_t>(t) * B * I, static_cast<size_t>(B) * I);
      hs[s + 1].resize(static_cast<size_t>(B) * H);
      cs[s + 1].resize(static_cast<size_t>(B) * H);
      kernels::reference::cell_step_forward<double>(
          cell, B, I, H, xt.data(), hs[s].data(), cs[s].data(), w_ih.data(), w_hh.data(),
          b_ih.data(), b_hh.data(), hs[s + 1].data(), cs[s + 1].data());
      std::copy(hs[s + 1].begin(), hs[s + 1].end(), out.begin() + static_cast<size_t>(t) * B * H);
    }
    EXPECT_LT(max_error(out, ws.layers[0].out.data() + dir * H, out.size(), D * H, H), 2e-5)
        << "output";
    // Reference backward through time.
    std::vector<double> gw_ih(w_ih.size(), 0), gw_hh(w_hh.size(), 0), gb_ih(b_ih.size(), 0),
        gb_hh(b_hh.size(), 0), dx_ref(x.size(), 0), dh(static_cast<size_t>(B) * H, 0),
        dc(static_cast<size_t>(B) * H, 0), dxt(static_cast<size_t>(B) * I), dh_prev(dh.size()),
        dc_prev(dc.size());
    for (int s = S - 1; s >= 0; --s) {
      const int t = dir == 0 ? s : S - 1 - s;
      const auto xt = d(x.data() + static_cast<size_t>(t) * B * I, static_cast<size_t>(B) * I);
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < H; ++j)
          dh[b * H + j] += dy[(static_cast<size_t>(t) * B + b) * D * H + dir * H + j];
      kernels::reference::cell_step_backward<double>(
          cell, B, I, H, xt.data(), hs[s].data(), cs[s].data(), w_ih.data(), w_hh.data(),
          b_ih.data(), b_hh.data(), dh.data(), dc.data(), dxt.data(), dh_prev.data(),
          dc_prev.data(), gw_ih.data(), gw_hh.data(), gb_ih.data(), gb_hh.data());
      for (size_t k = 0; k < dxt.size(); ++k) dx_ref[static_cast<size_t>(t) * B * I + k] = dxt[k];
      dh = dh_prev;
      if (lstm) dc = dc_prev;
    }
    EXPECT_LT(max_error(gw_ih, grads.data() + p.w_ih, gw_ih.size()), 2e-5)
        << "weight_ih dir " << dir;
    EXPECT_LT(max_error(gw_hh, grads.data() + p.w_hh, gw_hh.size()), 2e-5)
        << "weight_hh dir " << dir;
    EXPECT_LT(max_error(gb_ih, grads.data() + p.b_ih, gb_ih.size()), 2e-5) << "bias_ih dir " << dir;
    EXPECT_LT(max_error(gb_hh, grads.data() + p.b_hh, gb_hh.size()), 2e-5) << "bias_hh dir " << dir;
    EXPECT_LT(max_error(dh, dh0.data() + static_cast<size_t>(dir) * B * H, dh.size()), 2e-5)
        << "dh0 dir " << dir;
    if (lstm) {
      EXPECT_LT(max_error(dc, dc0.data() + static_cast<size_t>(dir) * B * H, dc.size()), 2e-5)
          << "dc0";
    }
    if (D == 1) {
      EXPECT_LT(max_error(dx_ref, ws.dinput.data(), dx_ref.size()), 2e-5) << "dx";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cells, FastVsReference,
    ::testing::Values(CellCase{CellKind::rnn_tanh, false, 5},
                      CellCase{CellKind::rnn_relu, false, 5}, CellCase{CellKind::lstm, false, 5},
                      CellCase{CellKind::gru, false, 5}, CellCase{CellKind::lstm, true, 5},
                      CellCase{CellKind::gru, true, 5}, CellCase{CellKind::rnn_tanh, true, 5},
                      CellCase{CellKind::rnn_tanh, false, 11},
                      CellCase{CellKind::rnn_relu, false, 11}, CellCase{CellKind::lstm, false, 11},
                      CellCase{CellKind::gru, false, 11}, CellCase{CellKind::lstm, true, 11},
                      CellCase{CellKind::gru, true, 11}, CellCase{CellKind::rnn_tanh, true, 11}),
    [](const auto& test) {
      return to_string(test.param.cell) + (test.param.bidirectional ? "_bidirectional" : "") +
             "_batch" + std::to_string(test.param.batch);
    });

// Inference keeps one step of gates and cell states (two alternating buffers) where training
// keeps every step: with the same packed weights, both give the same outputs and final states
// bit for bit, on sequences of varied lengths (packed batches) and full ones, for a stack of two
// bidirectional layers, in batches of 1, 5 and 11 rows (batch 1: every step's input side first).
TEST(RecurrentStack, InferenceKeepsOneStepAndGivesTrainingsBits) {
  for (const CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh})
    for (const int B : {1, 5, 11})
      for (const bool varied : {false, true}) {
        const int S = 9, I = 4, H = 7, D = 2, L = 2;
        nn::StackSpec spec;
        spec.cell = cell;
        spec.input_size = I;
        spec.hidden = H;
        spec.directions = D;
        spec.layers = L;
        ParamLayout layout;
        nn::RecurrentStack<float> stack(spec, layout, "rnn.");
        Rng rng(11);
        std::vector<float> params(layout.total()), x(static_cast<size_t>(S) * B * I);
        for (auto& v : params) v = static_cast<float>(rng.uniform(-0.5, 0.5));
        for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
        // Lengths S, S-1, ... (at least 1), longest first, as packed sequences are sorted.
        std::vector<int> sizes(S, B);
        if (varied)
          for (int t = 0; t < S; ++t) {
            int n = 0;
            for (int b = 0; b < B; ++b) n += std::max(1, S - 2 * b) > t ? 1 : 0;
            sizes[t] = n;
          }
        nn::StackPacked for_inference, for_training;
        stack.prepare(params.data(), for_inference, false);
        stack.prepare(params.data(), for_training, true);
        nn::StackWorkspace<float> infer_ws, train_ws;
        const int* bs = varied ? sizes.data() : nullptr;
        stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, false, nullptr, infer_ws, bs,
                      &for_inference);
        // Training's path on the same kernel: weights packed for inference run every batch size
        // through it, as the inference call did.
        stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, true, nullptr, train_ws, bs,
                      &for_inference);
        const std::string what = to_string(cell) + " B=" + std::to_string(B) +
                                 (varied ? " varied lengths" : " full length");
        const size_t out = static_cast<size_t>(S) * B * D * H,
                     states = static_cast<size_t>(L) * D * B * H;
        EXPECT_TRUE(std::equal(infer_ws.layers.back().out.begin(),
                               infer_ws.layers.back().out.begin() + out,
                               train_ws.layers.back().out.begin()))
            << what << ": outputs";
        EXPECT_TRUE(
            std::equal(infer_ws.hn.begin(), infer_ws.hn.begin() + states, train_ws.hn.begin()))
            << what << ": hn";
        if (cell == CellKind::lstm) {
          EXPECT_TRUE(
              std::equal(infer_ws.cn.begin(), infer_ws.cn.begin() + states, train_ws.cn.begin()))
              << what << ": cn";
        }
        // Inference kept one step of gates, training all of them; up to 4 rows inference keeps
        // every step's input side, computed first (gemm_packed_head), and still the same bits.
        if (B > 4)
          EXPECT_LT(infer_ws.layers[0].dir[0].gates.size(), train_ws.layers[0].dir[0].gates.size())
              << what;
        else
          EXPECT_EQ(infer_ws.layers[0].dir[0].gates.size(), train_ws.layers[0].dir[0].gates.size())
              << what;
      }
}

}  // namespace
}  // namespace recur
