// What the kernel says the CPU has, as /proc/cpuinfo lists it: the tests' second opinion on what
// cpuid-based dispatch decided.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace recur::test {

// Whether the first "flags" line of /proc/cpuinfo lists `flag` (e.g. "avx512f", "avx_vnni").
inline bool cpuinfo_has(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string w;
    while (words >> w)
      if (w == flag) return true;
    return false;
  }
  return false;
}

}  // namespace recur::test
