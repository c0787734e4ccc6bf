// Streaming sessions batched step by step: the feeds of concurrent sessions of one model are
// joined into one Predictor::feed_many call, which runs their rows together one timestep at a
// time (include/recur/predictor.hpp), so n sessions fed one row each cost one batched step.
//
// A caller (an HTTP thread holding its session's lock, hence its StreamState) queues a feed and
// waits; a worker takes the oldest feed and those behind it up to max_batch sessions, waiting at
// most max_delay_us from the oldest one's arrival for more to come unless every open session
// already has a feed queued, runs feed_many once and wakes each caller. A state is used by the
// worker only while its caller waits, so it stays with one thread at a time. Each session's
// result is the one of feeding it alone, bit for bit (feed_many's contract).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "recur/predictor.hpp"
#include "serve/batcher.hpp"

namespace recur::serve {

class StepBatcher {
 public:
  // Called after each feed_many with its session count (for metrics); may be empty.
  using BatchObserver = std::function<void(std::int64_t sessions)>;
  // open_sessions: how many sessions could send a feed now (the batch does not wait for more).
  StepBatcher(const Predictor& predictor, BatchOptions options, BatchObserver observer,
              std::function<std::size_t()> open_sessions);
  ~StepBatcher();  // finishes the queued feeds, then joins the workers
  StepBatcher(const StepBatcher&) = delete;
  StepBatcher& operator=(const StepBatcher&) = delete;

  // Feeds `feed` (its state held by the calling thread, which waits here) together with the
  // other sessions' feeds queued now. Throws the Predictor's Error for this feed alone; the
  // state is unchanged then.
  void feed(const StreamFeed& feed);

 private:
  struct Job {
    StreamFeed feed;
    std::chrono::steady_clock::time_point arrived;
    Done done;  // signalled by the worker once the result or error is set
    std::exception_ptr error;
  };
  void work();
  void run(std::vector<Job*>& jobs);

  const Predictor& predictor_;
  BatchOptions options_;
  BatchObserver observer_;
  std::function<std::size_t()> open_sessions_;
  std::mutex mutex_;
  std::condition_variable wake_;  // workers: a feed arrived or stopping
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace recur::serve
