#include <thread>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "core/thread_pool.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/train.hpp"
#include "train/train_parts.hpp"

namespace recur {

int allowed_cpus() {
  // usable_cpus: while a pool has this thread pinned, the CPUs it had before.
  const std::size_t n = usable_cpus().size();
  if (n > 0) return static_cast<int>(n);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int process_threads() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::max(1, std::atoi(line.c_str() + 8));
  }
  return 1;
}

int max_threads() {
  // The calling thread is one of a pool's threads; the others (BLAS's own helpers, another
  // pool) count against the budget.
  return std::max(1, kThreadsPerCpu * allowed_cpus() - (process_threads() - 1));
}

int resolve_threads(int requested) {
  RECUR_CHECK(requested >= 0, "--threads",
              "must be 0 (every CPU) or a positive count, got " + std::to_string(requested));
  // Refused before any thread starts: more threads than this only share the same cores, and an
  // unbounded count would let a typo start 100,000 threads.
  const int limit = max_threads(), cpus = allowed_cpus(), others = process_threads() - 1;
  RECUR_CHECK(requested <= limit, "--threads",
              fmt::format("at most {} here ({} per CPU for the {} CPU{} this process may use{}), "
                          "got {}",
                          limit, kThreadsPerCpu, cpus, cpus == 1 ? "" : "s",
                          others > 0 ? fmt::format(", less {} thread{} it runs already", others,
                                                   others == 1 ? "" : "s")
                                     : "",
                          requested));
  return requested > 0 ? requested : cpus;
}

Optimizer::RangeRunner pool_range_runner(ThreadPool& pool) {
  ThreadPool* p = &pool;
  return [p](std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn) {
    p->parallel_for(static_cast<std::int64_t>(n), [&](std::int64_t begin, std::int64_t end) {
      fn(static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
    });
  };
}

}  // namespace recur
