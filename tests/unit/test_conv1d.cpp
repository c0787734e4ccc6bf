// The conv1d layer (src/nn/conv1d_layer.cpp) and its kernels (src/kernels/conv1d.cpp):
//  - im2col + GEMM and the direct loops against the reference (each sample alone, plain loops),
//    float and double, ragged and full batches, kernels 1..7 (wider than the shortest samples),
//    and batches large enough to be cut into several column chunks;
//  - a padded batch of embedding -> conv1d -> relu -> max over real steps -> linear gives the
//    logits and gradients of its samples run one at a time, and zero conv outputs at padded steps;
//  - finite-difference gradient checks (double) through the model: parameters of every layer
//    (so the input gradient of conv1d reaches the embedding), with max and mean pooling;
//  - PyTorch's initialisation bound, the JSON form, and the errors for bad specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv1d.hpp"
#include "kernels/reference/conv1d_reference.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "support/finite_difference.hpp"

namespace recur {
namespace {

using kernels::Conv1dDims;

template <typename T>
double max_rel_error(const std::vector<T>& a, const std::vector<T>& ref) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct KernelCase {
  std::vector<int> lengths;
  int F, C, k;
};

std::vector<KernelCase> kernel_cases() {
  std::vector<int> many(300);  // 300 rows: several column chunks of whole steps
  for (int b = 0; b < 300; ++b) many[b] = 12 - b / 30;
  return {{{7, 7, 6, 5, 5, 3, 2, 1, 1}, 3, 4, 5},
          {{6, 6, 6}, 2, 3, 3},
          {{4, 2, 1}, 3, 2, 7},
          {{5, 3}, 4, 5, 1},
          {{1}, 2, 2, 3},
          {many, 2, 3, 5}};
}

// Random x with zeros at padded steps, and dy with garbage at padded rows (must be ignored).
template <typename T>
void kernel_matches_reference(const KernelCase& kc, double tol) {
  SeqInfo seq = SeqInfo::from_lengths(kc.lengths);
  Conv1dDims d;
  d.steps = seq.steps;
  d.batch = seq.batch;
  d.in_features = kc.F;
  d.out_channels = kc.C;
  d.kernel = kc.k;
  const std::size_t S = d.steps, B = d.batch;
  Rng rng(17);
  std::vector<T> x(S * B * kc.F, T(0)), dy(S * B * kc.C);
  for (std::size_t t = 0; t < S; ++t)
    for (std::size_t b = 0; b < B; ++b)
      if (static_cast<int>(t) < kc.lengths[b])
        for (int f = 0; f < kc.F; ++f) x[(t * B + b) * kc.F + f] = static_cast<T>(rng.normal());
  for (auto& v : dy) v = static_cast<T>(rng.normal());
  std::vector<T> w(static_cast<std::size_t>(kc.C) * kc.F * kc.k), bias(kc.C);
  for (auto& v : w) v = static_cast<T>(rng.normal());
  for (auto& v : bias) v = static_cast<T>(rng.normal());
  const int* bs = seq.full ? nullptr : seq.batch_sizes.data();

  std::vector<T> y_ref(S * B * kc.C), y(y_ref.size(), T(7)), y_direct(y_ref.size(), T(7));
  kernels::reference::conv1d_forward(d, kc.lengths, x.data(), w.data(), bias.data(), y_ref.data());
  std::vector<T> col, dcol;
  kernels::conv1d_forward(d, bs, x.data(), w.data(), bias.data(), y.data(), col);
  kernels::conv1d_forward_direct(d, bs, x.data(), w.data(), bias.data(), y_direct.data());
  EXPECT_LT(max_rel_error(y, y_ref), tol);
  EXPECT_LT(max_rel_error(y_direct, y_ref), tol);
  for (std::size_t t = 0; t < S; ++t)
    for (std::size_t b = 0; b < B; ++b)
      if (static_cast<int>(t) >= kc.lengths[b]) {
        for (int c = 0; c < kc.C; ++c) ASSERT_EQ(y[(t * B + b) * kc.C + c], T(0));
      }

  std::vector<T> dx_ref(x.size()), dw_ref(w.size(), T(0.5)), db_ref(kc.C, T(0.25));
  std::vector<T> dx(x.size(), T(9)), dw(w.size(), T(0.5)), db(kc.C, T(0.25));
  kernels::reference::conv1d_backward(d, kc.lengths, x.data(), w.data(), dy.data(), dx_ref.data(),
                                      dw_ref.data(), db_ref.data());
  kernels::conv1d_backward(d, bs, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(),
                           col, dcol);
  EXPECT_LT(max_rel_error(dx, dx_ref), tol) << "dx";
  EXPECT_LT(max_rel_error(dw, dw_ref), tol) << "dw (added)";
  EXPECT_LT(max_rel_error(db, db_ref), tol) << "db (added)";
  // Without an input gradient the parameter gradients are the same.
  std::vector<T> dw2(w.size(), T(0.5)), db2(kc.C, T(0.25));
  kernels::conv1d_backward(d, bs, x.data(), w.data(), dy.data(), static_cast<T*>(nullptr),
                           dw2.data(), db2.data(), col, dcol);
  EXPECT_LT(max_rel_error(dw2, dw_ref), tol);
  EXPECT_LT(max_rel_error(db2, db_ref), tol);
}

TEST(Conv1dKernels, MatchTheReferenceInDouble) {
  for (const auto& kc : kernel_cases()) kernel_matches_reference<double>(kc, 1e-12);
}
TEST(Conv1dKernels, MatchTheReferenceInFloat) {
  for (const auto& kc : kernel_cases()) kernel_matches_reference<float>(kc, 1e-5);
}

// ---- through the model ----

ModelSpec conv_text_spec(int vocab, int kernel, Pooling pooling, bool ids, int features = 3) {
  ModelSpec spec;
  spec.num_classes = 3;
  if (ids) {
    spec.input = ActShape{ActKind::sequence, 0};
    spec.input.ids = true;
    LayerSpec e;
    e.type = "embedding";
    e.name = "embed";
    e.vocab = vocab;
    e.size = 5;
    spec.layers.push_back(e);
  } else {
    spec.input = ActShape{ActKind::sequence, features};
  }
  LayerSpec c;
  c.type = "conv1d";
  c.name = "conv";
  c.size = 6;
  c.kernel = kernel;
  spec.layers.push_back(c);
  LayerSpec a;
  a.type = ids ? "relu" : "tanh";
  a.name = "act";
  spec.layers.push_back(a);
  LayerSpec p;
  p.type = "pool";
  p.name = "pool";
  p.pooling = pooling;
  spec.layers.push_back(p);
  LayerSpec h;
  h.type = "linear";
  h.name = "head";
  h.size = 3;
  spec.layers.push_back(h);
  return spec;
}

struct Batch {
  SeqInfo seq;
  std::vector<std::int32_t> ids;
  std::vector<double> x;
};

Batch make_batch(const std::vector<int>& lengths, int vocab, int F, std::uint64_t seed) {
  Batch b;
  b.seq = SeqInfo::from_lengths(lengths);
  const int S = b.seq.steps, B = b.seq.batch;
  Rng rng(seed);
  b.ids.assign(static_cast<size_t>(S) * B, 0);
  b.x.assign(static_cast<size_t>(S) * B * F, 0.0);
  for (int t = 0; t < S; ++t)
    for (int r = 0; r < B; ++r)
      if (t < lengths[r]) {
        b.ids[static_cast<size_t>(t) * B + r] = 2 + static_cast<int>(rng.below(vocab - 2));
        for (int f = 0; f < F; ++f) b.x[(static_cast<size_t>(t) * B + r) * F + f] = rng.normal();
      }
  return b;
}

template <typename T>
void padded_equals_one_at_a_time(int kernel, double tol) {
  const int vocab = 13, C = 3;
  const std::vector<int> lengths = {9, 8, 8, 6, 5, 3, 2, 1, 1};
  Model<T> model(conv_text_spec(vocab, kernel, Pooling::max, true));
  model.init(42);
  const Batch batch = make_batch(lengths, vocab, 1, 7);
  const int S = batch.seq.steps, B = batch.seq.batch;
  Rng rng(3);
  std::vector<T> dlogits(static_cast<size_t>(B) * C);
  for (auto& d : dlogits) d = static_cast<T>(rng.normal());
  ModelInput<T> in;
  in.batch = B;
  in.seq = &batch.seq;
  in.ids = batch.ids.data();
  ModelWorkspace<T> ws;
  const T* logits = model.forward(in, ws, true);
  std::vector<T> batched_logits(logits, logits + static_cast<size_t>(B) * C);
  std::vector<T> batched_grads(model.num_params(), T(0));
  model.backward(in, ws, dlogits.data(), batched_grads.data());

  std::vector<T> summed(model.num_params(), T(0));
  const int W = model.layer(1).output_shape().features;
  for (int r = 0; r < B; ++r) {
    const int len = lengths[r];
    const SeqInfo one = SeqInfo::fixed(len, 1);
    std::vector<std::int32_t> ids1(static_cast<size_t>(len));
    for (int t = 0; t < len; ++t) ids1[t] = batch.ids[static_cast<size_t>(t) * B + r];
    ModelInput<T> in1;
    in1.batch = 1;
    in1.seq = &one;
    in1.ids = ids1.data();
    ModelWorkspace<T> ws1;
    const T* l1 = model.forward(in1, ws1, true);
    for (int k = 0; k < C; ++k)
      EXPECT_NEAR(l1[k], batched_logits[static_cast<size_t>(r) * C + k], tol) << "row " << r;
    for (int t = 0; t < S; ++t)
      for (int j = 0; j < W; ++j) {
        const T batched = ws.outs[1][(static_cast<size_t>(t) * B + r) * W + j];
        if (t < len)
          EXPECT_NEAR(ws1.outs[1][static_cast<size_t>(t) * W + j], batched, tol);
        else
          EXPECT_EQ(batched, T(0)) << "padded step " << t << " of row " << r;
      }
    model.backward(in1, ws1, dlogits.data() + static_cast<size_t>(r) * C, summed.data());
  }
  double worst = 0;
  for (size_t k = 0; k < summed.size(); ++k)
    worst = std::max(worst, std::fabs(static_cast<double>(summed[k] - batched_grads[k])) /
                                std::max(1.0, std::fabs(static_cast<double>(summed[k]))));
  EXPECT_LT(worst, tol) << "parameter gradients";
}

TEST(Conv1dPaddedBatch, DoubleEqualsOneAtATime) {
  for (int k : {1, 3, 5}) padded_equals_one_at_a_time<double>(k, 1e-9);
}
TEST(Conv1dPaddedBatch, FloatEqualsOneAtATime) {
  for (int k : {1, 3, 5}) padded_equals_one_at_a_time<float>(k, 1e-5);
}

// Central differences of loss = sum(logits * w) against backward, in double, on a ragged batch.
void finite_difference_check(bool ids, Pooling pooling, int kernel) {
  const int vocab = 9, F = 3, C = 3;
  Model<double> model(conv_text_spec(vocab, kernel, pooling, ids, F));
  model.init(5);
  const Batch batch = make_batch({6, 5, 5, 3, 1}, vocab, F, 11);
  const int B = batch.seq.batch;
  ModelInput<double> in;
  in.batch = B;
  in.seq = &batch.seq;
  in.ids = batch.ids.data();
  in.x = batch.x.data();
  Rng rng(9);
  std::vector<double> w(static_cast<size_t>(B) * C);
  for (auto& v : w) v = rng.normal();
  ModelWorkspace<double> ws;
  auto loss = [&]() {
    const double* z = model.forward(in, ws, false);
    double s = 0;
    for (size_t k = 0; k < w.size(); ++k) s += z[k] * w[k];
    return s;
  };
  model.forward(in, ws, true);
  std::vector<double> grads(model.num_params(), 0.0);
  model.backward(in, ws, w.data(), grads.data());
  const double h = 1e-6;
  int checked = 0;
  for (size_t k = 0; k < model.num_params(); ++k) {
    const double numeric = test::central_difference(model.params()[k], h, loss);
    EXPECT_NEAR(grads[k], numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << "parameter " << k;
    ++checked;
  }
  EXPECT_GT(checked, 70);
}

TEST(Conv1dGradients, EmbeddingConvReluMaxMatchFiniteDifferences) {
  finite_difference_check(true, Pooling::max, 3);
  finite_difference_check(true, Pooling::max, 5);
}
TEST(Conv1dGradients, FeaturesConvTanhMeanMatchFiniteDifferences) {
  finite_difference_check(false, Pooling::mean, 3);
}

TEST(Conv1dLayer, InitialisesAsPyTorchAndRoundTripsThroughJson) {
  ModelSpec spec = conv_text_spec(50, 5, Pooling::max, true);
  Model<float> model(spec);
  model.init(1);
  const ParamInfo* w = nullptr;
  for (const ParamInfo& p : model.layout().entries())
    if (p.name == "conv.weight") w = &p;
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<std::int64_t>{6, 5, 5}));
  const double bound = 1.0 / std::sqrt(5.0 * 5.0);
  double widest = 0;
  for (std::size_t k = 0; k < 150; ++k)
    widest = std::max(widest, std::fabs(static_cast<double>(model.params()[w->offset + k])));
  EXPECT_LE(widest, bound);
  EXPECT_GT(widest, 0.8 * bound);
  const ModelSpec back = model_spec_from_json(to_json(spec), "spec");
  ASSERT_EQ(back.layers.size(), spec.layers.size());
  EXPECT_EQ(back.layers[1].type, "conv1d");
  EXPECT_EQ(back.layers[1].kernel, 5);
  EXPECT_EQ(back.layers[1].size, 6);
  EXPECT_EQ(back.parameter_count(), spec.parameter_count());
  EXPECT_EQ(spec.parameter_count(), 50u * 5 + 6u * 5 * 5 + 6 + 6u * 3 + 3);
}

TEST(Conv1dLayer, BadSpecsNameTheLayerAndField) {
  auto error_of = [](const ModelSpec& s) {
    try {
      s.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ModelSpec s = conv_text_spec(20, 4, Pooling::max, true);
  EXPECT_NE(error_of(s).find("layer 1 (conv1d): conv1d kernel must be odd"), std::string::npos)
      << error_of(s);
  s.layers[1].kernel = 3;
  s.layers[1].padding = 3;
  EXPECT_NE(error_of(s).find("conv1d padding is always \"same\""), std::string::npos);
  s.layers[1].padding = 1;
  s.layers[1].stride = 2;
  EXPECT_NE(error_of(s).find("conv1d stride must be 1"), std::string::npos);
  s.layers[1].stride = 0;
  s.layers[1].size = 0;
  EXPECT_NE(error_of(s).find("conv1d size (output channels)"), std::string::npos);
  s.layers[1].size = 4;
  EXPECT_EQ(error_of(s), "no error");
  ModelSpec first = s;
  first.layers.erase(first.layers.begin());  // conv1d reading token ids
  EXPECT_NE(error_of(first).find("conv1d reads a sequence of features"), std::string::npos)
      << error_of(first);
}

}  // namespace
}  // namespace recur
