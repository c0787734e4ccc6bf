// The one batch source every model trains and predicts from: the samples of a data set as
// sequences with lengths (token ids of texts, feature vectors of .npy arrays, images read through
// a view) or as whole images, and the epoch batches cut from them.
//
// Batches are cut by length: each epoch's shuffled order is split into pools of kPoolBatches
// batches, each pool sorted by length (longest first) and cut into batches, and the batches of
// the epoch shuffled; so a batch holds samples of similar length and little compute goes to
// padding.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recur/augment.hpp"
#include "recur/data.hpp"
#include "recur/layers.hpp"
#include "recur/text.hpp"

namespace recur {

// Where the samples of a sequence data set come from.
class SequenceSource {
 public:
  virtual ~SequenceSource() = default;
  virtual std::int64_t size() const = 0;
  virtual int length(std::int64_t i) const = 0;  // >= 1
  virtual std::int32_t label(std::int64_t i) const = 0;
  virtual int num_classes() const = 0;
  virtual ActShape input_shape() const = 0;  // sequence of ids, or of features
  virtual int max_length() const = 0;
  // The time-major batch of samples idx[0, n), sorted longest first (seq made from their
  // lengths): ids [S, n] for ids, else x [S, n, F]; zero at padded steps.
  virtual void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                    float* x) const = 0;
  // fill() for a training step whose draws `step_seed` keys: images augmented when the source
  // was given an Augment; everything else as fill().
  virtual void fill_training(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                             float* x, std::uint64_t step_seed) const {
    (void)step_seed;
    fill(idx, n, seq, ids, x);
  }
  // Images only: fill()'s x as the pixel bytes themselves (x = px / 255.f), for a model that reads
  // them (ModelInput::pixels); returns false, writing nothing, for every other source.
  virtual bool fill_pixels(const std::int64_t* idx, int n, const SeqInfo& seq,
                           std::uint8_t* px) const {
    (void)idx;
    (void)n;
    (void)seq;
    (void)px;
    return false;
  }
};

// Token ids of texts: encoded once, held as one flat array.
class TokenSequences final : public SequenceSource {
 public:
  TokenSequences(const TextSet& texts, const Vocabulary& vocab, int max_len, Truncate keep);
  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  int length(std::int64_t i) const override {
    return static_cast<int>(offsets_[static_cast<std::size_t>(i) + 1] -
                            offsets_[static_cast<std::size_t>(i)]);
  }
  std::int32_t label(std::int64_t i) const override { return labels_[static_cast<std::size_t>(i)]; }
  int num_classes() const override { return classes_; }
  ActShape input_shape() const override;
  int max_length() const override { return max_length_; }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override;
  std::int64_t unknown_tokens() const { return unknown_; }
  std::int64_t total_tokens() const { return offsets_.back(); }

 private:
  // All samples' token ids one after the other, 16-bit when the vocabulary fits (IMDb's 20,000
  // words: half the memory of the training and test sets), else 32-bit.
  std::vector<std::uint16_t> narrow_;
  std::vector<std::int32_t> wide_;
  std::vector<std::int64_t> offsets_;
  std::vector<std::int32_t> labels_;
  int classes_ = 2, max_length_ = 0;
  std::int64_t unknown_ = 0;
};

// Feature sequences from .npy arrays (a SequenceSet), held by reference.
class ArraySequences final : public SequenceSource {
 public:
  explicit ArraySequences(std::shared_ptr<const SequenceSet> set) : set_(std::move(set)) {}
  std::int64_t size() const override { return set_->count; }
  int length(std::int64_t i) const override { return set_->lengths[static_cast<std::size_t>(i)]; }
  std::int32_t label(std::int64_t i) const override {
    return set_->labels[static_cast<std::size_t>(i)];
  }
  int num_classes() const override { return set_->num_classes; }
  ActShape input_shape() const override { return ActShape{ActKind::sequence, set_->features}; }
  int max_length() const override { return set_->steps; }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override;

 private:
  std::shared_ptr<const SequenceSet> set_;
};

// Images as one-step samples for image models (MLP, CNN): input [batch, 1, rows, cols], pixels
// scaled to [0, 1]; `indices` picks and orders the images used (all when empty).
class ImageSamples final : public SequenceSource {
 public:
  ImageSamples(std::shared_ptr<const ImageSet> set, std::vector<std::int64_t> indices = {});
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  int length(std::int64_t) const override { return 1; }
  std::int32_t label(std::int64_t i) const override {
    return set_->labels[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])];
  }
  int num_classes() const override { return set_->num_classes; }
  ActShape input_shape() const override;
  int max_length() const override { return 1; }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override;
  // The image behind sample i.
  std::int64_t image_index(std::int64_t i) const { return indices_[static_cast<std::size_t>(i)]; }

  // Training batches (fill_training) move and turn each image within `a` (recur/augment.hpp).
  void set_augment(const Augment& a) { augment_ = a; }
  void fill_training(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                     float* x, std::uint64_t step_seed) const override;

 private:
  std::shared_ptr<const ImageSet> set_;
  std::vector<std::int64_t> indices_;
  Augment augment_;
};

// Images read as sequences through a view (rows, cols, pixels, permuted): every sample has the
// view's steps; `indices` picks and orders the images used (all when empty).
class ImageSequences final : public SequenceSource {
 public:
  ImageSequences(std::shared_ptr<const ImageSet> set, SequenceView view,
                 std::vector<std::int64_t> indices = {});
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  int length(std::int64_t) const override { return view_.steps(); }
  std::int32_t label(std::int64_t i) const override {
    return set_->labels[static_cast<std::size_t>(indices_[static_cast<std::size_t>(i)])];
  }
  int num_classes() const override { return set_->num_classes; }
  ActShape input_shape() const override { return ActShape{ActKind::sequence, view_.features()}; }
  int max_length() const override { return view_.steps(); }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override;
  bool fill_pixels(const std::int64_t* idx, int n, const SeqInfo& seq,
                   std::uint8_t* px) const override;
  std::int64_t image_index(std::int64_t i) const { return indices_[static_cast<std::size_t>(i)]; }
  const SequenceView& view() const { return view_; }

  // Training batches (fill_training) move and turn each image within `a` (recur/augment.hpp).
  void set_augment(const Augment& a) { augment_ = a; }
  void fill_training(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                     float* x, std::uint64_t step_seed) const override;

 private:
  std::shared_ptr<const ImageSet> set_;
  SequenceView view_;
  std::vector<std::int64_t> indices_;
  Augment augment_;
};

inline constexpr int kPoolBatches = 32;
// One epoch's batches of `indices`, each sorted longest first. shuffle=false (evaluation): all
// of them sorted by length and cut in that order. The order is a pure function of (seed, epoch).
std::vector<std::vector<std::int64_t>> length_batches(const SequenceSource& src,
                                                      std::vector<std::int64_t> indices, int batch,
                                                      std::uint64_t seed, std::int64_t epoch,
                                                      bool shuffle);

// ---- the data-source factory for text and arrays ----

// "imdb" is data/imdb; anything else is a path.
std::string resolve_data_path(const std::string& data);
// True when `data` names text (imdb, a reviews.json / aclImdb folder, a label<TAB>text file) or
// a folder of .npy arrays, rather than IDX images.
bool is_sequence_data(const std::string& data);

// How texts become token ids: the vocabulary built from the training texts (at most `vocab`
// entries, <pad> and <unk> included, words seen at least `min_count` times), `max_len` tokens
// kept per text (its head or tail), and a label<TAB>text file replacing the test side.
struct TextSettings {
  int vocab = 20000;
  int min_count = 2;
  int max_len = 500;
  Truncate truncate = Truncate::tail;
  std::string test_data;
};

// Text or arrays opened for training: the two batch sources and what a model and a checkpoint
// need to know of them.
struct SequenceData {
  std::shared_ptr<const SequenceSource> train, test;
  ActShape input;      // token ids (input.ids) or feature vectors
  int vocab_size = 0;  // text: the vocabulary's size; arrays: 0
  int num_classes = 0;
  // Checkpoint metadata: recur.vocab and recur.text (text), recur.train_data (both).
  std::map<std::string, std::string> metadata;
  std::string title;    // "recur imdb", "recur FOLDER"
  std::string summary;  // one line on what was read (text: sizes, vocabulary, unknown tokens)
};

// Opens the text or arrays that `data` names (is_sequence_data; "imdb" is data/imdb). Errors
// name the flag that chose the input (--data, --test-data) or the file, and the reason.
SequenceData open_sequence_data(const std::string& data, const TextSettings& text);

}  // namespace recur
