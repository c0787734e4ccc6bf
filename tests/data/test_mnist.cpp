// The real MNIST files in RECUR_DATA_DIR/mnist (scripts/test.sh fetches them before ctest).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "recur/data.hpp"

namespace {

const std::string kMnistDir = RECUR_DATA_DIR "/mnist";

bool mnist_present() {
  return std::filesystem::is_directory(kMnistDir);
}

#define REQUIRE_MNIST()                                                                \
  ASSERT_TRUE(mnist_present()) << "MNIST is missing from " << kMnistDir                \
                               << ": run `recur data fetch mnist --data " << kMnistDir \
                               << "` (scripts/test.sh does this before ctest)"

std::vector<std::int32_t> first_labels(const recur::ImageSet& set, int n) {
  return std::vector<std::int32_t>(set.labels.begin(), set.labels.begin() + n);
}

TEST(DataMnist, TrainingSetShapeAndFirstLabels) {
  REQUIRE_MNIST();
  const recur::ImageSet train = recur::load_mnist(kMnistDir, true);
  EXPECT_EQ(train.count, 60000);
  EXPECT_EQ(train.rows, 28);
  EXPECT_EQ(train.cols, 28);
  EXPECT_EQ(train.pixels.size(), 60000u * 28 * 28);
  EXPECT_EQ(train.labels.size(), 60000u);
  EXPECT_EQ(first_labels(train, 5), (std::vector<std::int32_t>{5, 0, 4, 1, 9}));
}

TEST(DataMnist, TestSetShapeAndFirstLabels) {
  REQUIRE_MNIST();
  const recur::ImageSet test = recur::load_mnist(kMnistDir, false);
  EXPECT_EQ(test.count, 10000);
  EXPECT_EQ(test.rows, 28);
  EXPECT_EQ(test.cols, 28);
  EXPECT_EQ(test.pixels.size(), 10000u * 28 * 28);
  EXPECT_EQ(first_labels(test, 5), (std::vector<std::int32_t>{7, 2, 1, 0, 4}));
}

TEST(DataMnist, ClassCountsAndPixelRange) {
  REQUIRE_MNIST();
  const recur::ImageSet test = recur::load_mnist(kMnistDir, false);
  std::vector<int> counts(10, 0);
  for (std::int32_t label : test.labels) ++counts[static_cast<std::size_t>(label)];
  // The published MNIST test set class sizes.
  EXPECT_EQ(counts, (std::vector<int>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}));
  // Borders are blank, strokes saturate.
  const std::uint8_t* first = test.image(0);
  EXPECT_EQ(first[0], 0);
  EXPECT_EQ(*std::max_element(first, first + 784), 255);
}

}  // namespace
