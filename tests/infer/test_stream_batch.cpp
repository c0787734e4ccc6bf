// Predictor::feed_many: several streams advanced together, one batched timestep at a time, end
// (and read after every call) bit for bit where feeding each stream alone does, whatever the
// other streams in the call, their number of steps k, or how far along they are.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "infer/model_fixtures.hpp"
#include "recur/error.hpp"
#include "recur/predictor.hpp"
#include "recur/rng.hpp"

namespace recur_infer_test {
namespace {

using recur_cli_test::ScratchDir;

// One stream of the test: its input (floats [S, F], pixels [S, F] or ids [S]) and the sizes of
// the pieces it is fed in, and the round at which it joins.
struct Plan {
  std::vector<float> x;
  std::vector<std::uint8_t> pixels;
  std::vector<std::int32_t> ids;
  std::vector<int> pieces;
  int join = 0;
};

// Pieces of 1 to 4 steps (different per stream) covering S steps.
std::vector<int> pieces_for(int stream, int S) {
  std::vector<int> p;
  for (int t = 0, i = 0; t < S; ++i) {
    const int k = std::min(1 + (stream + i * (stream + 1)) % 4, S - t);
    p.push_back(k);
    t += k;
  }
  return p;
}

recur::StreamFeed feed_of(const recur::Predictor& p, const Plan& plan, recur::StreamState& s,
                          int at, int k) {
  recur::StreamFeed f;
  f.state = &s;
  f.k = k;
  const std::size_t F = p.input_kind() == recur::InputKind::text ? 1 : p.features();
  if (!plan.ids.empty())
    f.ids = plan.ids.data() + at;
  else if (!plan.pixels.empty())
    f.pixels = plan.pixels.data() + static_cast<std::size_t>(at) * F;
  else
    f.x = plan.x.data() + static_cast<std::size_t>(at) * F;
  return f;
}

// Feeds every plan alone (one feed call per piece) and batched (one feed_many per round, each
// stream giving its next piece from its join round on), and compares the readings after every
// piece bit for bit. Returns the number of feed_many calls that held more than one stream.
int expect_batched_equals_alone(const recur::Predictor& p, const std::vector<Plan>& plans) {
  const std::size_t n = plans.size();
  std::vector<std::vector<std::vector<float>>> alone(n);
  for (std::size_t i = 0; i < n; ++i) {
    recur::StreamState s = p.start();
    int at = 0;
    for (int k : plans[i].pieces) {
      const recur::StreamFeed f = feed_of(p, plans[i], s, at, k);
      if (f.ids)
        p.feed_tokens(s, f.ids, k);
      else if (f.pixels)
        p.feed_pixels(s, f.pixels, k);
      else
        p.feed(s, f.x, k);
      at += k;
      alone[i].push_back(p.read(s).logits);
    }
  }
  std::vector<recur::StreamState> states;
  for (std::size_t i = 0; i < n; ++i) states.push_back(p.start());
  std::vector<std::size_t> next(n, 0);
  std::vector<int> at(n, 0);
  int joined = 0;
  for (int round = 0;; ++round) {
    std::vector<recur::StreamFeed> feeds;
    std::vector<std::size_t> who;
    for (std::size_t i = 0; i < n; ++i) {
      if (round < plans[i].join || next[i] >= plans[i].pieces.size()) continue;
      feeds.push_back(feed_of(p, plans[i], states[i], at[i], plans[i].pieces[next[i]]));
      who.push_back(i);
    }
    if (feeds.empty() && round > 8) break;
    p.feed_many(feeds);
    joined += feeds.size() > 1;
    for (std::size_t i : who) {
      at[i] += plans[i].pieces[next[i]];
      EXPECT_EQ(states[i].steps, at[i]);
      EXPECT_EQ(p.read(states[i]).logits, alone[i][next[i]])
          << "stream " << i << " after piece " << next[i] << " (round " << round << ")";
      ++next[i];
    }
  }
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(next[i], plans[i].pieces.size());
  return joined;
}

std::vector<Plan> float_plans(int n, int S, int F) {
  std::vector<Plan> plans(static_cast<std::size_t>(n));
  recur::Rng rng(11);
  for (int i = 0; i < n; ++i) {
    Plan& pl = plans[static_cast<std::size_t>(i)];
    pl.x.resize(static_cast<std::size_t>(S) * F);
    for (float& v : pl.x) v = static_cast<float>(rng.normal());
    pl.pieces = pieces_for(i, S);
    pl.join = i % 4;  // streams at different positions
  }
  return plans;
}

class FeedManyMatchesAlone : public ::testing::TestWithParam<std::string> {};

TEST_P(FeedManyMatchesAlone, EveryStreamReadsAsFedAloneBitForBit) {
  ScratchDir tmp;
  const int S = 10, F = 3;
  const recur::Predictor p(write_sequence_model(tmp / "m.safetensors", GetParam(), F));
  ASSERT_TRUE(p.streamable());
  const int joined = expect_batched_equals_alone(p, float_plans(11, S, F));
  EXPECT_GT(joined, 3);
  // The final readings also equal whole-sequence prediction of a batch.
  const std::vector<Plan> plans = float_plans(11, S, F);
  std::vector<float> all;
  for (const Plan& pl : plans) all.insert(all.end(), pl.x.begin(), pl.x.end());
  const recur::Predictions whole = p.predict_sequences(all.data(), 11, S);
  std::vector<recur::StreamState> states;
  std::vector<recur::StreamFeed> feeds;
  for (int i = 0; i < 11; ++i) states.push_back(p.start());
  for (int i = 0; i < 11; ++i) {
    recur::StreamFeed f;
    f.state = &states[static_cast<std::size_t>(i)];
    f.x = plans[static_cast<std::size_t>(i)].x.data();
    f.k = S;
    feeds.push_back(f);
  }
  p.feed_many(feeds);
  const int C = p.num_classes();
  for (int i = 0; i < 11; ++i)
    EXPECT_EQ(p.read(states[static_cast<std::size_t>(i)]).logits,
              std::vector<float>(whole.logits.begin() + i * C, whole.logits.begin() + (i + 1) * C))
        << "sample " << i;
}

INSTANTIATE_TEST_SUITE_P(
    CellsPoolingsAndStacks, FeedManyMatchesAlone,
    ::testing::Values("lstm 8, pool last, linear", "lstm 8, pool mean, linear",
                      "gru 8, pool max, linear", "gru 8, pool last, linear",
                      "rnn 8, pool mean, linear", "rnn_relu 8, pool max, linear",
                      "lstm 8, pool maxmean, linear", "lstm 8 layers=2, pool last, linear",
                      "linear 5 name=proj, gru 6 layers=2, pool mean, linear 4, relu, linear",
                      "linear 5, tanh, lstm 6, dropout 0.2, rnn 4, pool max, linear",
                      "lstm 40, pool last, linear"),
    [](const ::testing::TestParamInfo<std::string>& param) {
      std::string name;
      for (char c : param.param) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(FeedMany, ImageRowsAsPixelsAndFloatsTogether) {
  ScratchDir tmp;
  const int rows = 7, cols = 5;
  const recur::Predictor p(
      write_image_model(tmp / "m.safetensors", "lstm 8, pool last, linear", rows, cols));
  std::vector<Plan> plans(9);
  recur::Rng rng(3);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    std::vector<std::uint8_t> img(static_cast<std::size_t>(rows) * cols);
    for (auto& v : img) v = static_cast<std::uint8_t>(rng.below(256));
    // Odd streams send pixels, even ones the view's floats: both scale as the view does.
    if (i % 2)
      plans[i].pixels = img;
    else
      plans[i].x = p.image_steps(img.data());
    plans[i].pieces = pieces_for(static_cast<int>(i), rows);
    plans[i].join = static_cast<int>(i % 3);
  }
  EXPECT_GT(expect_batched_equals_alone(p, plans), 3);
}

TEST(FeedMany, TextTokensOfDifferentLengths) {
  ScratchDir tmp;
  const recur::Predictor p(
      write_text_model(tmp / "t.safetensors", "embedding 6 vocab=VOCAB, gru 8, pool max, linear"));
  std::vector<Plan> plans;
  for (std::size_t i = 0; i < sample_texts().size(); ++i) {
    Plan pl;
    pl.ids = p.text_tokens(sample_texts()[i]);
    pl.pieces = pieces_for(static_cast<int>(i), static_cast<int>(pl.ids.size()));
    pl.join = static_cast<int>(i % 2);
    plans.push_back(pl);
  }
  EXPECT_GT(expect_batched_equals_alone(p, plans), 2);
}

TEST(FeedMany, RefusalsNameTheFeedAndLeaveEveryStateUnchanged) {
  ScratchDir tmp;
  const int F = 3;
  const recur::Predictor p(
      write_sequence_model(tmp / "m.safetensors", "lstm 8, pool mean, linear", F));
  const recur::Predictor other(
      write_sequence_model(tmp / "o.safetensors", "lstm 8, pool mean, linear", F));
  const std::vector<float> x(4 * F, 0.5f);
  recur::StreamState a = p.start(), b = p.start(), c = other.start();
  p.feed(a, x.data(), 1);
  const std::vector<float> before = p.read(a).logits;
  const std::int32_t id = 0;
  const auto refused = [&](std::vector<recur::StreamFeed> feeds, const std::string& part) {
    try {
      p.feed_many(feeds);
      ADD_FAILURE() << "not refused: " << part;
    } catch (const recur::Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
    EXPECT_EQ(a.steps, 1);
    EXPECT_EQ(b.steps, 0);
    EXPECT_EQ(p.read(a).logits, before);
  };
  refused({{&a, x.data(), nullptr, nullptr, 2}, {&a, x.data(), nullptr, nullptr, 1}},
          "feeds[1]: the state is given twice");
  refused({{&a, x.data(), nullptr, nullptr, 2}, {&b, x.data(), nullptr, nullptr, 0}},
          "feeds[1]: needs at least one timestep");
  refused({{&a, x.data(), nullptr, nullptr, 2}, {&b, nullptr, nullptr, &id, 1}},
          "feeds[1]: this model reads sequence, not token ids");
  refused({{&b, x.data(), nullptr, nullptr, 2}, {&c, x.data(), nullptr, nullptr, 1}},
          "feeds[1]: the state was not made by this predictor");
  refused({{&a, nullptr, nullptr, nullptr, 2}}, "feeds[0]: give exactly one of x, pixels, ids");
  p.feed_many({});  // nothing to do
  EXPECT_EQ(a.steps, 1);
}

}  // namespace
}  // namespace recur_infer_test
