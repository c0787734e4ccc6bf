// Training and evaluation of models built from layers (recur/layers.hpp) on sequences with
// lengths: token ids (text) or feature vectors (.npy arrays).
//
// Batches are cut by length: each epoch's shuffled order is split into pools of
// kPoolBatches batches, each pool sorted by length (longest first) and cut into batches, and the
// batches of the epoch shuffled; so a batch holds samples of similar length and little compute
// goes to padding. A batch is split between threads into contiguous chunks of about equal token
// counts; the weights are packed once per step for all threads (Model::prepare). Same seed,
// threads and data: bit-identical weights.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/data.hpp"
#include "recur/layers.hpp"
#include "recur/optim.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur {

class ThreadPool;

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
  // Token ids of sample i.
  const std::int32_t* tokens(std::int64_t i) const {
    return tokens_.data() + offsets_[static_cast<std::size_t>(i)];
  }
  std::int64_t unknown_tokens() const { return unknown_; }
  std::int64_t total_tokens() const { return static_cast<std::int64_t>(tokens_.size()); }

 private:
  std::vector<std::int32_t> tokens_;
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

 private:
  std::shared_ptr<const ImageSet> set_;
  std::vector<std::int64_t> indices_;
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
  std::int64_t image_index(std::int64_t i) const { return indices_[static_cast<std::size_t>(i)]; }
  const SequenceView& view() const { return view_; }

 private:
  std::shared_ptr<const ImageSet> set_;
  SequenceView view_;
  std::vector<std::int64_t> indices_;
};

inline constexpr int kPoolBatches = 32;
// One epoch's batches of `indices`, each sorted longest first. shuffle=false (evaluation): all
// of them sorted by length and cut in that order. The order is a pure function of (seed, epoch).
std::vector<std::vector<std::int64_t>> length_batches(const SequenceSource& src,
                                                      std::vector<std::int64_t> indices, int batch,
                                                      std::uint64_t seed, std::int64_t epoch,
                                                      bool shuffle);

// Forward / backward of a batch split across threads.
class SequenceRunner {
 public:
  SequenceRunner(Model<float>& model, int threads);
  ~SequenceRunner();
  struct Stats {
    double loss_sum = 0;
    int correct = 0, count = 0;
  };
  // Fills grads (model.num_params()) with the gradient of the batch's mean loss.
  // train_batch is train_chunks(..., 0, n, n) with n = min(threads(), idx.size()).
  Stats train_batch(const SequenceSource& src, const std::vector<std::int64_t>& idx, float* grads,
                    std::uint64_t dropout_seed);
  // Part of a batch shared by several processes (data-parallel training): chunks [first, first +
  // count) of the batch split into `chunks` (<= idx.size()) contiguous chunks of about equal
  // token counts, count <= threads(). Fills grads with their gradients (of the whole batch's
  // mean loss) summed in chunk order, or leaves it untouched when count is 0; chunk k's dropout
  // seed is dropout_seed + k.
  Stats train_chunks(const SequenceSource& src, const std::vector<std::int64_t>& idx, float* grads,
                     std::uint64_t dropout_seed, int first, int count, int chunks);
  // predictions[k] and probs[k * C ...] for idx[k] (either may be null).
  Stats infer_batch(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                    std::int32_t* predictions, float* probs);
  // infer_batch on chunks [first, first + count) of `chunks`, as train_chunks: only the entries
  // of those chunks' samples are written.
  Stats infer_chunks(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                     std::int32_t* predictions, float* probs, int first, int count, int chunks);
  int threads() const { return threads_; }

 public:
  struct Chunk;  // one thread's share of a batch and its buffers

 private:
  Model<float>& model_;
  int threads_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

// Accuracy, loss and per-sample predictions/probabilities (in the source's order).
EvalResult evaluate_sequences(SequenceRunner& runner, const SequenceSource& src, int batch);

struct SeqTrainOptions {
  ModelSpec model;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  double clip_norm = 5;
  int batch = 64;
  int epochs = 5;
  std::int64_t steps = 0;       // stop after this many steps; 0 = all epochs
  std::int64_t validation = 0;  // training samples held out (seeded draw) to pick best.safetensors
  std::uint64_t seed = 1;
  int threads = 0;
  int eval_batch = 256;
  std::int64_t display_step = 50;
  std::string out_dir = "runs/latest";
  std::string config_text;  // written as config.toml
  Metadata metadata;        // added to the checkpoints (vocabulary, text settings, data)
  std::string title = "recur";
  std::function<bool(const TrainEvent&)> on_event;
  // Writes resume.safetensors (weights, optimizer state, position) at every epoch end, every
  // checkpoint_every steps (0 = epoch ends only) and when stopped by a signal
  // (install_stop_signals: the step ends, the checkpoint is written, StopRequested is thrown).
  bool resumable = false;
  std::int64_t checkpoint_every = 0;
  // Continue the run in out_dir from its resume.safetensors (needs `resumable`): the training
  // data (`data_name` in errors) must be the run's, its vocabulary "recur.vocab" of `metadata`
  // too.
  bool resume = false;
  std::string data_name = "--data";
  // Images keep MNIST's conventions, so a short-form run gives the weights the fixed-shape
  // trainer gave: the first `validation` samples are held out (not a seeded draw), each epoch is
  // one seeded shuffle cut into batches in order (Batcher; the samples all have one length), and
  // `train_limit` (> 0) keeps only the first N training samples after the hold-out.
  enum class Holdout { drawn, first };
  enum class Batching { by_length, shuffled };
  Holdout holdout = Holdout::drawn;
  Batching batching = Batching::by_length;
  std::int64_t train_limit = 0;
  double clip_value = 0;        // 0 = off; applied before clip_norm
  bool skip_nonfinite = false;  // skip (and count) steps whose loss or gradient is not finite
};

// The layer trainer's options from recur train's: optimizer, schedule, clipping, batch, epochs,
// steps, validation, seed, threads, evaluation batch, logging, run folder, config text, events,
// resume (resumable, resume, checkpoint_every) and skip_nonfinite. The caller adds the model,
// the metadata and what its data needs. Throws Error("--display-step") below 1.
SeqTrainOptions seq_train_options(const TrainOptions& o);

struct SeqTrainSummary {
  double test_accuracy = 0, test_loss = 0, val_accuracy = 0, val_loss = 0, best_val_accuracy = 0;
  double train_seconds = 0, wall_seconds = 0, samples_per_second = 0;
  std::int64_t steps = 0, samples = 0, skipped_steps = 0;
  bool tested = false;  // test_accuracy / test_loss hold a test pass
};

// Trains and writes the run folder: config.toml, metrics.jsonl, curves.png, last.safetensors,
// best.safetensors (the best validation accuracy; the last model without a validation split),
// resume.safetensors (when resumable), summary.json (last: a folder without it is an unfinished
// run); evaluates `test` at the end. A resumed run ends bit-identical to one never interrupted.
//
// Under mpirun (see dist/data_parallel.hpp) every rank builds the same batches; a batch's
// token-balanced chunks are spread over all the ranks' threads and the gradients summed in
// chunk order, so N ranks x 1 thread give the weights of 1 process x N threads bit for bit.
// Validation and test batches are split and reduced the same way. Rank 0 alone writes the run
// folder and prints (give the others a silent `out`).
SeqTrainSummary train_sequences(const SeqTrainOptions& options,
                                std::shared_ptr<const SequenceSource> train,
                                std::shared_ptr<const SequenceSource> test, std::ostream& out,
                                bool interactive);

}  // namespace recur
