// The confusion matrix heat map and the digit gallery.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "io/chart_style.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"
#include "recur/plot.hpp"

namespace recur {

namespace {

using chart::draw_centered;
using chart::kLabelColor;
using chart::kTickColor;
using chart::kTitleColor;
using chart::kWhite;
constexpr Rgb kCellFrameColor{150, 150, 150};  // lighter than a plot's frame: it rings the cells
constexpr Rgb kZeroTextColor{175, 180, 188};

// Sequential blue scale for t in [0, 1]: near-white to deep blue.
Rgb heat_color(double t) {
  struct Stop {
    double t;
    Rgb c;
  };
  static constexpr Stop kStops[] = {
      {0.0, {244, 247, 251}}, {0.3, {180, 206, 232}}, {0.65, {70, 130, 190}}, {1.0, {16, 50, 110}}};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  for (std::size_t i = 1; i < std::size(kStops); ++i) {
    if (t <= kStops[i].t) {
      const Stop& a = kStops[i - 1];
      const Stop& b = kStops[i];
      double f = (t - a.t) / (b.t - a.t);
      auto mix = [f](std::uint8_t x, std::uint8_t y) {
        return static_cast<std::uint8_t>(std::lround(x + (y - x) * f));
      };
      return {mix(a.c.r, b.c.r), mix(a.c.g, b.c.g), mix(a.c.b, b.c.b)};
    }
  }
  return kStops[std::size(kStops) - 1].c;
}

// Shading of a cell holding `share` of its row: square root, so small confusions show.
double heat_level(double share) {
  return std::sqrt(std::clamp(share, 0.0, 1.0));
}

void check_picture_size(const std::string& subject, long long w, long long h) {
  if (w > kMaxImageSide || h > kMaxImageSide) {
    throw Error(subject, "picture would be " + std::to_string(w) + "x" + std::to_string(h) +
                             " px, above the limit of " + std::to_string(kMaxImageSide) +
                             " per side");
  }
}

}  // namespace

RgbImage draw_confusion(const std::vector<std::int64_t>& counts, int k,
                        const std::vector<std::string>& class_names, const std::string& title,
                        const std::string& subject) {
  if (k < 1 || k > 1000) {
    throw Error(subject, "number of classes " + std::to_string(k) + " is outside 1..1000");
  }
  std::size_t kk = static_cast<std::size_t>(k) * k;
  if (counts.size() != kk) {
    throw Error(subject, "expected " + std::to_string(kk) + " counts for " + std::to_string(k) +
                             " classes, got " + std::to_string(counts.size()));
  }
  for (std::int64_t c : counts) {
    if (c < 0) throw Error(subject, "negative count " + std::to_string(c));
  }
  std::vector<std::string> names = class_names;
  if (names.empty()) {
    for (int i = 0; i < k; ++i) names.push_back(std::to_string(i));
  } else if (names.size() != static_cast<std::size_t>(k)) {
    throw Error(subject, "expected " + std::to_string(k) + " class names, got " +
                             std::to_string(names.size()));
  }

  // Sizes: the cell shrinks as k grows; text is drawn only where it fits.
  const int cell = std::clamp(600 / k, 6, 64);
  const int gap = cell >= 16 ? 1 : 0;
  const int pad = 20;
  std::vector<std::string> texts(kk);
  int widest_count = 0;
  for (std::size_t i = 0; i < kk; ++i) {
    texts[i] = std::to_string(counts[i]);
    widest_count = std::max(widest_count, text_width(texts[i]));
  }
  int count_scale = 0;
  if (cell >= 32 && 2 * widest_count <= cell - 8) {
    count_scale = 2;
  } else if (widest_count <= cell - 4 && cell >= kFontCapHeight + 4) {
    count_scale = 1;
  }
  const int name_scale = cell >= 28 ? 2 : 1;
  const int axis_scale = cell >= 28 ? 2 : 1;
  // Show every name_step-th name when the cells are too small for each to have room.
  const int name_step = std::max(1, (kFontLineHeight * name_scale + cell - 1) / cell);
  int names_w = 0;
  for (const std::string& n : names) names_w = std::max(names_w, text_width(n, name_scale));
  const bool vertical_columns = names_w > cell * name_step - 5;
  const int column_names_h = vertical_columns ? names_w : kFontCapHeight * name_scale;

  const std::string true_label = "true", predicted_label = "predicted";
  const std::string bar_caption = "% of true class";
  const int grid = k * cell;
  const int title_scale = 2;
  const int title_h = title.empty() ? 0 : kFontCapHeight * title_scale + 20;

  int x0 = pad + kFontCapHeight * axis_scale + 14 + names_w + 10;
  int y0 = pad + title_h;
  int bar_x = x0 + grid + 24;
  const int bar_w = 18;
  const int bar_scale = axis_scale;
  int bar_labels_w = text_width("100%", bar_scale);
  int width = bar_x + bar_w + 7 + bar_labels_w + 12 + kFontCapHeight * bar_scale + pad;
  int height = y0 + grid + 10 + column_names_h + 16 + kFontCapHeight * axis_scale + pad;
  int title_w = text_width(title, title_scale);
  int shift = 0;
  if (title_w + 2 * pad > width) {
    shift = (title_w + 2 * pad - width) / 2;
    width = title_w + 2 * pad;
  }
  check_picture_size(subject, width, height);
  x0 += shift;
  bar_x += shift;

  RgbImage img(width, height, kWhite);

  // Cells.
  for (int r = 0; r < k; ++r) {
    std::int64_t row_total = 0;
    for (int c = 0; c < k; ++c) row_total += counts[static_cast<std::size_t>(r) * k + c];
    for (int c = 0; c < k; ++c) {
      std::size_t i = static_cast<std::size_t>(r) * k + c;
      double share = row_total > 0 ? static_cast<double>(counts[i]) / row_total : 0.0;
      Rgb fill = heat_color(heat_level(share));
      int cx = x0 + c * cell, cy = y0 + r * cell;
      img.fill_rect(cx, cy, cell - gap, cell - gap, fill);
      if (count_scale == 0) continue;
      Rgb ink = counts[i] == 0 ? kZeroTextColor : (luma(fill) < 140 ? kWhite : Rgb{25, 35, 50});
      draw_centered(img, cx + (cell - gap) / 2,
                    cy + (cell - gap - kFontCapHeight * count_scale) / 2, texts[i], ink,
                    count_scale);
    }
  }

  // Class names: rows right-aligned left of the grid, columns under it.
  for (int i = 0; i < k; i += name_step) {
    const std::string& n = names[i];
    int center = i * cell + (cell - gap) / 2;
    draw_text(img, x0 - 10 - text_width(n, name_scale),
              y0 + center - kFontCapHeight * name_scale / 2, n, kLabelColor, name_scale);
    if (vertical_columns) {
      draw_text_vertical(img, x0 + center - kFontCapHeight * name_scale / 2, y0 + grid + 10, n,
                         kLabelColor, name_scale);  // the end of each name meets the grid
    } else {
      draw_centered(img, x0 + center, y0 + grid + 10, n, kLabelColor, name_scale);
    }
  }

  // Axis labels.
  int axis_h = kFontCapHeight * axis_scale;
  draw_centered(img, x0 + grid / 2, y0 + grid + 10 + column_names_h + 16, predicted_label,
                kTitleColor, axis_scale);
  draw_text_vertical(img, x0 - 10 - names_w - 14 - axis_h,
                     y0 + grid / 2 - text_width(true_label, axis_scale) / 2, true_label,
                     kTitleColor, axis_scale);
  if (!title.empty()) {
    int tx = std::clamp(x0 + grid / 2 - title_w / 2, pad, width - pad - title_w);
    draw_text_bold(img, tx, pad, title, kTitleColor, title_scale);
  }

  // Colour bar with the share-of-row scale.
  for (int y = 0; y < grid; ++y) {
    double level = grid > 1 ? 1.0 - static_cast<double>(y) / (grid - 1) : 1.0;
    img.fill_rect(bar_x, y0 + y, bar_w, 1, heat_color(level));
  }
  img.draw_rect(bar_x - 1, y0 - 1, bar_w + 2, grid + 2, kCellFrameColor);
  const double shares[] = {1.0, 0.5, 0.25, 0.05, 0.01, 0.0};
  const char* share_labels[] = {"100%", "50%", "25%", "5%", "1%", "0%"};
  int last_label_y = -1000;
  for (std::size_t i = 0; i < std::size(shares); ++i) {
    int y = y0 + static_cast<int>(std::lround((1.0 - heat_level(shares[i])) * (grid - 1)));
    if (y - last_label_y < (kFontLineHeight + 2) * bar_scale && i + 1 < std::size(shares)) {
      continue;
    }
    last_label_y = y;
    img.fill_rect(bar_x + bar_w + 1, y, 4, 1, kCellFrameColor);
    draw_text(img, bar_x + bar_w + 7, y - kFontCapHeight * bar_scale / 2, share_labels[i],
              kLabelColor, bar_scale);
  }
  int caption_len = text_width(bar_caption, bar_scale);
  if (caption_len <= grid) {
    draw_text_vertical(img, bar_x + bar_w + 7 + bar_labels_w + 12, y0 + grid / 2 - caption_len / 2,
                       bar_caption, kLabelColor, bar_scale);
  }
  return img;
}

void write_confusion_png(const std::string& path, const std::vector<std::int64_t>& counts, int k,
                         const std::vector<std::string>& class_names, const std::string& title) {
  write_png(path, draw_confusion(counts, k, class_names, title, path));
}

RgbImage draw_digit_grid(const std::string& title, const std::vector<DigitTile>& tiles,
                         int grid_cols, const std::string& subject) {
  if (grid_cols < 1) {
    throw Error(subject, "grid columns must be at least 1, got " + std::to_string(grid_cols));
  }
  int max_rows = 1, max_cols = 1;
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    const DigitTile& t = tiles[i];
    if (t.rows < 1 || t.cols < 1 || t.rows > 4096 || t.cols > 4096 ||
        t.pixels.size() != static_cast<std::size_t>(t.rows) * t.cols) {
      throw Error(subject, "tile " + std::to_string(i) + " has " + std::to_string(t.pixels.size()) +
                               " pixels for " + std::to_string(t.rows) + "x" +
                               std::to_string(t.cols));
    }
    max_rows = std::max(max_rows, t.rows);
    max_cols = std::max(max_cols, t.cols);
  }
  const int scale = std::clamp(84 / std::max(max_rows, max_cols), 1, 8);
  const int tile_w = max_cols * scale, tile_h = max_rows * scale;
  int caption_w1 = 0;
  for (const DigitTile& t : tiles) caption_w1 = std::max(caption_w1, text_width(t.caption));
  const int caption_scale = (tile_w >= 60 && 2 * caption_w1 <= tile_w + 10) ? 2 : 1;
  const int caption_w = caption_w1 * caption_scale;
  const int caption_h = caption_w1 > 0 ? kFontCapHeight * caption_scale + 8 : 0;

  const int pad = 20, gap_x = 18, gap_y = 18;
  const int n = static_cast<int>(tiles.size());
  const int cols = std::max(1, std::min(grid_cols, n));
  const int rows = n == 0 ? 0 : (n + cols - 1) / cols;
  const int cell_w = std::max(tile_w, caption_w), cell_h = tile_h + caption_h;
  const int title_scale = 2;
  const int title_w = text_width(title, title_scale);
  const int title_h = title.empty() ? 0 : kFontCapHeight * title_scale + 22;

  long long grid_w =
      static_cast<long long>(cols) * cell_w + static_cast<long long>(cols - 1) * gap_x;
  long long grid_h = rows == 0 ? 40 : static_cast<long long>(rows) * cell_h + (rows - 1LL) * gap_y;
  long long width = std::max<long long>({grid_w + 2 * pad, title_w + 2LL * pad, 160});
  long long height = pad + title_h + grid_h + pad;
  check_picture_size(subject, width, height);

  RgbImage img(static_cast<int>(width), static_cast<int>(height), kWhite);
  if (!title.empty())
    draw_centered(img, static_cast<int>(width) / 2, pad, title, kTitleColor, title_scale, true);
  const int gx = static_cast<int>((width - grid_w) / 2), gy = pad + title_h;
  if (n == 0) {
    draw_centered(img, static_cast<int>(width) / 2, gy + 12, "no images", kTickColor, 1);
    return img;
  }
  for (int i = 0; i < n; ++i) {
    const DigitTile& t = tiles[i];
    int cx = gx + (i % cols) * (cell_w + gap_x);
    int cy = gy + (i / cols) * (cell_h + gap_y);
    // The tile, centred in its cell's picture area, on black like the digits themselves.
    int w = t.cols * scale, h = t.rows * scale;
    int tx = cx + (cell_w - tile_w) / 2 + (tile_w - w) / 2;
    int ty = cy + (tile_h - h) / 2;
    img.fill_rect(cx + (cell_w - tile_w) / 2, cy, tile_w, tile_h, Rgb{0, 0, 0});
    for (int y = 0; y < t.rows; ++y) {
      for (int x = 0; x < t.cols; ++x) {
        std::uint8_t v = t.pixels[static_cast<std::size_t>(y) * t.cols + x];
        img.fill_rect(tx + x * scale, ty + y * scale, scale, scale, Rgb{v, v, v});
      }
    }
    img.draw_rect(cx + (cell_w - tile_w) / 2 - 1, cy - 1, tile_w + 2, tile_h + 2, kCellFrameColor);
    if (!t.caption.empty()) {
      draw_centered(img, cx + cell_w / 2, cy + tile_h + 7, t.caption, t.caption_color,
                    caption_scale);
    }
  }
  return img;
}

void write_digit_grid(const std::string& path, const std::string& title,
                      const std::vector<DigitTile>& tiles, int grid_cols) {
  write_png(path, draw_digit_grid(title, tiles, grid_cols, path));
}

}  // namespace recur
