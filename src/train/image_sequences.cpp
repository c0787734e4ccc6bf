// Images read as sequences through a SequenceView, as a source of the layered trainer.
#include <numeric>

#include "recur/error.hpp"
#include "recur/seq_train.hpp"

namespace recur {

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

}  // namespace recur
