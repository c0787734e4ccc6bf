// This process's own peak resident memory.
#pragma once

#include <cstdint>

namespace recur {

// The peak resident set of this process's address space (VmHWM of /proc/self/status), in bytes;
// 0 where it cannot be read. Unlike getrusage's ru_maxrss, it starts afresh at exec: a process
// started by a large one (recur report spawning each training run) reports its own peak, not
// its parent's.
std::int64_t own_peak_rss_bytes();

}  // namespace recur
