// recur train / eval / predict / inspect on text (label<TAB>text files, the layout of an IMDb
// run) and on folders of .npy arrays, through the command line: a small separable corpus is
// learnt, the checkpoint carries the vocabulary so predict tokenizes as training did, and bad
// text input is refused with exit code 2, the file and the reason, and no run folder.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "cli/text_fixtures.hpp"
#include "recur/report_runner.hpp"
#include "recur/safetensors.hpp"

namespace recur_cli_test {
namespace {

using recur::read_safetensors;
using recur::SafetensorsFile;

TEST(TextCli, TrainEvalPredictInspectOnALabelledTextFile) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 600, 1);
  write_corpus(tmp / "test.tsv", 200, 2);
  const fs::path run = tmp.path() / "run";
  const CliResult r = run_cli("train --data " + quote(tmp / "train.tsv") + " --test-data " +
                              quote(tmp / "test.tsv") + " --out " + quote(run) +
                              " --epochs 6 --hidden 16 --embed 16 --batch 16 --lr 0.01 "
                              "--threads 2 --seed 3");
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "text: 600 training / 200 test texts")) << r.out;
  for (const char* f :
       {"config.toml", "metrics.jsonl", "curves.png", "last.safetensors", "summary.json"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  const auto summary = nlohmann::json::parse(slurp(run / "summary.json"));
  EXPECT_GE(summary["test_accuracy"].get<double>(), 0.95) << summary.dump();
  // The run's config records the text recipe's defaults it used.
  const std::string config = slurp(run / "config.toml");
  EXPECT_TRUE(contains(config, "pooling=\"max\"")) << config;
  EXPECT_TRUE(contains(config, "bidirectional=true")) << config;

  // eval on the same test file reproduces the training run's test accuracy.
  const CliResult e = run_cli("eval " + quote(run / "last.safetensors") + " --data " +
                              quote(tmp / "train.tsv") + " --json --out " + quote(tmp / "ev"));
  ASSERT_EQ(e.code, 0) << e.err;
  const auto ev = nlohmann::json::parse(e.out);
  EXPECT_EQ(ev["count"].get<int>(), 120);  // train.tsv alone: its 20% stratified test side
  EXPECT_TRUE(fs::exists(tmp.path() / "ev" / "confusion.png"));
  EXPECT_EQ(ev["precision"], "fp32");
  const auto saved = nlohmann::json::parse(slurp(tmp.path() / "ev" / "eval.json"));
  EXPECT_EQ(saved["precision"], "fp32");
  const CliResult e8 =
      run_cli("eval " + quote(run / "last.safetensors") + " --data " + quote(tmp / "train.tsv") +
              " --json --precision int8 --out " + quote(tmp / "ev8"));
  ASSERT_EQ(e8.code, 0) << e8.err;
  const auto ev8 = nlohmann::json::parse(e8.out);
  EXPECT_EQ(ev8["precision"], "int8");
  EXPECT_NEAR(ev8["accuracy"].get<double>(), ev["accuracy"].get<double>(), 0.05);

  // summary.json records the training process's own peak RSS (what recur report shows).
  EXPECT_GT(summary["peak_rss_bytes"].get<std::int64_t>(), 1000000) << summary.dump();
  EXPECT_LT(summary["peak_rss_bytes"].get<std::int64_t>(), 2000000000) << summary.dump();

  // predict tokenizes as training did: case, punctuation and <br /> do not matter.
  const CliResult p = run_cli("predict " + quote(run / "last.safetensors") +
                              " --json --text 'The camera was SUPERB!' --text "
                              "'a boring, boring story<br />'");
  ASSERT_EQ(p.code, 0) << p.err;
  const auto pj = nlohmann::json::parse(p.out);
  ASSERT_EQ(pj.size(), 2u);
  EXPECT_EQ(pj[0]["class"].get<int>(), 1) << p.out;
  EXPECT_EQ(pj[1]["class"].get<int>(), 0) << p.out;
  EXPECT_EQ(pj[0]["tokens"].get<int>(), 5);  // the camera was superb !

  const CliResult i = run_cli("inspect " + quote(run / "last.safetensors") + " --json");
  ASSERT_EQ(i.code, 0) << i.err;
  const auto ij = nlohmann::json::parse(i.out);
  EXPECT_EQ(ij["format"], "recur-model-2");
  EXPECT_EQ(ij["text"]["first_tokens"][0], "<pad>");
  EXPECT_EQ(ij["text"]["first_tokens"][1], "<unk>");
  EXPECT_EQ(ij["layers"][0]["type"], "embedding");

  // The checkpoint's tensors are PyTorch's names for embedding + LSTM + head.
  const SafetensorsFile f = read_safetensors((run / "last.safetensors").string());
  EXPECT_TRUE(f.tensors.count("embed.weight"));
  EXPECT_TRUE(f.tensors.count("rnn.weight_hh_l0_reverse"));
  EXPECT_TRUE(f.tensors.count("head.bias"));

  // Not a text model / not a picture.
  EXPECT_TRUE(
      fails_with(run_cli("predict " + quote(run / "last.safetensors")), "no text to classify"));
}

// --model on text: the embedding's rows come from the vocabulary; the list's names are the
// checkpoint's tensor names; the short form beside it is refused.
TEST(TextCli, ALayerListTrainsOnText) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 600, 1);
  write_corpus(tmp / "test.tsv", 200, 2);
  const fs::path run = tmp.path() / "run";
  const std::string common = "train --data " + quote(tmp / "train.tsv") + " --test-data " +
                             quote(tmp / "test.tsv") + " --epochs 6 --batch 16 --lr 0.01 " +
                             "--threads 2 --seed 3 --vocab 23";
  const CliResult r = run_cli(common +
                              " --model 'embedding 12 name=emb, gru 16 bidirectional name=enc, "
                              "pool max, linear' --out " +
                              quote(run));
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const auto summary = nlohmann::json::parse(slurp(run / "summary.json"));
  EXPECT_GE(summary["test_accuracy"].get<double>(), 0.95) << summary.dump();
  const SafetensorsFile f = read_safetensors((run / "last.safetensors").string());
  ASSERT_TRUE(f.tensors.count("emb.weight"));
  EXPECT_EQ(f.tensors.at("emb.weight").shape, (std::vector<std::int64_t>{23, 12}));
  EXPECT_TRUE(f.tensors.count("enc.weight_hh_l0_reverse"));
  EXPECT_EQ(f.tensors.at("enc.weight_hh_l0").shape, (std::vector<std::int64_t>{48, 16}));
  EXPECT_TRUE(f.tensors.count("3.weight"));  // the unnamed head: its index
  const CliResult p = run_cli("predict " + quote(run / "last.safetensors") +
                              " --json --text 'the plot was wonderful'");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(nlohmann::json::parse(p.out)[0]["class"].get<int>(), 1) << p.out;

  const fs::path never = tmp.path() / "never";
  std::string out = " --out ";
  out += quote(never);
  std::string embed = common;
  embed += " --model 'embedding 12, gru 16, pool max, linear' --embed 64";
  embed += out;
  EXPECT_TRUE(fails_with(run_cli(embed), "the layer list replaces --embed"));
  std::string vocab = common;
  vocab += " --model 'embedding 12 vocab=99, gru 16, pool max, linear'";
  vocab += out;
  EXPECT_TRUE(fails_with(run_cli(vocab), "vocab=99 but the vocabulary holds 23 words"));
  std::string ids = common;
  ids += " --model 'gru 16, pool max, linear'";
  ids += out;
  EXPECT_TRUE(fails_with(run_cli(ids), "does not fit this data"));
  EXPECT_FALSE(fs::exists(never));
}

TEST(TextCli, BadTextInputIsRefusedWithTheFileAndNoRunFolder) {
  ScratchDir tmp;
  struct Case {
    std::string name, content, message;
  };
  const std::vector<Case> cases = {
      {"empty.tsv", "", "empty.tsv"},
      {"label.tsv", "0\tfine\n7x\tbad label\n", "label.tsv"},
      {"utf8.tsv", "0\tgood\n1\tbad \xC3\x28 byte\n", "UTF-8"},
      {"notab.tsv", "0\tgood\n1 no tab here\n", "notab.tsv"},
  };
  for (const Case& c : cases) {
    std::ofstream(tmp / c.name, std::ios::binary) << c.content;
    const fs::path run = tmp.path() / ("run-" + c.name);
    const CliResult r =
        run_cli("train --data " + quote(tmp / c.name) + " --out " + quote(run) + " --epochs 1");
    EXPECT_TRUE(fails_with(r, c.message)) << c.name;
    EXPECT_FALSE(fs::exists(run)) << c.name;
  }
  // A reviews.json entry without its label.
  fs::create_directories(tmp.path() / "imdbish");
  std::ofstream(tmp.path() / "imdbish" / "reviews.json")
      << R"([{"t": "fine film", "s": 1}, {"t": "x"}])";
  const CliResult r = run_cli("train --data " + quote(tmp / "imdbish") + " --out " +
                              quote(tmp / "run-json") + " --epochs 1");
  EXPECT_TRUE(fails_with(r, "reviews.json")) << r.err;
  EXPECT_FALSE(fs::exists(tmp.path() / "run-json"));
}

// A folder of .npy arrays: sequences of 2 features whose label is the sign of the sum of the
// first feature over the real steps (lengths vary); the model sees padding never.
TEST(TextCli, TrainsAndEvaluatesOnNpyArrays) {
  ScratchDir tmp;
  write_npy_sequences(tmp.path(), 400, 100, 5);
  const fs::path run = tmp.path() / "run";
  const CliResult r = run_cli("train --data " + quote(tmp.path()) + " --out " + quote(run) +
                              " --epochs 25 --hidden 16 --batch 16 --lr 0.01 --pooling last "
                              "--bidirectional=false --threads 2");
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const auto summary = nlohmann::json::parse(slurp(run / "summary.json"));
  EXPECT_GE(summary["test_accuracy"].get<double>(), 0.9) << r.out;
  const CliResult e = run_cli("eval " + quote(run / "last.safetensors") + " --data " +
                              quote(tmp.path()) + " --json --out " + quote(tmp / "ev"));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out)["accuracy"].get<double>(),
              summary["test_accuracy"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace recur_cli_test

namespace recur_cli_test {
namespace {

// recur report's peak-RSS column: a training child started by a large process reports its own
// peak. (wait4's ru_maxrss carries the parent's peak over at exec: this test's 512 MB.)
TEST(TextCli, TrainingChildReportsItsOwnPeakNotItsParents) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 200, 1);
  constexpr std::size_t kParentBytes = std::size_t{512} << 20;
  std::vector<char> big(kParentBytes);
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i >> 12);
  const std::string dir = (tmp.path() / "run").string();
  const std::int64_t rss = recur::run_training_child(
      {RECUR_CLI_PATH, "train", "--data", tmp / "train.tsv", "--out", dir, "--epochs", "1",
       "--hidden", "8", "--embed", "8", "--threads", "1"},
      "tiny", dir);
  EXPECT_GT(big[4096 * 7], 0);  // the parent's memory stays resident until here
  EXPECT_GT(rss, 1 << 20);
  EXPECT_LT(rss, static_cast<std::int64_t>(kParentBytes / 2)) << rss;
}

}  // namespace
}  // namespace recur_cli_test
