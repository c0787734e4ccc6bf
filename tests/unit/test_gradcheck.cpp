// Finite-difference gradient checks of the whole network in double precision: every parameter,
// the inputs and the initial states, for each cell, pooling and stack shape. Central differences
// with step 1e-5 on a loss of order 1 have truncation error ~1e-11 and rounding error ~1e-11, so
// we demand |analytic - numeric| <= 1e-6 * (|analytic| + |numeric|) + 1e-9: a wrong gradient
// term misses that by orders of magnitude, noise does not reach it.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "recur/model.hpp"
#include "support/finite_difference.hpp"
#include "support/fixed_network.hpp"

namespace recur {
namespace {

struct Case {
  std::string name;
  ModelConfig config;
};

ModelConfig small(CellKind cell) {
  ModelConfig c;
  c.cell = cell;
  c.input_size = 3;
  c.steps = 5;
  c.hidden = 4;
  c.num_classes = 3;
  c.init.input.kind = InitKind::normal;
  c.init.input.sigma = 0.6;
  c.init.recurrent.kind = InitKind::normal;
  c.init.recurrent.sigma = 0.6;
  c.init.input.bias = BiasKind::normal;
  c.init.recurrent.bias = BiasKind::normal;
  c.init.input.bias_value = 0;
  c.init.head.kind = InitKind::normal;
  c.init.head.sigma = 0.8;
  c.init.head.bias = BiasKind::normal;
  c.init.projection.kind = InitKind::normal;
  c.init.projection.sigma = 0.6;
  c.init.projection.bias = BiasKind::normal;
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::pair<const char*, CellKind> cells[] = {{"rnn_tanh", CellKind::rnn_tanh},
                                                    {"rnn_relu", CellKind::rnn_relu},
                                                    {"lstm", CellKind::lstm},
                                                    {"gru", CellKind::gru}};
  for (const auto& [name, cell] : cells) {
    out.push_back({std::string(name) + "_last", small(cell)});
    ModelConfig mean = small(cell);
    mean.pooling = Pooling::mean;
    out.push_back({std::string(name) + "_mean", mean});
    ModelConfig max = small(cell);
    max.pooling = Pooling::max;
    out.push_back({std::string(name) + "_max", max});
    ModelConfig bi = small(cell);
    bi.bidirectional = true;
    out.push_back({std::string(name) + "_bidirectional", bi});
    ModelConfig two = small(cell);
    two.layers = 2;
    out.push_back({std::string(name) + "_two_layers", two});
    ModelConfig bi2 = small(cell);
    bi2.layers = 2;
    bi2.bidirectional = true;
    bi2.pooling = Pooling::mean;
    out.push_back({std::string(name) + "_two_layers_bidirectional", bi2});
    ModelConfig proj = small(cell);
    proj.projection = 5;
    out.push_back({std::string(name) + "_projection", proj});
    ModelConfig untied = small(cell);
    untied.untied = true;
    untied.bias = false;
    out.push_back({std::string(name) + "_untied", untied});
  }
  return out;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class GradCheck : public ::testing::TestWithParam<Case> {};

bool close(double a, double b) {
  return std::fabs(a - b) <= 1e-6 * (std::fabs(a) + std::fabs(b)) + 1e-9;
}

TEST_P(GradCheck, MatchesCentralDifferences) {
  const ModelConfig& cfg = GetParam().config;
  Network<double> net(cfg);
  net.init(7);
  const int B = 3, S = cfg.steps, C = cfg.num_classes;
  const int states = cfg.layers * cfg.directions() * B * cfg.hidden;
  Rng rng(11);
  std::vector<double> x(static_cast<size_t>(S) * B * cfg.input_size), h0(states), c0(states);
  for (auto& v : x) v = rng.uniform(-1, 1);
  for (auto& v : h0) v = rng.uniform(-0.5, 0.5);
  for (auto& v : c0) v = rng.uniform(-0.5, 0.5);
  const bool lstm = cfg.cell == CellKind::lstm;
  std::vector<std::int32_t> labels = {0, 2, 1};
  NetworkWorkspace<double> workspace;
  auto* ws = &workspace;

  auto loss = [&]() {
    const double* logits =
        net.forward(x.data(), B, *ws, true, nullptr, h0.data(), lstm ? c0.data() : nullptr);
    return softmax_cross_entropy<double>(logits, labels.data(), B, C, 1.0 / B, nullptr, nullptr);
  };
  const double* logits =
      net.forward(x.data(), B, *ws, true, nullptr, h0.data(), lstm ? c0.data() : nullptr);
  std::vector<double> dlogits(static_cast<size_t>(B) * C);
  softmax_cross_entropy<double>(logits, labels.data(), B, C, 1.0 / B, dlogits.data(), nullptr);
  std::vector<double> grads(net.num_params(), 0.0), dx(x.size()), dh0(states), dc0(states);
  net.backward(x.data(), B, *ws, dlogits.data(), grads.data(), dx.data(), dh0.data(),
               lstm ? dc0.data() : nullptr);

  const double eps = 1e-5;
  auto check = [&](std::vector<double>& values, const std::vector<double>& analytic,
                   const std::string& what, size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const double numeric = test::central_difference(values[k], eps, loss);
      ASSERT_TRUE(close(analytic[k], numeric))
          << what << "[" << k - begin << "] analytic " << analytic[k] << " numeric " << numeric;
    }
  };
  for (const ParamInfo& p : net.layout().entries())
    check(net.params(), grads, p.name, p.offset, p.offset + p.size);
  check(x, dx, "input", 0, x.size());
  check(h0, dh0, "h0", 0, h0.size());
  if (lstm) check(c0, dc0, "c0", 0, c0.size());
}

INSTANTIATE_TEST_SUITE_P(Network, GradCheck, ::testing::ValuesIn(cases()),
                         [](const auto& test) { return test.param.name; });

TEST(GradCheckLoss, SoftmaxCrossEntropyIsStableAndExact) {
  // Huge logits must not overflow: log-sum-exp keeps the loss finite and exact.
  const double logits[3] = {1000.0, 0.0, -1000.0};
  const std::int32_t label = 1;
  double d[3];
  const double l = softmax_cross_entropy<double>(logits, &label, 1, 3, 1.0, d, nullptr);
  EXPECT_NEAR(l, 1000.0, 1e-9);
  EXPECT_NEAR(d[0], 1.0, 1e-12);
  EXPECT_NEAR(d[1], -1.0, 1e-12);
  EXPECT_NEAR(d[2], 0.0, 1e-12);
}

// Label smoothing: the loss is the cross-entropy against q = (1 - eps) onehot + eps / C, computed
// here directly from the softmax; its gradient matches central differences; eps = 0 gives the
// plain loss's bits.
TEST(GradCheckLoss, LabelSmoothingIsTheLossAgainstTheMixedTarget) {
  const int B = 3, C = 5;
  const double eps = 0.1;
  Rng rng(8);
  std::vector<double> z(B * C);
  for (double& v : z) v = rng.normal() * 3;
  const std::vector<std::int32_t> labels = {0, 3, 4};
  std::vector<double> d(B * C);
  const double loss =
      softmax_cross_entropy<double>(z.data(), labels.data(), B, C, 1.0 / B, d.data(), nullptr, eps);
  double want = 0;
  for (int b = 0; b < B; ++b) {
    double m = z[b * C];
    for (int k = 1; k < C; ++k) m = std::max(m, z[b * C + k]);
    double s = 0;
    for (int k = 0; k < C; ++k) s += std::exp(z[b * C + k] - m);
    for (int k = 0; k < C; ++k) {
      const double log_p = z[b * C + k] - m - std::log(s);
      const double q = (k == labels[b] ? 1 - eps : 0) + eps / C;
      want -= q * log_p;
    }
  }
  EXPECT_NEAR(loss, want / B, 1e-12);
  for (int i = 0; i < B * C; ++i) {
    std::vector<double> up = z, down = z;
    up[i] += 1e-6;
    down[i] -= 1e-6;
    const double numeric = (softmax_cross_entropy<double>(up.data(), labels.data(), B, C, 1.0 / B,
                                                          nullptr, nullptr, eps) -
                            softmax_cross_entropy<double>(down.data(), labels.data(), B, C, 1.0 / B,
                                                          nullptr, nullptr, eps)) /
                           2e-6;
    EXPECT_NEAR(d[i], numeric, 1e-8) << i;
  }
  // eps = 0 is the plain loss, bit for bit.
  std::vector<float> zf(z.begin(), z.end()), d0(B * C), d1(B * C);
  const double plain =
      softmax_cross_entropy<float>(zf.data(), labels.data(), B, C, 1.f / B, d0.data(), nullptr);
  const double zero = softmax_cross_entropy<float>(zf.data(), labels.data(), B, C, 1.f / B,
                                                   d1.data(), nullptr, 0.0);
  EXPECT_EQ(plain, zero);
  EXPECT_EQ(d0, d1);
}

}  // namespace
}  // namespace recur
