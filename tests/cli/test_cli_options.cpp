// Every `recur train` option given a bad value: exit 2, one error line naming that option, and no
// run folder. The option list comes from `recur train --help`, so a new option without a case
// here fails the test. Also: thread and batch limits answer at once, and no process recur starts
// runs more than 4 threads per CPU.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "cli/cli_helpers.hpp"
#include "recur/error.hpp"
#include "recur/train.hpp"

namespace recur_cli_test {
namespace {

// Options that take no bad value: asking for help, or switches that have no value to get wrong
// (given a value such as --untied=maybe they are refused by the parser, checked below too).
const std::set<std::string> kNoValue = {"--help"};

// Bad arguments for each option, and the text the error must hold (the option's own name).
const std::map<std::string, std::string> kBad = {
    {"--config", "--config /nonexistent/recur.toml"},
    {"--data", "--data /nonexistent/mnist"},
    {"--embed", "--embed 0"},
    {"--model", "--model 'lstm 16, linear'"},
    {"--vocab", "--vocab 2"},
    {"--min-count", "--min-count 0"},
    {"--max-len", "--max-len 0"},
    {"--truncate", "--truncate middle"},
    {"--test-data", "--test-data /nonexistent/test.tsv"},
    {"--head-dropout", "--head-dropout 1"},
    {"--embed-dropout", "--embed-dropout -0.5"},
    {"--word-dropout", "--word-dropout 1"},
    {"--augment-shift", "--augment-shift 14"},
    {"--augment-rotate", "--augment-rotate 91"},
    {"--view", "--view diagonal"},
    {"--view-seed", "--view-seed -1"},
    {"--cell", "--cell transformer"},
    {"--hidden", "--hidden 0"},
    {"--layers", "--layers 65"},
    {"--bidirectional", "--bidirectional=maybe"},
    {"--projection", "--projection -1"},
    {"--pooling", "--pooling median"},
    {"--dropout", "--dropout 1.5"},
    {"--recurrent-dropout", "--recurrent-dropout 1"},
    {"--untied", "--untied=maybe"},
    {"--no-bias", "--no-bias=maybe"},
    {"--init", "--init orthogonal"},
    {"--init-recurrent", "--init-recurrent zeros"},
    {"--init-from", "--init-from /nonexistent/lm.safetensors"},
    {"--init-sigma", "--init-sigma -1"},
    {"--bias-init", "--bias-init ones"},
    {"--bias-value", "--bias-value nan"},
    {"--forget-bias", "--forget-bias inf"},
    {"--head-init", "--head-init orthogonal"},
    {"--head-sigma", "--head-sigma 0"},
    {"--head-bias-init", "--head-bias-init ones"},
    {"--head-bias-value", "--head-bias-value nan"},
    {"--projection-init", "--projection-init zeros"},
    {"--projection-bias-init", "--projection-bias-init ones"},
    {"--projection-bias-value", "--projection-bias-value nan"},
    {"--optimizer", "--optimizer lbfgs"},
    {"--lr", "--lr -0.1"},
    {"--momentum", "--momentum -1"},
    {"--nesterov", "--optimizer sgd --nesterov"},
    {"--decoupled-weight-decay", "--decoupled-weight-decay"},
    {"--weight-decay", "--weight-decay -1"},
    {"--beta1", "--beta1 1.5"},
    {"--beta2", "--beta2 1"},
    {"--eps", "--eps -1e-8"},
    {"--alpha", "--alpha -0.5"},
    {"--schedule", "--schedule exponential"},
    {"--warmup", "--warmup -1"},
    {"--step-size", "--step-size 0"},
    {"--gamma", "--gamma 0"},
    {"--min-lr", "--min-lr -1"},
    {"--clip-norm", "--clip-norm -1"},
    {"--clip-value", "--clip-value -1"},
    {"--label-smoothing", "--label-smoothing 1"},
    {"--ema", "--ema 1"},
    {"--patience", "--patience -1"},
    {"--batch", "--batch 100000"},
    {"--epochs", "--epochs -1"},
    {"--steps", "--steps -5"},
    {"--val", "--val 60000"},
    {"--train-limit", "--train-limit -1"},
    {"--seed", "--seed abc"},
    {"--threads", "--threads 100000"},
    {"--display-step", "--display-step 0"},
    {"--eval-batch", "--eval-batch 100000"},
    {"--out", ""},  // filled in below: a path under a regular file
    {"--checkpoint-every", "--checkpoint-every -1"},
    {"--skip-nonfinite", "--skip-nonfinite=maybe"},
    {"--precision", "--precision fp16"},
    {"--resume", "--resume /nonexistent/run"},
};

std::vector<std::string> train_options() {
  const CliResult r = run_cli("train --help");
  EXPECT_EQ(r.code, 0) << r.err;
  std::set<std::string> names;
  const std::regex option(R"(^\s+(?:-\w,\s*)?(--[a-z0-9-]+))");
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, option)) names.insert(m[1]);
  }
  return {names.begin(), names.end()};
}

TEST(TrainOptions, EveryBadValueNamesItsOptionAndLeavesNoFolder) {
  ScratchDir tmp;
  const std::vector<std::string> options = train_options();
  ASSERT_GT(options.size(), 50u) << "could not read the option list from --help";
  const fs::path file = tmp / "a-file";
  std::ofstream(file) << "not a folder\n";
  int checked = 0;
  for (const std::string& name : options) {
    if (kNoValue.count(name)) continue;
    const auto it = kBad.find(name);
    ASSERT_NE(it, kBad.end()) << name << " has no bad-value case in this test: add one";
    std::string bad = it->second;
    const fs::path out = tmp / ("run" + name);
    std::string args = "train --data " + quote(kMnistDir) + " --out " + quote(out.string());
    if (name == "--out") {
      args = "train --data " + quote(kMnistDir) + " --out " + quote((file / "run").string());
    } else if (name == "--data") {
      args = "train --out " + quote(out.string());
    }
    const auto t0 = std::chrono::steady_clock::now();
    const CliResult r = run_cli(args + " " + bad);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(fails_with(r, name)) << bad;
    EXPECT_FALSE(fs::exists(out)) << bad << " left " << out;
    EXPECT_FALSE(fs::exists(file / "run")) << bad;
    EXPECT_LT(seconds, 30.0) << bad;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(options.size() - kNoValue.size()));
}

int cpus() {
  cpu_set_t set;
  return ::sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

// Numbers the command-line parser itself cannot read (the other commands' numeric options), and
// an option given twice: the same one line as recur's own checks, naming the option.
TEST(CommandOptions, UnreadableNumbersNameTheOptionAndWhatItTakes) {
  EXPECT_TRUE(fails_with(run_cli("bench --steps x"), "--steps: must be an integer, got 'x'"));
  EXPECT_TRUE(fails_with(run_cli("eval model.safetensors --batch 1.5"),
                         "--batch: must be an integer, got '1.5'"));
  EXPECT_TRUE(fails_with(run_cli("serve m=model.safetensors --port abc"),
                         "--port: must be an integer, got 'abc'"));
  EXPECT_TRUE(fails_with(run_cli("serve m=model.safetensors --session-idle-s soon"),
                         "--session-idle-s: must be a number, got 'soon'"));
  EXPECT_TRUE(fails_with(run_cli("bench --threads 1 --threads 2"),
                         "--threads: given 2 times; give it once"));
}

// What the parser itself finds missing or extra, in recur's words: the commands there are, what a
// missing argument is, an option without its value, an option or argument a command does not
// take. Each names the command's --help.
TEST(CommandOptions, MissingAndUnknownWordsSayWhatTheCommandTakes) {
  EXPECT_TRUE(fails_with(run_cli(""),
                         "give a command: data, train, pretrain, eval, predict, "
                         "inspect, bench, report, export, serve (recur --help)"));
  EXPECT_TRUE(fails_with(run_cli("frobnicate"), "unknown command 'frobnicate' (commands: data, "));
  EXPECT_TRUE(fails_with(run_cli("--frob"), "--frob: no such option for recur (recur --help)"));
  EXPECT_TRUE(fails_with(run_cli("data"), "data: give a command: fetch, info (recur data --help)"));
  EXPECT_TRUE(
      fails_with(run_cli("data frob"), "data: unknown command 'frob' (commands: fetch, info"));
  EXPECT_TRUE(fails_with(run_cli("data fetch"),
                         "data fetch: missing dataset: data set name (mnist, imdb) "
                         "(recur data fetch --help)"));
  EXPECT_TRUE(fails_with(run_cli("inspect"), "inspect: missing model: checkpoint (.safetensors)"));
  EXPECT_TRUE(fails_with(run_cli("serve"), "serve: missing models: checkpoints to serve"));
  EXPECT_TRUE(fails_with(run_cli("export m.safetensors"),
                         "--onnx: required: the ONNX file to write (recur export --help)"));
  EXPECT_TRUE(fails_with(run_cli("train --epochs"), "--epochs: needs a value"));
  EXPECT_TRUE(fails_with(run_cli("bench --steps"), "--steps: needs a value"));
  EXPECT_TRUE(fails_with(run_cli("train --frob 3"),
                         "--frob: no such option for recur train (recur train --help)"));
  EXPECT_TRUE(fails_with(run_cli("train --frob=3"), "--frob: no such option for recur train"));
  EXPECT_TRUE(fails_with(run_cli("data fetch mnist --x"),
                         "--x: no such option for recur data fetch (recur data fetch --help)"));
  EXPECT_TRUE(fails_with(run_cli("eval m.safetensors extra"),
                         "eval: unexpected argument 'extra' (recur eval --help)"));
}

TEST(TrainOptions, HugeThreadAndBatchCountsAreRefusedAtOnce) {
  ScratchDir tmp;
  for (const std::string bad : {"--threads 100000", "--batch 100000"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const CliResult r = run_cli("train --steps 2 --data " + quote(kMnistDir) + " --out " +
                                quote(tmp / "run") + " " + bad);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Refused before the data are read or a thread starts (a generous bound: a loaded CI machine
    // took over 2 s to start the process at all).
    EXPECT_LT(seconds, 10.0) << bad;
    EXPECT_FALSE(fs::exists(tmp / "run")) << bad;
    if (bad == "--threads 100000") {
      EXPECT_TRUE(fails_with(r, "--threads: at most "));
      EXPECT_TRUE(contains(r.err, "4 per CPU for the " + std::to_string(cpus()) + " CPU")) << r.err;
    } else {
      EXPECT_TRUE(fails_with(r, "--batch: 100000 is more than the 55000 training images"));
    }
  }
  // The other commands that start threads refuse the same way.
  for (const std::string cmd :
       {"eval /nonexistent.safetensors --threads 100000", "bench --mode train --threads 100000"}) {
    EXPECT_TRUE(fails_with(run_cli(cmd), "--threads: at most ")) << cmd;
  }
}

int threads_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

TEST(TrainOptions, ThreadsStayWithinFourPerCpu) {
  // In this process: the largest pool allowed keeps the process within the bound.
  const int bound = recur::kThreadsPerCpu * cpus();
  EXPECT_EQ(recur::process_threads(), threads_of(::getpid()));
  const int most = recur::max_threads();
  EXPECT_GE(most, 1);
  EXPECT_EQ(recur::resolve_threads(most), most);
  EXPECT_THROW(recur::resolve_threads(most + 1), recur::Error);
  EXPECT_THROW(recur::resolve_threads(-1), recur::Error);

  // A training run at the largest count its process allows: sampled while it trains.
  ScratchDir tmp;
  const CliResult probe = run_cli("train --threads 100000 --data " + quote(kMnistDir));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(probe.err, m, std::regex("at most (\\d+) here"))) << probe.err;
  const std::string allowed = m[1];
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string out = tmp / "run";
    ::freopen("/dev/null", "w", stdout);
    ::execl(RECUR_CLI_PATH, RECUR_CLI_PATH, "train", "--threads", allowed.c_str(), "--data",
            kMnistDir.c_str(), "--out", out.c_str(), "--epochs", "1", "--train-limit", "4000",
            "--val", "500", "--hidden", "32", "--batch", "64", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Sampled until the run ends (30 s at most): a sanitizer build takes seconds to read the
  // data before its pool starts.
  int most_seen = 0;
  for (int k = 0; k < 6000; ++k) {
    most_seen = std::max(most_seen, threads_of(pid));
    if (::waitpid(pid, nullptr, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_GE(most_seen, std::stoi(allowed)) << "the run was never seen with its pool";
  EXPECT_LE(most_seen, bound);
}

}  // namespace
}  // namespace recur_cli_test
