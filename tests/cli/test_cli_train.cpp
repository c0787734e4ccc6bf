// `recur train` end to end: the run folder it writes, its summary, a config fed back, and the
// one-line errors (exit code 2) for bad flags, bad configs, missing data and a used folder.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

const std::string kTinyArgs =
    "--steps 2 --train-limit 256 --val 256 --hidden 8 --batch 32 --threads 1";

bool starts_with_png_signature(const fs::path& path) {
  return slurp(path).rfind("\x89PNG\r\n\x1a\n", 0) == 0;
}

TEST(TrainCli, RunFolderHoldsEveryFile) {
  const SharedRun& run = shared_run();
  for (const char* name : {"config.toml", "metrics.jsonl", "last.safetensors", "best.safetensors",
                           "curves.png", "summary.json"})
    EXPECT_TRUE(fs::is_regular_file(run.dir / name)) << name;
  EXPECT_TRUE(starts_with_png_signature(run.dir / "curves.png"));

  std::istringstream lines(slurp(run.dir / "metrics.jsonl"));
  std::string line;
  int train_points = 0, validation_points = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);  // throws (and fails) on a bad line
    const std::string kind = j.at("kind");
    train_points += kind == "train";
    validation_points += kind == "validation";
  }
  EXPECT_EQ(train_points, 4);  // steps 10, 20, 30, 40
  EXPECT_EQ(validation_points, 1);

  const auto summary = nlohmann::json::parse(slurp(run.dir / "summary.json"));
  EXPECT_EQ(summary.at("steps").get<int>(), 40);
  EXPECT_GT(summary.at("val_accuracy").get<double>(), 0.11);  // above chance
  EXPECT_LE(summary.at("val_accuracy").get<double>(), 1.0);
}

TEST(TrainCli, SummaryLineGivesAccuracyTimeAndSpeed) {
  const std::string& log = shared_run().log;
  EXPECT_TRUE(contains(log, "validation accuracy")) << log;
  EXPECT_TRUE(contains(log, "test accuracy")) << log;
  EXPECT_TRUE(contains(log, "training took")) << log;
  EXPECT_TRUE(contains(log, "samples/s")) << log;
  EXPECT_TRUE(contains(log, "step 40/40")) << log;
}

// key -> value of a config.toml as recur writes it (one `key=value` per line).
std::map<std::string, std::string> config_entries(const std::string& text) {
  std::map<std::string, std::string> entries;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) entries[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return entries;
}

// Same setting: equal text, or equal numbers however they are spelled (0.9, 0.90000000000000002).
bool same_setting(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char *end_a = nullptr, *end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}

TEST(TrainCli, ResolvedConfigGivesTheSameRun) {
  const SharedRun& run = shared_run();
  ScratchDir tmp;
  const std::string out = tmp / "again";
  const CliResult r = run_cli("train --config " + quote((run.dir / "config.toml").string()) +
                              " --out " + quote(out));
  ASSERT_EQ(r.code, 0) << r.err;
  // Every setting but the folders is the same, and so is the result (same seed, same threads).
  auto first = config_entries(slurp(run.dir / "config.toml"));
  auto second = config_entries(slurp(fs::path(out) / "config.toml"));
  EXPECT_EQ(first["hidden"], "32");
  EXPECT_EQ(first["steps"], "40");
  EXPECT_EQ(first.size(), second.size());
  for (const auto& [key, value] : first) {
    if (key == "out" || key == "config") continue;
    EXPECT_TRUE(same_setting(value, second[key])) << key << ": " << value << " vs " << second[key];
    // Numbers read from TOML are written back in their shortest form, not with 17 digits.
    EXPECT_EQ(second[key].find("0000000"), std::string::npos) << key << ": " << second[key];
    EXPECT_EQ(second[key].find("9999999"), std::string::npos) << key << ": " << second[key];
  }
  const auto a = nlohmann::json::parse(slurp(run.dir / "summary.json"));
  const auto b = nlohmann::json::parse(slurp(fs::path(out) / "summary.json"));
  EXPECT_EQ(a.at("val_accuracy"), b.at("val_accuracy"));
  EXPECT_EQ(a.at("val_loss"), b.at("val_loss"));
}

// --label-smoothing trains against the smoothed target: other weights than without it (same
// seed), the resolved config records it, and that config trains the same weights again.
TEST(TrainCli, LabelSmoothingChangesTheTrainingAndIsRecorded) {
  ScratchDir tmp;
  const std::string args = "train --data " + quote(kMnistDir) + " " + kTinyArgs;
  const fs::path plain = tmp / "plain", smooth = tmp / "smooth";
  ASSERT_EQ(run_cli(args + " --out " + quote(plain.string())).code, 0);
  const CliResult r = run_cli(args + " --label-smoothing 0.2 --out " + quote(smooth.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(plain / "last.safetensors"), slurp(smooth / "last.safetensors"));
  EXPECT_NE(slurp(smooth / "config.toml").find("label-smoothing=0.2"), std::string::npos)
      << slurp(smooth / "config.toml");
  // The run given its own config trains the same weights again.
  const fs::path again = tmp / "again";
  ASSERT_EQ(run_cli("train --config " + quote((smooth / "config.toml").string()) + " --out " +
                    quote(again.string()))
                .code,
            0);
  EXPECT_EQ(slurp(smooth / "last.safetensors"), slurp(again / "last.safetensors"));
}

// --patience N stops after N epochs without a better validation accuracy: with a learning rate
// too small to change any prediction, epoch 1 is the best and epoch 2 does not beat it, so a
// 10-epoch run with --patience 1 ends after 2 epochs, says so and records it; without a
// validation split the flag is refused before anything is written.
TEST(TrainCli, PatienceStopsWhenValidationStopsImproving) {
  ScratchDir tmp;
  const fs::path out = tmp / "run";
  const CliResult r = run_cli("train --data " + quote(kMnistDir) +
                              " --train-limit 64 --batch 32 --val 256 --hidden 8 --threads 1 "
                              "--epochs 10 --lr 1e-12 --patience 1 --out " +
                              quote(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("stopping early: validation accuracy has not improved for 1 epoch"),
            std::string::npos)
      << r.out;
  const auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(summary.at("steps").get<int>(), 4);  // 2 epochs of 2 batches, not 10
  EXPECT_TRUE(summary.at("stopped_early").get<bool>());
  const fs::path no_val = tmp / "no-val";
  const CliResult refused =
      run_cli("train --data " + quote(kMnistDir) +
              " --steps 2 --train-limit 64 --hidden 8 --threads 1 --val 0 --patience 2 --out " +
              quote(no_val.string()));
  EXPECT_TRUE(fails_with(refused, "--patience: stops when the validation accuracy stops"))
      << refused.err;
  EXPECT_FALSE(fs::exists(no_val));
}

TEST(TrainCli, UnknownFlagExitsWith2) {
  const CliResult r = run_cli("train --bogus");
  EXPECT_TRUE(fails_with(r, "--bogus"));
}

TEST(TrainCli, NegativeHiddenExitsWith2AndLeavesNoFolder) {
  ScratchDir tmp;
  const std::string out = tmp / "run";
  const CliResult r =
      run_cli("train --data " + quote(kMnistDir) + " --hidden -5 --out " + quote(out));
  EXPECT_TRUE(fails_with(r, "--hidden: must be at least 1 and at most 65536, got -5"));
  EXPECT_FALSE(fs::exists(out));
}

TEST(TrainCli, UnknownCellExitsWith2AndLeavesNoFolder) {
  ScratchDir tmp;
  const std::string out = tmp / "run";
  const CliResult r =
      run_cli("train --data " + quote(kMnistDir) + " --cell foo --out " + quote(out));
  EXPECT_TRUE(fails_with(r, "--cell: unknown value 'foo'"));
  EXPECT_FALSE(fs::exists(out));
}

TEST(TrainCli, MissingDataFolderExitsWith2AndLeavesNoFolder) {
  ScratchDir tmp;
  const std::string out = tmp / "run", data = tmp / "no-such-data";
  const CliResult r =
      run_cli("train --data " + quote(data) + " " + kTinyArgs + " --out " + quote(out));
  EXPECT_TRUE(fails_with(r, data));
  EXPECT_FALSE(fs::exists(out));
}

TEST(TrainCli, UsedOutFolderExitsWith2AndKeepsTheFirstRun) {
  ScratchDir tmp;
  const std::string out = tmp / "run";
  const std::string args =
      "train --data " + quote(kMnistDir) + " " + kTinyArgs + " --out " + quote(out);
  ASSERT_EQ(run_cli(args).code, 0);
  std::map<std::string, std::string> before;
  for (const auto& e : fs::directory_iterator(out)) before[e.path().filename()] = slurp(e.path());
  ASSERT_TRUE(before.count("summary.json"));

  const CliResult again = run_cli(args + " --seed 7");
  EXPECT_TRUE(fails_with(again, "is not empty"));
  std::map<std::string, std::string> after;
  for (const auto& e : fs::directory_iterator(out)) after[e.path().filename()] = slurp(e.path());
  EXPECT_TRUE(before == after) << "the first run's files changed";
}

TEST(TrainCli, ConfigWithSyntaxErrorExitsWith2) {
  ScratchDir tmp;
  const std::string config = tmp / "bad.toml";
  std::ofstream(config) << "hidden = 16\ncell = \"lstm\n";
  const CliResult r = run_cli("train --config " + quote(config) + " --out " + quote(tmp / "run"));
  EXPECT_TRUE(fails_with(r, config + ": not valid TOML: line 2"));
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

TEST(TrainCli, ConfigWithUnknownKeyExitsWith2) {
  ScratchDir tmp;
  const std::string config = tmp / "unknown.toml";
  std::ofstream(config) << "hidden = 16\nhiden_size = 3\n";
  const CliResult r = run_cli("train --config " + quote(config) + " --out " + quote(tmp / "run"));
  EXPECT_TRUE(fails_with(r, "hiden_size"));
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

}  // namespace
}  // namespace recur_cli_test
