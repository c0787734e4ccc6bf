// The loss against PyTorch: softmax cross-entropy with label smoothing, its mean and its
// gradient on the logits, equal to torch.nn.CrossEntropyLoss(label_smoothing=eps) for eps 0, 0.1
// and 0.3 (tests/golden/loss/label_smoothing.safetensors, written by make_optim_fixtures.py), in
// double and in float.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "golden_util.hpp"
#include "recur/model.hpp"
#include "recur/safetensors.hpp"

namespace recur::golden {
namespace {

template <typename T>
void expect_torch_loss(const std::string& eps, double tolerance) {
  const SafetensorsFile f =
      read_safetensors(std::string(RECUR_TEST_DIR) + "/golden/loss/label_smoothing.safetensors");
  const StoredTensor& logits = f.at("logits");
  const int B = static_cast<int>(logits.shape[0]), C = static_cast<int>(logits.shape[1]);
  const std::vector<float> z32 = logits.as_f32();
  const std::vector<T> z(z32.begin(), z32.end());
  std::vector<std::int32_t> labels;
  for (float v : f.at("labels").as_f32()) labels.push_back(static_cast<std::int32_t>(v));
  std::vector<T> grad(z.size());
  const double loss = softmax_cross_entropy<T>(z.data(), labels.data(), B, C, T(1) / T(B),
                                               grad.data(), nullptr, std::stod(eps));
  const double want = f.at("loss." + eps).as_f32()[0];
  EXPECT_NEAR(loss, want, tolerance * std::fabs(want)) << "eps " << eps;
  const std::vector<float> g = f.at("grad." + eps).as_f32();
  const std::vector<double> ref(g.begin(), g.end());
  EXPECT_LT(rel_error(grad, ref), tolerance) << "eps " << eps;
}

TEST(GoldenLoss, LabelSmoothingEqualsTorchInDouble) {
  for (const char* eps : {"0", "0.1", "0.3"}) expect_torch_loss<double>(eps, 1e-6);
}

TEST(GoldenLoss, LabelSmoothingEqualsTorchInFloat) {
  for (const char* eps : {"0", "0.1", "0.3"}) expect_torch_loss<float>(eps, 1e-5);
}

}  // namespace
}  // namespace recur::golden
