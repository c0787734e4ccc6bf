// Vocabulary: the most frequent tokens of a training set, ids in frequency order after <pad> and
// <unk>; encoding texts to ids; the JSON form stored in checkpoints.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "data/text_tokens.hpp"
#include "recur/error.hpp"
#include "recur/text.hpp"

namespace recur {

namespace {

struct CountHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

Vocabulary Vocabulary::build(const std::vector<std::string>& texts, int max_size, int min_count) {
  if (max_size < 3)
    throw Error("--vocab",
                "must be at least 3 (<pad>, <unk> and one token), got " + std::to_string(max_size));
  if (min_count < 1)
    throw Error("--min-count", "must be at least 1, got " + std::to_string(min_count));
  std::unordered_map<std::string, std::int64_t, CountHash, std::equal_to<>> counts;
  for (const std::string& text : texts) {
    text_detail::for_each_token(text, [&](std::string_view token) {
      auto it = counts.find(token);
      if (it == counts.end()) {
        counts.emplace(std::string(token), 1);
      } else {
        ++it->second;
      }
    });
  }
  std::vector<std::pair<const std::string*, std::int64_t>> kept;
  kept.reserve(counts.size());
  for (const auto& [token, count] : counts) {
    if (count >= min_count) kept.emplace_back(&token, count);
  }
  const auto more_frequent = [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return *a.first < *b.first;  // ties by the token's bytes: the same order on every run
  };
  const std::size_t take = std::min(kept.size(), static_cast<std::size_t>(max_size) - 2);
  std::partial_sort(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(take), kept.end(),
                    more_frequent);
  Vocabulary v;
  v.tokens_.reserve(take + 2);
  v.tokens_.push_back("<pad>");
  v.tokens_.push_back("<unk>");
  for (std::size_t i = 0; i < take; ++i) v.tokens_.push_back(*kept[i].first);
  v.ids_.reserve(v.tokens_.size());
  for (std::size_t i = 0; i < v.tokens_.size(); ++i)
    v.ids_.emplace(v.tokens_[i], static_cast<std::int32_t>(i));
  return v;
}

std::int32_t Vocabulary::id(std::string_view token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Vocabulary::token(std::int32_t id) const {
  if (id < 0 || id >= size())
    throw Error("vocabulary", "token id " + std::to_string(id) + " is out of range [0, " +
                                  std::to_string(size()) + ")");
  return tokens_[static_cast<std::size_t>(id)];
}

std::vector<std::int32_t> Vocabulary::encode(std::string_view text, int max_len,
                                             Truncate keep) const {
  if (max_len < 1) throw Error("--max-len", "must be at least 1, got " + std::to_string(max_len));
  std::vector<std::int32_t> ids;
  text_detail::for_each_token(text, [&](std::string_view token) {
    // head: later tokens are dropped (the loop still runs; tokens are cheap).
    if (keep == Truncate::head && ids.size() >= static_cast<std::size_t>(max_len)) return;
    ids.push_back(id(token));
  });
  if (ids.size() > static_cast<std::size_t>(max_len)) {  // tail: keep the last max_len
    ids.erase(ids.begin(), ids.end() - max_len);
  }
  if (ids.empty()) ids.push_back(kUnk);
  return ids;
}

std::string Vocabulary::to_json() const {
  nlohmann::json array = nlohmann::json::array();
  for (const std::string& t : tokens_) array.push_back(t);
  return array.dump();
}

Vocabulary Vocabulary::from_json(const std::string& json, const std::string& source) {
  nlohmann::json array;
  try {
    array = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source, std::string("vocabulary is not valid JSON: ") + e.what());
  }
  if (!array.is_array()) throw Error(source, "vocabulary is not a JSON array of tokens");
  if (array.size() < 2 || array[0] != "<pad>" || array[1] != "<unk>")
    throw Error(source, "vocabulary must start with \"<pad>\", \"<unk>\"");
  Vocabulary v;
  v.tokens_.reserve(array.size());
  v.ids_.reserve(array.size());
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string())
      throw Error(source, "vocabulary entry " + std::to_string(i) + " is not a string");
    std::string token = array[i].get<std::string>();
    if (token.empty())
      throw Error(source, "vocabulary entry " + std::to_string(i) + " is an empty string");
    if (!v.ids_.emplace(token, static_cast<std::int32_t>(i)).second)
      throw Error(source, "vocabulary entry " + std::to_string(i) + " repeats the token " +
                              array[i].dump());
    v.tokens_.push_back(std::move(token));
  }
  return v;
}

}  // namespace recur
