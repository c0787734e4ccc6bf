// Training and evaluation of models built from layers on sequences with lengths (see
// recur/fit.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <ostream>
#include <type_traits>

#include "core/json_util.hpp"
#include "core/peak_rss.hpp"
#include "core/thread_pool.hpp"
#include "dist/comm.hpp"
#include "dist/data_parallel.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/fs.hpp"
#include "recur/pretrain.hpp"
#include "train/resume_file.hpp"
#include "train/run_dir.hpp"

namespace recur {

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
  void fill_training(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
                     float* x, std::uint64_t step_seed) const override {
    std::vector<std::int64_t> mapped(static_cast<std::size_t>(n));
    for (int b = 0; b < n; ++b) mapped[b] = at(idx[b]);
    src_->fill_training(mapped.data(), n, seq, ids, x, step_seed);
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
  std::int64_t since_best = 0;  // validations since the best one (--patience)
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
          {"window_count", p.win_count},
          {"since_best", p.since_best}};
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
    if (j.contains("since_best")) p.since_best = json_integer<std::int64_t>(j, "since_best", path);
  } catch (const nlohmann::json::exception&) {
    throw Error(path, "the run position in the metadata is unreadable");
  }
  if (p.step < 0 || p.epoch < 0 || p.cursor < 0)
    throw Error(path, "the run position in the metadata is out of range");
  return p;
}

// The training and evaluation batches of one process, or of every rank of an MPI job (see
// fit).
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

// The training samples and the held-out validation samples of a source (see FitPlan).
void split_source(const TrainOptions& opt, FitPlan::Holdout holdout,
                  const std::shared_ptr<const SequenceSource>& all,
                  std::shared_ptr<const SequenceSource>& train,
                  std::shared_ptr<const SequenceSource>& val) {
  train = all;
  if (opt.validation == 0 && opt.train_limit == 0) return;
  std::vector<std::int64_t> order(static_cast<std::size_t>(all->size()));
  std::iota(order.begin(), order.end(), 0);
  if (holdout == FitPlan::Holdout::drawn) {
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
std::vector<std::vector<std::int64_t>> epoch_batches(const TrainOptions& opt,
                                                     FitPlan::Batching batching,
                                                     const SequenceSource& train,
                                                     const std::vector<std::int64_t>& all,
                                                     std::int64_t epoch) {
  if (batching == FitPlan::Batching::by_length)
    return length_batches(train, all, opt.batch, opt.seed, epoch, true);
  Batcher batcher(all, opt.batch, opt.seed);
  batcher.seek(epoch, 0);
  std::vector<std::vector<std::int64_t>> batches;
  std::vector<std::int64_t> one;
  while (batcher.next(one)) batches.push_back(one);
  return batches;
}

}  // namespace

void check_training_methods(double label_smoothing, std::int64_t patience,
                            std::int64_t validation) {
  RECUR_CHECK(label_smoothing >= 0 && label_smoothing < 1, "--label-smoothing",
              fmt::format("must be in [0, 1), got {}", label_smoothing));
  RECUR_CHECK(patience >= 0, "--patience", "must not be negative");
  RECUR_CHECK(patience == 0 || validation > 0, "--patience",
              "stops when the validation accuracy stops improving, so it needs a validation "
              "split: give --val N");
}

namespace {

// One training run of fit, in named parts: plan (hold-out, model, steps), join the
// processes of an MPI job, open the run folder (new, or resumed from its checkpoint), then steps
// until the plan or a stop ends it, each epoch ending in a validation and checkpoints, and finish
// (test pass, summary). The order of every floating-point operation is the one a resumed run and
// an uninterrupted one share, so both end bit-identical.
class Trainer {
 public:
  Trainer(const TrainOptions& opt, const FitPlan& plan, std::shared_ptr<const SequenceSource> all,
          std::shared_ptr<const SequenceSource> test, std::ostream& out, bool interactive)
      : opt_(opt),
        plan_(plan),
        all_(std::move(all)),
        test_(std::move(test)),
        out_(out),
        interactive_(interactive),
        t0_(Clock::now()) {}

  TrainSummary run() {
    check_options();
    plan();
    join_processes();
    open_run_folder();
    print_plan();
    while (pos_.step < total_steps_ && !stopped_) step();
    return finish();
  }

 private:
  void check_options() const;
  void plan();
  void join_processes();
  void open_run_folder();
  void resume();
  void print_plan();
  void step();
  void log_window(float lr);
  void end_epoch();
  void validate_and_save();
  void write_checkpoint();
  void stop_if_signalled(int signal, bool checkpointed);
  TrainSummary finish();
  // Runs `f` with the model holding the moving average of its weights (--ema) and prepared for
  // inference, then puts the trained weights back; without --ema, on the trained weights.
  template <typename F>
  void with_evaluated_weights(F&& f) {
    const std::vector<float>& average = optimizer_->averaged();
    if (average.empty() || optimizer_->steps() == 0) {
      model_->prepare(PrepareFor::inference);
      f();
      return;
    }
    float* p = model_->params().data();
    std::vector<float> trained(p, p + model_->num_params());
    std::copy(average.begin(), average.end(), p);
    model_->prepare(PrepareFor::inference);
    f();
    std::copy(trained.begin(), trained.end(), p);
  }
  void emit(const TrainEvent& e) {
    if (opt_.on_event && !opt_.on_event(e)) stopped_ = true;
  }
  TrainEvent event(TrainEvent::Kind kind) const {
    TrainEvent e;
    e.kind = kind;
    e.step = pos_.step;
    e.total_steps = total_steps_;
    e.epoch = pos_.epoch;
    return e;
  }

  const TrainOptions& opt_;
  const FitPlan& plan_;
  std::shared_ptr<const SequenceSource> all_, test_, train_, val_;
  std::ostream& out_;
  const bool interactive_;
  const Clock::time_point t0_;
  int threads_ = 1;
  std::unique_ptr<Model<float>> model_;
  std::vector<std::int64_t> order_;  // the training samples 0..n-1, cut into each epoch's batches
  std::int64_t total_steps_ = 0;
  ScheduleConfig schedule_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<SequenceRunner> runner_;
  std::unique_ptr<SequenceParallel> parallel_;
  bool distributed_ = false, writer_ = true;
  std::string resume_path_;
  Metadata resume_meta_;
  std::unique_ptr<MetricsLog> metrics_;
  SeqPosition pos_;
  // The gradient of a step (model_->num_params() floats). With an embedding table in one
  // process, the table's part is never touched: the runner gives the table's gradient by rows
  // (SequenceRunner::set_table_rows), so only the rows a step's words touch take memory.
  std::unique_ptr<float[]> grads_;
  std::size_t grad_count_ = 0;
  std::vector<std::vector<std::int64_t>> batches_;  // of epoch batches_epoch_
  std::int64_t batches_epoch_ = -1;
  bool stopped_ = false;  // by on_event or early stopping (--patience)
  bool stopped_early_ = false;
  const std::int64_t kill_after_step_ = [] {
    const char* v = std::getenv("RECUR_KILL_AFTER_STEP");
    return v != nullptr ? std::atoll(v) : std::int64_t{0};
  }();
};

void Trainer::check_options() const {
  const TrainOptions& o = opt_;
  RECUR_CHECK(o.display_step >= 1, "--display-step", "must be at least 1");
  RECUR_CHECK(o.batch >= 1, "--batch", "must be at least 1, got " + std::to_string(o.batch));
  RECUR_CHECK(o.epochs >= 1 || o.steps > 0, "--epochs", "give a positive --epochs or --steps");
  RECUR_CHECK(o.epochs >= 0, "--epochs", "must not be negative");
  RECUR_CHECK(o.steps >= 0, "--steps", "must not be negative");
  RECUR_CHECK(o.eval_batch >= 1 && o.eval_batch <= kMaxEvalBatch, "--eval-batch",
              "must be in [1, " + std::to_string(kMaxEvalBatch) + "]");
  RECUR_CHECK(o.validation >= 0 && o.validation < all_->size(), "--val",
              "must be in [0, " + std::to_string(all_->size()) + ")");
  RECUR_CHECK(o.checkpoint_every >= 0, "--checkpoint-every", "must not be negative");
  RECUR_CHECK(o.train_limit >= 0, "--train-limit", "must not be negative");
  RECUR_CHECK(o.clip_norm >= 0, "--clip-norm", "must not be negative");
  RECUR_CHECK(o.clip_value >= 0, "--clip-value", "must not be negative");
  check_training_methods(o.label_smoothing, o.patience, o.validation);
  check_train_precision(o.precision);
  RECUR_ASSERT(plan_.resumable || !o.resume);
  check_optimizer_config(o.optimizer);
}

// The hold-out, the model and its initial weights, the number of steps and the schedule.
void Trainer::plan() {
  threads_ = resolve_threads(opt_.threads);
  split_source(opt_, plan_.holdout, all_, train_, val_);
  if (plan_.batching == FitPlan::Batching::shuffled)
    RECUR_CHECK(opt_.batch <= train_->size(), "--batch",
                fmt::format("{} is more than the {} training samples (at most {})", opt_.batch,
                            train_->size(), train_->size()));
  model_ = std::make_unique<Model<float>>(plan_.model);
  model_->init(opt_.seed);
  if (!opt_.init_from.empty() && !opt_.resume) {
    const auto vocab = plan_.metadata.find("recur.vocab");
    std::ostream silent(nullptr);
    init_from_checkpoint(opt_.init_from, model_->layout(), model_->params().data(),
                         vocab == plan_.metadata.end() ? std::string() : vocab->second,
                         dist::rank() == 0 ? std::cerr : silent);
  }
  order_.resize(static_cast<std::size_t>(train_->size()));
  std::iota(order_.begin(), order_.end(), 0);
  const auto per_epoch =
      static_cast<std::int64_t>(epoch_batches(opt_, plan_.batching, *train_, order_, 0).size());
  total_steps_ = opt_.epochs > 0 ? per_epoch * opt_.epochs : opt_.steps;
  if (opt_.steps > 0) total_steps_ = std::min(total_steps_, opt_.steps);
  schedule_ = opt_.schedule;
  if (schedule_.total_steps <= 0) schedule_.total_steps = total_steps_;
  check_schedule_config(schedule_);
  optimizer_ = std::make_unique<Optimizer>(opt_.optimizer, model_->num_params());
  runner_ = std::make_unique<SequenceRunner>(*model_, threads_);
  runner_->set_label_smoothing(opt_.label_smoothing);
  // The update on the training threads, which wait for it otherwise (the same bits).
  optimizer_->set_range_runner(runner_->range_runner());
  grad_count_ = model_->num_params();
}

// Collective under mpirun: every rank's threads, and the check that all run the same thing,
// before rank 0 touches the run folder.
void Trainer::join_processes() {
  distributed_ = dist::size() > 1;
  const std::uint64_t data_print = plan_.resumable || distributed_ ? data_fingerprint(*all_) : 0;
  std::uint64_t run_print = 0;
  if (distributed_) {
    Fingerprint f;
    f.add(to_json(model_->spec()));
    f.add(data_print);
    f.add(test_ ? data_fingerprint(*test_) : 0);
    for (std::int64_t v : {static_cast<std::int64_t>(opt_.batch), total_steps_, opt_.validation,
                           static_cast<std::int64_t>(opt_.eval_batch), opt_.train_limit})
      f.add(v);
    f.add(opt_.seed);
    f.add(opt_.optimizer.lr);
    f.add(opt_.clip_norm);
    f.add(opt_.clip_value);
    f.add(opt_.label_smoothing);
    f.add(static_cast<int>(plan_.holdout));
    f.add(static_cast<int>(plan_.batching));
    run_print = f.value();
  }
  parallel_ = std::make_unique<SequenceParallel>(*runner_, model_->num_params(), run_print);
  // One process: a text model's table gradient by rows (grads_'s table part never touched). An
  // MPI job sums the dense gradient across ranks.
  if (!distributed_ && model_->embedding_table()) {
    runner_->set_table_rows(true);
    grads_.reset(new float[grad_count_]);  // not zeroed: the table's part stays unallocated
  } else {
    grads_ = std::make_unique<float[]>(grad_count_);
  }
  writer_ = dist::rank() == 0;
  resume_meta_ = plan_.metadata;
  resume_meta_["recur.spec"] = to_json(model_->spec());
  resume_meta_["recur.data_fingerprint"] = hex(data_print);
}

void Trainer::open_run_folder() {
  resume_path_ = opt_.out_dir + "/resume.safetensors";
  metrics_ = std::make_unique<MetricsLog>(opt_.out_dir, writer_);
  if (opt_.resume) {
    if (writer_) resume();
    share_resume_state(model_->params().data(), model_->num_params(), *optimizer_, &pos_,
                       sizeof(pos_));
  } else if (writer_) {
    prepare_run_dir(opt_.out_dir);
    write_file_atomic(opt_.out_dir + "/config.toml", plan_.config_text);
  }
}

// Rank 0 reads the weights, the optimizer state and the position from resume.safetensors, after
// checking that it belongs to this run and this data.
void Trainer::resume() {
  if (std::filesystem::exists(opt_.out_dir + "/summary.json"))
    throw Error("--resume", opt_.out_dir + " is a finished run; nothing to resume");
  const SafetensorsFile file = open_resume_file(resume_path_);
  auto stored = [&](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  if (stored("recur.spec").empty() && !stored("recur.model").empty())
    throw Error(resume_path_,
                "was written by an older recur (fixed-shape model, format 1), whose runs "
                "cannot be continued by this one; its last.safetensors and best.safetensors "
                "still load everywhere; start a new run");
  if (auto v = plan_.metadata.find("recur.vocab");
      v != plan_.metadata.end() && stored("recur.vocab") != v->second)
    throw Error(plan_.data_name,
                "its vocabulary differs from the one in " + resume_path_ +
                    ": the training data changed since the run started; resume it on the "
                    "same data or start a new run");
  if (stored("recur.data_fingerprint") != resume_meta_["recur.data_fingerprint"])
    throw Error(plan_.data_name, "differs from the data " + resume_path_ +
                                     " was trained on: the training data changed since the "
                                     "run started; resume it on the same data or start a new "
                                     "run");
  if (stored("recur.spec") != resume_meta_["recur.spec"])
    throw Error(resume_path_, "the checkpoint's model differs from the run's config.toml");
  pos_ = position_from_json(
      read_resume_state(resume_path_, file, model_->layout(), model_->params().data(), *optimizer_),
      resume_path_);
  if (pos_.step > total_steps_)
    throw Error(resume_path_, fmt::format("the checkpoint is at step {}, past the run's {} steps",
                                          pos_.step, total_steps_));
  metrics_->restore(pos_.step);
  // A run killed inside a checkpoint write leaves that write's temporary file behind.
  remove_stale_temporaries(opt_.out_dir);
}

void Trainer::print_plan() {
  out_ << fmt::format(
      "{}: {} parameters, {} training samples ({} held out), {} steps of {}, {} "
      "thread(s){}\n",
      plan_.title, model_->num_params(), train_->size(), val_ ? val_->size() : 0, total_steps_,
      opt_.batch, threads_,
      opt_.precision == TrainPrecision::bf16 ? ", bf16 products, fp32 weights" : "");
  if (distributed_)
    out_ << fmt::format(
        "data-parallel: {} ranks, {} threads in all; rank 0 writes the run folder\n",
        parallel_->group().ranks(), parallel_->group().total_threads());
  if (opt_.resume)
    out_ << fmt::format("resuming {} at step {} (epoch {})\n", opt_.out_dir, pos_.step,
                        pos_.epoch + 1);
  out_.flush();
}

// One batch: its gradient, clipping and the optimizer's update (or a skipped non-finite step),
// the events and the log, the epoch's end and the checkpoints due at this step.
void Trainer::step() {
  if (batches_epoch_ != pos_.epoch) {
    batches_ = epoch_batches(opt_, plan_.batching, *train_, order_, pos_.epoch);
    batches_epoch_ = pos_.epoch;
  }
  RECUR_CHECK(pos_.cursor < static_cast<std::int64_t>(batches_.size()), resume_path_,
              "the run position in the metadata is out of range");
  const auto& b = batches_[static_cast<std::size_t>(pos_.cursor)];
  const auto ts = Clock::now();
  const float lr = learning_rate_at(schedule_, opt_.optimizer.lr, pos_.step);
  // Packed once for all threads, for this step's forward and backward.
  runner_->prepare_model(opt_.precision == TrainPrecision::bf16 ? PrepareFor::training_bf16
                                                                : PrepareFor::training);
  const auto batch = parallel_->train_batch(
      *train_, b, grads_.get(), opt_.seed * 1000003ull + static_cast<std::uint64_t>(pos_.step),
      stop_signal_received());
  const SequenceRunner::Stats& s = batch.stats;
  const TableRows* table = runner_->table_gradient();  // rows mode, else null
  const bool finite = std::isfinite(s.loss_sum) && all_finite(grads_.get(), grad_count_, table);
  if (!finite && !opt_.skip_nonfinite)
    throw Error("training",
                fmt::format("the {} became non-finite at step {} (loss {}); the last good "
                            "checkpoint is kept in {}; lower --lr, keep --clip-norm on, or "
                            "give --skip-nonfinite to skip such steps",
                            std::isfinite(s.loss_sum) ? "gradient" : "loss", pos_.step + 1,
                            s.loss_sum / std::max(1, s.count), opt_.out_dir));
  if (finite) {
    if (opt_.clip_value > 0)
      clip_grad_value(grads_.get(), grad_count_, static_cast<float>(opt_.clip_value), table);
    if (opt_.clip_norm > 0)
      clip_grad_norm(grads_.get(), grad_count_, static_cast<float>(opt_.clip_norm), table);
    optimizer_->step(model_->params().data(), grads_.get(), lr, table);
    pos_.win_loss += s.loss_sum;
    pos_.win_correct += s.correct;
    pos_.win_count += s.count;
  } else {
    ++pos_.skipped;
  }
  const double took = seconds_since(ts);
  pos_.train_seconds += took;
  pos_.win_seconds += took;
  ++pos_.step;
  ++pos_.cursor;
  pos_.samples += s.count;
  TrainEvent ev = event(TrainEvent::Kind::step);
  ev.loss = s.loss_sum / s.count;
  ev.accuracy = static_cast<double>(s.correct) / s.count;
  ev.lr = lr;
  emit(ev);
  if (pos_.step % opt_.display_step == 0 || pos_.step == total_steps_ || stopped_) log_window(lr);
  const bool epoch_done = pos_.cursor == static_cast<std::int64_t>(batches_.size()) ||
                          pos_.step == total_steps_ || stopped_;
  if (epoch_done) {
    end_epoch();
    if (pos_.cursor == static_cast<std::int64_t>(batches_.size())) {
      ++pos_.epoch;
      pos_.cursor = 0;
    }
    write_checkpoint();
  } else if (opt_.checkpoint_every > 0 && pos_.step % opt_.checkpoint_every == 0) {
    write_checkpoint();
  }
  // Fault injection for the resume tests (tests/cli/test_cli_resume.cpp): with
  // RECUR_KILL_AFTER_STEP=N the process ends itself with SIGKILL once step N is done (after that
  // step's checkpoint, if it writes one), as a crash at a known point would.
  if (pos_.step == kill_after_step_) std::raise(SIGKILL);
  // Every rank of a data-parallel run stops at the same step: the one whose exchange first
  // carried a rank's signal.
  stop_if_signalled(distributed_ ? batch.stop_signal : stop_signal_received(), epoch_done);
}

// The means since the last log point: metrics.jsonl, the event and the progress line.
void Trainer::log_window(float lr) {
  const double count = std::max(1.0, pos_.win_count);
  const double loss = pos_.win_loss / count, acc = pos_.win_correct / count;
  const double sps = count / std::max(pos_.win_seconds, 1e-9);
  metrics_->log({{"kind", "train"},
                 {"step", pos_.step},
                 {"epoch", pos_.epoch},
                 {"loss", loss},
                 {"accuracy", acc},
                 {"lr", lr},
                 {"samples_per_s", sps},
                 {"seconds", pos_.train_seconds}});
  TrainEvent ev = event(TrainEvent::Kind::train_log);
  ev.loss = loss;
  ev.accuracy = acc;
  ev.lr = lr;
  ev.samples_per_second = sps;
  emit(ev);
  out_ << fmt::format(
      "{}step {}/{} epoch {} loss {:.4f} acc {:.2f}% lr {:.2e} {:.0f} "
      "samples/s{}",
      interactive_ ? "\r" : "", pos_.step, total_steps_, pos_.epoch + 1, loss, 100 * acc, lr, sps,
      interactive_ ? "   " : "\n");
  out_.flush();
  pos_.win_loss = pos_.win_correct = pos_.win_count = pos_.win_seconds = 0;
}

// Validation, last.safetensors, best.safetensors (the best validation accuracy; without a
// validation split the last model) and the curves.
void Trainer::end_epoch() {
  if (interactive_) out_ << "\n";
  // As recur eval runs the checkpoint: prepared for inference, the averaged weights with --ema.
  with_evaluated_weights([&] { validate_and_save(); });
  // Early stopping: the last `patience` validations found nothing better than the best.
  if (val_ && opt_.patience > 0 && pos_.since_best >= opt_.patience && !stopped_) {
    out_ << fmt::format(
        "stopping early: validation accuracy has not improved for {} epoch{} (best {:.2f}%)\n",
        pos_.since_best, pos_.since_best == 1 ? "" : "s", 100 * pos_.best);
    stopped_ = true;
    stopped_early_ = true;
  }
  metrics_->write_curves(plan_.title);
  out_.flush();
}

// The validation pass, last.safetensors and best.safetensors of the weights the model holds.
void Trainer::validate_and_save() {
  if (val_) {
    const EvalResult r = parallel_->evaluate(*val_, opt_.eval_batch);
    metrics_->log({{"kind", "validation"},
                   {"step", pos_.step},
                   {"epoch", pos_.epoch},
                   {"loss", r.loss},
                   {"accuracy", r.accuracy()}});
    out_ << fmt::format("epoch {}: validation accuracy {:.2f}% loss {:.4f}\n", pos_.epoch + 1,
                        100 * r.accuracy(), r.loss);
    pos_.val_accuracy = r.accuracy();
    pos_.val_loss = r.loss;
    TrainEvent e = event(TrainEvent::Kind::validation);
    e.loss = r.loss;
    e.accuracy = r.accuracy();
    emit(e);
  }
  Metadata m = plan_.metadata;
  m["recur.train_precision"] = to_string(opt_.precision);
  m["recur.step"] = std::to_string(pos_.step);
  m["recur.epoch"] = std::to_string(pos_.epoch + 1);
  if (val_) {
    m["recur.val_accuracy"] = fmt::format("{:.6f}", pos_.val_accuracy);
    m["recur.val_loss"] = fmt::format("{:.6f}", pos_.val_loss);
  }
  if (writer_) save_checkpoint(opt_.out_dir + "/last.safetensors", *model_, m);
  if (!val_ || pos_.val_accuracy > pos_.best) {
    pos_.best = pos_.val_accuracy;
    pos_.since_best = 0;
    if (writer_) save_checkpoint(opt_.out_dir + "/best.safetensors", *model_, m);
  } else {
    ++pos_.since_best;
  }
}

// resume.safetensors: weights, optimizer state and position, one atomic file.
void Trainer::write_checkpoint() {
  if (writer_ && plan_.resumable)
    write_resume_file(resume_path_, model_->layout(), model_->params().data(), *optimizer_,
                      position_json(pos_), resume_meta_);
}

// After SIGINT / SIGTERM: the step is done; write the checkpoint (unless this step wrote one at
// its epoch's end) and stop with StopRequested.
void Trainer::stop_if_signalled(int signal, bool checkpointed) {
  if (!plan_.resumable || signal == 0) return;
  if (!checkpointed) write_checkpoint();
  if (interactive_) out_ << "\n";
  out_.flush();
  throw StopRequested{
      signal, fmt::format("stopped by {} at step {}; checkpoint written. Resume "
                          "with: recur train --resume {}",
                          signal == SIGINT ? "SIGINT" : "SIGTERM", pos_.step, opt_.out_dir)};
}

// The test pass and summary.json (written last: a run folder without it is unfinished).
TrainSummary Trainer::finish() {
  TrainSummary summary;
  summary.val_accuracy = pos_.val_accuracy;
  summary.val_loss = pos_.val_loss;
  summary.best_val_accuracy = std::max(pos_.best, 0.0);
  summary.steps = pos_.step;
  summary.samples = pos_.samples;
  summary.skipped_steps = pos_.skipped;
  summary.train_seconds = pos_.train_seconds;
  summary.samples_per_second = pos_.samples / std::max(pos_.train_seconds, 1e-9);
  if (val_)
    out_ << fmt::format("validation accuracy {:.2f}% (best {:.2f}%)\n", 100 * pos_.val_accuracy,
                        100 * summary.best_val_accuracy);
  // Training is over (its checkpoints are written): the test pass runs without the gradient,
  // the optimizer's moments and the training activations (bench/RESULTS.md, IMDb training
  // memory: the wide recipe's test pass no longer sets the run's peak).
  grads_.reset();
  optimizer_->release_update_state();
  runner_->release_training_memory();
  with_evaluated_weights([&] {
    if (!test_ || test_->size() == 0) return;
    const EvalResult r = parallel_->evaluate(*test_, opt_.eval_batch);
    summary.tested = true;
    summary.test_accuracy = r.accuracy();
    summary.test_loss = r.loss;
    // The weights tested are last.safetensors' (best.safetensors, the best validation's, can
    // test differently: recur eval runs it).
    out_ << fmt::format(
        "test accuracy {:.2f}% ({} of {}), loss {:.4f}, of the final weights "
        "(last.safetensors)\n",
        100 * r.accuracy(), r.correct, r.count, r.loss);
  });
  summary.wall_seconds = seconds_since(t0_);
  out_ << fmt::format(
      "training took {:.1f} s ({:.0f} samples/s){}; model: {}/last.safetensors\n",
      summary.train_seconds, summary.samples_per_second,
      pos_.skipped ? fmt::format(", {} non-finite steps skipped", pos_.skipped) : std::string(),
      opt_.out_dir);
  nlohmann::json j = {{"val_accuracy", summary.val_accuracy},
                      {"val_loss", summary.val_loss},
                      {"best_val_accuracy", summary.best_val_accuracy},
                      {"train_seconds", summary.train_seconds},
                      {"wall_seconds", summary.wall_seconds},
                      {"samples_per_second", summary.samples_per_second},
                      {"steps", summary.steps},
                      {"samples", summary.samples},
                      {"skipped_steps", summary.skipped_steps},
                      {"threads", threads_},
                      {"precision", to_string(opt_.precision)}};
  if (summary.tested) {
    j["test_accuracy"] = summary.test_accuracy;
    j["test_loss"] = summary.test_loss;
  }
  if (distributed_) j["ranks"] = parallel_->group().ranks();
  if (opt_.patience > 0) j["stopped_early"] = stopped_early_;
  // This process's peak resident memory so far (data, training, the test pass): what recur
  // report's peak-RSS column shows for a model trained in a child process.
  if (const std::int64_t rss = own_peak_rss_bytes(); rss > 0) j["peak_rss_bytes"] = rss;
  if (writer_) write_file_atomic(opt_.out_dir + "/summary.json", j.dump(2) + "\n");
  return summary;
}

}  // namespace

TrainSummary fit(const TrainOptions& opt, const FitPlan& plan,
                 std::shared_ptr<const SequenceSource> train_all,
                 std::shared_ptr<const SequenceSource> test, std::ostream& out, bool interactive) {
  return Trainer(opt, plan, std::move(train_all), std::move(test), out, interactive).run();
}

}  // namespace recur
