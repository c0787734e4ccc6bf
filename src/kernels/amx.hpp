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

#include <cstddef>
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

#define RECUR_AMX_BF16_TILES __attribute__((target("amx-tile,amx-bf16")))
#define RECUR_AMX_INT8_TILES __attribute__((target("amx-tile,amx-int8")))

// One depth chunk into a 32 x 32 block: the left operand's two row blocks at a0 and a1 (rows
// a_stride bytes apart) into tmm4-5, the panel's two column halves at b and b + 64 bytes (rows
// 128 bytes apart) into tmm6-7, and the four products into tmm0-3. `two` false: a block of 16
// rows (a1 unread, tmm2-3 untouched).
RECUR_AMX_BF16_TILES inline void amx_bf16_chunk(const void* a0, const void* a1,
                                                std::size_t a_stride, const void* b, bool two) {
  _tile_loadd(4, a0, a_stride);
  if (two) _tile_loadd(5, a1, a_stride);
  _tile_loadd(6, b, 128);
  _tile_loadd(7, static_cast<const char*>(b) + 64, 128);
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  if (!two) return;
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

// amx_bf16_chunk's int8 twin (tdpbusd: unsigned bytes of a0 / a1, signed bytes of the panel).
RECUR_AMX_INT8_TILES inline void amx_int8_chunk(const void* a0, const void* a1,
                                                std::size_t a_stride, const void* b, bool two) {
  _tile_loadd(4, a0, a_stride);
  if (two) _tile_loadd(5, a1, a_stride);
  _tile_loadd(6, b, 128);
  _tile_loadd(7, static_cast<const char*>(b) + 64, 128);
  _tile_dpbusd(0, 4, 6);
  _tile_dpbusd(1, 4, 7);
  if (!two) return;
  _tile_dpbusd(2, 5, 6);
  _tile_dpbusd(3, 5, 7);
}

// A second product's 16 rows (at a, into tmm5) against its own panel into tmm2-3: the two sides
// of a pair in one block.
RECUR_AMX_INT8_TILES inline void amx_int8_chunk_second(const void* a, std::size_t a_stride,
                                                       const void* b) {
  _tile_loadd(5, a, a_stride);
  _tile_loadd(6, b, 128);
  _tile_loadd(7, static_cast<const char*>(b) + 64, 128);
  _tile_dpbusd(2, 5, 6);
  _tile_dpbusd(3, 5, 7);
}

}  // namespace recur::kernels
