// Dynamic batching: concurrent requests for one model are joined into one forward pass.
//
// A request's samples wait in the model's queue; a worker takes the oldest request and every
// other waiting request of the same kind (u8 images, or f32 sequences of the same steps) up to
// max_batch samples, waiting at most max_delay_us from the oldest request's arrival for more to
// come when the batch is not full, runs the Predictor once on the joined batch and hands every
// request its rows. Requests larger than max_batch run on their own.
//
// A request is submitted with a completion, which the worker calls with the answer (or the
// Predictor's error) once its batch has run: the server's I/O threads never wait for a batch.
// images() and sequences() are the waiting forms of the same.
//
// A row's answer does not depend on its neighbours as far as the Predictor's kernels keep rows
// independent (include/recur/predictor.hpp); the server adds no arithmetic of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "recur/predictor.hpp"

namespace recur::serve {

// A one-shot signal from a batch worker to the request thread waiting on its result: a mutex and
// a condition variable (a futex wait and wake; C++20's semaphores spin and yield the CPU first,
// which costs context switches on a busy machine).
class Done {
 public:
  // Notifies under the lock: the waiter may return and destroy this object as soon as it sees
  // done_, so nothing here may touch it after the unlock.
  void signal() {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    cv_.notify_one();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

struct BatchOptions {
  // A free worker takes what is queued at once (no wait by default): under load the batches
  // form while the workers are busy, and an idle core never waits on a timer. 16 rows cost
  // about what 64 cost per sample, and a short pass lets the other core read the next
  // requests meanwhile (docs/SERVE.md, "Dynamic batching", has the measurements).
  int max_batch = 16;    // samples per forward pass
  int max_delay_us = 0;  // longest wait for a batch to fill
  int workers = 2;       // forward passes run at once for this model (one per core here)
};

class Batcher {
 public:
  // Called after each forward pass with its sample count (for metrics); may be empty.
  using BatchObserver = std::function<void(std::int64_t samples)>;
  Batcher(const Predictor& predictor, BatchOptions options, BatchObserver observer);
  ~Batcher();  // finishes the queued requests, then joins the workers
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Called once on a worker thread: the answer, or the error (then the answer is empty).
  using Completion = std::function<void(Predictions&& answer, std::exception_ptr error)>;

  // u8 images [n, rows, cols]: the answer of predict_images on exactly these rows.
  void submit_images(std::vector<std::uint8_t> pixels, std::int64_t n, Completion done);
  // f32 sequences [n, steps, features], all full length (image-sequence models).
  void submit_sequences(std::vector<float> x, std::int64_t n, int steps, Completion done);
  // The same, waiting for the answer (rethrows the Predictor's error).
  Predictions images(std::vector<std::uint8_t> pixels, std::int64_t n);
  Predictions sequences(std::vector<float> x, std::int64_t n, int steps);

 private:
  struct Job {
    bool is_u8 = true;
    int steps = 0;
    std::int64_t n = 0;
    std::vector<std::uint8_t> u8;
    std::vector<float> f32;
    std::chrono::steady_clock::time_point arrived;
    Predictions answer;
    std::exception_ptr error;
    Completion done;
  };
  void submit(std::unique_ptr<Job> job);
  Predictions wait_for(const std::function<void(Completion)>& submit_one);
  void work();
  void run(std::vector<Job*>& jobs);

  const Predictor& predictor_;
  BatchOptions options_;
  BatchObserver observer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  std::int64_t queued_ = 0;  // samples in queue_
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace recur::serve
