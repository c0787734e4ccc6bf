// Train/validation split and the deterministic, resumable batcher.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "recur/data.hpp"
#include "recur/error.hpp"

namespace {

using Batches = std::vector<std::vector<std::int64_t>>;

// The batches left in the batcher's current epoch.
Batches drain(recur::Batcher& b) {
  Batches out;
  std::vector<std::int64_t> batch;
  while (b.next(batch)) out.push_back(batch);
  return out;
}

std::vector<std::int64_t> flatten(const Batches& batches) {
  std::vector<std::int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(DataSplit, FirstNAreValidation) {
  const recur::Split s = recur::split_train_validation(100, 30);
  EXPECT_EQ(s.validation, range(0, 30));
  EXPECT_EQ(s.train, range(30, 100));
}

TEST(DataSplit, MnistSizes) {
  const recur::Split s = recur::split_train_validation(60000, 5000);
  EXPECT_EQ(s.validation.size(), 5000u);
  EXPECT_EQ(s.train.size(), 55000u);
  EXPECT_EQ(s.validation.back(), 4999);
  EXPECT_EQ(s.train.front(), 5000);
}

TEST(DataSplit, ZeroValidation) {
  const recur::Split s = recur::split_train_validation(10, 0);
  EXPECT_TRUE(s.validation.empty());
  EXPECT_EQ(s.train, range(0, 10));
}

TEST(DataSplit, RejectsOutOfRangeSizes) {
  for (std::int64_t bad : {std::int64_t{-1}, std::int64_t{10}, std::int64_t{11}}) {
    try {
      recur::split_train_validation(10, bad);
      ADD_FAILURE() << "expected recur::Error for " << bad;
    } catch (const recur::Error& e) {
      EXPECT_EQ(e.subject(), "--val");
      EXPECT_NE(std::string(e.what()).find("less than the 10 training images"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Batcher, EveryIndexExactlyOncePerEpochWithPartialLastBatch) {
  const auto indices = range(500, 603);  // 103 samples
  recur::Batcher b(indices, 10, 1234);
  EXPECT_EQ(b.size(), 103);
  EXPECT_EQ(b.batches_per_epoch(), 11);
  for (std::int64_t e = 0; e < 3; ++e) {
    b.start_epoch(e);
    const Batches batches = drain(b);
    ASSERT_EQ(batches.size(), 11u);
    for (std::size_t i = 0; i + 1 < batches.size(); ++i) EXPECT_EQ(batches[i].size(), 10u);
    EXPECT_EQ(batches.back().size(), 3u);
    auto all = flatten(batches);
    EXPECT_NE(all, indices);  // shuffled
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, indices);
    EXPECT_EQ(b.cursor(), 103);
  }
}

TEST(Batcher, EpochsDiffer) {
  recur::Batcher b(range(0, 1000), 32, 7);
  b.start_epoch(0);
  const auto e0 = flatten(drain(b));
  b.start_epoch(1);
  const auto e1 = flatten(drain(b));
  EXPECT_NE(e0, e1);
}

TEST(Batcher, SameSeedSameOrderDifferentSeedDifferentOrder) {
  recur::Batcher a(range(0, 1000), 32, 7), b(range(0, 1000), 32, 7), c(range(0, 1000), 32, 8);
  for (std::int64_t e : {0, 5}) {
    a.start_epoch(e);
    b.start_epoch(e);
    c.start_epoch(e);
    const auto oa = flatten(drain(a));
    EXPECT_EQ(oa, flatten(drain(b)));
    EXPECT_NE(oa, flatten(drain(c)));
  }
}

TEST(Batcher, EpochOrderIsAPureFunctionOfSeedAndEpoch) {
  recur::Batcher walked(range(0, 200), 16, 99), direct(range(0, 200), 16, 99);
  for (std::int64_t e = 0; e <= 4; ++e) {
    walked.start_epoch(e);
    drain(walked);
  }
  walked.start_epoch(4);
  direct.start_epoch(4);
  EXPECT_EQ(flatten(drain(walked)), flatten(drain(direct)));
}

TEST(Batcher, SeekReproducesTheRestOfAnEpoch) {
  recur::Batcher full(range(0, 250), 20, 2024);
  full.start_epoch(3);
  const Batches all = drain(full);
  // Resume after 4 batches, the way a checkpoint would record it.
  recur::Batcher resumed(range(0, 250), 20, 2024);
  resumed.seek(3, 80);
  EXPECT_EQ(resumed.epoch(), 3);
  EXPECT_EQ(resumed.cursor(), 80);
  const Batches rest = drain(resumed);
  EXPECT_EQ(rest, Batches(all.begin() + 4, all.end()));
  // A cursor inside a batch gives the same samples from there on.
  recur::Batcher odd(range(0, 250), 20, 2024);
  odd.seek(3, 85);
  const auto tail = flatten(drain(odd));
  const auto whole = flatten(all);
  EXPECT_EQ(tail, std::vector<std::int64_t>(whole.begin() + 85, whole.end()));
}

TEST(Batcher, NoShuffleKeepsTheGivenOrder) {
  const std::vector<std::int64_t> indices = {9, 3, 7, 1, 5};
  recur::Batcher b(indices, 2, 1, false);
  b.start_epoch(6);
  const Batches batches = drain(b);
  EXPECT_EQ(batches, (Batches{{9, 3}, {7, 1}, {5}}));
}

TEST(Batcher, NextIsFalseAtTheEndOfAnEpoch) {
  recur::Batcher b(range(0, 4), 4, 1);
  std::vector<std::int64_t> batch;
  EXPECT_TRUE(b.next(batch));
  EXPECT_EQ(batch.size(), 4u);
  EXPECT_FALSE(b.next(batch));
  EXPECT_TRUE(batch.empty());
}

TEST(Batcher, RejectsBadArguments) {
  try {
    recur::Batcher b(range(0, 4), 0, 1);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "--batch");
  }
  recur::Batcher b(range(0, 4), 2, 1);
  EXPECT_THROW(b.seek(0, 5), recur::Error);
  EXPECT_THROW(b.seek(-1, 0), recur::Error);
}

}  // namespace
