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

namespace {

// floor(x) for |x| < 2^31, exactly: baseline x86-64 has no rounding instruction, and std::floor
// is a library call three times a pixel.
inline int floor_int(double x) {
  const int i = static_cast<int>(x);  // truncates toward zero
  return x < i ? i - 1 : i;
}

}  // namespace

void warp_image(const std::uint8_t* src, int rows, int cols, double dy, double dx, double degrees,
                std::uint8_t* dst) {
  const double cy = 0.5 * (rows - 1), cx = 0.5 * (cols - 1);
  const double theta = degrees * (M_PI / 180.0);
  const double cs = std::cos(theta), sn = std::sin(theta);
  const bool turned = degrees != 0;
  auto at = [&](int r, int c) -> double {
    return r >= 0 && r < rows && c >= 0 && c < cols ? src[r * cols + c] : 0.0;
  };
  for (int r = 0; r < rows; ++r) {
    // Where output pixel (r, c) comes from: undo the move, then the turn. The row's terms are
    // computed once; each pixel's sum is the same expression in the same order.
    const double y = r - dy - cy;
    const double ry = turned ? cs * y : 0.0, rx = turned ? -sn * y : 0.0;
    std::uint8_t* out = dst + static_cast<std::size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) {
      const double x = c - dx - cx;
      const double sy = turned ? ry + sn * x + cy : y + cy;
      const double sx = turned ? rx + cs * x + cx : x + cx;
      const int r0 = floor_int(sy), c0 = floor_int(sx);
      const double wy = sy - r0, wx = sx - c0;
      double p00, p01, p10, p11;
      if (r0 >= 0 && r0 + 1 < rows && c0 >= 0 && c0 + 1 < cols) {
        const std::uint8_t* q = src + static_cast<std::size_t>(r0) * cols + c0;
        if ((q[0] | q[1] | q[cols] | q[cols + 1]) == 0) {  // background: the sum below is 0
          out[c] = 0;
          continue;
        }
        p00 = q[0];
        p01 = q[1];
        p10 = q[cols];
        p11 = q[cols + 1];
      } else {
        p00 = at(r0, c0);
        p01 = at(r0, c0 + 1);
        p10 = at(r0 + 1, c0);
        p11 = at(r0 + 1, c0 + 1);
      }
      const double v = (1 - wy) * ((1 - wx) * p00 + wx * p01) + wy * ((1 - wx) * p10 + wx * p11);
      const int rounded = floor_int(v + 0.5);
      out[c] = static_cast<std::uint8_t>(rounded < 0 ? 0 : rounded > 255 ? 255 : rounded);
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
