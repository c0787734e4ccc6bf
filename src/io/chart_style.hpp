// The look every chart shares, raster (plot.cpp, plot_figures.cpp) and SVG (report.cpp): text
// and frame colours, and the series palette, so a model has one colour in every picture.
#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include <fmt/format.h>

#include "recur/image.hpp"

namespace recur::chart {

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kTitleColor{30, 30, 30};
inline constexpr Rgb kLabelColor{50, 50, 50};
inline constexpr Rgb kTickColor{90, 90, 90};
inline constexpr Rgb kFrameColor{120, 120, 120};
inline constexpr Rgb kGridColor{232, 232, 232};
inline constexpr Rgb kLegendBorder{205, 205, 205};

// Training curves: the training loss/accuracy and the validation points.
inline constexpr Rgb kTrainColor{38, 110, 200};
inline constexpr Rgb kValColor{232, 110, 20};

// Series colours in order (one per model in the report's charts).
inline constexpr Rgb kPalette[] = {{31, 119, 180},  {214, 39, 40}, {44, 160, 44},   {255, 127, 14},
                                   {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                   {188, 189, 34},  {23, 190, 207}};
inline Rgb series_color(std::size_t i) {
  return kPalette[i % std::size(kPalette)];
}

// Text centred on x = cx (a title, an axis label), bold or not.
inline void draw_centered(RgbImage& img, int cx, int y, const std::string& text, Rgb color,
                          int scale, bool bold = false) {
  const int x = cx - text_width(text, scale) / 2;
  if (bold)
    draw_text_bold(img, x, y, text, color, scale);
  else
    draw_text(img, x, y, text, color, scale);
}

// "#rrggbb", as SVG and CSS write a colour.
inline std::string hex(Rgb c) {
  return fmt::format("#{:02x}{:02x}{:02x}", c.r, c.g, c.b);
}

}  // namespace recur::chart
