// Atomic writes and the sweep of their leftovers: only ".NAME.tmp-XXXXXX" regular files go.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "recur/error.hpp"
#include "recur/fs.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(Fs, AtomicWriteLeavesOnlyTheTarget) {
  const fs::path dir = fresh_dir("recur-fs-atomic");
  write_file_atomic((dir / "a.txt").string(), std::string_view("first"));
  write_file_atomic((dir / "a.txt").string(), std::string_view("second"));
  EXPECT_EQ(read_file((dir / "a.txt").string()), "second");
  EXPECT_EQ(listing(dir), (std::set<std::string>{"a.txt"}));
  EXPECT_THROW(write_file_atomic((dir / "missing" / "b.txt").string(), std::string_view("x")),
               Error);
  fs::remove_all(dir);
}

TEST(Fs, RemoveStaleTemporariesTakesOnlyLeftoversOfAtomicWrites) {
  const fs::path dir = fresh_dir("recur-fs-sweep");
  for (const char* name :
       {".resume.safetensors.tmp-Ab3xZ9", ".metrics.jsonl.tmp-000000", "resume.safetensors",
        ".x.tmp-12345", "notes.tmp-abcdef", ".y.tmp-abcdefg", ".tmp-abcdef", ".z.tmp-ab_def"})
    write_file_atomic((dir / name).string(), std::string_view("data"));
  fs::create_directory(dir / ".folder.tmp-abcdef");
  EXPECT_EQ(remove_stale_temporaries(dir.string()), 2);
  EXPECT_EQ(listing(dir),
            (std::set<std::string>{"resume.safetensors", ".x.tmp-12345", "notes.tmp-abcdef",
                                   ".y.tmp-abcdefg", ".tmp-abcdef", ".z.tmp-ab_def",
                                   ".folder.tmp-abcdef"}));
  EXPECT_EQ(remove_stale_temporaries((dir / "missing").string()), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace recur
