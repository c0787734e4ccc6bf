// recur's own exp, sigmoid and tanh (float) against libm over a dense sweep of the range the
// cells see, and at the clamping edges.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/activations.hpp"

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

}  // namespace
}  // namespace recur::kernels
