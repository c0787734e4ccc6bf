// The optimizer updates. Each is one pass over contiguous arrays with the per-configuration
// choices made at compile time, so the loop bodies are branch-free and vectorize. Scalars are
// prepared once per step, in double, the way PyTorch computes them in Python before handing
// them to its float kernels; the per-element arithmetic is float in PyTorch's operation order.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>

#include <fmt/format.h>

#include "recur/error.hpp"
#include "recur/optim.hpp"

namespace recur {

namespace {

// Below this many parameters one thread finishes before a parallel region would start.
constexpr std::size_t kParallelMinimum = std::size_t{1} << 15;

// Rounds a scalar computed in double to the float PyTorch's kernels receive.
float as_kernel_scalar(double value) {
  return static_cast<float>(value);
}

// The setting a float stands for: the shortest decimal that rounds to it, read as a double
// (0.999f gives 0.999, not 0.99900001287). PyTorch holds settings as Python floats, so this is
// the value it computes 1 - beta2 or lr / (1 - beta1^t) from; widening the float instead would
// shift 1 - beta2 by 1e-5 relative.
double decimal_value(float value) {
  char text[32];
  const auto written = std::to_chars(text, text + sizeof text, value);
  double out = value;
  std::from_chars(text, written.ptr, out);
  return out;
}

struct SgdScalars {
  float weight_decay;
  float momentum;
  float one_minus_dampening;
  float neg_lr;
  bool first_step;  // the momentum buffer starts as a copy of the first gradient
};

template <bool kWeightDecay>
void sgd_plain_update(float* params, const float* grads, std::size_t n, const SgdScalars s) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    const float p = params[i];
    float d = grads[i];
    if constexpr (kWeightDecay) d = d + s.weight_decay * p;
    params[i] = p + s.neg_lr * d;
  }
}

template <bool kWeightDecay, bool kNesterov>
void sgd_momentum_update(float* params, const float* grads, float* buffer, std::size_t n,
                         const SgdScalars s) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    const float p = params[i];
    float d = grads[i];
    if constexpr (kWeightDecay) d = d + s.weight_decay * p;
    const float b = s.first_step ? d : buffer[i] * s.momentum + s.one_minus_dampening * d;
    buffer[i] = b;
    if constexpr (kNesterov) {
      d = d + s.momentum * b;
    } else {
      d = b;
    }
    params[i] = p + s.neg_lr * d;
  }
}

struct AdamScalars {
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float neg_step_size;          // -lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  float eps;
  float weight_decay;     // adam: added to the gradient as weight_decay * p
  float decoupled_scale;  // adamw: 1 - lr * weight_decay, applied to p first
};

template <bool kL2Decay, bool kDecoupledDecay>
void adam_update(float* params, const float* grads, float* exp_avg, float* exp_avg_sq,
                 std::size_t n, const AdamScalars s) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    float p = params[i];
    if constexpr (kDecoupledDecay) p = p * s.decoupled_scale;
    float g = grads[i];
    if constexpr (kL2Decay) g = g + s.weight_decay * p;
    const float m = exp_avg[i] * s.beta1 + s.one_minus_beta1 * g;
    const float v = exp_avg_sq[i] * s.beta2 + s.one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    const float denom = std::sqrt(v) / s.bias_correction2_sqrt + s.eps;
    params[i] = p + s.neg_step_size * m / denom;
  }
}

struct RmspropScalars {
  float alpha, one_minus_alpha;
  float eps;
  float weight_decay;
  float momentum;
  float neg_lr;
};

template <bool kWeightDecay, bool kCentered, bool kMomentum>
void rmsprop_update(float* params, const float* grads, float* square_avg, float* grad_avg,
                    float* buffer, std::size_t n, const RmspropScalars s) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinimum)
  for (std::size_t i = 0; i < n; ++i) {
    const float p = params[i];
    float g = grads[i];
    if constexpr (kWeightDecay) g = g + s.weight_decay * p;
    const float sq = square_avg[i] * s.alpha + s.one_minus_alpha * g * g;
    square_avg[i] = sq;
    float avg;
    if constexpr (kCentered) {
      const float a = grad_avg[i] * s.alpha + s.one_minus_alpha * g;
      grad_avg[i] = a;
      avg = std::sqrt(std::max(sq - a * a, 0.0f));
    } else {
      avg = std::sqrt(sq);
    }
    avg = avg + s.eps;
    if constexpr (kMomentum) {
      const float b = buffer[i] * s.momentum + g / avg;
      buffer[i] = b;
      params[i] = p + s.neg_lr * b;
    } else {
      params[i] = p + s.neg_lr * g / avg;
    }
  }
}

void check_non_negative(const char* flag, float value) {
  if (!(value >= 0)) throw Error(flag, fmt::format("must be a non-negative number, got {}", value));
}

void check_beta(const char* flag, float value) {
  if (!(value >= 0 && value < 1))
    throw Error(flag, fmt::format("must be in [0, 1), got {}", value));
}

}  // namespace

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  if (name == "adamw") return OptimizerKind::adamw;
  if (name == "rmsprop") return OptimizerKind::rmsprop;
  throw Error("--optimizer", "unknown optimizer '" + name + "' (sgd, adam, adamw, rmsprop)");
}

const char* optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::rmsprop:
      return "rmsprop";
  }
  RECUR_ASSERT(false);
}

void check_optimizer_config(const OptimizerConfig& cfg) {
  check_non_negative("--lr", cfg.lr);
  check_non_negative("--momentum", cfg.momentum);
  check_non_negative("--weight-decay", cfg.weight_decay);
  check_non_negative("--eps", cfg.eps);
  check_non_negative("--alpha", cfg.alpha);
  check_beta("--beta1", cfg.beta1);
  check_beta("--beta2", cfg.beta2);
  if (!(cfg.ema >= 0 && cfg.ema < 1))
    throw Error("--ema", fmt::format("must be a decay in [0, 1) (0 = off), got {}", cfg.ema));
  if (cfg.decoupled_weight_decay && cfg.weight_decay == 0)
    throw Error("--decoupled-weight-decay", "needs a --weight-decay above 0 to decouple");
  if (cfg.decoupled_weight_decay && cfg.kind == OptimizerKind::adamw)
    throw Error("--decoupled-weight-decay",
                "adamw's weight decay is decoupled already; drop the flag or use --optimizer adam");
  if (cfg.nesterov && cfg.kind != OptimizerKind::sgd)
    throw Error("--nesterov", "applies to --optimizer sgd only");
  if (cfg.kind == OptimizerKind::sgd && cfg.nesterov && (cfg.momentum <= 0 || cfg.dampening != 0)) {
    throw Error("--nesterov", "needs --momentum above 0 (and no dampening)");
  }
}

Optimizer::Optimizer(const OptimizerConfig& cfg, std::size_t n) : cfg_(cfg), n_(n) {
  check_optimizer_config(cfg_);
  if (cfg_.ema > 0) ema_.assign(n_, 0.0f);
  switch (cfg_.kind) {
    case OptimizerKind::sgd:
      if (cfg_.momentum != 0) momentum_buffer_.assign(n_, 0.0f);
      break;
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      exp_avg_.assign(n_, 0.0f);
      exp_avg_sq_.assign(n_, 0.0f);
      break;
    case OptimizerKind::rmsprop:
      square_avg_.assign(n_, 0.0f);
      if (cfg_.momentum > 0) momentum_buffer_.assign(n_, 0.0f);
      if (cfg_.centered) grad_avg_.assign(n_, 0.0f);
      break;
  }
}

void Optimizer::step(float* params, const float* grads, float lr, const TableRows* table) {
  if (!(lr >= 0)) throw Error("--lr", fmt::format("must be a non-negative number, got {}", lr));
  if (released_)
    throw Error("optimizer state", "was released at the end of training; no update can follow");
  if (cfg_.ema > 0 && steps_ == 0) std::copy(params, params + n_, ema_.begin());
  if (cfg_.decoupled_weight_decay && cfg_.weight_decay != 0 && cfg_.kind != OptimizerKind::adamw) {
    // The decay first, on its own (adamw's scale, rounded to float once); the update below then
    // sees no decay term (gradient_decay() is 0).
    const float scale =
        as_kernel_scalar(1.0 - decimal_value(lr) * decimal_value(cfg_.weight_decay));
    over_ranges([&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) params[i] = params[i] * scale;
    });
  }
  switch (cfg_.kind) {
    case OptimizerKind::sgd:
      step_sgd(params, grads, lr, table);
      break;
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      step_adam(params, grads, lr, table);
      break;
    case OptimizerKind::rmsprop:
      step_rmsprop(params, grads, lr, table);
      break;
  }
  if (cfg_.ema > 0) {
    // Warmed up: update t (1, 2, ...) decays by min(ema, (1 + t) / (10 + t)), so a short run's
    // average is not held near its starting weights.
    const double t = static_cast<double>(steps_);
    const double decay = std::min(decimal_value(cfg_.ema), (1.0 + t) / (10.0 + t));
    const float d = as_kernel_scalar(decay), rest = as_kernel_scalar(1.0 - decay);
    float* average = ema_.data();
    over_ranges([&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) average[i] = d * average[i] + rest * params[i];
    });
  }
}

// Updates of fewer elements than this stay on the calling thread: handing them out costs more.
constexpr std::size_t kRangeRunnerMinimum = 1 << 16;

void Optimizer::over_ranges(const std::function<void(std::size_t, std::size_t)>& fn) const {
  if (run_ranges_ && n_ >= kRangeRunnerMinimum)
    run_ranges_(n_, fn);
  else
    fn(0, n_);
}

void Optimizer::over_runs(
    const float* grads, const TableRows* table,
    const std::function<void(std::size_t, const float*, std::size_t)>& update) const {
  if (run_ranges_ && !table && n_ >= kRangeRunnerMinimum) {
    run_ranges_(
        n_, [&](std::size_t begin, std::size_t end) { update(begin, grads + begin, end - begin); });
    return;
  }
  // Untouched table rows included (their moments still decay): elementwise updates give the
  // same values whichever way the elements are cut.
  for_each_gradient_run(
      const_cast<float*>(grads), n_, table, true,
      [&](std::size_t begin, const float* g, std::size_t len) { update(begin, g, len); });
}

void Optimizer::step_sgd(float* params, const float* grads, float lr, const TableRows* table) {
  const float wd = gradient_decay();
  const SgdScalars s{wd, cfg_.momentum, as_kernel_scalar(1.0 - decimal_value(cfg_.dampening)), -lr,
                     steps_ == 0};
  ++steps_;
  const bool decay = wd != 0;
  if (cfg_.momentum == 0) {
    over_runs(grads, table, [&](std::size_t b, const float* g, std::size_t len) {
      decay ? sgd_plain_update<true>(params + b, g, len, s)
            : sgd_plain_update<false>(params + b, g, len, s);
    });
    return;
  }
  float* buffer = momentum_buffer_.data();
  over_runs(grads, table, [&](std::size_t b, const float* g, std::size_t len) {
    float* p = params + b;
    float* m = buffer + b;
    if (decay) {
      cfg_.nesterov ? sgd_momentum_update<true, true>(p, g, m, len, s)
                    : sgd_momentum_update<true, false>(p, g, m, len, s);
    } else {
      cfg_.nesterov ? sgd_momentum_update<false, true>(p, g, m, len, s)
                    : sgd_momentum_update<false, false>(p, g, m, len, s);
    }
  });
}

void Optimizer::step_adam(float* params, const float* grads, float lr, const TableRows* table) {
  ++steps_;
  const double t = static_cast<double>(steps_);
  const double beta1 = decimal_value(cfg_.beta1);
  const double beta2 = decimal_value(cfg_.beta2);
  const double rate = decimal_value(lr);
  const double bias_correction1 = 1.0 - std::pow(beta1, t);
  const double bias_correction2 = 1.0 - std::pow(beta2, t);
  const float decay = gradient_decay();
  const double wd = decimal_value(decay);
  const AdamScalars s{cfg_.beta1,
                      as_kernel_scalar(1.0 - beta1),
                      cfg_.beta2,
                      as_kernel_scalar(1.0 - beta2),
                      as_kernel_scalar(-(rate / bias_correction1)),
                      as_kernel_scalar(std::sqrt(bias_correction2)),
                      cfg_.eps,
                      decay,
                      as_kernel_scalar(1.0 - rate * wd)};
  float* m = exp_avg_.data();
  float* v = exp_avg_sq_.data();
  const bool adamw = cfg_.kind == OptimizerKind::adamw;
  over_runs(grads, table, [&](std::size_t b, const float* g, std::size_t len) {
    if (decay == 0) {
      adam_update<false, false>(params + b, g, m + b, v + b, len, s);
    } else if (adamw) {
      adam_update<false, true>(params + b, g, m + b, v + b, len, s);
    } else {
      adam_update<true, false>(params + b, g, m + b, v + b, len, s);
    }
  });
}

void Optimizer::step_rmsprop(float* params, const float* grads, float lr, const TableRows* table) {
  ++steps_;
  const RmspropScalars s{cfg_.alpha,    as_kernel_scalar(1.0 - decimal_value(cfg_.alpha)),
                         cfg_.eps,      gradient_decay(),
                         cfg_.momentum, -lr};
  float* sq = square_avg_.data();
  float* avg = grad_avg_.data();
  float* buf = momentum_buffer_.data();
  const bool decay = gradient_decay() != 0;
  const bool momentum = cfg_.momentum > 0;
  // Eight instantiations: each configuration gets a loop without branches.
  const int variant = (decay ? 4 : 0) + (cfg_.centered ? 2 : 0) + (momentum ? 1 : 0);
  over_runs(grads, table, [&](std::size_t b, const float* g, std::size_t n) {
    float* p = params + b;
    float* q = sq + b;
    // Buffers this configuration does not use are empty: never offset from null.
    float* a = avg ? avg + b : nullptr;
    float* f = buf ? buf + b : nullptr;
    switch (variant) {
      case 0:
        return rmsprop_update<false, false, false>(p, g, q, a, f, n, s);
      case 1:
        return rmsprop_update<false, false, true>(p, g, q, a, f, n, s);
      case 2:
        return rmsprop_update<false, true, false>(p, g, q, a, f, n, s);
      case 3:
        return rmsprop_update<false, true, true>(p, g, q, a, f, n, s);
      case 4:
        return rmsprop_update<true, false, false>(p, g, q, a, f, n, s);
      case 5:
        return rmsprop_update<true, false, true>(p, g, q, a, f, n, s);
      case 6:
        return rmsprop_update<true, true, false>(p, g, q, a, f, n, s);
      default:
        return rmsprop_update<true, true, true>(p, g, q, a, f, n, s);
    }
  });
}

std::vector<std::pair<std::string, std::vector<float>*>> Optimizer::state_buffers() {
  std::vector<std::pair<std::string, std::vector<float>*>> out;
  auto add = [&](const char* name, std::vector<float>& buffer) { out.emplace_back(name, &buffer); };
  switch (cfg_.kind) {
    case OptimizerKind::sgd:
      if (cfg_.momentum != 0) add("momentum_buffer", momentum_buffer_);
      break;
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      add("exp_avg", exp_avg_);
      add("exp_avg_sq", exp_avg_sq_);
      break;
    case OptimizerKind::rmsprop:
      add("square_avg", square_avg_);
      if (cfg_.momentum > 0) add("momentum_buffer", momentum_buffer_);
      if (cfg_.centered) add("grad_avg", grad_avg_);
      break;
  }
  if (cfg_.ema > 0) add("ema", ema_);
  return out;
}

void Optimizer::release_update_state() {
  for (std::vector<float>* buffer :
       {&momentum_buffer_, &exp_avg_, &exp_avg_sq_, &square_avg_, &grad_avg_})
    std::vector<float>().swap(*buffer);
  released_ = true;
}

void Optimizer::set_step_count(int64_t t) {
  if (t < 0) throw Error("optimizer state", fmt::format("step count {} is negative", t));
  steps_ = t;
}

}  // namespace recur
