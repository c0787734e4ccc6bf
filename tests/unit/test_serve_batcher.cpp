// The server's batchers (src/serve/batcher.hpp, step_batcher.hpp) under concurrent callers, with
// two workers: requests of two kinds (u8 images and f32 sequences) interleaved, and streaming
// feeds of many sessions; every answer equals the Predictor's own, bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "recur/rng.hpp"
#include "serve/batcher.hpp"
#include "serve/step_batcher.hpp"

namespace {

using recur_cli_test::ScratchDir;

std::vector<std::uint8_t> pixels(std::size_t n, std::uint64_t seed) {
  recur::Rng rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& p : v) p = static_cast<std::uint8_t>(rng.below(256));
  return v;
}

TEST(ServeBatcher, TwoKindsFromManyThreadsWithTwoWorkersGetTheirOwnAnswers) {
  ScratchDir tmp;
  const int rows = 7, cols = 5, n = 24;
  const recur::Predictor p(recur_infer_test::write_image_model(
      tmp / "m.safetensors", "lstm 8, pool last, linear", rows, cols));
  const std::vector<std::uint8_t> images = pixels(static_cast<std::size_t>(n) * rows * cols, 3);
  const recur::Predictions want = p.predict_images(images.data(), n);
  std::atomic<int> batches{0};
  recur::serve::BatchOptions options;
  options.max_batch = 6;
  options.max_delay_us = 300;
  options.workers = 2;
  recur::serve::Batcher batcher(p, options, [&](std::int64_t) { ++batches; });
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 40; ++k) {
        const int i = (t * 7 + k) % n;
        const std::uint8_t* img = images.data() + static_cast<std::ptrdiff_t>(i) * rows * cols;
        // Alternate the two kinds so that a worker waiting for one kind sees the other.
        const recur::Predictions got =
            (t + k) % 2 ? batcher.images(std::vector<std::uint8_t>(img, img + rows * cols), 1)
                        : batcher.sequences(p.image_steps(img), 1, p.steps());
        const std::vector<float> row(want.logits.begin() + i * 10,
                                     want.logits.begin() + (i + 1) * 10);
        if (got.count != 1 || got.logits != row) ++wrong;
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LT(batches.load(), 12 * 40);  // some requests were joined
}

TEST(ServeStepBatcher, ManySessionsFedTogetherEndAsFedAlone) {
  ScratchDir tmp;
  const int rows = 7, cols = 5, sessions = 10;
  const recur::Predictor p(recur_infer_test::write_image_model(
      tmp / "m.safetensors", "gru 8, pool mean, linear", rows, cols));
  const std::vector<std::uint8_t> images =
      pixels(static_cast<std::size_t>(sessions) * rows * cols, 5);
  std::atomic<int> calls{0};
  recur::serve::BatchOptions options;
  options.max_batch = 4;
  options.max_delay_us = 300;
  options.workers = 2;
  recur::serve::StepBatcher batcher(
      p, options, [&](std::int64_t) { ++calls; },
      [&] { return static_cast<std::size_t>(sessions); });
  std::vector<std::vector<float>> got(sessions);
  std::vector<std::thread> threads;
  for (int s = 0; s < sessions; ++s)
    threads.emplace_back([&, s] {
      recur::StreamState state = p.start();
      const std::uint8_t* img = images.data() + static_cast<std::ptrdiff_t>(s) * rows * cols;
      for (int r = 0; r < rows;) {
        const int k = std::min(1 + (s + r) % 2, rows - r);
        recur::StreamFeed f;
        f.state = &state;
        f.pixels = img + r * cols;
        f.k = k;
        batcher.feed(f);
        r += k;
      }
      got[static_cast<std::size_t>(s)] = p.read(state).logits;
    });
  for (std::thread& th : threads) th.join();
  for (int s = 0; s < sessions; ++s) {
    recur::StreamState alone = p.start();
    p.feed_pixels(alone, images.data() + static_cast<std::ptrdiff_t>(s) * rows * cols, rows);
    EXPECT_EQ(got[static_cast<std::size_t>(s)], p.read(alone).logits) << "session " << s;
  }
  EXPECT_GT(calls.load(), 0);
}

}  // namespace
