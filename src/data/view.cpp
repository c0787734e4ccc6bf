// Sequence views: which pixels an RNN reads at each time step.
#include <array>
#include <numeric>

#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/rng.hpp"

namespace recur {

namespace {

// pixel / 255.f for every byte value, so filling a batch is a table lookup.
const std::array<float, 256>& unit_scale() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int p = 0; p < 256; ++p) t[static_cast<std::size_t>(p)] = static_cast<float>(p) / 255.f;
    return t;
  }();
  return table;
}

const char* const kViewNames[] = {"rows", "cols", "pixels", "permuted"};

}  // namespace

ViewKind parse_view(const std::string& name) {
  if (name == "rows") return ViewKind::rows;
  if (name == "cols") return ViewKind::cols;
  if (name == "pixels") return ViewKind::pixels;
  if (name == "permuted") return ViewKind::permuted;
  throw Error("--view", "unknown view '" + name + "' (rows, cols, pixels, permuted)");
}

std::string to_string(ViewKind v) {
  return kViewNames[static_cast<int>(v)];
}

SequenceView SequenceView::make(ViewKind kind, int rows, int cols, std::uint64_t seed) {
  if (rows < 1 || cols < 1 || static_cast<std::int64_t>(rows) * cols > (std::int64_t{1} << 30)) {
    throw Error("--view", "image size " + std::to_string(rows) + "x" + std::to_string(cols) +
                              " is not usable (each side at least 1, at most 2^30 pixels)");
  }
  SequenceView v;
  v.kind = kind;
  v.rows = rows;
  v.cols = cols;
  v.seed = seed;
  if (kind == ViewKind::permuted) {
    v.order.resize(static_cast<std::size_t>(rows) * cols);
    std::iota(v.order.begin(), v.order.end(), 0);
    Rng rng(seed);
    rng.shuffle(v.order.data(), v.order.size());
  }
  return v;
}

int SequenceView::steps() const {
  switch (kind) {
    case ViewKind::rows:
      return rows;
    case ViewKind::cols:
      return cols;
    case ViewKind::pixels:
    case ViewKind::permuted:
      return rows * cols;
  }
  return 0;
}

int SequenceView::features() const {
  switch (kind) {
    case ViewKind::rows:
      return cols;
    case ViewKind::cols:
      return rows;
    case ViewKind::pixels:
    case ViewKind::permuted:
      return 1;
  }
  return 0;
}

namespace {

// Every image of indices[0, batch) as sample b of a time-major batch (floats or bytes).
template <typename Out>
void fill_batch(const SequenceView& v, const ImageSet& set, const std::int64_t* indices, int batch,
                Out* x) {
  if (set.rows != v.rows || set.cols != v.cols) {
    throw Error(set.source, "images are " + std::to_string(set.rows) + "x" +
                                std::to_string(set.cols) + " but the " + to_string(v.kind) +
                                " view expects " + std::to_string(v.rows) + "x" +
                                std::to_string(v.cols));
  }
  RECUR_ASSERT(batch >= 0);
  RECUR_ASSERT(v.kind != ViewKind::permuted ||
               v.order.size() ==
                   static_cast<std::size_t>(v.rows) * static_cast<std::size_t>(v.cols));
  for (std::int64_t b = 0; b < batch; ++b) {
    RECUR_ASSERT(indices[b] >= 0 && indices[b] < set.count);
    v.fill_image(set.image(indices[b]), b, batch, x);
  }
}

// Writes image img as sample b of a time-major batch: out[(t * batch + b) * F + f] = value(pixel).
template <typename Out, typename Value>
void gather_image(const SequenceView& v, const std::uint8_t* img, std::int64_t b, int batch, Out* x,
                  Value value) {
  const int rows = v.rows, cols = v.cols;
  const std::int64_t b_count = batch;
  const std::int64_t pixels = static_cast<std::int64_t>(rows) * cols;
  switch (v.kind) {
    case ViewKind::rows:
      for (std::int64_t t = 0; t < rows; ++t) {
        Out* dst = x + (t * b_count + b) * cols;
        const std::uint8_t* src = img + t * cols;
        for (int f = 0; f < cols; ++f) dst[f] = value(src[f]);
      }
      break;
    case ViewKind::cols:
      for (std::int64_t t = 0; t < cols; ++t) {
        Out* dst = x + (t * b_count + b) * rows;
        for (std::int64_t f = 0; f < rows; ++f) dst[f] = value(img[f * cols + t]);
      }
      break;
    case ViewKind::pixels:
      for (std::int64_t t = 0; t < pixels; ++t) x[t * b_count + b] = value(img[t]);
      break;
    case ViewKind::permuted:
      for (std::int64_t t = 0; t < pixels; ++t) x[t * b_count + b] = value(img[v.order[t]]);
      break;
  }
}

}  // namespace

void SequenceView::fill(const ImageSet& set, const std::int64_t* indices, int batch,
                        float* x) const {
  fill_batch(*this, set, indices, batch, x);
}

void SequenceView::fill_pixels(const ImageSet& set, const std::int64_t* indices, int batch,
                               std::uint8_t* px) const {
  fill_batch(*this, set, indices, batch, px);
}

void SequenceView::fill_image(const std::uint8_t* img, std::int64_t b, int batch, float* x) const {
  const auto& scale = unit_scale();
  gather_image(*this, img, b, batch, x, [&](std::uint8_t p) { return scale[p]; });
}

void SequenceView::fill_image(const std::uint8_t* img, std::int64_t b, int batch,
                              std::uint8_t* px) const {
  gather_image(*this, img, b, batch, px, [](std::uint8_t p) { return p; });
}

void SequenceView::fill_labels(const ImageSet& set, const std::int64_t* indices, int batch,
                               std::int32_t* y) const {
  RECUR_ASSERT(batch >= 0);
  for (int b = 0; b < batch; ++b) {
    RECUR_ASSERT(indices[b] >= 0 && indices[b] < set.count);
    y[b] = set.labels[static_cast<std::size_t>(indices[b])];
  }
}

}  // namespace recur
