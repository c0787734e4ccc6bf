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

DataParallel::DataParallel(BatchRunner& runner, std::size_t params, std::uint64_t fingerprint)
    : runner_(runner), params_(params), group_(runner.threads(), fingerprint) {}

DataParallel::Step DataParallel::train_batch(const ImageSet& set, const SequenceView& view,
                                             const std::int64_t* indices, int batch, float* grads,
                                             std::uint64_t dropout_seed, int local_stop_signal) {
  if (!distributed())
    return {runner_.train_batch(set, view, indices, batch, grads, dropout_seed), local_stop_signal};
  const ThreadGroup::Share share = group_.share_of(batch);
  const BatchRunner::Stats part = runner_.train_chunks(
      set, view, indices, batch, grads, dropout_seed, share.first, share.count, share.chunks);
  const ThreadGroup::Totals sum = group_.combine(
      share, grads, params_, {part.loss_sum, part.correct, part.count, local_stop_signal});
  Step step;
  step.stats.loss_sum = sum.loss_sum;
  step.stats.correct = static_cast<int>(sum.correct);
  step.stats.count = static_cast<int>(sum.count);
  step.stop_signal = sum.stop_signal;
  return step;
}

EvalResult DataParallel::evaluate(const ImageSet& set, const SequenceView& view,
                                  const std::vector<std::int64_t>& indices, int batch) {
  if (!distributed()) return recur::evaluate(runner_, set, view, indices, batch);
  // Batch by batch, each split as a training batch is: with one thread per rank the sums are
  // those of one process with that many threads, so the metrics are the same too.
  const std::int64_t n = static_cast<std::int64_t>(indices.size());
  predictions_.resize(static_cast<std::size_t>(std::min<std::int64_t>(batch, n)));
  EvalResult result;
  result.count = n;
  double loss = 0;
  for (std::int64_t start = 0; start < n; start += batch) {
    const int b = static_cast<int>(std::min<std::int64_t>(batch, n - start));
    const ThreadGroup::Share share = group_.share_of(b);
    const auto part =
        runner_.infer_chunks(set, view, indices.data() + start, b, predictions_.data(), nullptr,
                             share.first, share.count, share.chunks);
    const ThreadGroup::Totals sum =
        group_.combine(share, nullptr, 0, {part.loss_sum, part.correct, part.count, 0});
    loss += sum.loss_sum;
    result.correct += static_cast<int>(sum.correct);
  }
  result.loss = n ? loss / n : 0.0;
  return result;
}

}  // namespace recur::dist
