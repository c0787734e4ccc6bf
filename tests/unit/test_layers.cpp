// Models built from layers: a padded, length-sorted batch gives the outputs and gradients of its
// samples run one at a time without padding (LSTM, GRU, RNN; uni- and bidirectional; 1 and 2
// layers; every pooling; token ids and features; float with the packed fast path and double);
// finite-difference checks of the embedding, the masked poolings and untied recurrent weights;
// the fixed-shape Network and its layer form (model_spec_from_config) initialise and compute the
// same bit for bit, tied and untied, with dropout in training mode too.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "support/finite_difference.hpp"
#include "support/fixed_network.hpp"

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
      for (Pooling p : {Pooling::last, Pooling::mean, Pooling::max, Pooling::maxmean}) {
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
    const double numeric = test::central_difference(model.params()[k], h, loss);
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
TEST(LayerGradients, EmbeddingAndMaxMeanPoolingMatchFiniteDifferences) {
  finite_difference_check({CellKind::lstm, true, 1, Pooling::maxmean, true});
  finite_difference_check({CellKind::gru, false, 2, Pooling::maxmean, false});
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
      for (size_t k = 0; k < g1.size(); ++k) ASSERT_EQ(g1[k], g2[k]) << "gradient " << k;
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

// ---- the layer form of Network, bit for bit ----

// The tensor holding arena element k (for messages).
std::string tensor_at(const ParamLayout& layout, size_t k) {
  for (const ParamInfo& p : layout.entries())
    if (k >= p.offset && k < p.offset + p.size)
      return p.name + "[" + std::to_string(k - p.offset) + "]";
  return "?";
}

// Counts the elements where a and b differ (exactly) and names the first.
size_t count_different(const std::vector<float>& a, const std::vector<float>& b,
                       const ParamLayout* layout, std::string& first) {
  size_t n = 0;
  for (size_t k = 0; k < a.size(); ++k)
    if (!(a[k] == b[k])) {
      if (n++ == 0) {
        first = layout ? tensor_at(*layout, k) : "element " + std::to_string(k);
        first += ": ";
        first += std::to_string(a[k]);
        first += " against ";
        first += std::to_string(b[k]);
      }
    }
  return n;
}

// Network<float>(cfg) and Model<float>(model_spec_from_config(cfg)), both seeded alike, on one
// batch of B full-length sequences in training mode (each forward drawing its dropout masks from
// its own Rng, seeded alike): the same tensors, and the same initial values, logits and
// gradients, bit for bit.
void expect_network_and_layer_form_identical(const ModelConfig& cfg, int B, bool prepare,
                                             const std::string& what) {
  SCOPED_TRACE(what);
  Network<float> net(cfg);
  net.init(17);
  Model<float> model(model_spec_from_config(cfg));
  model.init(17);
  const auto& ne = net.layout().entries();
  const auto& me = model.layout().entries();
  ASSERT_EQ(me.size(), ne.size());
  for (size_t k = 0; k < ne.size(); ++k) {
    EXPECT_EQ(me[k].name, ne[k].name);
    EXPECT_EQ(me[k].shape, ne[k].shape) << ne[k].name;
    EXPECT_EQ(me[k].offset, ne[k].offset) << ne[k].name;
  }
  ASSERT_EQ(model.num_params(), net.num_params());
  EXPECT_EQ(model.spec().parameter_count(), cfg.parameter_count());
  EXPECT_EQ(model.num_params(), static_cast<size_t>(cfg.parameter_count()));
  std::string first;
  EXPECT_EQ(count_different(net.params(), model.params(), &net.layout(), first), 0u)
      << "initial values differ, first at " << first;
  if (prepare) {
    net.prepare();
    model.prepare();
  }

  Rng data(4);
  std::vector<float> x(static_cast<size_t>(cfg.steps) * B * cfg.input_size);
  for (auto& v : x) v = static_cast<float>(data.normal());
  std::vector<float> dl(static_cast<size_t>(B) * cfg.num_classes);
  for (auto& v : dl) v = static_cast<float>(data.normal());

  Rng net_rng(2024), model_rng(2024);
  NetworkWorkspace<float> nws;
  const float* a = net.forward(x.data(), B, nws, true, &net_rng);
  const std::vector<float> net_logits(a, a + dl.size());
  const SeqInfo seq = SeqInfo::fixed(cfg.steps, B);
  ModelInput<float> in;
  in.x = x.data();
  in.batch = B;
  in.seq = &seq;
  ModelWorkspace<float> mws;
  const float* b = model.forward(in, mws, true, &model_rng);
  const std::vector<float> model_logits(b, b + dl.size());
  EXPECT_EQ(count_different(net_logits, model_logits, nullptr, first), 0u)
      << "logits differ, first at " << first;
  const std::uint64_t net_next = net_rng.next_u64();
  EXPECT_EQ(net_next, model_rng.next_u64()) << "the forwards drew differently";
  if (cfg.dropout > 0 && cfg.layers > 1) {
    EXPECT_NE(net_next, Rng(2024).next_u64()) << "no dropout mask was drawn";
  }

  std::vector<float> g1(net.num_params(), 0.f), g2(model.num_params(), 0.f);
  net.backward(x.data(), B, nws, dl.data(), g1.data());
  model.backward(in, mws, dl.data(), g2.data());
  EXPECT_EQ(count_different(g1, g2, &net.layout(), first), 0u)
      << "gradients differ, first at " << first;
}

ModelConfig small_config(CellKind cell, bool untied, bool bi) {
  ModelConfig cfg;
  cfg.cell = cell;
  cfg.input_size = 6;
  cfg.steps = 5;
  cfg.hidden = 7;
  cfg.layers = 2;
  cfg.bidirectional = bi;
  cfg.projection = 4;
  cfg.num_classes = 10;
  cfg.untied = untied;
  cfg.init.recurrent.kind = InitKind::orthogonal;
  cfg.init.forget_bias = 1.0;
  return cfg;
}

std::string config_name(const ModelConfig& cfg, int B, bool prepare) {
  std::string s = to_string(cfg.cell);
  s += cfg.bidirectional ? " bi" : " uni";
  s += cfg.untied ? " untied" : " tied";
  s += " layers=" + std::to_string(cfg.layers);
  s += " projection=" + std::to_string(cfg.projection);
  s += " pooling=" + to_string(cfg.pooling);
  s += " dropout=" + std::to_string(cfg.dropout);
  s += " B=" + std::to_string(B);
  s += prepare ? " prepared" : "";
  return s;
}

// Untied weights (one W_ih and W_hh per step) have a layer form too: the recurrent layer with
// untied_steps = steps gives Network's untied model bit for bit, with and without prepare().
TEST(LayerForm, UntiedNetworkConfigGivesTheSameModelExactly) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh})
    for (bool bi : {false, true})
      for (int B : {9, 3})
        for (bool prepare : {false, true}) {
          ModelConfig cfg = small_config(cell, true, bi);
          cfg.pooling = B == 9 ? Pooling::last : Pooling::mean;
          expect_network_and_layer_form_identical(cfg, B, prepare, config_name(cfg, B, prepare));
        }
  // No projection, one layer, no biases, max pooling.
  ModelConfig cfg = small_config(CellKind::rnn_relu, true, false);
  cfg.projection = 0;
  cfg.layers = 1;
  cfg.bias = false;
  cfg.pooling = Pooling::max;
  expect_network_and_layer_form_identical(cfg, 9, false, config_name(cfg, 9, false));
}

// The layer spec carries the untied steps; its tensors are Network's untied ones.
TEST(LayerForm, UntiedSpecHasOneWeightSetPerStep) {
  ModelConfig cfg = small_config(CellKind::gru, true, true);
  const ModelSpec spec = model_spec_from_config(cfg);
  ASSERT_EQ(spec.layers.size(), 4u);
  EXPECT_EQ(spec.layers[1].type, "recurrent");
  EXPECT_EQ(spec.layers[1].untied_steps, 5);
  Model<float> model(spec);
  const ParamInfo* ih = model.layout().find("rnn.weight_ih_l0");
  const ParamInfo* hh = model.layout().find("rnn.weight_hh_l1_reverse");
  const ParamInfo* bias = model.layout().find("rnn.bias_ih_l0");
  ASSERT_TRUE(ih && hh && bias);
  EXPECT_EQ(ih->shape, (std::vector<int64_t>{5, 21, 4}));
  EXPECT_EQ(hh->shape, (std::vector<int64_t>{5, 21, 7}));
  EXPECT_EQ(bias->shape, (std::vector<int64_t>{21}));
  EXPECT_EQ(spec.parameter_count(), cfg.parameter_count());
  cfg.untied = false;
  EXPECT_EQ(model_spec_from_config(cfg).layers[1].untied_steps, 0);
  EXPECT_EQ(model_spec_from_config(cfg).parameter_count(), cfg.parameter_count());
}

// Dropout between stacked layers in training mode, with a projection: the layer chain draws
// the same masks from an equally seeded Rng as Network, so training through it is the old
// trainer's training bit for bit.
TEST(LayerForm, TrainingWithDropoutMatchesNetworkExactly) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh})
    for (bool bi : {false, true})
      for (bool untied : {false, true})
        for (int B : {9, 64})
          for (bool prepare : {false, true}) {
            ModelConfig cfg = small_config(cell, untied, bi);
            cfg.dropout = 0.3;
            expect_network_and_layer_form_identical(cfg, B, prepare, config_name(cfg, B, prepare));
          }
}

// A version-1 checkpoint of an untied model loads through its layer form with the same values.
TEST(LayerForm, UntiedVersion1CheckpointLoads) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("recur-layers-untied-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "untied.safetensors").string();
  ModelConfig cfg = small_config(CellKind::rnn_tanh, true, false);
  Network<float> net(cfg);
  net.init(8);
  save_model(path, net, {{"recur.view", "rows"}});
  const LoadedCheckpoint loaded = load_checkpoint(path);
  fs::remove_all(dir);
  EXPECT_EQ(loaded.format, 1);
  ASSERT_TRUE(loaded.model);
  EXPECT_EQ(loaded.model->spec().layers[1].untied_steps, cfg.steps);
  EXPECT_EQ(loaded.model->params(), net.params());
  const int B = 3;
  std::vector<float> x(static_cast<size_t>(cfg.steps) * B * cfg.input_size);
  Rng rng(6);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  NetworkWorkspace<float> nws;
  const float* a = net.forward(x.data(), B, nws, false);
  const SeqInfo seq = SeqInfo::fixed(cfg.steps, B);
  ModelInput<float> in;
  in.x = x.data();
  in.batch = B;
  in.seq = &seq;
  ModelWorkspace<float> mws;
  const float* b = loaded.model->forward(in, mws, false);
  for (int k = 0; k < B * cfg.num_classes; ++k) EXPECT_EQ(a[k], b[k]) << "logit " << k;
}

ModelSpec untied_spec(CellKind cell, bool bi, int layers, int steps, Pooling pooling) {
  Case c{cell, bi, layers, pooling, false};
  ModelSpec spec = text_spec(c, 0, 3);
  spec.layers[0].untied_steps = steps;
  spec.layers[0].dropout = 0.0;
  return spec;
}

// Central differences of loss = sum(logits * w) against backward for the untied layer, in double.
void untied_finite_difference_check(CellKind cell, bool bi, int layers, Pooling pooling) {
  const int S = 4, B = 3, F = 3, C = 3;
  Model<double> model(untied_spec(cell, bi, layers, S, pooling));
  model.init(13);
  const Batch batch = make_batch(std::vector<int>(B, S), 2, F, 21);
  ModelInput<double> in;
  in.batch = B;
  in.seq = &batch.seq;
  in.x = batch.x.data();
  Rng rng(10);
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
    EXPECT_NEAR(grads[k], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
        << tensor_at(model.layout(), k);
    ++checked;
  }
  // Every step's weights get a gradient of their own.
  const ParamInfo* ih = model.layout().find("rnn.weight_ih_l0");
  ASSERT_NE(ih, nullptr);
  const size_t per_step = ih->size / S;
  for (int t = 0; t < S; ++t) {
    double norm = 0;
    for (size_t j = 0; j < per_step; ++j) norm += std::fabs(grads[ih->offset + t * per_step + j]);
    EXPECT_GT(norm, 0) << "step " << t;
  }
  EXPECT_GT(checked, 200);
}

TEST(LayerGradients, UntiedLstmMatchesFiniteDifferences) {
  untied_finite_difference_check(CellKind::lstm, true, 2, Pooling::last);
}
TEST(LayerGradients, UntiedGruMatchesFiniteDifferences) {
  untied_finite_difference_check(CellKind::gru, false, 2, Pooling::mean);
}
TEST(LayerGradients, UntiedRnnMatchesFiniteDifferences) {
  untied_finite_difference_check(CellKind::rnn_tanh, true, 1, Pooling::max);
}

// A batch whose steps are not the untied layer's, or whose samples are not all full length,
// is refused with an Error naming the layer and the reason.
TEST(LayerForm, UntiedRefusesOtherSequenceLengths) {
  Model<float> model(untied_spec(CellKind::lstm, false, 1, 5, Pooling::last));
  model.init(1);
  auto expect_refused = [&](const SeqInfo& seq, const std::string& part) {
    std::vector<float> x(static_cast<size_t>(seq.steps) * seq.batch * 3, 0.5f);
    ModelInput<float> in;
    in.x = x.data();
    in.batch = seq.batch;
    in.seq = &seq;
    ModelWorkspace<float> ws;
    try {
      model.forward(in, ws, false);
      FAIL() << "accepted a batch of " << seq.steps << " steps";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("layer 0 (recurrent)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("'rnn'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("untied"), std::string::npos) << msg;
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
    }
  };
  expect_refused(SeqInfo::fixed(6, 2), "the batch has 6 steps");
  expect_refused(SeqInfo::fixed(4, 9), "the batch has 4 steps");
  expect_refused(SeqInfo::from_lengths({5, 5, 3}), "other lengths");
  // The right length runs.
  const SeqInfo ok = SeqInfo::fixed(5, 2);
  std::vector<float> x(5 * 2 * 3, 0.5f);
  ModelInput<float> in;
  in.x = x.data();
  in.batch = 2;
  in.seq = &ok;
  ModelWorkspace<float> ws;
  EXPECT_NO_THROW(model.forward(in, ws, false));
  // A negative step count is refused when the model is built.
  ModelSpec bad = untied_spec(CellKind::gru, false, 1, -2, Pooling::last);
  EXPECT_THROW(bad.validate(), Error);
}

// The JSON form keeps untied_steps, and writes it only for untied layers.
TEST(LayerSpecs, UntiedJsonRoundTrip) {
  const ModelSpec spec = untied_spec(CellKind::gru, true, 2, 7, Pooling::max);
  const std::string json = to_json(spec);
  EXPECT_NE(json.find("\"untied_steps\":7"), std::string::npos) << json;
  const ModelSpec back = model_spec_from_json(json, "m.safetensors");
  EXPECT_EQ(back.layers[0].untied_steps, 7);
  EXPECT_EQ(to_json(back), json);
  EXPECT_EQ(back.parameter_count(), spec.parameter_count());
  const ModelSpec tied = untied_spec(CellKind::gru, true, 2, 0, Pooling::max);
  EXPECT_EQ(to_json(tied).find("untied"), std::string::npos) << to_json(tied);
  // 7 steps of every weight matrix, shared biases, against the tied layer.
  const std::uint64_t G = 3, H = 4, D = 2;
  const std::uint64_t matrices = D * G * H * (3 + H) + D * G * H * (H * D + H);
  EXPECT_EQ(spec.parameter_count() - tied.parameter_count(), 6 * matrices);
}

}  // namespace
}  // namespace recur

namespace recur {
namespace {

// Packing again into an earlier packing (what the trainer does every step, through
// Layer::prepare_into, so that the packed weights keep their memory, its threads sharing the
// work) gives bit for bit what a fresh packing of the same weights on one thread gives, whatever
// the earlier packing was for.
TEST(LayerForm, PackingAgainEqualsPackingAfresh) {
  ThreadPool pool(2);
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh}) {
    ModelConfig cfg = small_config(cell, false, true);
    cfg.projection = 0;
    const int B = 9;  // at least 8 rows: the packed kernels in training too
    Model<float> reused(model_spec_from_config(cfg));
    reused.init(3);
    for (PrepareFor use :
         {PrepareFor::inference, PrepareFor::int8, PrepareFor::training_bf16, PrepareFor::training})
      reused.prepare(use);
    for (float& v : reused.params()) v *= 0.75f;
    Rng data(5);
    std::vector<float> x(static_cast<size_t>(cfg.steps) * B * cfg.input_size);
    for (float& v : x) v = static_cast<float>(data.normal());
    std::vector<float> dl(static_cast<size_t>(B) * cfg.num_classes);
    for (float& v : dl) v = static_cast<float>(data.normal());
    const SeqInfo seq = SeqInfo::fixed(cfg.steps, B);
    ModelInput<float> in;
    in.x = x.data();
    in.batch = B;
    in.seq = &seq;
    for (PrepareFor use : {PrepareFor::training, PrepareFor::inference, PrepareFor::training}) {
      SCOPED_TRACE(to_string(cell) + (use == PrepareFor::training ? " training" : " inference"));
      const bool train = use == PrepareFor::training;
      reused.prepare(use, &pool);
      Model<float> fresh(model_spec_from_config(cfg));
      fresh.params() = reused.params();
      fresh.prepare(use);
      ModelWorkspace<float> ws1, ws2;
      const float* a = reused.forward(in, ws1, train);
      const std::vector<float> la(a, a + dl.size());
      const float* b = fresh.forward(in, ws2, train);
      const std::vector<float> lb(b, b + dl.size());
      std::string first;
      EXPECT_EQ(count_different(la, lb, nullptr, first), 0u) << "logits differ, first at " << first;
      if (!train) continue;
      std::vector<float> g1(reused.num_params(), 0.f), g2(fresh.num_params(), 0.f);
      reused.backward(in, ws1, dl.data(), g1.data());
      fresh.backward(in, ws2, dl.data(), g2.data());
      EXPECT_EQ(count_different(g1, g2, &fresh.layout(), first), 0u)
          << "gradients differ, first at " << first;
      for (float& v : reused.params()) v *= 1.25f;  // the next packing sees other weights
    }
  }
}

}  // namespace
}  // namespace recur
