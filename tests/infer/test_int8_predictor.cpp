// int8 inference through the Predictor: logits near fp32's for every cell, stacked,
// bidirectional, with a projection and each pooling; the same bits from every int8 kernel this
// CPU has; a row's bits independent of its batch; streams ending on the whole sequence's bits;
// the int8 size; a bad precision named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "kernels/int8_gemm.hpp"
#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/predictor.hpp"
#include "recur/rng.hpp"

namespace recur_infer_test {
namespace {

using recur::InferPrecision;
using recur::kernels::Int8Kernel;
using recur_cli_test::ScratchDir;

std::vector<std::uint8_t> pixels(std::size_t n, std::uint64_t seed) {
  recur::Rng rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& p : v) p = static_cast<std::uint8_t>(rng.below(256));
  return v;
}

recur::PredictorOptions int8() {
  recur::PredictorOptions o;
  o.precision = InferPrecision::int8;
  return o;
}

// Makes `k` the kernel of the predictors built in its scope.
struct UseKernel {
  explicit UseKernel(Int8Kernel k) : before(recur::kernels::set_int8_kernel(k)) {}
  ~UseKernel() { recur::kernels::set_int8_kernel(before); }
  Int8Kernel before;
};

const char* const kModels[] = {
    "lstm 32, pool last, linear",
    "gru 32, pool last, linear",
    "rnn 32, pool last, linear",
    "rnn_relu 24, pool mean, linear",
    "lstm 24 layers=2, pool mean, linear",
    "gru 20 bidirectional=true, pool max, linear",
    "lstm 16 bidirectional=true layers=2, pool last, linear",
    "linear 12 name=proj, gru 24, pool mean, linear 16, relu, linear",
};

TEST(Int8Predictor, LogitsStayNearFp32ForEveryCellAndShape) {
  ScratchDir tmp;
  const int rows = 12, cols = 10, n = 40;
  const std::vector<std::uint8_t> images = pixels(static_cast<std::size_t>(n) * rows * cols, 5);
  for (const char* layers : kModels) {
    const std::string path = write_image_model(tmp / "m.safetensors", layers, rows, cols);
    const recur::Predictor fp32(path);
    const recur::Predictor q(path, int8());
    EXPECT_EQ(q.precision(), InferPrecision::int8);
    const recur::Predictions a = fp32.predict_images(images.data(), n);
    const recur::Predictions b = q.predict_images(images.data(), n);
    float largest = 0, worst = 0;
    int agree = 0;
    for (std::size_t i = 0; i < a.logits.size(); ++i) {
      largest = std::max(largest, std::fabs(a.logits[i]));
      worst = std::max(worst, std::fabs(a.logits[i] - b.logits[i]));
    }
    for (int i = 0; i < n; ++i) agree += a.labels[i] == b.labels[i];
    // Weights and activations at 8 bits: about 1% of the logits' range, and not zero (the
    // int8 path ran).
    EXPECT_LE(worst, 0.03f * largest) << layers;
    EXPECT_GT(worst, 0.0f) << layers << ": int8 gave fp32's bits";
    EXPECT_GE(agree, n - 2) << layers;
  }
}

TEST(Int8Predictor, EveryKernelGivesTheSameBits) {
  ScratchDir tmp;
  const int rows = 7, cols = 9, n = 19;
  const std::vector<std::uint8_t> images = pixels(static_cast<std::size_t>(n) * rows * cols, 6);
  for (const char* layers : kModels) {
    const std::string path = write_image_model(tmp / "m.safetensors", layers, rows, cols);
    std::vector<float> first;
    for (Int8Kernel k : {Int8Kernel::portable, Int8Kernel::avx_vnni, Int8Kernel::avx512_vnni,
                         Int8Kernel::amx_int8}) {
      if (!recur::kernels::int8_kernel_supported(k)) continue;
      UseKernel use(k);
      const recur::Predictor q(path, int8());
      const recur::Predictions r = q.predict_images(images.data(), n);
      if (first.empty())
        first = r.logits;
      else
        EXPECT_EQ(r.logits, first) << layers << ": " << recur::kernels::to_string(k);
    }
  }
}

// Each row's activations have their own scale: an image alone gives its bits in any batch.
TEST(Int8Predictor, ASamplesBitsDoNotDependOnItsBatch) {
  ScratchDir tmp;
  const int rows = 6, cols = 9, n = 30;
  const std::vector<std::uint8_t> images = pixels(static_cast<std::size_t>(n) * rows * cols, 3);
  for (const char* layers : kModels) {
    const recur::Predictor q(write_image_model(tmp / "m.safetensors", layers, rows, cols), int8());
    const recur::Predictions all = q.predict_images(images.data(), n);
    const std::size_t C = 10;
    for (int i = 0; i < n; ++i) {
      const recur::Predictions one =
          q.predict_images(images.data() + static_cast<std::size_t>(i) * rows * cols, 1);
      ASSERT_EQ(std::memcmp(one.logits.data(), all.logits.data() + i * C, C * sizeof(float)), 0)
          << layers << ": image " << i;
    }
    for (int b = 2, start = 1; start + b <= n; start += b, ++b) {
      const recur::Predictions some =
          q.predict_images(images.data() + static_cast<std::size_t>(start) * rows * cols, b);
      ASSERT_EQ(std::memcmp(some.logits.data(), all.logits.data() + start * C,
                            static_cast<std::size_t>(b) * C * sizeof(float)),
                0)
          << layers << ": a batch of " << b << " from image " << start;
    }
  }
}

TEST(Int8Predictor, StreamsEndOnTheWholeSequencesBits) {
  ScratchDir tmp;
  const int rows = 9, cols = 5;
  const std::vector<std::uint8_t> image = pixels(static_cast<std::size_t>(rows) * cols, 8);
  for (const char* layers : {"lstm 16, pool last, linear", "gru 16 layers=2, pool mean, linear",
                             "linear 8 name=proj, rnn 12, pool max, linear 6, relu, linear"}) {
    const recur::Predictor q(write_image_model(tmp / "m.safetensors", layers, rows, cols), int8());
    ASSERT_TRUE(q.streamable());
    const recur::Predictions whole = q.predict_images(image.data(), 1);
    recur::StreamState s = q.start();
    for (int t = 0; t < rows; t += 2)
      q.feed_pixels(s, image.data() + static_cast<std::size_t>(t) * cols, std::min(2, rows - t));
    EXPECT_EQ(q.read(s).logits, whole.logits) << layers;
  }
}

// An int8 model whose first layer is recurrent reads pixel bytes as they are (p with the scale
// 1 / 255) and floats quantized per row, so an image given either way may differ in its last
// bits; each way keeps its own bits, fed whole, streamed, or mixed in one feed_many.
TEST(Int8Predictor, FeedsOfPixelsAndOfFloatsKeepTheirOwnBits) {
  ScratchDir tmp;
  const int rows = 8, cols = 6, n = 3;
  const std::vector<std::uint8_t> images = pixels(static_cast<std::size_t>(n) * rows * cols, 12);
  for (const char* layers : {"gru 16, pool mean, linear", "lstm 12 layers=2, pool last, linear",
                             "rnn 16, pool max, linear"}) {
    const recur::Predictor q(write_image_model(tmp / "m.safetensors", layers, rows, cols), int8());
    auto image = [&](int i) { return images.data() + static_cast<std::size_t>(i) * rows * cols; };
    std::vector<std::vector<float>> floats, by_pixels, by_floats;
    bool differ = false;
    for (int i = 0; i < n; ++i) {
      floats.push_back(q.image_steps(image(i)));
      recur::StreamState p = q.start(), f = q.start();
      q.feed_pixels(p, image(i), rows);
      q.feed(f, floats.back().data(), rows);
      by_pixels.push_back(q.read(p).logits);
      by_floats.push_back(q.read(f).logits);
      EXPECT_EQ(by_pixels.back(), q.predict_images(image(i), 1).logits) << layers;
      EXPECT_EQ(by_floats.back(), q.predict_sequences(floats.back().data(), 1, rows).logits)
          << layers;
      differ = differ || by_pixels.back() != by_floats.back();
    }
    EXPECT_TRUE(differ) << layers << ": pixels gave the bits of per-row quantized floats";
    std::vector<recur::StreamState> states;
    for (int i = 0; i < 4; ++i) states.push_back(q.start());
    std::vector<recur::StreamFeed> feeds(4);
    feeds[0] = {&states[0], nullptr, image(0), nullptr, rows};
    feeds[1] = {&states[1], floats[1].data(), nullptr, nullptr, rows};
    feeds[2] = {&states[2], nullptr, image(2), nullptr, rows};
    feeds[3] = {&states[3], floats[2].data(), nullptr, nullptr, rows};
    q.feed_many(feeds);
    EXPECT_EQ(q.read(states[0]).logits, by_pixels[0]) << layers;
    EXPECT_EQ(q.read(states[1]).logits, by_floats[1]) << layers;
    EXPECT_EQ(q.read(states[2]).logits, by_pixels[2]) << layers;
    EXPECT_EQ(q.read(states[3]).logits, by_floats[2]) << layers;
  }
}

// recur eval's threads (BatchRunner) read the pixel bytes as the predictor does: the same bits,
// with rows of a multiple of 4 bytes (read in place) and of other widths (copied and padded).
TEST(Int8Predictor, EvaluationReadsThePixelsAsThePredictorDoes) {
  ScratchDir tmp;
  const int rows = 7, n = 37;
  for (int cols : {6, 8}) {
    for (const char* layers : {"lstm 16, pool last, linear",
                               "gru 12 bidirectional=true, pool "
                               "mean, linear"}) {
      const recur::Predictor q(write_image_model(tmp / "m.safetensors", layers, rows, cols),
                               int8());
      auto set = std::make_shared<recur::ImageSet>();
      set->source = "images";
      set->count = n;
      set->rows = rows;
      set->cols = cols;
      set->pixels = pixels(static_cast<std::size_t>(n) * rows * cols, 21);
      set->labels.assign(n, 3);
      recur::BatchRunner runner(q, 2);
      const recur::EvalResult r = runner.evaluate(*q.image_source(set), 16);
      EXPECT_EQ(r.probabilities, q.predict_images(set->pixels.data(), n).probabilities)
          << layers << ", " << cols << " columns";
    }
  }
}

TEST(Int8Predictor, TextModelsKeepTheirEmbeddingAndConvolutionInFp32) {
  ScratchDir tmp;
  const std::string path =
      write_text_model(tmp / "t.safetensors",
                       "embedding 12 vocab=VOCAB, conv1d 8 kernel=3, relu, lstm 16 "
                       "bidirectional=true, pool max, linear");
  const recur::Predictor fp32(path);
  const recur::Predictor q(path, int8());
  const recur::Predictions a = fp32.predict_texts(sample_texts());
  const recur::Predictions b = q.predict_texts(sample_texts());
  float largest = 0, worst = 0;
  for (std::size_t i = 0; i < a.logits.size(); ++i) {
    largest = std::max(largest, std::fabs(a.logits[i]));
    worst = std::max(worst, std::fabs(a.logits[i] - b.logits[i]));
  }
  EXPECT_LE(worst, 0.03f * largest);
  EXPECT_GT(worst, 0.0f);
}

TEST(Int8Predictor, SizeCountsOneBytePerQuantizedWeight) {
  recur::ModelSpec spec;
  spec.input = recur::ActShape{recur::ActKind::sequence, 28};
  spec.num_classes = 10;
  spec.layers = recur::parse_layer_list("lstm 128, pool last, linear", "test");
  recur::Model<float> model(spec);
  model.init(1);
  // W_ih 512 x 28, W_hh 512 x 128 and the head's 10 x 128 at a byte each plus a scale per row;
  // the biases (2 x 512 + 10) at four bytes.
  const std::uint64_t quantized = 512 * 28 + 512 * 128 + 10 * 128;
  const std::uint64_t scales = 512 + 512 + 10;
  EXPECT_EQ(recur::int8_parameter_bytes(model), quantized + 4 * scales + 4 * (2 * 512 + 10));
  EXPECT_EQ(model.num_params(), quantized + 2 * 512 + 10);
}

TEST(Int8Predictor, AnUnknownPrecisionNamesTheFlag) {
  EXPECT_EQ(recur::parse_infer_precision("int8"), InferPrecision::int8);
  EXPECT_EQ(recur::parse_infer_precision("fp32"), InferPrecision::fp32);
  try {
    recur::parse_infer_precision("int4");
    FAIL() << "int4 was accepted";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "--precision");
    EXPECT_NE(std::string(e.what()).find("int4"), std::string::npos);
  }
}

}  // namespace
}  // namespace recur_infer_test
