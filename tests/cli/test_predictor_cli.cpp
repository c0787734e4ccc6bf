// The command line's inference goes through the Predictor: `recur predict --json` prints its
// probabilities bit for bit, and a text with nothing to read is refused (exit code 2, --text and
// the reason) instead of being classified.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "recur/predictor.hpp"
#include "recur/text.hpp"

namespace recur_infer_test {
namespace {

using recur_cli_test::fails_with;
using recur_cli_test::quote;
using recur_cli_test::run_cli;
using recur_cli_test::ScratchDir;

TEST(PredictorCli, EmptyOrBlankTextExitsWith2NamingTextAndTheReason) {
  ScratchDir tmp;
  const std::string model =
      write_text_model(tmp / "t.safetensors", "embedding 4 vocab=VOCAB, lstm 4, pool last, linear");
  EXPECT_TRUE(fails_with(run_cli("predict " + quote(model) + " --text ''"),
                         "--text: the text is empty: there is nothing to classify"));
  EXPECT_TRUE(fails_with(run_cli("predict " + quote(model) + " --text '   '"),
                         "--text: the text holds only whitespace"));
  EXPECT_TRUE(fails_with(run_cli("predict " + quote(model) + " --text 'a film' --text ''"),
                         "--text: text 2 is empty"));
  const recur_cli_test::CliResult ok = run_cli("predict " + quote(model) + " --text 'a film'");
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST(PredictorCli, PredictJsonPrintsThePredictorsProbabilities) {
  ScratchDir tmp;
  const std::string model = write_text_model(tmp / "t.safetensors",
                                             "embedding 6 vocab=VOCAB, gru 8, pool max, linear", 4);
  std::string args = "predict " + quote(model) + " --json";
  for (const std::string& t : sample_texts()) args += " --text " + quote(t);
  const recur_cli_test::CliResult r = run_cli(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const recur::Predictor p(model);
  const recur::Predictions want = p.predict_texts(sample_texts());
  ASSERT_EQ(j.size(), sample_texts().size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    EXPECT_EQ(j[i]["class"].get<int>(), want.labels[i]);
    const auto probs = j[i]["probabilities"].get<std::vector<float>>();
    EXPECT_EQ(probs[0], want.probabilities[2 * i]);
    EXPECT_EQ(probs[1], want.probabilities[2 * i + 1]);
    // max_len 4 keeps the first 4 tokens (head).
    EXPECT_LE(j[i]["tokens"].get<int>(), 4);
  }
}

// x [N, T, F] float32 and lengths [N] int32 as .npy files.
void write_sequences(const std::string& x_path, const std::string& lengths_path,
                     const std::vector<float>& x, const std::vector<std::int32_t>& lengths, int T,
                     int F) {
  recur::NpyArray xa;
  xa.kind = 'f';
  xa.item_size = 4;
  xa.shape = {static_cast<std::int64_t>(lengths.size()), T, F};
  const auto* xb = reinterpret_cast<const unsigned char*>(x.data());
  xa.data.assign(xb, xb + x.size() * sizeof(float));
  recur::write_npy(x_path, xa);
  recur::NpyArray la;
  la.kind = 'i';
  la.item_size = 4;
  la.shape = {static_cast<std::int64_t>(lengths.size())};
  const auto* lb = reinterpret_cast<const unsigned char*>(lengths.data());
  la.data.assign(lb, lb + lengths.size() * sizeof(std::int32_t));
  recur::write_npy(lengths_path, la);
}

TEST(PredictorCli, PredictReadsNpySequencesForArrayModels) {
  ScratchDir tmp;
  const int T = 5, F = 2, C = 3;
  const std::string model =
      write_sequence_model(tmp / "m.safetensors", "lstm 6, pool mean, linear", F, C);
  const std::vector<float> x = {0.1f, -1.f, 2.f,  0.5f, 0.f,  0.3f, 1.f, 1.f,  -2.f, 0.2f,
                                0.7f, 0.7f, -1.f, 0.f,  0.4f, 9.f,  9.f, 9.f,  9.f,  9.f,
                                1.5f, 0.f,  0.f,  0.f,  0.f,  -1.f, 2.f, 0.1f, 0.1f, 0.1f};
  const std::vector<std::int32_t> lengths = {5, 2, 3};
  write_sequences(tmp / "x.npy", tmp / "len.npy", x, lengths, T, F);
  const recur_cli_test::CliResult r =
      run_cli("predict " + quote(model) + " " + quote(tmp / "x.npy") + " --lengths " +
              quote(tmp / "len.npy") + " --json --top 3");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  const recur::Predictor p(model);
  const recur::Predictions want = p.predict_sequences(x.data(), 3, T, lengths.data());
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j[i]["length"].get<int>(), lengths[i]);
    EXPECT_EQ(j[i]["prediction"].get<int>(), want.labels[i]);
    const auto logits = j[i]["logits"].get<std::vector<float>>();
    for (int c = 0; c < C; ++c)
      EXPECT_EQ(logits[static_cast<std::size_t>(c)], want.logits[i * C + c]);
  }
  // The padded steps (9s) are never read: sample 1 alone on its 2 steps gives the same logits.
  const recur::Predictions alone = p.predict_sequences(x.data() + T * F, 1, 2);
  EXPECT_EQ(alone.logits[0], want.logits[C]);
  EXPECT_TRUE(fails_with(run_cli("predict " + quote(model) + " " + quote(tmp / "x.npy") + " " +
                                 quote(tmp / "x.npy") + " --lengths " + quote(tmp / "len.npy")),
                         "--lengths: goes with one input file"));
}

TEST(PredictorCli, EvalOfAnArrayModelAsksForItsDataInsteadOfReadingMnist) {
  ScratchDir tmp;
  const std::string model =
      write_sequence_model(tmp / "m.safetensors", "gru 4, pool last, linear", 2);
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(model)), "--data: name the data to evaluate on"));
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(model) + " --batch 0 --data x"),
                         "--batch: must be between 1"));
}

}  // namespace
}  // namespace recur_infer_test
