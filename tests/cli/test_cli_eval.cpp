// `recur eval` end to end on the shared short run: the printed report, eval.json, the pictures,
// and the one-line errors for missing or corrupt models, missing data and a model/data mismatch.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cli/cli_helpers.hpp"
#include "recur/image.hpp"

namespace recur_cli_test {
namespace {

void expect_loadable_png(const fs::path& path) {
  ASSERT_TRUE(fs::is_regular_file(path)) << path;
  EXPECT_EQ(slurp(path).rfind("\x89PNG\r\n\x1a\n", 0), 0u) << path;
  const recur::GrayImage img = recur::load_gray_image(path.string());
  EXPECT_GT(img.width, 100) << path;
  EXPECT_GT(img.height, 100) << path;
}

TEST(EvalCli, PrintsReportAndWritesJsonAndPictures) {
  ScratchDir tmp;
  const CliResult r = run_cli("eval " + quote(shared_run().model()) + " --data " +
                              quote(kMnistDir) + " --out " + quote(tmp / "eval"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::regex summary(
      R"(test accuracy (\d+\.\d\d)% \(loss \d+\.\d{4}\) on 10000 images, (\d+) misclassified)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, summary)) << r.out;
  EXPECT_TRUE(contains(r.out, "class  precision   recall       F1  support")) << r.out;
  EXPECT_TRUE(contains(r.out, "confusion matrix (rows: true class, columns: predicted class)"));

  const auto j = nlohmann::json::parse(slurp(tmp.path() / "eval" / "eval.json"));
  const double accuracy = j.at("accuracy");
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  EXPECT_NEAR(100.0 * accuracy, std::stod(m[1]), 0.0051);
  EXPECT_EQ(j.at("count").get<int>(), 10000);
  EXPECT_EQ(j.at("misclassified").get<int>(), std::stoi(m[2]));
  EXPECT_EQ(j.at("model").get<std::string>(), shared_run().model());
  EXPECT_EQ(j.at("data").get<std::string>(), kMnistDir);
  EXPECT_GT(j.at("loss").get<double>(), 0.0);

  const auto& confusion = j.at("confusion");
  ASSERT_EQ(confusion.size(), 10u);
  long long total = 0, diagonal = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    ASSERT_EQ(confusion[i].size(), 10u);
    for (std::size_t k = 0; k < 10; ++k) total += confusion[i][k].get<long long>();
    diagonal += confusion[i][i].get<long long>();
  }
  EXPECT_EQ(total, 10000);
  EXPECT_EQ(diagonal, 10000 - j.at("misclassified").get<long long>());

  const auto& per_class = j.at("per_class");
  ASSERT_EQ(per_class.size(), 10u);
  long long support = 0;
  for (std::size_t c = 0; c < 10; ++c) {
    support += per_class[c].at("support").get<long long>();
    EXPECT_EQ(per_class[c].at("class").get<std::size_t>(), c);
    for (const char* key : {"precision", "recall", "f1"}) {
      EXPECT_GE(per_class[c].at(key).get<double>(), 0.0);
      EXPECT_LE(per_class[c].at(key).get<double>(), 1.0);
    }
  }
  EXPECT_EQ(support, 10000);
  EXPECT_EQ(per_class[0].at("support").get<int>(), 980);  // MNIST test set: 980 zeros

  for (const char* name : {"confusion.png", "misclassified.png", "correct.png"})
    expect_loadable_png(tmp.path() / "eval" / name);
}

TEST(EvalCli, JsonGoesToStdoutAndFilesBesideTheModel) {
  ScratchDir tmp;
  const std::string model = tmp / "best.safetensors";
  fs::copy_file(shared_run().model(), model);
  const CliResult r = run_cli("eval " + quote(model) + " --json --threads 1 --batch 333 --data " +
                              quote(kMnistDir));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(contains(r.out, "test accuracy")) << r.out;
  const auto printed = nlohmann::json::parse(r.out);
  const auto stored = nlohmann::json::parse(slurp(tmp.path() / "eval.json"));
  EXPECT_EQ(printed, stored);
  for (const char* name : {"confusion.png", "misclassified.png", "correct.png"})
    EXPECT_TRUE(fs::is_regular_file(tmp.path() / name)) << name;

  // Batch size and thread count do not change the numbers.
  const CliResult again = run_cli("eval " + quote(shared_run().model()) + " --json --out " +
                                  quote(tmp / "other") + " --data " + quote(kMnistDir));
  ASSERT_EQ(again.code, 0) << again.err;
  const auto other = nlohmann::json::parse(again.out);
  EXPECT_EQ(other.at("confusion"), stored.at("confusion"));
  EXPECT_EQ(other.at("accuracy"), stored.at("accuracy"));
}

TEST(EvalCli, MissingModelExitsWith2) {
  ScratchDir tmp;
  const std::string model = tmp / "nothing.safetensors";
  EXPECT_TRUE(
      fails_with(run_cli("eval " + quote(model) + " --data " + quote(kMnistDir)), model + ": "));
  EXPECT_TRUE(fails_with(
      run_cli("eval --data " + quote(kMnistDir)),
      "eval: missing model: checkpoint (.safetensors) written by recur train (recur eval --help)"));
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(tmp.path().string())), "is a folder"));
}

TEST(EvalCli, CorruptModelExitsWith2) {
  ScratchDir tmp;
  const std::string garbage = tmp / "garbage.safetensors";
  std::ofstream(garbage) << "this is not a checkpoint";
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(garbage) + " --data " + quote(kMnistDir)),
                         garbage + ": "));

  const std::string bytes = slurp(shared_run().model());
  const std::string truncated = tmp / "truncated.safetensors";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(truncated) + " --data " + quote(kMnistDir)),
                         truncated + ": "));

  std::string flipped = bytes;
  flipped[flipped.size() - 5] = static_cast<char>(flipped[flipped.size() - 5] ^ 0x40);
  const std::string corrupt = tmp / "corrupt.safetensors";
  std::ofstream(corrupt, std::ios::binary) << flipped;
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(corrupt) + " --data " + quote(kMnistDir)),
                         "checksum mismatch"));

  const std::string foreign = write_foreign_safetensors(tmp.path() / "foreign.safetensors");
  EXPECT_TRUE(fails_with(run_cli("eval " + quote(foreign) + " --data " + quote(kMnistDir)),
                         "not a recur model"));
}

TEST(EvalCli, MissingDataExitsWith2) {
  ScratchDir tmp;
  const std::string data = tmp / "no-mnist-here";
  const CliResult r = run_cli("eval " + quote(shared_run().model()) + " --data " + quote(data) +
                              " --out " + quote(tmp / "out"));
  EXPECT_TRUE(fails_with(r, data));
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

// IDX files of `count` blank rows x cols images, labels 0, 1, 2, ...
void write_idx_test_set(const fs::path& dir, int count, int rows, int cols) {
  fs::create_directories(dir);
  auto be32 = [](std::string& s, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  };
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  be32(images, static_cast<std::uint32_t>(count));
  be32(images, static_cast<std::uint32_t>(rows));
  be32(images, static_cast<std::uint32_t>(cols));
  images.append(static_cast<std::size_t>(count) * rows * cols, '\0');
  be32(labels, static_cast<std::uint32_t>(count));
  for (int i = 0; i < count; ++i) labels += static_cast<char>(i % 10);
  std::ofstream(dir / "t10k-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir / "t10k-labels-idx1-ubyte", std::ios::binary) << labels;
}

TEST(EvalCli, ModelThatDoesNotFitTheDataExitsWith2) {
  ScratchDir tmp;
  const fs::path data = tmp.path() / "small-digits";
  write_idx_test_set(data, 20, 14, 14);
  const CliResult r =
      run_cli("eval " + quote(shared_run().model()) + " --data " + quote(data.string()));
  std::string expected = shared_run().model();
  expected +=
      ": model expects 28 steps of 28 features (rows view of 28x28 images) but the images "
      "in ";
  expected += (data / "t10k-images-idx3-ubyte").string();
  expected += " are 14x14, which the rows view reads as 14 steps of 14 features";
  EXPECT_TRUE(fails_with(r, expected));

  // Same sequence shape, other image size: 28 rows of 28 columns is what the model reads, so a
  // 28x28 set fits, but a transposed 28x14 one does not.
  write_idx_test_set(tmp.path() / "narrow", 20, 28, 14);
  const CliResult narrow = run_cli("eval " + quote(shared_run().model()) + " --data " +
                                   quote((tmp.path() / "narrow").string()));
  EXPECT_TRUE(fails_with(narrow, "which the rows view reads as 28 steps of 14 features"));
}

TEST(EvalCli, BadFlagValuesExitWith2) {
  const std::string model = quote(shared_run().model());
  EXPECT_TRUE(fails_with(run_cli("eval " + model + " --batch 0"),
                         "--batch: must be between 1 and 65536, got 0"));
  EXPECT_TRUE(fails_with(run_cli("eval " + model + " --gallery -1"), "--gallery"));
  EXPECT_TRUE(fails_with(run_cli("eval " + model + " --threads x"), "--threads"));
  EXPECT_TRUE(fails_with(run_cli("eval " + model + " --bogus"), "--bogus"));
}

}  // namespace
}  // namespace recur_cli_test
