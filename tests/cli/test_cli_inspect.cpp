// `recur inspect` on the shared short run: architecture, tensor table and totals, training config
// and metrics, as text and as JSON.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

TEST(InspectCli, TableAddsUpToTheTotal) {
  const CliResult r = run_cli("inspect " + quote(shared_run().model()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "  cell        lstm\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "  hidden      32\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "  sequence    28 steps x 28 features\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "metrics: step 40, epoch 1, validation accuracy ")) << r.out;
  EXPECT_TRUE(contains(r.out, "  hidden=32\n")) << r.out;  // the training config
  const std::string size = std::to_string(fs::file_size(shared_run().model()));
  EXPECT_TRUE(contains(r.out, size + " bytes)")) << r.out;

  // "  rnn.weight_ih_l0  [128, 28]  3584" rows, then "total parameters N".
  const std::regex row(R"(\n  ([a-z_.0-9]+) +\[([0-9, ]*)\] +([0-9]+))");
  long long sum = 0;
  int rows = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), row);
       it != std::sregex_iterator(); ++it) {
    sum += std::stoll((*it)[3]);
    ++rows;
  }
  EXPECT_EQ(rows, 6);  // LSTM: weight_ih, weight_hh, bias_ih, bias_hh; head weight and bias
  std::smatch total;
  ASSERT_TRUE(std::regex_search(r.out, total, std::regex(R"(total parameters ([0-9]+))")));
  EXPECT_EQ(sum, std::stoll(total[1]));
  // 4 gates x 32 x (28 + 32 + 2) + 10 x (32 + 1)
  EXPECT_EQ(sum, 4 * 32 * (28 + 32 + 2) + 10 * 33);
}

TEST(InspectCli, JsonHoldsTheSameFacts) {
  const CliResult r = run_cli("inspect " + quote(shared_run().model()) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  long long sum = 0;
  for (const auto& t : j.at("tensors")) {
    long long numel = 1;
    for (const auto& d : t.at("shape")) numel *= d.get<long long>();
    EXPECT_EQ(numel, t.at("parameters").get<long long>()) << t.dump();
    sum += numel;
  }
  EXPECT_EQ(sum, j.at("parameters").get<long long>());
  EXPECT_EQ(j.at("file_bytes").get<std::uintmax_t>(), fs::file_size(shared_run().model()));
  const auto& a = j.at("architecture");
  EXPECT_EQ(a.at("cell"), "lstm");
  EXPECT_EQ(a.at("hidden"), 32);
  EXPECT_EQ(a.at("layers"), 1);
  EXPECT_EQ(a.at("directions"), 1);
  EXPECT_EQ(a.at("view"), "rows");
  EXPECT_EQ(a.at("steps"), 28);
  EXPECT_EQ(a.at("features"), 28);
  EXPECT_EQ(a.at("classes"), 10);
  EXPECT_EQ(j.at("metrics").at("step"), 40);
  const double accuracy = j.at("metrics").at("val_accuracy");
  const auto summary = nlohmann::json::parse(slurp(shared_run().dir / "summary.json"));
  EXPECT_NEAR(accuracy, summary.at("best_val_accuracy").get<double>(), 1e-6);
  EXPECT_TRUE(contains(j.at("train_config").get<std::string>(), "hidden=32"));
}

// A shared checkpoint reveals none of the trainer's folders (the run was trained with absolute
// --data and --out), and says which data it was trained on by name and checksum.
TEST(InspectCli, NoLocalPathsOnlyTheDataChecksums) {
  const CliResult r = run_cli("inspect " + quote(shared_run().model()) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const std::string config = j.at("train_config");
  EXPECT_FALSE(contains(config, kMnistDir)) << config;
  EXPECT_FALSE(contains(config, shared_run().dir.string())) << config;
  EXPECT_FALSE(contains(config, "/")) << config;
  EXPECT_TRUE(contains(config, "hidden=32")) << config;
  EXPECT_EQ(j.at("train_data").at("name"), "mnist");
  EXPECT_EQ(j.at("train_data").at("files").at("train-images-idx3-ubyte"),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db");
  // The text form: no line but the first (the file the user named) holds a path.
  const CliResult text = run_cli("inspect " + quote(shared_run().model()));
  ASSERT_EQ(text.code, 0) << text.err;
  std::istringstream lines(text.out);
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) EXPECT_FALSE(contains(line, "/")) << line;
  EXPECT_TRUE(contains(text.out, "training data: mnist")) << text.out;
  // Nor does the file itself hold them anywhere.
  const std::string bytes = slurp(shared_run().model());
  EXPECT_FALSE(contains(bytes, kMnistDir));
  EXPECT_FALSE(contains(bytes, shared_run().dir.string()));
}

TEST(InspectCli, MissingOrWrongFileExitsWith2) {
  ScratchDir tmp;
  const std::string missing = tmp / "missing.safetensors";
  EXPECT_TRUE(fails_with(run_cli("inspect " + quote(missing)), missing + ": "));
  const std::string foreign = write_foreign_safetensors(tmp.path() / "foreign.safetensors");
  EXPECT_TRUE(fails_with(run_cli("inspect " + quote(foreign)), "not a recur model"));
}

}  // namespace
}  // namespace recur_cli_test
