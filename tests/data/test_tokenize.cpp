// valid_utf8, tokenize, parse_truncate and the Vocabulary: the rules of include/recur/text.hpp,
// one test per rule, each with the exact expected tokens or ids.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/text.hpp"

namespace {

using Tokens = std::vector<std::string>;
using recur::tokenize;
using recur::valid_utf8;

TEST(ValidUtf8, AcceptsAsciiAndMultiByteCharacters) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii text, longer than eight bytes"));
  EXPECT_TRUE(valid_utf8("Am\xC3\xA9lie"));          // U+00E9, 2 bytes
  EXPECT_TRUE(valid_utf8("\xE2\x82\xAC 5"));         // U+20AC, 3 bytes
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x8E\xAC film"));  // U+1F3AC, 4 bytes
  EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));           // U+D7FF, last before the surrogates
  EXPECT_TRUE(valid_utf8("\xEE\x80\x80"));           // U+E000, first after them
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));       // U+10FFFF, the last code point
  EXPECT_TRUE(valid_utf8(std::string("a\0b", 3)));   // NUL is a character
}

// Each invalid form, with the offset of the first byte of the bad sequence.
void expect_invalid(const std::string& s, std::size_t offset) {
  std::size_t bad = 12345;
  EXPECT_FALSE(valid_utf8(s, &bad)) << s;
  EXPECT_EQ(bad, offset) << s;
  EXPECT_FALSE(valid_utf8(s));  // bad_offset may be null
}

TEST(ValidUtf8, RejectsOverlongForms) {
  expect_invalid("ab\xC0\xAF", 2);                // '/' in 2 bytes
  expect_invalid("\xC1\xBF", 0);                  // U+007F in 2 bytes
  expect_invalid("x\xE0\x80\xAF", 1);             // '/' in 3 bytes
  expect_invalid("\xE0\x9F\xBF", 0);              // U+07FF in 3 bytes
  expect_invalid("12345678\xF0\x8F\xBF\xBF", 8);  // U+FFFF in 4 bytes, after the ASCII fast path
}

TEST(ValidUtf8, RejectsSurrogates) {
  expect_invalid("\xED\xA0\x80", 0);     // U+D800
  expect_invalid("ok \xED\xBF\xBF", 3);  // U+DFFF
}

TEST(ValidUtf8, RejectsTruncatedSequences) {
  expect_invalid("caf\xC3", 3);       // 2-byte sequence cut at the end
  expect_invalid("\xE2\x82", 0);      // 3-byte sequence missing its last byte
  expect_invalid("\xF0\x9F\x8E", 0);  // 4-byte sequence missing its last byte
  expect_invalid(
      "\xC3"
      "A",
      0);                        // continuation replaced by ASCII
  expect_invalid("abc\x80", 3);  // a lone continuation byte
  expect_invalid("abcdefgh\xBF", 8);
}

TEST(ValidUtf8, RejectsCodePointsAboveTheLast) {
  expect_invalid("\xF4\x90\x80\x80", 0);  // U+110000
  expect_invalid("\xF5\x80\x80\x80", 0);  // lead byte F5
  expect_invalid("a\xFF", 1);
  expect_invalid("a\xFE", 1);
}

TEST(Tokenize, LineBreakTagsBecomeSpaces) {
  EXPECT_EQ(tokenize("good.<br /><br />Bad"), (Tokens{"good", ".", "bad"}));
  EXPECT_EQ(tokenize("one<br/>two<BR>three<Br  />four"), (Tokens{"one", "two", "three", "four"}));
  // Not a line break: the characters are punctuation and words as usual.
  EXPECT_EQ(tokenize("<b>bold</b>"), (Tokens{"<", "b", ">", "bold", "<", "/", "b", ">"}));
  EXPECT_EQ(tokenize("a <br"), (Tokens{"a", "<", "br"}));
}

TEST(Tokenize, LowercasesAsciiLetters) {
  EXPECT_EQ(tokenize("The MOVIE Was GREAT"), (Tokens{"the", "movie", "was", "great"}));
}

TEST(Tokenize, PunctuationIsATokenOfItsOwn) {
  EXPECT_EQ(tokenize("Wow!!! 10/10, (really)."),
            (Tokens{"wow", "!", "!", "!", "10", "/", "10", ",", "(", "really", ")", "."}));
  EXPECT_EQ(tokenize("e-mail \"quoted\" $5 #1"),
            (Tokens{"e", "-", "mail", "\"", "quoted", "\"", "$", "5", "#", "1"}));
}

TEST(Tokenize, ApostrophesStayInsideWords) {
  EXPECT_EQ(tokenize("Don't stop, it's rock'n'roll"),
            (Tokens{"don't", "stop", ",", "it's", "rock'n'roll"}));
  // At a word's edge the apostrophe is punctuation.
  EXPECT_EQ(tokenize("'quoted' the actors' lines ''"),
            (Tokens{"'", "quoted", "'", "the", "actors", "'", "lines", "'", "'"}));
}

TEST(Tokenize, MultiByteCharactersStayWhole) {
  EXPECT_EQ(tokenize("Am\xC3\xA9lie's caf\xC3\xA9"), (Tokens{"am\xC3\xA9lie's", "caf\xC3\xA9"}));
  // Non-ASCII letters are kept as written (only ASCII is lowercased).
  EXPECT_EQ(tokenize("\xC3\x89T\xC3\x89 \xE6\x98\xA0\xE7\x94\xBB!"),
            (Tokens{"\xC3\x89t\xC3\x89", "\xE6\x98\xA0\xE7\x94\xBB", "!"}));
  for (const std::string& t : tokenize("na\xC3\xAFve \xF0\x9F\x8E\xAC caf\xC3\xA9!"))
    EXPECT_TRUE(valid_utf8(t)) << t;
}

TEST(Tokenize, WhitespaceAndControlCharactersSeparate) {
  EXPECT_EQ(tokenize("  a\tb\r\nc\x01"
                     "d  "),
            (Tokens{"a", "b", "c", "d"}));
  EXPECT_EQ(tokenize(" \n\t "), Tokens{});
  EXPECT_EQ(tokenize(""), Tokens{});
}

TEST(Truncate, ParsesHeadAndTailOnly) {
  EXPECT_EQ(recur::parse_truncate("head"), recur::Truncate::head);
  EXPECT_EQ(recur::parse_truncate("tail"), recur::Truncate::tail);
  EXPECT_EQ(recur::to_string(recur::Truncate::tail), "tail");
  try {
    recur::parse_truncate("middle");
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_STREQ(e.what(), "--truncate: unknown value 'middle' (head, tail)");
  }
}

const std::vector<std::string> kTexts = {"the film was good , the film was long", "a good film",
                                         "bad film ! bad", "zebra yak"};

TEST(Vocabulary, MostFrequentFirstTiesByBytes) {
  // counts: film 4, the 2, was 2, good 2, bad 2, "," 1, long 1, a 1, "!" 1, zebra 1, yak 1
  const auto v = recur::Vocabulary::build(kTexts, 7, 1);
  EXPECT_EQ(v.tokens(), (Tokens{"<pad>", "<unk>", "film", "bad", "good", "the", "was"}));
  EXPECT_EQ(v.size(), 7);
  EXPECT_EQ(v.id("film"), 2);
  EXPECT_EQ(v.id("was"), 6);
  EXPECT_EQ(v.id("zebra"), recur::Vocabulary::kUnk);
  EXPECT_EQ(v.token(3), "bad");
}

TEST(Vocabulary, MinCountDropsRareTokens) {
  const auto v = recur::Vocabulary::build(kTexts, 1000, 2);
  EXPECT_EQ(v.tokens(), (Tokens{"<pad>", "<unk>", "film", "bad", "good", "the", "was"}));
  const auto all = recur::Vocabulary::build(kTexts, 1000, 1);
  EXPECT_EQ(all.size(), 2 + 11);
  // Single-count tokens in byte order after the frequent ones.
  EXPECT_EQ(all.token(7), "!");
  EXPECT_EQ(all.token(8), ",");
  EXPECT_EQ(all.token(12), "zebra");
}

TEST(Vocabulary, EncodeTruncatesHeadOrTail) {
  const auto v = recur::Vocabulary::build(kTexts, 7, 1);
  using Ids = std::vector<std::int32_t>;
  EXPECT_EQ(v.encode("The film was GOOD, zebra", 100, recur::Truncate::head),
            (Ids{5, 2, 6, 4, 1, 1}));
  EXPECT_EQ(v.encode("the film was good", 2, recur::Truncate::head), (Ids{5, 2}));
  EXPECT_EQ(v.encode("the film was good", 2, recur::Truncate::tail), (Ids{6, 4}));
  EXPECT_EQ(v.encode(" \n ", 5, recur::Truncate::head), (Ids{recur::Vocabulary::kUnk}));
  try {
    (void)v.encode("film", 0, recur::Truncate::head);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_STREQ(e.what(), "--max-len: must be at least 1, got 0");
  }
}

TEST(Vocabulary, RefusesBadSizes) {
  try {
    (void)recur::Vocabulary::build(kTexts, 2, 1);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_STREQ(e.what(), "--vocab: must be at least 3 (<pad>, <unk> and one token), got 2");
  }
  try {
    (void)recur::Vocabulary::build(kTexts, 10, 0);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_STREQ(e.what(), "--min-count: must be at least 1, got 0");
  }
  const auto v = recur::Vocabulary::build(kTexts, 5, 1);
  EXPECT_THROW((void)v.token(5), recur::Error);
  EXPECT_THROW((void)v.token(-1), recur::Error);
}

TEST(Vocabulary, JsonRoundTrip) {
  const auto v = recur::Vocabulary::build({"caf\xC3\xA9 \"quote\" caf\xC3\xA9 \\ back"}, 100, 1);
  const std::string json = v.to_json();
  EXPECT_EQ(json, "[\"<pad>\",\"<unk>\",\"\\\"\",\"caf\xC3\xA9\",\"\\\\\",\"back\",\"quote\"]");
  const auto back = recur::Vocabulary::from_json(json, "model.safetensors");
  EXPECT_EQ(back.tokens(), v.tokens());
  EXPECT_EQ(back.id("\""), v.id("\""));
  EXPECT_EQ(back.id("\\"), v.id("\\"));
}

void expect_from_json_error(const std::string& json, const std::string& message) {
  try {
    (void)recur::Vocabulary::from_json(json, "m.safetensors");
    FAIL() << "expected recur::Error for " << json;
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "m.safetensors");
    EXPECT_EQ(e.reason(), message) << json;
  }
}

TEST(Vocabulary, FromJsonRefusesBadLists) {
  expect_from_json_error("{\"a\": 1}", "vocabulary is not a JSON array of tokens");
  expect_from_json_error("[\"<unk>\", \"<pad>\"]",
                         "vocabulary must start with \"<pad>\", \"<unk>\"");
  expect_from_json_error("[\"<pad>\"]", "vocabulary must start with \"<pad>\", \"<unk>\"");
  expect_from_json_error("[\"<pad>\", \"<unk>\", \"a\", 3]", "vocabulary entry 3 is not a string");
  expect_from_json_error("[\"<pad>\", \"<unk>\", \"a\", \"a\"]",
                         "vocabulary entry 3 repeats the token \"a\"");
  expect_from_json_error("[\"<pad>\", \"<unk>\", \"\"]", "vocabulary entry 2 is an empty string");
  try {
    (void)recur::Vocabulary::from_json("[\"<pad>\", ", "m.safetensors");
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_TRUE(e.reason().starts_with("vocabulary is not valid JSON: ")) << e.what();
  }
}

}  // namespace
