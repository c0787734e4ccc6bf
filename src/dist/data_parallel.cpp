#include "dist/data_parallel.hpp"

#include <algorithm>
#include <string>
#include <type_traits>

#include "dist/comm.hpp"
#include "recur/error.hpp"

namespace recur::dist {

namespace {

// What every rank reports after its part of a step or an evaluation.
struct Report {
  double loss_sum = 0;
  std::int64_t correct = 0, count = 0, signal = 0;
};
static_assert(std::is_trivially_copyable_v<Report>);

std::vector<Report> gather(const Report& mine) {
  std::vector<Report> all(size());
  allgather(&mine, sizeof(Report), all.data());
  return all;
}

}  // namespace

DataParallel::DataParallel(BatchRunner& runner, std::size_t params, std::uint64_t fingerprint)
    : runner_(runner), params_(params), rank_(rank()), ranks_(size()) {
  struct Setup {
    std::uint64_t fingerprint;
    std::int64_t threads;
  };
  std::vector<Setup> all(ranks_);
  const Setup mine{fingerprint, runner_.threads()};
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

// A batch smaller than the job's thread count has one chunk per sample; the ranks past the last
// chunk compute nothing and only receive.
DataParallel::Share DataParallel::share_of(int batch) const {
  Share s;
  s.chunks = std::min(total_threads_, batch);
  s.first = std::min(first_thread_[rank_], s.chunks);
  s.count = std::min(first_thread_[rank_ + 1], s.chunks) - s.first;
  while (s.contributors < ranks_ && first_thread_[s.contributors] < s.chunks) ++s.contributors;
  return s;
}

DataParallel::Step DataParallel::train_batch(const ImageSet& set, const SequenceView& view,
                                             const std::int64_t* indices, int batch, float* grads,
                                             std::uint64_t dropout_seed, int local_stop_signal) {
  if (!distributed())
    return {runner_.train_batch(set, view, indices, batch, grads, dropout_seed), local_stop_signal};
  const Share share = share_of(batch);
  const BatchRunner::Stats part = runner_.train_chunks(
      set, view, indices, batch, grads, dropout_seed, share.first, share.count, share.chunks);
  ordered_sum(grads, params_, share.contributors);

  const auto all = gather({part.loss_sum, part.correct, part.count, local_stop_signal});
  Step step;
  for (int r = 0; r < share.contributors; ++r) {  // in rank order, as the threads' stats are added
    step.stats.loss_sum += all[r].loss_sum;
    step.stats.correct += static_cast<int>(all[r].correct);
    step.stats.count += static_cast<int>(all[r].count);
  }
  for (const Report& r : all)
    if (step.stop_signal == 0) step.stop_signal = static_cast<int>(r.signal);
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
    const Share share = share_of(b);
    const auto part =
        runner_.infer_chunks(set, view, indices.data() + start, b, predictions_.data(), nullptr,
                             share.first, share.count, share.chunks);
    const auto all = gather({part.loss_sum, part.correct, part.count, 0});
    BatchRunner::Stats sum;
    for (int r = 0; r < share.contributors; ++r) {
      sum.loss_sum += all[r].loss_sum;
      sum.correct += static_cast<int>(all[r].correct);
    }
    loss += sum.loss_sum;
    result.correct += sum.correct;
  }
  result.loss = n ? loss / n : 0.0;
  return result;
}

}  // namespace recur::dist
