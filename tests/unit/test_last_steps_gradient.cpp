// A recurrent stack right before `pool last` trains with LayerContext::last_steps_gradient: the
// pooling clears and writes only the steps where rows end (and step 0), the stack reads only
// those. Its gradients must equal, bit for bit, those of the same model with a `dropout 0`
// between the two (a plain copy, so the stack reads the whole dense gradient), and nothing the
// pooling leaves unwritten may be read: the buffer is filled with NaN before each backward.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "recur/layers.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

template <typename T>
std::vector<T> gradients(Model<T>& model, const ModelInput<T>& in, const std::vector<T>& dlogits,
                         bool poison) {
  ModelWorkspace<T> ws;
  std::vector<T> g(model.num_params(), T(0));
  for (int round = 0; round < 2; ++round) {  // the second round runs on sized, poisoned buffers
    Rng rng(3);
    model.forward(in, ws, true, &rng);
    if (poison && round == 1)
      for (auto& buffer : ws.douts)
        std::fill(buffer.begin(), buffer.end(), std::numeric_limits<T>::quiet_NaN());
    std::fill(g.begin(), g.end(), T(0));
    model.backward(in, ws, dlogits.data(), g.data());
  }
  return g;
}

template <typename T>
void check(const std::string& recurrent, const std::vector<int>& lengths) {
  SCOPED_TRACE(recurrent);
  ModelSpec sparse_spec, dense_spec;
  sparse_spec.num_classes = dense_spec.num_classes = 3;
  sparse_spec.input = dense_spec.input = ActShape{ActKind::sequence, 4};
  sparse_spec.layers = parse_layer_list(recurrent + ", pool last, linear", "test");
  dense_spec.layers = parse_layer_list(recurrent + ", dropout 0, pool last, linear", "test");
  Model<T> sparse(sparse_spec), dense(dense_spec);
  sparse.init(7);
  ASSERT_EQ(sparse.num_params(), dense.num_params());
  dense.params() = sparse.params();

  const SeqInfo seq = SeqInfo::from_lengths(lengths);
  const int B = seq.batch;
  std::vector<T> x(static_cast<std::size_t>(seq.steps) * B * 4, T(0));
  Rng draw(5);
  for (int t = 0; t < seq.steps; ++t)
    for (int b = 0; b < seq.batch_sizes[t]; ++b)
      for (int f = 0; f < 4; ++f)
        x[(static_cast<std::size_t>(t) * B + b) * 4 + f] = static_cast<T>(draw.uniform(-1, 1));
  ModelInput<T> in;
  in.x = x.data();
  in.batch = B;
  in.seq = &seq;
  std::vector<T> dlogits(static_cast<std::size_t>(B) * 3);
  for (auto& d : dlogits) d = static_cast<T>(draw.uniform(-0.5, 0.5));

  const std::vector<T> want = gradients(dense, in, dlogits, false);
  const std::vector<T> got = gradients(sparse, in, dlogits, true);
  ASSERT_EQ(got.size(), want.size());
  int nonzero = 0;
  for (std::size_t j = 0; j < want.size(); ++j) {
    ASSERT_FALSE(std::isnan(got[j])) << j;
    ASSERT_EQ(got[j], want[j]) << j;
    nonzero += want[j] != T(0);
  }
  EXPECT_GT(nonzero, static_cast<int>(want.size() / 2));
}

TEST(LastStepsGradient, StackReadsOnlyWhatPoolingLastWrites) {
  const std::vector<std::vector<int>> batches{{6, 6, 6}, {7, 5, 5, 2, 1}};
  for (const auto& lengths : batches) {
    for (const std::string cell : {"lstm", "gru", "rnn", "rnn_relu"}) {
      check<float>(cell + " 24", lengths);
      check<float>(cell + " 24 bidirectional", lengths);
      check<float>(cell + " 9 layers=2 bidirectional", lengths);
      check<double>(cell + " 6 bidirectional", lengths);
    }
    check<float>("lstm 24 recurrent_dropout=0.3", lengths);
    check<float>("gru 24 recurrent_dropout=0.3 bidirectional", lengths);
  }
  check<float>("lstm 24 untied=6 bidirectional", {6, 6, 6});
}

}  // namespace
}  // namespace recur
