// recur train --model: a layer list trains on MNIST as whole images (a small CNN) or as
// sequences through a view (a GRU over columns); eval, predict and inspect read the checkpoint;
// a list that does not fit the data, a short-form flag beside it or bad text is refused with
// exit code 2, the flag and the reason, and no run folder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

const char* const kSmall = "--train-limit 3000 --val 500 --batch 64 --display-step 20 --seed 2";

TEST(LayersCli, ACnnTrainsOnImagesAndEvalPredictInspectReadIt) {
  ScratchDir tmp;
  const std::string run = tmp / "cnn";
  const CliResult t =
      run_cli("train --data " + quote(kMnistDir) +
              " --model 'conv2d 4 kernel=5 padding=2, relu, maxpool2d 2, flatten, linear 32, relu, "
              "linear' --steps 80 --ema 0 --augment-shift 0 --augment-rotate 0 " +  // 80 steps
              kSmall +
              " --out " + quote(run));
  ASSERT_EQ(t.code, 0) << t.err << t.out;
  EXPECT_TRUE(contains(t.out, "on 28x28 images")) << t.out;
  EXPECT_TRUE(contains(slurp(run + "/config.toml"), "model=\"conv2d 4 kernel=5 padding=2"));

  const CliResult e = run_cli("eval " + quote(run + "/best.safetensors") + " --data " +
                              quote(kMnistDir) + " --json --gallery 20");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j.at("count").get<int>(), 10000);
  EXPECT_EQ(j.at("view").get<std::string>(), "image");
  EXPECT_GT(j.at("accuracy").get<double>(), 0.8);  // 80 steps of a small CNN
  EXPECT_TRUE(fs::exists(run + "/misclassified.png"));
  EXPECT_TRUE(fs::exists(run + "/confusion.png"));

  const CliResult p = run_cli("predict " + quote(run + "/best.safetensors") + " " +
                              quote(kMnistDir) + "/t10k-images-idx3-ubyte --index 0,1,2 --json");
  ASSERT_EQ(p.code, 0) << p.err;
  const auto pj = nlohmann::json::parse(p.out);
  ASSERT_EQ(pj.size(), 3u);
  int right = 0;
  for (const auto& s : pj) {
    right += s.at("prediction").get<int>() == s.at("label").get<int>();
    EXPECT_EQ(s.at("logits").size(), 10u);
  }
  EXPECT_GE(right, 2) << p.out;
  const CliResult png =
      run_cli("predict " + quote(run + "/best.safetensors") + " " +
              quote(std::string(RECUR_SOURCE_DIR) + "/examples/digits/seven.png"));
  ASSERT_EQ(png.code, 0) << png.err;
  EXPECT_TRUE(contains(png.out, "seven.png: ")) << png.out;

  const CliResult i = run_cli("inspect " + quote(run + "/best.safetensors"));
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_TRUE(contains(i.out, "conv2d")) << i.out;
  EXPECT_TRUE(contains(i.out, "0.weight")) << i.out;
}

TEST(LayersCli, ARecurrentListReadsImagesThroughTheView) {
  ScratchDir tmp;
  const std::string run = tmp / "gru";
  const CliResult t =
      run_cli("train --data " + quote(kMnistDir) +
              " --model 'gru 24 bidirectional, pool mean, linear' --view cols --steps 60 " +
              kSmall + " --out " + quote(run));
  ASSERT_EQ(t.code, 0) << t.err << t.out;
  EXPECT_TRUE(contains(t.out, "cols view (28 steps x 28 features)")) << t.out;
  const CliResult e = run_cli("eval " + quote(run + "/best.safetensors") + " --data " +
                              quote(kMnistDir) + " --json --gallery 0");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto j = nlohmann::json::parse(e.out);
  EXPECT_EQ(j.at("view").get<std::string>(), "cols");
  EXPECT_GT(j.at("accuracy").get<double>(), 0.5);
  // The summary's test accuracy is this same evaluation of the last weights or of the best.
  const auto summary = nlohmann::json::parse(slurp(run + "/summary.json"));
  EXPECT_GT(summary.at("test_accuracy").get<double>(), 0.5);
}

// maxpool1d halves the 28 steps of the rows view before the GRU; the checkpoint records it and
// eval and inspect read it back.
TEST(LayersCli, AListThatPoolsOverTimeTrainsAndReadsBack) {
  ScratchDir tmp;
  const std::string run = tmp / "pooled";
  const CliResult t = run_cli("train --data " + quote(kMnistDir) +
                              " --model 'maxpool1d 2, gru 24, pool last, linear' --steps 60 " +
                              kSmall + " --out " + quote(run));
  ASSERT_EQ(t.code, 0) << t.err << t.out;
  EXPECT_TRUE(contains(t.out, "maxpool1d 2, gru 24, pool last, linear")) << t.out;
  EXPECT_TRUE(contains(slurp(run + "/config.toml"), "model=\"maxpool1d 2, gru 24")) << run;
  const CliResult e = run_cli("eval " + quote(run + "/best.safetensors") + " --data " +
                              quote(kMnistDir) + " --json --gallery 0");
  ASSERT_EQ(e.code, 0) << e.err;
  // 60 steps: well above chance (0.1), not yet good; this checks the plumbing.
  EXPECT_GT(nlohmann::json::parse(e.out).at("accuracy").get<double>(), 0.2);
  const CliResult i = run_cli("inspect " + quote(run + "/best.safetensors"));
  ASSERT_EQ(i.code, 0) << i.err;
  EXPECT_TRUE(contains(i.out, "maxpool1d")) << i.out;
}

TEST(LayersCli, BadListsAreRefusedBeforeAnyRunFolder) {
  ScratchDir tmp;
  const std::string run = tmp / "never";
  const std::string data = " --data " + quote(kMnistDir) + " --steps 2 --out " + quote(run);
  EXPECT_TRUE(fails_with(run_cli("train --model 'lstm 16, linear'" + data), "--model"));
  EXPECT_TRUE(fails_with(run_cli("train --model 'lstm 16, linear'" + data), "does not fit"));
  EXPECT_TRUE(fails_with(run_cli("train --model 'lstm 16, dense 3'" + data),
                         "layer 1 'dense 3': unknown layer type"));
  EXPECT_TRUE(fails_with(run_cli("train --model 'lstm 16, pool last, linear' --hidden 64" + data),
                         "the layer list replaces --hidden"));
  EXPECT_TRUE(
      fails_with(run_cli("train --model 'lstm 16, pool last, linear' --bidirectional" + data),
                 "replaces --bidirectional"));
  EXPECT_TRUE(fails_with(run_cli("train --model 'flatten, linear 8, relu, linear' --data " +
                                 quote(tmp / "nowhere") + " --out " + quote(run)),
                         "nowhere"));
  EXPECT_FALSE(fs::exists(run));
}

}  // namespace
}  // namespace recur_cli_test
