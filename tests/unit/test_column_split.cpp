// Inference with the columns split between threads (RecurrentStack::forward_direction_columns,
// SequenceRunner::infer_batch on few rows against large weights): the same bits as the rows split
// or one thread, for every cell, both directions, sequences of different lengths and rows past
// their end. Training likewise (backward_direction_columns, SequenceRunner::train_batch): the
// outputs, gradients and input gradient of one thread, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/thread_pool.hpp"
#include "nn/recurrent.hpp"
#include "recur/cell.hpp"
#include "recur/data.hpp"
#include "recur/fit.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "recur/sources.hpp"
#include "support/random_stack.hpp"

namespace recur {
namespace {

struct SplitCase {
  CellKind cell;
  int hidden;
  int directions;
  bool ragged;
};

std::string case_name(const ::testing::TestParamInfo<SplitCase>& param) {
  const SplitCase& c = param.param;
  return to_string(c.cell) + std::to_string(c.hidden) +
         (c.directions == 2 ? "_bidirectional" : "") + (c.ragged ? "_ragged" : "");
}

class ColumnSplit : public ::testing::TestWithParam<SplitCase> {};

TEST_P(ColumnSplit, GivesTheBitsOfOneThread) {
  const auto [cell, H, D, ragged] = GetParam();
  const int S = 4, B = 13, I = 28;
  test::RandomStack r(cell, I, H, D, 11, 0.05);
  const nn::RecurrentStack<float>& stack = *r.stack;
  const std::vector<float>& params = r.params;
  const std::vector<float> x = r.inputs(static_cast<std::size_t>(S) * B * I);
  // Ragged: rows sorted longest first, the last ones ending early (packed sequences).
  std::vector<int> batch_sizes = {B, B, 9, 4};
  nn::StackPacked packed;
  stack.prepare(params.data(), packed, false);
  ASSERT_GT(stack.column_split_rows(packed), 0) << "weights this large should split";

  ThreadPool pool(2);
  nn::StackWorkspace<float> one, split;
  split.columns = &pool;
  const int* sizes = ragged ? batch_sizes.data() : nullptr;
  stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, false, nullptr, one, sizes,
                &packed);
  stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, false, nullptr, split, sizes,
                &packed);
  const std::size_t out = static_cast<std::size_t>(S) * B * D * H;
  const std::size_t states = static_cast<std::size_t>(D) * B * H;
  EXPECT_EQ(std::memcmp(one.layers.back().out.data(), split.layers.back().out.data(),
                        out * sizeof(float)),
            0);
  EXPECT_EQ(std::memcmp(one.hn.data(), split.hn.data(), states * sizeof(float)), 0);
  if (cell == CellKind::lstm) {
    EXPECT_EQ(std::memcmp(one.cn.data(), split.cn.data(), states * sizeof(float)), 0);
  }
  // Not all zeros: the split ran and wrote every unit.
  float largest = 0;
  for (std::size_t k = 0; k < out; ++k)
    largest = std::max(largest, std::fabs(split.layers.back().out[k]));
  EXPECT_GT(largest, 0.01f);
}

INSTANTIATE_TEST_SUITE_P(Cells, ColumnSplit,
                         ::testing::Values(SplitCase{CellKind::lstm, 1024, 1, false},
                                           SplitCase{CellKind::lstm, 1024, 2, true},
                                           SplitCase{CellKind::gru, 1024, 1, true},
                                           SplitCase{CellKind::gru, 1024, 2, false},
                                           SplitCase{CellKind::rnn_tanh, 2048, 1, true},
                                           SplitCase{CellKind::rnn_relu, 2048, 2, true}),
                         case_name);

// Training: forward keeping every step, then backward, split and on one thread.
class ColumnSplitTraining : public ::testing::TestWithParam<SplitCase> {};

TEST_P(ColumnSplitTraining, GivesTheGradientsOfOneThread) {
  const auto [cell, H, D, ragged] = GetParam();
  const int S = 4, B = 13, I = 28;
  test::RandomStack r(cell, I, H, D, 12, 0.05);
  const nn::RecurrentStack<float>& stack = *r.stack;
  const std::vector<float>& params = r.params;
  const std::vector<float> x = r.inputs(static_cast<std::size_t>(S) * B * I);
  const std::size_t out = static_cast<std::size_t>(S) * B * D * H;
  const std::vector<float> dy = r.inputs(out);
  std::vector<int> batch_sizes = {B, B, 9, 4};
  nn::StackPacked packed;
  stack.prepare(params.data(), packed, true);
  ASSERT_GT(stack.column_split_rows(packed), 0) << "training weights this large should split";

  ThreadPool pool(2);
  nn::StackWorkspace<float> one, split;
  split.columns = &pool;
  std::vector<float> g_one(params.size(), 0.0f), g_split(params.size(), 0.0f);
  const int* sizes = ragged ? batch_sizes.data() : nullptr;
  for (auto [ws, g] : {std::pair{&one, &g_one}, std::pair{&split, &g_split}}) {
    stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, true, nullptr, *ws, sizes,
                  &packed);
    std::copy(dy.begin(), dy.end(), ws->layers.back().dout.begin());
    stack.backward(params.data(), nullptr, nullptr, *ws, g->data(), true, nullptr, nullptr);
  }
  EXPECT_EQ(std::memcmp(one.layers.back().out.data(), split.layers.back().out.data(),
                        out * sizeof(float)),
            0);
  EXPECT_EQ(g_one, g_split);
  EXPECT_EQ(std::memcmp(one.dinput.data(), split.dinput.data(),
                        static_cast<std::size_t>(S) * B * I * sizeof(float)),
            0);
  // Not all zeros: the split ran and wrote every gradient.
  float largest = 0;
  for (float v : g_split) largest = std::max(largest, std::fabs(v));
  EXPECT_GT(largest, 0.01f);
}

INSTANTIATE_TEST_SUITE_P(Cells, ColumnSplitTraining,
                         ::testing::Values(SplitCase{CellKind::lstm, 1024, 1, false},
                                           SplitCase{CellKind::lstm, 1024, 2, true},
                                           SplitCase{CellKind::gru, 1024, 1, true},
                                           SplitCase{CellKind::gru, 1024, 2, false},
                                           SplitCase{CellKind::rnn_tanh, 2048, 1, true},
                                           SplitCase{CellKind::rnn_relu, 2048, 2, false}),
                         case_name);

// A training step through the runner: two threads on the columns give the one-thread gradients.
TEST(ColumnSplitTraining, TheRunnerGivesTheGradientsOfOneThread) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 28};
  spec.num_classes = 10;
  spec.layers = parse_layer_list("lstm 1024, pool last, linear", "test");
  Model<float> model(spec);
  model.init(5);
  auto set = std::make_shared<ImageSet>();
  set->source = "images";
  set->count = 16;
  set->rows = set->cols = 28;
  Rng rng(9);
  set->pixels.resize(static_cast<std::size_t>(set->count) * 28 * 28);
  for (auto& p : set->pixels) p = static_cast<std::uint8_t>(rng.below(256));
  set->labels.resize(static_cast<std::size_t>(set->count));
  for (auto& l : set->labels) l = static_cast<std::int32_t>(rng.below(10));
  const ImageSequences source(set, SequenceView::make(ViewKind::rows, 28, 28));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(set->count));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> g_two(model.num_params()), g_one(model.num_params());
  SequenceRunner two(model, 2);
  two.prepare_model(PrepareFor::training);
  ASSERT_GT(model.column_split_rows(), 0);
  const SequenceRunner::Stats s2 = two.train_batch(source, idx, g_two.data(), 3);
  SequenceRunner one(model, 1);
  one.prepare_model(PrepareFor::training);
  const SequenceRunner::Stats s1 = one.train_batch(source, idx, g_one.data(), 3);
  EXPECT_EQ(g_two, g_one);
  EXPECT_EQ(s2.loss_sum, s1.loss_sum);
  EXPECT_EQ(s2.correct, s1.correct);
}

// The runner splits columns for a batch of few rows a thread against a model that says so, and
// rows otherwise: the same predictions and probabilities bit for bit.
TEST(ColumnSplit, TheRunnerGivesTheRowSplitsBits) {
  ModelSpec spec;
  spec.input = ActShape{ActKind::sequence, 28};
  spec.num_classes = 10;
  spec.layers = parse_layer_list("lstm 1024, pool last, linear", "test");
  Model<float> model(spec);
  model.init(5);
  model.prepare(PrepareFor::inference);
  ASSERT_GT(model.column_split_rows(), 0);
  auto set = std::make_shared<ImageSet>();
  set->source = "images";
  set->count = 24;
  set->rows = set->cols = 28;
  Rng rng(9);
  set->pixels.resize(static_cast<std::size_t>(set->count) * 28 * 28);
  for (auto& p : set->pixels) p = static_cast<std::uint8_t>(rng.below(256));
  set->labels.assign(static_cast<std::size_t>(set->count), 1);
  const ImageSequences source(set, SequenceView::make(ViewKind::rows, 28, 28));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(set->count));
  std::iota(idx.begin(), idx.end(), 0);
  SequenceRunner runner(model, 2);
  std::vector<std::int32_t> split_labels(idx.size()), row_labels(idx.size());
  std::vector<float> split_probs(idx.size() * 10), row_probs(idx.size() * 10);
  runner.infer_batch(source, idx, split_labels.data(), split_probs.data());
  runner.infer_chunks(source, idx, row_labels.data(), row_probs.data(), 0, 2, 2);
  EXPECT_EQ(split_labels, row_labels);
  EXPECT_EQ(split_probs, row_probs);
}

// Below the size where splitting pays, a stack never splits.
TEST(ColumnSplit, SmallWeightsNeverSplit) {
  nn::StackSpec spec;
  spec.cell = CellKind::lstm;
  spec.input_size = 28;
  spec.hidden = 512;
  ParamLayout layout;
  nn::RecurrentStack<float> stack(spec, layout, "rnn.");
  std::vector<float> params(layout.total(), 0.01f);
  nn::StackPacked inference, training;
  stack.prepare(params.data(), inference, false);
  stack.prepare(params.data(), training, true);
  EXPECT_EQ(stack.column_split_rows(inference), 0);
  spec.hidden = 1024;
  ParamLayout wide_layout;
  nn::RecurrentStack<float> wide(spec, wide_layout, "rnn.");
  std::vector<float> wide_params(wide_layout.total(), 0.01f);
  wide.prepare(wide_params.data(), training, true);
  EXPECT_GT(wide.column_split_rows(training), 0) << "a wide LSTM splits in training too";
  // Training does not split a stack with recurrent dropout (inference does).
  nn::StackSpec dropped = spec;
  dropped.recurrent_dropout = 0.25;
  ParamLayout dropped_layout;
  nn::RecurrentStack<float> stack_dropped(dropped, dropped_layout, "rnn.");
  std::vector<float> dropped_params(dropped_layout.total(), 0.01f);
  stack_dropped.prepare(dropped_params.data(), training, true);
  EXPECT_EQ(stack_dropped.column_split_rows(training), 0) << "recurrent dropout";
  stack_dropped.prepare(dropped_params.data(), inference, false);
  EXPECT_GT(stack_dropped.column_split_rows(inference), 0);
}

}  // namespace
}  // namespace recur
