// recur pretrain end to end: it reads the training texts only (a test side that is unreadable,
// absent or changed leaves its checkpoint bit for bit the same, and its vocabulary is the one
// built from the training texts), its options' errors, and recur train --init-from.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"
#include "cli/text_fixtures.hpp"
#include "recur/text.hpp"

namespace recur_cli_test {
namespace {

const char* kSmall =
    " --steps 4 --batch 8 --bptt 8 --negatives 16 --embed 8 --hidden 8 "
    "--holdout 4 --threads 1 --display-step 2";

// An aclImdb-style folder: train/{neg,pos}/*.txt from a label<TAB>text corpus, and test/.
void write_acl_side(const fs::path& side, const fs::path& tsv) {
  std::ifstream in(tsv);
  std::string line;
  int i = 0;
  for (const char* label : {"neg", "pos"}) fs::create_directories(side / label);
  while (std::getline(in, line)) {
    const std::string label = line[0] == '1' ? "pos" : "neg";
    std::ofstream(side / label / (std::to_string(1000 + i++) + "_1.txt")) << line.substr(2);
  }
}

std::string vocab_of(const fs::path& checkpoint) {
  return recur::read_safetensors(checkpoint.string()).metadata.at("recur.vocab");
}

TEST(PretrainCli, NeverReadsTheTestSideOfAFolder) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 80, 1);
  write_corpus(tmp / "test.tsv", 40, 2);
  const fs::path data = tmp.path() / "acl";
  write_acl_side(data / "train", tmp / "train.tsv");
  write_acl_side(data / "test", tmp / "test.tsv");
  const std::string args = std::string(kSmall) + " --data " + quote(data.string());
  const CliResult first = run_cli("pretrain --out " + quote(tmp / "a") + args);
  ASSERT_EQ(first.code, 0) << first.err;
  // Test files that no reader accepts (invalid UTF-8): recur train refuses them ...
  for (const char* label : {"neg", "pos"})
    for (const auto& f : fs::directory_iterator(data / "test" / label))
      std::ofstream(f.path(), std::ios::binary) << "bad \xff\xfe bytes";
  const CliResult train = run_cli("train --data " + quote(data.string()) + " --out " +
                                  quote(tmp / "train") + " --steps 1");
  EXPECT_TRUE(fails_with(train, "UTF-8")) << train.err;
  // ... recur pretrain does not read them, nor miss them when test/ is gone.
  const CliResult unreadable = run_cli("pretrain --out " + quote(tmp / "b") + args);
  ASSERT_EQ(unreadable.code, 0) << unreadable.err;
  fs::remove_all(data / "test");
  const CliResult absent = run_cli("pretrain --out " + quote(tmp / "c") + args);
  ASSERT_EQ(absent.code, 0) << absent.err;
  const std::string weights = slurp(tmp.path() / "a" / "lm.safetensors");
  EXPECT_EQ(slurp(tmp.path() / "b" / "lm.safetensors"), weights);
  EXPECT_EQ(slurp(tmp.path() / "c" / "lm.safetensors"), weights);
  // The vocabulary is the training texts' own.
  const recur::TextSet texts = recur::read_acl_imdb((data / "train").string());
  EXPECT_EQ(vocab_of(tmp.path() / "a" / "lm.safetensors"),
            recur::Vocabulary::build(texts.texts, 20000, 2).to_json());
  // metrics.jsonl: step losses, then the held-out perplexity of both directions.
  const std::string metrics = slurp(tmp.path() / "a" / "metrics.jsonl");
  EXPECT_TRUE(contains(metrics, "\"sampled_loss\"")) << metrics;
  EXPECT_TRUE(contains(metrics, "\"holdout_perplexity_backward\"")) << metrics;
}

TEST(PretrainCli, NeverReadsTheTestPartOfATextFile) {
  ScratchDir tmp;
  write_corpus(tmp / "all.tsv", 100, 3);
  const recur::TextSet all = recur::read_label_tsv(tmp / "all.tsv");
  const recur::TextSplit split = recur::split_stratified(all, 0.2, recur::kImdbSplitSeed);
  const std::string args = std::string(kSmall) + " --data " + quote(tmp / "all.tsv");
  const CliResult first = run_cli("pretrain --out " + quote(tmp / "a") + args);
  ASSERT_EQ(first.code, 0) << first.err;
  // Rewrite every test-side line with other words: the pretraining does not change.
  std::set<std::string> test_texts(split.test.texts.begin(), split.test.texts.end());
  std::ifstream in(tmp / "all.tsv");
  std::string line, changed;
  int rewritten = 0;
  while (std::getline(in, line)) {
    if (test_texts.count(line.substr(2)) > 0) {
      line = line.substr(0, 2) + "unseen words only in the test side";
      ++rewritten;
    }
    changed += line + "\n";
  }
  in.close();
  ASSERT_EQ(rewritten, static_cast<int>(split.test.size()));
  std::ofstream(tmp / "all.tsv", std::ios::trunc) << changed;
  const CliResult second = run_cli("pretrain --out " + quote(tmp / "b") + args);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(slurp(tmp.path() / "b" / "lm.safetensors"), slurp(tmp.path() / "a" / "lm.safetensors"));
  EXPECT_EQ(vocab_of(tmp.path() / "a" / "lm.safetensors"),
            recur::Vocabulary::build(split.train.texts, 20000, 2).to_json());
}

TEST(PretrainCli, TrainInitFromCopiesTheEmbeddingAndRecurrentWeights) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 120, 1);
  const std::string data = " --data " + quote(tmp / "train.tsv");
  ASSERT_EQ(run_cli("pretrain --out " + quote(tmp / "lm") + kSmall + data).code, 0);
  const std::string ckpt = quote(tmp / "lm/lm.safetensors");
  const CliResult r = run_cli("train" + data + " --out " + quote(tmp / "run") +
                              " --embed 8 --hidden 8 --steps 2 --batch 8 --threads 1 "
                              "--init-from " +
                              ckpt);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "copied embed.weight, rnn.weight_ih_l0")) << r.err;
  EXPECT_TRUE(contains(r.err, "rnn.bias_hh_l0_reverse")) << r.err;
  EXPECT_TRUE(contains(r.err, "head.weight (not in the checkpoint)")) << r.err;
  // Another vocabulary (--vocab) is refused before the run folder is made.
  const CliResult other = run_cli("train" + data + " --out " + quote(tmp / "run2") +
                                  " --embed 8 --hidden 8 --steps 2 --vocab 10 --init-from " + ckpt);
  EXPECT_TRUE(fails_with(other, "--init-from")) << other.err;
  EXPECT_TRUE(contains(other.err, "vocabulary")) << other.err;
  EXPECT_FALSE(fs::exists(tmp.path() / "run2"));
  // Another width shares no tensor.
  const CliResult wide = run_cli("train" + data + " --out " + quote(tmp / "run3") +
                                 " --embed 16 --hidden 16 --steps 2 --init-from " + ckpt);
  EXPECT_TRUE(fails_with(wide, "shares no tensor")) << wide.err;
}

TEST(PretrainCli, BadValuesExitWithTheFlagNamed) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 30, 1);
  const std::string base =
      "pretrain --data " + quote(tmp / "train.tsv") + " --out " + quote(tmp / "lm");
  for (const auto& [flag, bad] : std::vector<std::pair<std::string, std::string>>{
           {"--bptt", "--bptt 0"},
           {"--negatives", "--negatives 0"},
           {"--lr", "--lr -1"},
           {"--direction", "--direction sideways"},
           {"--cell", "--cell transformer"},
           {"--epochs", "--epochs 0"},
           {"--batch", "--batch 0"},
           {"--holdout", "--holdout -1"},
           {"--threads", "--threads -1"},
           {"--data", "--data /nonexistent/texts.tsv"}}) {
    const CliResult r = run_cli(base + " " + bad);
    EXPECT_TRUE(fails_with(r, flag)) << bad;
    EXPECT_FALSE(fs::exists(tmp.path() / "lm")) << bad;
  }
  fs::create_directories(tmp.path() / "full");
  std::ofstream(tmp.path() / "full" / "keep.txt") << "keep";
  const CliResult full =
      run_cli("pretrain --data " + quote(tmp / "train.tsv") + " --out " + quote(tmp / "full"));
  EXPECT_TRUE(fails_with(full, "--out"));
  EXPECT_EQ(slurp(tmp.path() / "full" / "keep.txt"), "keep");
}

}  // namespace
}  // namespace recur_cli_test
