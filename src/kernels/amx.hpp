// Intel AMX (Advanced Matrix Extensions) support shared by the bf16 and int8 kernels: whether
// this CPU and OS let the process use the tiles, and the tile configuration every AMX kernel here
// runs with.
//
// The kernels use eight tiles of 16 rows x 64 bytes: tmm0-3 accumulators (16 x 16 fp32 or int32:
// two row blocks x two column halves of a 32 x 32 block of C), tmm4-5 the left operand's two row
// blocks, tmm6-7 the right operand's two column halves (16 rows of pairs (bf16) or quads (int8)
// of 16 columns: 16 pair or quad rows of a 32-column panel, rows 128 bytes apart).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace recur::kernels {

// cpuid (leaf 7, subleaf 0: EDX bit 24 AMX-TILE, and bit 22 AMX-BF16 or bit 25 AMX-INT8), the
// OS's tile state (XCR0 bits 17 and 18) and Linux's permission for this process (arch_prctl
// ARCH_REQ_XCOMP_PERM for the tile data, asked once; it then holds for every thread).
bool cpu_has_amx_bf16_tiles();
bool cpu_has_amx_int8_tiles();

#define RECUR_AMX_TILES __attribute__((target("amx-tile")))

struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Every tile 16 rows x 64 bytes. Each kernel configures on entry and releases on return (the
// configuration is per thread; released tiles cost the OS nothing to save).
RECUR_AMX_TILES inline void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

// The tile loads' inline assembly does not tell the compiler that it reads memory: stores to a
// buffer a tile is then loaded from must not move past the load.
inline void memory_fence() {
  __asm__ volatile("" ::: "memory");
}

}  // namespace recur::kernels
