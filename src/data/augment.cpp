// Random shifts and small rotations of training images (recur/augment.hpp).
#include "recur/augment.hpp"

#include <cmath>
#include <string>

#include "recur/error.hpp"

namespace recur {

void check_augment(const Augment& a, int rows, int cols) {
  const int limit = (rows < cols ? rows : cols) / 2;
  RECUR_CHECK(a.shift >= 0 && a.shift < limit, "--augment-shift",
              "must be at least 0 and less than half the image (" + std::to_string(limit) +
                  " pixels here), got " + std::to_string(a.shift));
  RECUR_CHECK(std::isfinite(a.rotate) && a.rotate >= 0 && a.rotate <= 90, "--augment-rotate",
              "must be between 0 and 90 degrees, got " + std::to_string(a.rotate));
}

void warp_image(const std::uint8_t* src, int rows, int cols, double dy, double dx, double degrees,
                std::uint8_t* dst) {
  const double cy = 0.5 * (rows - 1), cx = 0.5 * (cols - 1);
  const double theta = degrees * (M_PI / 180.0);
  const double cs = std::cos(theta), sn = std::sin(theta);
  auto at = [&](int r, int c) -> double {
    return r >= 0 && r < rows && c >= 0 && c < cols ? src[r * cols + c] : 0.0;
  };
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      // Where output pixel (r, c) comes from: undo the move, then the turn (rows grow
      // downwards, so a counter-clockwise turn on screen maps (y, x) by the transpose).
      const double y = r - dy - cy, x = c - dx - cx;
      const double sy = degrees == 0 ? y + cy : cs * y + sn * x + cy;
      const double sx = degrees == 0 ? x + cx : -sn * y + cs * x + cx;
      const double fy = std::floor(sy), fx = std::floor(sx);
      const int r0 = static_cast<int>(fy), c0 = static_cast<int>(fx);
      const double wy = sy - fy, wx = sx - fx;
      const double v = (1 - wy) * ((1 - wx) * at(r0, c0) + wx * at(r0, c0 + 1)) +
                       wy * ((1 - wx) * at(r0 + 1, c0) + wx * at(r0 + 1, c0 + 1));
      const double rounded = std::floor(v + 0.5);
      dst[r * cols + c] = static_cast<std::uint8_t>(rounded < 0     ? 0
                                                    : rounded > 255 ? 255
                                                                    : rounded);
    }
  }
}

void augment_image(const std::uint8_t* src, int rows, int cols, const Augment& a, Rng& rng,
                   std::uint8_t* dst) {
  const auto span = static_cast<std::uint64_t>(2 * a.shift + 1);
  const double dy = static_cast<double>(static_cast<std::int64_t>(rng.below(span)) - a.shift);
  const double dx = static_cast<double>(static_cast<std::int64_t>(rng.below(span)) - a.shift);
  const double degrees = a.rotate > 0 ? rng.uniform(-a.rotate, a.rotate) : 0.0;
  warp_image(src, rows, cols, dy, dx, degrees, dst);
}

Rng augment_rng(std::uint64_t step_seed, std::int64_t image) {
  std::uint64_t state = step_seed ^ 0x6175676d656e74ull;  // "augment"
  const std::uint64_t key = splitmix64(state) + static_cast<std::uint64_t>(image);
  state = key;
  return Rng(splitmix64(state));
}

}  // namespace recur
