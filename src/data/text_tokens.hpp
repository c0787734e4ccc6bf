// The tokenizer's one loop, shared by tokenize() and the vocabulary (which counts and encodes
// tokens without making a string of each). Rules: see tokenize() in include/recur/text.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace recur::text_detail {

inline bool is_ascii_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Bytes that belong to a word: ASCII letters and digits, and every byte of a multi-byte UTF-8
// character (all >= 0x80), so a character is never split.
inline bool is_word_byte(unsigned char c) {
  return c >= 0x80 || is_ascii_alnum(c);
}

inline bool is_ascii_punct(unsigned char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// Length of a line break tag at s[i] ("<br>", "<br/>", "<br />", any case, spaces before the
// slash or the '>'), or 0.
inline std::size_t line_break_length(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  if (i + 4 > n || s[i] != '<' || (s[i + 1] | 0x20) != 'b' || (s[i + 2] | 0x20) != 'r') return 0;
  std::size_t j = i + 3;
  while (j < n && s[j] == ' ') ++j;
  if (j < n && s[j] == '/') ++j;
  while (j < n && s[j] == ' ') ++j;
  if (j < n && s[j] == '>') return j + 1 - i;
  return 0;
}

// Calls emit(std::string_view token) for each token of `text` in order. The view is valid only
// during the call.
template <typename Emit>
void for_each_token(std::string_view text, Emit&& emit) {
  std::string word;
  const std::size_t n = text.size();
  auto flush = [&] {
    if (!word.empty()) {
      emit(std::string_view(word));
      word.clear();
    }
  };
  std::size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_word_byte(c)) {
      word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : text[i]);
      ++i;
    } else if (c == '\'' && !word.empty() && i + 1 < n &&
               is_word_byte(static_cast<unsigned char>(text[i + 1]))) {
      word.push_back('\'');  // inside a word: don't, o'clock
      ++i;
    } else if (c == '<' && line_break_length(text, i) > 0) {
      flush();
      i += line_break_length(text, i);
    } else if (is_ascii_punct(c)) {
      flush();
      emit(text.substr(i, 1));
      ++i;
    } else {  // whitespace and control characters separate
      flush();
      ++i;
    }
  }
  flush();
}

}  // namespace recur::text_detail
