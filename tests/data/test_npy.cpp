// The .npy reader and writer and the sequence sets built from arrays: round trips, files that
// NumPy itself wrote (made at test time with /usr/bin/python3, skipped without NumPy), and one
// test per rejection with the exact reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "data/scratch_folder.hpp"
#include "recur/error.hpp"
#include "recur/text.hpp"

namespace {

namespace fs = std::filesystem;
using recur_test::ScratchFolder;
using recur_test::write_bytes;

template <typename T>
recur::NpyArray make_array(char kind, std::vector<std::int64_t> shape, const std::vector<T>& v) {
  recur::NpyArray a;
  a.kind = kind;
  a.item_size = sizeof(T);
  a.shape = std::move(shape);
  a.data.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

// A .npy file by hand: the given header text (padded to 64 bytes) and data.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t n = header.size();
  out += static_cast<char>(n & 0xFF);
  out += static_cast<char>((n >> 8) & 0xFF);
  if (major != 1) out += std::string(2, '\0');
  out += header;
  out += data;
  return out;
}

recur::NpyArray parse(const std::string& bytes, const std::string& source = "a.npy") {
  return recur::parse_npy(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                          source);
}

std::string parse_reason(const std::string& bytes) {
  try {
    parse(bytes);
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), "a.npy");
    return e.reason();
  }
  ADD_FAILURE() << "expected recur::Error";
  return {};
}

TEST(Npy, WriteThenReadRoundTrips) {
  ScratchFolder dir;
  const auto f = make_array<float>('f', {2, 3}, {1.f, -2.5f, 3.f, 0.f, 1e-7f, 6.f});
  recur::write_npy(dir.file("f.npy"), f);
  const recur::NpyArray back = recur::read_npy(dir.file("f.npy"));
  EXPECT_EQ(back.source, dir.file("f.npy"));
  EXPECT_EQ(back.kind, 'f');
  EXPECT_EQ(back.item_size, 4);
  EXPECT_EQ(back.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(back.data, f.data);
  EXPECT_EQ(back.count(), 6);
  EXPECT_EQ(fs::file_size(dir.file("f.npy")), 128u + 24u);  // data starts at a multiple of 64
  const auto i8 = make_array<std::int64_t>('i', {3}, {-1, 0, 1LL << 40});
  recur::write_npy(dir.file("i.npy"), i8);
  EXPECT_EQ(recur::read_npy(dir.file("i.npy")).data, i8.data);
  const auto scalar = make_array<std::int32_t>('i', {}, {42});
  recur::write_npy(dir.file("s.npy"), scalar);
  EXPECT_EQ(recur::read_npy(dir.file("s.npy")).count(), 1);
  const auto empty = make_array<float>('f', {0, 4}, {});
  recur::write_npy(dir.file("e.npy"), empty);
  EXPECT_EQ(recur::read_npy(dir.file("e.npy")).count(), 0);
}

TEST(Npy, WriterRefusesWhatItCannotWrite) {
  ScratchFolder dir;
  auto bad = make_array<float>('f', {2, 2}, {1.f, 2.f, 3.f});
  try {
    recur::write_npy(dir.file("bad.npy"), bad);
    FAIL() << "expected recur::Error";
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.reason(), "shape (2, 2) of float32 needs 16 bytes, data holds 12");
  }
  EXPECT_FALSE(fs::exists(dir.file("bad.npy")));
  auto u2 = make_array<std::uint16_t>('u', {1}, {7});
  EXPECT_THROW(recur::write_npy(dir.file("u2.npy"), u2), recur::Error);
}

TEST(Npy, ReadsEveryDtypeAndHeaderVersion) {
  const std::string two_u2("\x01\x00\xFF\xFF", 4);
  auto a = parse(npy_bytes("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", two_u2));
  EXPECT_EQ(a.kind, 'u');
  EXPECT_EQ(a.item_size, 2);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2}));
  a = parse(
      npy_bytes("{\"shape\": (1, 1), \"fortran_order\": False, \"descr\": \"|b1\"}", "\x01", 2));
  EXPECT_EQ(a.kind, 'b');
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 1}));
  for (const char* d : {"|i1", "|u1", "<i2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"}) {
    const int size = d[2] - '0';
    const auto got = parse(
        npy_bytes(std::string("{'descr': '") + d + "', 'fortran_order': False, 'shape': (3,), }",
                  std::string(static_cast<std::size_t>(3 * size), '\0')));
    EXPECT_EQ(got.item_size, size) << d;
    EXPECT_EQ(got.kind, d[1]) << d;
  }
}

TEST(Npy, BadMagicAndVersion) {
  EXPECT_EQ(parse_reason(""), "empty file");
  EXPECT_EQ(parse_reason("PK\x03\x04 not numpy"), "not a .npy file (bad magic)");
  EXPECT_EQ(parse_reason(std::string("\x93NUMPY\x04\x00", 8) + std::string(60, ' ')),
            "unsupported .npy format version 4.0 (1.0, 2.0, 3.0)");
  EXPECT_EQ(parse_reason(std::string("\x93NUMPY\x01\x00\x10", 9)), "truncated header");
  EXPECT_EQ(parse_reason(std::string("\x93NUMPY\x01\x00\x50\x00{'descr'", 17)),
            "truncated header: it declares 80 bytes, the file holds 7 after the prefix");
}

TEST(Npy, BadHeaders) {
  const std::string data(4, '\0');
  auto reason = [&](const std::string& dict) { return parse_reason(npy_bytes(dict, data)); };
  EXPECT_EQ(reason("['descr', '<f4']"), "the header is not a Python dict");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False}"), "the header has no 'shape'");
  EXPECT_EQ(reason("{'descr': '<f4', 'shape': (1,)}"), "the header has no 'fortran_order'");
  EXPECT_EQ(reason("{'fortran_order': False, 'shape': (1,)}"), "the header has no 'descr'");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}"),
            "fortran_order True: only C-order arrays are supported");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"),
            "the header has an unknown key 'x'");
  EXPECT_EQ(reason("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"),
            "the header repeats 'descr'");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}"),
            "the header lacks a tuple for 'shape'");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"),
            "'shape' must be a tuple of non-negative integers");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) } trailing"),
            "the header has text after its dict");
  EXPECT_EQ(reason("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) 'x'}"),
            "the header dict is malformed at character 55");
  EXPECT_EQ(reason("{'descr': '<f4"), "the header has an unterminated string");
}

TEST(Npy, WrongDtypes) {
  const std::string data(8, '\0');
  auto reason = [&](const std::string& descr) {
    return parse_reason(
        npy_bytes("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (1,), }", data));
  };
  EXPECT_EQ(reason(">f4"), "big-endian dtype '>f4' is not supported");
  EXPECT_EQ(reason("<f2"), "unsupported dtype '<f2' (b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)");
  EXPECT_EQ(reason("<c8"), "unsupported dtype '<c8' (b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)");
  EXPECT_EQ(reason("<U4"), "unsupported dtype '<U4' (b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8)");
  EXPECT_EQ(reason("O"), "unknown dtype 'O'");
  EXPECT_EQ(reason("%f4"), "unknown dtype '%f4'");
  EXPECT_EQ(parse_reason(npy_bytes(
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", data)),
            "structured dtypes (a list in 'descr') are not supported");
}

TEST(Npy, TruncatedTrailingAndOverflowingData) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(parse_reason(npy_bytes(dict, std::string(20, '\0'))),
            "truncated data: shape (2, 3) of float32 needs 24 bytes, the file holds 20");
  EXPECT_EQ(parse_reason(npy_bytes(dict, std::string(26, '\0'))),
            "has 2 trailing bytes after the array's data");
  EXPECT_EQ(
      parse_reason(npy_bytes(
          "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "")),
      "shape (4294967296, 4294967296) is too large (size overflow)");
  EXPECT_EQ(
      parse_reason(npy_bytes(
          "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", "")),
      "a dimension in 'shape' is too large");
  // Found by fuzz_npy: an empty array whose other dimensions multiply past 64 bits (count()
  // overflowed on the way to the zero). Refused like any size overflow.
  EXPECT_EQ(parse_reason(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                   "(375976162, 40294000000, 0, 40294000000000), }",
                                   "")),
            "shape (375976162, 40294000000, 0, 40294000000000) is too large (size overflow)");
  const auto empty =
      parse(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1000000000), }", ""));
  EXPECT_EQ(empty.count(), 0);
  recur::NpyArray made;
  made.source = "made";
  made.shape = {1LL << 40, 1LL << 40, 0};
  EXPECT_THROW((void)made.count(), recur::Error);
  // A huge but representable shape: refused before anything is allocated.
  EXPECT_EQ(parse_reason(npy_bytes(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }", "x")),
            "truncated data: shape (1000000000000,) of uint8 needs 1000000000000 bytes, the file "
            "holds 1");
}

// ---- sequence sets ----

void write_float(const std::string& path, std::vector<std::int64_t> shape,
                 const std::vector<float>& v) {
  recur::write_npy(path, make_array<float>('f', std::move(shape), v));
}
void write_int(const std::string& path, std::vector<std::int64_t> shape,
               const std::vector<std::int32_t>& v) {
  recur::write_npy(path, make_array<std::int32_t>('i', std::move(shape), v));
}

template <typename Body>
std::string error_reason(Body&& body, const std::string& subject) {
  try {
    body();
  } catch (const recur::Error& e) {
    EXPECT_EQ(e.subject(), subject) << e.what();
    return e.reason();
  }
  ADD_FAILURE() << "expected recur::Error about " << subject;
  return {};
}

TEST(NpySequences, LoadsFloatSequencesWithLengths) {
  ScratchFolder dir;
  write_float(dir.file("x.npy"), {2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  write_int(dir.file("y.npy"), {2}, {4, 0});
  write_int(dir.file("len.npy"), {2}, {3, 1});
  const auto set =
      recur::load_npy_sequences(dir.file("x.npy"), dir.file("y.npy"), dir.file("len.npy"));
  EXPECT_EQ(set.source, dir.file("x.npy"));
  EXPECT_EQ(set.count, 2);
  EXPECT_EQ(set.steps, 3);
  EXPECT_EQ(set.features, 2);
  EXPECT_EQ(set.num_classes, 5);
  EXPECT_EQ(set.x[(1 * 3 + 2) * 2 + 1], 11.f);
  EXPECT_EQ(set.labels, (std::vector<std::int32_t>{4, 0}));
  EXPECT_EQ(set.lengths, (std::vector<std::int32_t>{3, 1}));
  const auto no_lengths = recur::load_npy_sequences(dir.file("x.npy"), dir.file("y.npy"));
  EXPECT_EQ(no_lengths.lengths, (std::vector<std::int32_t>{3, 3}));
}

TEST(NpySequences, Uint8TwoDimensionalIsScaled) {
  ScratchFolder dir;
  // write_npy writes float32/int32/int64 only: the uint8 file is made by hand.
  write_bytes(dir.file("x.npy"),
              npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 4), }",
                        std::string("\x00\x33\xFF\x66", 4)));
  write_int(dir.file("y.npy"), {1}, {1});
  const auto set = recur::load_npy_sequences(dir.file("x.npy"), dir.file("y.npy"));
  EXPECT_EQ(set.features, 1);
  EXPECT_EQ(set.steps, 4);
  EXPECT_EQ(set.num_classes, 2);
  EXPECT_EQ(set.x, (std::vector<float>{0.f, 51.f / 255.f, 1.f, 102.f / 255.f}));
}

TEST(NpySequences, Rejections) {
  ScratchFolder dir;
  const std::string x = dir.file("x.npy"), y = dir.file("y.npy"), len = dir.file("len.npy");
  write_int(y, {2}, {0, 1});
  auto load = [&](const std::string& lengths = "") {
    return [=] { recur::load_npy_sequences(x, y, lengths); };
  };
  recur::write_npy(x, make_array<std::int64_t>('i', {2, 3}, {0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(error_reason(load(), x), "x must be float32 or uint8, got int64");
  write_float(x, {6}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(error_reason(load(), x), "x must be [N, T, F] or [N, T], got shape (6,)");
  write_float(x, {2, 0, 3}, {});
  EXPECT_EQ(error_reason(load(), x), "x has an empty dimension: shape (2, 0, 3)");
  write_float(x, {2, 3}, {0, 1, 2, 3, std::numeric_limits<float>::quiet_NaN(), 5});
  EXPECT_EQ(error_reason(load(), x), "x holds a NaN value at [1, 1, 0]");
  write_float(x, {2, 3}, {0, 1, std::numeric_limits<float>::infinity(), 3, 4, 5});
  EXPECT_EQ(error_reason(load(), x), "x holds an infinite value at [0, 2, 0]");
  write_float(x, {2, 3}, {0, 1, 2, 3, 4, 5});
  write_int(y, {3}, {0, 1, 1});
  EXPECT_EQ(error_reason(load(), y), "holds 3 labels but x holds 2 sequences");
  write_int(y, {2, 1}, {0, 1});
  EXPECT_EQ(error_reason(load(), y), "labels must be one-dimensional [N], got shape (2, 1)");
  write_float(y, {2}, {0, 1});
  EXPECT_EQ(error_reason(load(), y), "labels must be integers, got float32");
  write_int(y, {2}, {0, 1000});
  EXPECT_EQ(error_reason(load(), y), "labels[1] = 1000 is out of range [0, 999]");
  write_int(y, {2}, {-1, 0});
  EXPECT_EQ(error_reason(load(), y), "labels[0] = -1 is out of range [0, 999]");
  write_int(y, {2}, {0, 1});
  write_int(len, {2}, {3, 4});
  EXPECT_EQ(error_reason(load(len), len), "lengths[1] = 4 is out of range [1, 3]");
  write_int(len, {2}, {0, 1});
  EXPECT_EQ(error_reason(load(len), len), "lengths[0] = 0 is out of range [1, 3]");
  write_bytes(x, "");
  EXPECT_EQ(error_reason(load(), x), "empty file");
}

TEST(NpyFolder, LoadsBothSidesAndNamesMissingFiles) {
  ScratchFolder dir;
  EXPECT_FALSE(recur::is_npy_folder(dir.str()));
  write_float(dir.file("x_train.npy"), {3, 2, 2}, std::vector<float>(12, 0.5f));
  write_int(dir.file("y_train.npy"), {3}, {0, 1, 1});
  write_int(dir.file("lengths_train.npy"), {3}, {1, 2, 2});
  EXPECT_TRUE(recur::is_npy_folder(dir.str()));
  EXPECT_EQ(error_reason([&] { recur::load_npy_folder(dir.str()); }, dir.str()),
            "missing x_test.npy (a folder of arrays holds x_train.npy, y_train.npy, x_test.npy, "
            "y_test.npy and optionally lengths_train.npy, lengths_test.npy)");
  write_float(dir.file("x_test.npy"), {1, 5, 3}, std::vector<float>(15, 0.f));
  write_int(dir.file("y_test.npy"), {1}, {2});
  EXPECT_EQ(error_reason([&] { recur::load_npy_folder(dir.str()); }, dir.file("x_test.npy")),
            "has 3 features per step, x_train.npy has 2");
  write_float(dir.file("x_test.npy"), {1, 5, 2}, std::vector<float>(10, 0.f));
  const auto split = recur::load_npy_folder(dir.str());
  EXPECT_EQ(split.train.count, 3);
  EXPECT_EQ(split.train.lengths, (std::vector<std::int32_t>{1, 2, 2}));
  EXPECT_EQ(split.test.steps, 5);
  EXPECT_EQ(split.test.lengths, (std::vector<std::int32_t>{5}));
  EXPECT_EQ(split.train.num_classes, 3);  // the test side's label 2 counts
  EXPECT_EQ(split.test.num_classes, 3);
  EXPECT_EQ(error_reason([&] { recur::load_npy_folder(dir.file("nope")); }, dir.file("nope")),
            "no such folder");
}

// ---- files NumPy wrote ----

bool have_numpy() {
  return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

TEST(NpyFromNumpy, ReadsWhatNumpyWritesAndTheOtherWayRound) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with NumPy is not installed";
  ScratchFolder dir;
  const std::string script =
      "import numpy as np, sys\n"
      "d = sys.argv[1]\n"
      "x = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8).astype(np.float32)\n"
      "np.save(d + '/x_train.npy', x)\n"
      "np.save(d + '/y_train.npy', np.array([1, 0], dtype=np.int64))\n"
      "np.save(d + '/lengths_train.npy', np.array([3, 2], dtype=np.int32))\n"
      "np.save(d + '/x_test.npy', np.arange(16, dtype=np.uint8).reshape(2, 2, 4) * 15)\n"
      "np.save(d + '/y_test.npy', np.array([2, 1], dtype=np.uint8))\n"
      "np.save(d + '/x2d.npy', np.arange(8, dtype=np.uint8).reshape(2, 4) * 30)\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))\n"
      "np.save(d + '/big.npy', np.ones(3, dtype='>f4'))\n"
      "np.save(d + '/f64.npy', np.ones((2, 3, 4), dtype=np.float64))\n"
      "np.save(d + '/bool.npy', np.array([True, False, True]))\n"
      "np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.full((2, 2), 7, np.int16), "
      "version=(2, 0))\n"
      "np.lib.format.write_array(open(d + '/v3.npy', 'wb'), np.full((1,), -3, np.int8), "
      "version=(3, 0))\n";
  write_bytes(dir.file("make.py"), script);
  ASSERT_EQ(
      std::system(("/usr/bin/python3 '" + dir.file("make.py") + "' '" + dir.str() + "'").c_str()),
      0);
  const auto split = recur::load_npy_folder(dir.str());
  EXPECT_EQ(split.train.count, 2);
  EXPECT_EQ(split.train.steps, 3);
  EXPECT_EQ(split.train.features, 4);
  EXPECT_EQ(split.train.x[23], 23.f / 8);
  EXPECT_EQ(split.train.labels, (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(split.train.lengths, (std::vector<std::int32_t>{3, 2}));
  EXPECT_EQ(split.test.steps, 2);
  EXPECT_FLOAT_EQ(split.test.x[15], 225.f / 255.f);
  EXPECT_EQ(split.test.num_classes, 3);
  const auto two_d = recur::load_npy_sequences(dir.file("x2d.npy"), dir.file("y_test.npy"));
  EXPECT_EQ(two_d.features, 1);  // [N, T] uint8: one feature per step
  EXPECT_EQ(two_d.steps, 4);
  EXPECT_FLOAT_EQ(two_d.x[7], 210.f / 255.f);
  EXPECT_EQ(
      error_reason([&] { recur::read_npy(dir.file("fortran.npy")); }, dir.file("fortran.npy")),
      "fortran_order True: only C-order arrays are supported");
  EXPECT_EQ(error_reason([&] { recur::read_npy(dir.file("big.npy")); }, dir.file("big.npy")),
            "big-endian dtype '>f4' is not supported");
  EXPECT_EQ(
      error_reason([&] { recur::load_npy_sequences(dir.file("f64.npy"), dir.file("y_train.npy")); },
                   dir.file("f64.npy")),
      "x must be float32 or uint8, got float64 (convert with x.astype(numpy.float32))");
  const auto b = recur::read_npy(dir.file("bool.npy"));
  EXPECT_EQ(b.kind, 'b');
  EXPECT_EQ(b.data, (std::vector<unsigned char>{1, 0, 1}));
  const auto v2 = recur::read_npy(dir.file("v2.npy"));
  EXPECT_EQ(v2.shape, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(v2.data[0], 7);
  const auto v3 = recur::read_npy(dir.file("v3.npy"));
  EXPECT_EQ(v3.kind, 'i');
  EXPECT_EQ(static_cast<std::int8_t>(v3.data[0]), -3);
  // What recur writes, NumPy reads.
  recur::write_npy(dir.file("ours.npy"), make_array<float>('f', {2, 2}, {1.5f, -2.f, 0.f, 8.f}));
  const std::string check = "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load('" +
                            dir.file("ours.npy") +
                            "'); sys.exit(0 if a.dtype == np.float32 and a.shape == (2, 2) and "
                            "a[1, 1] == 8 and a[0, 1] == -2 else 1)\"";
  EXPECT_EQ(std::system(check.c_str()), 0);
}

}  // namespace
