// Dynamic batching (batcher.hpp).
#include "serve/batcher.hpp"

#include <algorithm>

namespace recur::serve {

Batcher::Batcher(const Predictor& predictor, BatchOptions options, BatchObserver observer)
    : predictor_(predictor), options_(options), observer_(std::move(observer)) {
  options_.max_batch = std::max(1, options_.max_batch);
  options_.max_delay_us = std::max(0, options_.max_delay_us);
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { work(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void Batcher::submit_images(std::vector<std::uint8_t> pixels, std::int64_t n, Completion done) {
  auto job = std::make_unique<Job>();
  job->is_u8 = true;
  job->n = n;
  job->u8 = std::move(pixels);
  job->done = std::move(done);
  submit(std::move(job));
}

void Batcher::submit_sequences(std::vector<float> x, std::int64_t n, int steps, Completion done) {
  auto job = std::make_unique<Job>();
  job->is_u8 = false;
  job->steps = steps;
  job->n = n;
  job->f32 = std::move(x);
  job->done = std::move(done);
  submit(std::move(job));
}

Predictions Batcher::wait_for(const std::function<void(Completion)>& submit_one) {
  Done signalled;
  Predictions answer;
  std::exception_ptr error;
  submit_one([&](Predictions&& a, std::exception_ptr e) {
    answer = std::move(a);
    error = e;
    signalled.signal();
  });
  signalled.wait();
  if (error) std::rethrow_exception(error);  // the Predictor's Error
  return answer;
}

Predictions Batcher::images(std::vector<std::uint8_t> pixels, std::int64_t n) {
  return wait_for([&](Completion done) { submit_images(std::move(pixels), n, std::move(done)); });
}

Predictions Batcher::sequences(std::vector<float> x, std::int64_t n, int steps) {
  return wait_for(
      [&](Completion done) { submit_sequences(std::move(x), n, steps, std::move(done)); });
}

void Batcher::submit(std::unique_ptr<Job> job) {
  job->arrived = std::chrono::steady_clock::now();
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A worker sleeps until the oldest request's deadline once it has one: wake it only for a
    // first request or a full batch, not for every request (a context switch each).
    wake = queue_.empty() || queued_ + job->n >= options_.max_batch;
    queued_ += job->n;
    queue_.push_back(std::move(job));
  }
  if (wake) wake_.notify_one();
}

void Batcher::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    const Job* first = queue_.front().get();
    bool is_u8 = first->is_u8;
    int steps = first->steps;
    const auto deadline = first->arrived + std::chrono::microseconds(options_.max_delay_us);
    const auto fits = [&](const Job* j) { return j->is_u8 == is_u8 && j->steps == steps; };
    // Wait for the batch to fill, until the oldest request's deadline.
    for (;;) {
      std::int64_t waiting = 0;
      for (const auto& j : queue_)
        if (fits(j.get())) waiting += j->n;
      if (waiting >= options_.max_batch || stopping_) break;
      if (wake_.wait_until(lock, deadline) == std::cv_status::timeout) break;
      if (queue_.empty() || !fits(queue_.front().get())) break;  // another worker took it
    }
    if (queue_.empty()) continue;
    // Another worker may have taken the requests waited for: the batch is of the kind of the
    // oldest request now queued.
    is_u8 = queue_.front()->is_u8;
    steps = queue_.front()->steps;
    // Take the oldest request and the compatible ones after it while they fit.
    std::vector<std::unique_ptr<Job>> owned;
    std::vector<Job*> jobs;
    std::int64_t samples = 0;
    for (auto it = queue_.begin(); it != queue_.end();) {
      const bool take =
          fits(it->get()) && (jobs.empty() || samples + (*it)->n <= options_.max_batch);
      if (take) {
        samples += (*it)->n;
        queued_ -= (*it)->n;
        jobs.push_back(it->get());
        owned.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
      if (samples >= options_.max_batch) break;
    }
    const bool more = !queue_.empty();
    lock.unlock();
    if (more) wake_.notify_one();  // the rest of the queue may need another worker
    run(jobs);
    for (Job* j : jobs) j->done(std::move(j->answer), j->error);
    owned.clear();
    lock.lock();
  }
}

void Batcher::run(std::vector<Job*>& jobs) {
  const int C = predictor_.num_classes();
  std::int64_t total = 0;
  for (const Job* j : jobs) total += j->n;
  Predictions all;
  try {
    if (jobs.size() == 1) {
      const Job& j = *jobs.front();
      all = j.is_u8 ? predictor_.predict_images(j.u8.data(), j.n)
                    : predictor_.predict_sequences(j.f32.data(), j.n, j.steps);
    } else if (jobs.front()->is_u8) {
      std::vector<std::uint8_t> joined;
      for (const Job* j : jobs) joined.insert(joined.end(), j->u8.begin(), j->u8.end());
      all = predictor_.predict_images(joined.data(), total);
    } else {
      std::vector<float> joined;
      for (const Job* j : jobs) joined.insert(joined.end(), j->f32.begin(), j->f32.end());
      all = predictor_.predict_sequences(joined.data(), total, jobs.front()->steps);
    }
  } catch (...) {
    // A batch fails as a whole only for a reason one of its requests carries (the Predictor
    // checks each row): run them one by one so that each gets its own answer or error.
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
  if (observer_) observer_(total);
  std::int64_t row = 0;
  for (Job* j : jobs) {
    Predictions& mine = j->answer;
    mine.count = j->n;
    mine.classes = C;
    mine.labels.assign(all.labels.begin() + row, all.labels.begin() + row + j->n);
    mine.probabilities.assign(all.probabilities.begin() + row * C,
                              all.probabilities.begin() + (row + j->n) * C);
    mine.logits.assign(all.logits.begin() + row * C, all.logits.begin() + (row + j->n) * C);
    row += j->n;
  }
}

}  // namespace recur::serve
