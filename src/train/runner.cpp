#include <sched.h>

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

namespace recur {

int allowed_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
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

struct BatchRunner::Chunk {
  NetworkWorkspace<float> ws;
  std::vector<float> x, grads, dlogits;
  std::vector<std::int32_t> labels;
  Stats stats;
};

BatchRunner::BatchRunner(Network<float>& net, int threads)
    : net_(net), threads_(resolve_threads(threads)), pool_(std::make_unique<ThreadPool>(threads_)) {
  kernels::blas_single_threaded();
  for (int k = 0; k < threads_; ++k) chunks_.push_back(std::make_unique<Chunk>());
}

BatchRunner::~BatchRunner() = default;

namespace {

constexpr int kInferBlock = 64;

// The network's recurrent weights packed once for a batch's threads (all of them read the same
// weights), dropped when the batch is done, before the optimizer changes the parameters.
class Prepared {
 public:
  explicit Prepared(Network<float>& net) : net_(net) { net_.prepare(); }
  ~Prepared() { net_.drop_prepared(); }
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;

 private:
  Network<float>& net_;
};

// p = softmax(z) over C classes, stable (the maximum subtracted), summed in double.
void softmax_row(const float* z, int C, float* p) {
  const float zmax = *std::max_element(z, z + C);
  double sum = 0;
  for (int c = 0; c < C; ++c) sum += std::exp(static_cast<double>(z[c] - zmax));
  for (int c = 0; c < C; ++c)
    p[c] = static_cast<float>(std::exp(static_cast<double>(z[c] - zmax)) / sum);
}

// Chunk k of a batch split into n near-equal contiguous parts: [begin, end).
std::pair<int, int> chunk_range(int batch, int n, int k) {
  const int base = batch / n, extra = batch % n;
  const int begin = k * base + std::min(k, extra);
  return {begin, begin + base + (k < extra ? 1 : 0)};
}

}  // namespace

BatchRunner::Stats BatchRunner::train_batch(const ImageSet& set, const SequenceView& view,
                                            const std::int64_t* indices, int batch, float* grads,
                                            std::uint64_t dropout_seed) {
  const int n = std::min(threads_, batch);
  return train_chunks(set, view, indices, batch, grads, dropout_seed, 0, n, n);
}

BatchRunner::Stats BatchRunner::train_chunks(const ImageSet& set, const SequenceView& view,
                                             const std::int64_t* indices, int batch, float* grads,
                                             std::uint64_t dropout_seed, int first, int count,
                                             int chunks) {
  RECUR_ASSERT(count >= 0 && count <= threads_ && first >= 0 && first + count <= chunks &&
               chunks <= batch);
  const int n = count;
  if (n == 0) return {};
  const ModelConfig& cfg = net_.config();
  const std::size_t P = net_.num_params();
  const int C = cfg.num_classes;
  const Prepared prepared(net_);
  pool_->run(n, [&](int k) {
    Chunk& ch = *chunks_[k];
    const auto [begin, end] = chunk_range(batch, chunks, first + k);
    const int B = end - begin;
    ch.x.resize(static_cast<std::size_t>(view.steps()) * B * view.features());
    ch.labels.resize(B);
    ch.dlogits.resize(static_cast<std::size_t>(B) * C);
    ch.grads.assign(P, 0.0f);
    view.fill(set, indices + begin, B, ch.x.data());
    view.fill_labels(set, indices + begin, B, ch.labels.data());
    std::uint64_t s = dropout_seed + static_cast<std::uint64_t>(first + k);
    Rng rng(splitmix64(s));
    const float* logits = net_.forward(ch.x.data(), B, ch.ws, true, &rng);
    int correct = 0;
    const double loss = softmax_cross_entropy<float>(logits, ch.labels.data(), B, C, 1.0f / batch,
                                                     ch.dlogits.data(), &correct);
    net_.backward(ch.x.data(), B, ch.ws, ch.dlogits.data(), ch.grads.data());
    ch.stats = {loss * batch, correct, B};
  });
  // Sum the chunks' gradients in a fixed order.
  pool_->parallel_for(static_cast<std::int64_t>(P), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      float g = chunks_[0]->grads[i];
      for (int k = 1; k < n; ++k) g += chunks_[k]->grads[i];
      grads[i] = g;
    }
  });
  Stats total;
  for (int k = 0; k < n; ++k) {
    total.loss_sum += chunks_[k]->stats.loss_sum;
    total.correct += chunks_[k]->stats.correct;
    total.count += chunks_[k]->stats.count;
  }
  return total;
}

BatchRunner::Stats BatchRunner::infer_batch(const ImageSet& set, const SequenceView& view,
                                            const std::int64_t* indices, int batch,
                                            std::int32_t* predictions, float* probs) {
  const int n = std::min(threads_, batch);
  return infer_chunks(set, view, indices, batch, predictions, probs, 0, n, n);
}

BatchRunner::Stats BatchRunner::infer_chunks(const ImageSet& set, const SequenceView& view,
                                             const std::int64_t* indices, int batch,
                                             std::int32_t* predictions, float* probs, int first,
                                             int count, int chunks) {
  RECUR_ASSERT(count >= 0 && count <= threads_ && first >= 0 && first + count <= chunks &&
               chunks <= batch);
  const int n = count;
  const int C = net_.config().num_classes;
  const Prepared prepared(net_);
  pool_->run(n, [&](int k) {
    Chunk& ch = *chunks_[k];
    const auto [chunk_begin, chunk_end] = chunk_range(batch, chunks, first + k);
    ch.stats = {0, 0, 0};
    // Blocks of at most kInferBlock sequences keep a block's gates and states in cache (a whole
    // 500-sequence chunk at once ran at two thirds of the speed).
    for (int begin = chunk_begin; begin < chunk_end; begin += kInferBlock) {
      const int B = std::min(kInferBlock, chunk_end - begin);
      ch.x.resize(static_cast<std::size_t>(view.steps()) * B * view.features());
      ch.labels.resize(B);
      view.fill(set, indices + begin, B, ch.x.data());
      view.fill_labels(set, indices + begin, B, ch.labels.data());
      const float* logits = net_.forward(ch.x.data(), B, ch.ws, false);
      int correct = 0;
      const double loss =
          softmax_cross_entropy<float>(logits, ch.labels.data(), B, C, 1.0f, nullptr, &correct);
      ch.stats.loss_sum += loss;
      ch.stats.correct += correct;
      ch.stats.count += B;
      for (int b = 0; b < B; ++b) {
        const float* z = logits + static_cast<std::size_t>(b) * C;
        predictions[begin + b] = static_cast<std::int32_t>(std::max_element(z, z + C) - z);
        if (probs) softmax_row(z, C, probs + static_cast<std::size_t>(begin + b) * C);
      }
    }
  });
  Stats total;
  for (int k = 0; k < n; ++k) {
    total.loss_sum += chunks_[k]->stats.loss_sum;
    total.correct += chunks_[k]->stats.correct;
    total.count += chunks_[k]->stats.count;
  }
  return total;
}

void BatchRunner::infer_inputs(const float* x, int batch, float* probs, float* logits_out) {
  const int C = net_.config().num_classes;
  Chunk& ch = *chunks_[0];
  const float* logits = net_.forward(x, batch, ch.ws, false);
  if (logits_out)
    std::memcpy(logits_out, logits, sizeof(float) * static_cast<std::size_t>(batch) * C);
  for (int b = 0; b < batch; ++b)
    softmax_row(logits + static_cast<std::size_t>(b) * C, C,
                probs + static_cast<std::size_t>(b) * C);
}

EvalResult evaluate(BatchRunner& runner, const ImageSet& set, const SequenceView& view,
                    const std::vector<std::int64_t>& indices, int batch) {
  EvalResult r;
  const std::int64_t N = static_cast<std::int64_t>(indices.size());
  const int C = set.num_classes;
  r.count = N;
  r.predictions.resize(N);
  r.probabilities.resize(static_cast<std::size_t>(N) * C);
  double loss = 0;
  for (std::int64_t start = 0; start < N; start += batch) {
    const int B = static_cast<int>(std::min<std::int64_t>(batch, N - start));
    const auto s =
        runner.infer_batch(set, view, indices.data() + start, B, r.predictions.data() + start,
                           r.probabilities.data() + static_cast<std::size_t>(start) * C);
    loss += s.loss_sum;
    r.correct += s.correct;
  }
  r.loss = N ? loss / N : 0.0;
  return r;
}

}  // namespace recur
