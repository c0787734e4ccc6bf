// Line plots, training curves, the confusion matrix and the digit gallery: sizes, colours, bad
// input, and (with RECUR_PICS_DIR set) sample pictures to look at.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "recur/error.hpp"
#include "recur/image.hpp"
#include "recur/plot.hpp"

namespace {

namespace fs = std::filesystem;
using recur::CurveSeries;
using recur::DigitTile;
using recur::Rgb;
using recur::RgbImage;
using recur::TrainingCurves;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("recur_plot_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

int count_colour(const RgbImage& img, Rgb c) {
  int n = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) n += img.get(x, y) == c;
  }
  return n;
}

CurveSeries series(std::string label, std::vector<double> x, std::vector<double> y, Rgb c) {
  CurveSeries s;
  s.label = std::move(label);
  s.x = std::move(x);
  s.y = std::move(y);
  s.color = c;
  return s;
}

std::uint32_t noise(std::uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return state >> 8;
}
double uniform(std::uint32_t& state) {
  return noise(state) / 16777216.0;
}

TrainingCurves fake_curves(int steps, int every, int epoch) {
  TrainingCurves c;
  std::uint32_t state = 1;
  for (int s = 0; s <= steps; s += every) {
    double base = 2.2 * std::exp(-s / 700.0) + 0.06 + 0.05 * std::exp(-s / 4000.0);
    c.train_step.push_back(s);
    c.train_loss.push_back(base * (1.0 + 0.35 * (uniform(state) - 0.5)));
    c.train_acc.push_back(100.0 * std::min(1.0, 0.1 + 0.88 * (1 - std::exp(-s / 600.0)) +
                                                    0.04 * (uniform(state) - 0.5)));
  }
  for (int s = epoch; s <= steps; s += epoch) {
    c.val_step.push_back(s);
    c.val_loss.push_back(2.2 * std::exp(-s / 700.0) + 0.07 + 0.000004 * s);
    c.val_acc.push_back(100.0 * (0.1 + 0.885 * (1 - std::exp(-s / 650.0)) - 0.0000005 * s));
  }
  return c;
}

// MNIST-like test counts: class sizes of the MNIST test set, about 98% on the diagonal.
std::vector<std::int64_t> fake_confusion() {
  const int totals[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
  const int likely[10] = {6, 7, 7, 5, 9, 3, 0, 2, 3, 4};  // the usual mix-up of each class
  std::vector<std::int64_t> m(100, 0);
  std::uint32_t state = 42;
  for (int r = 0; r < 10; ++r) {
    int wrong = 6 + static_cast<int>(uniform(state) * 22);
    int to_likely = wrong / 2;
    m[r * 10 + likely[r]] += to_likely;
    for (int i = to_likely; i < wrong; ++i) {
      int c = static_cast<int>(uniform(state) * 10);
      if (c == r) c = (c + 1) % 10;
      m[r * 10 + c] += 1;
    }
    m[r * 10 + r] = totals[r] - wrong;
  }
  return m;
}

// A blurred digit drawn with recur's font, white on black, 28x28.
std::vector<std::uint8_t> fake_digit(int digit, int shift) {
  RgbImage img(28, 28, Rgb{0, 0, 0});
  recur::draw_text(img, 7 + shift % 3 - 1, 3 + shift % 2, std::to_string(digit), Rgb{255, 255, 255},
                   3);
  std::vector<std::uint8_t> out(28 * 28);
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      int sum = 0, n = 0;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          if (!img.contains(x + dx, y + dy)) continue;
          sum += img.get(x + dx, y + dy).r * ((dx == 0 && dy == 0) ? 4 : 1);
          n += (dx == 0 && dy == 0) ? 4 : 1;
        }
      }
      out[y * 28 + x] = static_cast<std::uint8_t>(std::min(255, sum * 3 / (2 * n)));
    }
  }
  return out;
}

std::vector<DigitTile> fake_gallery(int n) {
  std::vector<DigitTile> tiles;
  std::uint32_t state = 9;
  for (int i = 0; i < n; ++i) {
    DigitTile t;
    int truth = static_cast<int>(uniform(state) * 10);
    int pred = (i % 4 == 1) ? (truth + 1 + static_cast<int>(uniform(state) * 9)) % 10 : truth;
    t.pixels = fake_digit(truth, i);
    t.caption = "t:" + std::to_string(truth) + " p:" + std::to_string(pred);
    t.caption_color = pred == truth ? Rgb{20, 130, 50} : Rgb{205, 35, 35};
    tiles.push_back(std::move(t));
  }
  return tiles;
}

// ---------------------------------------------------------------------------------------------

TEST(PlotTicks, RoundSteps) {
  auto t = recur::nice_ticks(0.0, 1.0, 5);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  ASSERT_EQ(t.values.size(), 6u);
  EXPECT_DOUBLE_EQ(t.values.back(), 1.0);

  t = recur::nice_ticks(0.013, 2.31, 6);
  EXPECT_DOUBLE_EQ(t.step, 0.5);
  EXPECT_EQ(t.values, (std::vector<double>{0.5, 1.0, 1.5, 2.0}));

  t = recur::nice_ticks(0.0, 9380.0, 7);
  EXPECT_DOUBLE_EQ(t.step, 2000.0);
  EXPECT_EQ(t.values.size(), 5u);

  t = recur::nice_ticks(-1.0, 1.0, 8);
  EXPECT_DOUBLE_EQ(t.step, 0.25);
  EXPECT_EQ(t.values.size(), 9u);

  EXPECT_TRUE(recur::nice_ticks(kNaN, 1.0, 5).values.empty());
  EXPECT_EQ(recur::nice_ticks(3.0, 3.0, 5).values, (std::vector<double>{3.0}));
}

TEST(PlotTicks, LabelsUseTheStepsDecimals) {
  EXPECT_EQ(recur::format_tick(0.25, 0.25), "0.25");
  EXPECT_EQ(recur::format_tick(0.5, 0.25), "0.50");
  EXPECT_EQ(recur::format_tick(2000, 1000), "2000");
  EXPECT_EQ(recur::format_tick(1.5, 0.5), "1.5");
  EXPECT_EQ(recur::format_tick(-1e-17, 0.1), "0.0");
  EXPECT_EQ(recur::format_tick(97.5, 2.5), "97.5");
  EXPECT_EQ(recur::format_tick(3e7, 1e7), "3e+07");
}

TEST(PlotLines, SizeAndLineColour) {
  const Rgb red{200, 30, 40}, blue{30, 60, 200};
  std::vector<CurveSeries> s{series("a", {0, 1, 2, 3}, {1, 3, 2, 4}, red),
                             series("b", {0, 3}, {4, 1}, blue)};
  RgbImage img = recur::plot_lines("title", "x", "y", s);
  EXPECT_EQ(img.width, 640);
  EXPECT_EQ(img.height, 400);
  EXPECT_GT(count_colour(img, red), 300);  // a 2.5 px line across the panel, plus the legend
  EXPECT_GT(count_colour(img, blue), 300);

  RgbImage other = recur::plot_lines("", "", "", s, 300, 200);
  EXPECT_EQ(other.width, 300);
  EXPECT_EQ(other.height, 200);
  EXPECT_GT(count_colour(other, red), 50);
}

TEST(PlotLines, DegenerateDataDoesNotCrash) {
  const Rgb c{10, 150, 60};
  std::vector<std::vector<CurveSeries>> cases{
      {},
      {series("empty", {}, {}, c)},
      {series("nan", {kNaN, kNaN}, {1, 2}, c)},
      {series("single", {5}, {0.25}, c)},
      {series("constant", {0, 1, 2}, {3, 3, 3}, c)},
      {series("zero", {0, 1, 2}, {0, 0, 0}, c)},
      {series("mixed", {0, 1, 2, 3, 4, 5}, {1, kNaN, 2, kInf, -kInf, 3}, c)},
      {series("mismatched", {0, 1, 2, 3}, {1, 2}, c)},
      {series("huge", {0, 1}, {-1e300, 1e300}, c)},
      {series("tiny", {0, 1e-12}, {1e-12, 2e-12}, c)},
      {series("", {0, 1}, {0, 1}, c)}};
  for (const auto& s : cases) {
    RgbImage img = recur::plot_lines("t", "x", "y", s);
    EXPECT_EQ(img.width, 640);
    EXPECT_EQ(img.height, 400);
  }
  // A single point and the isolated points of the mixed series are drawn as dots.
  EXPECT_GT(count_colour(recur::plot_lines("t", "x", "y", cases[3]), c), 10);
  EXPECT_GT(count_colour(recur::plot_lines("t", "x", "y",
                                           {series("", {0, 1, 2, 3, 4}, {1, kNaN, 2, kNaN, 3}, c)}),
                         c),
            20);
}

TEST(PlotLines, BadSizeThrows) {
  EXPECT_THROW(recur::plot_lines("t", "x", "y", {}, 10, 400), recur::Error);
  EXPECT_THROW(recur::plot_lines("t", "x", "y", {}, 640, 100000), recur::Error);
}

TEST(PlotFigures, TrainingCurvesLoadBack) {
  TempDir dir;
  std::string path = dir.path("curves.png");
  recur::write_training_curves(path, fake_curves(5000, 50, 500), "lstm on mnist rows");
  recur::GrayImage g = recur::load_gray_image(path);
  RgbImage direct = recur::draw_training_curves(fake_curves(5000, 50, 500), "lstm on mnist rows");
  EXPECT_EQ(g.width, direct.width);
  EXPECT_EQ(g.height, direct.height);
  EXPECT_EQ(g.pixels, recur::to_gray(direct).pixels);

  TrainingCurves odd;
  odd.train_step = {0, 1, 2};
  odd.train_loss = {kNaN, 1.0};
  odd.val_acc = {50.0};
  EXPECT_NO_THROW(recur::write_training_curves(dir.path("odd.png"), odd, ""));
  EXPECT_NO_THROW(recur::write_training_curves(dir.path("empty.png"), TrainingCurves{}, "x"));
}

TEST(PlotFigures, ConfusionLoadsBackAndChecksInput) {
  TempDir dir;
  std::string path = dir.path("confusion.png");
  recur::write_confusion_png(path, fake_confusion(), 10, {}, "confusion");
  RgbImage direct = recur::draw_confusion(fake_confusion(), 10, {}, "confusion");
  recur::GrayImage g = recur::load_gray_image(path);
  EXPECT_EQ(g.width, direct.width);
  EXPECT_EQ(g.height, direct.height);
  EXPECT_GT(direct.width, 600);

  for (int k : {1, 2, 3, 40, 200}) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(k) * k, 3);
    RgbImage img = recur::draw_confusion(counts, k, {}, "k");
    EXPECT_GT(img.width, 0) << k;
  }
  std::vector<std::string> names{"zero", "one", "two"};
  EXPECT_NO_THROW(recur::draw_confusion(std::vector<std::int64_t>(9, 0), 3, names, "t"));

  auto expect_error = [&](const std::vector<std::int64_t>& counts, int k,
                          const std::vector<std::string>& class_names) {
    try {
      recur::write_confusion_png(path, counts, k, class_names, "t");
      ADD_FAILURE() << "no error for k=" << k;
    } catch (const recur::Error& e) {
      EXPECT_EQ(e.subject(), path);
    }
  };
  expect_error(std::vector<std::int64_t>(8, 1), 3, {});
  expect_error(std::vector<std::int64_t>(4, -1), 2, {});
  expect_error({}, 0, {});
  expect_error(std::vector<std::int64_t>(4, 1), 2, {"a", "b", "c"});
}

TEST(PlotFigures, DigitGridLoadsBackAndChecksInput) {
  TempDir dir;
  std::string path = dir.path("grid.png");
  auto tiles = fake_gallery(24);
  recur::write_digit_grid(path, "mistakes", tiles, 6);
  RgbImage direct = recur::draw_digit_grid("mistakes", tiles, 6);
  recur::GrayImage g = recur::load_gray_image(path);
  EXPECT_EQ(g.width, direct.width);
  EXPECT_EQ(g.height, direct.height);
  // Six cells of 84 px per row, four rows.
  EXPECT_GT(direct.width, 6 * 84);
  EXPECT_GT(direct.height, 4 * 84);
  EXPECT_GT(count_colour(direct, Rgb{205, 35, 35}), 10);

  EXPECT_NO_THROW(recur::draw_digit_grid("none", {}, 4));
  DigitTile odd;
  odd.rows = 8;
  odd.cols = 5;
  odd.pixels.assign(40, 200);
  EXPECT_NO_THROW(recur::draw_digit_grid("", {odd, tiles[0]}, 3));

  auto expect_error = [&](const std::vector<DigitTile>& t, int cols) {
    try {
      recur::write_digit_grid(path, "t", t, cols);
      ADD_FAILURE() << "no error";
    } catch (const recur::Error& e) {
      EXPECT_EQ(e.subject(), path);
    }
  };
  expect_error(tiles, 0);
  DigitTile bad = tiles[0];
  bad.pixels.pop_back();
  expect_error({tiles[0], bad}, 2);
  expect_error(std::vector<DigitTile>(2000, tiles[0]), 1);  // far too tall
}

// Writes every kind of picture recur draws and checks each reads back as a PNG of the size
// asked for, with something drawn on it. With $RECUR_PICS_DIR set they stay there, for a person
// to look at; otherwise they go to a temporary folder.
TEST(PlotSamples, WriteToPicsDir) {
  TempDir scratch;
  const char* dir = std::getenv("RECUR_PICS_DIR");
  const std::string d = dir != nullptr && *dir != '\0' ? std::string(dir) : scratch.path("pics");
  fs::create_directories(d);
  recur::write_training_curves(d + "/curves.png", fake_curves(9380, 20, 938),
                               "lstm-128 on mnist rows, adam lr 1e-3");
  recur::write_confusion_png(d + "/confusion.png", fake_confusion(), 10, {},
                             "confusion on test set (accuracy 98.41%)");
  recur::write_digit_grid(d + "/gallery.png", "test samples: true and predicted class",
                          fake_gallery(24), 6);
  std::vector<CurveSeries> s{
      series("sin", {0, 1, 2, 3, 4, 5, 6, 7}, {0, 0.84, 0.91, 0.14, -0.76, -0.96, -0.28, 0.66},
             Rgb{38, 110, 200}),
      series("with gaps", {0, 1, 2, 3, 4, 5, 6, 7}, {0.5, kNaN, 0.2, 0.3, kInf, -0.5, kNaN, 0.1},
             Rgb{232, 110, 20}),
      series("one point", {3.5}, {-0.2}, Rgb{40, 160, 70})};
  recur::write_png(d + "/lines.png", recur::plot_lines("plot_lines sample", "x", "value", s));
  recur::write_png(d + "/lines_empty.png", recur::plot_lines("no data here", "x", "y", {}));
  recur::write_png(d + "/lines_large.png",
                   recur::plot_lines("plot_lines at 1280x800", "x", "value", s, 1280, 800));
  std::vector<std::int64_t> big(40 * 40);
  for (int r = 0; r < 40; ++r) {
    for (int c = 0; c < 40; ++c) big[r * 40 + c] = r == c ? 900 : (r + c) % 7 == 0 ? 12 : 0;
  }
  recur::write_confusion_png(d + "/confusion40.png", big, 40, {}, "40 classes");
  RgbImage font(640, 120, Rgb{255, 255, 255});
  std::string all;
  for (int ch = 32; ch <= 126; ++ch) all += static_cast<char>(ch);
  recur::draw_text(font, 10, 10, all.substr(0, 48), Rgb{0, 0, 0}, 2);
  recur::draw_text(font, 10, 40, all.substr(48), Rgb{0, 0, 0}, 2);
  recur::draw_text(font, 10, 75, "The quick brown fox jumps over the lazy dog. 0.25 -1e-3 98.7%",
                   Rgb{0, 0, 0}, 1);
  recur::draw_text(font, 10, 95, all, Rgb{60, 60, 60}, 1);
  recur::write_png(d + "/font.png", font);

  struct Expected {
    const char* name;
    int width, height;  // 0: only checked to be positive
  };
  for (const Expected& e :
       {Expected{"curves.png", 0, 0}, Expected{"confusion.png", 0, 0},
        Expected{"gallery.png", 0, 0}, Expected{"lines.png", 0, 0},
        Expected{"lines_empty.png", 0, 0}, Expected{"lines_large.png", 1280, 800},
        Expected{"confusion40.png", 0, 0}, Expected{"font.png", 640, 120}}) {
    const recur::GrayImage g = recur::load_gray_image(d + "/" + e.name);
    if (e.width > 0) {
      EXPECT_EQ(g.width, e.width) << e.name;
      EXPECT_EQ(g.height, e.height) << e.name;
    }
    EXPECT_GT(g.width, 100) << e.name;
    EXPECT_GT(g.height, 100) << e.name;
    // Not a blank page: at least 1% of the pixels differ from the corner's background.
    const auto background = g.pixels.front();
    const auto drawn = std::count_if(g.pixels.begin(), g.pixels.end(),
                                     [&](std::uint8_t v) { return v != background; });
    EXPECT_GT(drawn, static_cast<std::ptrdiff_t>(g.pixels.size() / 100)) << e.name;
  }
}

}  // namespace
