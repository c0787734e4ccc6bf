// SHA-256 (FIPS 180-4), used to verify downloaded data sets and to fingerprint files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace recur {

// Streaming hash: update() any number of times, then digest() or hex_digest(). Reading the
// digest does not end the stream; more update() calls continue the same message.
class Sha256 {
 public:
  Sha256() { reset(); }
  void reset();
  void update(const void* data, std::size_t n);
  std::array<std::uint8_t, 32> digest() const;
  std::string hex_digest() const;  // 64 lowercase hex characters

 private:
  void compress(const std::uint8_t* block);
  std::uint32_t h_[8];
  std::uint8_t buffer_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const void* data, std::size_t n);
// Hashes a file by streaming it. Throws recur::Error naming the path when it is missing, a
// folder or unreadable.
std::string sha256_file_hex(const std::string& path);

}  // namespace recur
