#include "cli/model_io.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <numeric>

#include "recur/error.hpp"
#include "recur/image.hpp"

namespace recur::cli {

namespace {

const std::string& require_meta(const ModelWithView& m, const std::string& key) {
  auto it = m.model.metadata.find(key);
  if (it == m.model.metadata.end())
    throw Error(m.path, "the metadata has no '" + key +
                            "' entry, so the data view the model was trained on is unknown");
  return it->second;
}

template <typename T>
T parse_meta_number(const ModelWithView& m, const std::string& key, T min, T max) {
  const std::string& text = require_meta(m, key);
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    throw Error(m.path, "metadata '" + key + "' is not a valid number: '" + text + "'");
  return value;
}

// "1 step", "28 steps"; "classes" for "class".
std::string plural(long long n, const std::string& word) {
  if (n == 1) return fmt::format("{} {}", n, word);
  return fmt::format("{} {}{}", n, word, word.back() == 's' ? "es" : "s");
}

}  // namespace

std::string ModelWithView::meta(const std::string& key) const {
  auto it = model.metadata.find(key);
  return it == model.metadata.end() ? std::string() : it->second;
}

ModelWithView load_model_with_view(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(path, "is a folder; give a checkpoint file such as " +
                          (std::filesystem::path(path) / "best.safetensors").string());
  ModelWithView m;
  m.path = path;
  m.model = load_model(path);
  try {
    m.view_kind = parse_view(require_meta(m, "recur.view"));
  } catch (const Error& e) {
    if (e.subject() == path) throw;
    throw Error(path, "metadata 'recur.view': " + e.reason());
  }
  m.view_seed = parse_meta_number<std::uint64_t>(m, "recur.view_seed", 0, UINT64_MAX);
  m.rows = parse_meta_number<int>(m, "recur.image_rows", 1, kMaxImageSide);
  m.cols = parse_meta_number<int>(m, "recur.image_cols", 1, kMaxImageSide);
  return m;
}

SequenceView make_view(const ModelWithView& m) {
  return make_view(m, m.rows, m.cols);
}

SequenceView make_view(const ModelWithView& m, int rows, int cols) {
  return SequenceView::make(m.view_kind, rows, cols, m.view_seed);
}

std::string describe_model(const ModelWithView& m) {
  const ModelConfig& c = m.net().config();
  return fmt::format("{} {}x{}{}, {} view: {} steps x {}", to_string(c.cell), c.hidden, c.layers,
                     c.bidirectional ? " bidirectional" : "", to_string(m.view_kind), c.steps,
                     plural(c.input_size, "feature"));
}

void check_model_fits(const ModelWithView& m, const SequenceView& view, int num_classes,
                      const std::string& data) {
  const ModelConfig& c = m.net().config();
  if (c.steps != view.steps() || c.input_size != view.features()) {
    throw Error(m.path, fmt::format("model expects {} of {} ({} view of {}x{} images) but {} "
                                    "are {}x{}, which the {} view reads as {} of {}",
                                    plural(c.steps, "step"), plural(c.input_size, "feature"),
                                    to_string(m.view_kind), m.rows, m.cols, data, view.rows,
                                    view.cols, to_string(view.kind), plural(view.steps(), "step"),
                                    plural(view.features(), "feature")));
  }
  if (view.rows != m.rows || view.cols != m.cols) {
    throw Error(m.path, fmt::format("model was trained on {}x{} images but {} are {}x{}", m.rows,
                                    m.cols, data, view.rows, view.cols));
  }
  if (c.num_classes != num_classes) {
    throw Error(m.path, fmt::format("model has {} but {} have {}", plural(c.num_classes, "class"),
                                    data, plural(num_classes, "class")));
  }
}

std::vector<ClassProbability> top_k(const float* probs, int num_classes, int k) {
  std::vector<int> order(static_cast<std::size_t>(num_classes));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  order.resize(static_cast<std::size_t>(std::clamp(k, 0, num_classes)));
  std::vector<ClassProbability> out;
  for (int c : order) out.push_back({c, probs[c]});
  return out;
}

void require_positive(const std::string& flag, long long value) {
  if (value < 1) throw Error(flag, "must be a positive integer, got " + std::to_string(value));
}

std::string parent_folder(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace recur::cli
