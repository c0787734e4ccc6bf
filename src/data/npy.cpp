// NumPy .npy arrays: reading (header parsed as the small Python literal it is, everything
// checked against the bytes present), writing, and the sequence sets built from them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/text.hpp"

namespace recur {

namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

// The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  void parse(NpyArray& out) {
    bool has_descr = false, has_order = false, has_shape = false;
    skip_space();
    expect('{', "the header is not a Python dict");
    skip_space();
    while (!at('}')) {
      const std::string key = string_literal("a quoted key");
      skip_space();
      expect(':', "':' after the key '" + key + "'");
      skip_space();
      if (key == "descr") {
        if (has_descr) fail("the header repeats 'descr'");
        has_descr = true;
        if (at('[')) fail("structured dtypes (a list in 'descr') are not supported");
        dtype(string_literal("a dtype string for 'descr'"), out);
      } else if (key == "fortran_order") {
        if (has_order) fail("the header repeats 'fortran_order'");
        has_order = true;
        if (word("True")) fail("fortran_order True: only C-order arrays are supported");
        if (!word("False")) fail("'fortran_order' must be True or False");
      } else if (key == "shape") {
        if (has_shape) fail("the header repeats 'shape'");
        has_shape = true;
        shape(out);
      } else {
        fail("the header has an unknown key '" + key + "'");
      }
      skip_space();
      if (at(',')) {
        ++pos_;
        skip_space();
      } else if (!at('}')) {
        fail("the header dict is malformed at character " + std::to_string(pos_));
      }
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("the header has text after its dict");
    if (!has_descr) fail("the header has no 'descr'");
    if (!has_order) fail("the header has no 'fortran_order'");
    if (!has_shape) fail("the header has no 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const { throw Error(source_, reason); }
  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void expect(char c, const std::string& what) {
    if (!at(c)) fail(what.starts_with("the header") ? what : "the header lacks " + what);
    ++pos_;
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  std::string string_literal(const std::string& what) {
    if (!at('\'') && !at('"')) fail("the header lacks " + what);
    const char quote = s_[pos_++];
    const std::size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) fail("the header has an unterminated string");
    std::string value(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    if (value.size() > 64) value = value.substr(0, 64) + "...";
    return value;
  }

  void dtype(const std::string& descr, NpyArray& out) {
    const std::string shown = "dtype '" + descr + "'";
    if (descr.size() < 3) fail("unknown " + shown);
    const char order = descr[0];
    const char kind = descr[1];
    const std::string size_text = descr.substr(2);
    int size = 0;
    if (size_text == "1") size = 1;
    if (size_text == "2") size = 2;
    if (size_text == "4") size = 4;
    if (size_text == "8") size = 8;
    const bool known = (kind == 'b' && size == 1) || ((kind == 'u' || kind == 'i') && size > 0) ||
                       (kind == 'f' && (size == 4 || size == 8));
    if (!known) fail("unsupported " + shown + " (b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)");
    if (order == '>' && size > 1) fail("big-endian " + shown + " is not supported");
    if (order != '<' && order != '|' && order != '>' && order != '=') fail("unknown " + shown);
    out.kind = kind;
    out.item_size = size;
  }

  void shape(NpyArray& out) {
    expect('(', "a tuple for 'shape'");
    out.shape.clear();
    skip_space();
    while (!at(')')) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9')
        fail("'shape' must be a tuple of non-negative integers");
      std::int64_t value = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (value > (std::numeric_limits<std::int64_t>::max() - 9) / 10)
          fail("a dimension in 'shape' is too large");
        value = value * 10 + (s_[pos_++] - '0');
      }
      if (at('L')) ++pos_;  // Python 2 longs
      if (out.shape.size() >= 32) fail("'shape' has more than 32 dimensions");
      out.shape.push_back(value);
      skip_space();
      if (at(',')) {
        ++pos_;
        skip_space();
      } else if (!at(')')) {
        fail("'shape' must be a tuple of non-negative integers");
      }
    }
    ++pos_;
  }

  std::string_view s_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

std::uint32_t read_le(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

std::string dtype_name(const NpyArray& a) {
  if (a.kind == 'b') return "bool";
  const char* base = a.kind == 'f' ? "float" : a.kind == 'u' ? "uint" : "int";
  return base + std::to_string(a.item_size * 8);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Element i of an integer array, widened.
std::int64_t int_at(const NpyArray& a, std::int64_t i) {
  const unsigned char* p = a.data.data() + i * a.item_size;
  if (a.kind == 'u' || a.kind == 'b') {
    std::uint64_t v = 0;
    for (int k = a.item_size - 1; k >= 0; --k) v = v << 8 | p[k];
    return v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
               ? std::numeric_limits<std::int64_t>::max()
               : static_cast<std::int64_t>(v);
  }
  switch (a.item_size) {
    case 1: {
      std::int8_t v;
      std::memcpy(&v, p, 1);
      return v;
    }
    case 2: {
      std::int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case 4: {
      std::int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      std::int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

// A one-dimensional integer array of `n` values, each in [lo, hi].
std::vector<std::int32_t> integer_vector(const NpyArray& a, std::int64_t n, std::int64_t lo,
                                         std::int64_t hi, const char* what) {
  if (a.kind != 'i' && a.kind != 'u')
    throw Error(a.source, std::string(what) + " must be integers, got " + dtype_name(a));
  if (a.shape.size() != 1)
    throw Error(a.source, std::string(what) + " must be one-dimensional [N], got shape " +
                              shape_text(a.shape));
  if (a.shape[0] != n)
    throw Error(a.source, "holds " + std::to_string(a.shape[0]) + " " + what + " but x holds " +
                              std::to_string(n) + " sequences");
  std::vector<std::int32_t> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t v = int_at(a, i);
    if (v < lo || v > hi)
      throw Error(a.source, std::string(what) + "[" + std::to_string(i) +
                                "] = " + std::to_string(v) + " is out of range [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(v);
  }
  return out;
}

}  // namespace

std::int64_t NpyArray::count() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      throw Error(source, "shape " + shape_text(shape) + " is not a valid size");
  }
  return n;
}

NpyArray parse_npy(const unsigned char* bytes, std::size_t size, const std::string& source) {
  if (size == 0) throw Error(source, "empty file");
  if (size < kMagicSize + 2 || std::memcmp(bytes, kMagic, kMagicSize) != 0)
    throw Error(source, "not a .npy file (bad magic)");
  const int major = bytes[6];
  const int minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    throw Error(source, "unsupported .npy format version " + std::to_string(major) + "." +
                            std::to_string(minor) + " (1.0, 2.0, 3.0)");
  const int len_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagicSize + 2 + static_cast<std::size_t>(len_bytes);
  if (size < prefix) throw Error(source, "truncated header");
  const std::size_t header_len = read_le(bytes + kMagicSize + 2, len_bytes);
  if (header_len > size - prefix)
    throw Error(source, "truncated header: it declares " + std::to_string(header_len) +
                            " bytes, the file holds " + std::to_string(size - prefix) +
                            " after the prefix");
  std::string_view header(reinterpret_cast<const char*>(bytes + prefix), header_len);
  // Latin-1 (versions 1, 2) or UTF-8 (3): anything outside ASCII can only be in a key or a
  // dtype name, which the parser refuses anyway.
  NpyArray out;
  out.source = source;
  HeaderParser(header, source).parse(out);
  const std::size_t data_size = size - prefix - header_len;
  // Every product of dimensions (each zero read as one) must fit in a signed 64-bit count of
  // bytes, so that no product a reader forms overflows, even for an empty array.
  std::int64_t bound = out.item_size;
  std::uint64_t count = 1;
  for (std::int64_t d : out.shape) {
    if (__builtin_mul_overflow(bound, std::max<std::int64_t>(d, 1), &bound))
      throw Error(source, "shape " + shape_text(out.shape) + " is too large (size overflow)");
    count *= static_cast<std::uint64_t>(d);
  }
  const auto item = static_cast<std::uint64_t>(out.item_size);
  const std::uint64_t need = count * item;
  if (need > data_size)
    throw Error(source, "truncated data: shape " + shape_text(out.shape) + " of " +
                            dtype_name(out) + " needs " + std::to_string(need) +
                            " bytes, the file holds " + std::to_string(data_size));
  if (need < data_size)
    throw Error(source, "has " + std::to_string(data_size - need) +
                            " trailing bytes after the array's data");
  const unsigned char* data = bytes + prefix + header_len;
  out.data.assign(data, data + need);
  return out;
}

NpyArray read_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_npy(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path);
}

void write_npy(const std::string& path, const NpyArray& array) {
  const bool supported = (array.kind == 'f' && array.item_size == 4) ||
                         (array.kind == 'i' && (array.item_size == 4 || array.item_size == 8));
  if (!supported)
    throw Error(path, "write_npy writes float32, int32 or int64 arrays, not " + dtype_name(array));
  std::int64_t data_bytes = array.item_size;
  for (std::int64_t d : array.shape) {
    if (d < 0) throw Error(path, "negative dimension in shape " + shape_text(array.shape));
    if (__builtin_mul_overflow(data_bytes, d, &data_bytes))
      throw Error(path, "shape " + shape_text(array.shape) + " is too large (size overflow)");
  }
  if (static_cast<std::uint64_t>(data_bytes) != array.data.size())
    throw Error(path, "shape " + shape_text(array.shape) + " of " + dtype_name(array) + " needs " +
                          std::to_string(data_bytes) + " bytes, data holds " +
                          std::to_string(array.data.size()));
  std::string header = "{'descr': '<" + std::string(1, array.kind) +
                       std::to_string(array.item_size) +
                       "', 'fortran_order': False, 'shape': " + shape_text(array.shape) + ", }";
  // Pad with spaces so the data starts at a multiple of 64 bytes, ending in a newline.
  const std::size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  if (header.size() > 0xFFFF) throw Error(path, "header too long for .npy version 1.0");
  std::string bytes(kMagic, kMagicSize);
  bytes.push_back('\x01');
  bytes.push_back('\x00');
  bytes.push_back(static_cast<char>(header.size() & 0xFF));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(array.data.data()), array.data.size());
  write_file_atomic(path, bytes.data(), bytes.size());
}

SequenceSet load_npy_sequences(const std::string& x_path, const std::string& y_path,
                               const std::string& lengths_path) {
  const NpyArray x = read_npy(x_path);
  if (x.kind != 'f' && !(x.kind == 'u' && x.item_size == 1))
    throw Error(x_path, "x must be float32 or uint8, got " + dtype_name(x));
  if (x.kind == 'f' && x.item_size != 4)
    throw Error(x_path, "x must be float32 or uint8, got " + dtype_name(x) +
                            " (convert with x.astype(numpy.float32))");
  if (x.shape.size() != 2 && x.shape.size() != 3)
    throw Error(x_path, "x must be [N, T, F] or [N, T], got shape " + shape_text(x.shape));
  const std::int64_t n = x.shape[0];
  const std::int64_t steps = x.shape[1];
  const std::int64_t features = x.shape.size() == 3 ? x.shape[2] : 1;
  if (n < 1 || steps < 1 || features < 1)
    throw Error(x_path, "x has an empty dimension: shape " + shape_text(x.shape));
  constexpr std::int64_t kMaxSide = std::numeric_limits<int>::max();
  if (steps > kMaxSide || features > kMaxSide)
    throw Error(x_path, "x has too many steps or features: shape " + shape_text(x.shape));

  SequenceSet set;
  set.source = x_path;
  set.count = n;
  set.steps = static_cast<int>(steps);
  set.features = static_cast<int>(features);
  set.labels = y_path.empty() ? std::vector<std::int32_t>(static_cast<std::size_t>(n), 0)
                              : integer_vector(read_npy(y_path), n, 0, 999, "labels");
  if (!lengths_path.empty()) {
    set.lengths = integer_vector(read_npy(lengths_path), n, 1, steps, "lengths");
  } else {
    set.lengths.assign(static_cast<std::size_t>(n), set.steps);
  }
  const std::size_t total = static_cast<std::size_t>(x.count());
  set.x.resize(total);
  if (x.kind == 'u') {
    for (std::size_t i = 0; i < total; ++i) set.x[i] = static_cast<float>(x.data[i]) / 255.f;
  } else {
    std::memcpy(set.x.data(), x.data.data(), total * sizeof(float));
    for (std::size_t i = 0; i < total; ++i) {
      if (!std::isfinite(set.x[i])) {
        const std::size_t per_sample = static_cast<std::size_t>(steps * features);
        const std::size_t sample = i / per_sample;
        const std::size_t t = i % per_sample / static_cast<std::size_t>(features);
        const std::size_t f = i % static_cast<std::size_t>(features);
        throw Error(x_path, std::string("x holds ") +
                                (std::isnan(set.x[i]) ? "a NaN" : "an infinite") + " value at [" +
                                std::to_string(sample) + ", " + std::to_string(t) + ", " +
                                std::to_string(f) + "]");
      }
    }
  }
  std::int32_t max_label = 0;
  for (std::int32_t label : set.labels) max_label = std::max(max_label, label);
  set.num_classes = std::max(2, max_label + 1);
  return set;
}

SequenceSplit load_npy_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir, "no such folder");
  const auto path = [&](const char* name) { return (fs::path(dir) / name).string(); };
  for (const char* name : {"x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"}) {
    if (!fs::is_regular_file(path(name), ec))
      throw Error(dir, std::string("missing ") + name +
                           " (a folder of arrays holds x_train.npy, y_train.npy, x_test.npy, "
                           "y_test.npy and optionally lengths_train.npy, lengths_test.npy)");
  }
  const auto optional = [&](const char* name) {
    return fs::exists(path(name), ec) ? path(name) : std::string();
  };
  SequenceSplit split;
  split.train =
      load_npy_sequences(path("x_train.npy"), path("y_train.npy"), optional("lengths_train.npy"));
  split.test =
      load_npy_sequences(path("x_test.npy"), path("y_test.npy"), optional("lengths_test.npy"));
  if (split.test.features != split.train.features)
    throw Error(path("x_test.npy"), "has " + std::to_string(split.test.features) +
                                        " features per step, x_train.npy has " +
                                        std::to_string(split.train.features));
  const int classes = std::max(split.train.num_classes, split.test.num_classes);
  split.train.num_classes = split.test.num_classes = classes;
  return split;
}

bool is_npy_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(fs::path(dir) / "x_train.npy", ec);
}

}  // namespace recur
