// recur train --precision bf16 end to end: a short run learns about as the fp32 shared run does,
// its checkpoint says bf16 (summary.json, config.toml, recur inspect) and evaluates in fp32, a
// killed run resumes in bf16 to the same weights; a CPU without bf16 (RECUR_BF16_KERNEL=none
// pretends one) refuses it with exit 2 naming --precision and leaves no run folder. On a CPU
// without AVX512_BF16 the runs use the portable emulation (RECUR_BF16_KERNEL=portable), so the
// test runs everywhere.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_helpers.hpp"
#include "kernels/bf16_gemm.hpp"
#include "recur/safetensors.hpp"

namespace recur_cli_test {
namespace {

// Sets RECUR_BF16_KERNEL for the commands run in one scope (restored after).
class Bf16KernelEnv {
 public:
  explicit Bf16KernelEnv(const char* value) {
    if (const char* old = std::getenv("RECUR_BF16_KERNEL")) {
      had_ = true;
      old_ = old;
    }
    if (value)
      ::setenv("RECUR_BF16_KERNEL", value, 1);
    else
      ::unsetenv("RECUR_BF16_KERNEL");
  }
  ~Bf16KernelEnv() {
    if (had_)
      ::setenv("RECUR_BF16_KERNEL", old_.c_str(), 1);
    else
      ::unsetenv("RECUR_BF16_KERNEL");
  }

 private:
  bool had_ = false;
  std::string old_;
};

// This CPU's kernel, or the emulation where it has none.
const char* runnable_kernel() {
  return recur::kernels::cpu_has_avx512_bf16() ? nullptr : "portable";
}

std::string train_bf16(const std::string& out, const std::string& extra = "") {
  return "train --data " + quote(kMnistDir) + " " + kSharedTrainArgs + " --precision bf16 --out " +
         quote(out) + (extra.empty() ? "" : " " + extra);
}

double eval_accuracy(const std::string& model, const ScratchDir& tmp, const std::string& name) {
  const CliResult r = run_cli("eval " + quote(model) + " --data " + quote(kMnistDir) +
                              " --gallery 0 --json --out " + quote(tmp / name));
  EXPECT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.value("precision", ""), "fp32");  // a bf16-trained model is an fp32 model
  return j.at("accuracy").get<double>();
}

std::vector<double> train_losses(const std::string& run) {
  std::vector<double> losses;
  std::istringstream lines(slurp(fs::path(run) / "metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == "train") losses.push_back(j.at("loss").get<double>());
  }
  return losses;
}

std::string weights_of(const std::string& path) {
  const recur::SafetensorsFile f = recur::read_safetensors(path);
  std::string bytes;
  for (const auto& [name, t] : f.tensors)
    bytes.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return bytes;
}

TEST(Bf16Cli, TrainsLearnsAndEvaluatesInFp32) {
  ScratchDir tmp;
  Bf16KernelEnv env(runnable_kernel());
  const std::string run = tmp / "run";
  const CliResult t = run_cli(train_bf16(run));
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_TRUE(contains(t.out, "bf16 products")) << t.out;
  const std::vector<double> losses = train_losses(run);
  ASSERT_GE(losses.size(), 3u);
  // The shared run's 40 steps take fp32 from 2.29 to 2.08.
  EXPECT_LT(losses.back(), losses.front() - 0.1) << "the loss did not fall";
  const auto summary = nlohmann::json::parse(slurp(fs::path(run) / "summary.json"));
  EXPECT_EQ(summary.at("precision"), "bf16");
  EXPECT_TRUE(contains(slurp(fs::path(run) / "config.toml"), "precision=\"bf16\""));

  // Within a few points of the same run in fp32 (the shared run), evaluated in fp32.
  const double bf16 = eval_accuracy(run + "/best.safetensors", tmp, "eval-bf16");
  const double fp32 = eval_accuracy(shared_run().model(), tmp, "eval-fp32");
  EXPECT_GT(bf16, 0.2);  // chance: 0.1
  EXPECT_NEAR(bf16, fp32, 0.03);

  const CliResult text = run_cli("inspect " + quote(run + "/best.safetensors"));
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "trained in: bf16")) << text.out;
  const CliResult json = run_cli("inspect --json " + quote(run + "/best.safetensors"));
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out).at("train_precision"), "bf16");
  const CliResult fp32_inspect = run_cli("inspect --json " + quote(shared_run().model()));
  ASSERT_EQ(fp32_inspect.code, 0) << fp32_inspect.err;
  EXPECT_EQ(nlohmann::json::parse(fp32_inspect.out).at("train_precision"), "fp32");

  // Killed after step 25 (checkpoints every 10 steps) and resumed without --precision: the
  // resume file's run goes on in bf16 to the uninterrupted run's weights, bit for bit.
  const std::string killed = tmp / "killed";
  ::setenv("RECUR_KILL_AFTER_STEP", "25", 1);
  const CliResult k = run_cli(train_bf16(killed, "--checkpoint-every 10"));
  ::unsetenv("RECUR_KILL_AFTER_STEP");
  ASSERT_NE(k.code, 0) << "the run was not killed";
  const CliResult resumed = run_cli("train --resume " + quote(killed));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(contains(resumed.out, "bf16 products")) << resumed.out;
  EXPECT_EQ(weights_of(killed + "/last.safetensors"), weights_of(run + "/last.safetensors"));
}

TEST(Bf16Cli, ACpuWithoutBf16RefusesNamingPrecision) {
  ScratchDir tmp;
  Bf16KernelEnv env("none");
  const std::string run = tmp / "run";
  const CliResult r = run_cli(train_bf16(run));
  EXPECT_TRUE(fails_with(r, "--precision")) << r.err;
  EXPECT_TRUE(contains(r.err, "AVX512_BF16") || contains(r.err, "RECUR_BF16_KERNEL")) << r.err;
  EXPECT_FALSE(fs::exists(run)) << "a refused run left a folder";
  EXPECT_TRUE(fails_with(run_cli("bench --mode train --steps 1 --precision bf16"), "--precision"));
  // fp32 runs as ever.
  const CliResult fp32 = run_cli("train --data " + quote(kMnistDir) +
                                 " --steps 2 --val 100 --train-limit 500 --hidden 8 --batch 32 "
                                 "--eval-batch 500 --out " +
                                 quote(tmp / "fp32"));
  EXPECT_EQ(fp32.code, 0) << fp32.err;
}

TEST(Bf16Cli, AnUnknownKernelNameIsRefused) {
  ScratchDir tmp;
  Bf16KernelEnv env("amx16");
  EXPECT_TRUE(fails_with(run_cli(train_bf16(tmp / "run")), "RECUR_BF16_KERNEL"));
}

}  // namespace
}  // namespace recur_cli_test
