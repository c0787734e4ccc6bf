// The command line's inference goes through the Predictor: `recur predict --json` prints its
// probabilities bit for bit, and a text with nothing to read is refused (exit code 2, --text and
// the reason) instead of being classified.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "recur/predictor.hpp"

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
