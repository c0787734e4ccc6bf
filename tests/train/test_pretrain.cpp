// The language model of recur pretrain learns, and --init-from copies exactly the tensors whose
// names and shapes match (recur/pretrain.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/optim.hpp"
#include "recur/pretrain.hpp"
#include "recur/safetensors.hpp"

namespace {

using recur::LanguageModel;
using recur::LmDirection;
using Piece = std::vector<std::int32_t>;

// Pieces of a cyclic "sentence" over words 2..9: each word fixes the next and the previous one.
std::vector<Piece> cyclic_pieces(int count, int length) {
  std::vector<Piece> out;
  for (int i = 0; i < count; ++i) {
    Piece p;
    for (int t = 0; t < length - (i % 3); ++t) p.push_back(2 + (i + t) % 8);
    out.push_back(p);
  }
  return out;
}

std::vector<const Piece*> pointers(const std::vector<Piece>& pieces) {
  std::vector<const Piece*> out;
  for (const auto& p : pieces) out.push_back(&p);
  return out;
}

TEST(LanguageModel, SampledSoftmaxTrainingLowersTheHeldOutLossInBothDirections) {
  const int V = 10;
  LanguageModel lm(V, 8, 16, recur::CellKind::lstm, LmDirection::both);
  lm.init(1);
  const auto pieces = cyclic_pieces(12, 9);
  const auto batch = pointers(pieces);
  double before[2];
  std::int64_t count[2];
  lm.prepare();
  lm.full_loss(batch, before, count);
  ASSERT_EQ(count[0], count[1]);
  ASSERT_GT(count[0], 0);
  recur::OptimizerConfig oc;
  oc.kind = recur::OptimizerKind::adam;
  oc.lr = 0.02f;
  recur::Optimizer opt(oc, lm.params().size());
  std::vector<float> grads(lm.params().size());
  // Five negatives a step, drawn uniformly from the words 1..9: logq = log(5 / 9).
  std::vector<std::int32_t> cand(5);
  std::vector<float> logq(V, std::log(5.f / 9.f));
  recur::Rng rng(3);
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    std::fill(grads.begin(), grads.end(), 0.f);
    for (auto& c : cand) c = 1 + static_cast<std::int32_t>(rng.below(V - 1));
    lm.prepare();
    const double loss =
        lm.sampled_loss(batch, cand, logq, 1.f / static_cast<float>(2 * count[0]), grads.data());
    if (step == 0) first = loss;
    last = loss;
    opt.step(lm.params().data(), grads.data(), oc.lr);
  }
  double after[2];
  lm.prepare();
  lm.full_loss(batch, after, count);
  EXPECT_LT(last, 0.2 * first);
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(before[d] / count[d], std::log(static_cast<double>(V)), 0.5) << d;
    EXPECT_LT(after[d] / count[d], 0.5) << d;  // perplexity under 1.65 (10 words)
  }
}

// The tensors of a language model as a checkpoint holds them, with `vocab` in its metadata.
void save_lm(const std::string& path, LanguageModel& lm, const std::string& vocab) {
  std::vector<recur::TensorRef> tensors;
  for (const auto& [name, info] : lm.stored_tensors())
    tensors.push_back({name, recur::DType::F32, info->shape, lm.params().data() + info->offset});
  recur::write_safetensors(path, tensors, {{"recur.vocab", vocab}});
}

recur::ModelSpec classifier(int vocab) {
  recur::ModelSpec spec;
  spec.input.ids = true;
  spec.num_classes = 2;
  spec.layers = recur::parse_layer_list(
      "embedding 8 vocab=" + std::to_string(vocab) +
          " name=embed, lstm 16 bidirectional name=rnn, pool max, linear name=head",
      "test");
  return spec;
}

// recur pretrain clears and sums only the parts of each thread's gradient that gradient_runs
// names for the step's words: sampled_loss must write nowhere else, in every direction and cell.
TEST(LanguageModel, GradientsStayInsideTheRunsOfTheStepsWords) {
  const int V = 40;
  for (const auto cell : {recur::CellKind::lstm, recur::CellKind::gru}) {
    for (const auto dir : {LmDirection::both, LmDirection::forward, LmDirection::backward}) {
      LanguageModel lm(V, 6, 8, cell, dir);
      lm.init(2);
      lm.prepare();
      // Words 2..9 in the pieces, candidates among 20..25 (and one repeat of a piece's word).
      const auto pieces = cyclic_pieces(5, 7);
      const std::vector<std::int32_t> cand = {20, 25, 3, 22, 20};
      std::vector<float> logq(V, std::log(5.f / 30.f));
      std::vector<float> grads(lm.params().size(), 0.f);
      lm.sampled_loss(pointers(pieces), cand, logq, 0.1f, grads.data());
      std::vector<std::int32_t> words = cand;
      for (const auto& p : pieces) words.insert(words.end(), p.begin(), p.end());
      std::sort(words.begin(), words.end());
      words.erase(std::unique(words.begin(), words.end()), words.end());
      std::vector<bool> inside(grads.size(), false);
      for (const auto& [begin, end] : lm.gradient_runs(words)) {
        ASSERT_LE(begin, end);
        ASSERT_LE(end, grads.size());
        for (std::size_t i = begin; i < end; ++i) {
          ASSERT_FALSE(inside[i]) << "runs overlap at " << i;
          inside[i] = true;
        }
      }
      std::size_t nonzero = 0, inside_count = 0;
      for (std::size_t i = 0; i < grads.size(); ++i) {
        if (grads[i] != 0.f) ++nonzero;
        if (inside[i]) ++inside_count;
        ASSERT_TRUE(inside[i] || grads[i] == 0.f) << "element " << i << " outside the runs";
      }
      EXPECT_GT(nonzero, 0u);
      EXPECT_LT(inside_count, grads.size());  // the untouched words' rows are outside
      // No words: the recurrent layer's part only.
      std::size_t dense = 0;
      for (const auto& [begin, end] : lm.gradient_runs({})) dense += end - begin;
      EXPECT_GT(dense, 0u);
      EXPECT_LT(dense, inside_count);
    }
  }
}

// A workspace kept from call to call (recur pretrain keeps one a thread) gives the same bits as
// a fresh one, whatever the batches before it were (longer, shorter, more pieces).
TEST(LanguageModel, AKeptWorkspaceGivesTheSameBitsAsAFreshOne) {
  const int V = 12;
  LanguageModel lm(V, 6, 8, recur::CellKind::lstm, LmDirection::both);
  lm.init(4);
  lm.prepare();
  const std::vector<std::int32_t> cand = {1, 5, 7};
  std::vector<float> logq(V, std::log(3.f / 11.f));
  auto kept = lm.make_workspace();
  for (const auto& [count, length] :
       std::vector<std::pair<int, int>>{{6, 9}, {2, 4}, {9, 12}, {3, 5}}) {
    const auto pieces = cyclic_pieces(count, length);
    std::vector<float> fresh(lm.params().size(), 0.f), reused(lm.params().size(), 0.f);
    const double a = lm.sampled_loss(pointers(pieces), cand, logq, 0.05f, fresh.data());
    const double b =
        lm.sampled_loss(pointers(pieces), cand, logq, 0.05f, reused.data(), kept.get());
    EXPECT_EQ(a, b) << count << " pieces of " << length;
    ASSERT_EQ(0, std::memcmp(fresh.data(), reused.data(), sizeof(float) * fresh.size()))
        << count << " pieces of " << length;
  }
}

TEST(InitFrom, CopiesExactlyTheTensorsWhoseNamesAndShapesMatch) {
  const std::string dir = ::testing::TempDir() + "/init_from";
  std::filesystem::create_directories(dir);
  LanguageModel lm(12, 8, 16, recur::CellKind::lstm, LmDirection::both);
  lm.init(7);
  save_lm(dir + "/lm.safetensors", lm, "[\"<pad>\",\"<unk>\"]");
  recur::Model<float> model(classifier(12));
  model.init(1);
  const std::vector<float> fresh = model.params();
  std::ostringstream log;
  recur::init_from_checkpoint(dir + "/lm.safetensors", model.layout(), model.params().data(),
                              "[\"<pad>\",\"<unk>\"]", log);
  int copied = 0;
  for (const recur::ParamInfo& p : model.layout().entries()) {
    const recur::ParamInfo* src = lm.layout().find(p.name);
    for (std::size_t i = 0; i < p.size; ++i) {
      const float now = model.params()[p.offset + i];
      if (src)
        ASSERT_EQ(now, lm.params()[src->offset + i]) << p.name << " " << i;
      else
        ASSERT_EQ(now, fresh[p.offset + i]) << p.name << " " << i;
    }
    copied += src ? 1 : 0;
    EXPECT_NE(log.str().find(p.name), std::string::npos) << p.name << " unreported";
  }
  EXPECT_EQ(copied, 9);  // embed.weight and 4 tensors per direction; head.* left
  EXPECT_NE(log.str().find("head.weight (not in the checkpoint)"), std::string::npos) << log.str();
}

TEST(InitFrom, RefusesAnotherVocabularyOrNoSharedTensor) {
  const std::string dir = ::testing::TempDir() + "/init_from_refused";
  std::filesystem::create_directories(dir);
  LanguageModel lm(12, 8, 16, recur::CellKind::lstm, LmDirection::both);
  lm.init(7);
  save_lm(dir + "/lm.safetensors", lm, "[\"<pad>\",\"<unk>\",\"a\"]");
  recur::Model<float> model(classifier(12));
  std::ostringstream log;
  try {
    recur::init_from_checkpoint(dir + "/lm.safetensors", model.layout(), model.params().data(),
                                "[\"<pad>\",\"<unk>\",\"b\"]", log);
    FAIL() << "another vocabulary was accepted";
  } catch (const recur::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--init-from"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
  // Another embedding width: no tensor keeps its shape (the rnn's input width differs too).
  LanguageModel other(12, 6, 10, recur::CellKind::lstm, LmDirection::both);
  other.init(7);
  save_lm(dir + "/other.safetensors", other, "[\"<pad>\",\"<unk>\",\"b\"]");
  try {
    recur::init_from_checkpoint(dir + "/other.safetensors", model.layout(), model.params().data(),
                                "[\"<pad>\",\"<unk>\",\"b\"]", log);
    FAIL() << "a checkpoint sharing no tensor was accepted";
  } catch (const recur::Error& e) {
    EXPECT_NE(std::string(e.what()).find("shares no tensor"), std::string::npos) << e.what();
  }
}

TEST(LanguageModel, BackwardOnlyStoresTheReverseDirectionsNames) {
  LanguageModel lm(12, 8, 16, recur::CellKind::gru, LmDirection::backward);
  std::vector<std::string> names;
  for (const auto& [name, info] : lm.stored_tensors()) names.push_back(name);
  EXPECT_NE(std::find(names.begin(), names.end(), "rnn.weight_hh_l0_reverse"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "rnn.weight_hh_l0"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "lm.backward.weight"), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "lm.forward.weight"), names.end());
}

}  // namespace
