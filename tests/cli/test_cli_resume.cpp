// Never lose a run: a training run killed (SIGKILL) at random points and resumed ends with
// weights bit-identical to a run never interrupted; SIGINT writes a checkpoint and says how to
// resume; a checkpoint write that fails (file-size limit) leaves the previous one intact.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "recur/rng.hpp"

namespace recur_cli_test {
namespace {

// Starts `recur args...` with stdout/stderr to `log`, optionally under a file-size limit.
pid_t spawn(const std::vector<std::string>& args, const std::string& log,
            rlim_t fsize = RLIM_INFINITY) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (fsize != RLIM_INFINITY) {
      rlimit lim{fsize, fsize};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f) ::dup2(::fileno(stdout), 2);
    std::vector<char*> argv;
    std::string cli = RECUR_CLI_PATH;
    argv.push_back(cli.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(cli.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::vector<std::string> train_args(const std::string& out) {
  return {"train",   "--data",
          kMnistDir, "--hidden",
          "48",      "--train-limit",
          "12000",   "--val",
          "200",     "--batch",
          "32",      "--epochs",
          "2",       "--checkpoint-every",
          "7",       "--display-step",
          "50",      "--threads",
          "2",       "--seed",
          "5",       "--eval-batch",
          "200",     "--out",
          out};
}

// The tensor bytes of a checkpoint (its data section), for bit-identity.
std::string weights_of(const std::string& path) {
  const recur::SafetensorsFile f = recur::read_safetensors(path);
  std::string bytes;
  for (const auto& [name, t] : f.tensors)
    bytes.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return bytes;
}

bool wait_for_file(const fs::path& path, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    if (fs::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ResumeCli, KilledAtRandomPointsAndResumedIsBitIdentical) {
  ScratchDir dir;
  const std::string reference = dir / "reference";
  ASSERT_EQ(wait_exit(spawn(train_args(reference), dir / "reference.log")), 0)
      << slurp(dir / "reference.log");
  const std::string want = weights_of(reference + "/last.safetensors");

  recur::Rng rng(2024);
  int resumed = 0;
  for (int trial = 0; trial < 3; ++trial) {
    const std::string out = dir / ("killed-" + std::to_string(trial));
    const pid_t pid = spawn(train_args(out), dir / "killed.log");
    // Kill once a checkpoint exists, after a further random delay.
    ASSERT_TRUE(wait_for_file(fs::path(out) / "resume.safetensors", 60))
        << slurp(dir / "killed.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(rng.uniform(0, 300))));
    ::kill(pid, SIGKILL);
    wait_exit(pid);
    // Resume until the run finishes, killing the first resume once more on odd trials.
    int attempts = 0;
    while (!fs::exists(fs::path(out) / "summary.json") && attempts++ < 5) {
      const pid_t again = spawn({"train", "--resume", out}, dir / "resume.log");
      if (trial % 2 == 1 && attempts == 1) {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<int>(rng.uniform(100, 600))));
        ::kill(again, SIGKILL);
        wait_exit(again);
      } else {
        ASSERT_EQ(wait_exit(again), 0) << slurp(dir / "resume.log");
      }
      ++resumed;
    }
    ASSERT_TRUE(fs::exists(fs::path(out) / "summary.json"));
    EXPECT_EQ(weights_of(out + "/last.safetensors"), want) << "trial " << trial;
  }
  EXPECT_GE(resumed, 3);
}

// A layer list on images (a GRU over rows, as `--model` gives it) resumes the same way.
TEST(ResumeCli, ImageLayerListKilledAndResumedIsBitIdentical) {
  ScratchDir dir;
  auto args = [](const std::string& out) {
    std::vector<std::string> a = train_args(out);
    const auto hidden = std::find(a.begin(), a.end(), "--hidden");
    a.erase(hidden, hidden + 2);
    a.insert(a.end() - 2, {"--model", "gru 48, pool last, linear"});
    return a;
  };
  const std::string reference = dir / "reference";
  ASSERT_EQ(wait_exit(spawn(args(reference), dir / "reference.log")), 0)
      << slurp(dir / "reference.log");
  const std::string out = dir / "killed";
  const pid_t pid = spawn(args(out), dir / "killed.log");
  ASSERT_TRUE(wait_for_file(fs::path(out) / "resume.safetensors", 60)) << slurp(dir / "killed.log");
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  ASSERT_FALSE(fs::exists(fs::path(out) / "summary.json")) << "the run ended before the kill";
  ASSERT_EQ(wait_exit(spawn({"train", "--resume", out}, dir / "resume.log")), 0)
      << slurp(dir / "resume.log");
  EXPECT_TRUE(contains(slurp(dir / "resume.log"), "resuming " + out)) << slurp(dir / "resume.log");
  EXPECT_EQ(weights_of(out + "/last.safetensors"), weights_of(reference + "/last.safetensors"));
}

// Waits until `path` holds `text` (a log being written by a running process).
bool wait_for_text(const fs::path& path, const std::string& text, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    if (fs::exists(path) && contains(slurp(path), text)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ResumeCli, SigintCheckpointsAndSaysHowToResume) {
  // A run far too long to finish during the test (1,000 epochs), so the signal always lands in
  // the middle of it; the resumed run is interrupted the same way.
  ScratchDir dir;
  const std::string out = dir / "run";
  std::vector<std::string> args = train_args(out);
  *(std::find(args.begin(), args.end(), "--epochs") + 1) = "1000";
  const pid_t pid = spawn(args, dir / "run.log");
  ASSERT_TRUE(wait_for_file(fs::path(out) / "metrics.jsonl", 60)) << slurp(dir / "run.log");
  ::kill(pid, SIGINT);
  const int code = wait_exit(pid);
  const std::string log = slurp(dir / "run.log");
  EXPECT_EQ(code, 128 + SIGINT) << log;
  EXPECT_TRUE(contains(log, "stopped by SIGINT")) << log;
  EXPECT_TRUE(contains(log, "recur train --resume " + out)) << log;
  EXPECT_FALSE(fs::exists(fs::path(out) / "summary.json"));
  ASSERT_TRUE(fs::exists(fs::path(out) / "resume.safetensors"));

  const pid_t again = spawn({"train", "--resume", out}, dir / "resume.log");
  ASSERT_TRUE(wait_for_text(dir / "resume.log", "resuming " + out + " at step ", 60))
      << slurp(dir / "resume.log");
  ::kill(again, SIGINT);
  EXPECT_EQ(wait_exit(again), 128 + SIGINT) << slurp(dir / "resume.log");
  EXPECT_TRUE(contains(slurp(dir / "resume.log"), "recur train --resume " + out));
}

TEST(ResumeCli, FailedCheckpointWriteKeepsThePreviousOne) {
  ScratchDir dir;
  const std::string out = dir / "run";
  const pid_t pid = spawn(train_args(out), dir / "run.log");
  ASSERT_TRUE(wait_for_file(fs::path(out) / "resume.safetensors", 60));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  const fs::path checkpoint = fs::path(out) / "resume.safetensors";
  const std::string before = slurp(checkpoint);
  // SIGKILL can land inside a checkpoint write and leave its temporary file; only files the
  // failed write would add count below.
  auto temporaries = [&] {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(out))
      if (e.path().filename().string().find(".tmp") != std::string::npos)
        names.insert(e.path().filename());
    return names;
  };
  const std::set<std::string> stale = temporaries();
  ASSERT_GT(before.size(), 1000u);
  // Files may grow to just under the checkpoint's size: the next checkpoint cannot be written.
  const pid_t again = spawn({"train", "--resume", out}, dir / "resume.log", before.size() - 100);
  const int code = wait_exit(again);
  const std::string log = slurp(dir / "resume.log");
  EXPECT_EQ(code, 2) << log;
  EXPECT_TRUE(contains(log, "recur: error: ")) << log;
  EXPECT_TRUE(contains(log, "resume.safetensors")) << log;
  EXPECT_TRUE(contains(log, "File too large")) << log;
  EXPECT_EQ(slurp(checkpoint), before);
  // The resumed run swept the killed run's leftovers, and its own failed write left nothing.
  EXPECT_TRUE(temporaries().empty()) << stale.size() << " stale before";
}

}  // namespace
}  // namespace recur_cli_test
