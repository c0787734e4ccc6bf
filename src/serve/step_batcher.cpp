// Streaming sessions batched step by step (step_batcher.hpp).
#include "serve/step_batcher.hpp"

#include <algorithm>

namespace recur::serve {

StepBatcher::StepBatcher(const Predictor& predictor, BatchOptions options, BatchObserver observer,
                         std::function<std::size_t()> open_sessions)
    : predictor_(predictor),
      options_(options),
      observer_(std::move(observer)),
      open_sessions_(std::move(open_sessions)) {
  options_.max_batch = std::max(1, options_.max_batch);
  options_.max_delay_us = std::max(0, options_.max_delay_us);
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { work(); });
}

StepBatcher::~StepBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void StepBatcher::feed(const StreamFeed& feed) {
  Job job;
  job.feed = feed;
  job.arrived = std::chrono::steady_clock::now();
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A worker sleeps until the oldest feed's deadline once it has one: wake it for a first
    // feed, a full batch, or a feed from every open session, not for every feed.
    wake = queue_.empty() || queue_.size() + 1 >= static_cast<std::size_t>(options_.max_batch) ||
           (open_sessions_ && queue_.size() + 1 >= open_sessions_());
    queue_.push_back(&job);
  }
  if (wake) wake_.notify_one();
  job.done.wait();
  if (job.error) std::rethrow_exception(job.error);
}

void StepBatcher::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    const auto deadline =
        queue_.front()->arrived + std::chrono::microseconds(options_.max_delay_us);
    // Wait for more sessions' feeds until the oldest one's deadline, unless the batch is full or
    // every open session has a feed queued (no other can come).
    while (!stopping_ && queue_.size() < static_cast<std::size_t>(options_.max_batch)) {
      lock.unlock();
      const std::size_t open = open_sessions_ ? open_sessions_() : 0;
      lock.lock();
      if (queue_.empty() || queue_.size() >= open) break;
      if (wake_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }
    if (queue_.empty()) continue;  // another worker took them
    const std::size_t take = std::min(queue_.size(), static_cast<std::size_t>(options_.max_batch));
    std::vector<Job*> jobs(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
    const bool more = !queue_.empty();
    lock.unlock();
    if (more) wake_.notify_one();  // the rest may need another worker
    run(jobs);
    for (Job* j : jobs) j->done.signal();
    lock.lock();
  }
}

void StepBatcher::run(std::vector<Job*>& jobs) {
  std::vector<StreamFeed> feeds;
  for (const Job* j : jobs) feeds.push_back(j->feed);
  try {
    predictor_.feed_many(feeds);
  } catch (...) {
    // feed_many checks every feed before it moves any state: run them one by one so that each
    // gets its own result or error.
    if (jobs.size() > 1) {
      for (Job* j : jobs) {
        std::vector<Job*> alone = {j};
        run(alone);
      }
      return;
    }
    jobs.front()->error = std::current_exception();
    return;
  }
  if (observer_) observer_(static_cast<std::int64_t>(jobs.size()));
}

}  // namespace recur::serve
