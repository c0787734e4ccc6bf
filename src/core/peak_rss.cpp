#include "core/peak_rss.hpp"

#include <fstream>
#include <string>

namespace recur {

std::int64_t own_peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    try {
      return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   123456 kB"
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

}  // namespace recur
