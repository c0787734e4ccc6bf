// The picture loader (recur::decode_gray_image: PNG through libpng, PGM/PPM by hand) on the
// input, then what `recur predict` does with a picture (resize to 28x28), and for small pictures
// a round trip through recur's PNG encoder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/image.hpp"

namespace {

const std::string kName = "fuzz-picture";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using recur::fuzz::check;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  recur::GrayImage img;
  const bool decoded = recur::fuzz::returns_or_throws_error(
      {kName}, [&] { img = recur::decode_gray_image(bytes, kName); });
  if (!decoded) return 0;
  check(img.width >= 1 && img.height >= 1 && img.width <= recur::kMaxImageSide &&
            img.height <= recur::kMaxImageSide,
        "a decoded picture has sides in 1..kMaxImageSide");
  check(img.pixels.size() == static_cast<std::size_t>(img.width) * img.height,
        "pixels hold width * height bytes");

  recur::GrayImage small;
  recur::fuzz::must_return([&] { small = recur::resize_area(img, 28, 28); });
  check(small.width == 28 && small.height == 28 && small.pixels.size() == 28 * 28,
        "resize gives the size asked for");

  if (img.pixels.size() <= 64 * 64) {
    std::vector<std::uint8_t> png;
    recur::fuzz::must_return([&] { png = recur::encode_png(img); });
    recur::GrayImage again;
    recur::fuzz::must_return([&] {
      again = recur::decode_gray_image(
          std::string_view(reinterpret_cast<const char*>(png.data()), png.size()), "round trip");
    });
    check(again.width == img.width && again.height == img.height && again.pixels == img.pixels,
          "a gray picture survives encode_png then decode_gray_image");
  }
  return 0;
}
