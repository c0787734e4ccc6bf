// Models built from layers: a padded, length-sorted batch gives the outputs and gradients of its
// samples run one at a time without padding (LSTM, GRU, RNN; uni- and bidirectional; 1 and 2
// layers; every pooling; token ids and features; float with the packed fast path and double);
// finite-difference checks of the embedding and the masked poolings; the fixed-shape Network and
// its layer form (model_spec_from_config) initialise and compute the same.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

struct Case {
  CellKind cell;
  bool bidirectional;
  int layers;
  Pooling pooling;
  bool ids;
};

std::string case_name(const Case& c) {
  return to_string(c.cell) + (c.bidirectional ? "_bi" : "_uni") + "_l" + std::to_string(c.layers) +
         "_" + to_string(c.pooling) + (c.ids ? "_ids" : "_x");
}

ModelSpec text_spec(const Case& c, int vocab, int features) {
  ModelSpec spec;
  spec.num_classes = 3;
  if (c.ids) {
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
  LayerSpec r;
  r.type = "recurrent";
  r.name = "rnn";
  r.cell = c.cell;
  r.size = 4;
  r.layers = c.layers;
  r.bidirectional = c.bidirectional;
  r.forget_bias = 1.0;
  spec.layers.push_back(r);
  LayerSpec p;
  p.type = "pool";
  p.name = "pool";
  p.pooling = c.pooling;
  spec.layers.push_back(p);
  LayerSpec h;
  h.type = "linear";
  h.name = "head";
  h.size = 3;
  spec.layers.push_back(h);
  return spec;
}

// Samples of the given lengths (sorted, longest first): ids or features, time-major, padded.
struct Batch {
  SeqInfo seq;
  std::vector<std::int32_t> ids;  // [S, B]
  std::vector<double> x;          // [S, B, F]
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
void padded_equals_one_at_a_time(const Case& c, double tol) {
  const int vocab = 11, F = 3, C = 3;
  const std::vector<int> lengths = {7, 7, 6, 5, 5, 3, 2, 1, 1};  // 9 rows: the packed path
  Model<T> model(text_spec(c, vocab, F));
  model.init(42);
  const Batch batch = make_batch(lengths, vocab, F, 7);
  const int S = batch.seq.steps, B = batch.seq.batch;
  std::vector<T> x(batch.x.begin(), batch.x.end());
  Rng rng(3);
  std::vector<T> dlogits(static_cast<size_t>(B) * C);
  for (auto& d : dlogits) d = static_cast<T>(rng.normal());

  ModelInput<T> in;
  in.batch = B;
  in.seq = &batch.seq;
  if (c.ids)
    in.ids = batch.ids.data();
  else
    in.x = x.data();
  ModelWorkspace<T> ws;
  const T* logits = model.forward(in, ws, true);
  std::vector<T> batched_logits(logits, logits + static_cast<size_t>(B) * C);
  std::vector<T> batched_grads(model.num_params(), T(0));
  model.backward(in, ws, dlogits.data(), batched_grads.data());

  std::vector<T> summed(model.num_params(), T(0));
  for (int r = 0; r < B; ++r) {
    const int len = lengths[r];
    const SeqInfo one = SeqInfo::fixed(len, 1);
    std::vector<std::int32_t> ids1(static_cast<size_t>(len));
    std::vector<T> x1(static_cast<size_t>(len) * F);
    for (int t = 0; t < len; ++t) {
      ids1[t] = batch.ids[static_cast<size_t>(t) * B + r];
      for (int f = 0; f < F; ++f)
        x1[static_cast<size_t>(t) * F + f] = x[(static_cast<size_t>(t) * B + r) * F + f];
    }
    ModelInput<T> in1;
    in1.batch = 1;
    in1.seq = &one;
    if (c.ids)
      in1.ids = ids1.data();
    else
      in1.x = x1.data();
    ModelWorkspace<T> ws1;
    const T* l1 = model.forward(in1, ws1, true);
    for (int k = 0; k < C; ++k)
      EXPECT_NEAR(l1[k], batched_logits[static_cast<size_t>(r) * C + k], tol)
          << "row " << r << " logit " << k;
    // The recurrent layer's outputs at the row's real steps; zero at its padded steps.
    const std::size_t li = c.ids ? 1 : 0;
    const int W = model.layer(li).output_shape().features;
    for (int t = 0; t < S; ++t)
      for (int j = 0; j < W; ++j) {
        const T batched = ws.outs[li][(static_cast<size_t>(t) * B + r) * W + j];
        if (t < len)
          EXPECT_NEAR(ws1.outs[li][static_cast<size_t>(t) * W + j], batched, tol);
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

class PaddedBatch : public ::testing::TestWithParam<Case> {};

TEST_P(PaddedBatch, DoubleEqualsOneAtATime) {
  padded_equals_one_at_a_time<double>(GetParam(), 1e-9);
}
TEST_P(PaddedBatch, FloatEqualsOneAtATime) {
  padded_equals_one_at_a_time<float>(GetParam(), 1e-5);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh})
    for (bool bi : {false, true})
      for (Pooling p : {Pooling::last, Pooling::mean, Pooling::max}) {
        cases.push_back({cell, bi, 1, p, true});
        cases.push_back({cell, bi, 2, p, false});
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cells, PaddedBatch, ::testing::ValuesIn(all_cases()),
                         [](const auto& test) { return case_name(test.param); });

// Central differences of loss = sum(logits * w) against backward, in double, on a ragged batch:
// covers the embedding's scatter-add and the pooling over real steps only.
void finite_difference_check(const Case& c) {
  const int vocab = 9, F = 3, C = 3;
  Model<double> model(text_spec(c, vocab, F));
  model.init(5);
  const Batch batch = make_batch({5, 4, 4, 2, 1}, vocab, F, 11);
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
  loss();
  model.forward(in, ws, true);
  std::vector<double> grads(model.num_params(), 0.0);
  model.backward(in, ws, w.data(), grads.data());
  const double h = 1e-6;
  int checked = 0;
  for (size_t k = 0; k < model.num_params(); k += 3) {
    const double keep = model.params()[k];
    model.params()[k] = keep + h;
    const double up = loss();
    model.params()[k] = keep - h;
    const double down = loss();
    model.params()[k] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grads[k], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
        << "parameter " << k << " of " << case_name(c);
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST(LayerGradients, EmbeddingAndMaxPoolingMatchFiniteDifferences) {
  finite_difference_check({CellKind::lstm, true, 1, Pooling::max, true});
}
TEST(LayerGradients, EmbeddingAndMeanPoolingMatchFiniteDifferences) {
  finite_difference_check({CellKind::gru, true, 1, Pooling::mean, true});
}
TEST(LayerGradients, EmbeddingAndLastPoolingMatchFiniteDifferences) {
  finite_difference_check({CellKind::rnn_tanh, true, 2, Pooling::last, true});
}
TEST(LayerGradients, FeaturesAndMaxPoolingMatchFiniteDifferences) {
  finite_difference_check({CellKind::lstm, false, 2, Pooling::max, false});
}

// The embedding's rows of tokens absent from the batch get no gradient; padded ids never count.
TEST(LayerGradients, EmbeddingTouchesOnlyTheBatchTokens) {
  const Case c{CellKind::lstm, false, 1, Pooling::mean, true};
  Model<double> model(text_spec(c, 20, 0));
  model.init(1);
  const SeqInfo seq = SeqInfo::from_lengths({3, 1});
  const std::vector<std::int32_t> ids = {4, 5, 6, 0, 7, 0};  // [S=3, B=2]; row 1 has only "5"
  ModelInput<double> in;
  in.batch = 2;
  in.seq = &seq;
  in.ids = ids.data();
  ModelWorkspace<double> ws;
  model.forward(in, ws, true);
  std::vector<double> dl(6, 1.0), grads(model.num_params(), 0.0);
  model.backward(in, ws, dl.data(), grads.data());
  const ParamInfo* e = model.layout().find("embed.weight");
  ASSERT_NE(e, nullptr);
  for (int id = 0; id < 20; ++id) {
    double norm = 0;
    for (int j = 0; j < 5; ++j)
      norm += std::fabs(grads[e->offset + static_cast<size_t>(id) * 5 + j]);
    const bool used = id == 4 || id == 5 || id == 6 || id == 7;
    EXPECT_EQ(norm > 0, used) << "token " << id;
  }
}

// The fixed-shape model and its layer form: same tensors, same initial values, same logits and
// gradients, so version-1 checkpoints load into the layer form unchanged.
TEST(LayerForm, NetworkConfigGivesTheSameModel) {
  for (bool bi : {false, true})
    for (Pooling p : {Pooling::last, Pooling::mean, Pooling::max}) {
      ModelConfig cfg;
      cfg.cell = CellKind::lstm;
      cfg.input_size = 6;
      cfg.steps = 5;
      cfg.hidden = 7;
      cfg.layers = 2;
      cfg.bidirectional = bi;
      cfg.projection = 4;
      cfg.pooling = p;
      cfg.num_classes = 10;
      cfg.init.recurrent.kind = InitKind::orthogonal;
      cfg.init.forget_bias = 1.0;
      Network<float> net(cfg);
      net.init(17);
      Model<float> model(model_spec_from_config(cfg));
      model.init(17);
      ASSERT_EQ(model.layout().entries().size(), net.layout().entries().size());
      for (size_t k = 0; k < net.layout().entries().size(); ++k) {
        EXPECT_EQ(model.layout().entries()[k].name, net.layout().entries()[k].name);
        EXPECT_EQ(model.layout().entries()[k].shape, net.layout().entries()[k].shape);
      }
      EXPECT_EQ(model.params(), net.params()) << "initial values";
      const int B = 9;
      Rng rng(4);
      std::vector<float> x(static_cast<size_t>(cfg.steps) * B * cfg.input_size);
      for (auto& v : x) v = static_cast<float>(rng.normal());
      NetworkWorkspace<float> nws;
      const float* a = net.forward(x.data(), B, nws, true);
      const SeqInfo seq = SeqInfo::fixed(cfg.steps, B);
      ModelInput<float> in;
      in.x = x.data();
      in.batch = B;
      in.seq = &seq;
      ModelWorkspace<float> mws;
      const float* b = model.forward(in, mws, true);
      for (int k = 0; k < B * cfg.num_classes; ++k) EXPECT_EQ(a[k], b[k]) << "logit " << k;
      std::vector<float> dl(static_cast<size_t>(B) * cfg.num_classes, 0.25f);
      std::vector<float> g1(net.num_params(), 0.f), g2(model.num_params(), 0.f);
      net.backward(x.data(), B, nws, dl.data(), g1.data());
      model.backward(in, mws, dl.data(), g2.data());
      for (size_t k = 0; k < g1.size(); ++k)
        ASSERT_NEAR(g1[k], g2[k], 1e-6f * std::max(1.f, std::fabs(g1[k]))) << "gradient " << k;
    }
}

TEST(LayerSpecs, JsonRoundTripAndErrorsNameTheLayer) {
  const ModelSpec spec = text_spec({CellKind::gru, true, 2, Pooling::max, true}, 50, 0);
  const ModelSpec back = model_spec_from_json(to_json(spec), "m.safetensors");
  EXPECT_EQ(to_json(back), to_json(spec));
  ModelSpec bad = spec;
  std::swap(bad.layers[1], bad.layers[2]);  // pooling before the recurrent layer
  try {
    bad.validate();
    FAIL() << "accepted a recurrent layer after pooling";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 2 (recurrent)"), std::string::npos) << e.what();
  }
  ModelSpec wide = spec;
  wide.layers.back().size = 4;  // 3 classes
  EXPECT_THROW(wide.validate(), Error);
  EXPECT_THROW(SeqInfo::from_lengths({2, 3}), Error);
  EXPECT_THROW(model_spec_from_json("{\"input\": 3}", "m"), Error);
}

}  // namespace
}  // namespace recur
