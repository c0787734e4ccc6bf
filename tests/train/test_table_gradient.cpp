// The embedding table's gradient by rows (what the trainer does with a 20,000-word table): a
// SequenceRunner in rows mode gives the dense gradient's values, bit for bit, without touching
// the table's part of the dense gradient; and the optimizers, clipping and the finite check on
// rows (TableRows) give what they give on the dense gradient, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "recur/fit.hpp"
#include "recur/optim.hpp"
#include "recur/rng.hpp"
#include "recur/sources.hpp"
#include "recur/text.hpp"

namespace recur {
namespace {

// 60 short "reviews" over 30 words, two classes.
std::shared_ptr<const TokenSequences> texts(Vocabulary& vocab) {
  TextSet set;
  Rng rng(23);
  for (int i = 0; i < 60; ++i) {
    std::string text;
    const int words = 2 + static_cast<int>(rng.below(12));
    for (int w = 0; w < words; ++w)
      text.append("w").append(std::to_string(rng.below(30))).append(" ");
    set.texts.push_back(text);
    set.labels.push_back(static_cast<std::int32_t>(rng.below(2)));
  }
  vocab = Vocabulary::build(set.texts, 100, 1);
  return std::make_shared<TokenSequences>(set, vocab, 100, Truncate::tail);
}

TEST(TableGradient, ARunnerInRowsModeGivesTheDenseGradientByRowsEveryStep) {
  Vocabulary vocab;
  const auto src = texts(vocab);
  ModelSpec spec;
  spec.num_classes = 2;
  spec.input = src->input_shape();
  spec.layers = parse_layer_list("embedding 6 vocab=" + std::to_string(vocab.size()) +
                                     " dropout=0.2, lstm 5 bidirectional, pool max, linear",
                                 "test");
  Model<float> model(spec);
  model.init(3);
  model.prepare();
  const ParamInfo* table = model.embedding_table();
  ASSERT_NE(table, nullptr);
  const std::size_t P = model.num_params(), T0 = table->offset, T1 = T0 + table->size;
  const float nan = std::numeric_limits<float>::quiet_NaN();

  SequenceRunner dense(model, 2), by_rows(model, 2);
  by_rows.set_table_rows(true);
  EXPECT_EQ(dense.table_gradient(), nullptr);
  std::vector<float> want(P, 7.f), got(P, nan);  // the table's part must stay untouched
  for (int step = 0; step < 4; ++step) {
    // 12 texts a batch, longest first, different texts (so different rows) each step.
    std::vector<std::int64_t> batch;
    for (int i = 0; i < 12; ++i) batch.push_back((step * 12 + i * 5) % 60);
    std::stable_sort(batch.begin(), batch.end(), [&](std::int64_t a, std::int64_t b) {
      return src->length(a) > src->length(b);
    });
    const auto a = dense.train_batch(*src, batch, want.data(), 99 + step);
    const auto b = by_rows.train_batch(*src, batch, got.data(), 99 + step);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_EQ(a.correct, b.correct);
    const TableRows* rows = by_rows.table_gradient();
    ASSERT_NE(rows, nullptr);
    ASSERT_EQ(rows->offset, T0);
    ASSERT_EQ(rows->vocab, vocab.size());
    ASSERT_EQ(rows->width, 6);
    for (std::size_t j = 0; j < P; ++j) {
      if (j < T0 || j >= T1) {
        ASSERT_EQ(got[j], want[j]) << "step " << step << " element " << j;
        continue;
      }
      ASSERT_TRUE(std::isnan(got[j])) << "the table's part was written at " << j;
      const std::size_t r = (j - T0) / 6, e = (j - T0) % 6;
      const std::int32_t k = rows->slot[r];
      const float value = k >= 0 ? rows->values[static_cast<std::size_t>(k) * 6 + e] : 0.f;
      ASSERT_EQ(value, want[j]) << "step " << step << " row " << r;
    }
    std::size_t touched = 0;
    for (int r = 0; r < rows->vocab; ++r) touched += rows->slot[r] >= 0;
    EXPECT_GT(touched, 2u);
    EXPECT_LT(touched, static_cast<std::size_t>(vocab.size()));  // not every word every batch
  }
}

// A gradient of n elements with a table of `vocab` rows of `width` at `offset`, every third row
// zero; `rows` holds the others (in a scrambled order), `sparse` is the dense gradient with NaN
// in the table's part.
struct Split {
  std::vector<float> dense, sparse, values;
  std::vector<std::int32_t> slot;
  TableRows rows;
  Split(std::size_t n, std::size_t offset, int vocab, int width, std::uint64_t seed) {
    Rng rng(seed);
    dense.resize(n);
    for (float& g : dense) g = static_cast<float>(rng.normal() * 0.3);
    slot.assign(static_cast<std::size_t>(vocab), -1);
    const std::size_t W = static_cast<std::size_t>(width);
    for (int k = 0; k < vocab; ++k) {
      const int r = (k * 7919) % vocab;  // scrambled first-touch order (7,919 is prime)
      float* row = dense.data() + offset + static_cast<std::size_t>(r) * W;
      if (r % 3 == 0) {
        std::fill(row, row + W, 0.f);
        continue;
      }
      slot[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(values.size() / W);
      values.insert(values.end(), row, row + W);
    }
    sparse = dense;
    std::fill(sparse.begin() + static_cast<std::ptrdiff_t>(offset),
              sparse.begin() + static_cast<std::ptrdiff_t>(offset + vocab * W),
              std::numeric_limits<float>::quiet_NaN());
    rows = TableRows{offset, vocab, width, slot.data(), values.data()};
  }
  // The sparse form's value at element j.
  float at(std::size_t j) const {
    if (j < rows.offset || j >= rows.offset + static_cast<std::size_t>(rows.vocab) * rows.width)
      return sparse[j];
    const std::size_t r = (j - rows.offset) / rows.width, e = (j - rows.offset) % rows.width;
    const std::int32_t k = slot[r];
    return k >= 0 ? values[static_cast<std::size_t>(k) * rows.width + e] : 0.f;
  }
};

TEST(TableGradient, ClippingAndTheFiniteCheckOnRowsEqualTheDenseOnes) {
  // Small arenas sum in one partial sum, large ones in four: both, with tables at odd places.
  for (const auto& [n, offset, vocab, width] :
       std::vector<std::tuple<std::size_t, std::size_t, int, int>>{
           {3001, 5, 100, 7}, {200003, 0, 3000, 32}, {150001, 13, 999, 51}}) {
    Split s(n, offset, vocab, width, n);
    EXPECT_TRUE(all_finite(s.sparse.data(), n, &s.rows));
    EXPECT_EQ(clip_grad_norm(s.sparse.data(), n, 1e9f, &s.rows),
              clip_grad_norm(s.dense.data(), n, 1e9f))
        << n;
    const float norm = clip_grad_norm(s.dense.data(), n, 0.5f);
    EXPECT_EQ(clip_grad_norm(s.sparse.data(), n, 0.5f, &s.rows), norm);
    for (std::size_t j = 0; j < n; ++j) ASSERT_EQ(s.at(j), s.dense[j]) << n << " " << j;
    clip_grad_value(s.dense.data(), n, 0.001f);
    clip_grad_value(s.sparse.data(), n, 0.001f, &s.rows);
    for (std::size_t j = 0; j < n; ++j) ASSERT_EQ(s.at(j), s.dense[j]) << n << " " << j;
    s.values[3] = std::numeric_limits<float>::infinity();
    EXPECT_FALSE(all_finite(s.sparse.data(), n, &s.rows));
  }
}

TEST(TableGradient, EveryOptimizerOnRowsUpdatesAsOnTheDenseGradient) {
  const std::size_t n = 40000, offset = 11;
  const int vocab = 700, width = 40;
  std::vector<OptimizerConfig> configs(5);
  configs[0].kind = OptimizerKind::adam;
  configs[1].kind = OptimizerKind::adamw;
  configs[1].weight_decay = 0.01f;
  configs[2].kind = OptimizerKind::adam;
  configs[2].weight_decay = 0.001f;  // enters the gradient: an untouched row still decays
  configs[3].kind = OptimizerKind::sgd;
  configs[3].momentum = 0.9f;
  configs[3].nesterov = true;
  configs[4].kind = OptimizerKind::rmsprop;
  configs[4].centered = true;
  configs[4].momentum = 0.5f;
  for (OptimizerConfig cfg : configs) {
    SCOPED_TRACE(optimizer_name(cfg.kind));
    cfg.ema = 0.9f;
    Rng rng(9);
    std::vector<float> p1(n);
    for (float& v : p1) v = static_cast<float>(rng.normal());
    std::vector<float> p2 = p1;
    Optimizer a(cfg, n), b(cfg, n);
    for (int step = 0; step < 3; ++step) {
      Split s(n, offset, vocab, width, 100 + step);
      a.step(p1.data(), s.dense.data(), 0.01f);
      b.step(p2.data(), s.sparse.data(), 0.01f, &s.rows);
      for (std::size_t j = 0; j < n; ++j)
        ASSERT_EQ(p1[j], p2[j]) << "step " << step << " element " << j << " table "
                                << (j >= offset && j < offset + vocab * width);
    }
    EXPECT_EQ(a.averaged(), b.averaged());
  }
}

}  // namespace
}  // namespace recur
