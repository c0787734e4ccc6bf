// Training and evaluation of models built from layers on sequences with lengths (see
// recur/seq_train.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <ostream>
#include <type_traits>

#include "core/json_util.hpp"
#include "core/thread_pool.hpp"
#include "dist/comm.hpp"
#include "dist/data_parallel.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/seq_train.hpp"
#include "train/resume_file.hpp"
#include "train/run_dir.hpp"

namespace recur {

// ---- sources ----

TokenSequences::TokenSequences(const TextSet& texts, const Vocabulary& vocab, int max_len,
                               Truncate keep)
    : classes_(texts.num_classes) {
  RECUR_CHECK(max_len >= 1, "--max-len", "must be at least 1, got " + std::to_string(max_len));
  offsets_.reserve(texts.texts.size() + 1);
  offsets_.push_back(0);
  labels_ = texts.labels;
  for (const std::string& text : texts.texts) {
    const std::vector<std::int32_t> ids = vocab.encode(text, max_len, keep);
    for (std::int32_t id : ids) unknown_ += id == Vocabulary::kUnk;
    tokens_.insert(tokens_.end(), ids.begin(), ids.end());
    offsets_.push_back(static_cast<std::int64_t>(tokens_.size()));
    max_length_ = std::max(max_length_, static_cast<int>(ids.size()));
  }
}

ActShape TokenSequences::input_shape() const {
  ActShape s{ActKind::sequence, 0};
  s.ids = true;
  return s;
}

void TokenSequences::fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                          float*) const {
  std::fill(ids, ids + static_cast<std::size_t>(seq.steps) * n, Vocabulary::kPad);
  for (int b = 0; b < n; ++b) {
    const std::int32_t* tok = tokens(idx[b]);
    const int len = length(idx[b]);
    for (int t = 0; t < len; ++t) ids[static_cast<std::size_t>(t) * n + b] = tok[t];
  }
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

// ---- the runner ----

struct SequenceRunner::Chunk {
  ModelWorkspace<float> ws;
  std::vector<float> grads, x, dlogits, probs;
  std::vector<std::int32_t> ids, labels;
  SeqInfo seq;
  Stats stats;
};

SequenceRunner::SequenceRunner(Model<float>& model, int threads)
    : model_(model), threads_(std::max(1, threads)) {
  // recur owns the threading: BLAS runs on one thread inside each of ours, so the two never
  // oversubscribe the cores and a product is split the same way whatever the machine.
  kernels::blas_single_threaded();
  pool_ = std::make_unique<ThreadPool>(threads_);
  for (int k = 0; k < threads_; ++k) chunks_.push_back(std::make_unique<Chunk>());
}

SequenceRunner::~SequenceRunner() = default;

namespace {

constexpr int kInferBlock = 64;

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

// Fills chunk c with samples idx[0, n) (sorted longest first): lengths, inputs, labels.
ModelInput<float> load_chunk(SequenceRunner::Chunk& c, const SequenceSource& src,
                             const std::int64_t* idx, int n) {
  std::vector<int> lengths(static_cast<std::size_t>(n));
  for (int b = 0; b < n; ++b) lengths[b] = src.length(idx[b]);
  c.seq = SeqInfo::from_lengths(lengths);
  const std::size_t rows = static_cast<std::size_t>(c.seq.steps) * n;
  const bool ids = src.input_shape().ids;
  if (ids)
    c.ids.resize(rows);
  else
    c.x.resize(rows * src.input_shape().per_row());
  src.fill(idx, n, c.seq, c.ids.data(), c.x.data());
  c.labels.resize(n);
  for (int b = 0; b < n; ++b) c.labels[b] = src.label(idx[b]);
  ModelInput<float> in;
  in.batch = n;
  in.seq = &c.seq;
  in.ids = ids ? c.ids.data() : nullptr;
  in.x = ids ? nullptr : c.x.data();
  return in;
}

}  // namespace

SequenceRunner::Stats SequenceRunner::train_batch(const SequenceSource& src,
                                                  const std::vector<std::int64_t>& idx,
                                                  float* grads, std::uint64_t dropout_seed) {
  const int n = std::min(threads_, static_cast<int>(idx.size()));
  return train_chunks(src, idx, grads, dropout_seed, 0, n, n);
}

SequenceRunner::Stats SequenceRunner::train_chunks(const SequenceSource& src,
                                                   const std::vector<std::int64_t>& idx,
                                                   float* grads, std::uint64_t dropout_seed,
                                                   int first, int count, int chunks) {
  RECUR_ASSERT(count >= 0 && count <= threads_ && first >= 0 && first + count <= chunks &&
               chunks <= static_cast<int>(idx.size()));
  if (count == 0) return {};
  const std::vector<int> starts = split_by_tokens(src, idx, chunks);
  const int C = model_.spec().num_classes;
  const float scale = 1.f / static_cast<float>(idx.size());
  const std::size_t P = model_.num_params();
  pool_->run(count, [&](int k) {
    Chunk& c = *chunks_[k];
    const int begin = starts[first + k], n = starts[first + k + 1] - begin;
    const ModelInput<float> in = load_chunk(c, src, idx.data() + begin, n);
    std::uint64_t stream = dropout_seed + static_cast<std::uint64_t>(first + k);
    Rng rng(splitmix64(stream));
    const float* logits = model_.forward(in, c.ws, true, &rng);
    c.dlogits.resize(static_cast<std::size_t>(n) * C);
    int correct = 0;
    c.stats.loss_sum = softmax_cross_entropy<float>(logits, c.labels.data(), n, C, scale,
                                                    c.dlogits.data(), &correct) /
                       scale;
    c.stats.correct = correct;
    c.stats.count = n;
    float* g = k == 0 ? grads : (c.grads.resize(P), c.grads.data());
    std::fill(g, g + P, 0.f);
    model_.backward(in, c.ws, c.dlogits.data(), g);
  });
  Stats total;
  for (int k = 0; k < count; ++k) {
    if (k > 0) {
      const float* g = chunks_[k]->grads.data();
      for (std::size_t j = 0; j < P; ++j) grads[j] += g[j];
    }
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
  return infer_chunks(src, idx, predictions, probs, 0, n, n);
}

SequenceRunner::Stats SequenceRunner::infer_chunks(const SequenceSource& src,
                                                   const std::vector<std::int64_t>& idx,
                                                   std::int32_t* predictions, float* probs,
                                                   int first, int count, int chunks) {
  RECUR_ASSERT(count >= 0 && count <= threads_ && first >= 0 && first + count <= chunks &&
               chunks <= static_cast<int>(idx.size()));
  if (count == 0) return {};
  const std::vector<int> starts = split_by_tokens(src, idx, chunks);
  const int C = model_.spec().num_classes;
  pool_->run(count, [&](int k) {
    Chunk& c = *chunks_[k];
    c.stats = {};
    // Blocks of at most kInferBlock samples keep a block's activations in cache (a whole
    // 500-sequence chunk at once ran at two thirds of the speed on MNIST rows).
    for (int begin = starts[first + k]; begin < starts[first + k + 1]; begin += kInferBlock) {
      const int n = std::min(kInferBlock, starts[first + k + 1] - begin);
      const ModelInput<float> in = load_chunk(c, src, idx.data() + begin, n);
      const float* logits = model_.forward(in, c.ws, false);
      int correct = 0;
      c.stats.loss_sum +=
          softmax_cross_entropy<float>(logits, c.labels.data(), n, C, 1.f, nullptr, &correct);
      c.stats.correct += correct;
      c.stats.count += n;
      for (int b = 0; b < n; ++b) {
        const float* z = logits + static_cast<std::size_t>(b) * C;
        int best = 0;
        for (int j = 1; j < C; ++j)
          if (z[j] > z[best]) best = j;
        if (predictions) predictions[begin + b] = best;
        if (probs) {
          double sum = 0;
          for (int j = 0; j < C; ++j) sum += std::exp(static_cast<double>(z[j] - z[best]));
          for (int j = 0; j < C; ++j)
            probs[static_cast<std::size_t>(begin + b) * C + j] =
                static_cast<float>(std::exp(static_cast<double>(z[j] - z[best])) / sum);
        }
      }
    }
  });
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

// ---- the training loop ----

namespace {

// A training subset's view of a source: sample k is the source's sample keep[k].
class Subset final : public SequenceSource {
 public:
  Subset(std::shared_ptr<const SequenceSource> src, std::vector<std::int64_t> keep)
      : src_(std::move(src)), keep_(std::move(keep)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(keep_.size()); }
  int length(std::int64_t i) const override { return src_->length(at(i)); }
  std::int32_t label(std::int64_t i) const override { return src_->label(at(i)); }
  int num_classes() const override { return src_->num_classes(); }
  ActShape input_shape() const override { return src_->input_shape(); }
  int max_length() const override { return src_->max_length(); }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override {
    std::vector<std::int64_t> mapped(static_cast<std::size_t>(n));
    for (int b = 0; b < n; ++b) mapped[b] = at(idx[b]);
    src_->fill(mapped.data(), n, seq, ids, x);
  }

 private:
  std::int64_t at(std::int64_t i) const { return keep_[static_cast<std::size_t>(i)]; }
  std::shared_ptr<const SequenceSource> src_;
  std::vector<std::int64_t> keep_;
};

// FNV-1a over 32-bit words: what data_fingerprint and run_fingerprint mix.
class Fingerprint {
 public:
  void add(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t i = 0;
    for (; i + 4 <= bytes; i += 4) {
      std::uint32_t w;
      std::memcpy(&w, p + i, 4);
      mix(w);
    }
    for (; i < bytes; ++i) mix(p[i]);
  }
  template <typename T>
  void add(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    add(&value, sizeof(value));
  }
  void add(const std::string& text) { add(text.data(), text.size()); }
  std::uint64_t value() const { return h_; }

 private:
  void mix(std::uint32_t w) { h_ = (h_ ^ w) * 1099511628211ull; }
  std::uint64_t h_ = 1469598103934665603ull;
};

// What a source holds: every sample's length, label and inputs, in order.
std::uint64_t data_fingerprint(const SequenceSource& src) {
  Fingerprint f;
  f.add(src.size());
  f.add(src.num_classes());
  const ActShape shape = src.input_shape();
  std::vector<std::int32_t> ids;
  std::vector<float> x;
  for (std::int64_t i = 0; i < src.size(); ++i) {
    const int length = src.length(i);
    const SeqInfo seq = SeqInfo::from_lengths({length});
    const std::size_t rows = static_cast<std::size_t>(seq.steps);
    if (shape.ids)
      ids.resize(rows);
    else
      x.resize(rows * shape.per_row());
    src.fill(&i, 1, seq, ids.data(), x.data());
    f.add(length);
    f.add(src.label(i));
    if (shape.ids)
      f.add(ids.data(), ids.size() * sizeof(std::int32_t));
    else
      f.add(x.data(), x.size() * sizeof(float));
  }
  return f.value();
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:016x}", v);
}

// Where a run stands: enough to continue it exactly (the metrics window included, so the first
// log point after a resume is the one the uninterrupted run logs). Broadcast as bytes.
struct SeqPosition {
  std::int64_t step = 0, epoch = 0, cursor = 0, samples = 0, skipped = 0;
  double best = -1, val_accuracy = 0, val_loss = 0, train_seconds = 0;
  double win_loss = 0, win_correct = 0, win_count = 0, win_seconds = 0;
};
static_assert(std::is_trivially_copyable_v<SeqPosition>);

nlohmann::json position_json(const SeqPosition& p) {
  return {{"step", p.step},
          {"epoch", p.epoch},
          {"cursor", p.cursor},
          {"samples", p.samples},
          {"skipped", p.skipped},
          {"best", p.best},
          {"val_accuracy", p.val_accuracy},
          {"val_loss", p.val_loss},
          {"window_seconds", p.win_seconds},
          {"train_seconds", p.train_seconds},
          {"window_loss", p.win_loss},
          {"window_correct", p.win_correct},
          {"window_count", p.win_count}};
}

SeqPosition position_from_json(const nlohmann::json& j, const std::string& path) {
  SeqPosition p;
  try {
    p.step = json_integer<std::int64_t>(j, "step", path);
    p.epoch = json_integer<std::int64_t>(j, "epoch", path);
    p.cursor = json_integer<std::int64_t>(j, "cursor", path);
    p.samples = json_integer<std::int64_t>(j, "samples", path);
    p.best = json_number(j, "best", path);
    p.val_accuracy = json_number(j, "val_accuracy", path);
    p.train_seconds = json_number(j, "train_seconds", path);
    p.win_loss = json_number(j, "window_loss", path);
    p.win_correct = json_number(j, "window_correct", path);
    p.win_count = json_number(j, "window_count", path);
    // Written since the image runs moved to this trainer; absent from older text runs.
    if (j.contains("skipped")) p.skipped = json_integer<std::int64_t>(j, "skipped", path);
    if (j.contains("val_loss")) p.val_loss = json_number(j, "val_loss", path);
    if (j.contains("window_seconds")) p.win_seconds = json_number(j, "window_seconds", path);
  } catch (const nlohmann::json::exception&) {
    throw Error(path, "the run position in the metadata is unreadable");
  }
  if (p.step < 0 || p.epoch < 0 || p.cursor < 0)
    throw Error(path, "the run position in the metadata is out of range");
  return p;
}

// The training and evaluation batches of one process, or of every rank of an MPI job (see
// train_sequences).
class SequenceParallel {
 public:
  SequenceParallel(SequenceRunner& runner, std::size_t params, std::uint64_t fingerprint)
      : runner_(runner), params_(params), group_(runner.threads(), fingerprint) {}
  const dist::ThreadGroup& group() const { return group_; }

  struct Step {
    SequenceRunner::Stats stats;  // of the whole batch, the same on every rank
    int stop_signal = 0;          // the first signal caught, in rank order
  };
  Step train_batch(const SequenceSource& src, const std::vector<std::int64_t>& idx, float* grads,
                   std::uint64_t dropout_seed, int local_stop_signal) {
    if (!group_.distributed())
      return {runner_.train_batch(src, idx, grads, dropout_seed), local_stop_signal};
    const auto share = group_.share_of(static_cast<int>(idx.size()));
    const auto part =
        runner_.train_chunks(src, idx, grads, dropout_seed, share.first, share.count, share.chunks);
    const auto sum = group_.combine(share, grads, params_,
                                    {part.loss_sum, part.correct, part.count, local_stop_signal});
    return {{sum.loss_sum, static_cast<int>(sum.correct), static_cast<int>(sum.count)},
            sum.stop_signal};
  }

  // Accuracy and loss over src (no predictions when distributed).
  EvalResult evaluate(const SequenceSource& src, int batch) {
    if (!group_.distributed()) return evaluate_sequences(runner_, src, batch);
    std::vector<std::int64_t> all(static_cast<std::size_t>(src.size()));
    std::iota(all.begin(), all.end(), 0);
    EvalResult r;
    r.count = src.size();
    double loss = 0;
    for (const auto& b : length_batches(src, all, batch, 0, 0, false)) {
      const auto share = group_.share_of(static_cast<int>(b.size()));
      const auto part =
          runner_.infer_chunks(src, b, nullptr, nullptr, share.first, share.count, share.chunks);
      const auto sum =
          group_.combine(share, nullptr, 0, {part.loss_sum, part.correct, part.count, 0});
      loss += sum.loss_sum;
      r.correct += sum.correct;
    }
    r.loss = r.count ? loss / static_cast<double>(r.count) : 0.0;
    return r;
  }

 private:
  SequenceRunner& runner_;
  std::size_t params_;
  dist::ThreadGroup group_;
};

}  // namespace

namespace {

// The training samples and the held-out validation samples of a source (see SeqTrainOptions).
void split_source(const SeqTrainOptions& opt, const std::shared_ptr<const SequenceSource>& all,
                  std::shared_ptr<const SequenceSource>& train,
                  std::shared_ptr<const SequenceSource>& val) {
  train = all;
  if (opt.validation == 0 && opt.train_limit == 0) return;
  std::vector<std::int64_t> order(static_cast<std::size_t>(all->size()));
  std::iota(order.begin(), order.end(), 0);
  if (opt.holdout == SeqTrainOptions::Holdout::drawn) {
    Rng rng(opt.seed ^ 0x76616c6964ull);
    for (std::size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng.below(k)]);
  }
  const auto cut = order.begin() + static_cast<std::ptrdiff_t>(opt.validation);
  std::vector<std::int64_t> v(order.begin(), cut), t(cut, order.end());
  std::sort(v.begin(), v.end());
  std::sort(t.begin(), t.end());
  if (opt.train_limit > 0 && static_cast<std::int64_t>(t.size()) > opt.train_limit)
    t.resize(static_cast<std::size_t>(opt.train_limit));
  if (!v.empty()) val = std::make_shared<Subset>(all, std::move(v));
  train = std::make_shared<Subset>(all, std::move(t));
}

// One epoch's batches of samples [0, n) of the training source.
std::vector<std::vector<std::int64_t>> epoch_batches(const SeqTrainOptions& opt,
                                                     const SequenceSource& train,
                                                     const std::vector<std::int64_t>& all,
                                                     std::int64_t epoch) {
  if (opt.batching == SeqTrainOptions::Batching::by_length)
    return length_batches(train, all, opt.batch, opt.seed, epoch, true);
  Batcher batcher(all, opt.batch, opt.seed);
  batcher.seek(epoch, 0);
  std::vector<std::vector<std::int64_t>> batches;
  std::vector<std::int64_t> one;
  while (batcher.next(one)) batches.push_back(one);
  return batches;
}

bool all_finite(const std::vector<float>& v) {
  float acc = 0;
  for (float x : v) acc += x * 0.0f;  // NaN or inf anywhere makes the sum NaN
  return acc == 0.0f;
}

}  // namespace

SeqTrainOptions seq_train_options(const TrainOptions& o) {
  RECUR_CHECK(o.display_step >= 1, "--display-step", "must be at least 1");
  SeqTrainOptions so;
  so.optimizer = o.optimizer;
  so.schedule = o.schedule;
  so.clip_norm = o.clip_norm;
  so.clip_value = o.clip_value;
  so.skip_nonfinite = o.skip_nonfinite;
  so.batch = o.batch;
  so.epochs = o.epochs;
  so.steps = o.steps;
  so.validation = o.validation;
  so.seed = o.seed;
  so.threads = o.threads;
  so.eval_batch = o.eval_batch;
  so.display_step = o.display_step;
  so.out_dir = o.out_dir;
  so.config_text = o.config_text;
  so.on_event = o.on_event;
  so.resumable = true;
  so.resume = o.resume;
  so.checkpoint_every = o.checkpoint_every;
  return so;
}

SeqTrainSummary train_sequences(const SeqTrainOptions& opt,
                                std::shared_ptr<const SequenceSource> train_all,
                                std::shared_ptr<const SequenceSource> test, std::ostream& out,
                                bool interactive) {
  const auto t0 = Clock::now();
  RECUR_CHECK(opt.batch >= 1, "--batch", "must be at least 1, got " + std::to_string(opt.batch));
  RECUR_CHECK(opt.epochs >= 1 || opt.steps > 0, "--epochs", "give a positive --epochs or --steps");
  RECUR_CHECK(opt.epochs >= 0, "--epochs", "must not be negative");
  RECUR_CHECK(opt.steps >= 0, "--steps", "must not be negative");
  RECUR_CHECK(opt.eval_batch >= 1 && opt.eval_batch <= kMaxEvalBatch, "--eval-batch",
              "must be in [1, " + std::to_string(kMaxEvalBatch) + "]");
  RECUR_CHECK(opt.validation >= 0 && opt.validation < train_all->size(), "--val",
              "must be in [0, " + std::to_string(train_all->size()) + ")");
  RECUR_CHECK(opt.checkpoint_every >= 0, "--checkpoint-every", "must not be negative");
  RECUR_CHECK(opt.train_limit >= 0, "--train-limit", "must not be negative");
  RECUR_CHECK(opt.clip_norm >= 0, "--clip-norm", "must not be negative");
  RECUR_CHECK(opt.clip_value >= 0, "--clip-value", "must not be negative");
  RECUR_ASSERT(opt.resumable || !opt.resume);
  check_optimizer_config(opt.optimizer);
  const int threads = resolve_threads(opt.threads);

  std::shared_ptr<const SequenceSource> train, val;
  split_source(opt, train_all, train, val);
  if (opt.batching == SeqTrainOptions::Batching::shuffled)
    RECUR_CHECK(opt.batch <= train->size(), "--batch",
                fmt::format("{} is more than the {} training samples (at most {})", opt.batch,
                            train->size(), train->size()));

  Model<float> model(opt.model);
  model.init(opt.seed);

  std::vector<std::int64_t> all(static_cast<std::size_t>(train->size()));
  std::iota(all.begin(), all.end(), 0);
  const std::int64_t per_epoch =
      static_cast<std::int64_t>(epoch_batches(opt, *train, all, 0).size());
  std::int64_t total_steps = opt.epochs > 0 ? per_epoch * opt.epochs : opt.steps;
  if (opt.steps > 0) total_steps = std::min(total_steps, opt.steps);
  ScheduleConfig schedule = opt.schedule;
  if (schedule.total_steps <= 0) schedule.total_steps = total_steps;
  check_schedule_config(schedule);

  Optimizer optimizer(opt.optimizer, model.num_params());
  SequenceRunner runner(model, threads);
  // What a resume checkpoint and every rank of an MPI job must agree on.
  const bool distributed = dist::size() > 1;
  const std::uint64_t data_print = opt.resumable || distributed ? data_fingerprint(*train_all) : 0;
  std::uint64_t run_print = 0;
  if (distributed) {
    Fingerprint f;
    f.add(to_json(model.spec()));
    f.add(data_print);
    f.add(test ? data_fingerprint(*test) : 0);
    for (std::int64_t v : {static_cast<std::int64_t>(opt.batch), total_steps, opt.validation,
                           static_cast<std::int64_t>(opt.eval_batch), opt.train_limit})
      f.add(v);
    f.add(opt.seed);
    f.add(opt.optimizer.lr);
    f.add(opt.clip_norm);
    f.add(opt.clip_value);
    f.add(static_cast<int>(opt.holdout));
    f.add(static_cast<int>(opt.batching));
    run_print = f.value();
  }
  // Collective under mpirun: every rank's threads, and the check that all run the same thing,
  // before rank 0 touches the run folder.
  SequenceParallel parallel(runner, model.num_params(), run_print);
  const bool writer = dist::rank() == 0;
  const std::string resume_path = opt.out_dir + "/resume.safetensors";

  Metadata meta = opt.metadata;
  Metadata resume_meta = meta;
  resume_meta["recur.spec"] = to_json(model.spec());
  resume_meta["recur.data_fingerprint"] = hex(data_print);
  MetricsLog metrics(opt.out_dir, writer);
  SeqPosition pos;
  if (opt.resume) {
    if (writer) {
      if (std::filesystem::exists(opt.out_dir + "/summary.json"))
        throw Error("--resume", opt.out_dir + " is a finished run; nothing to resume");
      const SafetensorsFile file = open_resume_file(resume_path);
      auto stored = [&](const char* key) {
        auto it = file.metadata.find(key);
        return it == file.metadata.end() ? std::string() : it->second;
      };
      if (stored("recur.spec").empty() && !stored("recur.model").empty())
        throw Error(resume_path,
                    "was written by an older recur (fixed-shape model, format 1), whose runs "
                    "cannot be continued by this one; its last.safetensors and best.safetensors "
                    "still load everywhere; start a new run");
      if (auto v = meta.find("recur.vocab"); v != meta.end() && stored("recur.vocab") != v->second)
        throw Error(opt.data_name,
                    "its vocabulary differs from the one in " + resume_path +
                        ": the training data changed since the run started; resume it on the "
                        "same data or start a new run");
      if (stored("recur.data_fingerprint") != resume_meta["recur.data_fingerprint"])
        throw Error(opt.data_name, "differs from the data " + resume_path +
                                       " was trained on: the training data changed since the "
                                       "run started; resume it on the same data or start a new "
                                       "run");
      if (stored("recur.spec") != resume_meta["recur.spec"])
        throw Error(resume_path, "the checkpoint's model differs from the run's config.toml");
      pos = position_from_json(
          read_resume_state(resume_path, file, model.layout(), model.params().data(), optimizer),
          resume_path);
      if (pos.step > total_steps)
        throw Error(resume_path,
                    fmt::format("the checkpoint is at step {}, past the run's {} steps", pos.step,
                                total_steps));
      metrics.restore(pos.step);
      // A run killed inside a checkpoint write leaves that write's temporary file behind.
      remove_stale_temporaries(opt.out_dir);
    }
    share_resume_state(model.params().data(), model.num_params(), optimizer, &pos, sizeof(pos));
  } else if (writer) {
    prepare_run_dir(opt.out_dir);
    write_file_atomic(opt.out_dir + "/config.toml", opt.config_text);
  }

  std::vector<float> grads(model.num_params());
  out << fmt::format(
      "{}: {} parameters, {} training samples ({} held out), {} steps of {}, {} "
      "thread(s)\n",
      opt.title, model.num_params(), train->size(), val ? val->size() : 0, total_steps, opt.batch,
      threads);
  if (distributed)
    out << fmt::format("data-parallel: {} ranks, {} threads in all; rank 0 writes the run folder\n",
                       parallel.group().ranks(), parallel.group().total_threads());
  if (opt.resume)
    out << fmt::format("resuming {} at step {} (epoch {})\n", opt.out_dir, pos.step, pos.epoch + 1);
  out.flush();

  bool stopped = false;  // by on_event
  auto report = [&](const TrainEvent& e) {
    if (opt.on_event && !opt.on_event(e)) stopped = true;
  };
  auto checkpoint = [&] {
    if (writer && opt.resumable)
      write_resume_file(resume_path, model.layout(), model.params().data(), optimizer,
                        position_json(pos), resume_meta);
  };
  auto end_of_epoch = [&] {
    if (interactive) out << "\n";
    model.prepare();
    if (val) {
      const EvalResult r = parallel.evaluate(*val, opt.eval_batch);
      metrics.log({{"kind", "validation"},
                   {"step", pos.step},
                   {"epoch", pos.epoch},
                   {"loss", r.loss},
                   {"accuracy", r.accuracy()}});
      out << fmt::format("epoch {}: validation accuracy {:.2f}% loss {:.4f}\n", pos.epoch + 1,
                         100 * r.accuracy(), r.loss);
      pos.val_accuracy = r.accuracy();
      pos.val_loss = r.loss;
      TrainEvent e;
      e.kind = TrainEvent::Kind::validation;
      e.step = pos.step;
      e.total_steps = total_steps;
      e.epoch = pos.epoch;
      e.loss = r.loss;
      e.accuracy = r.accuracy();
      report(e);
    }
    Metadata m = meta;
    m["recur.step"] = std::to_string(pos.step);
    m["recur.epoch"] = std::to_string(pos.epoch + 1);
    if (val) {
      m["recur.val_accuracy"] = fmt::format("{:.6f}", pos.val_accuracy);
      m["recur.val_loss"] = fmt::format("{:.6f}", pos.val_loss);
    }
    if (writer) save_layered_model(opt.out_dir + "/last.safetensors", model, m);
    // Without a validation split the best model is the last one.
    if (!val || pos.val_accuracy > pos.best) {
      pos.best = pos.val_accuracy;
      if (writer) save_layered_model(opt.out_dir + "/best.safetensors", model, m);
    }
    metrics.write_curves(opt.title);
    out.flush();
  };

  // Fault injection for the resume tests (tests/cli/test_cli_resume.cpp): with
  // RECUR_KILL_AFTER_STEP=N the process ends itself with SIGKILL once step N is done (after that
  // step's checkpoint, if it writes one), as a crash at a known point would.
  const char* kill_env = std::getenv("RECUR_KILL_AFTER_STEP");
  const std::int64_t kill_after_step = kill_env != nullptr ? std::atoll(kill_env) : 0;

  std::vector<std::vector<std::int64_t>> batches;
  std::int64_t batches_epoch = -1;
  while (pos.step < total_steps && !stopped) {
    if (batches_epoch != pos.epoch) {
      batches = epoch_batches(opt, *train, all, pos.epoch);
      batches_epoch = pos.epoch;
    }
    RECUR_CHECK(pos.cursor < static_cast<std::int64_t>(batches.size()), resume_path,
                "the run position in the metadata is out of range");
    const auto& b = batches[static_cast<std::size_t>(pos.cursor)];
    const auto ts = Clock::now();
    const float lr = learning_rate_at(schedule, opt.optimizer.lr, pos.step);
    model.prepare();  // packed once for all threads, for this step's forward and backward
    const auto step = parallel.train_batch(
        *train, b, grads.data(), opt.seed * 1000003ull + static_cast<std::uint64_t>(pos.step),
        stop_signal_received());
    const SequenceRunner::Stats& s = step.stats;
    const bool finite = std::isfinite(s.loss_sum) && all_finite(grads);
    if (!finite && !opt.skip_nonfinite)
      throw Error("training",
                  fmt::format("the {} became non-finite at step {} (loss {}); the last good "
                              "checkpoint is kept in {}; lower --lr, keep --clip-norm on, or "
                              "give --skip-nonfinite to skip such steps",
                              std::isfinite(s.loss_sum) ? "gradient" : "loss", pos.step + 1,
                              s.loss_sum / std::max(1, s.count), opt.out_dir));
    if (finite) {
      if (opt.clip_value > 0)
        clip_grad_value(grads.data(), grads.size(), static_cast<float>(opt.clip_value));
      if (opt.clip_norm > 0)
        clip_grad_norm(grads.data(), grads.size(), static_cast<float>(opt.clip_norm));
      optimizer.step(model.params().data(), grads.data(), lr);
      pos.win_loss += s.loss_sum;
      pos.win_correct += s.correct;
      pos.win_count += s.count;
    } else {
      ++pos.skipped;
    }
    const double took = seconds_since(ts);
    pos.train_seconds += took;
    pos.win_seconds += took;
    ++pos.step;
    ++pos.cursor;
    pos.samples += s.count;
    {
      TrainEvent ev;
      ev.step = pos.step;
      ev.total_steps = total_steps;
      ev.epoch = pos.epoch;
      ev.loss = s.loss_sum / s.count;
      ev.accuracy = static_cast<double>(s.correct) / s.count;
      ev.lr = lr;
      report(ev);
    }
    if (pos.step % opt.display_step == 0 || pos.step == total_steps || stopped) {
      const double count = std::max(1.0, pos.win_count);
      const double loss = pos.win_loss / count, acc = pos.win_correct / count;
      const double sps = count / std::max(pos.win_seconds, 1e-9);
      metrics.log({{"kind", "train"},
                   {"step", pos.step},
                   {"epoch", pos.epoch},
                   {"loss", loss},
                   {"accuracy", acc},
                   {"lr", lr},
                   {"samples_per_s", sps},
                   {"seconds", pos.train_seconds}});
      TrainEvent ev;
      ev.kind = TrainEvent::Kind::train_log;
      ev.step = pos.step;
      ev.total_steps = total_steps;
      ev.epoch = pos.epoch;
      ev.loss = loss;
      ev.accuracy = acc;
      ev.lr = lr;
      ev.samples_per_second = sps;
      report(ev);
      out << fmt::format(
          "{}step {}/{} epoch {} loss {:.4f} acc {:.2f}% lr {:.2e} {:.0f} "
          "samples/s{}",
          interactive ? "\r" : "", pos.step, total_steps, pos.epoch + 1, loss, 100 * acc, lr, sps,
          interactive ? "   " : "\n");
      out.flush();
      pos.win_loss = pos.win_correct = pos.win_count = pos.win_seconds = 0;
    }
    const bool epoch_done = pos.cursor == static_cast<std::int64_t>(batches.size()) ||
                            pos.step == total_steps || stopped;
    if (epoch_done) {
      end_of_epoch();
      if (pos.cursor == static_cast<std::int64_t>(batches.size())) {
        ++pos.epoch;
        pos.cursor = 0;
      }
      checkpoint();
    } else if (opt.checkpoint_every > 0 && pos.step % opt.checkpoint_every == 0) {
      checkpoint();
    }
    if (pos.step == kill_after_step) std::raise(SIGKILL);
    // Every rank of a data-parallel run stops at the same step: the one whose exchange first
    // carried a rank's signal.
    const int sig = distributed ? step.stop_signal : stop_signal_received();
    if (opt.resumable && sig != 0) {
      if (!epoch_done) checkpoint();
      if (interactive) out << "\n";
      out.flush();
      throw StopRequested{sig,
                          fmt::format("stopped by {} at step {}; checkpoint written. Resume "
                                      "with: recur train --resume {}",
                                      sig == SIGINT ? "SIGINT" : "SIGTERM", pos.step, opt.out_dir)};
    }
  }

  SeqTrainSummary summary;
  summary.val_accuracy = pos.val_accuracy;
  summary.val_loss = pos.val_loss;
  summary.best_val_accuracy = std::max(pos.best, 0.0);
  summary.steps = pos.step;
  summary.samples = pos.samples;
  summary.skipped_steps = pos.skipped;
  summary.train_seconds = pos.train_seconds;
  summary.samples_per_second = pos.samples / std::max(pos.train_seconds, 1e-9);
  model.prepare();
  if (val)
    out << fmt::format("validation accuracy {:.2f}% (best {:.2f}%)\n", 100 * pos.val_accuracy,
                       100 * summary.best_val_accuracy);
  if (test && test->size() > 0) {
    const EvalResult r = parallel.evaluate(*test, opt.eval_batch);
    summary.tested = true;
    summary.test_accuracy = r.accuracy();
    summary.test_loss = r.loss;
    out << fmt::format("test accuracy {:.2f}% ({} of {}), loss {:.4f}\n", 100 * r.accuracy(),
                       r.correct, r.count, r.loss);
  }
  summary.wall_seconds = seconds_since(t0);
  out << fmt::format(
      "training took {:.1f} s ({:.0f} samples/s){}; model: {}/last.safetensors\n",
      summary.train_seconds, summary.samples_per_second,
      pos.skipped ? fmt::format(", {} non-finite steps skipped", pos.skipped) : std::string(),
      opt.out_dir);
  nlohmann::json j = {{"val_accuracy", summary.val_accuracy},
                      {"val_loss", summary.val_loss},
                      {"best_val_accuracy", summary.best_val_accuracy},
                      {"train_seconds", summary.train_seconds},
                      {"wall_seconds", summary.wall_seconds},
                      {"samples_per_second", summary.samples_per_second},
                      {"steps", summary.steps},
                      {"samples", summary.samples},
                      {"skipped_steps", summary.skipped_steps},
                      {"threads", threads}};
  if (summary.tested) {
    j["test_accuracy"] = summary.test_accuracy;
    j["test_loss"] = summary.test_loss;
  }
  if (distributed) j["ranks"] = parallel.group().ranks();
  if (writer) write_file_atomic(opt.out_dir + "/summary.json", j.dump(2) + "\n");
  return summary;
}

}  // namespace recur
