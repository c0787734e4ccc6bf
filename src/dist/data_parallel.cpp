#include "dist/data_parallel.hpp"

#include <algorithm>
#include <string>
#include <type_traits>

#include "dist/comm.hpp"
#include "recur/error.hpp"

namespace recur::dist {

ThreadGroup::ThreadGroup(int threads, std::uint64_t fingerprint) : rank_(rank()), ranks_(size()) {
  struct Setup {
    std::uint64_t fingerprint;
    std::int64_t threads;
  };
  std::vector<Setup> all(ranks_);
  const Setup mine{fingerprint, threads};
  allgather(&mine, sizeof(Setup), all.data());
  for (int r = 1; r < ranks_; ++r)
    if (all[r].fingerprint != all[0].fingerprint)
      throw Error("mpirun", "rank " + std::to_string(r) +
                                " has another model, data set or schedule than rank 0; every rank "
                                "needs the same binary, options and data");
  first_thread_.assign(ranks_ + 1, 0);
  for (int r = 0; r < ranks_; ++r)
    first_thread_[r + 1] = first_thread_[r] + static_cast<int>(all[r].threads);
  total_threads_ = first_thread_[ranks_];
}

ThreadGroup::Share ThreadGroup::share_of(int items) const {
  Share s;
  s.chunks = std::min(total_threads_, items);
  s.first = std::min(first_thread_[rank_], s.chunks);
  s.count = std::min(first_thread_[rank_ + 1], s.chunks) - s.first;
  while (s.contributors < ranks_ && first_thread_[s.contributors] < s.chunks) ++s.contributors;
  return s;
}

ThreadGroup::Totals ThreadGroup::combine(const Share& share, float* grads, std::size_t n,
                                         const Totals& part) const {
  if (grads) ordered_sum(grads, n, share.contributors);
  static_assert(std::is_trivially_copyable_v<Totals>);
  std::vector<Totals> all(ranks_);
  allgather(&part, sizeof(Totals), all.data());
  Totals sum;
  for (int r = 0; r < share.contributors; ++r) {  // in rank order, as the threads' stats are added
    sum.loss_sum += all[r].loss_sum;
    sum.correct += all[r].correct;
    sum.count += all[r].count;
  }
  for (const Totals& t : all)
    if (sum.stop_signal == 0) sum.stop_signal = t.stop_signal;
  return sum;
}

}  // namespace recur::dist
