// valid_utf8, the tokenizer and the truncation names (include/recur/text.hpp).
#include <cstdint>
#include <cstring>

#include "data/text_tokens.hpp"
#include "recur/error.hpp"
#include "recur/text.hpp"

namespace recur {

bool valid_utf8(std::string_view s, std::size_t* bad_offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  auto bad = [&](std::size_t at) {
    if (bad_offset != nullptr) *bad_offset = at;
    return false;
  };
  auto cont = [&](std::size_t at, unsigned char lo, unsigned char hi) {
    return at < n && p[at] >= lo && p[at] <= hi;
  };
  while (i < n) {
    // Eight ASCII bytes at a time: most reviews are plain ASCII.
    if (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
    } else if (c >= 0xC2 && c <= 0xDF) {  // 2 bytes; C0, C1 would be overlong
      if (!cont(i + 1, 0x80, 0xBF)) return bad(i);
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {  // 3 bytes
      // E0: A0..BF (no overlong forms); ED: 80..9F (no surrogates D800..DFFF).
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2, 0x80, 0xBF)) return bad(i);
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {  // 4 bytes
      // F0: 90..BF (no overlong forms); F4: 80..8F (nothing above U+10FFFF).
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2, 0x80, 0xBF) || !cont(i + 3, 0x80, 0xBF))
        return bad(i);
      i += 4;
    } else {  // a stray continuation byte, C0, C1 or F5..FF
      return bad(i);
    }
  }
  return true;
}

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  text_detail::for_each_token(text, [&](std::string_view t) { tokens.emplace_back(t); });
  return tokens;
}

Truncate parse_truncate(const std::string& name) {
  if (name == "head") return Truncate::head;
  if (name == "tail") return Truncate::tail;
  throw Error("--truncate", "unknown value '" + name + "' (head, tail)");
}

std::string to_string(Truncate t) {
  return t == Truncate::head ? "head" : "tail";
}

std::string text_excerpt(const std::string& text, std::size_t limit) {
  std::string s;
  for (std::size_t i = 0; i < text.size() && s.size() < limit; ++i) {
    if (text.compare(i, 6, "<br />") == 0) {
      s += ' ';
      i += 5;
      continue;
    }
    const char ch = text[i];
    s += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
  }
  if (s.size() < text.size()) {
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80)) s.pop_back();
    s += "...";
  }
  return s;
}

}  // namespace recur
