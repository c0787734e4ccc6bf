// Training and evaluation of models built from layers on sequences with lengths (see
// recur/seq_train.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <ostream>

#include "core/thread_pool.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/seq_train.hpp"
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
  pool_ = std::make_unique<ThreadPool>(threads_);
  for (int k = 0; k < threads_; ++k) chunks_.push_back(std::make_unique<Chunk>());
}

SequenceRunner::~SequenceRunner() = default;

namespace {

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
  const std::vector<int> starts = split_by_tokens(src, idx, threads_);
  const int tasks = static_cast<int>(starts.size()) - 1;
  const int C = model_.spec().num_classes;
  const float scale = 1.f / static_cast<float>(idx.size());
  const std::size_t P = model_.num_params();
  pool_->run(tasks, [&](int k) {
    Chunk& c = *chunks_[k];
    const int first = starts[k], n = starts[k + 1] - starts[k];
    const ModelInput<float> in = load_chunk(c, src, idx.data() + first, n);
    Rng rng(dropout_seed + static_cast<std::uint64_t>(k));
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
  for (int k = 0; k < tasks; ++k) {
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
  const std::vector<int> starts = split_by_tokens(src, idx, threads_);
  const int tasks = static_cast<int>(starts.size()) - 1;
  const int C = model_.spec().num_classes;
  pool_->run(tasks, [&](int k) {
    Chunk& c = *chunks_[k];
    const int first = starts[k], n = starts[k + 1] - starts[k];
    const ModelInput<float> in = load_chunk(c, src, idx.data() + first, n);
    const float* logits = model_.forward(in, c.ws, false);
    int correct = 0;
    c.stats.loss_sum =
        softmax_cross_entropy<float>(logits, c.labels.data(), n, C, 1.f, nullptr, &correct);
    c.stats.correct = correct;
    c.stats.count = n;
    for (int b = 0; b < n; ++b) {
      const float* z = logits + static_cast<std::size_t>(b) * C;
      int best = 0;
      for (int j = 1; j < C; ++j)
        if (z[j] > z[best]) best = j;
      if (predictions) predictions[first + b] = best;
      if (probs) {
        double sum = 0;
        for (int j = 0; j < C; ++j) sum += std::exp(static_cast<double>(z[j] - z[best]));
        for (int j = 0; j < C; ++j)
          probs[static_cast<std::size_t>(first + b) * C + j] =
              static_cast<float>(std::exp(static_cast<double>(z[j] - z[best])) / sum);
      }
    }
  });
  Stats total;
  for (int k = 0; k < tasks; ++k) {
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

}  // namespace

SeqTrainSummary train_sequences(const SeqTrainOptions& opt,
                                std::shared_ptr<const SequenceSource> train_all,
                                std::shared_ptr<const SequenceSource> test, std::ostream& out,
                                bool interactive) {
  RECUR_CHECK(opt.batch >= 1, "--batch", "must be at least 1, got " + std::to_string(opt.batch));
  RECUR_CHECK(opt.epochs >= 1, "--epochs", "must be at least 1");
  RECUR_CHECK(opt.eval_batch >= 1 && opt.eval_batch <= kMaxEvalBatch, "--eval-batch",
              "must be in [1, " + std::to_string(kMaxEvalBatch) + "]");
  RECUR_CHECK(opt.validation >= 0 && opt.validation < train_all->size(), "--val",
              "must be in [0, " + std::to_string(train_all->size()) + ")");
  check_optimizer_config(opt.optimizer);
  const int threads = resolve_threads(opt.threads);

  // Held-out validation: a seeded draw from the training samples.
  std::shared_ptr<const SequenceSource> train = train_all, val;
  if (opt.validation > 0) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(train_all->size()));
    std::iota(order.begin(), order.end(), 0);
    Rng rng(opt.seed ^ 0x76616c6964ull);
    for (std::size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng.below(k)]);
    const auto cut = order.begin() + static_cast<std::ptrdiff_t>(opt.validation);
    std::vector<std::int64_t> v(order.begin(), cut), t(cut, order.end());
    std::sort(v.begin(), v.end());
    std::sort(t.begin(), t.end());
    val = std::make_shared<Subset>(train_all, std::move(v));
    train = std::make_shared<Subset>(train_all, std::move(t));
  }

  Model<float> model(opt.model);
  model.init(opt.seed);
  prepare_run_dir(opt.out_dir);
  write_file_atomic(opt.out_dir + "/config.toml", opt.config_text);

  std::vector<std::int64_t> all(static_cast<std::size_t>(train->size()));
  std::iota(all.begin(), all.end(), 0);
  const std::int64_t per_epoch =
      static_cast<std::int64_t>(length_batches(*train, all, opt.batch, opt.seed, 0, true).size());
  std::int64_t total_steps = per_epoch * opt.epochs;
  if (opt.steps > 0) total_steps = std::min(total_steps, opt.steps);
  ScheduleConfig schedule = opt.schedule;
  if (schedule.kind == ScheduleKind::cosine && schedule.total_steps == 0)
    schedule.total_steps = total_steps;
  check_schedule_config(schedule);

  Optimizer optimizer(opt.optimizer, model.num_params());
  SequenceRunner runner(model, threads);
  std::vector<float> grads(model.num_params());
  MetricsLog metrics(opt.out_dir, true);
  out << fmt::format(
      "{}: {} parameters, {} training samples ({} held out), {} steps of {}, {} "
      "thread(s)\n",
      opt.title, model.num_params(), train->size(), opt.validation, total_steps, opt.batch,
      threads);
  out.flush();

  SeqTrainSummary summary;
  Metadata meta = opt.metadata;
  double best_val = -1;
  std::int64_t step = 0;
  double win_loss = 0, win_correct = 0, win_count = 0;
  double train_seconds = 0;
  std::int64_t samples = 0;
  bool stop = false;
  for (std::int64_t epoch = 0; epoch < opt.epochs && step < total_steps && !stop; ++epoch) {
    const auto batches = length_batches(*train, all, opt.batch, opt.seed, epoch, true);
    const auto t_epoch = Clock::now();
    for (const auto& b : batches) {
      if (step >= total_steps || stop) break;
      const float lr = learning_rate_at(schedule, opt.optimizer.lr, step);
      model.prepare();  // packed once for all threads, for this step's forward and backward
      const auto s = runner.train_batch(*train, b, grads.data(),
                                        opt.seed * 1000003ull + static_cast<std::uint64_t>(step));
      if (!std::isfinite(s.loss_sum))
        throw Error("training", fmt::format("the loss became {} at step {}; lower --lr or keep "
                                            "--clip-norm on",
                                            s.loss_sum, step + 1));
      if (opt.clip_norm > 0)
        clip_grad_norm(grads.data(), grads.size(), static_cast<float>(opt.clip_norm));
      optimizer.step(model.params().data(), grads.data(), lr);
      ++step;
      samples += s.count;
      win_loss += s.loss_sum;
      win_correct += s.correct;
      win_count += s.count;
      if (opt.on_event) {
        TrainEvent ev;
        ev.step = step;
        ev.total_steps = total_steps;
        ev.epoch = epoch;
        ev.loss = s.loss_sum / s.count;
        ev.accuracy = static_cast<double>(s.correct) / s.count;
        ev.lr = lr;
        if (!opt.on_event(ev)) stop = true;
      }
      if (step % opt.display_step == 0 || step == total_steps) {
        const double elapsed = train_seconds + seconds_since(t_epoch);
        const double loss = win_loss / win_count, acc = win_correct / win_count;
        metrics.log({{"kind", "train"},
                     {"step", step},
                     {"epoch", epoch},
                     {"loss", loss},
                     {"accuracy", acc},
                     {"lr", lr},
                     {"seconds", elapsed}});
        out << fmt::format(
            "{}step {}/{} epoch {} loss {:.4f} acc {:.2f}% lr {:.2e} {:.0f} "
            "samples/s{}",
            interactive ? "\r" : "", step, total_steps, epoch + 1, loss, 100 * acc, lr,
            samples / std::max(elapsed, 1e-9), interactive ? "   " : "\n");
        out.flush();
        win_loss = win_correct = win_count = 0;
      }
    }
    train_seconds += seconds_since(t_epoch);
    if (interactive) out << "\n";
    model.prepare();
    if (val) {
      const EvalResult r = evaluate_sequences(runner, *val, opt.eval_batch);
      metrics.log({{"kind", "validation"},
                   {"step", step},
                   {"epoch", epoch},
                   {"loss", r.loss},
                   {"accuracy", r.accuracy()}});
      out << fmt::format("epoch {}: validation accuracy {:.2f}% loss {:.4f}\n", epoch + 1,
                         100 * r.accuracy(), r.loss);
      summary.val_accuracy = r.accuracy();
      if (r.accuracy() > best_val) {
        best_val = r.accuracy();
        Metadata m = meta;
        m["recur.val_accuracy"] = fmt::format("{}", r.accuracy());
        save_layered_model(opt.out_dir + "/best.safetensors", model, m);
      }
    }
    save_layered_model(opt.out_dir + "/last.safetensors", model, meta);
    metrics.write_curves(opt.title);
    out.flush();
  }
  summary.best_val_accuracy = std::max(best_val, 0.0);
  summary.steps = step;
  summary.samples = samples;
  summary.train_seconds = train_seconds;
  summary.samples_per_second = samples / std::max(train_seconds, 1e-9);
  model.prepare();
  if (test && test->size() > 0) {
    const EvalResult r = evaluate_sequences(runner, *test, opt.eval_batch);
    summary.test_accuracy = r.accuracy();
    summary.test_loss = r.loss;
    out << fmt::format("test accuracy {:.2f}% ({} of {}), loss {:.4f}\n", 100 * r.accuracy(),
                       r.correct, r.count, r.loss);
  }
  out << fmt::format("training took {:.1f} s ({:.0f} samples/s); model: {}/last.safetensors\n",
                     train_seconds, summary.samples_per_second, opt.out_dir);
  const nlohmann::json j = {{"test_accuracy", summary.test_accuracy},
                            {"test_loss", summary.test_loss},
                            {"val_accuracy", summary.val_accuracy},
                            {"best_val_accuracy", summary.best_val_accuracy},
                            {"train_seconds", summary.train_seconds},
                            {"samples_per_second", summary.samples_per_second},
                            {"steps", summary.steps},
                            {"samples", summary.samples},
                            {"threads", threads}};
  write_file_atomic(opt.out_dir + "/summary.json", j.dump(2) + "\n");
  return summary;
}

}  // namespace recur
