// Prometheus text format (metrics.hpp).
#include "serve/metrics.hpp"

#include <fmt/core.h>

namespace recur::serve {

namespace {

template <typename H, typename Bounds>
void add(H& h, const Bounds& bounds, double value) {
  std::size_t i = 0;
  while (i < bounds.size() && value > bounds[i]) ++i;
  ++h.counts[i];
  h.sum += value;
  ++h.count;
}

template <typename H, typename Bounds>
void print(std::string& out, const char* name, const std::string& labels, const H& h,
           const Bounds& bounds) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, bounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, h.count);
  const std::string plain =
      labels.empty() ? std::string() : fmt::format("{{{}}}", labels.substr(0, labels.size() - 1));
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, plain, h.sum, name, plain, h.count);
}

}  // namespace

void Metrics::request(const std::string& model, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  PerModel& m = models_[model];
  ++m.requests[fmt::format("{}xx", status / 100)];
  add(m.latency, kLatencyBounds, seconds);
}

void Metrics::batch(const std::string& model, std::int64_t samples) {
  std::lock_guard<std::mutex> lock(mutex_);
  add(models_[model].batches, kBatchBounds, static_cast<double>(samples));
}

void Metrics::session_batch(const std::string& model, std::int64_t sessions) {
  std::lock_guard<std::mutex> lock(mutex_);
  add(models_[model].session_batches, kBatchBounds, static_cast<double>(sessions));
}

void Metrics::set_sessions(const std::string& model, std::int64_t live, std::int64_t expired) {
  std::lock_guard<std::mutex> lock(mutex_);
  models_[model].sessions = live;
  models_[model].sessions_expired = expired;
}

std::string Metrics::text() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP recur_requests_total Requests answered, by model and status class.\n";
  out += "# TYPE recur_requests_total counter\n";
  for (const auto& [model, m] : models_)
    for (const auto& [status, n] : m.requests)
      out +=
          fmt::format("recur_requests_total{{model=\"{}\",status=\"{}\"}} {}\n", model, status, n);
  out += "# HELP recur_errors_total Requests answered with a 4xx or 5xx status, by model.\n";
  out += "# TYPE recur_errors_total counter\n";
  for (const auto& [model, m] : models_) {
    std::uint64_t errors = 0;
    for (const auto& [status, n] : m.requests)
      if (status != "2xx") errors += n;
    out += fmt::format("recur_errors_total{{model=\"{}\"}} {}\n", model, errors);
  }
  out += "# HELP recur_request_seconds Time from a request's arrival to its answer.\n";
  out += "# TYPE recur_request_seconds histogram\n";
  for (const auto& [model, m] : models_)
    print(out, "recur_request_seconds", fmt::format("model=\"{}\",", model), m.latency,
          kLatencyBounds);
  out += "# HELP recur_batch_samples Samples per forward pass (dynamic batching).\n";
  out += "# TYPE recur_batch_samples histogram\n";
  for (const auto& [model, m] : models_)
    if (m.batches.count > 0)
      print(out, "recur_batch_samples", fmt::format("model=\"{}\",", model), m.batches,
            kBatchBounds);
  out += "# HELP recur_session_batch_sessions Streaming sessions per batched step call.\n";
  out += "# TYPE recur_session_batch_sessions histogram\n";
  for (const auto& [model, m] : models_)
    if (m.session_batches.count > 0)
      print(out, "recur_session_batch_sessions", fmt::format("model=\"{}\",", model),
            m.session_batches, kBatchBounds);
  out += "# HELP recur_sessions Streaming sessions open.\n# TYPE recur_sessions gauge\n";
  for (const auto& [model, m] : models_)
    if (!model.empty())
      out += fmt::format("recur_sessions{{model=\"{}\"}} {}\n", model, m.sessions);
  out += "# HELP recur_sessions_expired_total Sessions dropped after --session-idle-s.\n";
  out += "# TYPE recur_sessions_expired_total counter\n";
  for (const auto& [model, m] : models_)
    if (!model.empty())
      out += fmt::format("recur_sessions_expired_total{{model=\"{}\"}} {}\n", model,
                         m.sessions_expired);
  return out;
}

}  // namespace recur::serve
