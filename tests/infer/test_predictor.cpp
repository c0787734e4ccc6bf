// The library's Predictor: batch prediction, streaming (feeding a sequence in pieces ends with
// the logits of predicting it whole), refusals with a reason, and one predictor shared by
// threads giving the serial results bit for bit.
#include "recur/predictor.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "recur/error.hpp"
#include "recur/rng.hpp"

namespace recur_infer_test {
namespace {

using recur_cli_test::ScratchDir;

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  recur::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

std::vector<std::uint8_t> random_pixels(std::size_t n, std::uint64_t seed) {
  recur::Rng rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& p : v) p = static_cast<std::uint8_t>(rng.below(256));
  return v;
}

// Largest |a - b| over two logit vectors of equal size.
float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// Feeds `x` [S, F] in pieces of the given sizes (cycled) and reads the final prediction.
recur::StreamReading stream_in_pieces(const recur::Predictor& p, const std::vector<float>& x, int S,
                                      const std::vector<int>& pieces) {
  recur::StreamState state = p.start();
  const int F = p.features();
  int t = 0;
  for (std::size_t k = 0; t < S; ++k) {
    const int n = std::min(pieces[k % pieces.size()], S - t);
    p.feed(state, x.data() + static_cast<std::size_t>(t) * F, n);
    t += n;
  }
  EXPECT_EQ(state.steps, S);
  return p.read(state);
}

struct StreamCase {
  std::string layers;
};
// Test names show the layer list (not the object's bytes, which hold a pointer).
void PrintTo(const StreamCase& c, std::ostream* os) {
  *os << c.layers;
}

class StreamingMatchesWhole : public ::testing::TestWithParam<StreamCase> {};

TEST_P(StreamingMatchesWhole, FeedingInPiecesEndsWithTheWholeSequencesLogits) {
  ScratchDir tmp;
  const int S = 9, F = 3;
  const recur::Predictor p(write_sequence_model(tmp / "m.safetensors", GetParam().layers, F));
  ASSERT_TRUE(p.streamable());
  for (std::uint64_t seed : {1u, 2u}) {
    const std::vector<float> x = random_floats(static_cast<std::size_t>(S) * F, seed);
    const recur::Predictions whole = p.predict_sequences(x.data(), 1, S);
    for (const std::vector<int>& pieces : std::vector<std::vector<int>>{{1}, {2, 3}, {S}, {4, 1}}) {
      const recur::StreamReading r = stream_in_pieces(p, x, S, pieces);
      // The same kernels on the same rows: the same bits (so within 1e-5 too).
      EXPECT_EQ(r.logits, whole.logits) << GetParam().layers;
      EXPECT_EQ(r.label, whole.labels[0]);
      EXPECT_EQ(r.steps, S);
      float sum = 0;
      for (float q : r.probabilities) sum += q;
      EXPECT_NEAR(sum, 1.f, 1e-5f);
    }
    // A prefix read mid-way is the prediction of the prefix alone.
    recur::StreamState state = p.start();
    p.feed(state, x.data(), 4);
    const recur::Predictions prefix = p.predict_sequences(x.data(), 1, 4);
    EXPECT_LE(max_difference(p.read(state).logits, prefix.logits), 1e-5f);
  }
}

INSTANTIATE_TEST_SUITE_P(
    CellsPoolingsAndStacks, StreamingMatchesWhole,
    ::testing::Values(
        StreamCase{"lstm 8, pool last, linear"}, StreamCase{"lstm 8, pool mean, linear"},
        StreamCase{"lstm 8, pool max, linear"}, StreamCase{"gru 8, pool last, linear"},
        StreamCase{"gru 8, pool mean, linear"}, StreamCase{"gru 8, pool max, linear"},
        StreamCase{"rnn 8, pool last, linear"}, StreamCase{"rnn 8, pool mean, linear"},
        StreamCase{"rnn_relu 8, pool max, linear"}, StreamCase{"gru 8, pool maxmean, linear"},
        StreamCase{"lstm 8 layers=2, pool last, linear"},
        StreamCase{"linear 5 name=proj, gru 6 layers=2, pool mean, linear 4, relu, linear"},
        StreamCase{"linear 5, tanh, lstm 6, dropout 0.2, rnn 4, pool max, linear"},
        StreamCase{"lstm 40, pool last, linear"}));

TEST(Predictor, ImageRowsStreamedOneRowAtATimeMatchTheWholeImage) {
  ScratchDir tmp;
  const int rows = 7, cols = 5;
  const recur::Predictor p(
      write_image_model(tmp / "m.safetensors", "lstm 8, pool last, linear", rows, cols));
  EXPECT_EQ(p.input_kind(), recur::InputKind::image_sequence);
  EXPECT_EQ(p.steps(), rows);
  EXPECT_EQ(p.features(), cols);
  const std::vector<std::uint8_t> images = random_pixels(3 * rows * cols, 5);
  const recur::Predictions whole = p.predict_images(images.data(), 3);
  for (int i = 0; i < 3; ++i) {
    const std::uint8_t* img = images.data() + i * rows * cols;
    recur::StreamState state = p.start();
    for (int r = 0; r < rows; ++r) p.feed_pixels(state, img + r * cols, 1);
    // A stream, a batch of one and a row of a batch of 3: the same bits.
    const recur::Predictions one = p.predict_images(img, 1);
    const std::vector<float> row(whole.logits.begin() + i * 10, whole.logits.begin() + i * 10 + 10);
    EXPECT_EQ(p.read(state).logits, row);
    EXPECT_EQ(p.read(state).logits, one.logits);
    // image_steps gives the floats the view gives.
    const std::vector<float> steps = p.image_steps(img);
    ASSERT_EQ(steps.size(), static_cast<std::size_t>(rows * cols));
    EXPECT_EQ(steps[3], static_cast<float>(img[3]) / 255.f);
  }
}

TEST(Predictor, TextTokensStreamedOneAtATimeMatchTheWholeText) {
  ScratchDir tmp;
  const recur::Predictor p(
      write_text_model(tmp / "t.safetensors", "embedding 6 vocab=VOCAB, gru 8, pool max, linear"));
  EXPECT_EQ(p.input_kind(), recur::InputKind::text);
  const recur::Predictions whole = p.predict_texts(sample_texts());
  for (std::size_t i = 0; i < sample_texts().size(); ++i) {
    const std::vector<std::int32_t> ids = p.text_tokens(sample_texts()[i]);
    ASSERT_FALSE(ids.empty());
    recur::StreamState state = p.start();
    for (std::int32_t id : ids) p.feed_tokens(state, &id, 1);
    const std::vector<float> row(whole.logits.begin() + static_cast<std::ptrdiff_t>(i) * 2,
                                 whole.logits.begin() + static_cast<std::ptrdiff_t>(i) * 2 + 2);
    EXPECT_EQ(p.read(state).logits, row) << sample_texts()[i];
  }
  // An id outside the vocabulary is refused and leaves the state as it was.
  recur::StreamState state = p.start();
  const std::int32_t bad = 100000;
  try {
    p.feed_tokens(state, &bad, 1);
    ADD_FAILURE() << "an id out of range was fed";
  } catch (const recur::Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_EQ(state.steps, 0);
  EXPECT_THROW(p.read(state), recur::Error);  // nothing fed yet
}

TEST(Predictor, TextsWithNothingToReadAreRefused) {
  ScratchDir tmp;
  const recur::Predictor p(write_text_model(tmp / "t.safetensors",
                                            "embedding 4 vocab=VOCAB, lstm 4, pool last, linear"));
  for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
           {"", "text 2 is empty"}, {"  \t\n ", "text 2 holds only whitespace"}}) {
    try {
      p.predict_texts({"a fine film", text});
      ADD_FAILURE() << "no error for '" << text << "'";
    } catch (const recur::Error& e) {
      EXPECT_EQ(e.subject(), "texts");
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("nothing to classify"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(p.text_problem("a fine film"), "");
  EXPECT_EQ(p.text_problem("bad \xC3\x28 byte"), "has invalid UTF-8 at byte 4");
}

TEST(Predictor, ModelsThatCannotStreamAreRefusedWithTheReason) {
  ScratchDir tmp;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lstm 6 bidirectional, pool last, linear", "bidirectional"},
      {"conv1d 4 kernel=3, relu, gru 4, pool mean, linear", "looks across timesteps"},
      {"rnn 4 untied=9, pool last, linear", "untied weights"}};
  for (const auto& [layers, reason] : cases) {
    const recur::Predictor p(write_sequence_model(tmp / "m.safetensors", layers, 3));
    EXPECT_FALSE(p.streamable()) << layers;
    try {
      p.start();
      ADD_FAILURE() << "start() accepted " << layers;
    } catch (const recur::Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot be read step by step"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
    // It still predicts whole sequences.
    const std::vector<float> x = random_floats(9 * 3, 4);
    EXPECT_EQ(p.predict_sequences(x.data(), 1, 9).count, 1);
  }
  recur::ActShape image{recur::ActKind::image, 1, 6, 6};
  const recur::Metadata meta = {{"recur.image_rows", "6"}, {"recur.image_cols", "6"}};
  const recur::Predictor mlp(
      write_model(tmp / "mlp.safetensors", "flatten, linear 8, relu, linear", image, 10, meta));
  EXPECT_EQ(mlp.input_kind(), recur::InputKind::whole_image);
  try {
    mlp.start();
    ADD_FAILURE() << "start() accepted an MLP";
  } catch (const recur::Error& e) {
    EXPECT_NE(std::string(e.what()).find("whole images"), std::string::npos) << e.what();
  }
}

// A sample's answer does not depend on the batch it runs in: each of 70 images predicted alone
// equals its row in a batch of all 70 and in batches of 2 to 17 starting at other positions (the
// server batches requests together; the one-to-four-row, 8-row-tile and tail kernels all show).
TEST(Predictor, ASamplesBitsDoNotDependOnItsBatch) {
  ScratchDir tmp;
  const int rows = 6, cols = 9, n = 70;
  const std::vector<std::uint8_t> images =
      random_pixels(static_cast<std::size_t>(n) * rows * cols, 3);
  for (const std::string layers :
       {"lstm 40, pool last, linear", "gru 33 layers=2, pool mean, linear",
        "rnn 70, pool max, linear 12, relu, linear", "lstm 20 bidirectional=true, pool max, linear",
        "linear 16, tanh, gru 24, pool last, linear"}) {
    const recur::Predictor p(write_image_model(tmp / "m.safetensors", layers, rows, cols));
    const recur::Predictions all = p.predict_images(images.data(), n);
    const std::size_t C = 10;
    for (int i = 0; i < n; ++i) {
      const recur::Predictions one =
          p.predict_images(images.data() + static_cast<std::size_t>(i) * rows * cols, 1);
      ASSERT_EQ(std::memcmp(one.logits.data(), all.logits.data() + i * C, C * sizeof(float)), 0)
          << layers << ": image " << i << " alone differs from its row in a batch of " << n;
    }
    for (int b = 2, start = 1; start + b <= n; start += b, ++b) {
      const recur::Predictions some =
          p.predict_images(images.data() + static_cast<std::size_t>(start) * rows * cols, b);
      ASSERT_EQ(std::memcmp(some.logits.data(), all.logits.data() + start * C,
                            static_cast<std::size_t>(b) * C * sizeof(float)),
                0)
          << layers << ": a batch of " << b << " from image " << start;
    }
  }
}

// Texts run together, longest first in blocks: each text's answer is the bits of predicting it
// alone, for recurrent, bidirectional and convolutional text models, with 70 texts of 1 to 70
// words (two blocks of varied lengths).
TEST(Predictor, ATextsBitsDoNotDependOnTheOtherTexts) {
  ScratchDir tmp;
  std::vector<std::string> texts;
  recur::Rng rng(4);
  for (int i = 0; i < 70; ++i) {
    std::string t;
    const int words = 1 + static_cast<int>(rng.below(70));
    for (int w = 0; w < words; ++w) {
      const std::string& source = sample_texts()[rng.below(sample_texts().size())];
      t += source.substr(0, source.find(' ')) + " ";
    }
    texts.push_back(t);
  }
  for (const std::string layers :
       {"embedding 6 vocab=VOCAB, lstm 9 bidirectional=true, pool max, linear",
        "embedding 5 vocab=VOCAB, conv1d 7 kernel=3, relu, gru 8, pool mean, linear",
        "embedding 4 vocab=VOCAB, rnn 10 layers=2, pool last, linear 6, tanh, linear"}) {
    const recur::Predictor p(write_text_model(tmp / "t.safetensors", layers));
    const recur::Predictions all = p.predict_texts(texts);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const recur::Predictions one = p.predict_texts({texts[i]});
      ASSERT_EQ(std::memcmp(one.logits.data(), all.logits.data() + i * 2, 2 * sizeof(float)), 0)
          << layers << ": text " << i << " alone differs from its row among 70 texts";
    }
  }
}

TEST(Predictor, VariedLengthsEqualEachSampleAlone) {
  ScratchDir tmp;
  const int S = 8, F = 2;
  const recur::Predictor p(
      write_sequence_model(tmp / "m.safetensors", "gru 6, pool mean, linear", F));
  const std::vector<float> x = random_floats(3 * S * F, 9);
  const std::vector<int> lengths = {8, 3, 5};
  const recur::Predictions batch = p.predict_sequences(x.data(), 3, S, lengths.data());
  for (int i = 0; i < 3; ++i) {
    const recur::Predictions one =
        p.predict_sequences(x.data() + i * S * F, 1, lengths[static_cast<std::size_t>(i)]);
    EXPECT_EQ(std::memcmp(one.logits.data(), batch.logits.data() + i * 3, 3 * sizeof(float)), 0);
  }
  const std::vector<int> bad = {8, 0, 5};
  EXPECT_THROW(p.predict_sequences(x.data(), 3, S, bad.data()), recur::Error);
  std::vector<float> nan = x;
  nan[5] = std::nanf("");
  try {
    p.predict_sequences(nan.data(), 3, S);
    ADD_FAILURE() << "NaN accepted";
  } catch (const recur::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x[0, 2, 1]"), std::string::npos) << e.what();
  }
}

// One Predictor shared by threads: each call has its own workspace, so every thread's results
// equal the serial run's bit for bit.
TEST(Predictor, SharedByThreadsGivesTheSerialResultsBitForBit) {
  ScratchDir tmp;
  const int rows = 6, cols = 4, N = 300;  // over one block of 256
  const recur::Predictor images(
      write_image_model(tmp / "i.safetensors", "lstm 12, pool last, linear", rows, cols));
  const recur::Predictor texts(
      write_text_model(tmp / "t.safetensors", "embedding 6 vocab=VOCAB, gru 8, pool max, linear"));
  const std::vector<std::uint8_t> pixels = random_pixels(N * rows * cols, 11);
  const recur::Predictions serial_images = images.predict_images(pixels.data(), N);
  const recur::Predictions serial_texts = texts.predict_texts(sample_texts());
  std::vector<float> serial_stream;
  {
    recur::StreamState s = images.start();
    for (int r = 0; r < rows; ++r) images.feed_pixels(s, pixels.data() + r * cols, 1);
    serial_stream = images.read(s).logits;
  }
  constexpr int kThreads = 4, kRounds = 3;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> pool;
  for (int k = 0; k < kThreads; ++k)
    pool.emplace_back([&, k] {
      for (int round = 0; round < kRounds; ++round) {
        const recur::Predictions a = images.predict_images(pixels.data(), N);
        const recur::Predictions b = texts.predict_texts(sample_texts());
        recur::StreamState s = images.start();
        for (int r = 0; r < rows; ++r) images.feed_pixels(s, pixels.data() + r * cols, 1);
        const std::vector<float> c = images.read(s).logits;
        mismatches[static_cast<std::size_t>(k)] +=
            (a.logits != serial_images.logits) + (a.probabilities != serial_images.probabilities) +
            (a.labels != serial_images.labels) + (b.logits != serial_texts.logits) +
            (b.probabilities != serial_texts.probabilities) + (c != serial_stream);
      }
    });
  for (std::thread& t : pool) t.join();
  for (int k = 0; k < kThreads; ++k) EXPECT_EQ(mismatches[static_cast<std::size_t>(k)], 0) << k;
}

TEST(Predictor, CloneCarriesTheStateOnIndependently) {
  ScratchDir tmp;
  const int S = 6, F = 2;
  const recur::Predictor p(
      write_sequence_model(tmp / "m.safetensors", "lstm 5, pool mean, linear", F));
  const std::vector<float> x = random_floats(S * F, 3);
  recur::StreamState a = p.start();
  p.feed(a, x.data(), 3);
  recur::StreamState b = a.clone();
  p.feed(a, x.data() + 3 * F, 3);
  EXPECT_EQ(b.steps, 3);
  p.feed(b, x.data() + 3 * F, 3);
  EXPECT_EQ(p.read(a).logits, p.read(b).logits);
}

TEST(Predictor, BadCheckpointsAndWrongInputsAreErrors) {
  ScratchDir tmp;
  EXPECT_THROW(recur::Predictor(tmp / "missing.safetensors"), recur::Error);
  const recur::Predictor seq(
      write_sequence_model(tmp / "m.safetensors", "rnn 4, pool last, linear", 2));
  EXPECT_THROW(seq.predict_texts({"a film"}), recur::Error);
  EXPECT_THROW(seq.image_source(std::make_shared<recur::ImageSet>()), recur::Error);
  recur::StreamState s = seq.start();
  const std::vector<float> x(4, 0.f);
  EXPECT_THROW(seq.feed(s, x.data(), 0), recur::Error);
  std::int32_t id = 1;
  EXPECT_THROW(seq.feed_tokens(s, &id, 1), recur::Error);
}

}  // namespace
}  // namespace recur_infer_test
