// Image loading (PNG of every colour type, PGM/PPM), bad input, resizing, PNG encoding and the
// bitmap font.
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "recur/error.hpp"
#include "recur/image.hpp"

namespace {

namespace fs = std::filesystem;
using recur::GrayImage;
using recur::Rgb;
using recur::RgbImage;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("recur_image_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string str() const { return dir_.string(); }

 private:
  fs::path dir_;
};

std::string to_string(const std::vector<std::uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

// A PNG made directly with libpng, for the colour types and depths recur never writes.
struct PngSpec {
  int width = 1, height = 1, color_type = PNG_COLOR_TYPE_GRAY, bit_depth = 8;
  bool interlaced = false;
  std::vector<std::uint8_t> rows;  // packed rows as the PNG stores them, height * rowbytes
  std::vector<png_color> palette;
  std::vector<png_byte> trns;
};

void append_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), n);
}

std::string make_png(const PngSpec& s) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return {};
  }
  png_set_write_fn(png, &out, append_bytes, nullptr);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) {
    png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  }
  if (!s.trns.empty()) {
    png_set_tRNS(png, info, s.trns.data(), static_cast<int>(s.trns.size()), nullptr);
  }
  png_write_info(png, info);
  std::size_t rowbytes = s.rows.size() / s.height;
  std::vector<png_bytep> rows(s.height);
  for (int y = 0; y < s.height; ++y) {
    rows[y] = const_cast<png_bytep>(s.rows.data() + y * rowbytes);
  }
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<std::uint8_t> be16(std::initializer_list<int> values) {
  std::vector<std::uint8_t> out;
  for (int v : values) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
  }
  return out;
}

GrayImage decode(const std::string& bytes) {
  return recur::decode_gray_image(bytes, "memory");
}

// load_gray_image must throw recur::Error about `path` whose message holds `reason_part`.
void expect_load_error(const std::string& path, const std::string& reason_part) {
  try {
    recur::load_gray_image(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), path);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(e.reason().find(reason_part), std::string::npos) << e.what();
  }
}

std::uint32_t noise(std::uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return state >> 24;
}

// ---------------------------------------------------------------------------------------------

TEST(ImagePng, GrayRoundTripIsExact) {
  TempDir dir;
  GrayImage img{37, 23, {}};
  std::uint32_t state = 7;
  for (int i = 0; i < 37 * 23; ++i) img.pixels.push_back(static_cast<std::uint8_t>(noise(state)));
  std::string path = dir.path("gray.png");
  recur::write_png(path, img);
  GrayImage back = recur::load_gray_image(path);
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(ImagePng, RgbBecomesBt601Luma) {
  RgbImage img(5, 1, Rgb{0, 0, 0});
  img.set(0, 0, {255, 0, 0});
  img.set(1, 0, {0, 255, 0});
  img.set(2, 0, {0, 0, 255});
  img.set(3, 0, {255, 255, 255});
  img.set(4, 0, {10, 200, 30});
  GrayImage g = decode(to_string(recur::encode_png(img)));
  ASSERT_EQ(g.width, 5);
  ASSERT_EQ(g.height, 1);
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{76, 150, 29, 255, 124}));
  EXPECT_EQ(recur::to_gray(img).pixels, g.pixels);
}

TEST(ImagePng, SixteenBitGrayIsRounded) {
  PngSpec s;
  s.width = 4;
  s.bit_depth = 16;
  s.rows = be16({0, 65535, 32896, 1000});
  GrayImage g = decode(make_png(s));
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{0, 255, 128, 4}));
}

TEST(ImagePng, SixteenBitRgbaIsCompositedOnBlack) {
  PngSpec s;
  s.width = 3;
  s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  s.bit_depth = 16;
  s.rows = be16({65535, 0, 0, 65535, 65535, 65535, 65535, 0, 65535, 65535, 65535, 32896});
  GrayImage g = decode(make_png(s));
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{76, 0, 128}));
}

TEST(ImagePng, PaletteWithTransparency) {
  PngSpec s;
  s.width = 4;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.bit_depth = 2;
  s.palette = {{0, 0, 0}, {255, 0, 0}, {0, 0, 255}, {255, 255, 255}};
  s.trns = {255, 255, 255, 0};  // entry 3 is transparent
  s.rows = {0x1B};              // indices 0, 1, 2, 3
  GrayImage g = decode(make_png(s));
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{0, 76, 29, 0}));
}

TEST(ImagePng, EightBitPalette) {
  PngSpec s;
  s.width = 3;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{10, 200, 30}, {0, 255, 0}};
  s.rows = {1, 0, 1};
  GrayImage g = decode(make_png(s));
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{150, 124, 150}));
}

TEST(ImagePng, GrayAlphaAndOneBitGray) {
  PngSpec ga;
  ga.width = 3;
  ga.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  ga.rows = {200, 255, 200, 128, 200, 0};
  EXPECT_EQ(decode(make_png(ga)).pixels, (std::vector<std::uint8_t>{200, 100, 0}));

  PngSpec bits;
  bits.width = 8;
  bits.bit_depth = 1;
  bits.rows = {0xB0};
  EXPECT_EQ(decode(make_png(bits)).pixels,
            (std::vector<std::uint8_t>{255, 0, 255, 255, 0, 0, 0, 0}));
}

TEST(ImagePng, InterlacedRgb) {
  PngSpec s;
  s.width = 9;
  s.height = 7;
  s.color_type = PNG_COLOR_TYPE_RGB;
  s.interlaced = true;
  std::uint32_t state = 3;
  for (int i = 0; i < 9 * 7 * 3; ++i) s.rows.push_back(static_cast<std::uint8_t>(noise(state)));
  GrayImage g = decode(make_png(s));
  ASSERT_EQ(g.width, 9);
  ASSERT_EQ(g.height, 7);
  for (int i = 0; i < 9 * 7; ++i) {
    Rgb c{s.rows[i * 3], s.rows[i * 3 + 1], s.rows[i * 3 + 2]};
    ASSERT_EQ(g.pixels[i], recur::luma(c)) << "pixel " << i;
  }
}

TEST(ImagePgm, BinaryGrayWithComments) {
  std::string bytes = "P5\n# made by hand\n3 2\n# another comment\n255\n";
  bytes += std::string("\x00\x01\x02\x80\xfe\xff", 6);
  GrayImage g = decode(bytes);
  EXPECT_EQ(g.width, 3);
  EXPECT_EQ(g.height, 2);
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{0, 1, 2, 128, 254, 255}));
}

TEST(ImagePgm, BinarySixteenBit) {
  std::string bytes = "P5 3 1 65535\n";
  auto samples = be16({0, 65535, 32768});
  bytes += to_string(samples);
  EXPECT_EQ(decode(bytes).pixels, (std::vector<std::uint8_t>{0, 255, 128}));
}

TEST(ImagePgm, PlainGrayRescalesMaxval) {
  GrayImage g = decode("P2\n# fifteen levels\n4 1\n15\n0 5\n10 # comment between samples\n15\n");
  EXPECT_EQ(g.pixels, (std::vector<std::uint8_t>{0, 85, 170, 255}));
}

TEST(ImagePgm, ColourPpmBecomesLuma) {
  EXPECT_EQ(decode("P3 2 1 255 255 0 0  0 0 255").pixels, (std::vector<std::uint8_t>{76, 29}));
  EXPECT_EQ(decode(std::string("P6\n1 1\n255\n\x0a\xc8\x1e", 14)).pixels,
            (std::vector<std::uint8_t>{124}));
}

TEST(ImageErrors, EachBadInputNamesTheFile) {
  TempDir dir;
  expect_load_error(dir.path("missing.png"), "no such file");
  expect_load_error(dir.str(), "folder");
  expect_load_error(dir.write("empty.png", ""), "empty");
  expect_load_error(dir.write("garbage.png", "hello, world"), "unknown image format");
  expect_load_error(dir.write("p4.pbm", "P4\n8 1\n\xff"), "unsupported Netpbm");
  expect_load_error(dir.write("sig.png", "\x89PNG\r\n"), "truncated");

  GrayImage img{16, 16, {}};
  std::uint32_t state = 11;
  for (int i = 0; i < 256; ++i) img.pixels.push_back(static_cast<std::uint8_t>(noise(state)));
  std::string png = to_string(recur::encode_png(img));
  expect_load_error(dir.write("half.png", png.substr(0, png.size() / 2)), "truncated");
  std::string corrupt = png;
  corrupt[png.size() / 2] = static_cast<char>(corrupt[png.size() / 2] ^ 0x55);
  expect_load_error(dir.write("corrupt.png", corrupt), "corrupt");

  // IHDR claiming 100000 x 16 px, with a valid CRC so that only the size is wrong.
  std::string huge = png;
  huge[16] = 0;
  huge[17] = 0x01;
  huge[18] = static_cast<char>(0x86);
  huge[19] = static_cast<char>(0xA0);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(huge.data() + 12), 17);
  for (int i = 0; i < 4; ++i) huge[29 + i] = static_cast<char>((crc >> (24 - 8 * i)) & 0xff);
  expect_load_error(dir.write("huge.png", huge), "exceeds the limit");
  // IHDR claiming 16384 x 16384 (within the limit) on a file of a few hundred bytes: refused
  // before any buffer is sized for it.
  std::string claims = png;
  claims[16] = claims[20] = 0;
  claims[17] = claims[21] = 0;
  claims[18] = claims[22] = 0x40;
  claims[19] = claims[23] = 0;
  crc = crc32(0L, reinterpret_cast<const Bytef*>(claims.data() + 12), 17);
  for (int i = 0; i < 4; ++i) claims[29 + i] = static_cast<char>((crc >> (24 - 8 * i)) & 0xff);
  expect_load_error(dir.write("claims.png", claims), "too short for its declared 16384x16384");
  expect_load_error(dir.write("claims.pgm", "P5\n16384 16384\n255\n" + std::string(100, 'x')),
                    "cannot hold 16384x16384");
  expect_load_error(dir.write("claims_plain.pgm", "P2 16384 16384 255 1 2 3"), "truncated");

  expect_load_error(dir.write("short.pgm", "P5\n4 4\n255\n" + std::string(10, 'x')), "truncated");
  expect_load_error(dir.write("header.pgm", "P5\n4"), "truncated");
  expect_load_error(dir.write("plain.pgm", "P2 2 2 255 1 2 3"), "truncated");
  expect_load_error(dir.write("absurd.pgm", "P5\n100000 100000\n255\n"), "outside 1..16384");
  expect_load_error(dir.write("zero.pgm", "P5\n0 4\n255\n"), "outside 1..16384");
  expect_load_error(dir.write("maxval0.pgm", "P5 1 1 0\n\x00"), "maxval");
  expect_load_error(dir.write("maxval.pgm", "P5 1 1 70000\n\x00\x00"), "maxval");
  expect_load_error(dir.write("above.pgm", "P2 1 1 10 11"), "exceeds maxval");
  expect_load_error(dir.write("letters.pgm", "P2 a b"), "expected a number");
}

// The size check must not refuse real images that compress as well as deflate allows.
TEST(ImageErrors, UniformImagesAtTheDeflateLimitStillLoad) {
  TempDir dir;
  GrayImage flat{3000, 2000, std::vector<std::uint8_t>(3000 * 2000, 0)};
  const std::string png = to_string(recur::encode_png(flat));
  EXPECT_LT(png.size() * 500, flat.pixels.size()) << "compresses by more than 500:1";
  const GrayImage back = recur::load_gray_image(dir.write("flat.png", png));
  EXPECT_EQ(back.width, 3000);
  EXPECT_EQ(back.height, 2000);
  EXPECT_EQ(back.pixels, flat.pixels);
}

// Random byte flips and cuts of valid files: every outcome is an image or a recur::Error.
TEST(ImageErrors, MutatedFilesNeverCrash) {
  GrayImage img{12, 9, {}};
  std::uint32_t state = 17;
  for (int i = 0; i < 12 * 9; ++i) img.pixels.push_back(static_cast<std::uint8_t>(noise(state)));
  PngSpec pal;
  pal.width = 4;
  pal.color_type = PNG_COLOR_TYPE_PALETTE;
  pal.bit_depth = 2;
  pal.palette = {{0, 0, 0}, {255, 0, 0}, {0, 0, 255}, {255, 255, 255}};
  pal.trns = {255, 0};
  pal.rows = {0x1B};
  std::vector<std::string> seeds{to_string(recur::encode_png(img)),
                                 to_string(recur::encode_png(RgbImage(7, 5, Rgb{9, 80, 200}))),
                                 make_png(pal), "P2 3 2 255 0 1 2 3 4 5\n",
                                 "P5 2 2 65535\n" + std::string(8, '\x7f')};
  int errors = 0, images = 0;
  for (const std::string& seed : seeds) {
    for (int trial = 0; trial < 300; ++trial) {
      std::string bytes = seed;
      int flips = 1 + static_cast<int>(noise(state) % 4);
      for (int f = 0; f < flips; ++f) {
        bytes[noise(state) * 131u % bytes.size()] = static_cast<char>(noise(state));
      }
      if (trial % 3 == 0) bytes.resize(noise(state) * 7u % bytes.size());
      try {
        GrayImage g = recur::decode_gray_image(bytes, "mutant");
        ASSERT_EQ(g.pixels.size(), static_cast<std::size_t>(g.width) * g.height);
        ++images;
      } catch (const recur::Error& e) {
        EXPECT_EQ(e.subject(), "mutant");
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 100);
}

TEST(ImageResize, ConstantStaysConstant) {
  GrayImage img{100, 73, std::vector<std::uint8_t>(100 * 73, 137)};
  for (auto [w, h] : {std::pair{28, 28}, std::pair{33, 17}, std::pair{250, 90}}) {
    GrayImage r = recur::resize_area(img, w, h);
    ASSERT_EQ(r.width, w);
    ASSERT_EQ(r.height, h);
    EXPECT_TRUE(std::all_of(r.pixels.begin(), r.pixels.end(), [](auto v) { return v == 137; }))
        << w << "x" << h;
  }
}

TEST(ImageResize, TwoByTwoBlocksHalveExactly) {
  GrayImage small{28, 28, {}};
  std::uint32_t state = 5;
  for (int i = 0; i < 28 * 28; ++i) small.pixels.push_back(static_cast<std::uint8_t>(noise(state)));
  GrayImage big{56, 56, std::vector<std::uint8_t>(56 * 56)};
  for (int y = 0; y < 56; ++y) {
    for (int x = 0; x < 56; ++x) big.pixels[y * 56 + x] = small.at(x / 2, y / 2);
  }
  GrayImage r = recur::resize_area(big, 28, 28);
  EXPECT_EQ(r.pixels, small.pixels);
}

TEST(ImageResize, FractionalAreaWeights) {
  GrayImage img{3, 1, {0, 90, 180}};
  EXPECT_EQ(recur::resize_area(img, 2, 1).pixels, (std::vector<std::uint8_t>{30, 150}));
  EXPECT_EQ(recur::resize_area(img, 1, 1).pixels, (std::vector<std::uint8_t>{90}));
}

TEST(ImageResize, BadSizesThrow) {
  GrayImage img{2, 2, {1, 2, 3, 4}};
  EXPECT_THROW(recur::resize_area(img, 0, 5), recur::Error);
  EXPECT_THROW(recur::resize_area(img, 5, 20000), recur::Error);
  EXPECT_THROW(recur::resize_area(GrayImage{}, 5, 5), recur::Error);
  EXPECT_THROW(recur::resize_area(GrayImage{3, 3, {1}}, 5, 5), recur::Error);
}

TEST(ImagePng, EncodeRejectsMismatchedBuffers) {
  GrayImage g{4, 4, std::vector<std::uint8_t>(15)};
  EXPECT_THROW(recur::encode_png(g), recur::Error);
  RgbImage empty;
  EXPECT_THROW(recur::encode_png(empty), recur::Error);
  TempDir dir;
  std::string bad = dir.path("no/such/folder/x.png");
  try {
    recur::write_png(bad, RgbImage(4, 4, Rgb{1, 2, 3}));
    ADD_FAILURE() << "no error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), bad);
  }
}

TEST(ImageRgb, DrawingClipsToTheImage) {
  RgbImage img(10, 8, Rgb{255, 255, 255});
  img.fill_rect(-5, -5, 8, 8, Rgb{1, 2, 3});
  img.set(100, 100, Rgb{9, 9, 9});
  recur::draw_line(img, -50, 4, 60, 4, Rgb{7, 7, 7}, 2.0);
  EXPECT_EQ(img.get(0, 0), (Rgb{1, 2, 3}));
  EXPECT_EQ(img.get(2, 2), (Rgb{1, 2, 3}));
  EXPECT_EQ(img.get(3, 0), (Rgb{255, 255, 255}));
  EXPECT_EQ(img.get(0, 3), (Rgb{7, 7, 7}));
  EXPECT_EQ(img.get(9, 4), (Rgb{7, 7, 7}));
  EXPECT_EQ(img.get(9, 6), (Rgb{255, 255, 255}));
  EXPECT_THROW(RgbImage(-1, 5, Rgb{}), recur::Error);
  EXPECT_THROW(RgbImage(5, 20000, Rgb{}), recur::Error);
}

// ---------------------------------------------------------------------------------------------
// Font

std::vector<std::uint8_t> render(const std::string& text, int scale = 1) {
  RgbImage img(60, 40, Rgb{255, 255, 255});
  recur::draw_text(img, 2, 2, text, Rgb{0, 0, 0}, scale);
  return img.pixels;
}

TEST(FontTest, TextWidthMatchesTheGlyphCell) {
  EXPECT_EQ(recur::text_width(""), 0);
  EXPECT_EQ(recur::text_width("A"), 5);
  EXPECT_EQ(recur::text_width("abc"), 3 * recur::kFontAdvance - 1);
  EXPECT_EQ(recur::text_width("abc", 2), 2 * (3 * recur::kFontAdvance - 1));
  EXPECT_EQ(recur::text_width("ab\ncde"), 17);
  EXPECT_EQ(recur::text_width("\xc3\xa9t\xc3\xa9"), 17);  // three UTF-8 characters
  EXPECT_EQ(recur::text_height("x", 3), 3 * recur::kFontHeight);
  EXPECT_EQ(recur::text_height("x\ny"), recur::kFontHeight + recur::kFontLineHeight);
}

TEST(FontTest, DrawTextInksOnlyInsideItsBox) {
  RgbImage img(60, 40, Rgb{255, 255, 255});
  const std::string text = "Hg{7";
  recur::draw_text(img, 5, 6, text, Rgb{200, 0, 0}, 2);
  int w = recur::text_width(text, 2), h = recur::text_height(text, 2);
  int inked = 0, min_x = 1000, max_x = -1, min_y = 1000, max_y = -1;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      if (img.get(x, y) == Rgb{255, 255, 255}) continue;
      EXPECT_EQ(img.get(x, y), (Rgb{200, 0, 0}));
      ++inked;
      min_x = std::min(min_x, x);
      max_x = std::max(max_x, x);
      min_y = std::min(min_y, y);
      max_y = std::max(max_y, y);
    }
  }
  EXPECT_GT(inked, 40);
  EXPECT_EQ(min_x, 5);          // 'H' starts at the left edge
  EXPECT_EQ(max_x, 5 + w - 1);  // '7' ends at the right edge
  EXPECT_EQ(min_y, 6);          // capitals touch the top
  EXPECT_EQ(max_y, 6 + h - 1);  // 'g' reaches the bottom of the descender
}

TEST(FontTest, EveryGlyphIsInkedAndDistinct) {
  std::vector<std::vector<std::uint8_t>> seen;
  std::vector<std::uint8_t> blank = render(" ");
  EXPECT_EQ(blank, RgbImage(60, 40, Rgb{255, 255, 255}).pixels);
  for (int c = 33; c <= 126; ++c) {
    auto pixels = render(std::string(1, static_cast<char>(c)));
    EXPECT_NE(pixels, blank) << "glyph '" << static_cast<char>(c) << "' is empty";
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_NE(pixels, seen[i]) << "'" << static_cast<char>(c) << "' looks like '"
                                 << static_cast<char>(33 + i) << "'";
    }
    seen.push_back(pixels);
  }
  EXPECT_EQ(render("\x01"), render("?"));
  EXPECT_EQ(render("\xc3\xa9"), render("?"));
}

TEST(FontTest, VerticalTextIsTheRotatedBox) {
  RgbImage img(40, 60, Rgb{255, 255, 255});
  recur::draw_text_vertical(img, 3, 4, "Ag", Rgb{0, 0, 0}, 1);
  int min_x = 1000, max_x = -1, min_y = 1000, max_y = -1;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      if (img.get(x, y) == Rgb{255, 255, 255}) continue;
      min_x = std::min(min_x, x);
      max_x = std::max(max_x, x);
      min_y = std::min(min_y, y);
      max_y = std::max(max_y, y);
    }
  }
  EXPECT_EQ(min_x, 3);
  EXPECT_EQ(max_x, 3 + recur::text_height("Ag") - 1);
  EXPECT_EQ(min_y, 4);
  EXPECT_EQ(max_y, 4 + recur::text_width("Ag") - 1);
}

}  // namespace
