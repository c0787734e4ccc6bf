// SequenceRunner: a batch's forward and backward split between threads (recur/fit.hpp).
#include <algorithm>
#include <numeric>

#include "core/thread_pool.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "train/train_parts.hpp"

namespace recur {

namespace {

// A training forward keeps every step's gates and cell states for backward, so its memory grows
// with padded rows x steps. A thread's share of a batch runs in pieces of at most about
// kTrainTokens (the rows sorted longest first, split evenly), each adding its gradients to the
// thread's sum: the same gradient up to the order of the sums. MNIST rows (at most 64 x 28 a
// thread at the recipes' batches) never split; a thread's 32 reviews of 500 tokens run as two
// pieces of 16, which halves the IMDb run's largest workspaces (bench/RESULTS.md, IMDb training
// memory). kTrainTokens is for models whose step outputs are at most kTrainWidth wide together
// (the IMDb recipe's embedding of 128 and BiLSTM-128: 384); a wider model's budget shrinks in
// proportion (training_piece_tokens), down to 8 rows of the batch's longest sequence and no
// further: below 8 rows the products run at two thirds of the speed (the wide IMDb recipe with
// pieces of 6 reviews; bench/RESULTS.md).
constexpr std::int64_t kTrainTokens = 8192;
constexpr std::int64_t kTrainWidth = 384;
constexpr std::int64_t kFastPieceRows = 8;

}  // namespace

struct SequenceRunner::Chunk {
  ModelWorkspace<float> ws;
  // A thread beyond the first: its gradient (chunk 0 writes the caller's). With an embedding,
  // the table's part is never touched (so never resident: a fresh block of this size is mapped
  // on demand) and its rows go to `rows` instead.
  std::unique_ptr<float[]> grads;
  RowGradients<float> rows;
  std::vector<float> x, dlogits, probs;
  std::vector<std::int32_t> ids, labels;
  std::vector<std::uint8_t> pixels;  // inference on a model that reads pixel bytes
  SeqInfo seq;
  Stats stats;
};

SequenceRunner::SequenceRunner(Model<float>& model, int threads)
    : model_(model), threads_(std::max(1, threads)), step_width_(step_output_width(model)) {
  // recur owns the threading: BLAS runs on one thread inside each of ours, so the two never
  // oversubscribe the cores and a product is split the same way whatever the machine.
  kernels::blas_single_threaded();
  pool_ = std::make_unique<ThreadPool>(threads_);
  for (int k = 0; k < threads_; ++k) chunks_.push_back(std::make_unique<Chunk>());
}

SequenceRunner::~SequenceRunner() = default;

void SequenceRunner::release_training_memory() {
  for (auto& c : chunks_) *c = Chunk{};
  table_view_ = {};
}

std::int64_t step_output_width(const Model<float>& model) {
  std::int64_t width = 0;
  for (std::size_t i = 0; i < model.num_layers(); ++i) {
    const ActShape& out = model.layer(i).output_shape();
    if (out.kind == ActKind::sequence && !out.ids)
      width += static_cast<std::int64_t>(out.per_row());
  }
  return width;
}

std::int64_t training_piece_tokens(std::int64_t width, std::int64_t longest) {
  if (width <= kTrainWidth) return kTrainTokens;
  const std::int64_t scaled = kTrainTokens * kTrainWidth / width;
  return std::max(scaled,
                  std::min(kTrainTokens, kFastPieceRows * std::max<std::int64_t>(1, longest)));
}

namespace {

constexpr int kInferBlock = 64;
// A block's activations (every layer's output of every step, and a recurrent layer's input
// projections of every step) grow with rows x steps x the step width. Up to kTrainWidth,
// kInferBlock rows; above it, twice a training piece's budget (training_piece_tokens: the wide
// IMDb recipe, 16 reviews of 500 tokens a block; 8 saved 28 MB more but ran 10% slower), so that
// a run's test pass needs about the memory of its training steps (which also keep gradients). Each
// row's result does not depend on the rows around it, so the block size changes no answer.
int infer_block_rows(std::int64_t width, std::int64_t longest, int remaining) {
  int rows = kInferBlock;
  if (width > kTrainWidth && longest > 0)
    rows = static_cast<int>(std::clamp<std::int64_t>(
        2 * training_piece_tokens(width, longest) / longest, kFastPieceRows, kInferBlock));
  return std::min(rows, remaining);
}

// The pieces of rows [begin, end) (sorted longest first): their starts, plus the end.
std::vector<int> training_pieces(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                                 int begin, int end, std::int64_t width) {
  const int rows = end - begin;
  const std::int64_t longest = rows > 0 ? src.length(idx[begin]) : 0;
  const std::int64_t padded = longest * rows;
  const std::int64_t budget = training_piece_tokens(width, longest);
  const int pieces = static_cast<int>(
      std::clamp<std::int64_t>((padded + budget - 1) / budget, 1, std::max(1, rows)));
  std::vector<int> starts;
  for (int p = 0; p < pieces; ++p) starts.push_back(begin + rows * p / pieces);
  starts.push_back(end);
  return starts;
}

// Splits a batch sorted longest first into `parts` contiguous chunks of about equal token
// counts (each at least one sample). Returns the chunk starts, plus the end.
std::vector<int> split_by_tokens(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                                 int parts) {
  const int n = static_cast<int>(idx.size());
  parts = std::max(1, std::min(parts, n));
  std::int64_t total = 0;
  for (std::int64_t i : idx) total += src.length(i);
  std::vector<int> starts{0};
  std::int64_t acc = 0;
  for (int b = 0; b < n && static_cast<int>(starts.size()) < parts; ++b) {
    acc += src.length(idx[b]);
    const std::int64_t target = total * static_cast<std::int64_t>(starts.size()) / parts;
    const int remaining_parts = parts - static_cast<int>(starts.size());
    if ((acc >= target && b + 1 < n) || n - (b + 1) == remaining_parts) starts.push_back(b + 1);
  }
  starts.push_back(n);
  return starts;
}

// split_by_tokens for chunks [first, first + count) of `chunks` run by a pool of `threads`.
std::vector<int> chunk_starts(const SequenceSource& src, const std::vector<std::int64_t>& idx,
                              int threads, int first, int count, int chunks) {
  RECUR_ASSERT(count >= 0 && count <= threads && first >= 0 && first + count <= chunks &&
               chunks <= static_cast<int>(idx.size()));
  return split_by_tokens(src, idx, chunks);
}

// Fills chunk c with samples idx[0, n) (sorted longest first): lengths, inputs, labels.
// Training chunks (step_seed given) read through fill_training, which augments images.
// For inference (no step_seed) on a model that reads pixel bytes, an image source gives them
// (`pixels`); everything else is filled as floats or ids.
ModelInput<float> load_chunk(SequenceRunner::Chunk& c, const SequenceSource& src,
                             const std::int64_t* idx, int n,
                             const std::uint64_t* step_seed = nullptr, bool pixels = false) {
  std::vector<int> lengths(static_cast<std::size_t>(n));
  for (int b = 0; b < n; ++b) lengths[b] = src.length(idx[b]);
  c.seq = SeqInfo::from_lengths(lengths);
  const std::size_t rows = static_cast<std::size_t>(c.seq.steps) * n;
  const bool ids = src.input_shape().ids;
  c.labels.resize(n);
  for (int b = 0; b < n; ++b) c.labels[b] = src.label(idx[b]);
  ModelInput<float> in;
  in.batch = n;
  in.seq = &c.seq;
  if (pixels && !step_seed && !ids) {
    c.pixels.resize(rows * src.input_shape().per_row());
    if (src.fill_pixels(idx, n, c.seq, c.pixels.data())) {
      in.pixels = c.pixels.data();
      return in;
    }
  }
  if (ids)
    c.ids.resize(rows);
  else
    c.x.resize(rows * src.input_shape().per_row());
  if (step_seed)
    src.fill_training(idx, n, c.seq, c.ids.data(), c.x.data(), *step_seed);
  else
    src.fill(idx, n, c.seq, c.ids.data(), c.x.data());
  in.ids = ids ? c.ids.data() : nullptr;
  in.x = ids ? nullptr : c.x.data();
  return in;
}

// At most column_split_rows() rows a thread (for now: any batch, once a layer's weights are large
// enough to split): the threads split the weights' columns instead of the rows.
bool splits_columns(const Model<float>& model, std::size_t rows, int threads) {
  return threads > 1 && static_cast<std::int64_t>(rows) <=
                            static_cast<std::int64_t>(model.column_split_rows()) * threads;
}

}  // namespace

SequenceRunner::Stats SequenceRunner::train_batch(const SequenceSource& src,
                                                  const std::vector<std::int64_t>& idx,
                                                  float* grads, std::uint64_t dropout_seed) {
  const int n = std::min(threads_, static_cast<int>(idx.size()));
  if (splits_columns(model_, idx.size(), n))
    return train_chunks(src, idx, grads, dropout_seed, 0, 1, 1, true);
  return train_chunks(src, idx, grads, dropout_seed, 0, n, n);
}

void SequenceRunner::prepare_model(PrepareFor use) {
  model_.prepare(use, pool_.get());
}

Optimizer::RangeRunner SequenceRunner::range_runner() {
  return pool_range_runner(*pool_);
}

SequenceRunner::Stats SequenceRunner::train_chunks(const SequenceSource& src,
                                                   const std::vector<std::int64_t>& idx,
                                                   float* grads, std::uint64_t dropout_seed,
                                                   int first, int count, int chunks,
                                                   bool split_columns) {
  table_view_ = {};
  if (count == 0) return {};
  const std::vector<int> starts = chunk_starts(src, idx, threads_, first, count, chunks);
  const int C = model_.spec().num_classes;
  const float scale = 1.f / static_cast<float>(idx.size());
  const std::size_t P = model_.num_params();
  // The embedding table's elements [hole_begin, hole_end) of a worker's gradient (and in rows
  // mode, of the caller's) stay untouched; the thread's rows go to its RowGradients instead.
  const ParamInfo* table = model_.embedding_table();
  const bool by_rows = table && table_rows_;
  const std::size_t hole_begin = table ? table->offset : 0;
  const std::size_t hole_end = table ? table->offset + table->size : 0;
  ThreadPool* columns = split_columns ? pool_.get() : nullptr;
  auto run_chunk = [&](int k) {
    Chunk& c = *chunks_[k];
    std::uint64_t stream = dropout_seed + static_cast<std::uint64_t>(first + k);
    Rng rng(splitmix64(stream));
    RowGradients<float>* rows = nullptr;
    float* g = grads;
    if (k == 0 && !by_rows) {
      std::fill(g, g + P, 0.f);
    } else {
      if (k > 0) {
        if (!c.grads) c.grads.reset(new float[P]);
        g = c.grads.get();
      }
      std::fill(g, g + hole_begin, 0.f);
      std::fill(g + hole_end, g + P, 0.f);
      if (table) {
        if (c.rows.width == 0)
          c.rows.reset(table->offset, static_cast<int>(table->shape[0]),
                       static_cast<int>(table->shape[1]));
        c.rows.clear();
        rows = &c.rows;
      }
    }
    c.stats = {};
    const std::vector<int> pieces =
        training_pieces(src, idx, starts[first + k], starts[first + k + 1], step_width_);
    for (std::size_t p = 0; p + 1 < pieces.size(); ++p) {
      const int begin = pieces[p], n = pieces[p + 1] - begin;
      const ModelInput<float> in = load_chunk(c, src, idx.data() + begin, n, &dropout_seed);
      const float* logits = model_.forward(in, c.ws, true, &rng, columns);
      c.dlogits.resize(static_cast<std::size_t>(n) * C);
      int correct = 0;
      c.stats.loss_sum +=
          softmax_cross_entropy<float>(logits, c.labels.data(), n, C, scale, c.dlogits.data(),
                                       &correct, label_smoothing_) /
          scale;
      c.stats.correct += correct;
      c.stats.count += n;
      model_.backward(in, c.ws, c.dlogits.data(), g, rows);
    }
  };
  if (split_columns) {
    for (int k = 0; k < count; ++k) run_chunk(k);
  } else {
    pool_->run(count, run_chunk);
  }
  // The threads' gradients summed into chunk 0's, each thread a slice of the parameters (every
  // element summed in chunk order, as one thread would). A worker's embedding rows are added
  // where they fall in the slice; the table's other elements had nothing to add (x + 0 = x).
  if (count > 1) {
    pool_->run(count, [&](int k) {
      const std::size_t begin = P * k / count, end = P * (k + 1) / count;
      for (int c = 1; c < count; ++c) {
        const float* g = chunks_[c]->grads.get();
        for (std::size_t j = begin; j < std::min(end, hole_begin); ++j) grads[j] += g[j];
        for (std::size_t j = std::max(begin, hole_end); j < end; ++j) grads[j] += g[j];
        if (!table || by_rows) continue;
        const RowGradients<float>& rows = chunks_[c]->rows;
        const std::size_t E = static_cast<std::size_t>(rows.width);
        for (std::size_t s = 0; s < rows.rows.size(); ++s) {
          const std::size_t at = hole_begin + static_cast<std::size_t>(rows.rows[s]) * E;
          const std::size_t lo = std::max(begin, at), hi = std::min(end, at + E);
          const float* v = rows.values.data() + s * E;
          for (std::size_t j = lo; j < hi; ++j) grads[j] += v[j - at];
        }
      }
    });
  }
  if (by_rows) {
    // Rows mode: the workers' rows added into the first thread's, in thread order (a row no
    // earlier thread touched starts from zero, as the dense gradient's element would).
    RowGradients<float>& sum = chunks_[0]->rows;
    const std::size_t E = static_cast<std::size_t>(sum.width);
    for (int c = 1; c < count; ++c) {
      const RowGradients<float>& rows = chunks_[c]->rows;
      for (std::size_t s = 0; s < rows.rows.size(); ++s) {
        float* to = sum.row(rows.rows[s]);
        const float* v = rows.values.data() + s * E;
        for (std::size_t e = 0; e < E; ++e) to[e] += v[e];
      }
    }
    table_view_ = TableRows{sum.offset, sum.vocab, sum.width, sum.slot.data(), sum.values.data()};
  }
  Stats total;
  for (int k = 0; k < count; ++k) {
    total.loss_sum += chunks_[k]->stats.loss_sum;
    total.correct += chunks_[k]->stats.correct;
    total.count += chunks_[k]->stats.count;
  }
  return total;
}

SequenceRunner::Stats SequenceRunner::infer_batch(const SequenceSource& src,
                                                  const std::vector<std::int64_t>& idx,
                                                  std::int32_t* predictions, float* probs) {
  const int n = std::min(threads_, static_cast<int>(idx.size()));
  if (splits_columns(model_, idx.size(), n))
    return infer_chunks(src, idx, predictions, probs, 0, 1, 1, true);
  return infer_chunks(src, idx, predictions, probs, 0, n, n);
}

SequenceRunner::Stats SequenceRunner::infer_chunks(const SequenceSource& src,
                                                   const std::vector<std::int64_t>& idx,
                                                   std::int32_t* predictions, float* probs,
                                                   int first, int count, int chunks,
                                                   bool split_columns) {
  table_view_ = {};
  if (count == 0) return {};
  const std::vector<int> starts = chunk_starts(src, idx, threads_, first, count, chunks);
  const int C = model_.spec().num_classes;
  ThreadPool* columns = split_columns ? pool_.get() : nullptr;
  auto run_chunk = [&](int k) {
    Chunk& c = *chunks_[k];
    c.stats = {};
    std::vector<float> scratch(static_cast<std::size_t>(C));  // probabilities nobody asked for
    // Blocks of at most kInferBlock samples keep a block's activations in cache (a whole
    // 500-sequence chunk at once ran at two thirds of the speed on MNIST rows).
    for (int begin = starts[first + k], n = 0; begin < starts[first + k + 1]; begin += n) {
      n = infer_block_rows(step_width_, src.length(idx[begin]), starts[first + k + 1] - begin);
      const ModelInput<float> in =
          load_chunk(c, src, idx.data() + begin, n, nullptr, model_.reads_pixels());
      const float* logits = model_.forward(in, c.ws, false, nullptr, columns);
      // The loss from the probabilities' own sum: the bits softmax_cross_entropy gives (its
      // rows' losses summed in order, times a scale of 1), without computing the sum twice.
      double loss = 0;
      for (int b = 0; b < n; ++b) {
        const float* z = logits + static_cast<std::size_t>(b) * C;
        float* p = probs ? probs + static_cast<std::size_t>(begin + b) * C : scratch.data();
        double log_sum = 0;
        const int best = softmax_probabilities(z, C, p, &log_sum);
        const int label = c.labels[static_cast<std::size_t>(b)];
        loss += log_sum - static_cast<double>(z[label]);
        if (best == label) ++c.stats.correct;
        if (predictions) predictions[begin + b] = best;
      }
      c.stats.loss_sum += loss;
      c.stats.count += n;
    }
  };
  if (split_columns) {
    for (int k = 0; k < count; ++k) run_chunk(k);
  } else {
    pool_->run(count, run_chunk);
  }
  Stats total;
  for (int k = 0; k < count; ++k) {
    total.loss_sum += chunks_[k]->stats.loss_sum;
    total.correct += chunks_[k]->stats.correct;
    total.count += chunks_[k]->stats.count;
  }
  return total;
}

EvalResult evaluate_sequences(SequenceRunner& runner, const SequenceSource& src, int batch) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(src.size()));
  std::iota(all.begin(), all.end(), 0);
  const int C = src.num_classes();
  EvalResult r;
  r.count = src.size();
  r.predictions.assign(all.size(), 0);
  r.probabilities.assign(all.size() * C, 0.f);
  std::vector<std::int32_t> pred;
  std::vector<float> probs;
  double loss = 0;
  for (const auto& b : length_batches(src, all, batch, 0, 0, false)) {
    pred.resize(b.size());
    probs.resize(b.size() * C);
    const auto s = runner.infer_batch(src, b, pred.data(), probs.data());
    loss += s.loss_sum;
    r.correct += s.correct;
    for (std::size_t k = 0; k < b.size(); ++k) {
      const auto i = static_cast<std::size_t>(b[k]);
      r.predictions[i] = pred[k];
      std::copy(probs.begin() + static_cast<std::ptrdiff_t>(k * C),
                probs.begin() + static_cast<std::ptrdiff_t>((k + 1) * C),
                r.probabilities.begin() + static_cast<std::ptrdiff_t>(i * C));
    }
  }
  r.loss = r.count ? loss / static_cast<double>(r.count) : 0.0;
  return r;
}

}  // namespace recur
