#include "recur/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "recur/error.hpp"

namespace recur {

namespace {

// write_file_atomic's temporary files are ".NAME" + kTempMark + six characters from mkstemp.
constexpr char kTempMark[] = ".tmp-";
constexpr std::size_t kTempMarkLength = sizeof(kTempMark) - 1;

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(path, "folder " + dir.string() + " does not exist");
  if (fs::is_directory(target, ec)) throw Error(path, "is a folder, not a file");

  std::string tmp_name(".");
  tmp_name.append(target.filename().string()).append(kTempMark).append("XXXXXX");
  std::string tmp = (dir / tmp_name).string();
  int fd = mkstemp(tmp.data());
  if (fd < 0)
    throw Error(path, "cannot create a file in " + dir.string() + ": " + errno_text(errno));
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(path, what + ": " + errno_text(err));
  };
  for (const ByteSpan& piece : pieces) {
    const char* p = static_cast<const char*>(piece.data);
    std::size_t left = piece.size;
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write failed");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  if (::fchmod(fd, 0644) != 0) fail("cannot set permissions");
  if (::fsync(fd) != 0) fail("flush to disk failed");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path, "close failed: " + errno_text(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path, "rename failed: " + errno_text(err));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  write_file_atomic(path, std::vector<ByteSpan>{{data, size}});
}

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::size_t at = name.rfind(kTempMark);
    const bool ours = name[0] == '.' && at != std::string::npos && at > 1 &&
                      name.size() - at == kTempMarkLength + 6 &&
                      std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + kTempMarkLength),
                                  name.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
    std::error_code ec2;
    if (ours && it->is_regular_file(ec2) && fs::remove(it->path(), ec2)) ++removed;
  }
  return removed;
}

std::string read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path, "no such file");
  if (fs::is_directory(path, ec)) throw Error(path, "is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open: " + errno_text(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path, "read failed");
  return ss.str();
}

}  // namespace recur
