// Golden tests: recur's network against PyTorch on the fixtures of tests/golden/make_fixtures.py
// (LSTM, GRU, RNN; 1 and 2 layers; uni- and bidirectional; projection; mean and max pooling).
// Every output and gradient is compared with err(a, ref) = max|a - ref| / max|ref| per tensor.
// The double path must agree to 1e-9 (both sides compute in float64); the float path to 1e-5
// (float32 rounding over a few steps is ~1e-7 relative; 1e-5 is the project's bar).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "golden/golden_util.hpp"
#include "recur/model.hpp"
#include "recur/safetensors.hpp"
#include "support/fixed_network.hpp"

namespace recur {
namespace {

using golden::as_f64;
using golden::rel_error;

const std::string kFixtures = std::string(RECUR_TEST_DIR) + "/golden/fixtures";

// Every fixture make_fixtures.py writes, by name.
const std::vector<std::string> kFixtureNames = {"gru_bi_max",      "gru_l1_bi",
                                                "gru_l1_uni",      "gru_l2_bi",
                                                "gru_l2_uni",      "lstm_l1_bi",
                                                "lstm_l1_uni",     "lstm_l2_bi",
                                                "lstm_l2_uni",     "lstm_projection_mean",
                                                "rnn_relu_l1_uni", "rnn_tanh_l1_bi",
                                                "rnn_tanh_l1_uni", "rnn_tanh_l2_bi",
                                                "rnn_tanh_l2_uni"};

// A result of n values at p, for rel_error.
template <typename T>
std::span<const T> values(const T* p, std::size_t n) {
  return std::span<const T>(p, n);
}

template <typename T>
void run_fixture(const std::string& name, double tol) {
  const SafetensorsFile f = read_safetensors(kFixtures + "/" + name + ".safetensors");
  const ModelConfig cfg = model_config_from_json(f.metadata.at("recur.model"), name);
  Network<T> net(cfg);
  for (const ParamInfo& p : net.layout().entries()) {
    const StoredTensor& t = f.at(p.name);
    ASSERT_EQ(t.shape, p.shape) << p.name;
    const auto v = as_f64(t);
    for (size_t k = 0; k < v.size(); ++k) net.params()[p.offset + k] = static_cast<T>(v[k]);
  }
  auto cast = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
  const auto x = cast(as_f64(f.at("x")));
  const auto h0 = cast(as_f64(f.at("h0")));
  const bool lstm = cfg.cell == CellKind::lstm;
  const auto c0 = lstm ? cast(as_f64(f.at("c0"))) : std::vector<T>();
  const StoredTensor& lab = f.at("labels");
  std::vector<std::int32_t> labels(static_cast<size_t>(lab.numel()));
  std::memcpy(labels.data(), lab.bytes.data(), labels.size() * 4);
  const int B = static_cast<int>(labels.size()), C = cfg.num_classes;
  const std::size_t H = static_cast<std::size_t>(cfg.hidden), D = cfg.directions();
  const std::size_t states = static_cast<std::size_t>(cfg.layers) * D * B * H;
  ASSERT_EQ(x.size(), static_cast<std::size_t>(cfg.steps) * B * cfg.input_size);
  ASSERT_EQ(h0.size(), states);
  if (lstm) {
    ASSERT_EQ(c0.size(), states);
  }

  NetworkWorkspace<T> ws;
  const T* logits =
      net.forward(x.data(), B, ws, true, nullptr, h0.data(), lstm ? c0.data() : nullptr);
  EXPECT_LT(rel_error(values(logits, static_cast<std::size_t>(B) * C), as_f64(f.at("logits"))), tol)
      << "logits";
  EXPECT_LT(rel_error(values(net.outputs(ws), cfg.steps * B * H * D), as_f64(f.at("output"))), tol)
      << "output";
  EXPECT_LT(rel_error(values(net.final_h(ws), states), as_f64(f.at("hn"))), tol) << "hn";
  if (lstm) {
    EXPECT_LT(rel_error(values(net.final_c(ws), states), as_f64(f.at("cn"))), tol) << "cn";
  }

  std::vector<T> dlogits(static_cast<size_t>(B) * C);
  const double loss =
      softmax_cross_entropy<T>(logits, labels.data(), B, C, T(1) / T(B), dlogits.data(), nullptr);
  const double ref_loss = as_f64(f.at("loss"))[0];
  EXPECT_LT(std::fabs(loss - ref_loss) / std::fabs(ref_loss), tol) << "loss";

  std::vector<T> grads(net.num_params(), T(0)), dx(x.size()), dh0(h0.size()), dc0(c0.size());
  net.backward(x.data(), B, ws, dlogits.data(), grads.data(), dx.data(), dh0.data(),
               lstm ? dc0.data() : nullptr);
  for (const ParamInfo& p : net.layout().entries())
    EXPECT_LT(rel_error(values(grads.data() + p.offset, p.size), as_f64(f.at("grad." + p.name))),
              tol)
        << "grad." << p.name;
  EXPECT_LT(rel_error(dx, as_f64(f.at("grad.x"))), tol) << "grad.x";
  EXPECT_LT(rel_error(dh0, as_f64(f.at("grad.h0"))), tol) << "grad.h0";
  if (lstm) {
    EXPECT_LT(rel_error(dc0, as_f64(f.at("grad.c0"))), tol) << "grad.c0";
  }
}

class GoldenEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenEngine, DoubleMatchesPyTorch) {
  run_fixture<double>(GetParam(), 1e-9);
}
TEST_P(GoldenEngine, FloatMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenEngine, ::testing::ValuesIn(kFixtureNames),
                         [](const auto& test) { return test.param; });

TEST(GoldenEngineFixtures, FolderHoldsExactlyTheListedFixtures) {
  std::vector<std::string> listed = kFixtureNames;
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(golden::fixture_files(kFixtures), listed);
}

}  // namespace
}  // namespace recur
