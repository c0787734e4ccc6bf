// Golden tests of models built from layers against PyTorch's packed sequences
// (tests/golden/make_layer_fixtures.py): embedding + LSTM / GRU / RNN (uni- and bidirectional,
// 1 and 2 layers) + pooling over real steps + linear head, on ragged batches of 9 rows, and
// full-length feature batches of 9 rows; embedding + conv1d (padding k//2) + relu + max over real
// steps + linear head on ragged batches of 9 and 10 rows ("output" is then the conv1d layer's,
// zero at padded steps). Nine rows take recur's packed fast path (float), so it
// is compared with PyTorch directly. err(a, ref) = max|a - ref| / max|ref| per tensor: 1e-9 in
// double, 1e-5 in float.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "golden/golden_util.hpp"
#include "recur/layers.hpp"
#include "recur/safetensors.hpp"

namespace recur {
namespace {

using golden::as_f64;
using golden::as_i32;
using golden::rel_error;

const std::string kFixtures = std::string(RECUR_TEST_DIR) + "/golden/layers";

// Every fixture make_layer_fixtures.py writes, by name.
const std::vector<std::string> kFixtureNames = {
    "embed_bigru_mean", "embed_bilstm2_max", "embed_bilstm_max", "embed_birnn_last",
    "embed_conv1d_k3_max", "embed_conv1d_k5_max", "embed_gru_max", "embed_lstm_last",
    "features_bigru_b9_mean", "features_bilstm_ragged_mean", "features_lstm_b9_last",
    "features_rnn_b9_max",
    // Layers that change sequence lengths.
    "embed_maxpool1d_k3s2_lstm_last", "embed_avgpool1d_k3s2_gru_mean",
    "features_maxpool1d_k2_bigru_b9_mean", "features_maxpool1d_k3s1_rnn_ragged_max",
    // Max and mean pooling side by side.
    "embed_bilstm_maxmean", "features_gru_b9_maxmean"};

template <typename T>
void run_fixture(const std::string& name, double tol, bool prepared) {
  const SafetensorsFile f = read_safetensors(kFixtures + "/" + name + ".safetensors");
  const ModelSpec spec = model_spec_from_json(f.metadata.at("recur.spec"), name);
  Model<T> model(spec);
  for (const ParamInfo& p : model.layout().entries()) {
    const StoredTensor& t = f.at(p.name);
    ASSERT_EQ(t.shape, p.shape) << p.name;
    const auto v = as_f64(t);
    for (size_t k = 0; k < v.size(); ++k) model.params()[p.offset + k] = static_cast<T>(v[k]);
  }
  if (prepared) model.prepare();
  const auto lengths32 = as_i32(f.at("lengths"));
  const SeqInfo seq = SeqInfo::from_lengths(std::vector<int>(lengths32.begin(), lengths32.end()));
  const auto labels = as_i32(f.at("labels"));
  std::vector<std::int32_t> ids;
  std::vector<T> x;
  ModelInput<T> in;
  in.batch = seq.batch;
  in.seq = &seq;
  const int B = seq.batch, C = spec.num_classes;
  ASSERT_EQ(labels.size(), static_cast<std::size_t>(B));
  const std::size_t rows = static_cast<std::size_t>(seq.steps) * B;  // time-major input rows
  if (spec.input.ids) {
    ids = as_i32(f.at("ids"));
    ASSERT_EQ(ids.size(), rows);
    in.ids = ids.data();
  } else {
    const auto xd = as_f64(f.at("x"));
    ASSERT_EQ(xd.size(), rows * static_cast<std::size_t>(spec.input.features));
    x.assign(xd.begin(), xd.end());
    in.x = x.data();
  }
  ModelWorkspace<T> ws;
  const T* logits = model.forward(in, ws, true);
  EXPECT_LT(rel_error(std::span<const T>(logits, static_cast<std::size_t>(B) * C),
                      as_f64(f.at("logits"))),
            tol)
      << "logits";
  // The recurrent layer's padded output sequence (zero at padded steps, as PyTorch pads).
  const std::size_t rnn = spec.input.ids ? 1 : 0;
  EXPECT_LT(rel_error(ws.outs[rnn], as_f64(f.at("output"))), tol) << "output";

  std::vector<T> dlogits(static_cast<size_t>(B) * C);
  const double loss =
      softmax_cross_entropy<T>(logits, labels.data(), B, C, T(1) / T(B), dlogits.data(), nullptr);
  const double ref_loss = as_f64(f.at("loss"))[0];
  EXPECT_LT(std::fabs(loss - ref_loss) / std::fabs(ref_loss), tol) << "loss";
  std::vector<T> grads(model.num_params(), T(0));
  model.backward(in, ws, dlogits.data(), grads.data());
  for (const ParamInfo& p : model.layout().entries())
    EXPECT_LT(rel_error(std::span<const T>(grads.data() + p.offset, p.size),
                        as_f64(f.at("grad." + p.name))),
              tol)
        << "grad." << p.name;
}

class GoldenLayers : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenLayers, DoubleMatchesPyTorch) {
  run_fixture<double>(GetParam(), 1e-9, false);
}
TEST_P(GoldenLayers, FloatMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5, false);
}
// Weights packed once for all threads (as training does once per step) give the same results.
TEST_P(GoldenLayers, FloatPreparedMatchesPyTorch) {
  run_fixture<float>(GetParam(), 1e-5, true);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenLayers, ::testing::ValuesIn(kFixtureNames),
                         [](const auto& test) { return test.param; });

TEST(GoldenLayerFixtures, FolderHoldsExactlyTheListedFixtures) {
  std::vector<std::string> listed = kFixtureNames;
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(golden::fixture_files(kFixtures), listed);
}

}  // namespace
}  // namespace recur
