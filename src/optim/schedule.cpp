// Learning-rate schedules: a pure function of the step number, so resuming from a checkpoint
// needs only the step count.
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "recur/error.hpp"
#include "recur/optim.hpp"

namespace recur {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  throw Error("--schedule", "unknown schedule '" + name + "' (constant, step, cosine)");
}

const char* schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::cosine:
      return "cosine";
  }
  RECUR_ASSERT(false);
}

void check_schedule_config(const ScheduleConfig& s) {
  if (s.warmup_steps < 0) {
    throw Error("--warmup", fmt::format("must be 0 or more, got {}", s.warmup_steps));
  }
  if (s.kind == ScheduleKind::step) {
    if (s.step_size <= 0) {
      throw Error("--step-size",
                  fmt::format("must be a positive number of steps, got {}", s.step_size));
    }
    if (!(s.gamma > 0)) {
      throw Error("--gamma", fmt::format("must be a positive number, got {}", s.gamma));
    }
  }
  if (s.kind == ScheduleKind::cosine) {
    if (s.total_steps <= 0) {
      throw Error("--schedule",
                  fmt::format("cosine needs the number of training steps (--epochs or --steps) "
                              "above 0, got {}",
                              s.total_steps));
    }
    if (!(s.min_lr >= 0)) {
      throw Error("--min-lr", fmt::format("must be a non-negative number, got {}", s.min_lr));
    }
  }
}

float learning_rate_at(const ScheduleConfig& s, float base_lr, int64_t step) {
  check_schedule_config(s);
  RECUR_ASSERT(step >= 0);
  const double base = base_lr;
  if (step < s.warmup_steps) {
    return static_cast<float>(base * static_cast<double>(step + 1) /
                              static_cast<double>(s.warmup_steps));
  }
  const int64_t since_warmup = step - s.warmup_steps;
  switch (s.kind) {
    case ScheduleKind::constant:
      return base_lr;
    case ScheduleKind::step: {
      const auto decays = static_cast<double>(since_warmup / s.step_size);
      return static_cast<float>(base * std::pow(static_cast<double>(s.gamma), decays));
    }
    case ScheduleKind::cosine: {
      const int64_t length = s.total_steps - s.warmup_steps;
      const double min_lr = s.min_lr;
      if (since_warmup >= length) return s.min_lr;
      const double progress = static_cast<double>(since_warmup) / static_cast<double>(length);
      return static_cast<float>(min_lr + (base - min_lr) *
                                             (1.0 + std::cos(std::numbers::pi * progress)) / 2);
    }
  }
  RECUR_ASSERT(false);
}

}  // namespace recur
