// Streaming sessions: the recurrent state of each sequence a client feeds piece by piece, kept
// by the server between requests (Triton's sequence_id / sequence_start / sequence_end).
//
// At most max_sessions live at once; a session untouched for idle_s seconds expires and its id
// is forgotten. A session is fed by one request at a time (its own lock); the feeds of different
// sessions that arrive together are joined into one batched step (step_batcher.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "recur/predictor.hpp"
#include "serve/protocol.hpp"
#include "serve/step_batcher.hpp"

namespace recur::serve {

struct SessionOptions {
  int max_sessions = 1024;
  double idle_s = 300;
};

class SessionTable {
 public:
  // Feeds of concurrent sessions are joined as `batch` bounds them; `observer` sees each
  // batched step's session count.
  SessionTable(const Predictor& predictor, SessionOptions options, BatchOptions batch,
               StepBatcher::BatchObserver observer);

  // Feeds the request's steps into its sequence (made fresh by sequence_start) and returns the
  // reading so far as a batch of one; steps_read is set to the steps fed so far. sequence_end
  // forgets the session after answering. Throws BadRequest (unknown sequence: 400; table full:
  // 429) or the Predictor's Error (then the state is unchanged).
  Predictions feed(const InferRequest& request, std::int64_t& steps_read);

  std::size_t live();  // sessions alive now (expired ones dropped first)
  std::int64_t expired() const { return expired_; }

 private:
  struct Session {
    std::mutex mutex;
    StreamState state;
    std::chrono::steady_clock::time_point used;
    bool ended = false;
  };
  void drop_idle(std::chrono::steady_clock::time_point now);  // with mutex_ held
  std::shared_ptr<Session> find_or_start(const SequenceParams& sequence);

  const Predictor& predictor_;
  SessionOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  std::atomic<std::size_t> open_{0};  // sessions_.size(), read by the batcher without mutex_
  std::int64_t expired_ = 0;
  StepBatcher batcher_;  // last: its workers stop before the table goes
};

}  // namespace recur::serve
