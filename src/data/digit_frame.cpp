#include "recur/digit_frame.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "recur/error.hpp"

namespace recur {

namespace {

// Pictures are brought to at most this side before anything else: the digit's shape survives,
// and the blob labels below stay small whatever the file's size.
constexpr int kWorkingSide = 1024;
// The faintest ink that counts, in levels of 255 between background and ink.
constexpr int kMinimumContrast = 24;
// Below this fraction of the way from background to ink a pixel is paper (grain, light noise).
constexpr double kPaperFraction = 0.2;
// A blob is a speck (erased) when its ink is below this fraction of the largest blob's.
constexpr double kSpeckFraction = 0.05;

// Most pixels of the outermost frame are light: dark ink on paper.
bool border_is_light(const GrayImage& img) {
  long long light = 0, total = 0;
  auto visit = [&](int x, int y) {
    light += img.at(x, y) >= 128 ? 1 : 0;
    ++total;
  };
  for (int x = 0; x < img.width; ++x) {
    visit(x, 0);
    if (img.height > 1) visit(x, img.height - 1);
  }
  for (int y = 1; y + 1 < img.height; ++y) {
    visit(0, y);
    if (img.width > 1) visit(img.width - 1, y);
  }
  return 2 * light > total;
}

int median_level(const std::vector<std::uint8_t>& v) {
  std::array<std::size_t, 256> hist{};
  for (std::uint8_t p : v) ++hist[p];
  std::size_t seen = 0;
  for (int level = 0; level < 256; ++level) {
    seen += hist[static_cast<std::size_t>(level)];
    if (2 * seen >= v.size()) return level;
  }
  return 255;
}

// The brightest mean of a 3x3 neighbourhood (clipped at the edges): the ink's level, with single
// noisy pixels averaged away.
int ink_level(const GrayImage& img) {
  int best = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      int sum = 0, n = 0;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= img.width || yy >= img.height) continue;
          sum += img.at(xx, yy);
          ++n;
        }
      }
      best = std::max(best, (sum + n / 2) / n);
    }
  }
  return best;
}

// 8-connected blobs of non-zero pixels: label per pixel (-1 for none) and ink per blob.
struct Blobs {
  std::vector<std::int32_t> label;
  std::vector<double> ink;
};

Blobs find_blobs(const GrayImage& img) {
  const int W = img.width, H = img.height;
  Blobs b;
  b.label.assign(static_cast<std::size_t>(W) * H, -1);
  std::vector<std::int32_t> stack;
  for (std::size_t start = 0; start < b.label.size(); ++start) {
    if (img.pixels[start] == 0 || b.label[start] >= 0) continue;
    const auto id = static_cast<std::int32_t>(b.ink.size());
    double ink = 0;
    b.label[start] = id;
    stack.push_back(static_cast<std::int32_t>(start));
    while (!stack.empty()) {
      const std::int32_t p = stack.back();
      stack.pop_back();
      ink += img.pixels[static_cast<std::size_t>(p)];
      const int x = p % W, y = p / W;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
          const std::size_t q = static_cast<std::size_t>(yy) * W + xx;
          if (img.pixels[q] == 0 || b.label[q] >= 0) continue;
          b.label[q] = id;
          stack.push_back(static_cast<std::int32_t>(q));
        }
      }
    }
    b.ink.push_back(ink);
  }
  return b;
}

}  // namespace

GrayImage frame_digit(const GrayImage& input, int rows, int cols, Polarity polarity,
                      const std::string& name, DigitFrameReport* report) {
  RECUR_CHECK(input.width > 0 && input.height > 0 &&
                  input.pixels.size() == static_cast<std::size_t>(input.width) * input.height,
              name, "the picture is empty");
  RECUR_CHECK(rows >= 4 && cols >= 4, name,
              fmt::format("cannot frame a digit in {}x{} pixels", cols, rows));
  DigitFrameReport r;
  GrayImage img = input;
  if (std::max(img.width, img.height) > kWorkingSide) {
    const double s = static_cast<double>(kWorkingSide) / std::max(img.width, img.height);
    img = resize_area(img, std::max(1, static_cast<int>(std::lround(img.width * s))),
                      std::max(1, static_cast<int>(std::lround(img.height * s))));
  }

  // 1. White ink on black.
  r.inverted =
      polarity == Polarity::invert || (polarity == Polarity::automatic && border_is_light(img));
  if (r.inverted)
    for (std::uint8_t& p : img.pixels) p = static_cast<std::uint8_t>(255 - p);

  // 2. Background to 0, ink to 255, paper grain to 0. The ink's level is the median of the
  // pixels more than half-way up to the brightest neighbourhood: strokes come out saturated
  // in their middle and grey at their edges, as MNIST's are.
  r.background = median_level(img.pixels);
  const int brightest = ink_level(img);
  if (brightest - r.background < kMinimumContrast)
    throw Error(name, fmt::format("holds no ink: nothing stands out from the background by more "
                                  "than {} of 255 levels (a blank picture?)",
                                  std::max(brightest - r.background, 0)));
  std::vector<std::uint8_t> strokes;
  for (std::uint8_t p : img.pixels)
    if (2 * (p - r.background) > brightest - r.background) strokes.push_back(p);
  r.ink = std::max(median_level(strokes), r.background + kMinimumContrast);
  const double scale = 255.0 / (r.ink - r.background);
  for (std::uint8_t& p : img.pixels) {
    const double v = (p - r.background) * scale;
    p = v < kPaperFraction * 255 ? 0 : static_cast<std::uint8_t>(std::min(std::lround(v), 255L));
  }

  // 3. Blobs: specks erased, the rest kept.
  const Blobs blobs = find_blobs(img);
  const double largest =
      blobs.ink.empty() ? 0 : *std::max_element(blobs.ink.begin(), blobs.ink.end());
  std::vector<bool> keep(blobs.ink.size());
  for (std::size_t k = 0; k < blobs.ink.size(); ++k) {
    keep[k] = blobs.ink[k] >= kSpeckFraction * largest;
    (keep[k] ? r.blobs : r.specks) += 1;
  }
  int left = img.width, top = img.height, right = -1, bottom = -1;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * img.width + x;
      const std::int32_t id = blobs.label[i];
      if (id < 0) continue;
      if (!keep[static_cast<std::size_t>(id)]) {
        img.pixels[i] = 0;
        continue;
      }
      left = std::min(left, x);
      right = std::max(right, x);
      top = std::min(top, y);
      bottom = std::max(bottom, y);
    }
  }
  if (right < 0) throw Error(name, "holds no ink (only specks of noise)");

  // 4. The ink's box scaled to fit box x box, aspect ratio kept.
  const double to_input = static_cast<double>(input.width) / img.width;
  r.ink_left = static_cast<int>(left * to_input);
  r.ink_top = static_cast<int>(top * to_input);
  r.ink_width = static_cast<int>(std::ceil((right - left + 1) * to_input));
  r.ink_height = static_cast<int>(std::ceil((bottom - top + 1) * to_input));
  GrayImage crop;
  crop.width = right - left + 1;
  crop.height = bottom - top + 1;
  crop.pixels.resize(static_cast<std::size_t>(crop.width) * crop.height);
  for (int y = 0; y < crop.height; ++y)
    std::copy_n(img.pixels.begin() + static_cast<std::ptrdiff_t>((top + y) * img.width + left),
                crop.width, crop.pixels.begin() + static_cast<std::ptrdiff_t>(y * crop.width));
  const int box = std::max(1, static_cast<int>(std::lround(std::min(rows, cols) * 20.0 / 28.0)));
  const double fit = static_cast<double>(box) / std::max(crop.width, crop.height);
  const GrayImage digit =
      resize_area(crop, std::clamp(static_cast<int>(std::lround(crop.width * fit)), 1, box),
                  std::clamp(static_cast<int>(std::lround(crop.height * fit)), 1, box));

  // 5. Centre of mass to the field's centre.
  double mass = 0, mx = 0, my = 0;
  for (int y = 0; y < digit.height; ++y) {
    for (int x = 0; x < digit.width; ++x) {
      const double v = digit.at(x, y);
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  if (!(mass > 0)) throw Error(name, "holds no ink (it vanished when scaled down)");
  const int dx =
      std::clamp(static_cast<int>(std::lround(cols / 2.0 - mx / mass)), 0, cols - digit.width);
  const int dy =
      std::clamp(static_cast<int>(std::lround(rows / 2.0 - my / mass)), 0, rows - digit.height);
  GrayImage out;
  out.width = cols;
  out.height = rows;
  out.pixels.assign(static_cast<std::size_t>(rows) * cols, 0);
  for (int y = 0; y < digit.height; ++y)
    std::copy_n(digit.pixels.begin() + static_cast<std::ptrdiff_t>(y * digit.width), digit.width,
                out.pixels.begin() + static_cast<std::ptrdiff_t>((dy + y) * cols + dx));
  if (report) *report = r;
  return out;
}

}  // namespace recur
