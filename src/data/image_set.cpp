#include <fmt/core.h>

#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"

namespace recur {

void check_image_set(const ImageSet& set) {
  RECUR_CHECK(set.count >= 1, set.source, "holds no images");
  RECUR_CHECK(
      set.rows >= 1 && set.rows <= kMaxImageSide && set.cols >= 1 && set.cols <= kMaxImageSide,
      set.source,
      fmt::format("images are {}x{}; each side must be in 1..{}", set.rows, set.cols,
                  kMaxImageSide));
  const auto expected = static_cast<std::uint64_t>(set.count) *
                        static_cast<std::uint64_t>(set.rows) * static_cast<std::uint64_t>(set.cols);
  RECUR_CHECK(set.pixels.size() == expected, set.source,
              fmt::format("{} images of {}x{} need {} pixels but {} are given", set.count, set.rows,
                          set.cols, expected, set.pixels.size()));
  RECUR_CHECK(set.labels.size() == static_cast<std::uint64_t>(set.count), set.source,
              fmt::format("{} images but {} labels", set.count, set.labels.size()));
  RECUR_CHECK(set.num_classes >= 2, set.source,
              fmt::format("needs at least 2 classes, got {}", set.num_classes));
  for (std::size_t i = 0; i < set.labels.size(); ++i)
    RECUR_CHECK(set.labels[i] >= 0 && set.labels[i] < set.num_classes, set.source,
                fmt::format("label {} of image {} is outside 0..{}", set.labels[i], i,
                            set.num_classes - 1));
}

}  // namespace recur
