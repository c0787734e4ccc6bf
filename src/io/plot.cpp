// Line plots: one panel (frame, ticks, grid, curves, legend) and the two-panel training curves.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "io/chart_style.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"
#include "recur/plot.hpp"

namespace recur {

namespace {

using namespace chart;

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

struct Range {
  double lo = 0.0, hi = 1.0;
};

// Bounding range of the finite points of all series; false when there are none.
bool data_range(const std::vector<CurveSeries>& series, Range& xr, Range& yr) {
  bool any = false;
  for (const CurveSeries& s : series) {
    std::size_t n = std::min(s.x.size(), s.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      double x = s.x[i], y = s.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if (!any) {
        xr = {x, x};
        yr = {y, y};
        any = true;
      } else {
        xr = {std::min(xr.lo, x), std::max(xr.hi, x)};
        yr = {std::min(yr.lo, y), std::max(yr.hi, y)};
      }
    }
  }
  return any;
}

// Widens a range by `fraction` of its span on each side; a (near) empty span gets room
// around its value. Keeps the result finite.
Range padded(Range r, double fraction) {
  double big = std::numeric_limits<double>::max() / 4;
  r.lo = std::clamp(r.lo, -big, big);
  r.hi = std::clamp(r.hi, -big, big);
  double span = r.hi - r.lo;
  double scale = std::max({std::fabs(r.lo), std::fabs(r.hi), 1e-300});
  if (!(span > scale * 1e-9)) {
    double pad = scale > 1e-300 && std::fabs(r.lo) > 0 ? std::fabs(r.lo) * 0.05 : 1.0;
    return {r.lo - pad, r.hi + pad};
  }
  return {r.lo - span * fraction, r.hi + span * fraction};
}

// Per-pixel line coverage for one series inside the plot area; the maximum over segments is
// kept, so joints and overlapping segments of one series do not darken.
class CoverageCanvas {
 public:
  explicit CoverageCanvas(Rect area)
      : area_(area), cov_(static_cast<std::size_t>(std::max(area.w, 0)) * std::max(area.h, 0)) {}

  void clear() { std::fill(cov_.begin(), cov_.end(), 0.0f); }

  // Segment in image coordinates, `half` = half the line width.
  void segment(double x0, double y0, double x1, double y1, double half) {
    double pad = half + 1.0;
    int bx0 = static_cast<int>(std::floor(std::min(x0, x1) - pad));
    int by0 = static_cast<int>(std::floor(std::min(y0, y1) - pad));
    int bx1 = static_cast<int>(std::ceil(std::max(x0, x1) + pad));
    int by1 = static_cast<int>(std::ceil(std::max(y0, y1) + pad));
    bx0 = std::max(bx0, area_.x);
    by0 = std::max(by0, area_.y);
    bx1 = std::min(bx1, area_.x + area_.w);
    by1 = std::min(by1, area_.y + area_.h);
    double dx = x1 - x0, dy = y1 - y0;
    double len2 = dx * dx + dy * dy;
    for (int py = by0; py < by1; ++py) {
      for (int px = bx0; px < bx1; ++px) {
        double cx = px + 0.5 - x0, cy = py + 0.5 - y0;
        double t = len2 > 0.0 ? std::clamp((cx * dx + cy * dy) / len2, 0.0, 1.0) : 0.0;
        double ex = cx - t * dx, ey = cy - t * dy;
        double c = std::clamp(half + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
        float& slot = at(px, py);
        slot = std::max(slot, static_cast<float>(c));
      }
    }
  }

  void dot(double x, double y, double radius) { segment(x, y, x, y, radius); }

  // Paints the coverage onto the image in `color` and marks touched pixels in `occupied`.
  void composite(RgbImage& img, Rgb color, std::vector<unsigned char>& occupied) const {
    for (int py = 0; py < area_.h; ++py) {
      for (int px = 0; px < area_.w; ++px) {
        std::size_t i = static_cast<std::size_t>(py) * area_.w + px;
        if (cov_[i] <= 0.0f) continue;
        img.blend(area_.x + px, area_.y + py, color, cov_[i]);
        occupied[i] = 1;
      }
    }
  }

 private:
  float& at(int x, int y) {
    return cov_[static_cast<std::size_t>(y - area_.y) * area_.w + (x - area_.x)];
  }

  Rect area_;
  std::vector<float> cov_;
};

// Whether a series has two consecutive finite points, i.e. draws a line and not only dots.
bool has_segment(const CurveSeries& s) {
  std::size_t n = std::min(s.x.size(), s.y.size());
  for (std::size_t i = 1; i < n; ++i) {
    if (std::isfinite(s.x[i - 1]) && std::isfinite(s.y[i - 1]) && std::isfinite(s.x[i]) &&
        std::isfinite(s.y[i])) {
      return true;
    }
  }
  return false;
}

struct Panel {
  std::string title, xlabel, ylabel;
  const std::vector<CurveSeries>* series = nullptr;
  int title_scale = 2;
  int ui = 1;  // scale of tick labels, axis labels and the legend
  bool title_bold = true;
  int axis_scale = 1;  // of the axis labels
};

// Legend box size for the labelled series.
struct LegendLayout {
  std::vector<const CurveSeries*> entries;
  int w = 0, h = 0, pad = 0, row = 0, sample = 0;
};

LegendLayout legend_layout(const std::vector<CurveSeries>& series, int ui) {
  LegendLayout l;
  for (const CurveSeries& s : series) {
    if (!s.label.empty()) l.entries.push_back(&s);
  }
  if (l.entries.empty()) return l;
  l.pad = 8 * ui;
  l.row = 14 * ui;
  l.sample = 22 * ui;
  int label_w = 0;
  for (const CurveSeries* s : l.entries) label_w = std::max(label_w, text_width(s->label, ui));
  l.w = l.pad + l.sample + 7 * ui + label_w + l.pad;
  l.h = l.pad * 2 + static_cast<int>(l.entries.size()) * l.row - (l.row - kFontCapHeight * ui);
  return l;
}

// The series' lines and markers inside `area`; returns which of its pixels they touched.
template <typename MapX, typename MapY>
std::vector<unsigned char> draw_curves(RgbImage& img, Rect area,
                                       const std::vector<CurveSeries>& series, MapX map_x,
                                       MapY map_y, int ui) {
  CoverageCanvas canvas(area);
  std::vector<unsigned char> occupied(static_cast<std::size_t>(area.w) * area.h, 0);
  for (const CurveSeries& s : series) {
    canvas.clear();
    double half = std::clamp(s.line_width, 0.5, 20.0) * ui / 2.0;
    std::size_t n = std::min(s.x.size(), s.y.size());
    auto finite = [&](std::size_t i) {
      return i < n && std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (!finite(i)) continue;
      double px = map_x(s.x[i]), py = map_y(s.y[i]);
      bool prev = i > 0 && finite(i - 1);
      if (finite(i + 1)) {
        canvas.segment(px, py, map_x(s.x[i + 1]), map_y(s.y[i + 1]), half);
      } else if (!prev) {
        canvas.dot(px, py, half + 1.5 * ui);  // isolated point
      }
      if (s.markers) canvas.dot(px, py, half + 1.2 * ui);
    }
    canvas.composite(img, s.color, occupied);
  }
  return occupied;
}

// The legend, in the corner of `area` the curves cross least (`occupied`), when it fits.
void draw_legend(RgbImage& img, Rect area, const std::vector<CurveSeries>& series, int ui,
                 const std::vector<unsigned char>& occupied) {
  const int label_h = kFontCapHeight * ui;
  LegendLayout lg = legend_layout(series, ui);
  int inset = 10 * ui;
  if (lg.entries.empty() || lg.w > area.w - 2 * inset || lg.h > area.h - 2 * inset) return;
  int lx[2] = {area.x + area.w - inset - lg.w, area.x + inset};
  int ly[2] = {area.y + inset, area.y + area.h - inset - lg.h};
  const int order[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};  // top-right first
  long best = -1;
  int bx = lx[0], by = ly[0];
  for (const auto& o : order) {
    int x0 = lx[o[0]], y0 = ly[o[1]];
    long hits = 0;
    for (int y = y0; y < y0 + lg.h; ++y) {
      for (int x = x0; x < x0 + lg.w; ++x) {
        hits += occupied[static_cast<std::size_t>(y - area.y) * area.w + (x - area.x)];
      }
    }
    if (best < 0 || hits < best) {
      best = hits;
      bx = x0;
      by = y0;
    }
  }
  img.fill_rect(bx, by, lg.w, lg.h, kWhite);
  img.draw_rect(bx, by, lg.w, lg.h, kLegendBorder);
  for (std::size_t i = 0; i < lg.entries.size(); ++i) {
    const CurveSeries& s = *lg.entries[i];
    int ry = by + lg.pad + static_cast<int>(i) * lg.row;
    double mid = ry + label_h / 2.0;
    double half = std::clamp(s.line_width, 0.5, 20.0) * ui / 2.0;
    double centre = bx + lg.pad + lg.sample / 2.0;
    if (has_segment(s)) {
      draw_line(img, bx + lg.pad, mid, bx + lg.pad + lg.sample, mid, s.color, 2.0 * half);
      if (s.markers) draw_line(img, centre, mid, centre, mid, s.color, 2.0 * half + 2.4 * ui);
    } else {
      draw_line(img, centre, mid, centre, mid, s.color, 2.0 * half + 3.0 * ui);
    }
    draw_text(img, bx + lg.pad + lg.sample + 7 * ui, ry, s.label, kLabelColor, ui);
  }
}

void draw_panel(RgbImage& img, Rect box, const Panel& p) {
  const std::vector<CurveSeries>& series = *p.series;
  const int ui = p.ui;
  const int pad = 12 * ui;
  const int tick_len = 5 * ui;
  const int label_h = kFontCapHeight * ui;

  // Vertical layout: title, plot area, tick labels, x label.
  int title_scale = p.title_scale;
  while (title_scale > 1 && text_width(p.title, title_scale) > box.w - 2 * pad) --title_scale;
  int top = box.y + pad;
  if (!p.title.empty()) top += kFontCapHeight * title_scale + 14 * ui;
  top += label_h / 2 + 2;  // room for the top y tick label
  int bottom = box.y + box.h - pad;
  const int axis_scale = std::max(1, p.axis_scale);
  if (!p.xlabel.empty()) bottom -= kFontCapHeight * axis_scale + 10 * ui;
  bottom -= tick_len + 6 * ui + label_h;
  int area_h = bottom - top;

  Range xr, yr;
  bool any = data_range(series, xr, yr);
  if (!any) {
    xr = {0.0, 1.0};
    yr = {0.0, 1.0};
  } else {
    xr = padded(xr, 0.0);
    yr = padded(yr, 0.05);
  }
  AxisTicks yt = nice_ticks(yr.lo, yr.hi, std::max(2, area_h / (45 * ui)));
  std::vector<std::string> ylabels;
  int ylabel_w = 0;
  for (double v : yt.values) {
    ylabels.push_back(format_tick(v, yt.step));
    ylabel_w = std::max(ylabel_w, text_width(ylabels.back(), ui));
  }

  // Horizontal layout: y label, tick labels, plot area.
  int left = box.x + pad;
  if (!p.ylabel.empty()) left += kFontCapHeight * axis_scale + 12 * ui;
  left += ylabel_w + 6 * ui + tick_len;
  int right = box.x + box.w - pad - 10 * ui;
  Rect area{left, top, right - left, area_h};
  if (area.w < 10 || area.h < 10) return;

  AxisTicks xt = nice_ticks(xr.lo, xr.hi, std::max(2, area.w / (90 * ui)));
  auto map_x = [&](double x) { return area.x + (x - xr.lo) / (xr.hi - xr.lo) * area.w; };
  auto map_y = [&](double y) { return area.y + area.h - (y - yr.lo) / (yr.hi - yr.lo) * area.h; };
  auto pixel_x = [&](double x) {
    return std::clamp(static_cast<int>(std::floor(map_x(x))), area.x, area.x + area.w - 1);
  };
  auto pixel_y = [&](double y) {
    return std::clamp(static_cast<int>(std::floor(map_y(y))), area.y, area.y + area.h - 1);
  };

  // Grid.
  for (double v : xt.values) img.vline(pixel_x(v), area.y, area.y + area.h - 1, kGridColor);
  for (double v : yt.values) img.hline(area.x, area.x + area.w - 1, pixel_y(v), kGridColor);

  // Curves.
  const std::vector<unsigned char> occupied = draw_curves(img, area, series, map_x, map_y, ui);

  // Frame, ticks, tick labels.
  img.draw_rect(area.x - 1, area.y - 1, area.w + 2, area.h + 2, kFrameColor);
  for (std::size_t i = 0; i < yt.values.size(); ++i) {
    int y = pixel_y(yt.values[i]);
    img.fill_rect(area.x - 1 - tick_len, y, tick_len, 1, kFrameColor);
    const std::string& s = ylabels[i];
    draw_text(img, area.x - 1 - tick_len - 5 * ui - text_width(s, ui), y - label_h / 2, s,
              kTickColor, ui);
  }
  int xlabel_y = area.y + area.h + 1 + tick_len + 5 * ui;
  for (double v : xt.values) {
    int x = pixel_x(v);
    img.fill_rect(x, area.y + area.h + 1, 1, tick_len, kFrameColor);
    std::string s = format_tick(v, xt.step);
    int w = text_width(s, ui);
    int tx = std::clamp(x - w / 2, box.x, box.x + box.w - w);
    draw_text(img, tx, xlabel_y, s, kTickColor, ui);
  }

  // Titles.
  int cx = area.x + area.w / 2;
  if (!p.title.empty()) {
    draw_centered(img, cx, box.y + pad, p.title, p.title_bold ? kTitleColor : kLabelColor,
                  title_scale, p.title_bold);
  }
  if (!p.xlabel.empty()) {
    draw_centered(img, cx, xlabel_y + label_h + 10 * ui, p.xlabel, kLabelColor, axis_scale);
  }
  if (!p.ylabel.empty()) {
    int h = text_width(p.ylabel, axis_scale);
    draw_text_vertical(img, box.x + pad, area.y + area.h / 2 - h / 2, p.ylabel, kLabelColor,
                       axis_scale);
  }
  if (!any) {
    const std::string none = "no data";
    int w = text_width(none, 2 * ui), h = kFontCapHeight * 2 * ui;
    int ty = area.y + area.h / 2 - h / 2;
    img.fill_rect(cx - w / 2 - 8 * ui, ty - 6 * ui, w + 16 * ui, h + 12 * ui, kWhite);
    draw_centered(img, cx, ty, none, kTickColor, 2 * ui);
  }

  draw_legend(img, area, series, ui, occupied);
}

int ui_scale(int width, int height) {
  return (width >= 1100 && height >= 700) ? 2 : 1;
}

std::string format_value(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

AxisTicks nice_ticks(double lo, double hi, int target) {
  AxisTicks t;
  if (lo > hi) std::swap(lo, hi);
  double span = hi - lo;
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(span) || !(span > 0.0)) {
    if (std::isfinite(lo)) t.values.push_back(lo);
    return t;
  }
  target = std::clamp(target, 1, 100);
  double raw = span / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  }
  t.step = step;
  double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 1000; ++i) {
    double v = (first + i) * step;
    if (v > hi + step * 1e-9) break;
    if (std::fabs(v) < step * 1e-9) v = 0.0;
    t.values.push_back(v);
  }
  return t;
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return value > 0 ? "inf" : (value < 0 ? "-inf" : "nan");
  if (std::isfinite(step) && step > 0.0 && std::fabs(value) < step * 1e-6) value = 0.0;
  if (!(std::isfinite(step) && step > 0.0) || std::fabs(value) >= 1e7 || step < 1e-5) {
    return format_value("%.3g", value);
  }
  int decimals = 0;
  for (double s = step; decimals < 6; ++decimals, s *= 10.0) {
    if (std::fabs(s - std::round(s)) <= 1e-6 * std::max(1.0, s)) break;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

RgbImage plot_lines(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                    const std::vector<CurveSeries>& series, int width, int height) {
  if (width < 160 || height < 120 || width > kMaxImageSide || height > kMaxImageSide) {
    throw Error("plot", "size " + std::to_string(width) + "x" + std::to_string(height) +
                            " is outside 160x120.." + std::to_string(kMaxImageSide));
  }
  RgbImage img(width, height, kWhite);
  Panel p{title, xlabel, ylabel, &series, 2, ui_scale(width, height)};
  p.title_scale = 2 * p.ui;
  p.axis_scale = p.ui;
  draw_panel(img, {0, 0, width, height}, p);
  return img;
}

RgbImage draw_training_curves(const TrainingCurves& c, const std::string& title) {
  const int width = 1120, height = 450;
  RgbImage img(width, height, kWhite);
  int band = 0;
  if (!title.empty()) {
    int scale = text_width(title, 2) <= width - 24 ? 2 : 1;
    draw_text_bold(img, (width - text_width(title, scale)) / 2, 14, title, kTitleColor, scale);
    band = 14 + kFontCapHeight * scale + 4;
  }

  // Step/value pairs up to the shorter of the two vectors.
  auto pairs = [](const std::vector<double>& x, const std::vector<double>& y) {
    auto n = static_cast<std::ptrdiff_t>(std::min(x.size(), y.size()));
    return std::pair{std::vector<double>(x.begin(), x.begin() + n),
                     std::vector<double>(y.begin(), y.begin() + n)};
  };
  auto series = [](std::string label, std::pair<std::vector<double>, std::vector<double>> xy,
                   Rgb color, double line_width, bool markers) {
    CurveSeries s;
    s.label = std::move(label);
    s.x = std::move(xy.first);
    s.y = std::move(xy.second);
    s.color = color;
    s.line_width = line_width;
    s.markers = markers;
    return s;
  };
  auto extreme = [](const std::vector<double>& v, bool want_max, double& out) {
    bool found = false;
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      if (!found || (want_max ? x > out : x < out)) out = x;
      found = true;
    }
    return found;
  };

  auto tl = pairs(c.train_step, c.train_loss), vl = pairs(c.val_step, c.val_loss);
  auto ta = pairs(c.train_step, c.train_acc), va = pairs(c.val_step, c.val_acc);
  // A dense train series draws thinner so that its noise does not hide the validation line.
  double train_w = tl.first.size() > 200 ? 1.6 : 2.2;
  bool val_markers = vl.first.size() <= 60;
  std::string val_loss_label = "validation", val_acc_label = "validation";
  double best = 0.0;
  if (extreme(vl.second, false, best))
    val_loss_label += " (lowest " + format_value("%.4g", best) + ")";
  if (extreme(va.second, true, best))
    val_acc_label += " (best " + format_value("%.2f", best) + "%)";

  std::vector<CurveSeries> loss{series("train", std::move(tl), kTrainColor, train_w, false),
                                series(val_loss_label, std::move(vl), kValColor, 2.5, val_markers)};
  std::vector<CurveSeries> acc{series("train", std::move(ta), kTrainColor, train_w, false),
                               series(val_acc_label, std::move(va), kValColor, 2.5, val_markers)};
  Panel left{"loss", "step", "loss", &loss, 2, 1, title.empty()};
  Panel right{"accuracy", "step", "accuracy (%)", &acc, 2, 1, title.empty()};
  int half = width / 2;
  draw_panel(img, {0, band, half, height - band}, left);
  draw_panel(img, {half, band, width - half, height - band}, right);
  return img;
}

void write_training_curves(const std::string& path, const TrainingCurves& c,
                           const std::string& title) {
  write_png(path, draw_training_curves(c, title));
}

}  // namespace recur
