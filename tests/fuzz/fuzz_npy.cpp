// The .npy reader (recur::parse_npy), then load_npy_sequences on what it accepted.
//
// Input: the .npy file. An array that parses must hold exactly count x item_size bytes. When it
// has the rank of a sequence set ([N, T] or [N, T, F]), the harness gives it labels (N zeros,
// int32) and lengths (N ones) and loads it as x through load_npy_sequences (x from a memfd,
// read through /proc/self/fd/N; the other two written by write_npy to tmpfs). An array write_npy
// can write (float32, int32, int64) and of at most 64 KB is written to a tmpfs folder and read back
// unchanged.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/text.hpp"

namespace {

using recur::fuzz::check;

class MemoryFile {
 public:
  explicit MemoryFile(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) recur::fuzz::fail("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  void assign(const void* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) recur::fuzz::fail("ftruncate failed");
    const auto* p = static_cast<const unsigned char*>(data);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, p + done, size - done, static_cast<off_t>(done));
      if (n <= 0) recur::fuzz::fail("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// A scratch folder on tmpfs when there is one (write_npy renames inside its folder), removed
// when the process exits.
class ScratchFolder {
 public:
  ScratchFolder() {
    const std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string pattern = base + "/recur-fuzz-npy-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) recur::fuzz::fail("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string& scratch_folder() {
  static const ScratchFolder folder;
  return folder.path();
}

recur::NpyArray int32_vector(std::int64_t n, std::int32_t value) {
  recur::NpyArray a;
  a.kind = 'i';
  a.item_size = 4;
  a.shape = {n};
  a.data.resize(static_cast<std::size_t>(n) * 4);
  for (std::int64_t i = 0; i < n; ++i) std::memcpy(a.data.data() + 4 * i, &value, 4);
  return a;
}

void check_round_trip(const recur::NpyArray& a) {
  const std::string path = scratch_folder() + "/array.npy";
  recur::write_npy(path, a);
  const recur::NpyArray back = recur::read_npy(path);
  check(back.kind == a.kind && back.item_size == a.item_size && back.shape == a.shape &&
            back.data == a.data,
        "write_npy then read_npy gives the same array");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static MemoryFile x_file("fuzz-npy-x");
  const std::string source = "fuzz.npy";
  recur::NpyArray array;
  const bool parsed = recur::fuzz::returns_or_throws_error(
      {source}, [&] { array = recur::parse_npy(data, size, source); });
  if (!parsed) return 0;
  check(array.count() >= 0, "the element count is not negative");
  check(array.data.size() ==
            static_cast<std::size_t>(array.count()) * static_cast<std::size_t>(array.item_size),
        "data holds count x item_size bytes");
  const bool writable = (array.kind == 'f' && array.item_size == 4) ||
                        (array.kind == 'i' && (array.item_size == 4 || array.item_size == 8));
  if (writable && array.data.size() <= 65536)
    recur::fuzz::must_return([&] { check_round_trip(array); });

  if ((array.shape.size() == 2 || array.shape.size() == 3) && array.shape[0] <= 4096) {
    const std::int64_t n = array.shape[0];
    x_file.assign(data, size);
    const recur::NpyArray labels = int32_vector(n, 0);
    const recur::NpyArray lengths = int32_vector(n, 1);
    const std::string labels_path = scratch_folder() + "/y.npy";
    const std::string lengths_path = scratch_folder() + "/lengths.npy";
    recur::fuzz::must_return([&] {
      recur::write_npy(labels_path, labels);
      recur::write_npy(lengths_path, lengths);
    });
    recur::SequenceSet set;
    const bool loaded = recur::fuzz::returns_or_throws_error(
        {x_file.path(), labels_path, lengths_path},
        [&] { set = recur::load_npy_sequences(x_file.path(), labels_path, lengths_path); });
    if (!loaded) return 0;
    check(set.count == n && set.steps >= 1 && set.features >= 1, "the set has the array's size");
    check(set.x.size() == static_cast<std::size_t>(set.count) * set.steps * set.features,
          "x holds count x steps x features values");
    for (float v : set.x) check(std::isfinite(v), "x values are finite");
    check(set.labels.size() == static_cast<std::size_t>(n), "one label per sequence");
    for (auto len : set.lengths) check(len == 1, "lengths are the ones given");
    check(set.num_classes == 2, "zeros as labels give two classes");
  }
  return 0;
}
