// A fixed pool of worker threads for recur's data parallelism (the batch split across cores).
// Idle workers sleep on a condition variable: unlike a spinning OpenMP team they leave the
// cores to whoever needs them between parallel sections (measured: OpenMP's default active wait
// halved training speed on 2 cores). BLAS stays single-threaded inside each task. With exactly
// one thread per CPU the process may use, the threads are pinned, one per CPU (the constructing
// thread gets its affinity back when the pool is destroyed). While a pool has the constructing
// thread pinned, that thread still counts the CPUs it had before (usable_cpus), so a second pool
// started from it, or a thread count resolved there, sees the process's CPUs and not the one CPU.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace recur {

// The CPUs the calling thread may use, in order: its affinity mask, or, while a ThreadPool has
// pinned it to one CPU, the mask it had before that pool pinned it.
std::vector<int> usable_cpus();

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(0) ... fn(tasks - 1), task 0 on the calling thread, and returns when all are done.
  // tasks <= size(). The first exception thrown by a task is rethrown here.
  void run(int tasks, const std::function<void(int)>& fn);

  // Splits [0, n) into size() contiguous ranges and runs fn(begin, end) on each.
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn);

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;
  int pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  pthread_t caller_{};  // the constructing thread, pinned while the pool lives
  cpu_set_t caller_affinity_{};
  // Set when this pool pinned the caller: the caller's record of its CPUs from before
  // (usable_cpus), restored and cleared when this pool goes. A pool started on a thread another
  // pool pinned leaves it alone.
  const cpu_set_t** unpinned_mark_ = nullptr;
};

}  // namespace recur
