// Pictures in and out: loading digit images (PNG, PGM/PPM) as 8-bit grayscale, resizing them,
// writing PNGs, and the small raster toolkit the plots draw with (rectangles, thick lines, a
// built-in bitmap font).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "recur/limits.hpp"

namespace recur {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

// 8-bit grayscale, row-major, pixels.size() == width * height.
struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;

  std::uint8_t at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * width + x]; }
};

// 8-bit RGB, row-major, 3 bytes per pixel (r, g, b). Drawing calls clip to the image: a shape
// partly or wholly outside it is drawn where it overlaps, never out of bounds.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;

  RgbImage() = default;
  // Throws recur::Error when a side is negative or above kMaxImageSide.
  RgbImage(int w, int h, Rgb background);

  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  void set(int x, int y, Rgb c);                  // ignored outside the image
  Rgb get(int x, int y) const;                    // black outside the image
  void blend(int x, int y, Rgb c, double alpha);  // alpha in [0, 1]: 0 keeps, 1 replaces
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void draw_rect(int x, int y, int w, int h, Rgb c, int thickness = 1);  // outline, inside the box
  void hline(int x0, int x1, int y, Rgb c);                              // x0..x1 inclusive
  void vline(int x, int y0, int y1, Rgb c);                              // y0..y1 inclusive
};

// ITU-R BT.601 luma of an 8-bit colour: (299 r + 587 g + 114 b) / 1000, rounded.
std::uint8_t luma(Rgb c);
GrayImage to_gray(const RgbImage& img);

// Loads a picture as 8-bit grayscale. The format is detected from the content, not the name:
//  - PNG of any colour type and bit depth (palette, gray, gray+alpha, RGB, RGBA, 1..16 bits,
//    interlaced or not). 16-bit samples are rounded to 8 bits; colour becomes BT.601 luma; alpha
//    (an alpha channel or a tRNS chunk) is composited on black, so a transparent background
//    reads as the black background of MNIST. Gamma chunks are ignored: samples are taken as is.
//  - Netpbm PGM/PPM: P2, P5 (gray), P3, P6 (colour), maxval 1..65535, '#' comments. Samples
//    are rescaled from 0..maxval to 0..255. Only the first image of a multi-image file is read.
// Throws recur::Error naming `path` when the file is missing, a folder, empty, of an unknown
// format, truncated, corrupt, or larger than kMaxImageSide on a side.
GrayImage load_gray_image(const std::string& path);
// The same from bytes in memory; `name` is the subject of the errors.
GrayImage decode_gray_image(std::string_view bytes, const std::string& name);

// Resamples to width x height. Per axis, shrinking averages the source area each output pixel
// covers (an exact box filter, so 2x2 blocks halve without loss); enlarging is bilinear.
// Throws recur::Error when the input is empty or inconsistent, or a target side is not in
// 1..kMaxImageSide.
GrayImage resize_area(const GrayImage& img, int width, int height);

// PNG encoding (8-bit, RGB or gray, not interlaced) to memory. Throws recur::Error when the
// pixel buffer does not match width x height or the image is empty.
std::vector<std::uint8_t> encode_png(const RgbImage& img);
std::vector<std::uint8_t> encode_png(const GrayImage& img);
// Encodes, then writes atomically (recur::write_file_atomic). Errors name `path`.
void write_png(const std::string& path, const RgbImage& img);
void write_png(const std::string& path, const GrayImage& img);

// Text in recur's built-in bitmap font: printable ASCII 32..126, each glyph 5 px wide in a
// 6 px advance, 7 px cap height plus 2 px of descender (9 px in all), drawn at an integer
// scale. (x, y) is the top-left corner of the first glyph cell; '\n' starts a new line
// (kFontLineHeight * scale lower). Other bytes are drawn as '?' (one per UTF-8 character).
inline constexpr int kFontAdvance = 6;      // horizontal advance per character
inline constexpr int kFontCapHeight = 7;    // height of capitals and digits
inline constexpr int kFontHeight = 9;       // cap height plus descender
inline constexpr int kFontLineHeight = 11;  // baseline-to-baseline distance
void draw_text(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale = 1);
// Heavier strokes for titles: each stroke is widened by max(1, scale / 2) px to the right, so
// the ink may reach that far past text_width().
void draw_text_bold(RgbImage& img, int x, int y, const std::string& text, Rgb color, int scale = 2);
// draw_text turned 90 degrees counter-clockwise (reads bottom to top, as a y-axis label). (x, y)
// is the top-left corner of the rotated box, text_height(scale) wide and text_width() tall.
void draw_text_vertical(RgbImage& img, int x, int y, const std::string& text, Rgb color,
                        int scale = 1);
// Width of the inked box of the widest line: (characters * kFontAdvance - 1) * scale, 0 when
// empty. The 1 px gap after the last glyph is not counted.
int text_width(const std::string& text, int scale = 1);
// Height of the box of a text: kFontHeight * scale for one line, plus kFontLineHeight * scale
// per extra line.
int text_height(const std::string& text, int scale = 1);

// Thick line from (x0, y0) to (x1, y1) in pixel coordinates (pixel (i, j) covers
// [i, i+1) x [j, j+1)), `width` px wide with round caps, anti-aliased by coverage.
void draw_line(RgbImage& img, double x0, double y0, double x1, double y1, Rgb color,
               double width = 2.0);

}  // namespace recur
