// Optimizers, gradient clipping and learning-rate schedules over flat parameter arenas.
//
// Parameters and gradients are each one contiguous float array of n values; an optimizer keeps
// its state in flat arrays of the same length. Each update reproduces PyTorch 1.13's
// torch.optim (foreach=False) on float32 tensors operation by operation: scalars such as
// 1 - beta1 or lr / (1 - beta1^t) are computed in double and rounded to float once, and every
// per-element operation is done in float in PyTorch's order. Settings are floats; the double
// each stands for is its shortest decimal (0.999f is 0.999), the value PyTorch would hold for
// the same setting, so 1 - beta2 comes out as in PyTorch rather than 1e-5 off.
//
// Per element, with g the gradient, p the parameter, lr the rate of this step and t the step
// number counting from 1 (t is incremented before the update):
//
// sgd      g += weight_decay * p                                  (if weight_decay != 0)
//          if momentum != 0:
//            buf = t == 1 ? g : momentum * buf + (1 - dampening) * g
//            g = nesterov ? g + momentum * buf : buf
//          p -= lr * g
// adam     g += weight_decay * p                                  (if weight_decay != 0)
//          m = beta1 * m + (1 - beta1) * g
//          v = beta2 * v + (1 - beta2) * g * g
//          p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// adamw    p *= 1 - lr * weight_decay                             (decoupled, first)
//          then adam's update without the weight_decay term on g
// decoupled_weight_decay (any optimizer): p *= 1 - lr * weight_decay first, as adamw, then the
//          optimizer's update without the weight_decay term on g
// rmsprop  g += weight_decay * p                                  (if weight_decay != 0)
//          s = alpha * s + (1 - alpha) * g * g
//          if centered: a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a * a) + eps
//          else:        d = sqrt(s) + eps
//          if momentum > 0: buf = momentum * buf + g / d;  p -= lr * buf
//          else:            p -= lr * g / d
//
// State buffer names (as in PyTorch's optimizer state): sgd "momentum_buffer" (momentum != 0);
// adam/adamw "exp_avg" (m), "exp_avg_sq" (v); rmsprop "square_avg" (s), "momentum_buffer"
// (momentum > 0), "grad_avg" (a, centered). All start at zero.
//
// One deliberate difference: centered RMSProp clamps s - a * a at 0 before the square root, where
// rounding could make it slightly negative and PyTorch would produce NaN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace recur {

// A gradient whose embedding table's part is held by rows (a text model's training step touches
// the rows of the words its batch reads, a few thousand of a 20,000-word table): elements
// [offset, offset + vocab x width) of the gradient are row r's at offset + r x width, which is
// values + slot[r] x width when slot[r] >= 0 and zero otherwise. Every function below that takes
// one reads (and writes) only those rows of the table's part, never the dense gradient's table
// part, and gives what it would give with the dense gradient holding those rows and zeros (bit
// for bit; SequenceRunner::table_gradient).
struct TableRows {
  std::size_t offset = 0;
  int vocab = 0, width = 0;
  const std::int32_t* slot = nullptr;  // [vocab]
  float* values = nullptr;             // [touched rows, width]
};

// f(begin, g, len) for the runs of a gradient of n elements in index order: `grads` outside the
// table and each touched row's values; with `zero_rows`, also each untouched row, g pointing at
// `width` zeros that f only reads (what an optimizer needs; a sum or a clipping skips them).
// Without a table (null), one run over grads.
template <typename F>
void for_each_gradient_run(float* grads, std::size_t n, const TableRows* table, bool zero_rows,
                           F&& f) {
  if (!table) {
    f(std::size_t{0}, grads, n);
    return;
  }
  const std::size_t W = static_cast<std::size_t>(table->width);
  std::vector<float> zeros(zero_rows ? W : 0, 0.f);
  if (table->offset > 0) f(std::size_t{0}, grads, table->offset);
  for (int r = 0; r < table->vocab; ++r) {
    const std::size_t begin = table->offset + static_cast<std::size_t>(r) * W;
    const std::int32_t k = table->slot[r];
    if (k >= 0)
      f(begin, table->values + static_cast<std::size_t>(k) * W, W);
    else if (zero_rows)
      f(begin, zeros.data(), W);
  }
  const std::size_t end = table->offset + static_cast<std::size_t>(table->vocab) * W;
  if (end < n) f(end, grads + end, n - end);
}

enum class OptimizerKind { sgd, adam, adamw, rmsprop };

// "sgd", "adam", "adamw", "rmsprop"; otherwise
// Error("--optimizer", "unknown optimizer 'x' (sgd, adam, adamw, rmsprop)").
OptimizerKind parse_optimizer(const std::string& name);
const char* optimizer_name(OptimizerKind kind);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float lr = 1e-3f;  // the base rate; a schedule derives each step's rate from it
  float momentum = 0;
  float dampening = 0;
  bool nesterov = false;
  float weight_decay = 0;
  // Decoupled weight decay for sgd, adam and rmsprop too (adamw always is): p *= 1 - lr * wd
  // before the update, whose gradient then has no weight_decay * p term (SGDW; adam becomes
  // adamw bit for bit).
  bool decoupled_weight_decay = false;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float alpha = 0.99f;  // rmsprop smoothing constant
  bool centered = false;
  // An exponential moving average of the weights (--ema DECAY; 0 = none): the average starts as
  // the weights before the first update, and after update t (1, 2, ...) becomes
  // d * average + (1 - d) * weights with d = min(decay, (1 + t) / (10 + t)) (warmed up, so a
  // short run's average follows its weights), in float (averaged()).
  float ema = 0;
};

// Throws recur::Error naming the flag (--lr, --momentum, --weight-decay, --beta1, --beta2,
// --eps, --alpha, --nesterov) for a negative or NaN value, a beta outside [0, 1), or nesterov
// without momentum or with dampening.
void check_optimizer_config(const OptimizerConfig& cfg);

class Optimizer {
 public:
  // Validates cfg (check_optimizer_config) and allocates the state for n parameters.
  Optimizer(const OptimizerConfig& cfg, std::size_t n);

  // Splits an update over threads: run(n, fn) calls fn(begin, end) on ranges that cover [0, n)
  // once each, perhaps at the same time, and returns when all are done (the trainer gives its
  // SequenceRunner's range_runner()). Every update (and the decoupled decay, the EMA) is
  // element by element, so step() gives the same bits with or without it; with a table (rows
  // mode) the update runs on one thread.
  using RangeRunner =
      std::function<void(std::size_t, const std::function<void(std::size_t, std::size_t)>&)>;
  void set_range_runner(RangeRunner run) { run_ranges_ = std::move(run); }

  // One update of params[0, n) from grads[0, n) at rate lr (the schedule's rate for this step).
  // Allocates nothing. Throws recur::Error("--lr", ...) for a negative or NaN lr. With `table`,
  // the table's rows come from it (TableRows): untouched rows update as with a zero gradient.
  void step(float* params, const float* grads, float lr, const TableRows* table = nullptr);

  // The moving average of the weights (OptimizerConfig::ema), size() floats after the first
  // step; empty without one.
  const std::vector<float>& averaged() const { return ema_; }

  // Updates done so far (PyTorch's state "step").
  int64_t steps() const { return steps_; }
  std::size_t size() const { return n_; }
  const OptimizerConfig& config() const { return cfg_; }

  // The state to save in or restore from a checkpoint: the named buffers this configuration
  // uses, each of size() floats, plus steps(). The pointers stay valid while this object lives
  // and is not moved. After restoring the buffers, call set_step_count with the saved count.
  std::vector<std::pair<std::string, std::vector<float>*>> state_buffers();
  // Throws recur::Error("optimizer state", ...) for a negative count.
  void set_step_count(int64_t t);

  // Frees the update state (moments, momentum) once training is over, keeping averaged() and
  // steps(): the test pass after a run needs neither (Adam's two moments are twice the model).
  // step() afterwards throws recur::Error("optimizer state", ...).
  void release_update_state();

 private:
  // The weight decay that enters the gradient: 0 when it is decoupled (applied to p by step()).
  float gradient_decay() const {
    return cfg_.decoupled_weight_decay && cfg_.kind != OptimizerKind::adamw ? 0.f
                                                                            : cfg_.weight_decay;
  }
  void step_sgd(float* params, const float* grads, float lr, const TableRows* table);
  void step_adam(float* params, const float* grads, float lr, const TableRows* table);
  void step_rmsprop(float* params, const float* grads, float lr, const TableRows* table);
  // fn(begin, end) over [0, n): split by the range runner, or whole on this thread.
  void over_ranges(const std::function<void(std::size_t, std::size_t)>& fn) const;
  // update(begin, g, len) over the gradient's runs: [0, n) split by the range runner, or the
  // table's runs (for_each_gradient_run) on this thread.
  void over_runs(const float* grads, const TableRows* table,
                 const std::function<void(std::size_t, const float*, std::size_t)>& update) const;

  OptimizerConfig cfg_;
  std::size_t n_;
  int64_t steps_ = 0;
  std::vector<float> momentum_buffer_;
  std::vector<float> exp_avg_;
  std::vector<float> exp_avg_sq_;
  std::vector<float> square_avg_;
  std::vector<float> grad_avg_;
  std::vector<float> ema_;
  bool released_ = false;   // release_update_state() was called
  RangeRunner run_ranges_;  // null: every update on the calling thread
};

// torch.nn.utils.clip_grad_norm_ with the 2-norm: computes the norm of all n gradients together
// (accumulated in double, element i in partial sum i mod 4 and the last n mod 4 in the first,
// the four then added in order: the same sum whichever elements are zero and skipped) and, when
// max_norm / (norm + 1e-6) < 1, multiplies every gradient by that factor. Returns the norm before
// clipping. A non-finite norm (an inf or NaN gradient) is returned with the gradients left
// untouched, so the caller can report it or skip the step. Throws Error("--clip-grad-norm", ...)
// unless max_norm > 0. With `table`, its rows are the table's part (TableRows).
float clip_grad_norm(float* grads, std::size_t n, float max_norm, const TableRows* table = nullptr);

// torch.nn.utils.clip_grad_value_: clamps every gradient to [-limit, limit] (NaN stays NaN).
// Throws Error("--clip-grad-value", ...) unless limit > 0.
void clip_grad_value(float* grads, std::size_t n, float limit, const TableRows* table = nullptr);

// True when no gradient is NaN or infinite.
bool all_finite(const float* grads, std::size_t n, const TableRows* table = nullptr);

enum class ScheduleKind { constant, step, cosine };

// "constant", "step", "cosine"; otherwise
// Error("--schedule", "unknown schedule 'x' (constant, step, cosine)").
ScheduleKind parse_schedule(const std::string& name);
const char* schedule_name(ScheduleKind kind);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  int64_t warmup_steps = 0;
  int64_t step_size = 1000;  // step: decay every step_size steps
  float gamma = 0.1f;        // step: decay factor
  int64_t total_steps = 0;   // cosine: training length in steps, warmup included
  float min_lr = 0;          // cosine: the rate it ends at
};

// Throws recur::Error naming the flag (--warmup, --step-size, --gamma, --min-lr; --schedule
// for total_steps, which comes from --epochs / --steps) for a negative warmup, step_size <= 0 or
// gamma <= 0 (step), total_steps <= 0 or a negative min_lr (cosine).
void check_schedule_config(const ScheduleConfig& s);

// The rate for optimizer step `step` (0 for the first update), computed in double. With
// W = warmup_steps and s = step - W:
//   step < W:  base_lr * (step + 1) / W            (linear warmup: base_lr / W ... base_lr)
//   constant:  base_lr
//   step:      base_lr * gamma^floor(s / step_size)                    (torch StepLR)
//   cosine:    with D = total_steps - W: for s < D,
//              min_lr + (base_lr - min_lr) * (1 + cos(pi * s / D)) / 2  (torch CosineAnnealingLR)
//              and min_lr from s >= D on.
// Validates s with check_schedule_config.
float learning_rate_at(const ScheduleConfig& s, float base_lr, int64_t step);

}  // namespace recur
