// Train/validation split and the deterministic, resumable batcher.
#include <algorithm>
#include <numeric>

#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/rng.hpp"

namespace recur {

Split split_train_validation(std::int64_t count, std::int64_t validation_size) {
  if (validation_size < 0 || validation_size >= count) {
    throw Error("--val", "validation size " + std::to_string(validation_size) +
                             " must be at least 0 and less than the " + std::to_string(count) +
                             " training images");
  }
  Split split;
  split.validation.resize(static_cast<std::size_t>(validation_size));
  std::iota(split.validation.begin(), split.validation.end(), std::int64_t{0});
  split.train.resize(static_cast<std::size_t>(count - validation_size));
  std::iota(split.train.begin(), split.train.end(), validation_size);
  return split;
}

Batcher::Batcher(std::vector<std::int64_t> indices, int batch_size, std::uint64_t seed,
                 bool shuffle)
    : indices_(std::move(indices)), batch_size_(batch_size), seed_(seed), shuffle_(shuffle) {
  if (batch_size_ < 1) {
    throw Error("--batch", "must be at least 1, got " + std::to_string(batch_size_));
  }
  start_epoch(0);
}

void Batcher::start_epoch(std::int64_t epoch) {
  if (epoch < 0) throw Error("resume", "epoch " + std::to_string(epoch) + " is negative");
  epoch_ = epoch;
  cursor_ = 0;
  order_ = indices_;
  if (!shuffle_) return;
  // Two splitmix64 rounds mix seed and epoch, so neighbouring seeds or epochs share nothing.
  std::uint64_t state = seed_;
  std::uint64_t key = splitmix64(state) ^ static_cast<std::uint64_t>(epoch);
  Rng rng(splitmix64(key));
  rng.shuffle(order_.data(), order_.size());
}

bool Batcher::next(std::vector<std::int64_t>& batch) {
  const std::int64_t n = size();
  if (cursor_ >= n) {
    batch.clear();
    return false;
  }
  const std::int64_t end = std::min<std::int64_t>(n, cursor_ + batch_size_);
  batch.assign(order_.begin() + cursor_, order_.begin() + end);
  cursor_ = end;
  return true;
}

std::int64_t Batcher::batches_per_epoch() const {
  return (size() + batch_size_ - 1) / batch_size_;
}

void Batcher::seek(std::int64_t epoch, std::int64_t cursor) {
  if (cursor < 0 || cursor > size()) {
    throw Error("resume", "cursor " + std::to_string(cursor) + " is outside the epoch's " +
                              std::to_string(size()) + " samples");
  }
  start_epoch(epoch);
  cursor_ = cursor;
}

}  // namespace recur
