// The fetchers' shared helpers (see fetch_util.hpp).
#include "data/fetch_util.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "recur/error.hpp"
#include "recur/fs.hpp"

namespace recur::fetch_detail {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const fs::path& parent) {
  // Absolute, because programs run inside it (a relative path would resolve twice).
  std::string pattern = (fs::absolute(parent) / ".recur-fetch-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(parent.string(),
                std::string("cannot create a temporary folder: ") + std::strerror(errno));
  }
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string find_program(const std::string& name) {
  const char* path_env = std::getenv("PATH");
  if (path_env == nullptr) return {};
  std::string dirs = path_env;
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate))
      return fs::absolute(candidate).string();  // run_program changes the working folder
    start = end + 1;
  }
  return {};
}

int run_program(const std::string& program, const std::vector<std::string>& args,
                const fs::path& cwd, const fs::path& log_path) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string cwd_s = cwd.string();
  const std::string log_s = log_path.string();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(program, std::string("cannot start: ") + std::strerror(errno));
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    if (::chdir(cwd_s.c_str()) != 0) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(program, std::string("wait failed: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 127;
}

std::string last_line(const fs::path& log_path) {
  std::string text;
  try {
    text = read_file(log_path.string());
  } catch (const Error&) {
    return {};
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  const std::size_t nl = text.find_last_of('\n');
  std::string line = nl == std::string::npos ? text : text.substr(nl + 1);
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line.empty() ? std::string() : ": " + line;
}

fs::path find_tgz(const fs::path& folder) {
  fs::path archive;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.path().extension() == ".tgz") archive = entry.path();
  }
  return archive;
}

}  // namespace recur::fetch_detail
