// Cache-line-aligned storage for the buffers the kernels stream through. With the 16-byte
// alignment malloc gives large blocks, every 64-byte vector load of a packed panel straddled two
// cache lines; aligning the panels took the packed step GEMM from 152 to 167 GFLOP/s.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace recur {

inline constexpr std::size_t kCacheLine = 64;

template <typename T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete (p, std::align_val_t{kCacheLine}); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

// Makes the workspace `v` hold at least n elements. When it must grow, its contents are dropped
// first: a workspace is written before it is read, and resize() would copy the old buffer into
// the new one, holding both at once (IMDb training peaked 39 MB higher on one growing gates
// buffer). What it holds after growing is zeros.
template <typename V>
void grow_workspace(V& v, std::size_t n) {
  if (v.size() >= n) return;
  V().swap(v);
  v.resize(n);
}

}  // namespace recur
