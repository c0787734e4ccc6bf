// Sequence views: rows is the image row by row, cols its transpose, pixels the row-major
// flatten, permuted a fixed seeded permutation of the pixels.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "recur/data.hpp"
#include "recur/error.hpp"

namespace {

using recur::SequenceView;
using recur::ViewKind;

// 4 images of 3x5 with distinct-looking pixels.
recur::ImageSet small_set() {
  recur::ImageSet set;
  set.source = "crafted";
  set.count = 4;
  set.rows = 3;
  set.cols = 5;
  for (int i = 0; i < 4 * 15; ++i)
    set.pixels.push_back(static_cast<std::uint8_t>((i * 53 + 17) % 256));
  set.labels = {3, 1, 4, 1};
  return set;
}

// The view's sequence for one sample of a filled batch, as [steps * features].
std::vector<float> sample(const SequenceView& v, const std::vector<float>& x, int batch, int b) {
  std::vector<float> out;
  for (int t = 0; t < v.steps(); ++t) {
    for (int f = 0; f < v.features(); ++f) {
      out.push_back(x[(static_cast<std::size_t>(t) * batch + b) * v.features() + f]);
    }
  }
  return out;
}

std::vector<float> filled(const SequenceView& v, const recur::ImageSet& set,
                          const std::vector<std::int64_t>& idx) {
  std::vector<float> x(static_cast<std::size_t>(v.steps()) * v.features() * idx.size(), -1.f);
  v.fill(set, idx.data(), static_cast<int>(idx.size()), x.data());
  return x;
}

const std::vector<std::int64_t> kBatch = {2, 0, 3};

TEST(View, StepsAndFeaturesPerKind) {
  EXPECT_EQ(SequenceView::make(ViewKind::rows, 28, 20).steps(), 28);
  EXPECT_EQ(SequenceView::make(ViewKind::rows, 28, 20).features(), 20);
  EXPECT_EQ(SequenceView::make(ViewKind::cols, 28, 20).steps(), 20);
  EXPECT_EQ(SequenceView::make(ViewKind::cols, 28, 20).features(), 28);
  EXPECT_EQ(SequenceView::make(ViewKind::pixels, 28, 20).steps(), 560);
  EXPECT_EQ(SequenceView::make(ViewKind::pixels, 28, 20).features(), 1);
  EXPECT_EQ(SequenceView::make(ViewKind::permuted, 28, 20, 3).steps(), 560);
  EXPECT_EQ(SequenceView::make(ViewKind::permuted, 28, 20, 3).features(), 1);
}

TEST(View, RowsIsTimeMajorRowByRow) {
  const auto set = small_set();
  const auto v = SequenceView::make(ViewKind::rows, 3, 5);
  const auto x = filled(v, set, kBatch);
  for (int t = 0; t < 3; ++t) {
    for (int b = 0; b < 3; ++b) {
      for (int f = 0; f < 5; ++f) {
        ASSERT_EQ(x[(t * 3 + b) * 5 + f], set.image(kBatch[b])[t * 5 + f] / 255.f);
      }
    }
  }
}

TEST(View, PixelsEqualsRowMajorFlattenOfRows) {
  const auto set = small_set();
  const auto rows = SequenceView::make(ViewKind::rows, 3, 5);
  const auto pixels = SequenceView::make(ViewKind::pixels, 3, 5);
  const auto xr = filled(rows, set, kBatch);
  const auto xp = filled(pixels, set, kBatch);
  for (int b = 0; b < 3; ++b) EXPECT_EQ(sample(pixels, xp, 3, b), sample(rows, xr, 3, b));
}

TEST(View, ColsIsTransposeOfRows) {
  const auto set = small_set();
  const auto rows = SequenceView::make(ViewKind::rows, 3, 5);
  const auto cols = SequenceView::make(ViewKind::cols, 3, 5);
  const auto xr = filled(rows, set, kBatch);
  const auto xc = filled(cols, set, kBatch);
  for (int b = 0; b < 3; ++b) {
    const auto r = sample(rows, xr, 3, b);  // [3][5]
    const auto c = sample(cols, xc, 3, b);  // [5][3]
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 5; ++j) ASSERT_EQ(c[j * 3 + i], r[i * 5 + j]);
    }
  }
}

TEST(View, PermutedIsAPermutationOfRows) {
  const auto set = small_set();
  const auto rows = SequenceView::make(ViewKind::rows, 3, 5);
  const auto perm = SequenceView::make(ViewKind::permuted, 3, 5, 42);
  const auto xr = filled(rows, set, kBatch);
  const auto xp = filled(perm, set, kBatch);
  bool differs_somewhere = false;
  for (int b = 0; b < 3; ++b) {
    auto r = sample(rows, xr, 3, b);
    auto p = sample(perm, xp, 3, b);
    for (int t = 0; t < 15; ++t) ASSERT_EQ(p[t], r[perm.order[t]]);
    differs_somewhere = differs_somewhere || p != r;
    std::sort(r.begin(), r.end());
    std::sort(p.begin(), p.end());
    EXPECT_EQ(p, r);
  }
  EXPECT_TRUE(differs_somewhere);
}

TEST(View, PermutationIsDeterministicBySeedAndDiffersBetweenSeeds) {
  const auto a = SequenceView::make(ViewKind::permuted, 28, 28, 7);
  const auto b = SequenceView::make(ViewKind::permuted, 28, 28, 7);
  const auto c = SequenceView::make(ViewKind::permuted, 28, 28, 8);
  EXPECT_EQ(a.order, b.order);
  EXPECT_NE(a.order, c.order);
  std::vector<std::int32_t> sorted = a.order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::int32_t> identity(784);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(a.order, identity);
  EXPECT_TRUE(SequenceView::make(ViewKind::pixels, 28, 28, 7).order.empty());
}

TEST(View, ScalesBytesToUnitInterval) {
  recur::ImageSet set;
  set.count = 1;
  set.rows = 1;
  set.cols = 3;
  set.pixels = {0, 128, 255};
  set.labels = {0};
  const auto v = SequenceView::make(ViewKind::rows, 1, 3);
  const std::int64_t idx = 0;
  float x[3];
  v.fill(set, &idx, 1, x);
  EXPECT_EQ(x[0], 0.f);
  EXPECT_EQ(x[1], 128 / 255.f);
  EXPECT_EQ(x[2], 1.f);
}

TEST(View, FillLabelsFollowsIndices) {
  const auto set = small_set();
  const auto v = SequenceView::make(ViewKind::rows, 3, 5);
  std::int32_t y[3] = {-1, -1, -1};
  v.fill_labels(set, kBatch.data(), 3, y);
  EXPECT_EQ(y[0], 4);
  EXPECT_EQ(y[1], 3);
  EXPECT_EQ(y[2], 1);
}

TEST(View, ImageSizeMismatchNamesTheSource) {
  const auto set = small_set();
  const auto v = SequenceView::make(ViewKind::rows, 28, 28);
  std::vector<float> x(28 * 28 * 3);
  try {
    v.fill(set, kBatch.data(), 3, x.data());
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "crafted");
    EXPECT_NE(std::string(e.what()).find("images are 3x5 but the rows view expects 28x28"),
              std::string::npos)
        << e.what();
  }
}

TEST(View, ParseAndNameRoundTrip) {
  for (ViewKind k : {ViewKind::rows, ViewKind::cols, ViewKind::pixels, ViewKind::permuted}) {
    EXPECT_EQ(recur::parse_view(recur::to_string(k)), k);
  }
  EXPECT_EQ(recur::to_string(ViewKind::permuted), "permuted");
  try {
    recur::parse_view("diagonal");
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "--view");
    EXPECT_EQ(e.reason(), "unknown view 'diagonal' (rows, cols, pixels, permuted)");
  }
}

TEST(View, RejectsEmptyImageSize) {
  EXPECT_THROW(SequenceView::make(ViewKind::rows, 0, 28), recur::Error);
  EXPECT_THROW(SequenceView::make(ViewKind::cols, 28, -1), recur::Error);
}

}  // namespace
