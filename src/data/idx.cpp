// IDX files (the MNIST format): a 4-byte magic (0x00 0x00 type ndim), ndim big-endian uint32
// dimensions, then the elements. Raw or gzip; gzip is inflated incrementally so that memory
// follows the bytes actually decoded, never what a header claims.
#include <sys/stat.h>
#include <zlib.h>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <limits>

#include "recur/data.hpp"
#include "recur/error.hpp"

namespace recur {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

constexpr std::size_t kChunk = std::size_t{1} << 20;
// Deflate cannot expand input by more than about 1032:1, so a gzip file of n bytes never
// decodes to more than this many bytes; used to bound up-front reservations.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

class FileHandle {
 public:
  FileHandle(const std::string& path, int flags) : fd_(::open(path.c_str(), flags | O_CLOEXEC)) {}
  ~FileHandle() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to n bytes at the file position; fewer only at the end of the file.
std::size_t read_up_to(int fd, std::uint8_t* dst, std::size_t n, const std::string& path) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::read(fd, dst + done, std::min(n - done, std::size_t{1} << 30));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(path, "read failed: " + errno_text(errno));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

// The decoded bytes of one file, read front to back: the file itself, or its gzip content.
class DecodedStream {
 public:
  DecodedStream(const std::string& path, int fd, std::uint64_t file_size, bool gzip)
      : path_(path), fd_(fd), file_size_(file_size), gzip_(gzip) {
    if (!gzip_) return;
    input_.resize(64 * 1024);
    zs_.zalloc = Z_NULL;
    zs_.zfree = Z_NULL;
    zs_.opaque = Z_NULL;
    zs_.next_in = input_.data();
    zs_.avail_in = 0;
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw Error(path_, "cannot start gzip decoder");
    inflating_ = true;
  }
  ~DecodedStream() {
    if (inflating_) inflateEnd(&zs_);
  }
  DecodedStream(const DecodedStream&) = delete;
  DecodedStream& operator=(const DecodedStream&) = delete;

  bool gzip() const { return gzip_; }
  std::uint64_t file_size() const { return file_size_; }
  // What the bytes are called in messages.
  const char* noun() const { return gzip_ ? "the decompressed data" : "the file"; }

  // Reads up to n bytes; fewer only at the end of the data.
  std::size_t read(std::uint8_t* dst, std::size_t n) {
    if (!gzip_) return read_up_to(fd_, dst, n, path_);
    std::size_t produced = 0;
    while (produced < n) {
      if (zs_.avail_in < 2 && !input_eof_) refill();
      if (member_ended_) {
        if (zs_.avail_in == 0) return produced;
        // Another gzip member may follow (concatenated .gz files); anything else is garbage.
        if (zs_.avail_in < 2 || zs_.next_in[0] != 0x1f || zs_.next_in[1] != 0x8b) {
          throw Error(path_, "trailing bytes after the end of the gzip stream");
        }
        inflateReset(&zs_);
        member_ended_ = false;
      }
      const std::size_t want = std::min<std::size_t>(n - produced, UINT_MAX);
      zs_.next_out = dst + produced;
      zs_.avail_out = static_cast<uInt>(want);
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      produced += want - zs_.avail_out;
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_BUF_ERROR) {
        // No progress possible: the input ran out (any other cause would loop forever).
        if (input_eof_) {
          throw Error(path_, "truncated gzip stream: the file ends before the gzip trailer");
        }
        if (zs_.avail_in >= 2) throw Error(path_, "corrupt gzip data: the decoder is stuck");
      } else if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) {
        throw Error(path_, std::string("corrupt gzip data: ") +
                               (zs_.msg ? zs_.msg : "invalid deflate stream"));
      } else if (ret == Z_MEM_ERROR) {
        throw Error(path_, "out of memory while decompressing");
      } else if (ret != Z_OK) {
        throw Error(path_, "gzip decoder failed (zlib code " + std::to_string(ret) + ")");
      }
    }
    return produced;
  }

 private:
  void refill() {
    // Keep unread bytes at the front, then fill the rest from the file.
    std::memmove(input_.data(), zs_.next_in, zs_.avail_in);
    const std::size_t kept = zs_.avail_in;
    const std::size_t got = read_up_to(fd_, input_.data() + kept, input_.size() - kept, path_);
    if (got == 0) input_eof_ = true;
    zs_.next_in = input_.data();
    zs_.avail_in = static_cast<uInt>(kept + got);
  }

  const std::string& path_;
  int fd_;
  std::uint64_t file_size_;
  bool gzip_;
  z_stream zs_{};
  bool inflating_ = false;
  bool input_eof_ = false;
  bool member_ended_ = false;
  std::vector<std::uint8_t> input_;
};

std::string hex_byte(std::uint8_t b) {
  static const char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[b >> 4] + kHex[b & 15];
}

std::string element_type_name(std::uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "short";
    case 0x0C:
      return "int";
    case 0x0D:
      return "float";
    case 0x0E:
      return "double";
    default:
      return "unknown";
  }
}

struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

// One IDX file with `want_ndim` dimensions (3 for images, 1 for labels), fully validated.
IdxArray read_idx(const std::string& path, int want_ndim) {
  const bool images = want_ndim == 3;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) throw Error(path, "no such file");
    throw Error(path, "cannot access: " + errno_text(errno));
  }
  if (S_ISDIR(st.st_mode)) throw Error(path, "is a folder, not a file");
  if (!S_ISREG(st.st_mode)) throw Error(path, "is not a regular file");
  if (st.st_size == 0) throw Error(path, "empty file (0 bytes)");
  FileHandle file(path, O_RDONLY);
  if (file.get() < 0) throw Error(path, "cannot open: " + errno_text(errno));

  std::uint8_t lead[2] = {0, 0};
  const bool gzip =
      read_up_to(file.get(), lead, 2, path) == 2 && lead[0] == 0x1f && lead[1] == 0x8b;
  if (::lseek(file.get(), 0, SEEK_SET) != 0) throw Error(path, "cannot seek: " + errno_text(errno));
  DecodedStream in(path, file.get(), static_cast<std::uint64_t>(st.st_size), gzip);

  const std::size_t header_size = 4 + 4 * static_cast<std::size_t>(want_ndim);
  const std::string header_need = "an IDX " + std::string(images ? "images" : "labels") +
                                  " header needs " + std::to_string(header_size) + " bytes";
  std::uint8_t header[16] = {};
  std::size_t got = in.read(header, 4);
  if (got < 4) {
    throw Error(path, "truncated header: " + std::string(in.noun()) + " holds " +
                          std::to_string(got) + " bytes, " + header_need);
  }
  if (header[0] != 0 || header[1] != 0) {
    throw Error(path, "bad magic number " + hex_byte(header[0]) + " " + hex_byte(header[1]) + " " +
                          hex_byte(header[2]) + " " + hex_byte(header[3]) +
                          ": not an IDX file (it must start with two zero bytes)");
  }
  if (header[2] != 0x08) {
    throw Error(path, "element type " + hex_byte(header[2]) + " (" + element_type_name(header[2]) +
                          ") is not supported; only 0x08 (unsigned byte) is");
  }
  if (header[3] != want_ndim) {
    throw Error(path, "wrong number of dimensions: " + std::to_string(header[3]) + ", " +
                          (images ? "an images file has 3 (count, rows, cols)"
                                  : "a labels file has 1 (count)"));
  }
  got += in.read(header + 4, header_size - 4);
  if (got < header_size) {
    throw Error(path, "truncated header: " + std::string(in.noun()) + " holds " +
                          std::to_string(got) + " bytes, " + header_need);
  }

  IdxArray out;
  std::uint64_t total = 1;
  bool overflow = false;
  for (int d = 0; d < want_ndim; ++d) {
    const std::uint8_t* p = header + 4 + 4 * d;
    const std::uint32_t dim = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                              (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    if (dim == 0) {
      throw Error(
          path, "dimension " + std::to_string(d) + " of " + std::to_string(want_ndim) + " is zero");
    }
    out.dims.push_back(dim);
    overflow = overflow || __builtin_mul_overflow(total, std::uint64_t{dim}, &total);
  }
  std::string declared = std::to_string(out.dims[0]) + (images ? " images of " : " labels");
  if (images) declared += std::to_string(out.dims[1]) + "x" + std::to_string(out.dims[2]);
  declared += overflow ? " (more than 2^64 bytes)" : " (" + std::to_string(total) + " bytes)";

  if (!gzip) {
    // The file size is known: check before allocating anything.
    const std::uint64_t after_header = in.file_size() - header_size;
    if (overflow || total > after_header) {
      throw Error(path, "truncated data: the header declares " + declared + " but only " +
                            std::to_string(after_header) + " bytes follow the header");
    }
    if (total < after_header) {
      throw Error(path, "trailing bytes: " + std::to_string(after_header - total) +
                            " bytes follow the " + declared + " the header declares");
    }
    out.data.resize(total);
    const std::size_t read = in.read(out.data.data(), total);
    if (read < total) {
      throw Error(path, "truncated data: the file shrank while being read (" +
                            std::to_string(read) + " of " + std::to_string(total) + " bytes)");
    }
    return out;
  }

  // gzip: grow with the bytes actually decoded.
  if (!overflow) {
    out.data.reserve(std::min<std::uint64_t>(total, in.file_size() * kMaxDeflateRatio));
  }
  const std::uint64_t limit = overflow ? std::numeric_limits<std::uint64_t>::max() : total;
  while (out.data.size() < limit) {
    const std::size_t have = out.data.size();
    const std::size_t step =
        static_cast<std::size_t>(std::min<std::uint64_t>(limit - have, kChunk));
    out.data.resize(have + step);
    const std::size_t read = in.read(out.data.data() + have, step);
    if (read < step) {
      throw Error(path, "truncated data: the header declares " + declared + " but only " +
                            std::to_string(have + read) +
                            " bytes of decompressed data follow the header");
    }
  }
  std::uint8_t probe = 0;
  if (in.read(&probe, 1) != 0) {
    throw Error(path, "trailing bytes: the decompressed data is longer than the " + declared +
                          " the header declares");
  }
  return out;
}

}  // namespace

ImageSet load_idx_images(const std::string& images_path) {
  IdxArray images = read_idx(images_path, 3);
  if (static_cast<std::uint64_t>(images.dims[1]) * images.dims[2] >
      static_cast<std::uint64_t>(INT_MAX)) {
    throw Error(images_path, "image size " + std::to_string(images.dims[1]) + "x" +
                                 std::to_string(images.dims[2]) + " is too large");
  }
  ImageSet set;
  set.source = images_path;
  set.count = images.dims[0];
  set.rows = static_cast<int>(images.dims[1]);
  set.cols = static_cast<int>(images.dims[2]);
  set.pixels = std::move(images.data);
  return set;
}

ImageSet load_idx(const std::string& images_path, const std::string& labels_path, int num_classes) {
  if (num_classes < 1 || num_classes > 256) {
    throw Error("num_classes",
                "must be in [1, 256] for unsigned byte labels, got " + std::to_string(num_classes));
  }
  ImageSet set = load_idx_images(images_path);
  IdxArray labels = read_idx(labels_path, 1);
  if (static_cast<std::uint64_t>(set.count) != labels.dims[0]) {
    throw Error(labels_path, "count mismatch: " + std::to_string(labels.dims[0]) + " labels but " +
                                 images_path + " holds " + std::to_string(set.count) + " images");
  }
  set.num_classes = num_classes;
  set.labels.resize(labels.data.size());
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    const int label = labels.data[i];
    if (label >= num_classes) {
      throw Error(labels_path, "label " + std::to_string(label) + " at index " + std::to_string(i) +
                                   " is out of range for " + std::to_string(num_classes) +
                                   " classes");
    }
    set.labels[i] = label;
  }
  return set;
}

std::string find_mnist_file(const std::string& dir, bool train, const std::string& kind) {
  namespace fs = std::filesystem;
  if (kind != "images" && kind != "labels") {
    throw Error("kind", "unknown MNIST file kind '" + kind + "' (images, labels)");
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    throw Error(dir, "no such folder (run `recur data fetch mnist --data " + dir + "`)");
  }
  if (!fs::is_directory(dir, ec)) throw Error(dir, "is not a folder");
  const std::string prefix = train ? "train" : "t10k";
  const std::string ndim = kind == "images" ? "idx3" : "idx1";
  const std::string dashed = prefix + "-" + kind + "-" + ndim + "-ubyte";
  const std::string dotted = prefix + "-" + kind + "." + ndim + "-ubyte";
  for (const std::string& name : {dashed, dotted, dashed + ".gz", dotted + ".gz"}) {
    const fs::path candidate = fs::path(dir) / name;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  throw Error(dir, "missing " + dashed + " (also looked for " + dotted +
                       " and .gz variants; run `recur data fetch mnist --data " + dir + "`)");
}

ImageSet load_mnist(const std::string& dir, bool train) {
  const std::string images = find_mnist_file(dir, train, "images");
  const std::string labels = find_mnist_file(dir, train, "labels");
  return load_idx(images, labels, 10);
}

}  // namespace recur
