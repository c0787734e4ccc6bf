// Training and evaluation of models built from layers (recur/layers.hpp) on any batch source
// (recur/sources.hpp). A batch is split between threads into contiguous chunks of about equal token
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
#include "recur/sources.hpp"
#include "recur/train.hpp"

namespace recur {

class ThreadPool;

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
  // train_batch is train_chunks(..., 0, n, n) with n = min(threads(), idx.size()), or, for a
  // model whose layers split their columns at this many rows a thread (Model::column_split_rows),
  // train_chunks(..., 0, 1, 1, true): one chunk, every thread on each layer's columns, the bits of
  // a one-thread run.
  Stats train_batch(const SequenceSource& src, const std::vector<std::int64_t>& idx, float* grads,
                    std::uint64_t dropout_seed);
  // Part of a batch shared by several processes (data-parallel training): chunks [first, first +
  // count) of the batch split into `chunks` (<= idx.size()) contiguous chunks of about equal
  // token counts, count <= threads(). Fills grads with their gradients (of the whole batch's
  // mean loss) summed in chunk order, or leaves it untouched when count is 0; chunk k's dropout
  // seed is dropout_seed + k.
  // `split_columns`: as infer_chunks'.
  Stats train_chunks(const SequenceSource& src, const std::vector<std::int64_t>& idx, float* grads,
                     std::uint64_t dropout_seed, int first, int count, int chunks,
                     bool split_columns = false);
  // predictions[k] and probs[k * C ...] for idx[k] (either may be null).
  Stats infer_batch(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                    std::int32_t* predictions, float* probs);
  // infer_batch on chunks [first, first + count) of `chunks`, as train_chunks: only the entries
  // of those chunks' samples are written. `split_columns`: the chunks run one after the other on
  // the calling thread, every thread splitting the columns of the layers that say so
  // (Model::column_split_rows); infer_batch does this for batches of at most that many rows a
  // thread. The same bits either way.
  Stats infer_chunks(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                     std::int32_t* predictions, float* probs, int first, int count, int chunks,
                     bool split_columns = false);
  int threads() const { return threads_; }
  // model.prepare(use) with this runner's threads sharing the packing (the same bytes): what a
  // training step does before train_batch.
  void prepare_model(PrepareFor use);
  // Runs fn(begin, end) on threads() contiguous ranges of [0, n) at once (fewer when n is
  // smaller) and returns when all are done: the optimizer's update between batches on these
  // threads (Optimizer::set_range_runner). Valid while this runner lives.
  Optimizer::RangeRunner range_runner();
  // Frees what training steps keep between batches (every thread's activations sized for
  // training, gradient copies and embedding rows): after the last step, before a test pass that
  // needs less. The next call of any kind allocates again what it needs.
  void release_training_memory();
  // With an embedding table (Model::embedding_table), rows mode: train calls leave the table's
  // part of `grads` alone (never written or read, so never resident) and give the table's
  // gradient by rows instead, table_gradient(): the rows the batch's words touched, summed in
  // the same order as the dense gradient's elements (bit for bit). Off (the default): the dense
  // gradient holds the whole table's part.
  void set_table_rows(bool on) { table_rows_ = on; }
  // After a train call in rows mode: the table's gradient (TableRows; valid until the next call
  // of any kind); null otherwise.
  const TableRows* table_gradient() const { return table_view_.slot ? &table_view_ : nullptr; }
  // Label smoothing of train_batch / train_chunks' loss (softmax_cross_entropy); 0 = off.
  void set_label_smoothing(double eps) { label_smoothing_ = eps; }

 public:
  struct Chunk;  // one thread's share of a batch and its buffers

 private:
  Model<float>& model_;
  int threads_;
  std::int64_t step_width_;  // step_output_width(model_)
  double label_smoothing_ = 0;
  bool table_rows_ = false;
  TableRows table_view_;  // table_gradient(): slot null when there is none
  std::unique_ptr<ThreadPool> pool_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

// The summed widths of a model's per-step outputs (every layer's output that is a sequence of
// features, up to the pooling): what a padded token costs a training step in activations and
// their gradients, in floats, besides the recurrent layers' gates.
std::int64_t step_output_width(const Model<float>& model);
// Padded rows x steps a training piece may hold (SequenceRunner runs a thread's share of a batch
// in pieces of at most about this many) for a model of that step width whose batch's longest
// sequence has `longest` steps: 8,192 up to the IMDb recipe's width (384), less in proportion
// above it, but not below 8 rows of `longest` steps (nor above 8,192 for that).
std::int64_t training_piece_tokens(std::int64_t width, std::int64_t longest);

// Accuracy, loss and per-sample predictions/probabilities (in the source's order).
EvalResult evaluate_sequences(SequenceRunner& runner, const SequenceSource& src, int batch);

// What a run trains beyond its options (TrainOptions): the model resolved against its data, what
// the checkpoints keep, and how the data is held out and batched.
struct FitPlan {
  ModelSpec model;
  Metadata metadata;  // added to the checkpoints (vocabulary, text settings, data)
  std::string title = "recur";
  std::string config_text;           // written as config.toml
  std::string data_name = "--data";  // names the training data in errors (resume checks)
  // Writes resume.safetensors (weights, optimizer state, position) at every epoch end, every
  // checkpoint_every steps (0 = epoch ends only) and when stopped by a signal
  // (install_stop_signals: the step ends, the checkpoint is written, StopRequested is thrown).
  // options.resume continues the run in out_dir from it: the training data must be the run's,
  // its vocabulary "recur.vocab" of `metadata` too.
  bool resumable = true;
  // Images keep MNIST's conventions, so a short-form run gives the weights the fixed-shape
  // trainer gave: the first `validation` samples are held out (not a seeded draw), each epoch is
  // one seeded shuffle cut into batches in order (Batcher; the samples all have one length), and
  // options.train_limit (> 0) keeps only the first N training samples after the hold-out. Text
  // and arrays: a seeded draw held out, batches by length.
  enum class Holdout { drawn, first };
  enum class Batching { by_length, shuffled };
  Holdout holdout = Holdout::drawn;
  Batching batching = Batching::by_length;
};

// --label-smoothing in [0, 1); --patience >= 0, and only with a validation split (`validation`
// samples held out). Error naming the flag otherwise. Both trainers' option checks call it.
void check_training_methods(double label_smoothing, std::int64_t patience, std::int64_t validation);

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
TrainSummary fit(const TrainOptions& options, const FitPlan& plan,
                 std::shared_ptr<const SequenceSource> train,
                 std::shared_ptr<const SequenceSource> test, std::ostream& out, bool interactive);

}  // namespace recur
