// report.html / report.md of `recur report` (see recur/report.hpp; its data and JSON form are in
// report_data.cpp). The page is one file: CSS in a <style> element, charts as inline SVG drawn
// here, misclassified digits as PNG data: URLs (src/io/image.cpp's encoder), and a
// Content-Security-Policy that forbids scripts and any fetch, so the page reads the same from a
// disk with no network.
#include "recur/report.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/chart_style.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/image.hpp"
#include "recur/plot.hpp"

namespace recur {

namespace {

// ---- numbers as text ----

std::string thousands(std::int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}
std::string percent(double fraction) {
  return fmt::format("{:.2f}%", 100.0 * fraction);
}
std::string bytes_text(double b) {
  if (b < 1e3) return fmt::format("{:.0f} B", b);
  if (b < 1e6) return fmt::format("{:.1f} kB", b / 1e3);
  if (b < 1e9) return fmt::format("{:.1f} MB", b / 1e6);
  return fmt::format("{:.2f} GB", b / 1e9);
}
std::string seconds_text(double s) {
  return s < 10 ? fmt::format("{:.2f} s", s) : fmt::format("{:.1f} s", s);
}
std::string rate_text(double r) {
  return thousands(std::llround(r)) + " samples/s";
}
std::string micros_text(double us) {
  return us < 100 ? fmt::format("{:.1f} us", us) : fmt::format("{:.0f} us", us);
}
std::string params_text(double p) {
  return thousands(std::llround(p));
}
// a / b for a >= b > 0, as "3.2x" (whole numbers from 10x on).
std::string ratio_text(double a, double b) {
  const double r = a / b;
  return r < 10 ? fmt::format("{:.1f}x", r) : fmt::format("{:.0f}x", r);
}
// Short axis labels: 200000 -> "200k", 0.5 -> "0.5".
std::string short_number(double v) {
  if (v >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

std::int64_t errors_of(const ReportModel& m) {
  return std::llround((1.0 - m.test_accuracy) * static_cast<double>(m.test_count));
}

bool is_recurrent(const ReportModel& m) {
  std::string f = m.family;
  for (char& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return f.find("rnn") != std::string::npos || f.find("lstm") != std::string::npos ||
         f.find("gru") != std::string::npos;
}

// ---- the axes of the comparison ----

struct Measure {
  const char* column;  // table header
  bool higher_better;
  double (*get)(const ReportModel&);
  std::string (*text)(double);
  bool always = false;  // measured even when 0 (accuracy)
};

const Measure kAccuracy{"Test accuracy", true, [](const ReportModel& m) { return m.test_accuracy; },
                        percent, true};
const Measure kParams{"Parameters", false,
                      [](const ReportModel& m) { return static_cast<double>(m.parameters); },
                      params_text};
const Measure kCheckpoint{
    "Checkpoint", false,
    [](const ReportModel& m) { return static_cast<double>(m.checkpoint_bytes); }, bytes_text};
const Measure kInt8{"Int8 weights", false,
                    [](const ReportModel& m) { return static_cast<double>(m.int8_bytes); },
                    bytes_text};
const Measure kTrain{"Train time / epoch", false,
                     [](const ReportModel& m) { return m.train_seconds_per_epoch; }, seconds_text};
const Measure kThroughput{"Inference (batch 1000)", true,
                          [](const ReportModel& m) { return m.inference_per_second; }, rate_text};
const Measure kLatency{"Latency (batch 1)", false,
                       [](const ReportModel& m) { return m.latency_us; }, micros_text};
const Measure kMemory{"Peak RSS", false,
                      [](const ReportModel& m) { return static_cast<double>(m.peak_rss_bytes); },
                      bytes_text};

bool measured(const Measure& ms, const ReportModel& m) {
  const double v = ms.get(m);
  return std::isfinite(v) && (ms.always || v > 0);
}

// The models with this measure, best first (input order among equal values).
std::vector<const ReportModel*> ranked(const std::vector<ReportModel>& models, const Measure& ms) {
  std::vector<const ReportModel*> out;
  for (const ReportModel& m : models)
    if (measured(ms, m)) out.push_back(&m);
  std::stable_sort(out.begin(), out.end(), [&](const ReportModel* a, const ReportModel* b) {
    return ms.higher_better ? ms.get(*a) > ms.get(*b) : ms.get(*a) < ms.get(*b);
  });
  return out;
}

// The best value of a column when at least two models have it (to mark it in the table).
bool is_best(const std::vector<ReportModel>& models, const Measure& ms, const ReportModel& m) {
  const auto r = ranked(models, ms);
  return r.size() >= 2 && measured(ms, m) && ms.text(ms.get(m)) == ms.text(ms.get(*r[0]));
}

// "Size: A is the smallest, ..., 3.2x fewer than B (...)": one axis's sentence.
std::string axis_sentence(const std::vector<ReportModel>& models, const Measure& ms,
                          const char* axis, const char* wins, const char* unit_after,
                          const char* lead) {
  const auto r = ranked(models, ms);
  if (r.empty()) return "";
  const ReportModel& w = *r[0];
  const std::string wv = ms.text(ms.get(w));
  if (r.size() == 1)
    return fmt::format("{}: only {} was measured ({}{}).", axis, w.name, wv, unit_after);
  const ReportModel& s = *r[1];
  const std::string sv = ms.text(ms.get(s));
  if (wv == sv)
    return fmt::format("{}: {} and {} tie at {}{}.", axis, w.name, s.name, wv, unit_after);
  const double a = ms.get(w), b = ms.get(s);
  const std::string ratio = ms.higher_better ? ratio_text(a, b) : ratio_text(b, a);
  std::string out = fmt::format("{}: {} {} {}{}, {} {} {} ({})", axis, w.name, wins, wv, unit_after,
                                ratio, lead, s.name, sv);
  if (r.size() > 2) {
    const ReportModel& l = *r.back();
    out += fmt::format("; {} comes last with {}", l.name, ms.text(ms.get(l)));
  }
  return out + ".";
}

std::string accuracy_sentence(const std::vector<ReportModel>& models) {
  const auto r = ranked(models, kAccuracy);
  const ReportModel& w = *r[0];
  if (r.size() == 1)
    return fmt::format("Accuracy: {} reaches {} on the test set (the only model).", w.name,
                       percent(w.test_accuracy));
  const ReportModel& s = *r[1];
  if (percent(w.test_accuracy) == percent(s.test_accuracy))
    return fmt::format("Accuracy: {} and {} share the best test accuracy, {}.", w.name, s.name,
                       percent(w.test_accuracy));
  std::string out =
      fmt::format("Accuracy: {} is the most accurate at {}, {:.2f} points ahead of {} ({})", w.name,
                  percent(w.test_accuracy), 100.0 * (w.test_accuracy - s.test_accuracy), s.name,
                  percent(s.test_accuracy));
  if (w.test_count > 0 && s.test_count > 0) {
    const std::int64_t ew = errors_of(w), es = errors_of(s);
    out += fmt::format(": {} errors against {}", thousands(ew), thousands(es));
    if (es > 0) out += fmt::format(", {:.0f}% fewer", 100.0 * static_cast<double>(es - ew) / es);
  }
  if (r.size() > 2)
    out += fmt::format("; {} comes last at {}", r.back()->name, percent(r.back()->test_accuracy));
  return out + ".";
}

std::string recurrent_sentence(const std::vector<ReportModel>& models) {
  const ReportModel *rec = nullptr, *other = nullptr;
  for (const ReportModel* m : ranked(models, kAccuracy)) {
    const ReportModel*& slot = is_recurrent(*m) ? rec : other;
    if (!slot) slot = m;
  }
  if (!rec || !other) return "";
  const double d = 100.0 * (rec->test_accuracy - other->test_accuracy);
  std::string out;
  if (percent(rec->test_accuracy) == percent(other->test_accuracy))
    out = fmt::format(
        "Recurrent against the rest: the best recurrent model, {} ({}), matches the "
        "best non-recurrent one, {}",
        rec->name, percent(rec->test_accuracy), other->name);
  else
    out = fmt::format(
        "Recurrent against the rest: the best recurrent model, {} ({}), is {:.2f} "
        "points {} the best non-recurrent one, {} ({})",
        rec->name, percent(rec->test_accuracy), std::fabs(d), d > 0 ? "ahead of" : "behind",
        other->name, percent(other->test_accuracy));
  std::vector<std::string> parts;
  auto compare = [&](const Measure& ms, const char* less, const char* more, const char* what) {
    if (!measured(ms, *rec) || !measured(ms, *other)) return;
    const double a = ms.get(*rec), b = ms.get(*other);
    if (ms.text(a) == ms.text(b)) {
      parts.push_back(fmt::format("the same {}", what));
      return;
    }
    parts.push_back(a < b ? fmt::format("{} {} {}", ratio_text(b, a), less, what)
                          : fmt::format("{} {} {}", ratio_text(a, b), more, what));
  };
  compare(kParams, "fewer", "more", "parameters");
  compare(kLatency, "lower", "higher", "latency");
  compare(kThroughput, "lower", "higher", "throughput");
  if (!parts.empty()) {
    out += "; it has ";
    for (std::size_t i = 0; i < parts.size(); ++i)
      out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  }
  return out + ".";
}

std::string tradeoff_sentence(const std::vector<ReportModel>& models) {
  const auto r = ranked(models, kAccuracy);
  if (r.size() < 2) return "";
  const double band = 0.005;  // half a point
  std::vector<ReportModel> near;
  for (const ReportModel* m : r)
    if (r[0]->test_accuracy - m->test_accuracy <= band + 1e-12) near.push_back(*m);
  if (near.size() == 1)
    return fmt::format("Trade-off: no other model comes within 0.5 points of {}.", r[0]->name);
  std::string out = fmt::format(
      "Trade-off: of the {} models within 0.5 points of the best accuracy", near.size());
  std::vector<std::string> parts;
  const auto small = ranked(near, kParams), quick = ranked(near, kLatency);
  if (!small.empty())
    parts.push_back(fmt::format("{} is the smallest ({} parameters)", small[0]->name,
                                params_text(static_cast<double>(small[0]->parameters))));
  if (!quick.empty())
    parts.push_back(
        fmt::format("{} answers fastest ({})", quick[0]->name, micros_text(quick[0]->latency_us)));
  if (parts.empty()) return "";
  out += ", " + parts[0];
  if (parts.size() > 1) out += " and " + parts[1];
  return out + ".";
}

// ---- HTML pieces ----

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string base64(const std::vector<std::uint8_t>& data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < data.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t{data[i]} << 16) |
                            (i + 1 < data.size() ? std::uint32_t{data[i + 1]} << 8 : 0) |
                            (i + 2 < data.size() ? std::uint32_t{data[i + 2]} : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < data.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::string color_of(std::size_t i) {
  return chart::hex(chart::series_color(i));
}

// A chart's frame: the plot area and the mapping of data to pixels.
struct Frame {
  double width = 540, height = 340, left = 64, right = 20, top = 34, bottom = 52;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // data range (x in log10 for log axes)
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (width - left - right); }
  double py(double y) const {
    return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom);
  }
};

std::string svg_open(const std::string& id, const std::string& title, const Frame& f) {
  return fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" "
      "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\" aria-label=\"{}\">"
      "<title>{}</title><rect class=\"bg\" width=\"100%\" height=\"100%\"/>"
      "<text class=\"ctitle\" x=\"{:.1f}\" y=\"20\">{}</text>",
      id, f.width, f.height, f.width, f.height, esc(title), esc(title), f.left, esc(title));
}

// Axis lines, grid, tick labels and axis titles. xticks/yticks in data coordinates.
std::string svg_axes(const Frame& f, const std::vector<std::pair<double, std::string>>& xticks,
                     const std::vector<std::pair<double, std::string>>& yticks,
                     const std::string& xlabel, const std::string& ylabel) {
  std::string s;
  const double bottom = f.height - f.bottom, right = f.width - f.right;
  for (const auto& [v, label] : yticks) {
    const double y = f.py(v);
    s += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        f.left, y, right, y, f.left - 6, y + 4, esc(label));
  }
  for (const auto& [v, label] : xticks) {
    const double x = f.px(v);
    s += fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text class=\"tick\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
        x, f.top, x, bottom, x, bottom + 16, esc(label));
  }
  s += fmt::format(
      "<rect class=\"frame\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
      "height=\"{:.1f}\"/>",
      f.left, f.top, right - f.left, bottom - f.top);
  s +=
      fmt::format("<text class=\"axis\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                  (f.left + right) / 2, f.height - 12, esc(xlabel));
  s += fmt::format(
      "<text class=\"axis\" transform=\"translate(16 {:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>",
      (f.top + bottom) / 2, esc(ylabel));
  return s;
}

// A padded range around [lo, hi] (a constant gets a small one).
void padded(double lo, double hi, double min_span, double& a, double& b) {
  double span = hi - lo;
  if (span < min_span) {
    const double mid = (lo + hi) / 2;
    lo = mid - min_span / 2;
    hi = mid + min_span / 2;
    span = min_span;
  }
  a = lo - 0.08 * span;
  b = hi + 0.08 * span;
}

std::vector<std::pair<double, std::string>> linear_ticks(double lo, double hi) {
  std::vector<std::pair<double, std::string>> out;
  const AxisTicks t = nice_ticks(lo, hi, 5);
  for (double v : t.values) out.emplace_back(v, format_tick(v, t.step));
  return out;
}

// Accuracy (percent) against a positive measure on a log axis, one labelled dot per model.
std::string svg_scatter(const std::string& id, const std::string& title, const std::string& xlabel,
                        const std::vector<ReportModel>& models, const Measure& ms) {
  Frame f;
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < models.size(); ++i)
    if (measured(ms, models[i])) idx.push_back(i);
  std::string s = svg_open(id, title, f);
  if (idx.empty())
    return s + fmt::format(
                   "<text class=\"axis\" x=\"{:.0f}\" y=\"{:.0f}\" text-anchor=\"middle\">"
                   "not measured</text></svg>",
                   f.width / 2, f.height / 2);
  double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
  for (std::size_t i : idx) {
    const double lx = std::log10(ms.get(models[i])), y = 100.0 * models[i].test_accuracy;
    xlo = std::min(xlo, lx), xhi = std::max(xhi, lx), ylo = std::min(ylo, y),
    yhi = std::max(yhi, y);
  }
  padded(xlo, xhi, 0.6, f.x0, f.x1);
  f.x0 -= 0.05, f.x1 += 0.25 * (f.x1 - f.x0);  // room for the labels right of the dots
  padded(ylo, yhi, 0.5, f.y0, f.y1);
  std::vector<std::pair<double, std::string>> xt;
  for (int k = static_cast<int>(std::floor(f.x0)); k <= static_cast<int>(std::ceil(f.x1)); ++k)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, k);
      if (std::log10(v) >= f.x0 && std::log10(v) <= f.x1)
        xt.emplace_back(std::log10(v), short_number(v));
    }
  s += svg_axes(f, xt, linear_ticks(f.y0, f.y1), xlabel, "test accuracy (%)");
  for (std::size_t i : idx) {
    const double x = f.px(std::log10(ms.get(models[i]))), y = f.py(100.0 * models[i].test_accuracy);
    s += fmt::format(
        "<g class=\"point\"><circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\">"
        "<title>{}: {}, {}</title></circle><text class=\"label\" x=\"{:.1f}\" "
        "y=\"{:.1f}\">{}</text></g>",
        x, y, color_of(i), esc(models[i].name), percent(models[i].test_accuracy),
        esc(ms.text(ms.get(models[i]))), x + 8, y - 6, esc(models[i].name));
  }
  return s + "</svg>";
}

// One line per model over the epochs: get(record) for each record of its curve.
std::string svg_curves(const std::string& id, const std::string& title, const std::string& ylabel,
                       const std::vector<ReportModel>& models, double (*get)(const EpochRecord&)) {
  Frame f;
  f.width = 560;
  f.right = 140;  // the legend
  std::string s = svg_open(id, title, f);
  double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
  for (const ReportModel& m : models)
    for (const EpochRecord& e : m.curve) {
      const double v = get(e);
      if (!std::isfinite(v)) continue;
      xlo = std::min(xlo, double(e.epoch)), xhi = std::max(xhi, double(e.epoch));
      ylo = std::min(ylo, v), yhi = std::max(yhi, v);
    }
  if (xlo > xhi)
    return s + fmt::format(
                   "<text class=\"axis\" x=\"{:.0f}\" y=\"{:.0f}\" text-anchor=\"middle\">"
                   "no curves</text></svg>",
                   f.width / 2, f.height / 2);
  f.x0 = xlo, f.x1 = std::max(xhi, xlo + 1);
  padded(ylo, yhi, 1e-3 * std::max(1.0, std::fabs(yhi)), f.y0, f.y1);
  std::vector<std::pair<double, std::string>> xt;
  const AxisTicks t = nice_ticks(f.x0, f.x1, 6);
  for (double v : t.values)
    if (std::fabs(v - std::round(v)) < 1e-9)
      xt.emplace_back(v, format_tick(v, std::max(1.0, t.step)));
  s += svg_axes(f, xt, linear_ticks(f.y0, f.y1), "epoch", ylabel);
  for (std::size_t i = 0; i < models.size(); ++i) {
    std::string points, dots;
    for (const EpochRecord& e : models[i].curve) {
      const double v = get(e);
      if (!std::isfinite(v)) continue;
      points += fmt::format("{:.1f},{:.1f} ", f.px(e.epoch), f.py(v));
      dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>",
                          f.px(e.epoch), f.py(v), color_of(i));
    }
    s += fmt::format(
        "<g class=\"series\" data-model=\"{}\"><polyline fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"2\" points=\"{}\"/>{}</g>",
        esc(models[i].name), color_of(i), points, dots);
    const double ly = f.top + 8 + 16.0 * static_cast<double>(i);
    const double lx = f.width - f.right + 12;
    s += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"3\"/><text class=\"label\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>",
        lx, ly, lx + 16, ly, color_of(i), lx + 22, ly + 4, esc(models[i].name));
  }
  return s + "</svg>";
}

// A class's name when the model has names for its classes, else its number.
std::string class_name(const ReportModel& m, int c) {
  return c >= 0 && static_cast<std::size_t>(c) < m.class_names.size()
             ? m.class_names[static_cast<std::size_t>(c)]
             : std::to_string(c);
}

std::string confused_text(const ReportModel& m, const char* arrow, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < std::min(n, m.confused.size()); ++i) {
    const ConfusedPair& p = m.confused[i];
    out += fmt::format("{}{}{}{} ({})", i ? ", " : "", class_name(m, p.truth), arrow,
                       class_name(m, p.predicted), p.count);
  }
  return out.empty() ? "-" : out;
}

// The models split by group, in order of each group's first model.
std::vector<std::pair<std::string, std::vector<ReportModel>>> groups_of(
    const std::vector<ReportModel>& models) {
  std::vector<std::pair<std::string, std::vector<ReportModel>>> out;
  for (const ReportModel& m : models) {
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == m.group; });
    if (it == out.end()) {
      out.push_back({m.group, {}});
      it = out.end() - 1;
    }
    it->second.push_back(m);
  }
  return out;
}

// An id suffix for a group's elements: "" for the first group, else "-" and the name's letters
// and digits, lowercased.
std::string group_suffix(const std::string& group, bool first) {
  if (first) return "";
  std::string s = "-";
  for (char ch : group)
    if (std::isalnum(static_cast<unsigned char>(ch)))
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s.size() > 1 ? s : "-group";
}

const Measure* const kColumns[] = {&kParams,     &kCheckpoint, &kInt8,  &kTrain,
                                   &kThroughput, &kLatency,    &kMemory};

std::vector<std::string> conclusion_lines(const std::vector<ReportModel>& models) {
  std::vector<std::string> lines;
  std::string text = report_conclusion(models);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

const char* kCss = R"(
body{margin:0;background:#f6f7f9;color:#1c2330;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:30px 0 10px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#5b6472;margin:0}
table{border-collapse:collapse;background:#fff;font-size:13.5px;width:100%}
th,td{padding:6px 9px;border-bottom:1px solid #e2e5ea;text-align:right;vertical-align:top}
td{white-space:nowrap}td.text{white-space:normal}
th{background:#eef1f5;font-weight:600}th:first-child,td:first-child,td.text{text-align:left}
td strong{color:#0a6b2d}
.note{color:#5b6472;font-size:13px}
#conclusion ul{background:#fff;border-left:4px solid #1f77b4;padding:10px 14px 10px 30px;margin:0}
#conclusion li{margin:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{background:#fff;border:1px solid #dfe3e8;border-radius:4px}
svg .bg{fill:#fff}svg .grid{stroke:#eceff3}svg .frame{fill:none;stroke:#8a93a0}
svg text{font-family:system-ui,sans-serif;fill:#2b3340}svg .tick{font-size:11px;fill:#5b6472}
svg .axis{font-size:12px}svg .label{font-size:11px}svg .ctitle{font-size:14px;font-weight:600}
.digits{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;text-align:center;font-size:12px;color:#5b6472}
figure img{display:block;width:56px;height:56px;image-rendering:pixelated;background:#000}
ol.mistakes{background:#fff;padding:10px 14px 10px 34px;margin:0;font-size:13.5px}
ol.mistakes li{margin:6px 0}
)";

std::vector<std::string> group_conclusion(const std::vector<ReportModel>& models) {
  return {
      accuracy_sentence(models),
      axis_sentence(models, kParams, "Size", "is the smallest with", " parameters", "fewer than"),
      axis_sentence(models, kTrain, "Training time", "trains fastest at", " per epoch",
                    "faster than"),
      axis_sentence(models, kThroughput, "Throughput", "classifies the most at batch 1000,", "",
                    "as many as"),
      axis_sentence(models, kLatency, "Latency", "answers one sample fastest, in", "",
                    "faster than"),
      axis_sentence(models, kMemory, "Memory", "trains in the least memory,", " peak RSS",
                    "less than"),
      recurrent_sentence(models),
      tradeoff_sentence(models)};
}

}  // namespace

std::string report_conclusion(const std::vector<ReportModel>& models) {
  if (models.empty()) return "No models to compare.";
  std::string out;
  for (const auto& [group, members] : groups_of(models))
    for (const std::string& l : group_conclusion(members))
      if (!l.empty()) out += (out.empty() ? "" : "\n") + (group.empty() ? l : group + ": " + l);
  return out;
}

// ---- Markdown ----

namespace {

std::string markdown_table(const std::vector<ReportModel>& models) {
  std::string s = "| Model | Family | " + std::string(kAccuracy.column) + " | Errors |";
  for (const Measure* ms : kColumns) s += std::string(" ") + ms->column + " |";
  s += " Most confused (true->predicted) |\n|---|---|---:|---:|";
  for (std::size_t i = 0; i < std::size(kColumns); ++i) s += "---:|";
  s += "---|\n";
  for (const ReportModel& m : models) {
    auto cell = [&](const Measure& ms) {
      if (!measured(ms, m)) return std::string("-");
      const std::string t = ms.text(ms.get(m));
      return is_best(models, ms, m) ? "**" + t + "**" : t;
    };
    s += "| " + md_cell(m.name) + " | " + md_cell(m.family) + " | " + cell(kAccuracy) + " | " +
         (m.test_count > 0 ? thousands(errors_of(m)) + " / " + thousands(m.test_count) : "-") +
         " |";
    for (const Measure* ms : kColumns) {
      s += ' ';
      s += cell(*ms);
      s += " |";
    }
    s += ' ';
    s += md_cell(confused_text(m, "->", 3));
    s += " |\n";
  }
  return s;
}

}  // namespace

std::string report_markdown(const Report& report) {
  validate_report(report, "report");
  const auto& models = report.models;
  std::string s = "# " + report.title + "\n\n";
  if (!report.data.empty()) s += "Data: " + report.data + "  \n";
  if (!report.machine.empty()) s += "Machine: " + report.machine + "  \n";
  const auto groups = groups_of(models);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    s += "\n";
    if (g > 0)
      s += "## " +
           (groups[g].first.empty() ? std::string("Other models") : md_cell(groups[g].first)) +
           "\n\n";
    s += markdown_table(groups[g].second);
  }
  s += "\nBest value of each column in bold";
  if (groups.size() > 1) s += " (within each table)";
  s += ". Inference: samples/s at batch 1000; latency: one sample at batch 1.\n\n## Conclusion\n\n";
  for (const std::string& l : conclusion_lines(models)) s += "- " + l + "\n";
  bool any_description = false;
  for (const ReportModel& m : models) any_description |= !m.description.empty();
  if (any_description) {
    s += "\n## Models\n\n";
    for (const ReportModel& m : models)
      if (!m.description.empty()) s += "- **" + md_cell(m.name) + "**: " + m.description + "\n";
  }
  bool any_text = false;
  for (const ReportModel& m : models) any_text |= !m.mistakes.empty();
  if (any_text) {
    s += "\n## Most confident mistakes\n";
    for (const ReportModel& m : models) {
      if (m.mistakes.empty()) continue;
      s += "\n### " + md_cell(m.name) + "\n\n";
      for (const MisclassifiedText& t : m.mistakes)
        s += fmt::format("- {} -> {} ({:.1f}%): {}\n", md_cell(class_name(m, t.truth)),
                         md_cell(class_name(m, t.predicted)), 100.0 * t.confidence,
                         md_cell(t.excerpt));
    }
  }
  return s;
}

// ---- HTML ----

std::string report_html(const Report& report) {
  validate_report(report, "report");
  const auto& models = report.models;
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; img-src data:\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      esc(report.title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<main>\n<h1>" +
      esc(report.title) + "</h1>\n";
  if (!report.data.empty()) s += "<p class=\"meta\">Data: " + esc(report.data) + "</p>\n";
  if (!report.machine.empty()) s += "<p class=\"meta\">Machine: " + esc(report.machine) + "</p>\n";

  s += "<section id=\"conclusion\">\n<h2>Conclusion</h2>\n<ul>\n";
  for (const std::string& l : conclusion_lines(models)) s += "<li>" + esc(l) + "</li>\n";
  s += "</ul>\n</section>\n";

  const auto groups = groups_of(models);
  s += "<section id=\"results\">\n<h2>Results</h2>\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& members = groups[g].second;
    if (g > 0)
      s += "<h3>" + esc(groups[g].first.empty() ? "Other models" : groups[g].first) + "</h3>\n";
    s += "<table id=\"results-table" + group_suffix(groups[g].first, g == 0) +
         "\">\n<thead><tr><th>Model</th><th>Family</th><th>" + std::string(kAccuracy.column) +
         "</th><th>Errors</th>";
    for (const Measure* ms : kColumns) s += std::string("<th>") + ms->column + "</th>";
    s += "<th>Most confused (true&#8594;predicted)</th></tr></thead>\n<tbody>\n";
    for (const ReportModel& m : members) {
      auto cell = [&](const Measure& ms) {
        if (!measured(ms, m)) return std::string("<td>-</td>");
        const std::string t = esc(ms.text(ms.get(m)));
        return is_best(members, ms, m) ? "<td><strong>" + t + "</strong></td>"
                                       : "<td>" + t + "</td>";
      };
      s += "<tr data-model=\"" + esc(m.name) + "\"><td title=\"" + esc(m.description) + "\">" +
           esc(m.name) + "</td><td class=\"text\">" + esc(m.family) + "</td>" + cell(kAccuracy) +
           "<td>" +
           (m.test_count > 0 ? thousands(errors_of(m)) + " / " + thousands(m.test_count) : "-") +
           "</td>";
      for (const Measure* ms : kColumns) s += cell(*ms);
      s += "<td class=\"text\">" + esc(confused_text(m, "\xE2\x86\x92", 3)) + "</td></tr>\n";
    }
    s += "</tbody>\n</table>\n";
  }
  s += "<p class=\"note\">Best value of each column in bold" +
       std::string(groups.size() > 1 ? " (within each table)" : "") +
       ". Inference: samples/s at batch 1000; latency: one sample at batch 1; peak RSS of the "
       "training process.</p>\n";
  bool any_description = false;
  for (const ReportModel& m : models) any_description |= !m.description.empty();
  if (any_description) {
    s += "<ul class=\"note\">\n";
    for (const ReportModel& m : models)
      if (!m.description.empty())
        s += "<li><b>" + esc(m.name) + "</b>: " + esc(m.description) + "</li>\n";
    s += "</ul>\n";
  }
  s += "</section>\n";

  s += "<section id=\"charts\">\n<h2>Accuracy against size and latency</h2>\n<div "
       "class=\"charts\">\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string id = group_suffix(groups[g].first, g == 0);
    const std::string of = groups[g].first.empty() ? "" : " (" + groups[g].first + ")";
    s += svg_scatter("chart-accuracy-parameters" + id, "Test accuracy against parameters" + of,
                     "parameters (log scale)", groups[g].second, kParams) +
         "\n";
    s += svg_scatter("chart-accuracy-latency" + id, "Test accuracy against batch-1 latency" + of,
                     "latency in microseconds (log scale)", groups[g].second, kLatency) +
         "\n";
  }
  s += "</div>\n</section>\n";

  s += "<section id=\"curves\">\n<h2>Training curves</h2>\n<div class=\"charts\">\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string id = group_suffix(groups[g].first, g == 0);
    const std::string of = groups[g].first.empty() ? "" : " (" + groups[g].first + ")";
    s += svg_curves("chart-curves-accuracy" + id, "Held-out accuracy after each epoch" + of,
                    "accuracy (%)", groups[g].second,
                    [](const EpochRecord& e) { return 100.0 * e.accuracy; }) +
         "\n";
    s += svg_curves("chart-curves-loss" + id, "Training loss per epoch" + of, "mean training loss",
                    groups[g].second, [](const EpochRecord& e) { return e.train_loss; }) +
         "\n";
  }
  s += "</div>\n</section>\n";

  s += "<section id=\"mistakes\">\n<h2>Misclassified test examples</h2>\n";
  for (const ReportModel& m : models) {
    s += "<h3>" + esc(m.name) + "</h3>\n";
    if (m.misclassified.empty() && m.mistakes.empty()) {
      s += "<p class=\"note\">none recorded</p>\n";
      continue;
    }
    if (!m.mistakes.empty()) {
      s += "<p class=\"note\">The most confident mistakes (true &#8594; predicted, the "
           "probability given to the wrong class):</p>\n<ol class=\"mistakes\" data-model=\"" +
           esc(m.name) + "\">\n";
      for (const MisclassifiedText& t : m.mistakes)
        s += fmt::format("<li><b>{} &#8594; {}</b> ({:.1f}%): <q>{}</q></li>\n",
                         esc(class_name(m, t.truth)), esc(class_name(m, t.predicted)),
                         100.0 * t.confidence, esc(t.excerpt));
      s += "</ol>\n";
    }
    if (m.misclassified.empty()) continue;
    s += "<div class=\"digits\" data-model=\"" + esc(m.name) + "\">\n";
    for (const MisclassifiedImage& img : m.misclassified) {
      GrayImage g;
      g.width = img.width;
      g.height = img.height;
      g.pixels = img.pixels;
      const std::string caption = fmt::format("{} \xE2\x86\x92 {}", img.truth, img.predicted);
      s += fmt::format(
          "<figure><img alt=\"true {} predicted {}\" src=\"data:image/png;base64,{}\">"
          "<figcaption>{}</figcaption></figure>\n",
          img.truth, img.predicted, base64(encode_png(g)), caption);
    }
    s += "</div>\n";
  }
  s += "</section>\n</main>\n</body>\n</html>\n";
  return s;
}

void write_report(const std::string& dir, const Report& report) {
  const std::string html = report_html(report), md = report_markdown(report);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  RECUR_CHECK(!ec, dir, "cannot create the report folder: " + ec.message());
  write_file_atomic((std::filesystem::path(dir) / "report.html").string(), html);
  write_file_atomic((std::filesystem::path(dir) / "report.md").string(), md);
}

}  // namespace recur
