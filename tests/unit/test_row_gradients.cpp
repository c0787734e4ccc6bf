// Model::backward with RowGradients (what SequenceRunner's worker threads use): the embedding's
// gradient lands in the touched rows only, each equal bit for bit to the dense gradient's row,
// the rest of the gradient is the dense one, and the table's part of grads is never touched.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "recur/layers.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

void check_rows_match_dense(double word_dropout) {
  ModelSpec spec;
  spec.num_classes = 3;
  spec.input = ActShape{ActKind::sequence, 0};
  spec.input.ids = true;
  spec.layers =
      parse_layer_list("embedding 6 vocab=40, lstm 5 bidirectional, pool max, linear", "test");
  spec.layers[0].dropout = word_dropout;
  Model<float> model(spec);
  model.init(11);
  const ParamInfo* table = model.embedding_table();
  ASSERT_NE(table, nullptr);
  ASSERT_EQ(table->shape, (std::vector<int64_t>{40, 6}));

  // Four texts of 9, 7, 4 and 2 tokens, time-major, from the first 20 of the 40 words.
  const SeqInfo seq = SeqInfo::from_lengths({9, 7, 4, 2});
  std::vector<std::int32_t> ids(static_cast<std::size_t>(seq.steps) * 4, 0);
  Rng draw(5);
  for (int t = 0; t < seq.steps; ++t)
    for (int b = 0; b < seq.batch_sizes[t]; ++b)
      ids[static_cast<std::size_t>(t) * 4 + b] = static_cast<std::int32_t>(draw.uniform() * 20);
  ModelInput<float> in;
  in.ids = ids.data();
  in.batch = 4;
  in.seq = &seq;
  const std::vector<float> dlogits{0.1f,  -0.3f, 0.2f, 0.05f, 0.4f,  -0.45f,
                                   -0.2f, 0.1f,  0.1f, 0.3f,  -0.1f, -0.2f};

  const std::size_t P = model.num_params();
  std::vector<float> dense(P, 0.f);
  ModelWorkspace<float> ws;
  Rng rng1(3);
  model.forward(in, ws, true, &rng1);
  model.backward(in, ws, dlogits.data(), dense.data());

  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> sparse(P, 0.f);
  std::fill(sparse.begin() + static_cast<std::ptrdiff_t>(table->offset),
            sparse.begin() + static_cast<std::ptrdiff_t>(table->offset + table->size), nan);
  RowGradients<float> rows;
  rows.reset(table->offset, 40, 6);
  for (int round = 0; round < 2; ++round) {  // clear() makes the second round start afresh
    rows.clear();
    ModelWorkspace<float> ws2;
    Rng rng2(3);
    model.forward(in, ws2, true, &rng2);
    std::vector<float> g = sparse;
    model.backward(in, ws2, dlogits.data(), g.data(), &rows);
    for (std::size_t j = 0; j < P; ++j) {
      if (j >= table->offset && j < table->offset + table->size)
        ASSERT_TRUE(std::isnan(g[j])) << "the table's part of grads was written at " << j;
      else
        ASSERT_EQ(g[j], dense[j]) << j;
    }
  }
  std::vector<int> touched(40, 0);
  for (std::size_t s = 0; s < rows.rows.size(); ++s) {
    const int r = rows.rows[s];
    touched[r] = 1;
    EXPECT_EQ(rows.slot[r], static_cast<std::int32_t>(s));
    for (int e = 0; e < 6; ++e)
      ASSERT_EQ(rows.values[s * 6 + e], dense[table->offset + r * 6 + e]) << r << " " << e;
  }
  for (int r = 0; r < 40; ++r) {
    if (touched[r]) continue;
    EXPECT_EQ(rows.slot[r], -1);
    for (int e = 0; e < 6; ++e) ASSERT_EQ(dense[table->offset + r * 6 + e], 0.f) << r;
  }
  EXPECT_GE(rows.rows.size(), 5u);
  EXPECT_LE(rows.rows.size(), 20u);  // only words 0-19 occur
}

TEST(RowGradients, TouchedRowsEqualTheDenseGradientBitForBit) {
  check_rows_match_dense(0.0);
}
TEST(RowGradients, AlsoWithWordDropout) {
  check_rows_match_dense(0.3);
}

TEST(RowGradients, ModelsWithoutAnEmbeddingHaveNoTable) {
  ModelSpec spec;
  spec.num_classes = 2;
  spec.input = ActShape{ActKind::sequence, 28};
  spec.layers = parse_layer_list("lstm 8, pool last, linear", "test");
  const Model<float> model(spec);
  EXPECT_EQ(model.embedding_table(), nullptr);
}

}  // namespace
}  // namespace recur
