// `recur data ...` end to end: output on the real MNIST, exit code 2 for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

const std::string kMnistDir = RECUR_DATA_DIR "/mnist";

struct Result {
  int code;
  std::string output;  // stdout and stderr together
};

Result run_cli(const std::string& args) {
  const std::string command = std::string("'") + RECUR_CLI_PATH + "' " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  Result r{0, {}};
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DataCli, InfoPrintsShapesLabelsAndCounts) {
  ASSERT_TRUE(std::filesystem::is_directory(kMnistDir))
      << "MNIST is missing: run `recur data fetch mnist --data " << kMnistDir << "`";
  const Result r = run_cli("data info --data '" + kMnistDir + "'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "train: 60000 images of 28x28, 10 classes")) << r.output;
  EXPECT_TRUE(contains(r.output, "test: 10000 images of 28x28, 10 classes")) << r.output;
  EXPECT_TRUE(contains(r.output, "rows     view: 28 steps x 28 features")) << r.output;
  EXPECT_TRUE(contains(r.output, "permuted view: 784 steps x 1 features")) << r.output;
  EXPECT_TRUE(contains(r.output, "first labels: 5 0 4 1 9")) << r.output;
  EXPECT_TRUE(contains(r.output, "first labels: 7 2 1 0 4")) << r.output;
  EXPECT_TRUE(contains(r.output, "class counts: 0:980 1:1135 2:1032")) << r.output;
}

TEST(DataCli, InfoWithOneView) {
  ASSERT_TRUE(std::filesystem::is_directory(kMnistDir))
      << "MNIST is missing: run `recur data fetch mnist --data " << kMnistDir << "`";
  const Result r = run_cli("data info --view cols --data '" + kMnistDir + "'");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "cols     view: 28 steps x 28 features")) << r.output;
  EXPECT_FALSE(contains(r.output, "pixels")) << r.output;
}

TEST(DataCli, FetchIsANoOpOnVerifiedFiles) {
  ASSERT_TRUE(std::filesystem::is_directory(kMnistDir))
      << "MNIST is missing: run `recur data fetch mnist --data " << kMnistDir << "`";
  const Result r = run_cli("data fetch mnist --data '" + kMnistDir + "'");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "mnist: 4 files present in")) << r.output;
}

TEST(DataCli, UnknownDataSetExitsWith2) {
  const Result r = run_cli("data fetch cifar10 --data /nonexistent");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown data set 'cifar10' (known: mnist, imdb)")) << r.output;
}

TEST(DataCli, InfoOnAPathThatIsNothingExitsWith2) {
  const Result r = run_cli("data info /nonexistent/reviews");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "recur: error: /nonexistent/reviews: neither a known data set "
                       "(mnist, imdb) nor an existing file or folder"))
      << r.output;
}

TEST(DataCli, InfoOnATsvFileCountsClasses) {
  const std::string dir = ::testing::TempDir() + "recur-data-cli-tsv";
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir + "/all.tsv");
    for (int i = 0; i < 30; ++i) out << (i % 3) << "\ttext number " << i << "\n";
  }
  const Result r = run_cli("data info '" + dir + "/all.tsv'");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "train: 24 texts, 3 classes")) << r.output;
  EXPECT_TRUE(contains(r.output, "  class counts: 0:8 1:8 2:8\ntest: 6 texts, 3 classes"))
      << r.output;
  {
    std::ofstream out(dir + "/bad.tsv");
    out << "0\tfine\n7\t\n";
  }
  const Result bad = run_cli("data info '" + dir + "/bad.tsv'");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "bad.tsv: line 2: empty text")) << bad.output;
  std::filesystem::remove_all(dir);
}

TEST(DataCli, ImdbFetchAndInfo) {
  const std::string imdb = RECUR_DATA_DIR "/imdb";
  if (!std::filesystem::is_regular_file(imdb + "/reviews.json"))
    GTEST_SKIP() << "IMDb is not in " << imdb << " (recur data fetch imdb --data " << imdb << ")";
  const Result fetch = run_cli("data fetch imdb --data '" + imdb + "'");
  EXPECT_EQ(fetch.code, 0) << fetch.output;
  EXPECT_EQ(fetch.output, "imdb: reviews.json present in " + imdb + ", checksum verified\n");
  const Result info = run_cli("data info imdb --data '" + imdb + "'");
  EXPECT_EQ(info.code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "train: 25000 texts, 2 classes")) << info.output;
  EXPECT_TRUE(contains(info.output, "test: 25000 texts, 2 classes")) << info.output;
  EXPECT_TRUE(contains(info.output, "  class counts: negative:12500 positive:12500\ntest:"))
      << info.output;
}

TEST(DataCli, ImdbInfoWithoutDataExitsWith2) {
  const Result r = run_cli("data info imdb --data /nonexistent/imdb");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "recur: error: /nonexistent/imdb: holds no IMDb reviews (fetch them "
                       "with `recur data fetch imdb --data /nonexistent/imdb`)"))
      << r.output;
}

TEST(DataCli, UnknownViewExitsWith2) {
  const Result r = run_cli("data info --view spiral --data '" + kMnistDir + "'");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--view: unknown view 'spiral'")) << r.output;
}

TEST(DataCli, MissingFolderExitsWith2) {
  const Result r = run_cli("data info --data /nonexistent/mnist");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "/nonexistent/mnist: no such folder")) << r.output;
}

}  // namespace
