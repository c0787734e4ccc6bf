// --precision int8 end to end on the shared short run: recur eval near its fp32 accuracy,
// recur predict answering the same digits, recur inspect's int8 size, and one-line errors
// naming --precision for a bad value or a bench mode without int8.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

const std::string kImages = kMnistDir + "/t10k-images-idx3-ubyte";

nlohmann::json eval_json(const std::string& precision, const ScratchDir& tmp) {
  const CliResult r =
      run_cli("eval " + quote(shared_run().model()) + " --data " + quote(kMnistDir) +
              " --gallery 0 --json --precision " + precision + " --out " + quote(tmp / precision));
  EXPECT_EQ(r.code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(Int8Cli, EvalStaysNearFp32) {
  ScratchDir tmp;
  const nlohmann::json fp32 = eval_json("fp32", tmp), int8 = eval_json("int8", tmp);
  EXPECT_EQ(fp32.at("precision"), "fp32");
  EXPECT_EQ(int8.at("precision"), "int8");
  EXPECT_NEAR(int8.at("accuracy").get<double>(), fp32.at("accuracy").get<double>(), 0.005);
  EXPECT_NE(int8.at("loss").get<double>(), fp32.at("loss").get<double>());  // int8 ran
  const CliResult text =
      run_cli("eval " + quote(shared_run().model()) + " --data " + quote(kMnistDir) +
              " --gallery 0 --precision int8 --out " + quote(tmp / "text"));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "precision: int8 (")) << text.out;
}

TEST(Int8Cli, PredictAnswersTheSameDigits) {
  const std::string args = "predict " + quote(shared_run().model()) + " " + quote(kImages) +
                           " --index 0,1,2,3,4,5,6,7 --json --top 1";
  const CliResult fp32 = run_cli(args), int8 = run_cli(args + " --precision int8");
  ASSERT_EQ(fp32.code, 0) << fp32.err;
  ASSERT_EQ(int8.code, 0) << int8.err;
  const auto a = nlohmann::json::parse(fp32.out), b = nlohmann::json::parse(int8.out);
  ASSERT_EQ(a.size(), b.size());
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    same += a[i].at("top")[0].at("class") == b[i].at("top")[0].at("class");
  EXPECT_GE(same, static_cast<int>(a.size()) - 1);
}

TEST(Int8Cli, InspectShowsTheInt8Size) {
  const CliResult text = run_cli("inspect " + quote(shared_run().model()));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "int8 size: ")) << text.out;
  const CliResult json = run_cli("inspect --json " + quote(shared_run().model()));
  ASSERT_EQ(json.code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  const auto params = j.at("parameters").get<std::uint64_t>();
  EXPECT_EQ(j.at("fp32_bytes").get<std::uint64_t>(), 4 * params);
  EXPECT_LT(j.at("int8_bytes").get<std::uint64_t>(), 2 * params);
  EXPECT_GT(j.at("int8_bytes").get<std::uint64_t>(), params);
}

TEST(Int8Cli, ABadPrecisionNamesTheFlag) {
  const std::string model = quote(shared_run().model());
  EXPECT_TRUE(fails_with(run_cli("eval " + model + " --precision int4"), "--precision"));
  EXPECT_TRUE(
      fails_with(run_cli("predict " + model + " " + quote(kImages) + " --index 0 --precision fp16"),
                 "--precision"));
  EXPECT_TRUE(fails_with(run_cli("bench --mode infer --precision bf16"), "--precision"));
  EXPECT_TRUE(fails_with(run_cli("bench --mode train --precision int8"), "--precision"));
}

// --against-fp32 times the int8 model and the same weights in fp32 call by call and reports
// both speeds and their ratio; it applies to int8 inference only.
TEST(Int8Cli, BenchAgainstFp32ReportsBothAndTheirRatio) {
  const CliResult r = run_cli(
      "bench --mode infer --precision int8 --against-fp32 --json --steps 4 "
      "--warmup 1 --infer-batch 16 --threads 1 --data " +
      quote(kMnistDir));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("paired_calls").get<int>(), 4);
  EXPECT_GT(j.at("paired_int8_samples_per_s").get<double>(), 0);
  EXPECT_GT(j.at("paired_fp32_samples_per_s").get<double>(), 0);
  const double ratio = j.at("int8_over_fp32").get<double>();
  EXPECT_GT(ratio, 0);
  EXPECT_LE(j.at("int8_over_fp32_p10").get<double>(), ratio);
  EXPECT_GE(j.at("int8_over_fp32_p90").get<double>(), ratio);
  EXPECT_TRUE(fails_with(run_cli("bench --mode infer --against-fp32"), "--against-fp32"));
  EXPECT_TRUE(fails_with(run_cli("bench --mode latency --precision int8 --against-fp32"),
                         "--against-fp32"));
}

}  // namespace
}  // namespace recur_cli_test
