// Helpers shared by the data fetchers (fetch.cpp for MNIST, fetch_imdb.cpp): a scratch folder
// inside the target folder, finding a program on PATH, running it through fork/exec with an
// argument vector (never a shell), and the last line it wrote, for error messages.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace recur::fetch_detail {

// A scratch folder inside `parent` (same file system, so a verified file can be renamed into
// place), removed with everything in it on every exit path.
class ScratchDir {
 public:
  explicit ScratchDir(const std::filesystem::path& parent);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The absolute path of the executable `name` on PATH, or empty.
std::string find_program(const std::string& name);

// Runs `program` (an absolute path) with `args` in `cwd`, stdin from /dev/null, stdout and
// stderr into `log_path`. Returns the exit status (128 + signal when killed, 127 when it could
// not start).
int run_program(const std::string& program, const std::vector<std::string>& args,
                const std::filesystem::path& cwd, const std::filesystem::path& log_path);

// ": <the last non-empty line of log_path>" (at most 200 characters), or empty.
std::string last_line(const std::filesystem::path& log_path);

// The one *.tgz that `npm pack` left in `folder`, or empty.
std::filesystem::path find_tgz(const std::filesystem::path& folder);

}  // namespace recur::fetch_detail
