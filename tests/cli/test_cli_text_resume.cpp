// Text and array runs never lose their work either: a run stopped by SIGINT or killed (SIGKILL)
// mid-run and resumed with `recur train --resume` ends with the weights, checkpoints and metrics
// of the run never interrupted; resuming a finished run, a run whose data changed, or with a
// missing or damaged checkpoint is refused with exit code 2 and the run folder left as it was.
// A checkpoint of 1 process x 2 threads also continues bit-identically on 2 ranks x 1 thread
// (skipped in builds without RECUR_MPI).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "cli/text_fixtures.hpp"

namespace recur_cli_test {
namespace {

// A process whose stdout is a pipe of one page: once it has printed a page the test has not
// read, it waits, so a short run cannot finish before the test has stopped it.
struct Piped {
  pid_t pid = -1;
  int fd = -1;
};

Piped spawn_piped(const std::vector<std::string>& args, const std::string& err_log) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  ::fcntl(fds[1], F_SETPIPE_SZ, 4096);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    const int err = ::open(err_log.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (err >= 0) ::dup2(err, 2);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    std::string cli = RECUR_CLI_PATH;
    argv.push_back(cli.data());
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(cli.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Reads the pipe into `seen` until it holds `text` (true) or the pipe ends (false).
bool read_until(int fd, const std::string& text, std::string& seen) {
  char buf[256];
  while (!contains(seen, text)) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    seen.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// Reads the pipe to its end, then waits for the process: its exit code, or 128 + its signal.
int finish(const Piped& p, std::string& seen) {
  char buf[4096];
  for (ssize_t n; (n = ::read(p.fd, buf, sizeof(buf))) > 0;)
    seen.append(buf, static_cast<std::size_t>(n));
  ::close(p.fd);
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> split_args(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

std::string args_text(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += quote(a) + " ";
  return s;
}

// The tensor bytes of a checkpoint (its data section, metadata aside).
std::string weights_of(const fs::path& path) {
  const recur::SafetensorsFile f = recur::read_safetensors(path.string());
  std::string bytes;
  for (const auto& [name, t] : f.tensors)
    bytes.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return bytes;
}

// metrics.jsonl without its timing: losses and accuracies must match exactly.
std::string metrics_of(const fs::path& dir) {
  std::istringstream in(slurp(dir / "metrics.jsonl"));
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("samples_per_s");
    kept += j.dump() + "\n";
  }
  return kept;
}

// Every file of a folder and its bytes.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files[e.path().filename()] = slurp(e.path());
  return files;
}

// Resumes the run in `out` by `recur train --resume OUT`, or under mpirun with 2 ranks of one
// thread each when `ranks` is 2.
CliResult resume_run(const fs::path& out, int ranks, const ScratchDir& tmp) {
  if (ranks == 1) return run_cli("train --resume " + quote(out));
#ifdef RECUR_MPIEXEC
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  const std::string command = quote(RECUR_MPIEXEC) + " -np 2 --oversubscribe --bind-to none " +
                              quote(RECUR_CLI_PATH) + " train --resume " + quote(out) +
                              " --threads 1 >" + quote(tmp / "mpirun.out") + " 2>" +
                              quote(tmp / "mpirun.err") + " </dev/null";
  const int status = std::system(command.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(tmp / "mpirun.out");
  r.err = slurp(tmp / "mpirun.err");
  return r;
#else
  return {};
#endif
}

// Runs `args` interrupted once it has printed `mark` (by `signal`), then resumes it to the end
// (on `ranks` processes); the run folder must end as the uninterrupted `reference`'s.
void expect_resume_matches(const std::vector<std::string>& args, const fs::path& out,
                           const fs::path& reference, int signal, const std::string& mark,
                           const ScratchDir& tmp, int ranks = 1) {
  std::vector<std::string> interrupted = args;
  interrupted.insert(interrupted.end(), {"--out", out.string()});
  const Piped p = spawn_piped(interrupted, tmp / "interrupted.err");
  ASSERT_GT(p.pid, 0);
  std::string seen;
  const bool reached = read_until(p.fd, mark, seen);
  ::kill(p.pid, signal);
  const int code = finish(p, seen);
  ASSERT_TRUE(reached) << seen << slurp(tmp / "interrupted.err");
  ASSERT_EQ(code, 128 + signal) << seen << slurp(tmp / "interrupted.err");
  ASSERT_FALSE(fs::exists(out / "summary.json")) << "the run finished before the signal";
  ASSERT_TRUE(fs::exists(out / "resume.safetensors"));
  if (signal == SIGINT) {
    const std::string err = slurp(tmp / "interrupted.err");
    EXPECT_TRUE(contains(err, "stopped by SIGINT")) << err;
    EXPECT_TRUE(contains(err, "recur train --resume " + out.string())) << err;
  }

  const CliResult r = resume_run(out, ranks, tmp);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "resuming " + out.string() + " at step ")) << r.out;
  EXPECT_EQ(weights_of(out / "last.safetensors"), weights_of(reference / "last.safetensors"));
  EXPECT_EQ(weights_of(out / "best.safetensors"), weights_of(reference / "best.safetensors"));
  if (ranks == 1) {
    // Metadata too: the whole files are the same bytes (under mpirun the recorded --threads
    // differs).
    EXPECT_EQ(slurp(out / "last.safetensors"), slurp(reference / "last.safetensors"));
    EXPECT_EQ(slurp(out / "best.safetensors"), slurp(reference / "best.safetensors"));
  }
  EXPECT_EQ(weights_of(out / "resume.safetensors"), weights_of(reference / "resume.safetensors"));
  EXPECT_EQ(metrics_of(out), metrics_of(reference));
  const auto a = nlohmann::json::parse(slurp(out / "summary.json"));
  const auto b = nlohmann::json::parse(slurp(reference / "summary.json"));
  for (const char* key : {"test_accuracy", "test_loss", "best_val_accuracy", "steps", "samples"})
    EXPECT_EQ(a[key], b[key]) << key;
}

// Small model, dropout everywhere it can be (so every step's dropout seeds matter), a held-out
// validation split, and enough steps to print more than the pipe holds.
const char* const kTextArgs =
    "--epochs 4 --hidden 8 --embed 8 --batch 8 --lr 0.01 --threads 2 --seed 3 --val 40 "
    "--embed-dropout 0.2 --head-dropout 0.2 --layers 2 --dropout 0.2 --display-step 2 "
    "--eval-batch 16 --checkpoint-every 3";

TEST(TextResumeCli, TextRunStoppedBySigintAndResumedIsBitIdentical) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 480, 1);
  write_corpus(tmp / "test.tsv", 60, 2);
  std::vector<std::string> args = {"train", "--data", tmp / "train.tsv", "--test-data",
                                   tmp / "test.tsv"};
  for (const auto& a : split_args(kTextArgs)) args.push_back(a);
  const CliResult ref = run_cli(args_text(args) + "--out " + quote(tmp / "reference"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  expect_resume_matches(args, tmp.path() / "run", tmp.path() / "reference", SIGINT, "step 10/",
                        tmp);
}

TEST(TextResumeCli, TextRunStoppedAndResumedUnderMpirunIsBitIdentical) {
#ifndef RECUR_MPIEXEC
  GTEST_SKIP() << "recur was built without RECUR_MPI";
#endif
  // A checkpoint of 1 process of 2 threads continues on 2 ranks of 1 thread: the same chunks,
  // so the same weights as the run never interrupted.
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 480, 1);
  write_corpus(tmp / "test.tsv", 60, 2);
  std::vector<std::string> args = {"train", "--data", tmp / "train.tsv", "--test-data",
                                   tmp / "test.tsv"};
  for (const auto& a : split_args(kTextArgs)) args.push_back(a);
  const CliResult ref = run_cli(args_text(args) + "--out " + quote(tmp / "reference"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  expect_resume_matches(args, tmp.path() / "run", tmp.path() / "reference", SIGINT, "step 20/", tmp,
                        2);
}

TEST(TextResumeCli, ArrayRunKilledAndResumedIsBitIdentical) {
  ScratchDir tmp;
  fs::create_directories(tmp.path() / "data");
  write_npy_sequences(tmp.path() / "data", 400, 50, 5);
  const std::vector<std::string> args = {"train",      "--data",
                                         tmp / "data", "--epochs",
                                         "4",          "--hidden",
                                         "8",          "--batch",
                                         "8",          "--lr",
                                         "0.01",       "--threads",
                                         "2",          "--seed",
                                         "4",          "--val",
                                         "30",         "--head-dropout",
                                         "0.3",        "--display-step",
                                         "2",          "--checkpoint-every",
                                         "5",          "--eval-batch",
                                         "32"};
  const CliResult ref = run_cli(args_text(args) + "--out " + quote(tmp / "reference"));
  ASSERT_EQ(ref.code, 0) << ref.err;
  // Killed after its checkpoint of step 15 (mid-epoch), it resumes from there.
  expect_resume_matches(args, tmp.path() / "run", tmp.path() / "reference", SIGKILL, "step 16/",
                        tmp);
}

TEST(TextResumeCli, RefusedResumesLeaveTheRunFolderAsItWas) {
  ScratchDir tmp;
  write_corpus(tmp / "train.tsv", 120, 1);
  write_corpus(tmp / "test.tsv", 20, 2);
  const std::string corpus = slurp(tmp / "train.tsv");
  const fs::path run = tmp.path() / "run";
  const CliResult t = run_cli("train --data " + quote(tmp / "train.tsv") + " --test-data " +
                              quote(tmp / "test.tsv") + " --out " + quote(run) +
                              " --epochs 1 --hidden 4 --embed 4 --batch 16 --threads 1");
  ASSERT_EQ(t.code, 0) << t.err;
  const std::string resume = "train --resume " + quote(run);
  auto unchanged = [&](const std::map<std::string, std::string>& before) {
    return snapshot(run) == before;
  };

  // A finished run.
  auto before = snapshot(run);
  EXPECT_TRUE(fails_with(run_cli(resume), run.string() + " is a finished run"));
  EXPECT_TRUE(unchanged(before));

  // Without its summary the run looks stopped after its last checkpoint; its data must not
  // have changed since. New words: another vocabulary.
  fs::remove(run / "summary.json");
  before = snapshot(run);
  std::ofstream(tmp / "train.tsv", std::ios::app) << "1\tzebra zebra zebra\n0\tthe zebra\n";
  CliResult r = run_cli(resume);
  EXPECT_TRUE(fails_with(r, (tmp / "train.tsv") + ": its vocabulary differs from the one in " +
                                (run / "resume.safetensors").string()));
  EXPECT_TRUE(unchanged(before));
  // The same words, one label flipped: the same vocabulary, other data.
  std::string flipped = corpus;
  flipped[0] = flipped[0] == '0' ? '1' : '0';
  std::ofstream(tmp / "train.tsv", std::ios::trunc) << flipped;
  r = run_cli(resume);
  EXPECT_TRUE(fails_with(r, (tmp / "train.tsv") + ": differs from the data")) << r.err;
  EXPECT_TRUE(unchanged(before));
  std::ofstream(tmp / "train.tsv", std::ios::trunc) << corpus;

  // --resume takes the run's own config.
  std::ofstream(tmp / "other.toml") << "hidden = 8\n";
  EXPECT_TRUE(fails_with(run_cli(resume + " --config " + quote(tmp / "other.toml")),
                         "do not give --config too"));
  EXPECT_TRUE(unchanged(before));

  // A damaged checkpoint (a flipped byte at its end, in the tensors), then none at all.
  const std::string good = slurp(run / "resume.safetensors");
  std::string bad = good;
  bad[bad.size() - 5] ^= 0x40;
  std::ofstream(run / "resume.safetensors", std::ios::binary | std::ios::trunc) << bad;
  before = snapshot(run);
  EXPECT_TRUE(fails_with(run_cli(resume), (run / "resume.safetensors").string()));
  EXPECT_TRUE(unchanged(before));
  fs::remove(run / "resume.safetensors");
  before = snapshot(run);
  EXPECT_TRUE(
      fails_with(run_cli(resume), (run / "resume.safetensors").string() + " does not exist"));
  EXPECT_TRUE(unchanged(before));

  // With its checkpoint back, the run resumes at its last step: it only tests and finishes,
  // its model untouched.
  std::ofstream(run / "resume.safetensors", std::ios::binary | std::ios::trunc) << good;
  const std::string last = slurp(run / "last.safetensors");
  r = run_cli(resume);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(run / "summary.json"));
  EXPECT_EQ(slurp(run / "last.safetensors"), last);
}

}  // namespace
}  // namespace recur_cli_test
