// recur's own exp, sigmoid and tanh (float) against libm over a dense sweep of the range the
// cells see, and at the clamping edges; the vectorized cell kernels on saturated and NaN gates.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activations.hpp"
#include "kernels/cell.hpp"

namespace recur::kernels {
namespace {

TEST(Activations, FastExpRelativeErrorBelow3e7) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 1e-3) {
    const float xf = static_cast<float>(x);
    const double ref = std::exp(static_cast<double>(xf));
    worst = std::max(worst, std::fabs(fast_exp(xf) - ref) / ref);
  }
  EXPECT_LT(worst, 3e-7);
}

TEST(Activations, SigmoidAndTanhAbsoluteErrorBelow3e7) {
  double worst_sig = 0, worst_tanh = 0;
  for (double x = -40.0; x <= 40.0; x += 1e-4) {
    const float xf = static_cast<float>(x);
    const double xd = static_cast<double>(xf);
    worst_sig = std::max(worst_sig, std::fabs(sigmoid(xf) - 1.0 / (1.0 + std::exp(-xd))));
    worst_tanh = std::max(worst_tanh, std::fabs(tanh_act(xf) - std::tanh(xd)));
  }
  EXPECT_LT(worst_sig, 3e-7);
  EXPECT_LT(worst_tanh, 3e-7);
}

TEST(Activations, SaturateWithoutOverflowOrNaN) {
  for (float x : {-1e30f, -1000.0f, -88.5f, 88.5f, 1000.0f, 1e30f}) {
    EXPECT_TRUE(std::isfinite(fast_exp(x))) << x;
    EXPECT_TRUE(std::isfinite(sigmoid(x))) << x;
    EXPECT_TRUE(std::isfinite(tanh_act(x))) << x;
  }
  EXPECT_NEAR(sigmoid(1000.0f), 1.0f, 1e-7f);
  EXPECT_NEAR(sigmoid(-1000.0f), 0.0f, 1e-7f);
  EXPECT_NEAR(tanh_act(1000.0f), 1.0f, 1e-7f);
  EXPECT_NEAR(tanh_act(-1000.0f), -1.0f, 1e-7f);
}

// The cell kernels are vectorized (kernels/dispatch.hpp); the clamp inside their activations must
// act lane by lane: saturated lanes beside ordinary ones, across the vector width and its
// remainder (H = 37), within 1e-6 of libm, and a NaN gate giving NaN in its own unit only.
TEST(Activations, CellKernelsSaturateLaneByLaneAndKeepNaN) {
  const int B = 3, H = 37;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float values[] = {-1e30f, -1000.0f, -88.5f, -87.5f, -44.5f,  -3.0f, 0.0f,
                          2.5f,   44.5f,    87.5f,  88.5f,  1000.0f, 1e30f};
  const int nv = static_cast<int>(sizeof(values) / sizeof(values[0]));
  std::vector<float> gates(static_cast<std::size_t>(B) * 4 * H),
      c_prev(static_cast<std::size_t>(B) * H);
  for (std::size_t k = 0; k < gates.size(); ++k) gates[k] = values[(k * 7) % nv];
  for (std::size_t k = 0; k < c_prev.size(); ++k)
    c_prev[k] = static_cast<float>(k * 5 % 13) * 0.3f - 1.8f;
  const std::size_t nan_at = 1 * 4 * H + 2 * H + 20;  // row 1, cell gate, unit 20
  gates[nan_at] = nan;
  std::vector<float> act = gates, c(c_prev.size()), h(c_prev.size());
  lstm_pointwise_forward<float>(B, H, act.data(), c_prev.data(), c.data(), h.data(), H);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < H; ++j) {
      const float* g = gates.data() + static_cast<std::size_t>(b) * 4 * H;
      auto sig = [](float x) { return 1.0 / (1.0 + std::exp(-static_cast<double>(x))); };
      auto th = [](float x) { return std::tanh(static_cast<double>(x)); };
      const double i = sig(g[j]), f = sig(g[H + j]), u = th(g[2 * H + j]), o = sig(g[3 * H + j]);
      const double cn = f * c_prev[static_cast<std::size_t>(b) * H + j] + i * u;
      const double hn = o * std::tanh(cn);
      const std::size_t at = static_cast<std::size_t>(b) * H + j;
      if (b == 1 && j == 20) {
        EXPECT_TRUE(std::isnan(c[at]) && std::isnan(h[at]));
        continue;
      }
      EXPECT_NEAR(c[at], cn, 1e-6) << b << " " << j;
      EXPECT_NEAR(h[at], hn, 1e-6) << b << " " << j;
    }
  std::vector<float> pre(static_cast<std::size_t>(B) * H), out(pre.size());
  for (std::size_t k = 0; k < pre.size(); ++k) pre[k] = values[(k * 3) % nv];
  pre[40] = nan;
  rnn_pointwise_forward<float>(false, B, H, pre.data(), out.data(), H);
  for (std::size_t k = 0; k < pre.size(); ++k) {
    if (k == 40) {
      EXPECT_TRUE(std::isnan(out[k]));
      continue;
    }
    EXPECT_NEAR(out[k], std::tanh(static_cast<double>(pre[k])), 1e-6) << k;
  }
}

}  // namespace
}  // namespace recur::kernels
