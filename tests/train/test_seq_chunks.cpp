// SequenceRunner::train_chunks and infer_chunks, the part of a batch of sequences one rank of a
// data-parallel run computes: runners that each compute some of a batch's token-balanced
// chunks, summed in chunk order, give the gradient and statistics of one runner with one thread
// per chunk bit for bit (what makes a text run under mpirun -np N x 1 thread equal 1 process x N
// threads). Runs without MPI, so also under the sanitizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "recur/fit.hpp"
#include "recur/rng.hpp"

namespace {

using recur::SequenceRunner;

// 30 sequences of up to 9 steps of 3 features, lengths 1..9, 3 classes.
std::shared_ptr<const recur::ArraySequences> random_sequences() {
  auto set = std::make_shared<recur::SequenceSet>();
  set->count = 30;
  set->steps = 9;
  set->features = 3;
  set->num_classes = 3;
  recur::Rng rng(17);
  set->x.resize(30 * 9 * 3);
  for (float& v : set->x) v = static_cast<float>(rng.normal());
  for (int i = 0; i < 30; ++i) {
    set->labels.push_back(static_cast<std::int32_t>(rng.below(3)));
    set->lengths.push_back(1 + static_cast<std::int32_t>(rng.below(9)));
  }
  return std::make_shared<recur::ArraySequences>(set);
}

// Two LSTM layers with dropout between them and before the head: every chunk's dropout seed
// changes its gradient.
recur::ModelSpec small_spec() {
  recur::ModelSpec spec;
  spec.input = recur::ActShape{recur::ActKind::sequence, 3};
  spec.num_classes = 3;
  recur::LayerSpec rnn;
  rnn.type = "recurrent";
  rnn.name = "rnn";
  rnn.size = 6;
  rnn.layers = 2;
  rnn.dropout = 0.4;
  rnn.bidirectional = true;
  recur::LayerSpec pool;
  pool.type = "pool";
  pool.pooling = recur::Pooling::max;
  recur::LayerSpec drop;
  drop.type = "dropout";
  drop.dropout = 0.3;
  recur::LayerSpec head;
  head.type = "linear";
  head.name = "head";
  head.size = 3;
  spec.layers = {rnn, pool, drop, head};
  spec.validate();
  return spec;
}

struct Fixture {
  std::shared_ptr<const recur::ArraySequences> src = random_sequences();
  recur::Model<float> model{small_spec()};
  std::vector<std::int64_t> batch;
  Fixture() {
    model.init(5);
    model.prepare();
    // 11 samples of mixed lengths, longest first (as length_batches cuts them).
    for (int i = 0; i < 11; ++i) batch.push_back((i * 7) % 30);
    std::stable_sort(batch.begin(), batch.end(), [this](std::int64_t a, std::int64_t b) {
      return src->length(a) > src->length(b);
    });
  }
};

constexpr std::uint64_t kSeed = 4321;

TEST(SeqChunks, RanksOfOneThreadSumToOneRunnerOfManyThreads) {
  Fixture f;
  const std::size_t P = f.model.num_params();
  SequenceRunner three(f.model, 3);
  std::vector<float> want(P);
  const auto want_stats = three.train_batch(*f.src, f.batch, want.data(), kSeed);

  SequenceRunner one(f.model, 1);
  std::vector<float> sum(P), part(P);
  SequenceRunner::Stats stats;
  for (int k = 0; k < 3; ++k) {
    const auto s = one.train_chunks(*f.src, f.batch, part.data(), kSeed, k, 1, 3);
    EXPECT_GE(s.count, 1);
    if (k == 0) {
      sum = part;
    } else {
      for (std::size_t i = 0; i < P; ++i) sum[i] += part[i];
    }
    stats.loss_sum += s.loss_sum;
    stats.correct += s.correct;
    stats.count += s.count;
  }
  EXPECT_EQ(std::memcmp(sum.data(), want.data(), P * sizeof(float)), 0);
  EXPECT_EQ(stats.loss_sum, want_stats.loss_sum);
  EXPECT_EQ(stats.correct, want_stats.correct);
  EXPECT_EQ(stats.count, static_cast<int>(f.batch.size()));

  // Chunk 1 computed with another seed gives another gradient: the seeds are part of what is
  // checked.
  std::vector<float> wrong(P);
  one.train_chunks(*f.src, f.batch, wrong.data(), kSeed - 1, 1, 1, 3);
  one.train_chunks(*f.src, f.batch, part.data(), kSeed, 1, 1, 3);
  EXPECT_NE(std::memcmp(wrong.data(), part.data(), P * sizeof(float)), 0);
}

TEST(SeqChunks, ARankOfTwoThreadsAndARankOfOneEqualThreeThreads) {
  Fixture f;
  const std::size_t P = f.model.num_params();
  SequenceRunner three(f.model, 3), two(f.model, 2), one(f.model, 1);
  std::vector<float> want(P), a(P), b(P);
  three.train_batch(*f.src, f.batch, want.data(), kSeed);
  two.train_chunks(*f.src, f.batch, a.data(), kSeed, 0, 2, 3);
  one.train_chunks(*f.src, f.batch, b.data(), kSeed, 2, 1, 3);
  for (std::size_t i = 0; i < P; ++i) a[i] += b[i];
  EXPECT_EQ(std::memcmp(a.data(), want.data(), P * sizeof(float)), 0);
}

TEST(SeqChunks, NoChunksLeavesTheGradientAlone) {
  Fixture f;
  SequenceRunner one(f.model, 1);
  std::vector<float> grads(f.model.num_params(), 5.0f);
  const auto s = one.train_chunks(*f.src, f.batch, grads.data(), kSeed, 2, 0, 2);
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.loss_sum, 0.0);
  for (float g : grads) ASSERT_EQ(g, 5.0f);
}

TEST(SeqChunks, InferChunksWriteTheirSamplesAsOneRunnerDoes) {
  Fixture f;
  const int n = static_cast<int>(f.batch.size());
  SequenceRunner three(f.model, 3), one(f.model, 1);
  std::vector<std::int32_t> want(n), got(n, -1);
  std::vector<float> want_p(static_cast<std::size_t>(n) * 3), got_p(want_p.size(), -1.f);
  const auto w = three.infer_batch(*f.src, f.batch, want.data(), want_p.data());
  SequenceRunner::Stats sum;
  for (int k = 0; k < 3; ++k) {
    const auto s = one.infer_chunks(*f.src, f.batch, got.data(), got_p.data(), k, 1, 3);
    sum.loss_sum += s.loss_sum;
    sum.correct += s.correct;
    sum.count += s.count;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(std::memcmp(got_p.data(), want_p.data(), want_p.size() * sizeof(float)), 0);
  EXPECT_EQ(sum.loss_sum, w.loss_sum);
  EXPECT_EQ(sum.correct, w.correct);
  EXPECT_EQ(sum.count, n);
}

}  // namespace
