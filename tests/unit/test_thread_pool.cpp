// The thread pool behind the batch split: every task runs once, exceptions reach the caller,
// parallel_for covers its range exactly, and pinning (one thread per allowed CPU) puts each
// thread on its own CPU and gives the constructing thread its affinity back.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

#include "core/thread_pool.hpp"

namespace recur {
namespace {

int allowed_cpu_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}

TEST(ThreadPool, RunsEveryTaskOnceAndTask0OnTheCaller) {
  ThreadPool pool(3);
  ASSERT_EQ(pool.size(), 3);
  for (int round = 0; round < 50; ++round) {
    std::vector<int> hits(3, 0);
    pthread_t task0{};
    pool.run(3, [&](int k) {
      hits[k] += 1;
      if (k == 0) task0 = pthread_self();
    });
    EXPECT_EQ(hits, (std::vector<int>{1, 1, 1}));
    EXPECT_TRUE(pthread_equal(task0, pthread_self()));
  }
  std::atomic<int> count{0};
  pool.run(2, [&](int) { ++count; });  // fewer tasks than threads
  EXPECT_EQ(count.load(), 2);
}

TEST(ThreadPool, RethrowsATaskException) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run(2,
                        [](int k) {
                          if (k == 1) throw std::runtime_error("task 1");
                        }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int> count{0};
  pool.run(2, [&](int) { ++count; });
  EXPECT_EQ(count.load(), 2);
}

TEST(ThreadPool, ParallelForCoversTheRangeExactly) {
  ThreadPool pool(2);
  for (std::int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<int> seen(static_cast<std::size_t>(n), 0);
    pool.parallel_for(n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) seen[i] += 1;
    });
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << n << " " << i;
  }
}

TEST(ThreadPool, OneThreadPerCpuPinsAndRestoresTheCaller) {
  const int cpus = allowed_cpu_count();
  if (cpus < 2) GTEST_SKIP() << "needs at least 2 CPUs";
  cpu_set_t before;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  {
    ThreadPool pool(cpus);
    std::mutex m;
    std::set<int> pinned_to;
    pool.run(cpus, [&](int) {
      cpu_set_t mine;
      ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine), 0);
      ASSERT_EQ(CPU_COUNT(&mine), 1);
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &mine)) {
          std::lock_guard<std::mutex> lock(m);
          pinned_to.insert(c);
        }
    });
    EXPECT_EQ(static_cast<int>(pinned_to.size()), cpus) << "each thread on its own CPU";
  }
  cpu_set_t after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
}

// Only a pool of exactly one thread per allowed CPU pins: with fewer threads than CPUs (a
// machine of 3 or more) or more threads than CPUs (any machine), every thread keeps the whole
// affinity mask, so processes running side by side can spread out.
TEST(ThreadPool, ThreadsUnequalToCpusPinNothing) {
  const int cpus = allowed_cpu_count();
  ASSERT_GE(cpus, 1);
  cpu_set_t before;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  std::vector<int> sizes{cpus + 1, cpus + 3};
  if (cpus >= 3) sizes.push_back(cpus - 1);
  if (cpus >= 4) sizes.push_back(2);
  for (const int threads : sizes) {
    ThreadPool pool(threads);
    std::mutex m;
    int tasks = 0;
    pool.run(threads, [&](int) {
      cpu_set_t mine;
      ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine), 0);
      EXPECT_TRUE(CPU_EQUAL(&mine, &before)) << threads << " threads on " << cpus << " CPUs";
      std::lock_guard<std::mutex> lock(m);
      ++tasks;
    });
    EXPECT_EQ(tasks, threads);
  }
}

// A second pool started on a thread the first one pinned: the thread still counts the CPUs it
// had (usable_cpus), so the second pool puts its workers on the other CPUs instead of piling
// them onto the caller's one; the caller gets its whole mask back when the first pool goes.
TEST(ThreadPool, ASecondPoolOnAPinnedThreadStillSpreadsOverEveryCpu) {
  const int cpus = allowed_cpu_count();
  if (cpus < 2) GTEST_SKIP() << "needs at least 2 CPUs";
  cpu_set_t before;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  const auto pinned_cpu = [] {
    cpu_set_t mine;
    EXPECT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine), 0);
    EXPECT_EQ(CPU_COUNT(&mine), 1);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &mine)) return c;
    return -1;
  };
  {
    ThreadPool first(cpus);
    ASSERT_EQ(static_cast<int>(usable_cpus().size()), cpus);  // not the 1 CPU it is pinned to
    {
      ThreadPool second(cpus);
      std::mutex m;
      std::set<int> used;
      second.run(cpus, [&](int) {
        const int c = pinned_cpu();
        std::lock_guard<std::mutex> lock(m);
        used.insert(c);
      });
      EXPECT_EQ(static_cast<int>(used.size()), cpus) << "threads share a CPU";
    }
    EXPECT_EQ(pinned_cpu(), usable_cpus()[0]);  // the second pool left the first one's pinning
  }
  cpu_set_t after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
  EXPECT_EQ(static_cast<int>(usable_cpus().size()), cpus);
}

}  // namespace
}  // namespace recur
