// maxpool1d and avgpool1d, the layers that change sequence lengths: the kernels against their
// reference (ragged
// batches, windows that overlap, leave gaps or are longer than a sample), the length rule, a
// padded batch against its samples run one at a time, and finite differences through a model
// whose layers after the pooling run on the new lengths.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/pool1d.hpp"
#include "kernels/reference/pool1d_reference.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "support/finite_difference.hpp"

namespace recur {
namespace {

using kernels::Pool1dDims;

TEST(MaxPool1d, LengthsFollowPyTorchAndKeepShortSamples) {
  EXPECT_EQ(kernels::pool1d_length(9, 3, 2), 4);  // floor((9 - 3) / 2) + 1
  EXPECT_EQ(kernels::pool1d_length(8, 3, 2), 3);
  EXPECT_EQ(kernels::pool1d_length(3, 3, 2), 1);
  EXPECT_EQ(kernels::pool1d_length(2, 3, 2), 1);  // shorter than the window: one output
  EXPECT_EQ(kernels::pool1d_length(10, 2, 2), 5);
  EXPECT_EQ(kernels::pool1d_length(7, 2, 3), 2);  // gaps between windows
  EXPECT_EQ(kernels::pool1d_length(1, 1, 1), 1);

  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 3};
  spec.num_classes = 2;
  spec.layers = parse_layer_list("maxpool1d 3 stride=2, pool last, linear", "--model");
  Model<double> model(spec);
  const SeqInfo out = model.layer(0).output_lengths(SeqInfo::from_lengths({9, 8, 3, 2, 1}));
  EXPECT_EQ(out.lengths, (std::vector<int>{4, 3, 1, 1, 1}));
  EXPECT_EQ(out.steps, 4);
  EXPECT_TRUE(model.layer(0).changes_lengths());
  EXPECT_FALSE(model.layer(1).changes_lengths());
}

template <typename T>
void kernel_matches_reference(const std::vector<int>& lengths, int kernel, int stride) {
  const SeqInfo seq = SeqInfo::from_lengths(lengths);
  const Pool1dDims d{seq.steps, seq.batch, 5, kernel, stride};
  const std::size_t n_in = static_cast<std::size_t>(d.steps) * d.batch * d.features;
  const std::size_t n_out = static_cast<std::size_t>(d.out_steps()) * d.batch * d.features;
  Rng rng(static_cast<std::uint64_t>(kernel * 31 + stride));
  std::vector<double> x(n_in), dy(n_out);
  for (auto& v : x) v = rng.normal();
  for (auto& v : dy) v = rng.normal();
  std::vector<double> y_ref(n_out), dx_ref(n_in);
  kernels::reference::maxpool1d_forward(d, lengths, x.data(), y_ref.data());
  kernels::reference::maxpool1d_backward(d, lengths, x.data(), dy.data(), dx_ref.data());

  std::vector<T> xt(x.begin(), x.end()), dyt(dy.begin(), dy.end()), y(n_out), dx(n_in);
  std::vector<std::int32_t> arg(n_out);
  kernels::maxpool1d_forward(d, lengths.data(), xt.data(), y.data(), arg.data());
  kernels::maxpool1d_backward(d, arg.data(), dyt.data(), dx.data());
  const std::string what = "k=" + std::to_string(kernel) + " s=" + std::to_string(stride);
  for (std::size_t k = 0; k < n_out; ++k)
    ASSERT_EQ(y[k], static_cast<T>(y_ref[k])) << what << " output " << k;  // a copy: exact
  for (std::size_t k = 0; k < n_in; ++k)
    ASSERT_NEAR(static_cast<double>(dx[k]), dx_ref[k], 1e-6) << what << " input gradient " << k;

  kernels::reference::avgpool1d_forward(d, lengths, x.data(), y_ref.data());
  kernels::reference::avgpool1d_backward(d, lengths, dy.data(), dx_ref.data());
  kernels::avgpool1d_forward(d, lengths.data(), xt.data(), y.data());
  kernels::avgpool1d_backward(d, lengths.data(), dyt.data(), dx.data());
  for (std::size_t k = 0; k < n_out; ++k)
    ASSERT_NEAR(static_cast<double>(y[k]), y_ref[k], 1e-6) << what << " average " << k;
  for (std::size_t k = 0; k < n_in; ++k)
    ASSERT_NEAR(static_cast<double>(dx[k]), dx_ref[k], 1e-6) << what << " avg gradient " << k;
}

TEST(MaxPool1d, KernelMatchesReference) {
  const std::vector<int> ragged = {11, 10, 9, 7, 4, 3, 2, 1, 1};
  for (const auto& [k, s] : {std::pair{3, 2}, {2, 2}, {3, 1}, {2, 3}, {5, 5}, {1, 1}, {12, 1}}) {
    kernel_matches_reference<double>(ragged, k, s);
    kernel_matches_reference<float>(ragged, k, s);
    kernel_matches_reference<float>(std::vector<int>(9, 8), k, s);
  }
}

TEST(MaxPool1d, TiesKeepTheEarliestStepAndNaNWins) {
  const Pool1dDims d{4, 1, 1, 2, 2};
  const std::vector<int> lengths = {4};
  const float x[4] = {1.0f, 1.0f, 2.0f, NAN};
  float y[2];
  std::int32_t arg[2];
  kernels::maxpool1d_forward(d, lengths.data(), x, y, arg);
  EXPECT_EQ(arg[0], 0);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(arg[1], 3);
  EXPECT_TRUE(std::isnan(y[1]));
}

ModelSpec pooled_spec(const std::string& list) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 3};
  spec.num_classes = 3;
  spec.layers = parse_layer_list(list, "--model");
  return spec;
}

struct Batch {
  SeqInfo seq;
  std::vector<double> x;
};

Batch ragged_batch(const std::vector<int>& lengths, int F, std::uint64_t seed) {
  Batch b;
  b.seq = SeqInfo::from_lengths(lengths);
  b.x.assign(static_cast<std::size_t>(b.seq.steps) * b.seq.batch * F, 0.0);
  Rng rng(seed);
  for (int t = 0; t < b.seq.steps; ++t)
    for (int r = 0; r < b.seq.batch_sizes[t]; ++r)
      for (int f = 0; f < F; ++f)
        b.x[(static_cast<std::size_t>(t) * b.seq.batch + r) * F + f] = rng.normal();
  return b;
}

// Central differences of loss = sum(logits * w) against backward, in double, on a ragged batch.
// The linear layer before the pooling gets its gradient through maxpool1d's backward; the GRU
// after it runs on the pooled lengths.
TEST(LayerGradients, MaxPool1dMatchesFiniteDifferences) {
  for (const std::string list : {"linear 4, maxpool1d 3 stride=2, gru 4, pool mean, linear",
                                 "linear 4, maxpool1d 2, lstm 3 bidirectional, pool last, linear",
                                 "linear 4, tanh, maxpool1d 3 stride=1, pool max, linear",
                                 "linear 4, avgpool1d 3 stride=2, gru 4, pool last, linear",
                                 "linear 4, avgpool1d 2 stride=3, pool mean, linear"}) {
    Model<double> model(pooled_spec(list));
    model.init(5);
    const Batch batch = ragged_batch({9, 8, 6, 5, 3, 2, 1}, 3, 11);
    const int B = batch.seq.batch, C = 3;
    ModelInput<double> in;
    in.batch = B;
    in.seq = &batch.seq;
    in.x = batch.x.data();
    Rng rng(9);
    std::vector<double> w(static_cast<std::size_t>(B) * C);
    for (auto& v : w) v = rng.normal();
    ModelWorkspace<double> ws;
    auto loss = [&]() {
      const double* z = model.forward(in, ws, false);
      double s = 0;
      for (std::size_t k = 0; k < w.size(); ++k) s += z[k] * w[k];
      return s;
    };
    model.forward(in, ws, true);
    std::vector<double> grads(model.num_params(), 0.0);
    model.backward(in, ws, w.data(), grads.data());
    const double h = 1e-6;
    double nonzero_first = 0;  // the linear layer before the pooling gets a gradient
    for (std::size_t k = 0; k < model.num_params(); ++k) {
      const double numeric = test::central_difference(model.params()[k], h, loss);
      EXPECT_NEAR(grads[k], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
          << "parameter " << k << " of " << list;
      if (k < 16) nonzero_first += std::fabs(grads[k]);
    }
    EXPECT_GT(nonzero_first, 1e-3) << list;
  }
}

// A padded batch gives each sample's logits and summed gradients as if it ran alone, and the
// pooled sequence is zero past each sample's own output length.
void padded_batch_equals_one_at_a_time(const std::string& pool) {
  SCOPED_TRACE(pool);
  Model<double> model(pooled_spec(pool + " 3 stride=2, gru 4, pool last, linear"));
  model.init(3);
  const std::vector<int> lengths = {9, 9, 8, 7, 5, 4, 3, 2, 1};
  const Batch batch = ragged_batch(lengths, 3, 7);
  const int B = batch.seq.batch, C = 3, F = 3;
  ModelInput<double> in;
  in.batch = B;
  in.seq = &batch.seq;
  in.x = batch.x.data();
  ModelWorkspace<double> ws;
  const double* logits = model.forward(in, ws, true);
  const std::vector<double> batched(logits, logits + static_cast<std::size_t>(B) * C);
  std::vector<double> dlogits(batched.size(), 0.5), grads(model.num_params(), 0.0),
      summed(model.num_params(), 0.0);
  model.backward(in, ws, dlogits.data(), grads.data());
  const int out_steps = kernels::pool1d_length(9, 3, 2);
  for (int r = 0; r < B; ++r) {
    const int len = lengths[r], out_len = kernels::pool1d_length(len, 3, 2);
    const SeqInfo one = SeqInfo::fixed(len, 1);
    std::vector<double> x1(static_cast<std::size_t>(len) * F);
    for (int t = 0; t < len; ++t)
      for (int f = 0; f < F; ++f)
        x1[static_cast<std::size_t>(t) * F + f] =
            batch.x[(static_cast<std::size_t>(t) * B + r) * F + f];
    ModelInput<double> in1;
    in1.batch = 1;
    in1.seq = &one;
    in1.x = x1.data();
    ModelWorkspace<double> ws1;
    const double* l1 = model.forward(in1, ws1, true);
    for (int k = 0; k < C; ++k)
      EXPECT_NEAR(l1[k], batched[static_cast<std::size_t>(r) * C + k], 1e-12) << "row " << r;
    for (int t = 0; t < out_steps; ++t)
      for (int f = 0; f < F; ++f) {
        const double b = ws.outs[0][(static_cast<std::size_t>(t) * B + r) * F + f];
        if (t < out_len)
          EXPECT_EQ(ws1.outs[0][static_cast<std::size_t>(t) * F + f], b);
        else
          EXPECT_EQ(b, 0.0) << "padded output step " << t << " of row " << r;
      }
    model.backward(in1, ws1, dlogits.data(), summed.data());
  }
  for (std::size_t k = 0; k < grads.size(); ++k)
    EXPECT_NEAR(summed[k], grads[k], 1e-12 * std::max(1.0, std::fabs(grads[k]))) << k;
}

TEST(MaxPool1d, PaddedBatchEqualsOneAtATime) {
  padded_batch_equals_one_at_a_time("maxpool1d");
}
TEST(AvgPool1d, PaddedBatchEqualsOneAtATime) {
  padded_batch_equals_one_at_a_time("avgpool1d");
}

TEST(MaxPool1d, BadSpecsAreRefusedNamingTheLayer) {
  EXPECT_THROW(parse_layer_list("maxpool1d", "--model"), Error);
  EXPECT_THROW(parse_layer_list("maxpool1d 0", "--model"), Error);
  EXPECT_THROW(parse_layer_list("maxpool1d 2 padding=1", "--model"), Error);
  ModelSpec images;
  images.input = ActShape{ActKind::image, 1, 8, 8};
  images.num_classes = 2;
  images.layers = parse_layer_list("maxpool1d 2, flatten, linear", "--model");
  try {
    images.validate();
    ADD_FAILURE() << "maxpool1d on images was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0 (maxpool1d)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace recur
