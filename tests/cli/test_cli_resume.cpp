// Never lose a run: a training run killed (SIGKILL) at known steps and resumed ends with weights
// bit-identical to a run never interrupted; SIGINT writes a checkpoint and says how to resume; a
// checkpoint write that fails (file-size limit) leaves the previous one intact. The kills come
// from the trainer itself (RECUR_KILL_AFTER_STEP=N: SIGKILL once step N is done), so every run
// of the test covers the same points: between checkpoints, right after one, at an epoch's end.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/cli_helpers.hpp"

namespace recur_cli_test {
namespace {

// Starts `recur args...` with stdout/stderr to `log`, optionally killed by the trainer after
// step `kill_after` (0: never) or under a file-size limit.
pid_t spawn(const std::vector<std::string>& args, const std::string& log,
            std::int64_t kill_after = 0, rlim_t fsize = RLIM_INFINITY) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (kill_after > 0)
      ::setenv("RECUR_KILL_AFTER_STEP", std::to_string(kill_after).c_str(), 1);
    else
      ::unsetenv("RECUR_KILL_AFTER_STEP");
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
          "4000",    "--val",
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

constexpr std::int64_t kCheckpointEvery = 7;  // train_args' --checkpoint-every

// The steps of one epoch: the step of a finished run's first validation.
std::int64_t steps_per_epoch(const fs::path& run) {
  std::istringstream lines(slurp(run / "metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == "validation") return j.at("step").get<std::int64_t>();
  }
  return 0;
}

// The step a run killed after step `killed` resumes at: its last checkpoint, written every
// kCheckpointEvery steps and at the end of each epoch.
std::int64_t resume_step(std::int64_t killed, std::int64_t epoch) {
  return std::max(killed / kCheckpointEvery * kCheckpointEvery, killed / epoch * epoch);
}

TEST(ResumeCli, KilledAtKnownStepsAndResumedIsBitIdentical) {
  ScratchDir dir;
  const std::string reference = dir / "reference";
  ASSERT_EQ(wait_exit(spawn(train_args(reference), dir / "reference.log")), 0)
      << slurp(dir / "reference.log");
  const std::string want = weights_of(reference + "/last.safetensors");
  const std::int64_t epoch = steps_per_epoch(reference);
  ASSERT_GT(epoch, 3 * kCheckpointEvery) << slurp(reference + "/metrics.jsonl");

  // Each trial: the steps after which the first run and then each resume are killed; the last
  // resume runs to the end. Between two checkpoints (3 steps are redone), right after one, at
  // the last step of the first epoch (its checkpoint is the epoch's), a resume killed again
  // just after the epoch boundary.
  const std::vector<std::vector<std::int64_t>> trials = {
      {10}, {2 * kCheckpointEvery}, {epoch}, {10, epoch + 2}};
  for (std::size_t trial = 0; trial < trials.size(); ++trial) {
    const std::string out = dir / ("killed-" + std::to_string(trial));
    const std::string log = dir / ("killed-" + std::to_string(trial) + ".log");
    const auto& kills = trials[trial];
    ASSERT_EQ(wait_exit(spawn(train_args(out), log, kills[0])), 128 + SIGKILL) << slurp(log);
    for (std::size_t k = 0; k < kills.size(); ++k) {
      ASSERT_FALSE(fs::exists(fs::path(out) / "summary.json")) << "trial " << trial;
      const std::int64_t next = k + 1 < kills.size() ? kills[k + 1] : 0;
      const pid_t again = spawn({"train", "--resume", out}, log, next);
      ASSERT_EQ(wait_exit(again), next > 0 ? 128 + SIGKILL : 0) << slurp(log);
      EXPECT_TRUE(contains(slurp(log), "resuming " + out + " at step " +
                                           std::to_string(resume_step(kills[k], epoch)) + " "))
          << "trial " << trial << " kill " << k << ": " << slurp(log);
    }
    ASSERT_TRUE(fs::exists(fs::path(out) / "summary.json")) << slurp(log);
    EXPECT_EQ(weights_of(out + "/last.safetensors"), want) << "trial " << trial;
  }
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
  ASSERT_EQ(wait_exit(spawn(args(out), dir / "killed.log", 10)), 128 + SIGKILL)
      << slurp(dir / "killed.log");
  ASSERT_FALSE(fs::exists(fs::path(out) / "summary.json"));
  ASSERT_EQ(wait_exit(spawn({"train", "--resume", out}, dir / "resume.log")), 0)
      << slurp(dir / "resume.log");
  EXPECT_TRUE(contains(slurp(dir / "resume.log"), "resuming " + out + " at step 7 "))
      << slurp(dir / "resume.log");
  EXPECT_EQ(weights_of(out + "/last.safetensors"), weights_of(reference + "/last.safetensors"));
}

TEST(ResumeCli, EmaAndAugmentedRunKilledAndResumedIsBitIdentical) {
  // --ema keeps the moving average in the resume file beside the optimizer state; the
  // checkpoints hold the average, which differs from the trained weights. Augmentation draws
  // each image's move and turn from the step's seed, so a resumed run reads the same images.
  ScratchDir dir;
  auto with = [](std::vector<std::string> a, std::vector<std::string> extra) {
    a.insert(a.end() - 2, extra.begin(), extra.end());
    return a;
  };
  auto args = [&](const std::string& out) {
    return with(train_args(out),
                {"--ema", "0.9", "--augment-shift", "2", "--augment-rotate", "10"});
  };
  const std::string reference = dir / "reference";
  ASSERT_EQ(wait_exit(spawn(args(reference), dir / "reference.log")), 0)
      << slurp(dir / "reference.log");
  for (const auto& [name, extra] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"plain", {"--ema", "0", "--augment-shift", "0", "--augment-rotate", "0"}},
           {"no-augment", {"--ema", "0.9", "--augment-shift", "0", "--augment-rotate", "0"}}}) {
    const std::string other = dir / name;
    ASSERT_EQ(wait_exit(spawn(with(train_args(other), extra), dir / (name + ".log"))), 0)
        << slurp(dir / (name + ".log"));
    EXPECT_NE(weights_of(reference + "/last.safetensors"), weights_of(other + "/last.safetensors"))
        << name;
  }
  const std::string out = dir / "killed";
  ASSERT_EQ(wait_exit(spawn(args(out), dir / "killed.log", 10)), 128 + SIGKILL)
      << slurp(dir / "killed.log");
  ASSERT_EQ(wait_exit(spawn({"train", "--resume", out}, dir / "resume.log")), 0)
      << slurp(dir / "resume.log");
  EXPECT_EQ(weights_of(out + "/last.safetensors"), weights_of(reference + "/last.safetensors"));
  const std::string config = slurp(fs::path(out) / "config.toml");
  EXPECT_TRUE(contains(config, "ema=0.9"));
  EXPECT_TRUE(contains(config, "augment-shift=2"));
  EXPECT_TRUE(contains(config, "augment-rotate=10"));
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
  // Killed between two checkpoints, in the middle of no write.
  ASSERT_EQ(wait_exit(spawn(train_args(out), dir / "run.log", 10)), 128 + SIGKILL)
      << slurp(dir / "run.log");
  const fs::path checkpoint = fs::path(out) / "resume.safetensors";
  const std::string before = slurp(checkpoint);
  auto temporaries = [&] {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(out))
      if (e.path().filename().string().find(".tmp") != std::string::npos)
        names.insert(e.path().filename());
    return names;
  };
  ASSERT_TRUE(temporaries().empty());
  ASSERT_GT(before.size(), 1000u);
  // What a kill inside a checkpoint write leaves behind (src/core/fs.cpp names it so).
  {
    std::ofstream stale(fs::path(out) / ".resume.safetensors.tmp-Ab12Cd");
    stale << "half a checkpoint";
  }
  // Files may grow to just under the checkpoint's size: the next checkpoint cannot be written.
  const pid_t again = spawn({"train", "--resume", out}, dir / "resume.log", 0, before.size() - 100);
  const int code = wait_exit(again);
  const std::string log = slurp(dir / "resume.log");
  EXPECT_EQ(code, 2) << log;
  EXPECT_TRUE(contains(log, "recur: error: ")) << log;
  EXPECT_TRUE(contains(log, "resume.safetensors")) << log;
  EXPECT_TRUE(contains(log, "File too large")) << log;
  EXPECT_EQ(slurp(checkpoint), before);
  // The resumed run swept the killed write's leftover, and its own failed write left nothing.
  EXPECT_TRUE(temporaries().empty());
}

}  // namespace
}  // namespace recur_cli_test
