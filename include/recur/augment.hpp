// Image augmentation for training: each image moved by a few pixels and turned by a small
// angle, drawn afresh each time a training batch reads it. Shapes never change; pixels moved in
// from outside the image are 0 (MNIST's background).
#pragma once

#include <cstdint>

#include "recur/rng.hpp"

namespace recur {

struct Augment {
  int shift = 0;        // pixels along each axis, drawn uniformly from [-shift, shift]
  double rotate = 0.0;  // degrees, drawn uniformly from [-rotate, rotate]
  bool active() const { return shift > 0 || rotate > 0; }
};

// Throws Error("--augment-shift" / "--augment-rotate", ...) for a negative value, a shift of
// half the image or more, or a turn beyond 90 degrees.
void check_augment(const Augment& a, int rows, int cols);

// dst [rows, cols] = src moved by (dy, dx) pixels (down, right) and turned by `degrees`
// (counter-clockwise) about the image's centre, sampled bilinearly and rounded. A whole-pixel
// move without a turn copies pixels exactly. dst must not overlap src.
void warp_image(const std::uint8_t* src, int rows, int cols, double dy, double dx, double degrees,
                std::uint8_t* dst);

// warp_image with a move and a turn drawn from `rng` within `a`'s bounds.
void augment_image(const std::uint8_t* src, int rows, int cols, const Augment& a, Rng& rng,
                   std::uint8_t* dst);

// The generator of one image's draw in one training step: a pure function of the step's seed
// and the image's index, so a batch's images are the same however threads divide it.
Rng augment_rng(std::uint64_t step_seed, std::int64_t image);

}  // namespace recur
