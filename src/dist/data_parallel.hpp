// Data-parallel training over the process group of comm.hpp. Every rank holds the whole model,
// the same optimizer state and the same global batch; it computes a contiguous part of the batch
// on its threads, and one ordered all-reduce of the gradient arena per step leaves every rank the
// same gradient, so every rank takes the same optimizer step and the weights never diverge.
//
// The batch is split into as many chunks as the job has threads (the ranks' thread counts
// summed), chunk k with dropout seed `seed + k` on rank r's thread k - (threads of the ranks
// before r). Rank r sums its chunks in order, and the ranks' sums are added in rank order. With
// one thread per rank this is the single-process sum of the chunks in order, so N ranks x 1
// thread give the weights of 1 rank x N threads bit for bit; any layout is reproducible.
#pragma once

#include <cstdint>
#include <vector>

#include "recur/error.hpp"

namespace recur::dist {

// The threads of a data-parallel job, rank by rank, and the sums of a step over them
// (fit: images, text and arrays alike).
class ThreadGroup {
 public:
  // Collective: learns every rank's thread count. `fingerprint` sums up what must be the same on
  // every rank (model, data, schedule); a rank whose fingerprint differs from rank 0's is a
  // recur::Error on every rank.
  ThreadGroup(int threads, std::uint64_t fingerprint);

  bool distributed() const { return ranks_ > 1; }
  int ranks() const { return ranks_; }
  int total_threads() const { return total_threads_; }

  // This rank's chunks of a batch of `items` split into min(total_threads, items) chunks:
  // [first, first + count) of `chunks`; ranks [0, contributors) have at least one. A batch
  // smaller than the job's thread count has one chunk per sample; the ranks past the last chunk
  // compute nothing and only receive.
  struct Share {
    int chunks = 0, first = 0, count = 0, contributors = 0;
  };
  Share share_of(int items) const;

  struct Totals {
    double loss_sum = 0;
    std::int64_t correct = 0, count = 0;
    int stop_signal = 0;
  };
  // Collective, after each rank computed its chunks (`part`: their sums in chunk order, and the
  // signal this rank caught). Returns the contributors' parts added in rank order, as one
  // process adds its threads' parts, and the first non-zero signal in rank order; when `grads`
  // is not null, its n floats become the contributors' sum in rank order on every rank.
  Totals combine(const Share& share, float* grads, std::size_t n, const Totals& part) const;

 private:
  int rank_, ranks_;
  std::vector<int> first_thread_;  // [ranks + 1]: global index of each rank's first thread
  int total_threads_;
};

}  // namespace recur::dist
