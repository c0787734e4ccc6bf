// Helpers of the command-line tests: run the recur binary and capture what it says, fresh
// scratch folders, and one small trained model shared by every test (and every test process).
#pragma once

#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "recur/safetensors.hpp"

namespace recur_cli_test {

namespace fs = std::filesystem;

inline const std::string kMnistDir = RECUR_DATA_DIR "/mnist";

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string quote(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// All test scratch space lives in the build tree, beside the binary.
inline fs::path work_root() {
  const fs::path root = fs::path(RECUR_CLI_PATH).parent_path() / "cli-test-work";
  fs::create_directories(root);
  return root;
}

// Runs `recur ARGS` (ARGS already shell-quoted where needed); stdout and stderr apart.
inline CliResult run_cli(const std::string& args) {
  static int calls = 0;
  const fs::path err_file = work_root() / (std::string("stderr-") + std::to_string(::getpid()) +
                                           "-" + std::to_string(++calls));
  const std::string command =
      quote(RECUR_CLI_PATH) + " " + args + " 2>" + quote(err_file.string()) + " </dev/null";
  CliResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err_file);
  std::error_code ec;
  fs::remove(err_file, ec);
  return r;
}

// What a failing command must look like: exit code 2 and exactly one line on stderr,
// "recur: error: ..." holding `part`.
inline ::testing::AssertionResult fails_with(const CliResult& r, const std::string& part) {
  if (r.code != 2)
    return ::testing::AssertionFailure() << "exit code " << r.code << ", stderr: " << r.err;
  if (r.err.rfind("recur: error: ", 0) != 0)
    return ::testing::AssertionFailure()
           << "stderr does not start with 'recur: error: ': " << r.err;
  if (r.err.find('\n') != r.err.size() - 1)
    return ::testing::AssertionFailure() << "stderr is not one line: " << r.err;
  if (!contains(r.err, part))
    return ::testing::AssertionFailure() << "stderr lacks '" << part << "': " << r.err;
  return ::testing::AssertionSuccess();
}

// A fresh, empty folder for one test; removed afterwards unless the test failed.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
    path_ = work_root() / (name + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// A valid safetensors file that is not a recur model: one tensor, no model config.
inline std::string write_foreign_safetensors(const fs::path& path) {
  const float values[3] = {1, 2, 3};
  recur::write_safetensors(path.string(), {{"weights", recur::DType::F32, {3}, values}}, {});
  return path.string();
}

// The short training run every eval/predict/inspect test reads.
inline const char* const kSharedTrainArgs =
    "--steps 40 --val 500 --train-limit 4000 --hidden 32 --batch 64 --eval-batch 500 "
    "--display-step 10";

struct SharedRun {
  fs::path dir;     // the run folder
  std::string log;  // what train printed on stdout
  std::string model() const { return (dir / "best.safetensors").string(); }
};

// Trains once per build of the binary: the folder's name carries the binary's size and time,
// a lock file serializes test processes started in parallel, and a finished run (its log
// written after training succeeded) is reused.
inline const SharedRun& shared_run() {
  static SharedRun run = [] {
    struct stat st {};
    ::stat(RECUR_CLI_PATH, &st);
    const std::string key = std::to_string(st.st_size) + "-" + std::to_string(st.st_mtim.tv_sec) +
                            "-" + std::to_string(st.st_mtim.tv_nsec);
    const fs::path root = work_root();
    SharedRun r;
    r.dir = root / ("shared-run-" + key);
    const fs::path log = root / ("shared-run-" + key + ".log");
    const int lock = ::open((root / "shared-run.lock").c_str(), O_CREAT | O_RDWR, 0644);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    if (!fs::exists(log)) {
      for (const auto& entry : fs::directory_iterator(root))
        if (entry.path().filename().string().rfind("shared-run-", 0) == 0)
          fs::remove_all(entry.path());
      const CliResult t = run_cli("train --data " + quote(kMnistDir) + " " + kSharedTrainArgs +
                                  " --out " + quote(r.dir.string()));
      if (t.code == 0) {
        std::ofstream(log, std::ios::binary) << t.out;
      } else {
        ADD_FAILURE() << "shared training run failed (" << t.code << "): " << t.err;
      }
    }
    r.log = slurp(log);
    if (lock >= 0) ::close(lock);
    return r;
  }();
  return run;
}

}  // namespace recur_cli_test
