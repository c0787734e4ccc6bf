// recur report --from-json: writes report.html and report.md from saved measures; a missing or
// bad file, a bad measure and an unusable output folder are each one error line naming the
// file or folder, exit code 2, and leave no report behind.
#include <string>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

const char* kMeasures = R"({"title": "t", "models": [
  {"name": "lstm", "family": "LSTM", "test_accuracy": 0.9899, "test_count": 10000,
   "parameters": 69898, "latency_us": 122},
  {"name": "cnn", "family": "CNN", "test_accuracy": 0.9912, "test_count": 10000,
   "parameters": 61706, "latency_us": 45}]})";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(ReportCli, FromJsonWritesBothFiles) {
  ScratchDir dir;
  write_text(dir / "m.json", kMeasures);
  const CliResult r =
      run_cli("report --from-json " + quote(dir / "m.json") + " --out " + quote(dir / "out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "(2 models)")) << r.out;
  const std::string html = slurp(dir.path() / "out" / "report.html");
  EXPECT_TRUE(contains(html, "<tr data-model=\"cnn\">"));
  EXPECT_TRUE(contains(html, "cnn is the most accurate at 99.12%"));
  EXPECT_TRUE(contains(slurp(dir.path() / "out" / "report.md"), "| lstm | LSTM | 98.99% |"));
}

TEST(ReportCli, BadInputIsOneErrorLineAndExitCode2) {
  ScratchDir dir;
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "missing.json") + " --out " + quote(dir / "out")),
      dir / "missing.json"));
  write_text(dir / "bad.json", R"({"models": [{"name": "a", "test_accuracy": 99.1}]})");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "bad.json") + " --out " + quote(dir / "out")),
      "model 0 'a': test_accuracy must be a fraction in [0, 1], got 99.1"));
  write_text(dir / "broken.json", "{\"models\": [");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "broken.json") + " --out " + quote(dir / "out")),
      dir / "broken.json: not valid JSON"));
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
  write_text(dir / "m.json", kMeasures);
  write_text(dir / "file", "x");
  EXPECT_TRUE(fails_with(
      run_cli("report --from-json " + quote(dir / "m.json") + " --out " + quote(dir / "file")),
      dir / "file: cannot create the report folder"));
  EXPECT_TRUE(fails_with(run_cli("report --out " + quote(dir / "out")), "--from-json is required"));
}

}  // namespace
}  // namespace recur_cli_test
