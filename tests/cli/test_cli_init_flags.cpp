// recur train's initialisation flags reach a layer list exactly as they reach the short form:
// a list spelling out the short form's chain (same layer names, so the same tensor names and
// random streams) starts from bit-identical tensors under every flag, and every flag changes
// them. Runs take one step at learning rate 0 on a tiny IDX set, so last.safetensors holds the
// initial weights; and a named list trains on as the short form does, since images keep MNIST's
// hold-out and batches whatever describes the model.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

// 96 random 8x8 images with labels 0..9, in MNIST's file names.
void write_tiny_training_set(const fs::path& dir) {
  fs::create_directories(dir);
  constexpr int kCount = 96, kSide = 8;
  auto be32 = [](std::string& s, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  };
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  be32(images, kCount);
  be32(images, kSide);
  be32(images, kSide);
  std::uint32_t state = 12345;
  for (int i = 0; i < kCount * kSide * kSide; ++i) {
    state = state * 1664525u + 1013904223u;
    images += static_cast<char>(state >> 24);
  }
  be32(labels, kCount);
  for (int i = 0; i < kCount; ++i) labels += static_cast<char>(i % 10);
  std::ofstream(dir / "train-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir / "train-labels-idx1-ubyte", std::ios::binary) << labels;
}

using Tensors = std::map<std::string, std::vector<std::uint8_t>>;

class InitFlagsCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new ScratchDir();
    write_tiny_training_set(scratch_->path() / "tiny");
  }
  static void TearDownTestSuite() {
    delete scratch_;
    scratch_ = nullptr;
  }

  // The tensors after one step at rate 0 (the initial weights) of `model_args` plus `flags`.
  static Tensors initial(const std::string& model_args, const std::string& flags,
                         const std::string& steps = "--steps 1 --lr 0 --schedule constant") {
    static int runs = 0;
    const std::string out = *scratch_ / ("run" + std::to_string(++runs));
    const CliResult r = run_cli("train --data " + quote(*scratch_ / "tiny") + " " + model_args +
                                " " + flags + " " + steps +
                                " --val 16 --batch 16 --eval-batch 16 --seed 7 --threads 1 "
                                "--out " +
                                quote(out));
    EXPECT_EQ(r.code, 0) << r.err << r.out;
    Tensors t;
    if (r.code != 0) return t;
    for (const auto& [name, tensor] : recur::read_safetensors(out + "/last.safetensors").tensors)
      t[name] = tensor.bytes;
    return t;
  }
  static Tensors short_form(const std::string& flags, const std::string& cell = "lstm") {
    return initial("--hidden 8 --cell " + cell, flags);
  }
  static Tensors listed(const std::string& flags, const std::string& cell = "lstm") {
    return initial("--model " + quote(cell + " 8 name=rnn, pool last name=pool, linear name=head"),
                   flags);
  }

  static ScratchDir* scratch_;
};

ScratchDir* InitFlagsCli::scratch_ = nullptr;

TEST_F(InitFlagsCli, AListSpellingOutTheShortFormStartsFromItsTensors) {
  const Tensors s = short_form("");
  ASSERT_FALSE(s.empty());
  EXPECT_TRUE(s.count("rnn.weight_hh_l0") && s.count("head.weight"));
  EXPECT_EQ(listed(""), s);  // orthogonal recurrent weights and forget bias 1 included
}

// The tensors of `t` under the short form's names: a list's layer at index i named as the
// short form names that layer.
Tensors renamed(const Tensors& t, const std::map<std::string, std::string>& names) {
  Tensors out;
  for (const auto& [name, bytes] : t) {
    const std::string prefix = name.substr(0, name.find('.'));
    const auto it = names.find(prefix);
    out[(it == names.end() ? prefix : it->second) + name.substr(name.find('.'))] = bytes;
  }
  return out;
}

TEST_F(InitFlagsCli, AListTrainsAsTheShortForm) {
  // Six steps at the default rate with dropout between two layers: the same hold-out, batches,
  // dropout streams and weights, named or not (unnamed: tensors named by index, draws keyed by
  // the layers' roles).
  const std::string train = "--steps 6 --train-limit 60";
  const Tensors s = initial("--hidden 8 --layers 2 --dropout 0.3", "", train);
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(initial("--model " + quote("lstm 8 layers=2 dropout=0.3 name=rnn, pool last name=pool, "
                                       "linear name=head"),
                    "", train),
            s);
  EXPECT_NE(initial("--hidden 8 --layers 2 --dropout 0.3", ""), s);  // the steps moved them
  const Tensors unnamed =
      initial("--model " + quote("lstm 8 layers=2 dropout=0.3, pool last, linear"), "", train);
  EXPECT_TRUE(unnamed.count("0.weight_hh_l1") && unnamed.count("2.bias"));
  EXPECT_EQ(renamed(unnamed, {{"0", "rnn"}, {"2", "head"}}), s);
  // With a projection: a linear layer before the recurrent one draws as the short form's proj.
  const Tensors p = initial("--hidden 8 --projection 6 --cell gru", "", train);
  const Tensors listed_p =
      initial("--model " + quote("linear 6, gru 8, pool last, linear"), "", train);
  EXPECT_EQ(renamed(listed_p, {{"0", "proj"}, {"1", "rnn"}, {"3", "head"}}), p);
}

TEST_F(InitFlagsCli, AutoRecurrentInitFollowsEachListsCell) {
  // auto is orthogonal for every cell (LSTM: the test above), in the short form and a list.
  for (const std::string cell : {"rnn", "rnn_relu", "gru"}) {
    const Tensors s = short_form("", cell);
    ASSERT_FALSE(s.empty()) << cell;
    EXPECT_EQ(listed("", cell), s) << cell;
    EXPECT_EQ(short_form("--init-recurrent orthogonal", cell), s) << cell;
    EXPECT_NE(short_form("--init-recurrent pytorch", cell), s) << cell;
  }
}

struct FlagCase {
  const char* flag;  // the flag under test and its value
  const char* base;  // flags it needs to matter (e.g. a normal init for a sigma)
};

// Every initialisation flag that applies to a layer list.
const FlagCase kFlagCases[] = {
    {"--init glorot", ""},
    {"--init-sigma 0.3", "--init normal"},
    {"--init-recurrent glorot", ""},
    {"--init-recurrent pytorch", ""},
    {"--bias-init normal", ""},
    {"--bias-value 0.5", "--bias-init constant"},
    {"--forget-bias 3", ""},
    {"--no-bias", ""},
    {"--head-init glorot", ""},
    {"--head-sigma 0.5", "--head-init normal"},
    {"--head-bias-init constant", ""},
    {"--head-bias-value 0.25", "--head-bias-init constant"},
};

TEST_F(InitFlagsCli, EveryFlagChangesAListAsItChangesTheShortForm) {
  for (const FlagCase& c : kFlagCases) {
    const std::string with = std::string(c.base) + " " + c.flag;
    const Tensors before = short_form(c.base);
    const Tensors after = short_form(with);
    ASSERT_FALSE(after.empty()) << c.flag;
    EXPECT_NE(after, before) << c.flag << " changes nothing in the short form";
    EXPECT_EQ(listed(with), after) << c.flag << " reaches the list otherwise";
  }
}

TEST_F(InitFlagsCli, TheCheckpointOfAListRecordsTheInitItWasGiven) {
  const std::string out = *scratch_ / "recorded";
  const CliResult r =
      run_cli("train --data " + quote(*scratch_ / "tiny") +
              " --model 'rnn 8, pool max, linear' --forget-bias 2 --init glorot --steps 1 --val 16 "
              "--batch 16 --eval-batch 16 --out " +
              quote(out));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto meta = recur::read_safetensors(out + "/last.safetensors").metadata;
  const auto spec = nlohmann::json::parse(meta.at("recur.spec"));
  const auto& rnn = spec.at("layers").at(0);
  EXPECT_EQ(rnn.at("init").at("kind"), "glorot");
  EXPECT_EQ(rnn.at("init_recurrent").at("kind"), "orthogonal");  // auto
  EXPECT_EQ(rnn.at("forget_bias").get<double>(), 2.0);
  EXPECT_TRUE(contains(slurp(out + "/config.toml"), "forget-bias=2"));
}

TEST_F(InitFlagsCli, ProjectionFlagsBesideAListAreRefused) {
  const std::string out = *scratch_ / "never";
  for (const std::string flag :
       {"--projection-init glorot", "--projection-bias-init normal", "--projection-bias-value 2"}) {
    const CliResult r =
        run_cli("train --data " + quote(*scratch_ / "tiny") +
                " --model 'lstm 8, pool last, linear' --steps 1 --out " + quote(out) + " " + flag);
    EXPECT_TRUE(fails_with(r, flag.substr(0, flag.find(' ')) + " applies to the short form"));
  }
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace recur_cli_test
