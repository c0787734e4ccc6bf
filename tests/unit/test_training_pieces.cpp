// How much of a batch a training piece holds (SequenceRunner): the IMDb recipe and anything
// narrower keep 8,192 padded tokens a piece; a wider model gets a budget smaller in proportion to
// its step outputs, never below 8 rows of the batch's longest sequence.
#include <gtest/gtest.h>

#include <string>

#include "recur/fit.hpp"
#include "recur/layers.hpp"

namespace recur {
namespace {

std::int64_t width_of(const std::string& layers, bool ids, int features = 0) {
  ModelSpec spec;
  spec.num_classes = 2;
  spec.input = ActShape{ActKind::sequence, features};
  spec.input.ids = ids;
  spec.layers = parse_layer_list(layers, "test");
  const Model<float> model(spec);
  return step_output_width(model);
}

TEST(TrainingPieces, StepWidthSumsTheSequenceOutputsUpToThePooling) {
  // The IMDb recipe: embedding 128 + BiLSTM-128 (256); the pooled vector and the head do not count.
  EXPECT_EQ(width_of("embedding 128 vocab=50, lstm 128 bidirectional, pool max, linear", true),
            384);
  EXPECT_EQ(width_of("embedding 512 vocab=50, lstm 256 bidirectional, pool max, linear", true),
            1024);
  EXPECT_EQ(width_of("lstm 128, pool last, linear", false, 28), 128);  // MNIST rows
}

TEST(TrainingPieces, WiderModelsGetSmallerPiecesDownToEightRows) {
  // Up to the recipe's width: 8,192 tokens (a thread's 32 reviews of 500 in two pieces).
  EXPECT_EQ(training_piece_tokens(128, 28), 8192);
  EXPECT_EQ(training_piece_tokens(384, 500), 8192);
  // Wider: 8,192 x 384 / width, but at least 8 rows of the longest sequence...
  EXPECT_EQ(training_piece_tokens(1024, 500), 4000);  // 3,072 would be 6 reviews: 8 rows
  EXPECT_EQ(training_piece_tokens(1024, 100), 3072);  // short texts: the scaled budget
  EXPECT_EQ(training_piece_tokens(768, 100), 4096);
  // ...and that floor never above 8,192 (very long texts split as before).
  EXPECT_EQ(training_piece_tokens(1024, 2000), 8192);
  EXPECT_EQ(training_piece_tokens(1024, 0), 3072);
}

}  // namespace
}  // namespace recur
