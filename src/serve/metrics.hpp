// The server's counters in Prometheus' text format (GET /metrics): requests and errors by model
// and status class, samples per forward pass, and request latency as histograms.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace recur::serve {

class Metrics {
 public:
  // One answered request: its model ("" for pages, health and metadata), status, seconds.
  void request(const std::string& model, int status, double seconds);
  // One forward pass of `samples` rows for `model`.
  void batch(const std::string& model, std::int64_t samples);
  // One batched step of `sessions` streaming sessions (Predictor::feed_many) for `model`.
  void session_batch(const std::string& model, std::int64_t sessions);
  void set_sessions(const std::string& model, std::int64_t live, std::int64_t expired);
  std::string text();

  static constexpr std::array<double, 14> kLatencyBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  static constexpr std::array<double, 9> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

 private:
  template <std::size_t N>
  struct Histogram {
    std::array<std::uint64_t, N + 1> counts{};  // the last: above every bound
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct PerModel {
    std::map<std::string, std::uint64_t> requests;  // by status class ("2xx", "4xx", "5xx")
    Histogram<kLatencyBounds.size()> latency;
    Histogram<kBatchBounds.size()> batches;
    Histogram<kBatchBounds.size()> session_batches;
    std::int64_t sessions = 0, sessions_expired = 0;
  };
  std::mutex mutex_;
  std::map<std::string, PerModel> models_;
};

}  // namespace recur::serve
