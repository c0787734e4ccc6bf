#include "core/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>

namespace recur {

namespace {

// This thread's affinity from before a ThreadPool pinned it (the mask that pool restores), or
// null while no pool has it pinned.
thread_local const cpu_set_t* t_unpinned = nullptr;

bool pin_thread(pthread_t thread, int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return pthread_setaffinity_np(thread, sizeof(one), &one) == 0;
}

}  // namespace

std::vector<int> usable_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  if (t_unpinned)
    set = *t_unpinned;
  else if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

ThreadPool::ThreadPool(int threads) {
  for (int k = 1; k < std::max(1, threads); ++k)
    workers_.emplace_back([this, k] { worker_loop(k); });
  // One thread per allowed CPU: pin thread k to the k-th CPU. Left to the scheduler, a woken
  // worker often shares the caller's core for the first ~80 ms, until the load balancer moves
  // it (measured: the first 20 RNN training steps ran at one-thread speed). With fewer threads
  // than CPUs nothing is pinned, so processes running side by side can spread out.
  const std::vector<int> cpus = usable_cpus();
  if (threads > 1 && static_cast<int>(cpus.size()) == threads) {
    // A caller that an earlier pool pinned stays as that pool left it (on cpus[0]).
    if (!t_unpinned &&
        pthread_getaffinity_np(pthread_self(), sizeof(caller_affinity_), &caller_affinity_) == 0 &&
        pin_thread(pthread_self(), cpus[0])) {
      caller_ = pthread_self();
      t_unpinned = &caller_affinity_;
      unpinned_mark_ = &t_unpinned;
    }
    for (int k = 1; k < threads; ++k) pin_thread(workers_[k - 1].native_handle(), cpus[k]);
  }
}

ThreadPool::~ThreadPool() {
  // The caller's thread gets its own affinity back (it may have been the main thread).
  if (unpinned_mark_) {
    pthread_setaffinity_np(caller_, sizeof(caller_affinity_), &caller_affinity_);
    *unpinned_mark_ = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= tasks_) continue;
      job = job_;
    }
    std::exception_ptr err;
    try {
      (*job)(index);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (err && !error_) error_ = err;
    if (--pending_ == 0) done_.notify_one();
  }
}

void ThreadPool::run(int tasks, const std::function<void(int)>& fn) {
  tasks = std::clamp(tasks, 0, size());
  if (tasks == 0) return;
  if (tasks == 1) {
    fn(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    tasks_ = tasks;
    pending_ = tasks - 1;
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  std::exception_ptr mine;
  try {
    fn(0);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  if (mine) std::rethrow_exception(mine);
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::parallel_for(std::int64_t n,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
  const int parts = static_cast<int>(std::min<std::int64_t>(size(), std::max<std::int64_t>(1, n)));
  run(parts, [&](int k) {
    const std::int64_t begin = n * k / parts, end = n * (k + 1) / parts;
    fn(begin, end);
  });
}

}  // namespace recur
