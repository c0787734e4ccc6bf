// The batch sources of recur/sources.hpp and the epoch batches cut from them.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "recur/error.hpp"
#include "recur/rng.hpp"
#include "recur/sources.hpp"

namespace recur {

TokenSequences::TokenSequences(const TextSet& texts, const Vocabulary& vocab, int max_len,
                               Truncate keep)
    : classes_(texts.num_classes) {
  RECUR_CHECK(max_len >= 1, "--max-len", "must be at least 1, got " + std::to_string(max_len));
  offsets_.reserve(texts.texts.size() + 1);
  offsets_.push_back(0);
  labels_ = texts.labels;
  const bool narrow = vocab.size() <= 65536;
  std::int64_t total = 0;
  for (const std::string& text : texts.texts) {
    const std::vector<std::int32_t> ids = vocab.encode(text, max_len, keep);
    for (std::int32_t id : ids) unknown_ += id == Vocabulary::kUnk;
    if (narrow)
      narrow_.insert(narrow_.end(), ids.begin(), ids.end());
    else
      wide_.insert(wide_.end(), ids.begin(), ids.end());
    total += static_cast<std::int64_t>(ids.size());
    offsets_.push_back(total);
    max_length_ = std::max(max_length_, static_cast<int>(ids.size()));
  }
  // The vectors grew by doubling: give back the unused tail, up to half of what they hold.
  narrow_.shrink_to_fit();
  wide_.shrink_to_fit();
}

namespace {

template <typename Id>
void fill_ids(const Id* all, const std::vector<std::int64_t>& offsets, const std::int64_t* idx,
              int n, std::int32_t* ids) {
  for (int b = 0; b < n; ++b) {
    const auto i = static_cast<std::size_t>(idx[b]);
    const Id* tok = all + offsets[i];
    const auto len = static_cast<int>(offsets[i + 1] - offsets[i]);
    for (int t = 0; t < len; ++t)
      ids[static_cast<std::size_t>(t) * n + b] = static_cast<std::int32_t>(tok[t]);
  }
}

}  // namespace

ActShape TokenSequences::input_shape() const {
  ActShape s{ActKind::sequence, 0};
  s.ids = true;
  return s;
}

void TokenSequences::fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                          float*) const {
  std::fill(ids, ids + static_cast<std::size_t>(seq.steps) * n, Vocabulary::kPad);
  if (wide_.empty())
    fill_ids(narrow_.data(), offsets_, idx, n, ids);
  else
    fill_ids(wide_.data(), offsets_, idx, n, ids);
}

void ArraySequences::fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t*,
                          float* x) const {
  const int F = set_->features, T = set_->steps;
  std::fill(x, x + static_cast<std::size_t>(seq.steps) * n * F, 0.f);
  for (int b = 0; b < n; ++b) {
    const float* src = set_->x.data() + static_cast<std::size_t>(idx[b]) * T * F;
    const int len = length(idx[b]);
    for (int t = 0; t < len; ++t)
      std::memcpy(x + (static_cast<std::size_t>(t) * n + b) * F,
                  src + static_cast<std::size_t>(t) * F, sizeof(float) * F);
  }
}

ImageSamples::ImageSamples(std::shared_ptr<const ImageSet> set, std::vector<std::int64_t> indices)
    : set_(std::move(set)), indices_(std::move(indices)) {
  if (indices_.empty()) {
    indices_.resize(static_cast<std::size_t>(set_->count));
    std::iota(indices_.begin(), indices_.end(), 0);
  }
}

ActShape ImageSamples::input_shape() const {
  ActShape s{ActKind::image, 1};
  s.height = set_->rows;
  s.width = set_->cols;
  return s;
}

void ImageSamples::fill(const std::int64_t* idx, int n, const SeqInfo&, std::int32_t*,
                        float* x) const {
  const std::size_t pixels = static_cast<std::size_t>(set_->rows) * set_->cols;
  for (int b = 0; b < n; ++b) {
    const std::uint8_t* p = set_->image(image_index(idx[b]));
    float* o = x + static_cast<std::size_t>(b) * pixels;
    for (std::size_t k = 0; k < pixels; ++k) o[k] = static_cast<float>(p[k]) * (1.f / 255.f);
  }
}

void ImageSamples::fill_training(const std::int64_t* idx, int n, const SeqInfo& seq,
                                 std::int32_t* ids, float* x, std::uint64_t step_seed) const {
  if (!augment_.active()) return fill(idx, n, seq, ids, x);
  const std::size_t pixels = static_cast<std::size_t>(set_->rows) * set_->cols;
  std::vector<std::uint8_t> moved(pixels);
  for (int b = 0; b < n; ++b) {
    const std::int64_t image = image_index(idx[b]);
    Rng rng = augment_rng(step_seed, image);
    augment_image(set_->image(image), set_->rows, set_->cols, augment_, rng, moved.data());
    float* o = x + static_cast<std::size_t>(b) * pixels;
    for (std::size_t k = 0; k < pixels; ++k) o[k] = static_cast<float>(moved[k]) * (1.f / 255.f);
  }
}

// ---- batches by length ----

std::vector<std::vector<std::int64_t>> length_batches(const SequenceSource& src,
                                                      std::vector<std::int64_t> indices, int batch,
                                                      std::uint64_t seed, std::int64_t epoch,
                                                      bool shuffle) {
  RECUR_CHECK(batch >= 1, "--batch", "must be at least 1");
  std::vector<std::vector<std::int64_t>> batches;
  auto longest_first = [&src](std::int64_t a, std::int64_t b) {
    return src.length(a) > src.length(b);
  };
  if (!shuffle) {
    std::stable_sort(indices.begin(), indices.end(), longest_first);
    for (std::size_t k = 0; k < indices.size(); k += static_cast<std::size_t>(batch))
      batches.emplace_back(
          indices.begin() + static_cast<std::ptrdiff_t>(k),
          indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), k + batch)));
    return batches;
  }
  std::uint64_t mix = seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch);
  Rng rng(splitmix64(mix));
  for (std::size_t k = indices.size(); k > 1; --k) std::swap(indices[k - 1], indices[rng.below(k)]);
  const std::size_t pool = static_cast<std::size_t>(batch) * kPoolBatches;
  for (std::size_t p = 0; p < indices.size(); p += pool) {
    const auto first = indices.begin() + static_cast<std::ptrdiff_t>(p);
    const auto last =
        indices.begin() + static_cast<std::ptrdiff_t>(std::min(indices.size(), p + pool));
    std::stable_sort(first, last, longest_first);
    for (auto it = first; it < last; it += std::min<std::ptrdiff_t>(batch, last - it))
      batches.emplace_back(it, it + std::min<std::ptrdiff_t>(batch, last - it));
  }
  for (std::size_t k = batches.size(); k > 1; --k) std::swap(batches[k - 1], batches[rng.below(k)]);
  return batches;
}

ImageSequences::ImageSequences(std::shared_ptr<const ImageSet> set, SequenceView view,
                               std::vector<std::int64_t> indices)
    : set_(std::move(set)), view_(std::move(view)), indices_(std::move(indices)) {
  RECUR_CHECK(view_.rows == set_->rows && view_.cols == set_->cols, set_->source,
              "images are " + std::to_string(set_->rows) + "x" + std::to_string(set_->cols) +
                  ", the view reads " + std::to_string(view_.rows) + "x" +
                  std::to_string(view_.cols));
  if (indices_.empty()) {
    indices_.resize(static_cast<std::size_t>(set_->count));
    std::iota(indices_.begin(), indices_.end(), 0);
  }
}

void ImageSequences::fill(const std::int64_t* idx, int n, const SeqInfo&, std::int32_t*,
                          float* x) const {
  std::vector<std::int64_t> images(static_cast<std::size_t>(n));
  for (int b = 0; b < n; ++b) images[static_cast<std::size_t>(b)] = image_index(idx[b]);
  view_.fill(*set_, images.data(), n, x);
}

bool ImageSequences::fill_pixels(const std::int64_t* idx, int n, const SeqInfo&,
                                 std::uint8_t* px) const {
  std::vector<std::int64_t> images(static_cast<std::size_t>(n));
  for (int b = 0; b < n; ++b) images[static_cast<std::size_t>(b)] = image_index(idx[b]);
  view_.fill_pixels(*set_, images.data(), n, px);
  return true;
}

void ImageSequences::fill_training(const std::int64_t* idx, int n, const SeqInfo& seq,
                                   std::int32_t* ids, float* x, std::uint64_t step_seed) const {
  if (!augment_.active()) return fill(idx, n, seq, ids, x);
  std::vector<std::uint8_t> moved(static_cast<std::size_t>(set_->rows) * set_->cols);
  for (int b = 0; b < n; ++b) {
    const std::int64_t image = image_index(idx[b]);
    Rng rng = augment_rng(step_seed, image);
    augment_image(set_->image(image), set_->rows, set_->cols, augment_, rng, moved.data());
    view_.fill_image(moved.data(), b, n, x);
  }
}

}  // namespace recur
