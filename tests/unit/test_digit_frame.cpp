// frame_digit: a digit at any size, place and polarity comes out in MNIST's framing (fits a
// 20x20 box, centre of mass at the centre of 28x28, background 0, ink 255).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "recur/data.hpp"
#include "recur/digit_frame.hpp"
#include "recur/error.hpp"

namespace {

using recur::GrayImage;

GrayImage canvas(int w, int h, std::uint8_t level) {
  GrayImage g;
  g.width = w;
  g.height = h;
  g.pixels.assign(static_cast<std::size_t>(w) * h, level);
  return g;
}

void fill(GrayImage& g, int x0, int y0, int w, int h, std::uint8_t level) {
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x) g.pixels[static_cast<std::size_t>(y) * g.width + x] = level;
}

struct Ink {
  int left = 1 << 30, top = 1 << 30, right = -1, bottom = -1;
  double cx = 0, cy = 0, mass = 0;
  int max = 0;
};

Ink measure(const GrayImage& g) {
  Ink k;
  for (int y = 0; y < g.height; ++y) {
    for (int x = 0; x < g.width; ++x) {
      const int v = g.at(x, y);
      if (v == 0) continue;
      k.left = std::min(k.left, x);
      k.right = std::max(k.right, x);
      k.top = std::min(k.top, y);
      k.bottom = std::max(k.bottom, y);
      k.mass += v;
      k.cx += v * (x + 0.5);
      k.cy += v * (y + 0.5);
      k.max = std::max(k.max, v);
    }
  }
  k.cx /= k.mass;
  k.cy /= k.mass;
  return k;
}

TEST(DigitFrame, DarkBarOnGreyPaperIsFramedLikeMnist) {
  // A tall dark bar, off-centre on a large light-grey canvas with noise.
  GrayImage g = canvas(300, 200, 190);
  fill(g, 20, 30, 24, 120, 60);
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 4.0);
  for (auto& p : g.pixels) p = static_cast<std::uint8_t>(std::clamp(p + noise(rng), 0.0, 255.0));
  recur::DigitFrameReport r;
  const GrayImage out = recur::frame_digit(g, 28, 28, recur::Polarity::automatic, "bar.png", &r);
  ASSERT_EQ(out.width, 28);
  ASSERT_EQ(out.height, 28);
  EXPECT_TRUE(r.inverted);
  EXPECT_EQ(r.blobs, 1);
  EXPECT_NEAR(r.ink_left, 20, 1);
  EXPECT_NEAR(r.ink_top, 30, 1);
  EXPECT_NEAR(r.ink_height, 120, 2);
  const Ink k = measure(out);
  EXPECT_EQ(k.bottom - k.top + 1, 20);  // the long side fills the 20-pixel box
  EXPECT_EQ(k.right - k.left + 1, 4);   // 24 x 120 keeps its 1:5 aspect
  EXPECT_NEAR(k.cx, 14.0, 0.5);
  EXPECT_NEAR(k.cy, 14.0, 0.5);
  EXPECT_GE(k.max, 245);  // the stroke's middle is saturated, as in MNIST
  // The background is exactly 0 outside the bar.
  EXPECT_EQ(out.at(0, 0), 0);
  EXPECT_EQ(out.at(27, 27), 0);
}

TEST(DigitFrame, KeepPolarityAndSpecksAreErased) {
  GrayImage g = canvas(100, 100, 0);
  fill(g, 60, 10, 30, 30, 250);  // the digit
  fill(g, 5, 90, 1, 1, 200);     // a speck of noise
  recur::DigitFrameReport r;
  const GrayImage out = recur::frame_digit(g, 28, 28, recur::Polarity::keep, "speck.png", &r);
  EXPECT_FALSE(r.inverted);
  EXPECT_EQ(r.blobs, 1);
  EXPECT_EQ(r.specks, 1);
  const Ink k = measure(out);
  EXPECT_EQ(k.right - k.left + 1, 20);
  EXPECT_EQ(k.bottom - k.top + 1, 20);
  EXPECT_NEAR(k.cx, 14.0, 0.5);
}

TEST(DigitFrame, SeveralBlobsAreReportedAndKept) {
  GrayImage g = canvas(120, 60, 0);
  fill(g, 10, 10, 20, 40, 255);
  fill(g, 80, 10, 20, 40, 255);
  recur::DigitFrameReport r;
  const GrayImage out = recur::frame_digit(g, 28, 28, recur::Polarity::automatic, "two.png", &r);
  EXPECT_EQ(r.blobs, 2);
  EXPECT_EQ(measure(out).right - measure(out).left + 1, 20);  // both fit the box together
}

TEST(DigitFrame, BlankPicturesHoldNoInk) {
  for (const std::uint8_t level : {0, 128, 255}) {
    try {
      recur::frame_digit(canvas(50, 40, level), 28, 28, recur::Polarity::automatic, "blank.png");
      FAIL() << "no error for a blank picture of level " << int(level);
    } catch (const recur::Error& e) {
      EXPECT_EQ(e.subject(), "blank.png");
      EXPECT_NE(e.reason().find("holds no ink"), std::string::npos) << e.reason();
    }
  }
}

TEST(DigitFrame, MnistDigitsKeepTheirFraming) {
  const std::string dir = RECUR_DATA_DIR "/mnist";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << "MNIST is missing from " << dir;
  const recur::ImageSet set = recur::load_mnist(dir, false);
  // MNIST's digits are already framed this way: framing them again keeps them close to what
  // they were (by correlation), in the 20-pixel box, with the centre of mass at the centre.
  double correlation_sum = 0;
  const int n = 200;
  for (std::int64_t i = 0; i < n; ++i) {
    GrayImage g;
    g.width = set.cols;
    g.height = set.rows;
    g.pixels.assign(set.image(i), set.image(i) + set.rows * set.cols);
    const GrayImage out = recur::frame_digit(g, 28, 28, recur::Polarity::automatic, "mnist");
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (std::size_t p = 0; p < g.pixels.size(); ++p) {
      const double a = g.pixels[p], b = out.pixels[p];
      sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
    }
    const double m = static_cast<double>(g.pixels.size());
    correlation_sum += (sab - sa * sb / m) / std::sqrt((saa - sa * sa / m) * (sbb - sb * sb / m));
    const Ink k = measure(out);
    EXPECT_EQ(std::max(k.right - k.left, k.bottom - k.top) + 1, 20) << "digit " << i;
    EXPECT_NEAR(k.cx, 14.0, 0.5) << "digit " << i;
    EXPECT_NEAR(k.cy, 14.0, 0.5) << "digit " << i;
  }
  EXPECT_GT(correlation_sum / n,
            0.7);  // 0.76 measured: faint edges below a fifth of the ink are cut
  std::printf("mean correlation of 200 reframed MNIST digits with the originals: %.3f\n",
              correlation_sum / n);
}

TEST(DigitFrame, RejectsAnEmptyPicture) {
  GrayImage empty;
  EXPECT_THROW(recur::frame_digit(empty, 28, 28, recur::Polarity::automatic, "e"), recur::Error);
}

}  // namespace
