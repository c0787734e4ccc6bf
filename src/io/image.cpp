// Image loading (PNG through libpng, Netpbm by hand), resizing, PNG encoding and the basic
// raster operations of RgbImage.
//
// libpng reports errors by longjmp. Every libpng call runs inside one of two plain functions
// (run_png_decode, run_png_encode) that hold only raw pointers and a job struct owned by the
// caller: no C++ object with a destructor lives between setjmp and a longjmp, which is what
// makes the jump well-defined in C++. The error callback copies libpng's message into the job;
// the C++ side turns it into a recur::Error after the libpng structures are freed.
#include "recur/image.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "recur/error.hpp"
#include "recur/fs.hpp"

namespace recur {

// ---------------------------------------------------------------------------------------------
// RgbImage

RgbImage::RgbImage(int w, int h, Rgb background) {
  if (w < 0 || h < 0 || w > kMaxImageSide || h > kMaxImageSide) {
    throw Error("image", "size " + std::to_string(w) + "x" + std::to_string(h) + " is outside 0.." +
                             std::to_string(kMaxImageSide) + " per side");
  }
  width = w;
  height = h;
  pixels.resize(static_cast<std::size_t>(w) * h * 3);
  for (std::size_t i = 0; i < pixels.size(); i += 3) {
    pixels[i] = background.r;
    pixels[i + 1] = background.g;
    pixels[i + 2] = background.b;
  }
}

void RgbImage::set(int x, int y, Rgb c) {
  if (!contains(x, y)) return;
  std::uint8_t* p = &pixels[(static_cast<std::size_t>(y) * width + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

Rgb RgbImage::get(int x, int y) const {
  if (!contains(x, y)) return {};
  const std::uint8_t* p = &pixels[(static_cast<std::size_t>(y) * width + x) * 3];
  return {p[0], p[1], p[2]};
}

void RgbImage::blend(int x, int y, Rgb c, double alpha) {
  if (!contains(x, y) || !(alpha > 0.0)) return;
  if (alpha >= 1.0) {
    set(x, y, c);
    return;
  }
  std::uint8_t* p = &pixels[(static_cast<std::size_t>(y) * width + x) * 3];
  auto mix = [alpha](std::uint8_t from, std::uint8_t to) {
    return static_cast<std::uint8_t>(std::lround(from + (to - from) * alpha));
  };
  p[0] = mix(p[0], c.r);
  p[1] = mix(p[1], c.g);
  p[2] = mix(p[2], c.b);
}

void RgbImage::fill_rect(int x, int y, int w, int h, Rgb c) {
  int x0 = std::max(x, 0), y0 = std::max(y, 0);
  int x1 = std::min(x + w, width), y1 = std::min(y + h, height);
  for (int yy = y0; yy < y1; ++yy) {
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
  }
}

void RgbImage::draw_rect(int x, int y, int w, int h, Rgb c, int thickness) {
  if (w <= 0 || h <= 0 || thickness <= 0) return;
  int t = std::min({thickness, (w + 1) / 2, (h + 1) / 2});
  fill_rect(x, y, w, t, c);
  fill_rect(x, y + h - t, w, t, c);
  fill_rect(x, y + t, t, h - 2 * t, c);
  fill_rect(x + w - t, y + t, t, h - 2 * t, c);
}

void RgbImage::hline(int x0, int x1, int y, Rgb c) {
  if (x0 > x1) std::swap(x0, x1);
  fill_rect(x0, y, x1 - x0 + 1, 1, c);
}

void RgbImage::vline(int x, int y0, int y1, Rgb c) {
  if (y0 > y1) std::swap(y0, y1);
  fill_rect(x, y0, 1, y1 - y0 + 1, c);
}

std::uint8_t luma(Rgb c) {
  return static_cast<std::uint8_t>((299u * c.r + 587u * c.g + 114u * c.b + 500u) / 1000u);
}

GrayImage to_gray(const RgbImage& img) {
  GrayImage out{img.width, img.height, {}};
  out.pixels.resize(static_cast<std::size_t>(img.width) * img.height);
  for (std::size_t i = 0; i < out.pixels.size(); ++i) {
    const std::uint8_t* p = &img.pixels[i * 3];
    out.pixels[i] = luma({p[0], p[1], p[2]});
  }
  return out;
}

void draw_line(RgbImage& img, double x0, double y0, double x1, double y1, Rgb color, double width) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1) ||
      !(width > 0.0)) {
    return;
  }
  double half = width / 2.0;
  double pad = half + 1.0;
  // Clip the box to the image first, so far-away coordinates cost nothing.
  int bx0 = static_cast<int>(std::floor(std::max(std::min(x0, x1) - pad, -1.0)));
  int by0 = static_cast<int>(std::floor(std::max(std::min(y0, y1) - pad, -1.0)));
  int bx1 = static_cast<int>(std::ceil(std::min(std::max(x0, x1) + pad, img.width + 1.0)));
  int by1 = static_cast<int>(std::ceil(std::min(std::max(y0, y1) + pad, img.height + 1.0)));
  double dx = x1 - x0, dy = y1 - y0;
  double len2 = dx * dx + dy * dy;
  for (int py = std::max(by0, 0); py < std::min(by1, img.height); ++py) {
    for (int px = std::max(bx0, 0); px < std::min(bx1, img.width); ++px) {
      double cx = px + 0.5 - x0, cy = py + 0.5 - y0;
      double t = len2 > 0.0 ? std::clamp((cx * dx + cy * dy) / len2, 0.0, 1.0) : 0.0;
      double ex = cx - t * dx, ey = cy - t * dy;
      double coverage = std::clamp(half + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
      img.blend(px, py, color, coverage);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// libpng glue

namespace {

constexpr std::size_t kPngMessageSize = 256;

void copy_message(char* dst, const char* src) {
  std::snprintf(dst, kPngMessageSize, "%s", src ? src : "unknown error");
}

bool try_resize(std::vector<std::uint8_t>& v, std::size_t n) {
  try {
    v.resize(n);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

bool try_resize(std::vector<std::uint8_t*>& v, std::size_t n) {
  try {
    v.resize(n);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

// Composites one decoded row (8-bit, 1..4 channels: G, GA, RGB, RGBA) on black into gray.
void row_to_gray(const std::uint8_t* src, int channels, int width, std::uint8_t* dst) {
  for (int x = 0; x < width; ++x) {
    const std::uint8_t* p = src + static_cast<std::size_t>(x) * channels;
    switch (channels) {
      case 1:
        dst[x] = p[0];
        break;
      case 2:
        dst[x] = static_cast<std::uint8_t>((p[0] * p[1] + 127u) / 255u);
        break;
      case 3:
        dst[x] = luma({p[0], p[1], p[2]});
        break;
      default: {
        std::uint32_t y = 299u * p[0] + 587u * p[1] + 114u * p[2];  // luma times 1000
        dst[x] = static_cast<std::uint8_t>((y * p[3] + 127500u) / 255000u);
        break;
      }
    }
  }
}

struct PngDecodeJob {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  std::size_t pos = 0;
  std::uint32_t width = 0, height = 0;
  bool too_large = false;
  bool too_short = false;                        // the file cannot hold the declared image
  std::vector<std::uint8_t>* gray = nullptr;     // output, width * height
  std::vector<std::uint8_t>* decoded = nullptr;  // scratch: one row, or the whole interlaced image
  std::vector<std::uint8_t*>* rows = nullptr;    // scratch: row pointers for interlaced images
  char message[kPngMessageSize] = {};
};

void png_on_error(png_structp png, png_const_charp msg) {
  copy_message(static_cast<char*>(png_get_error_ptr(png)), msg);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* job = static_cast<PngDecodeJob*>(png_get_io_ptr(png));
  if (n > job->size - job->pos) png_error(png, "file is truncated");
  std::memcpy(out, job->data + job->pos, n);
  job->pos += n;
}

// Decodes job->data into job->gray. Returns false with job->message (or job->too_large) set.
bool run_png_decode(PngDecodeJob* job) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, job->message, png_on_error, png_on_warning);
  if (png == nullptr) {
    copy_message(job->message, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    copy_message(job->message, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, job, png_read_memory);
  png_read_info(png, info);
  job->width = png_get_image_width(png, info);
  job->height = png_get_image_height(png, info);
  if (job->width > static_cast<std::uint32_t>(kMaxImageSide) ||
      job->height > static_cast<std::uint32_t>(kMaxImageSide)) {
    job->too_large = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  int color_type = png_get_color_type(png, info);
  int bit_depth = png_get_bit_depth(png, info);
  {
    // Deflate packs at most 1032 bytes into one, so the file must hold at least 1/1032 of the
    // filtered rows it declares; a 100-byte header claiming 16384x16384 would otherwise make
    // the buffers below take over a gigabyte before the pixel data is found missing.
    const std::uint64_t row_bits =
        static_cast<std::uint64_t>(job->width) * png_get_channels(png, info) * bit_depth;
    const std::uint64_t raw = static_cast<std::uint64_t>(job->height) * (1 + (row_bits + 7) / 8);
    if (static_cast<std::uint64_t>(job->size) < raw / 1032) {
      job->too_short = true;
      png_destroy_read_struct(&png, &info, nullptr);
      return false;
    }
  }
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (bit_depth == 16) png_set_scale_16(png);
  int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int channels = png_get_channels(png, info);
  std::size_t rowbytes = png_get_rowbytes(png, info);
  if (png_get_bit_depth(png, info) != 8 || channels < 1 || channels > 4 ||
      rowbytes < static_cast<std::size_t>(job->width) * channels) {
    png_error(png, "unsupported pixel layout");
  }
  std::size_t w = job->width, h = job->height;
  std::size_t scratch_rows = passes > 1 ? h : 1;
  if (!try_resize(*job->gray, w * h) || !try_resize(*job->decoded, rowbytes * scratch_rows) ||
      !try_resize(*job->rows, scratch_rows)) {
    png_error(png, "out of memory");
  }
  if (passes > 1) {
    for (std::size_t y = 0; y < h; ++y) (*job->rows)[y] = job->decoded->data() + y * rowbytes;
    png_read_image(png, job->rows->data());
    for (std::size_t y = 0; y < h; ++y) {
      row_to_gray((*job->rows)[y], channels, static_cast<int>(w), job->gray->data() + y * w);
    }
  } else {
    for (std::size_t y = 0; y < h; ++y) {
      png_read_row(png, job->decoded->data(), nullptr);
      row_to_gray(job->decoded->data(), channels, static_cast<int>(w), job->gray->data() + y * w);
    }
  }
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

struct PngEncodeJob {
  const std::uint8_t* pixels = nullptr;
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t>* out = nullptr;
  char message[kPngMessageSize] = {};
};

bool try_append(std::vector<std::uint8_t>& v, const std::uint8_t* data, std::size_t n) {
  try {
    v.insert(v.end(), data, data + n);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

void png_write_memory(png_structp png, png_bytep data, png_size_t n) {
  auto* job = static_cast<PngEncodeJob*>(png_get_io_ptr(png));
  if (!try_append(*job->out, data, n)) png_error(png, "out of memory");
}

void png_flush_memory(png_structp) {}

bool run_png_encode(PngEncodeJob* job) {
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, job->message, png_on_error, png_on_warning);
  if (png == nullptr) {
    copy_message(job->message, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    copy_message(job->message, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, job, png_write_memory, png_flush_memory);
  png_set_IHDR(png, info, static_cast<png_uint_32>(job->width),
               static_cast<png_uint_32>(job->height), 8,
               job->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  std::size_t stride = static_cast<std::size_t>(job->width) * job->channels;
  for (int y = 0; y < job->height; ++y) {
    png_write_row(png, job->pixels + static_cast<std::size_t>(y) * stride);
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

std::vector<std::uint8_t> encode_png_pixels(const std::uint8_t* pixels, std::size_t size, int width,
                                            int height, int channels, const std::string& subject) {
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide) {
    throw Error(subject, "cannot encode an image of size " + std::to_string(width) + "x" +
                             std::to_string(height) + " (each side must be 1.." +
                             std::to_string(kMaxImageSide) + ")");
  }
  if (size != static_cast<std::size_t>(width) * height * channels) {
    throw Error(subject, "pixel buffer holds " + std::to_string(size) + " bytes, expected " +
                             std::to_string(static_cast<std::size_t>(width) * height * channels));
  }
  std::vector<std::uint8_t> out;
  PngEncodeJob job;
  job.pixels = pixels;
  job.width = width;
  job.height = height;
  job.channels = channels;
  job.out = &out;
  if (!run_png_encode(&job))
    throw Error(subject, std::string("PNG encoding failed: ") + job.message);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Netpbm

constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

class NetpbmReader {
 public:
  NetpbmReader(std::string_view bytes, const std::string& name) : s_(bytes), name_(name) {}

  GrayImage read() {
    char kind = s_[1];
    bool plain = kind == '2' || kind == '3';
    int channels = (kind == '3' || kind == '6') ? 3 : 1;
    pos_ = 2;
    if (pos_ < s_.size() && !is_space(s_[pos_]) && s_[pos_] != '#') {
      throw Error(name_, "not a Netpbm file: no whitespace after the magic number");
    }
    long long w = header_number("width");
    long long h = header_number("height");
    long long maxval = header_number("maxval");
    if (w < 1 || h < 1 || w > kMaxImageSide || h > kMaxImageSide) {
      throw Error(name_, "image size " + std::to_string(w) + "x" + std::to_string(h) +
                             " is outside 1.." + std::to_string(kMaxImageSide) + " per side");
    }
    if (maxval < 1 || maxval > 65535) {
      throw Error(name_, "maxval " + std::to_string(maxval) + " is outside 1..65535");
    }
    GrayImage img{static_cast<int>(w), static_cast<int>(h), {}};
    std::size_t count = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
    // Before allocating: the rest of the file must be able to hold the samples (binary: their
    // bytes; plain: a digit and a separator each).
    const std::size_t rest = s_.size() - std::min(s_.size(), pos_);
    const std::size_t least =
        plain ? 2 * count * channels - 1 : 1 + count * channels * (maxval < 256 ? 1u : 2u);
    if (rest < least) {
      throw Error(name_, "file is truncated: " + std::to_string(rest) +
                             " bytes after the header cannot hold " + std::to_string(w) + "x" +
                             std::to_string(h) + " pixels");
    }
    img.pixels.resize(count);
    auto scale = [maxval](long long v) {
      return static_cast<std::uint8_t>((v * 255 + maxval / 2) / maxval);
    };
    std::uint8_t rgb[3] = {};
    if (plain) {
      for (std::size_t i = 0; i < count; ++i) {
        for (int c = 0; c < channels; ++c) {
          long long v = plain_sample(i * channels + c, count * channels);
          if (v > maxval) {
            throw Error(
                name_, "sample " + std::to_string(v) + " exceeds maxval " + std::to_string(maxval));
          }
          rgb[c] = scale(v);
        }
        img.pixels[i] = channels == 1 ? rgb[0] : luma({rgb[0], rgb[1], rgb[2]});
      }
      return img;
    }
    // Binary: exactly one whitespace byte separates maxval from the samples (the size check
    // above counted it and every sample byte).
    ++pos_;
    const std::size_t sample_bytes = maxval < 256 ? 1 : 2;
    const auto* p = reinterpret_cast<const unsigned char*>(s_.data() + pos_);
    for (std::size_t i = 0; i < count; ++i) {
      for (int c = 0; c < channels; ++c) {
        long long v = sample_bytes == 1 ? p[0] : (p[0] << 8) | p[1];
        p += sample_bytes;
        if (v > maxval) {
          throw Error(name_,
                      "sample " + std::to_string(v) + " exceeds maxval " + std::to_string(maxval));
        }
        rgb[c] = scale(v);
      }
      img.pixels[i] = channels == 1 ? rgb[0] : luma({rgb[0], rgb[1], rgb[2]});
    }
    return img;
  }

 private:
  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }

  void skip_space_and_comments() {
    while (pos_ < s_.size()) {
      if (is_space(s_[pos_])) {
        ++pos_;
      } else if (s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  // Reads a decimal number; returns -1 at the end of the data.
  long long number(const std::string& what) {
    skip_space_and_comments();
    if (pos_ >= s_.size()) return -1;
    if (s_[pos_] < '0' || s_[pos_] > '9') {
      throw Error(name_, "expected a number for the " + what + ", found '" + printable(s_[pos_]) +
                             "' at byte " + std::to_string(pos_));
    }
    long long v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      v = v * 10 + (s_[pos_] - '0');
      if (v > 1000000000LL) throw Error(name_, "the " + what + " is too large");
      ++pos_;
    }
    return v;
  }

  long long header_number(const std::string& what) {
    long long v = number(what);
    if (v < 0) throw Error(name_, "file is truncated: header ends before the " + what);
    if (pos_ < s_.size() && !is_space(s_[pos_]) && s_[pos_] != '#') {
      throw Error(name_, "bad header: unexpected '" + printable(s_[pos_]) + "' after the " + what);
    }
    return v;
  }

  long long plain_sample(std::size_t index, std::size_t total) {
    long long v = number("pixel value");
    if (v < 0) {
      throw Error(name_, "file is truncated: " + std::to_string(index) + " of " +
                             std::to_string(total) + " samples present");
    }
    return v;
  }

  static std::string printable(char c) {
    if (c >= 32 && c < 127) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
    return buf;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// Per-axis resampling weights: output pixel o reads taps[o].
struct Tap {
  int index;
  double weight;
};

std::vector<std::vector<Tap>> resample_taps(int src, int dst) {
  std::vector<std::vector<Tap>> taps(dst);
  if (dst <= src) {
    double ratio = static_cast<double>(src) / dst;
    for (int o = 0; o < dst; ++o) {
      double lo = o * ratio, hi = (o + 1) * ratio;
      int first = static_cast<int>(std::floor(lo));
      int last = std::min(static_cast<int>(std::ceil(hi)), src);
      for (int i = first; i < last; ++i) {
        double overlap = std::min(hi, i + 1.0) - std::max(lo, static_cast<double>(i));
        if (overlap > 1e-12) taps[o].push_back({i, overlap / ratio});
      }
    }
  } else {
    for (int o = 0; o < dst; ++o) {
      double s = (o + 0.5) * src / dst - 0.5;
      s = std::clamp(s, 0.0, src - 1.0);
      int i0 = static_cast<int>(std::floor(s));
      int i1 = std::min(i0 + 1, src - 1);
      double f = s - i0;
      taps[o].push_back({i0, 1.0 - f});
      if (f > 0.0) taps[o].push_back({i1, f});
    }
  }
  return taps;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public entry points

GrayImage decode_gray_image(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) throw Error(name, "file is empty");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t sig = std::min<std::size_t>(bytes.size(), sizeof kPngSignature);
  if (std::memcmp(u, kPngSignature, sig) == 0) {
    if (bytes.size() < sizeof kPngSignature) throw Error(name, "PNG file is truncated");
    GrayImage img;
    std::vector<std::uint8_t> decoded;
    std::vector<std::uint8_t*> rows;
    PngDecodeJob job;
    job.data = u;
    job.size = bytes.size();
    job.gray = &img.pixels;
    job.decoded = &decoded;
    job.rows = &rows;
    if (!run_png_decode(&job)) {
      if (job.too_short) {
        throw Error(name, "PNG file of " + std::to_string(bytes.size()) +
                              " bytes is too short for its declared " + std::to_string(job.width) +
                              "x" + std::to_string(job.height) + " image (truncated or corrupt)");
      }
      if (job.too_large) {
        throw Error(name, "image size " + std::to_string(job.width) + "x" +
                              std::to_string(job.height) + " exceeds the limit of " +
                              std::to_string(kMaxImageSide) + " per side");
      }
      throw Error(name, std::string("corrupt or unreadable PNG: ") + job.message);
    }
    img.width = static_cast<int>(job.width);
    img.height = static_cast<int>(job.height);
    return img;
  }
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7') {
    char kind = bytes[1];
    if (kind == '2' || kind == '3' || kind == '5' || kind == '6') {
      return NetpbmReader(bytes, name).read();
    }
    throw Error(name, std::string("unsupported Netpbm format P") + kind +
                          " (recur reads P2, P3, P5 and P6)");
  }
  throw Error(name, "unknown image format (expected PNG, PGM or PPM)");
}

GrayImage load_gray_image(const std::string& path) {
  std::string bytes = read_file(path);
  return decode_gray_image(bytes, path);
}

GrayImage resize_area(const GrayImage& img, int width, int height) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<std::size_t>(img.width) * img.height) {
    throw Error("resize", "input image is empty or its pixel buffer does not match " +
                              std::to_string(img.width) + "x" + std::to_string(img.height));
  }
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide) {
    throw Error("resize", "target size " + std::to_string(width) + "x" + std::to_string(height) +
                              " is outside 1.." + std::to_string(kMaxImageSide) + " per side");
  }
  if (width == img.width && height == img.height) return img;
  auto xtaps = resample_taps(img.width, width);
  auto ytaps = resample_taps(img.height, height);
  // Horizontal pass into doubles, then vertical.
  std::vector<double> rows(static_cast<std::size_t>(img.height) * width);
  for (int y = 0; y < img.height; ++y) {
    const std::uint8_t* src = &img.pixels[static_cast<std::size_t>(y) * img.width];
    double* dst = &rows[static_cast<std::size_t>(y) * width];
    for (int x = 0; x < width; ++x) {
      double acc = 0.0;
      for (const Tap& t : xtaps[x]) acc += t.weight * src[t.index];
      dst[x] = acc;
    }
  }
  GrayImage out{width, height, {}};
  out.pixels.resize(static_cast<std::size_t>(width) * height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      double acc = 0.0;
      for (const Tap& t : ytaps[y])
        acc += t.weight * rows[static_cast<std::size_t>(t.index) * width + x];
      out.pixels[static_cast<std::size_t>(y) * width + x] =
          static_cast<std::uint8_t>(std::lround(std::clamp(acc, 0.0, 255.0)));
    }
  }
  return out;
}

std::vector<std::uint8_t> encode_png(const RgbImage& img) {
  return encode_png_pixels(img.pixels.data(), img.pixels.size(), img.width, img.height, 3, "png");
}

std::vector<std::uint8_t> encode_png(const GrayImage& img) {
  return encode_png_pixels(img.pixels.data(), img.pixels.size(), img.width, img.height, 1, "png");
}

void write_png(const std::string& path, const RgbImage& img) {
  auto bytes =
      encode_png_pixels(img.pixels.data(), img.pixels.size(), img.width, img.height, 3, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

void write_png(const std::string& path, const GrayImage& img) {
  auto bytes =
      encode_png_pixels(img.pixels.data(), img.pixels.size(), img.width, img.height, 1, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace recur
