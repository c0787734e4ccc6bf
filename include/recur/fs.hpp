// Atomic file output: every file recur writes (checkpoints, metrics, pictures, fetched data) goes
// to a temporary name in the same folder, is flushed to disk, then renamed over the target, so
// a crash or a full disk never leaves a half-written file in place of a good one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace recur {

// Writes `size` bytes to `path` atomically. Throws recur::Error naming the path on any failure
// (unwritable folder, disk full); the temporary file is removed and `path` is left untouched.
void write_file_atomic(const std::string& path, const void* data, std::size_t size);
// A piece of a file written by the gather form below.
struct ByteSpan {
  const void* data = nullptr;
  std::size_t size = 0;
};

// The pieces one after the other, written atomically as above without first joining them in
// memory (a checkpoint's tensors go to disk straight from the parameter arena).
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces);

inline void write_file_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, text.data(), text.size());
}

// Removes what write_file_atomic leaves in `dir` when the process is killed mid-write: regular
// files named ".NAME.tmp-XXXXXX" (six characters from mkstemp). Nothing else is touched; errors
// are ignored (a leftover is harmless). Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

// Reads a whole file. Throws recur::Error naming the path when it is missing, a folder, or
// unreadable.
std::string read_file(const std::string& path);

}  // namespace recur
