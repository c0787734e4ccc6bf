#include "kernels/amx.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace recur::kernels {

namespace {

// Linux keeps the tile data out of a process's saved state until the process asks for it
// (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, feature 18); a tile instruction before that
// faults.
bool amx_permitted() {
  static const bool granted = [] {
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return granted;
}

bool amx_tiles(unsigned edx_bit) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  if ((d & (1u << 24)) == 0 || (d & (1u << edx_bit)) == 0) return false;
  // XCR0 (xgetbv is there when cpuid lists OSXSAVE: leaf 1, ECX bit 27).
  if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & (1u << 27)) == 0) return false;
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;
  return amx_permitted();
}

}  // namespace

bool cpu_has_amx_bf16_tiles() {
  return amx_tiles(22);
}

bool cpu_has_amx_int8_tiles() {
  return amx_tiles(25);
}

}  // namespace recur::kernels
