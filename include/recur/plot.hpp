// Pictures of a run: line plots (training curves), the confusion matrix as a heat map, and a
// gallery of digits with their captions. All drawn with recur's own raster code and font, and
// written as PNG through write_png (atomically).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recur/image.hpp"

namespace recur {

// One line of a plot. x and y pair up to the shorter length; points where either is NaN or
// infinite are skipped and break the line there. A point with no finite neighbour is drawn
// as a dot. An empty label keeps the series out of the legend.
struct CurveSeries {
  std::string label;
  std::vector<double> x, y;
  Rgb color;
  double line_width = 2.5;  // px
  bool markers = false;     // a dot at every point (for sparse series such as validation)
};

// One panel: a frame with ticks at round numbers and their labels, a light grid, the title
// above, the axis labels, the lines (anti-aliased) and a legend in the corner the lines
// cross least. No finite point at all gives an empty frame marked "no data"; a constant y gets
// a small range around the value. width and height must be in 160..kMaxImageSide x 120..
// (recur::Error otherwise).
RgbImage plot_lines(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                    const std::vector<CurveSeries>& series, int width = 640, int height = 400);

// Training curves against the step: loss on the left, accuracy on the right, train and
// validation in each. Accuracies are given in percent (0..100), as they are drawn. Each
// step/value pair of vectors is read to the shorter length. The validation legend entries
// carry the best validation accuracy and the lowest validation loss.
struct TrainingCurves {
  std::vector<double> train_step, train_loss, train_acc, val_step, val_loss, val_acc;
};
RgbImage draw_training_curves(const TrainingCurves& c, const std::string& title);
void write_training_curves(const std::string& path, const TrainingCurves& c,
                           const std::string& title);

// Confusion matrix: counts is k x k row-major, row = true class, column = predicted class.
// Cells are shaded by their share of the row (square-root scale, so that a 1% confusion is
// visible next to a 99% diagonal), with the count written in each cell (white on dark cells;
// zeros in light gray). class_names gives the k axis names; empty means "0".."k-1".
// Throws recur::Error naming `path` for k outside 1..1000, counts.size() != k*k, negative
// counts, or class_names of the wrong length.
RgbImage draw_confusion(const std::vector<std::int64_t>& counts, int k,
                        const std::vector<std::string>& class_names, const std::string& title,
                        const std::string& subject = "confusion");
void write_confusion_png(const std::string& path, const std::vector<std::int64_t>& counts, int k,
                         const std::vector<std::string>& class_names, const std::string& title);

// A gallery of small gray images (white digit on black, as in MNIST), each scaled up by an
// integer factor (x3 for 28x28), with its caption under it in caption_color, laid out in
// grid_cols columns under a title. Tiles may differ in size; cells fit the largest.
// Throws recur::Error naming `path` for grid_cols < 1, a tile whose pixels do not match
// rows x cols, or a picture too large to draw.
struct DigitTile {
  std::vector<std::uint8_t> pixels;
  int rows = 28, cols = 28;
  std::string caption;
  Rgb caption_color{0, 0, 0};
};
RgbImage draw_digit_grid(const std::string& title, const std::vector<DigitTile>& tiles,
                         int grid_cols, const std::string& subject = "digit grid");
void write_digit_grid(const std::string& path, const std::string& title,
                      const std::vector<DigitTile>& tiles, int grid_cols);

// Axis ticks at round numbers (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi], about
// `target` of them. Exposed for tests and for other pictures.
struct AxisTicks {
  double step = 1.0;
  std::vector<double> values;
};
AxisTicks nice_ticks(double lo, double hi, int target);
// A tick value printed with as many decimals as the step needs ("0.25", "2000", "1e+06").
std::string format_tick(double value, double step);

}  // namespace recur
