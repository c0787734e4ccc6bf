// IDX loading: crafted good and bad files, written at test time into a scratch folder.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "recur/data.hpp"
#include "recur/error.hpp"

namespace {

namespace fs = std::filesystem;

class ScratchFolder {
 public:
  ScratchFolder() {
    std::string pattern = (fs::temp_directory_path() / "recur-idx-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

std::string idx_header(std::uint8_t type, const std::vector<std::uint32_t>& dims) {
  std::string out = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims) put_u32(out, d);
  return out;
}

std::uint8_t pixel_value(int image, int k) {
  return static_cast<std::uint8_t>(image * 31 + k * 7);
}

std::string images_bytes(int count, int rows, int cols) {
  std::string out =
      idx_header(0x08, {std::uint32_t(count), std::uint32_t(rows), std::uint32_t(cols)});
  for (int i = 0; i < count; ++i) {
    for (int k = 0; k < rows * cols; ++k) out.push_back(static_cast<char>(pixel_value(i, k)));
  }
  return out;
}

std::string labels_bytes(const std::vector<int>& labels) {
  std::string out = idx_header(0x08, {std::uint32_t(labels.size())});
  for (int l : labels) out.push_back(static_cast<char>(l));
  return out;
}

std::string gzip_bytes(const std::string& raw) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int ret = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (ret != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Runs `load` and checks it throws recur::Error about `subject` whose message holds `needle`.
void expect_error(const std::function<void()>& load, const std::string& subject,
                  const std::string& needle) {
  try {
    load();
    ADD_FAILURE() << "expected recur::Error containing '" << needle << "'";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), subject) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

// A folder holding a good crafted pair: 3 images of 4x5, labels 7 0 9.
struct CraftedPair {
  ScratchFolder dir;
  std::string images = dir.file("images-idx3-ubyte");
  std::string labels = dir.file("labels-idx1-ubyte");
  CraftedPair() {
    write_bytes(images, images_bytes(3, 4, 5));
    write_bytes(labels, labels_bytes({7, 0, 9}));
  }
};

// A bad images file next to good labels for 3 images.
void expect_bad_images(const std::string& bytes, const std::string& needle) {
  CraftedPair pair;
  write_bytes(pair.images, bytes);
  expect_error([&] { recur::load_idx(pair.images, pair.labels); }, pair.images, needle);
}

// Good images (3 of 4x5) next to bad labels.
void expect_bad_labels(const std::string& bytes, const std::string& needle, int classes = 10) {
  CraftedPair pair;
  write_bytes(pair.labels, bytes);
  expect_error([&] { recur::load_idx(pair.images, pair.labels, classes); }, pair.labels, needle);
}

TEST(Idx, LoadsCraftedPair) {
  CraftedPair pair;
  const recur::ImageSet set = recur::load_idx(pair.images, pair.labels);
  EXPECT_EQ(set.source, pair.images);
  EXPECT_EQ(set.count, 3);
  EXPECT_EQ(set.rows, 4);
  EXPECT_EQ(set.cols, 5);
  EXPECT_EQ(set.num_classes, 10);
  ASSERT_EQ(set.pixels.size(), 60u);
  EXPECT_EQ(set.labels, (std::vector<std::int32_t>{7, 0, 9}));
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 20; ++k) ASSERT_EQ(set.image(i)[k], pixel_value(i, k)) << i << " " << k;
  }
}

TEST(IdxGzip, EqualsRaw) {
  CraftedPair pair;
  const std::string images_gz = pair.dir.file("images.bin");  // detected by content, not name
  const std::string labels_gz = pair.dir.file("labels.gz");
  write_bytes(images_gz, gzip_bytes(images_bytes(3, 4, 5)));
  write_bytes(labels_gz, gzip_bytes(labels_bytes({7, 0, 9})));
  const recur::ImageSet raw = recur::load_idx(pair.images, pair.labels);
  const recur::ImageSet gz = recur::load_idx(images_gz, labels_gz);
  EXPECT_EQ(gz.count, raw.count);
  EXPECT_EQ(gz.rows, raw.rows);
  EXPECT_EQ(gz.cols, raw.cols);
  EXPECT_EQ(gz.pixels, raw.pixels);
  EXPECT_EQ(gz.labels, raw.labels);
  EXPECT_EQ(gz.source, images_gz);
}

TEST(IdxGzip, LargerThanOneChunkEqualsRaw) {
  // 3000 images of 28x28 = 2.35 MB: more than the decoder's internal chunks.
  ScratchFolder dir;
  std::vector<int> labels(3000);
  for (int i = 0; i < 3000; ++i) labels[i] = i % 10;
  write_bytes(dir.file("i"), images_bytes(3000, 28, 28));
  write_bytes(dir.file("l"), labels_bytes(labels));
  write_bytes(dir.file("i.gz"), gzip_bytes(images_bytes(3000, 28, 28)));
  write_bytes(dir.file("l.gz"), gzip_bytes(labels_bytes(labels)));
  const recur::ImageSet raw = recur::load_idx(dir.file("i"), dir.file("l"));
  const recur::ImageSet gz = recur::load_idx(dir.file("i.gz"), dir.file("l.gz"));
  EXPECT_EQ(gz.count, 3000);
  EXPECT_EQ(gz.pixels, raw.pixels);
  EXPECT_EQ(gz.labels, raw.labels);
}

TEST(IdxGzip, ConcatenatedMembersAreOneStream) {
  CraftedPair pair;
  const std::string bytes = images_bytes(3, 4, 5);
  const std::string gz = pair.dir.file("images.gz");
  write_bytes(gz, gzip_bytes(bytes.substr(0, 25)) + gzip_bytes(bytes.substr(25)));
  const recur::ImageSet set = recur::load_idx(gz, pair.labels);
  EXPECT_EQ(set.pixels, recur::load_idx(pair.images, pair.labels).pixels);
}

TEST(IdxBad, TruncatedHeader) {
  expect_bad_images(images_bytes(3, 4, 5).substr(0, 10), "truncated header");
}

TEST(IdxBad, TruncatedHeaderShorterThanMagic) {
  expect_bad_labels(std::string("\0\0", 2), "truncated header: the file holds 2 bytes");
}

TEST(IdxBad, TruncatedData) {
  const std::string bytes = images_bytes(3, 4, 5);
  expect_bad_images(bytes.substr(0, bytes.size() - 1),
                    "truncated data: the header declares 3 images of 4x5 (60 bytes) but only 59");
}

TEST(IdxBad, TruncatedDataGzip) {
  const std::string bytes = images_bytes(3, 4, 5);
  expect_bad_images(gzip_bytes(bytes.substr(0, bytes.size() - 7)),
                    "truncated data: the header declares 3 images of 4x5 (60 bytes) but only 53 "
                    "bytes of decompressed data");
}

TEST(IdxBad, WrongMagic) {
  std::string bytes = images_bytes(3, 4, 5);
  bytes[0] = 'P';
  bytes[1] = 'K';
  expect_bad_images(bytes, "bad magic number 0x50 0x4b");
}

TEST(IdxBad, WrongElementType) {
  std::string bytes = images_bytes(3, 4, 5);
  bytes[2] = 0x0D;
  expect_bad_images(bytes, "element type 0x0d (float) is not supported");
}

TEST(IdxBad, WrongDimensionCountForImages) {
  expect_bad_images(idx_header(0x08, {3, 20}) + std::string(60, 'x'),
                    "wrong number of dimensions: 2, an images file has 3");
}

TEST(IdxBad, WrongDimensionCountForLabels) {
  expect_bad_labels(idx_header(0x08, {3, 1, 1}) + std::string(3, '\1'),
                    "wrong number of dimensions: 3, a labels file has 1");
}

TEST(IdxBad, ZeroDimension) {
  expect_bad_images(idx_header(0x08, {3, 0, 5}), "dimension 1 of 3 is zero");
}

TEST(IdxBad, ZeroCountLabels) {
  expect_bad_labels(idx_header(0x08, {0}), "dimension 0 of 1 is zero");
}

TEST(IdxBad, HugeDimensionsRawDoNotAllocate) {
  // 10^12 images' worth of bytes claimed by a 76-byte file: rejected before any allocation
  // (an attempt would throw std::bad_alloc, not recur::Error).
  expect_bad_images(idx_header(0x08, {1000000000u, 1000, 1000}) + std::string(60, 'x'),
                    "1000000000 images of 1000x1000 (1000000000000000 bytes) but only 60 bytes");
}

TEST(IdxBad, HugeDimensionsGzipDoNotAllocate) {
  // A gzip file claiming 4294967295 images of 28x28 (3.4 TB): bounded by the decoded bytes.
  expect_bad_images(gzip_bytes(idx_header(0x08, {4294967295u, 28, 28}) + std::string(5000, 'x')),
                    "truncated data: the header declares 4294967295 images of 28x28 "
                    "(3367254359280 bytes) but only 5000 bytes of decompressed data");
}

TEST(IdxBad, DimensionsOverflowing64Bits) {
  expect_bad_images(idx_header(0x08, {4294967295u, 4294967295u, 4294967295u}) + "x",
                    "(more than 2^64 bytes) but only 1 bytes");
}

TEST(IdxBad, LabelOutOfRange) {
  expect_bad_labels(labels_bytes({1, 2, 10}), "label 10 at index 2 is out of range for 10 classes");
}

TEST(IdxBad, LabelOutOfRangeForFewerClasses) {
  expect_bad_labels(labels_bytes({1, 2, 3}), "label 3 at index 2 is out of range for 3 classes", 3);
}

TEST(IdxBad, CountMismatch) {
  expect_bad_labels(labels_bytes({1, 2, 3, 4}), "count mismatch: 4 labels but");
}

TEST(IdxBad, GzipGarbage) {
  std::string bytes = "\x1f\x8b";
  for (int i = 0; i < 200; ++i) bytes.push_back(static_cast<char>(i * 101 + 7));
  expect_bad_images(bytes, "corrupt gzip data");
}

TEST(IdxBad, GzipCutShort) {
  const std::string gz = gzip_bytes(images_bytes(3, 4, 5));
  expect_bad_images(gz.substr(0, gz.size() - 6), "truncated gzip stream");
}

TEST(IdxBad, GarbageAfterGzipStream) {
  expect_bad_images(gzip_bytes(images_bytes(3, 4, 5)) + "junk",
                    "trailing bytes after the end of the gzip stream");
}

TEST(IdxBad, EmptyFile) {
  expect_bad_images("", "empty file (0 bytes)");
}

TEST(IdxBad, DirectoryInsteadOfFile) {
  CraftedPair pair;
  const std::string folder = pair.dir.file("folder");
  fs::create_directory(folder);
  expect_error([&] { recur::load_idx(folder, pair.labels); }, folder, "is a folder, not a file");
}

TEST(IdxBad, MissingFile) {
  CraftedPair pair;
  const std::string missing = pair.dir.file("no-such-labels");
  expect_error([&] { recur::load_idx(pair.images, missing); }, missing, "no such file");
}

TEST(IdxBad, TrailingBytes) {
  expect_bad_images(images_bytes(3, 4, 5) + "abc",
                    "trailing bytes: 3 bytes follow the 3 images of 4x5 (60 bytes)");
}

TEST(IdxBad, TrailingBytesGzip) {
  expect_bad_labels(gzip_bytes(labels_bytes({1, 2, 3}) + "z"),
                    "trailing bytes: the decompressed data is longer than the 3 labels (3 bytes)");
}

TEST(IdxBad, NumClassesOutOfRange) {
  CraftedPair pair;
  expect_error([&] { recur::load_idx(pair.images, pair.labels, 0); }, "num_classes",
               "must be in [1, 256]");
}

TEST(Idx, LoadMnistAcceptsDottedAndGzipNames) {
  ScratchFolder dir;
  write_bytes(dir.file("train-images.idx3-ubyte.gz"), gzip_bytes(images_bytes(3, 28, 28)));
  write_bytes(dir.file("train-labels-idx1-ubyte"), labels_bytes({5, 0, 4}));
  write_bytes(dir.file("t10k-images-idx3-ubyte.gz"), gzip_bytes(images_bytes(2, 28, 28)));
  write_bytes(dir.file("t10k-labels.idx1-ubyte"), labels_bytes({7, 2}));
  const recur::ImageSet train = recur::load_mnist(dir.path().string(), true);
  const recur::ImageSet test = recur::load_mnist(dir.path().string(), false);
  EXPECT_EQ(train.count, 3);
  EXPECT_EQ(train.source, dir.file("train-images.idx3-ubyte.gz"));
  EXPECT_EQ(train.labels, (std::vector<std::int32_t>{5, 0, 4}));
  EXPECT_EQ(test.count, 2);
  EXPECT_EQ(test.labels, (std::vector<std::int32_t>{7, 2}));
}

TEST(Idx, LoadMnistNamesFolderAndMissingFile) {
  ScratchFolder dir;
  write_bytes(dir.file("t10k-images-idx3-ubyte"), images_bytes(2, 28, 28));
  const std::string folder = dir.path().string();
  expect_error([&] { recur::load_mnist(folder, false); }, folder, "missing t10k-labels-idx1-ubyte");
  expect_error([&] { recur::load_mnist(folder + "/nope", true); }, folder + "/nope",
               "no such folder (run `recur data fetch mnist");
}

}  // namespace
