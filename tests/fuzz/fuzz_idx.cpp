// The IDX reader (recur::load_idx) on an images file and a labels file made of the input, raw or
// gzip, then the sequence views over what it loaded.
//
// Input: byte 0 = num_classes - 1, byte 1 = the view (rows, cols, pixels, permuted), bytes 2..5 =
// little-endian length of the images file (clamped to what is left); the images bytes follow,
// and the rest is the labels file.
//
// load_idx reads paths, so both files are memory-backed (memfd) and read through
// /proc/self/fd/N: no disk traffic, and the reader still sees regular files with a size.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/data.hpp"

namespace {

class MemoryFile {
 public:
  explicit MemoryFile(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
    if (fd_ < 0) recur::fuzz::fail("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  void assign(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) recur::fuzz::fail("ftruncate failed");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) recur::fuzz::fail("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

std::uint32_t read_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

void check_set(const recur::ImageSet& set, int num_classes) {
  using recur::fuzz::check;
  check(set.count > 0 && set.rows > 0 && set.cols > 0, "a loaded set has no zero dimension");
  check(set.pixels.size() ==
            static_cast<std::size_t>(set.count) * static_cast<std::size_t>(set.rows) * set.cols,
        "pixels hold count * rows * cols bytes");
  check(set.labels.size() == static_cast<std::size_t>(set.count), "one label per image");
  check(set.num_classes == num_classes, "num_classes is the one asked for");
  for (std::int32_t label : set.labels)
    check(label >= 0 && label < num_classes, "every label is in [0, num_classes)");
}

// What training does with a loaded set: a view over a batch of its images.
void fill_batch(const recur::ImageSet& set, recur::ViewKind kind) {
  const auto view = recur::SequenceView::make(kind, set.rows, set.cols, /*seed=*/7);
  const int batch = static_cast<int>(std::min<std::int64_t>(set.count, 3));
  std::vector<std::int64_t> indices;
  for (int b = 0; b < batch; ++b) indices.push_back(set.count - 1 - b);
  std::vector<float> x(static_cast<std::size_t>(view.steps()) * batch * view.features());
  view.fill(set, indices.data(), batch, x.data());
  for (float v : x) recur::fuzz::check(v >= 0.f && v <= 1.f, "view values are pixels / 255");
  std::vector<std::int32_t> y(batch);
  view.fill_labels(set, indices.data(), batch, y.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static MemoryFile images("fuzz-idx-images");
  static MemoryFile labels("fuzz-idx-labels");
  if (size < 6) return -1;  // not even the harness's own header: not worth keeping
  const int num_classes = data[0] + 1;
  const auto kind = static_cast<recur::ViewKind>(data[1] % 4);
  const std::size_t images_size = std::min<std::size_t>(read_le32(data + 2), size - 6);
  images.assign(data + 6, images_size);
  labels.assign(data + 6 + images_size, size - 6 - images_size);

  recur::ImageSet set;
  const bool loaded = recur::fuzz::returns_or_throws_error({images.path(), labels.path()}, [&] {
    set = recur::load_idx(images.path(), labels.path(), num_classes);
  });
  if (!loaded) return 0;
  check_set(set, num_classes);
  // The view is made from the set's own size: nothing in it may be refused.
  recur::fuzz::must_return([&] { fill_batch(set, kind); });
  return 0;
}
