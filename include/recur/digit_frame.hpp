// Bringing a picture of a digit to MNIST's own framing, so that a model trained on MNIST sees a
// photo or scan the way it saw its training data. MNIST's authors normalised every digit to fit
// a 20x20 box (keeping its aspect ratio, with anti-aliasing) and placed it in a 28x28 field with
// its centre of mass at the centre; the ink is white on black.
//
// frame_digit, on a grayscale picture of any size and either polarity:
//  1. polarity: a picture whose border is mostly light is dark ink on paper and is inverted;
//  2. contrast: the background level (the median pixel) becomes 0 and the ink level (the
//     median of the pixels more than half-way up to the brightest 3x3 neighbourhood) 255,
//     linearly; pixels less than a fifth of the way up become 0, so paper grain and light noise
//     vanish;
//  3. blobs: the inked pixels are grouped into 8-connected blobs; specks far smaller than the
//     largest blob are erased, and the others are kept (a 4 or a 5 drawn in two strokes);
//  4. size: the box around the kept ink is scaled to fit box x box pixels (20 of 28 for MNIST,
//     the same proportion for other sizes), keeping the aspect ratio;
//  5. position: the result is placed in a rows x cols field with its centre of mass at the
//     centre.
// Throws recur::Error naming `name` when the picture holds no ink (too little contrast, or only
// specks).
#pragma once

#include <string>

#include "recur/image.hpp"

namespace recur {

struct DigitFrameReport {
  bool inverted = false;  // the picture was dark ink on light paper
  int blobs = 0;          // blobs of ink kept (more than one: the picture may hold several things)
  int specks = 0;         // small blobs erased as noise
  int ink_left = 0, ink_top = 0, ink_width = 0, ink_height = 0;  // the kept ink's box
  int background = 0, ink = 0;  // the levels mapped to 0 and 255 (after inversion)
};

enum class Polarity { automatic, invert, keep };

GrayImage frame_digit(const GrayImage& img, int rows, int cols, Polarity polarity,
                      const std::string& name, DigitFrameReport* report = nullptr);

}  // namespace recur
