// Data-parallel training under mpirun (builds with RECUR_MPI): N ranks x 1 thread end with the
// weights of 1 process x N threads bit for bit; only rank 0 writes; a bad value ends the job
// with one message; a rank killed mid-run ends the job within 30 s naming the rank; a run resumed
// under mpirun ends bit-identical to one never interrupted; checkpoints move between 2 ranks and
// 1 process; text runs and image layer lists too (2 ranks x 1 thread = 1 process x 2 threads,
// one message for a bad value). Skipped in builds without MPI (the sanitizer build, which does
// not run the cli tests: scripts/asan-build.sh).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_helpers.hpp"
#include "cli/text_fixtures.hpp"

namespace recur_cli_test {
namespace {

#ifdef RECUR_MPIEXEC
constexpr const char* kMpiexec = RECUR_MPIEXEC;
#else
constexpr const char* kMpiexec = nullptr;
#endif

#define SKIP_WITHOUT_MPI() \
  if (kMpiexec == nullptr) GTEST_SKIP() << "recur was built without RECUR_MPI"

// mpirun's arguments before the program: `np` ranks on this machine, whatever its core count
// (oversubscribed, unbound), allowed as root.
std::vector<std::string> mpirun_prefix(int np) {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  return {kMpiexec, "-np", std::to_string(np), "--oversubscribe", "--bind-to", "none"};
}

// Starts `program args...` with stdout and stderr to `log`.
pid_t spawn(const std::vector<std::string>& command, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(::fileno(stdout), 2);
    std::vector<std::string> copy = command;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> recur_command(const std::vector<std::string>& args) {
  return concat({RECUR_CLI_PATH}, args);
}

std::vector<std::string> mpirun_command(int np, const std::vector<std::string>& args) {
  return concat(mpirun_prefix(np), recur_command(args));
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

int run(const std::vector<std::string>& command, const std::string& log) {
  return wait_exit(spawn(command, log));
}

// A small model with two layers and dropout between them, so that every chunk's dropout seed
// matters, on a batch (30) that no chunk count used here divides into equal chunks.
std::vector<std::string> identity_args(const std::string& out, int threads) {
  return {"train",
          "--data",
          kMnistDir,
          "--hidden",
          "16",
          "--layers",
          "2",
          "--dropout",
          "0.3",
          "--train-limit",
          "480",
          "--val",
          "150",
          "--batch",
          "30",
          "--steps",
          "24",
          "--eval-batch",
          "70",
          "--display-step",
          "8",
          "--seed",
          "7",
          "--threads",
          std::to_string(threads),
          "--out",
          out};
}

// A run long enough to be killed in the middle, checkpointing often.
std::vector<std::string> long_args(const std::string& out, int threads) {
  return {"train",
          "--data",
          kMnistDir,
          "--hidden",
          "24",
          "--train-limit",
          "1000",
          "--val",
          "100",
          "--batch",
          "32",
          "--steps",
          "300",
          "--eval-batch",
          "50",
          "--display-step",
          "50",
          "--seed",
          "11",
          "--checkpoint-every",
          "7",
          "--threads",
          std::to_string(threads),
          "--out",
          out};
}

// The tensor bytes of a checkpoint (its data section, metadata aside), for bit-identity.
std::string weights_of(const std::string& path) {
  const recur::SafetensorsFile f = recur::read_safetensors(path);
  std::string bytes;
  for (const auto& [name, t] : f.tensors)
    bytes.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return bytes;
}

// metrics.jsonl without its timing (samples_per_s): losses and accuracies must match exactly.
std::string metrics_of(const std::string& dir) {
  std::istringstream in(slurp(fs::path(dir) / "metrics.jsonl"));
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto at = line.find(",\"samples_per_s\"");
    kept += (at == std::string::npos ? line : line.substr(0, at)) + "\n";
  }
  return kept;
}

bool wait_for_file(const fs::path& path, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The pid of rank `rank` of the job that mpirun `launcher` started on this machine: a process
// below it whose environment carries OMPI_COMM_WORLD_RANK=rank.
pid_t find_rank(pid_t launcher, int rank) {
  const std::string mark = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  auto parent_of = [](pid_t pid) {
    std::istringstream stat(slurp(fs::path("/proc") / std::to_string(pid) / "stat"));
    std::string field;
    for (int k = 0; k < 4 && stat >> field; ++k) {
    }
    return static_cast<pid_t>(std::atoi(field.c_str()));
  };
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::atoi(name.c_str());
    bool below = false;
    for (pid_t p = pid, hops = 0; p > 1 && hops < 4; p = parent_of(p), ++hops)
      if (parent_of(p) == launcher) below = true;
    if (!below) continue;
    const std::string env = slurp(e.path() / "environ");
    std::size_t at = 0;
    while (at < env.size()) {
      const std::size_t end = env.find('\0', at);
      if (env.compare(at, (end == std::string::npos ? env.size() : end) - at, mark) == 0)
        return pid;
      if (end == std::string::npos) break;
      at = end + 1;
    }
  }
  return -1;
}

TEST(MpiCli, TwoRanksOfOneThreadEqualOneProcessOfTwoThreads) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  ASSERT_EQ(run(recur_command(identity_args(dir / "threads", 2)), dir / "threads.log"), 0)
      << slurp(dir / "threads.log");
  ASSERT_EQ(run(mpirun_command(2, identity_args(dir / "ranks", 1)), dir / "ranks.log"), 0)
      << slurp(dir / "ranks.log");
  const std::string log = slurp(dir / "ranks.log");
  EXPECT_TRUE(contains(log, "data-parallel: 2 ranks, 2 threads in all")) << log;
  // Rank 0 alone prints.
  EXPECT_EQ(log.find("recur train: "), log.rfind("recur train: ")) << log;
  const std::string want = weights_of(dir / "threads/last.safetensors");
  EXPECT_EQ(weights_of(dir / "ranks/last.safetensors"), want);
  EXPECT_EQ(weights_of(dir / "ranks/resume.safetensors"),
            weights_of(dir / "threads/resume.safetensors"));
  // The training and validation losses are the same sums too.
  EXPECT_EQ(metrics_of(dir / "ranks"), metrics_of(dir / "threads"));
  // The layout matters: one process of one thread (other chunks, other dropout masks) differs,
  // so the equality above is no accident.
  ASSERT_EQ(run(recur_command(identity_args(dir / "one", 1)), dir / "one.log"), 0);
  EXPECT_NE(weights_of(dir / "one/last.safetensors"), want);
}

std::string text_metrics_of(const std::string& dir);

// A layer list on images trains data-parallel as the short form does.
TEST(MpiCli, ImageLayerListOnTwoRanksOfOneThreadEqualsOneProcessOfTwoThreads) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  auto args = [](const std::string& out, int threads) {
    std::vector<std::string> a = identity_args(out, threads);
    for (const char* flag : {"--hidden", "--layers", "--dropout"}) {
      const auto at = std::find(a.begin(), a.end(), flag);
      a.erase(at, at + 2);
    }
    a.insert(a.end() - 2, {"--model", "flatten, linear 24, relu, dropout 0.2, linear"});
    return a;
  };
  ASSERT_EQ(run(recur_command(args(dir / "threads", 2)), dir / "threads.log"), 0)
      << slurp(dir / "threads.log");
  ASSERT_EQ(run(mpirun_command(2, args(dir / "ranks", 1)), dir / "ranks.log"), 0)
      << slurp(dir / "ranks.log");
  EXPECT_TRUE(contains(slurp(dir / "ranks.log"), "data-parallel: 2 ranks, 2 threads in all"));
  EXPECT_EQ(weights_of(dir / "ranks/last.safetensors"),
            weights_of(dir / "threads/last.safetensors"));
  EXPECT_EQ(text_metrics_of(dir / "ranks"), text_metrics_of(dir / "threads"));
}

TEST(MpiCli, FourRanksOfOneThreadEqualOneProcessOfFourThreads) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  ASSERT_EQ(run(recur_command(identity_args(dir / "threads", 4)), dir / "threads.log"), 0)
      << slurp(dir / "threads.log");
  ASSERT_EQ(run(mpirun_command(4, identity_args(dir / "ranks", 1)), dir / "ranks.log"), 0)
      << slurp(dir / "ranks.log");
  EXPECT_EQ(weights_of(dir / "ranks/last.safetensors"),
            weights_of(dir / "threads/last.safetensors"));
  EXPECT_EQ(metrics_of(dir / "ranks"), metrics_of(dir / "threads"));
  const std::string summary = slurp(dir / "ranks/summary.json");
  EXPECT_TRUE(contains(summary, "\"ranks\": 4")) << summary;
}

TEST(MpiCli, OnlyRankZeroWritesTheRunFolder) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  // One job, two programs (mpirun's MPMD form): rank 1 is told another --out, which must stay
  // untouched while rank 0's run folder is complete.
  std::vector<std::string> command = mpirun_prefix(1);
  command = concat(command, recur_command(identity_args(dir / "rank0", 1)));
  command = concat(command, {":", "-np", "1"});
  command = concat(command, recur_command(identity_args(dir / "rank1", 1)));
  ASSERT_EQ(run(command, dir / "run.log"), 0) << slurp(dir / "run.log");
  for (const char* file : {"config.toml", "metrics.jsonl", "last.safetensors", "best.safetensors",
                           "resume.safetensors", "curves.png", "summary.json"})
    EXPECT_TRUE(fs::exists(fs::path(dir / "rank0") / file)) << file;
  EXPECT_FALSE(fs::exists(dir / "rank1"));
}

TEST(MpiCli, RanksThatRunDifferentThingsAreRefusedBeforeAnythingIsWritten) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  std::vector<std::string> command = mpirun_prefix(1);
  command = concat(command, recur_command(identity_args(dir / "rank0", 1)));
  command = concat(command, {":", "-np", "1"});
  command =
      concat(command, recur_command(concat(identity_args(dir / "rank1", 1), {"--lr", "0.5"})));
  const int code = run(command, dir / "run.log");
  const std::string log = slurp(dir / "run.log");
  EXPECT_EQ(code, 2) << log;
  EXPECT_TRUE(contains(log,
                       "recur: error: mpirun: rank 1 has another model, data set or schedule "
                       "than rank 0"))
      << log;
  EXPECT_FALSE(fs::exists(dir / "rank0"));
  EXPECT_FALSE(fs::exists(dir / "rank1"));
}

TEST(MpiCli, BadInputEndsTheJobWithOneMessage) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  fs::create_directories(dir / "taken");
  std::ofstream(dir / "taken/file") << "x";
  const int code = run(mpirun_command(2, identity_args(dir / "taken", 1)), dir / "run.log");
  const std::string log = slurp(dir / "run.log");
  EXPECT_EQ(code, 2) << log;
  const std::string message =
      "recur: error: --out: " + (dir / "taken") + " exists and is not empty";
  EXPECT_TRUE(contains(log, message)) << log;
  EXPECT_EQ(log.find("recur: error"), log.rfind("recur: error")) << log;
}

// Kills rank `rank` of a job writing to `out` once it has a checkpoint; returns mpirun's exit
// code and how long it took to exit after the kill.
std::pair<int, double> kill_rank_mid_run(pid_t launcher, const std::string& out, int rank) {
  if (!wait_for_file(fs::path(out) / "resume.safetensors", 120)) return {-1, 0};
  const pid_t victim = find_rank(launcher, rank);
  if (victim <= 0) return {-2, 0};
  ::kill(victim, SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (::waitpid(launcher, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
      ::kill(launcher, SIGKILL);
      ::waitpid(launcher, &status, 0);
      return {-3, 60};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), seconds};
}

TEST(MpiCli, KilledRankEndsTheJobAndResumeIsBitIdentical) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  ASSERT_EQ(run(mpirun_command(2, long_args(dir / "reference", 1)), dir / "reference.log"), 0)
      << slurp(dir / "reference.log");
  const std::string want = weights_of(dir / "reference/resume.safetensors");

  // A 2-rank run whose rank 1 dies mid-run.
  const std::string out = dir / "killed";
  const pid_t launcher = spawn(mpirun_command(2, long_args(out, 1)), dir / "killed.log");
  const auto [code, seconds] = kill_rank_mid_run(launcher, out, 1);
  const std::string log = slurp(dir / "killed.log");
  ASSERT_GT(code, 0) << "kill failed (" << code << "): " << log;
  EXPECT_LT(seconds, 30.0) << log;
  EXPECT_TRUE(contains(log, "rank 1") && contains(log, "signal 9")) << log;
  ASSERT_FALSE(fs::exists(fs::path(out) / "summary.json")) << "the run finished before the kill";

  // Its checkpoint continues on 1 process of 2 threads (the same chunks) as well as under
  // mpirun: both end bit-identical to the run never interrupted.
  fs::copy(out, dir / "killed-copy", fs::copy_options::recursive);
  ASSERT_EQ(run(mpirun_command(2, {"train", "--resume", out}), dir / "resume.log"), 0)
      << slurp(dir / "resume.log");
  EXPECT_EQ(weights_of(out + "/resume.safetensors"), want);
  EXPECT_EQ(weights_of(out + "/last.safetensors"), weights_of(dir / "reference/last.safetensors"));
  ASSERT_EQ(run(recur_command({"train", "--resume", dir / "killed-copy", "--threads", "2"}),
                dir / "resume1.log"),
            0)
      << slurp(dir / "resume1.log");
  EXPECT_EQ(weights_of(dir / "killed-copy/resume.safetensors"), want);

  // And the other way: a 1-process checkpoint resumed by 2 ranks.
  const std::string single = dir / "single";
  const pid_t pid = spawn(recur_command(long_args(single, 2)), dir / "single.log");
  ASSERT_TRUE(wait_for_file(fs::path(single) / "resume.safetensors", 120));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  ASSERT_FALSE(fs::exists(fs::path(single) / "summary.json"));
  ASSERT_EQ(
      run(mpirun_command(2, {"train", "--resume", single, "--threads", "1"}), dir / "resume2.log"),
      0)
      << slurp(dir / "resume2.log");
  EXPECT_EQ(weights_of(single + "/resume.safetensors"), want);
}

// A small text run with dropout in three places, a held-out split and a test side, on batches
// of texts of every length that no chunk count used here divides evenly.
std::vector<std::string> text_args(const std::string& dir, const std::string& out, int threads,
                                   const std::string& seed = "9", const std::string& val = "30") {
  return {"train",
          "--data",
          dir + "/train.tsv",
          "--test-data",
          dir + "/test.tsv",
          "--hidden",
          "8",
          "--embed",
          "8",
          "--layers",
          "2",
          "--dropout",
          "0.3",
          "--embed-dropout",
          "0.2",
          "--head-dropout",
          "0.2",
          "--batch",
          "10",
          "--epochs",
          "2",
          "--val",
          val,
          "--eval-batch",
          "7",
          "--display-step",
          "3",
          "--seed",
          seed,
          "--lr",
          "0.01",
          "--threads",
          std::to_string(threads),
          "--out",
          out};
}

// metrics.jsonl of a text run without its timing ("seconds").
std::string text_metrics_of(const std::string& dir) {
  std::istringstream in(slurp(fs::path(dir) / "metrics.jsonl"));
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("samples_per_s");
    kept += j.dump() + "\n";
  }
  return kept;
}

TEST(MpiCli, TextRunOnTwoRanksOfOneThreadEqualsOneProcessOfTwoThreads) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  write_corpus(dir / "train.tsv", 200, 1);
  write_corpus(dir / "test.tsv", 40, 2);
  const std::string data = dir.path().string();
  ASSERT_EQ(run(recur_command(text_args(data, dir / "threads", 2)), dir / "threads.log"), 0)
      << slurp(dir / "threads.log");
  ASSERT_EQ(run(mpirun_command(2, text_args(data, dir / "ranks", 1)), dir / "ranks.log"), 0)
      << slurp(dir / "ranks.log");
  const std::string log = slurp(dir / "ranks.log");
  EXPECT_TRUE(contains(log, "data-parallel: 2 ranks, 2 threads in all")) << log;
  // Rank 0 alone prints.
  EXPECT_EQ(log.find("text: 200 training"), log.rfind("text: 200 training")) << log;
  for (const char* file : {"last.safetensors", "best.safetensors", "resume.safetensors"})
    EXPECT_EQ(weights_of(dir / ("ranks/" + std::string(file))),
              weights_of(dir / ("threads/" + std::string(file))))
        << file;
  // Training losses, validation and test metrics are the same sums too.
  EXPECT_EQ(text_metrics_of(dir / "ranks"), text_metrics_of(dir / "threads"));
  const auto ranks = nlohmann::json::parse(slurp(fs::path(dir / "ranks") / "summary.json"));
  const auto threads = nlohmann::json::parse(slurp(fs::path(dir / "threads") / "summary.json"));
  EXPECT_EQ(ranks["test_accuracy"], threads["test_accuracy"]);
  EXPECT_EQ(ranks["test_loss"], threads["test_loss"]);
  EXPECT_EQ(ranks["ranks"], 2);
  // The layout matters: one process of one thread differs, so the equality is no accident.
  ASSERT_EQ(run(recur_command(text_args(data, dir / "one", 1)), dir / "one.log"), 0);
  EXPECT_NE(weights_of(dir / "one/last.safetensors"), weights_of(dir / "threads/last.safetensors"));
}

TEST(MpiCli, TextRunBadValueOrMismatchedRanksEndTheJobWithOneMessage) {
  SKIP_WITHOUT_MPI();
  ScratchDir dir;
  write_corpus(dir / "train.tsv", 60, 1);
  write_corpus(dir / "test.tsv", 10, 2);
  const std::string data = dir.path().string();
  // A value every rank refuses once the data is read.
  const int code =
      run(mpirun_command(2, text_args(data, dir / "bad", 1, "9", "500")), dir / "bad.log");
  std::string log = slurp(dir / "bad.log");
  EXPECT_EQ(code, 2) << log;
  EXPECT_TRUE(contains(log, "recur: error: --val: must be in [0, 60)")) << log;
  EXPECT_EQ(log.find("recur: error"), log.rfind("recur: error")) << log;
  EXPECT_FALSE(fs::exists(dir / "bad"));
  // Ranks told different seeds.
  std::vector<std::string> command = mpirun_prefix(1);
  command = concat(command, recur_command(text_args(data, dir / "rank0", 1)));
  command = concat(command, {":", "-np", "1"});
  command = concat(command, recur_command(text_args(data, dir / "rank1", 1, "10")));
  EXPECT_EQ(run(command, dir / "mismatch.log"), 2) << slurp(dir / "mismatch.log");
  log = slurp(dir / "mismatch.log");
  EXPECT_TRUE(contains(log, "recur: error: mpirun: rank 1 has another model")) << log;
  EXPECT_FALSE(fs::exists(dir / "rank0"));
}

}  // namespace
}  // namespace recur_cli_test
