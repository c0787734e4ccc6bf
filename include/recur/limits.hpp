// Sizes recur refuses to go past, shared by the readers, the plots and the layers that check
// their shapes against them.
#pragma once

namespace recur {

// The largest width or height recur reads, writes or allocates.
inline constexpr int kMaxImageSide = 16384;

}  // namespace recur
