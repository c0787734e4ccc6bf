// SHA-256 against the FIPS 180-4 example vectors, and streaming against one-shot hashing.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "recur/error.hpp"
#include "recur/sha256.hpp"

namespace {

TEST(Sha256, EmptyString) {
  EXPECT_EQ(recur::sha256_hex("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(recur::sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessage) {
  const std::string msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(recur::sha256_hex(msg.data(), msg.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionA) {
  recur::Sha256 h;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(chunk.data(), chunk.size());
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShotAtEverySplit) {
  std::string msg;
  for (int i = 0; i < 200; ++i) msg.push_back(static_cast<char>(i * 37 + 11));
  for (std::size_t len : {0u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 200u}) {
    const std::string expect = recur::sha256_hex(msg.data(), len);
    for (std::size_t cut = 0; cut <= len; ++cut) {
      recur::Sha256 h;
      h.update(msg.data(), cut);
      h.update(msg.data() + cut, len - cut);
      ASSERT_EQ(h.hex_digest(), expect) << "len " << len << " cut " << cut;
    }
  }
}

TEST(Sha256, DigestDoesNotEndTheStream) {
  recur::Sha256 h;
  h.update("ab", 2);
  EXPECT_EQ(h.hex_digest(), recur::sha256_hex("ab", 2));
  h.update("c", 1);
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, FileHexMatchesBytesAndNamesMissingFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("recur-sha-test-" + std::to_string(::getpid()) + ".bin");
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  EXPECT_EQ(recur::sha256_file_hex(path.string()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::filesystem::remove(path);
  try {
    recur::sha256_file_hex(path.string());
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), path.string());
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
  }
}

}  // namespace
