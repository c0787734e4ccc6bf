// BatchRunner::train_chunks and infer_chunks, the part of a batch one rank of a data-parallel
// run computes: runners that each compute some chunks of a batch, summed in chunk order, give
// the gradient and statistics of one runner with one thread per chunk bit for bit (what makes
// mpirun -np N x 1 thread equal 1 process x N threads). Runs without MPI, so also under the
// sanitizers.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "recur/data.hpp"
#include "recur/model.hpp"
#include "recur/rng.hpp"
#include "recur/train.hpp"

namespace {

using recur::BatchRunner;

// 40 images of 6x5 with pseudo-random pixels and 4 classes.
recur::ImageSet random_set() {
  recur::ImageSet set;
  set.source = "random";
  set.count = 40;
  set.rows = 6;
  set.cols = 5;
  set.num_classes = 4;
  recur::Rng rng(99);
  for (int i = 0; i < 40 * 30; ++i)
    set.pixels.push_back(static_cast<std::uint8_t>(rng.next_u64() % 256));
  for (int i = 0; i < 40; ++i) set.labels.push_back(static_cast<std::int32_t>(rng.next_u64() % 4));
  return set;
}

// Two LSTM layers with dropout between them: every chunk's dropout seed changes its gradient.
recur::ModelConfig small_model(const recur::SequenceView& view) {
  recur::ModelConfig c;
  c.cell = recur::CellKind::lstm;
  c.input_size = view.features();
  c.steps = view.steps();
  c.hidden = 7;
  c.layers = 2;
  c.dropout = 0.4;
  c.num_classes = 4;
  return c;
}

struct Fixture {
  recur::ImageSet set = random_set();
  recur::SequenceView view = recur::SequenceView::make(recur::ViewKind::rows, 6, 5, 0);
  recur::Network<float> net{small_model(view)};
  std::vector<std::int64_t> indices;
  Fixture() {
    net.init(3);
    for (int i = 0; i < 11; ++i) indices.push_back((i * 7) % 40);
  }
};

constexpr std::uint64_t kSeed = 1234;

TEST(TrainChunks, RanksOfOneThreadSumToOneRunnerOfManyThreads) {
  Fixture f;
  const int batch = static_cast<int>(f.indices.size());  // 11: chunks of 4, 4, 3
  const std::size_t P = f.net.num_params();
  BatchRunner three(f.net, 3);
  std::vector<float> want(P);
  const auto want_stats =
      three.train_batch(f.set, f.view, f.indices.data(), batch, want.data(), kSeed);

  BatchRunner one(f.net, 1);
  std::vector<float> sum(P), part(P);
  BatchRunner::Stats stats;
  for (int k = 0; k < 3; ++k) {
    const auto s =
        one.train_chunks(f.set, f.view, f.indices.data(), batch, part.data(), kSeed, k, 1, 3);
    EXPECT_EQ(s.count, k < 2 ? 4 : 3);
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
  EXPECT_EQ(stats.count, batch);

  // Chunk 1 computed with chunk 0's seed (the defect of a rank reusing the local thread index)
  // gives another gradient: the seeds are part of what is checked.
  std::vector<float> wrong(P);
  one.train_chunks(f.set, f.view, f.indices.data(), batch, wrong.data(), kSeed - 1, 1, 1, 3);
  one.train_chunks(f.set, f.view, f.indices.data(), batch, part.data(), kSeed, 1, 1, 3);
  EXPECT_NE(std::memcmp(wrong.data(), part.data(), P * sizeof(float)), 0);
}

TEST(TrainChunks, ARankOfTwoThreadsAndARankOfOneEqualThreeThreads) {
  // ((g0 + g1) + g2): the first rank's two chunks summed, then the last rank's chunk.
  Fixture f;
  const int batch = static_cast<int>(f.indices.size());
  const std::size_t P = f.net.num_params();
  BatchRunner three(f.net, 3), two(f.net, 2), one(f.net, 1);
  std::vector<float> want(P), a(P), b(P);
  three.train_batch(f.set, f.view, f.indices.data(), batch, want.data(), kSeed);
  two.train_chunks(f.set, f.view, f.indices.data(), batch, a.data(), kSeed, 0, 2, 3);
  one.train_chunks(f.set, f.view, f.indices.data(), batch, b.data(), kSeed, 2, 1, 3);
  for (std::size_t i = 0; i < P; ++i) a[i] += b[i];
  EXPECT_EQ(std::memcmp(a.data(), want.data(), P * sizeof(float)), 0);
}

TEST(TrainChunks, NoChunksLeavesTheGradientAlone) {
  Fixture f;
  BatchRunner one(f.net, 1);
  std::vector<float> grads(f.net.num_params(), 5.0f);
  const auto s = one.train_chunks(f.set, f.view, f.indices.data(), 2, grads.data(), kSeed, 2, 0, 2);
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.loss_sum, 0.0);
  for (float g : grads) ASSERT_EQ(g, 5.0f);
}

TEST(TrainChunks, InferChunksPredictTheirSamplesAsTheWholeBatch) {
  Fixture f;
  const int batch = static_cast<int>(f.indices.size());
  BatchRunner three(f.net, 3), one(f.net, 1);
  std::vector<std::int32_t> want(batch), got(batch, -1);
  const auto whole =
      three.infer_batch(f.set, f.view, f.indices.data(), batch, want.data(), nullptr);
  double loss = 0;
  int correct = 0;
  for (int k = 0; k < 3; ++k) {
    const auto s =
        one.infer_chunks(f.set, f.view, f.indices.data(), batch, got.data(), nullptr, k, 1, 3);
    loss += s.loss_sum;
    correct += s.correct;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(loss, whole.loss_sum);
  EXPECT_EQ(correct, whole.correct);
}

}  // namespace
