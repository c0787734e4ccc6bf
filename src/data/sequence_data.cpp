// The data-source factory for text and .npy arrays (recur/sources.hpp): which --data values
// name them, and the train and test batch sources with the metadata a checkpoint keeps of them.
#include <fmt/format.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "recur/error.hpp"
#include "recur/sha256.hpp"
#include "recur/sources.hpp"

namespace recur {

std::string resolve_data_path(const std::string& data) {
  return data == "imdb" ? "data/imdb" : data;
}

bool is_sequence_data(const std::string& data) {
  if (data == "imdb") return true;
  const std::string path = resolve_data_path(data);
  return is_npy_folder(path) || is_text_data(path);
}

namespace {

SequenceData open_arrays(const std::string& path) {
  SequenceData d;
  auto split = std::make_shared<SequenceSplit>(load_npy_folder(path));
  auto tr = std::shared_ptr<const SequenceSet>(split, &split->train);
  auto te = std::shared_ptr<const SequenceSet>(split, &split->test);
  RECUR_CHECK(tr->features == te->features, path,
              fmt::format("x_train has {} features per step but x_test has {}", tr->features,
                          te->features));
  d.train = std::make_shared<ArraySequences>(tr);
  d.test = std::make_shared<ArraySequences>(te);
  d.input = ActShape{ActKind::sequence, tr->features};
  d.num_classes = std::max(tr->num_classes, te->num_classes);
  d.metadata["recur.train_data"] = nlohmann::json{
      {"kind", "arrays"},
      {"train", tr->count},
      {"test", te->count},
      {"steps", tr->steps},
      {"features", tr->features}}.dump();
  d.title = "recur " + std::filesystem::path(path).filename().string();
  return d;
}

// The test side of a text run, tokenized when first read: a training run reads it once, after
// its last step, so its token ids (IMDb: 12 MB) are not held through training. The texts are read
// again then from the same files and split the same way; the split's size and classes must not
// have changed.
class DeferredTestTexts final : public SequenceSource {
 public:
  DeferredTestTexts(std::string path, TextSettings settings, Vocabulary vocab, std::int64_t count,
                    int classes)
      : path_(std::move(path)),
        settings_(std::move(settings)),
        vocab_(std::move(vocab)),
        count_(count),
        classes_(classes) {}
  std::int64_t size() const override { return count_; }
  int length(std::int64_t i) const override { return texts().length(i); }
  std::int32_t label(std::int64_t i) const override { return texts().label(i); }
  int num_classes() const override { return classes_; }
  ActShape input_shape() const override { return texts().input_shape(); }
  int max_length() const override { return texts().max_length(); }
  void fill(const std::int64_t* idx, int n, const SeqInfo& seq, std::int32_t* ids,
            float* x) const override {
    texts().fill(idx, n, seq, ids, x);
  }

 private:
  const TokenSequences& texts() const {
    std::call_once(once_, [this] {
      const TextSplit split = load_text_splits(path_, settings_.test_data);
      const std::string where = settings_.test_data.empty() ? path_ : settings_.test_data;
      RECUR_CHECK(split.test.size() == count_ && split.test.num_classes == classes_, where,
                  fmt::format("the test texts changed during training ({} texts of {} classes, "
                              "now {} of {})",
                              count_, classes_, split.test.size(), split.test.num_classes));
      texts_ = std::make_unique<TokenSequences>(split.test, vocab_, settings_.max_len,
                                                settings_.truncate);
    });
    return *texts_;
  }

  std::string path_;
  TextSettings settings_;
  Vocabulary vocab_;
  std::int64_t count_;
  int classes_;
  mutable std::once_flag once_;
  mutable std::unique_ptr<TokenSequences> texts_;
};

SequenceData open_texts(const std::string& data, const std::string& path, const TextSettings& s) {
  const auto t0 = std::chrono::steady_clock::now();
  if (data == "imdb" && !std::filesystem::exists(path + "/reviews.json"))
    throw Error("--data", "data/imdb/reviews.json is missing; run `recur data fetch imdb` first");
  const TextSplit split = load_text_splits(path, s.test_data);
  const Vocabulary vocab = Vocabulary::build(split.train.texts, s.vocab, s.min_count);
  auto tr = std::make_shared<TokenSequences>(split.train, vocab, s.max_len, s.truncate);
  auto te = std::make_shared<DeferredTestTexts>(path, s, vocab, split.test.size(),
                                                split.test.num_classes);
  RECUR_CHECK(split.test.num_classes <= split.train.num_classes, "--test-data",
              "the test texts have labels the training texts never use");
  SequenceData d;
  d.train = tr;
  d.test = te;
  d.input = ActShape{ActKind::sequence, 0};
  d.input.ids = true;
  d.vocab_size = vocab.size();
  d.num_classes = split.train.num_classes;
  d.metadata["recur.vocab"] = vocab.to_json();
  d.metadata["recur.text"] = nlohmann::json{
      {"max_len", s.max_len},
      {"truncate", to_string(s.truncate)},
      {"class_names",
       split.train.class_names}}.dump();
  const std::string name =
      data == "imdb" ? std::string("imdb") : std::filesystem::path(path).filename().string();
  nlohmann::json info = {
      {"kind", "text"}, {"name", name}, {"train", split.train.size()}, {"test", split.test.size()}};
  if (std::filesystem::exists(path + "/reviews.json"))
    info["reviews_sha256"] = sha256_file_hex(path + "/reviews.json");
  d.metadata["recur.train_data"] = info.dump();
  d.title = "recur " + (data == "imdb" ? std::string("imdb") : path);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  d.summary = fmt::format(
      "text: {} training / {} test texts ({}), vocabulary {} (min count {}), at most {} tokens "
      "(keep {}), {:.1f}% unknown tokens; read in {:.1f} s",
      split.train.size(), split.test.size(), nlohmann::json(split.train.class_names).dump(),
      vocab.size(), s.min_count, s.max_len, to_string(s.truncate),
      100.0 * static_cast<double>(tr->unknown_tokens()) /
          static_cast<double>(std::max<std::int64_t>(1, tr->total_tokens())),
      secs);
  return d;
}

}  // namespace

SequenceData open_sequence_data(const std::string& data, const TextSettings& text) {
  const std::string path = resolve_data_path(data);
  if (is_npy_folder(path)) return open_arrays(path);
  SequenceData d = open_texts(data, path, text);
#ifdef __GLIBC__
  // The texts, the parsed JSON and the vocabulary's counts were many small blocks, now freed
  // but pinned in the heap by what was allocated after them: give their pages back (IMDb:
  // about 90 MB of resident memory for the rest of the run).
  malloc_trim(0);
#endif
  return d;
}

}  // namespace recur
