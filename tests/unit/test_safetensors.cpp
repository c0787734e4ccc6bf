// Safetensors: round trips, the byte layout, a file read back by Python/torch, and one test per
// kind of malformed file, each asserting its message.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/safetensors.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "recur-safetensors-XXXXXX").string();
    RECUR_ASSERT(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// The tensors of the round-trip and Python tests: every dtype, an empty and a 0-d tensor.
struct Sample {
  std::vector<float> w;
  std::vector<double> d;
  std::vector<int32_t> ids{-2, 0, 7, 1 << 30};
  std::vector<int64_t> big{-(int64_t{1} << 40), 123};
  std::vector<uint8_t> raw{0, 1, 127, 128, 254, 255};
  float scalar = 2.5f;

  Sample() {
    for (int i = 0; i < 12; ++i) w.push_back(static_cast<float>(i) * 0.25f - 1.0f);
    for (int i = 0; i < 5; ++i) d.push_back(static_cast<double>(i) / 3.0);
  }
  std::vector<TensorRef> refs() const {
    return {{"w", DType::F32, {3, 4}, w.data()},   {"d", DType::F64, {5}, d.data()},
            {"ids", DType::I32, {4}, ids.data()},  {"big", DType::I64, {2}, big.data()},
            {"bytes", DType::U8, {6}, raw.data()}, {"empty", DType::F32, {0, 3}, nullptr},
            {"scalar", DType::F32, {}, &scalar}};
  }
};

template <typename T>
std::vector<T> values_of(const StoredTensor& t) {
  std::vector<T> out(t.bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

// A file from a header text and a data section, with no padding.
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  const uint64_t n = header.size();
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  for (char c : header) out.push_back(static_cast<uint8_t>(c));
  for (uint8_t b : data) out.push_back(b);
  return out;
}

std::vector<uint8_t> valid_file() {
  const std::vector<float> w{1, 2, 3, 4};
  return encode_safetensors({{"w", DType::F32, {4}, w.data()}}, {{"note", "x"}});
}

// The reason parse_safetensors gives for `bytes`, or "" when it accepts them. Asserts that the
// error names the source.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors("bad.safetensors", bytes.data(), bytes.size());
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "bad.safetensors");
    return e.reason();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  TempDir dir;
  const Sample s;
  const std::string path = dir.file("sample.safetensors");
  write_safetensors(path, s.refs(), {{"model", "lstm"}, {"epoch", "3"}});
  const SafetensorsFile file = read_safetensors(path);

  EXPECT_EQ(file.metadata.at("model"), "lstm");
  EXPECT_EQ(file.metadata.at("epoch"), "3");
  EXPECT_EQ(file.metadata.at(std::string(kChecksumKey)).size(), 8u);
  EXPECT_EQ(file.metadata.size(), 3u);
  EXPECT_EQ(file.tensors.size(), 7u);

  EXPECT_EQ(file.at("w").dtype, DType::F32);
  EXPECT_EQ(file.at("w").shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(file.at("w").as_f32(), s.w);
  EXPECT_EQ(file.at("d").dtype, DType::F64);
  EXPECT_EQ(values_of<double>(file.at("d")), s.d);
  EXPECT_EQ(values_of<int32_t>(file.at("ids")), s.ids);
  EXPECT_EQ(values_of<int64_t>(file.at("big")), s.big);
  EXPECT_EQ(file.at("bytes").bytes, s.raw);
  EXPECT_EQ(file.at("bytes").dtype, DType::U8);
  EXPECT_EQ(file.at("empty").shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(file.at("empty").numel(), 0);
  EXPECT_TRUE(file.at("empty").bytes.empty());
  EXPECT_TRUE(file.at("scalar").shape.empty());
  EXPECT_EQ(file.at("scalar").numel(), 1);
  EXPECT_EQ(file.at("scalar").as_f32(), std::vector<float>{2.5f});
}

TEST(Safetensors, WriteStoresExactlyTheEncodedBytes) {
  TempDir dir;
  const Sample s;
  const std::string path = dir.file("a.safetensors");
  write_safetensors(path, s.refs(), {});
  const std::string on_disk = read_file(path);
  const std::vector<uint8_t> encoded = encode_safetensors(s.refs(), {});
  EXPECT_EQ(std::vector<uint8_t>(on_disk.begin(), on_disk.end()), encoded);
}

TEST(Safetensors, LayoutIsAlignedContiguousAndInGivenOrder) {
  const Sample s;
  const std::vector<uint8_t> bytes = encode_safetensors(s.refs(), {{"k", "v"}});
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(text.front(), '{');
  const auto header = nlohmann::ordered_json::parse(text);
  uint64_t expected_begin = 0;
  std::vector<std::string> names;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    names.push_back(name);
    EXPECT_EQ(entry["data_offsets"][0].get<uint64_t>(), expected_begin) << name;
    expected_begin = entry["data_offsets"][1].get<uint64_t>();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"w", "d", "ids", "big", "bytes", "empty", "scalar"}));
  EXPECT_EQ(8 + n + expected_begin, bytes.size());
}

TEST(Safetensors, ChecksumReplacesACallerValue) {
  const std::vector<uint8_t> bytes = valid_file();
  const std::vector<float> w{1, 2, 3, 4};
  const std::vector<uint8_t> again = encode_safetensors({{"w", DType::F32, {4}, w.data()}},
                                                        {{"note", "x"}, {"recur.checksum", "0"}});
  EXPECT_EQ(bytes, again);
}

TEST(Safetensors, AsF32ConvertsF64AndRejectsIntegers) {
  const std::vector<double> d{0.5, -1.25, 1e-3};
  const std::vector<int32_t> i{1, 2};
  const std::vector<uint8_t> bytes =
      encode_safetensors({{"d", DType::F64, {3}, d.data()}, {"i", DType::I32, {2}, i.data()}}, {});
  const SafetensorsFile file = parse_safetensors("mem", bytes.data(), bytes.size());
  EXPECT_EQ(file.at("d").as_f32(), (std::vector<float>{0.5f, -1.25f, 1e-3f}));
  try {
    (void)file.at("i").as_f32();
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.reason(), "cannot read a I32 tensor as F32 (it must be F32 or F64)");
  }
}

TEST(Safetensors, AtNamesAMissingTensor) {
  const std::vector<uint8_t> bytes = valid_file();
  const SafetensorsFile file = parse_safetensors("mem", bytes.data(), bytes.size());
  try {
    (void)file.at("nope");
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "missing tensor 'nope'");
  }
}

TEST(Safetensors, EncodeRejectsBadTensors) {
  const std::vector<float> w{1, 2};
  auto reason = [](const std::vector<TensorRef>& refs) {
    try {
      (void)encode_safetensors(refs, {});
    } catch (const Error& e) {
      return e.reason();
    }
    return std::string();
  };
  EXPECT_EQ(reason({{"a", DType::F32, {2}, w.data()}, {"a", DType::F32, {2}, w.data()}}),
            "duplicate tensor name 'a'");
  EXPECT_EQ(reason({{"", DType::F32, {2}, w.data()}}), "tensor name is empty");
  EXPECT_EQ(reason({{"__metadata__", DType::F32, {2}, w.data()}}),
            "tensor name '__metadata__' is reserved");
  EXPECT_EQ(reason({{"a", DType::F32, {2, -1}, w.data()}}),
            "tensor 'a': negative dimension in shape [2, -1]");
  EXPECT_EQ(reason({{"a", DType::F32, {2}, nullptr}}),
            "tensor 'a': no data for a non-empty tensor");
}

TEST(Safetensors, WriteErrorNamesThePath) {
  const std::vector<float> w{1};
  try {
    write_safetensors("/nonexistent-folder/x.safetensors", {{"w", DType::F32, {1}, w.data()}}, {});
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "/nonexistent-folder/x.safetensors");
  }
}

bool python_has_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

// An independent reader: struct + json + torch.frombuffer, checking every value recur wrote.
constexpr const char* kPythonReader = R"PY(
import json, struct, sys, zlib
import torch
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
assert (8 + n) % 8 == 0, "data section not 8-byte aligned"
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop("__metadata__")
assert meta["note"] == "written by recur", meta
assert meta["recur.checksum"] == "%08x" % (zlib.crc32(data) & 0xFFFFFFFF), meta
assert list(header) == ["w", "d", "ids", "big", "bytes", "empty", "scalar"], list(header)
dtypes = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64,
          "U8": torch.uint8}
def get(name):
    e = header[name]
    begin, end = e["data_offsets"]
    dtype = dtypes[e["dtype"]]
    if end == begin:
        return torch.empty(e["shape"], dtype=dtype)
    return torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(e["shape"])
assert torch.equal(get("w"), torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1)
assert torch.equal(get("d"), torch.arange(5, dtype=torch.float64) / 3.0)
assert get("ids").tolist() == [-2, 0, 7, 1 << 30]
assert get("big").tolist() == [-(1 << 40), 123]
assert get("bytes").tolist() == [0, 1, 127, 128, 254, 255]
assert get("empty").shape == (0, 3)
assert get("scalar").shape == () and get("scalar").item() == 2.5
print("python read ok")
)PY";

TEST(Safetensors, FileWrittenByRecurReadsInPythonTorch) {
  if (!python_has_torch()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  TempDir dir;
  const Sample s;
  const std::string path = dir.file("for_python.safetensors");
  write_safetensors(path, s.refs(), {{"note", "written by recur"}});
  const std::string script = dir.file("reader.py");
  write_file_atomic(script, kPythonReader);
  const std::string log = dir.file("python.log");
  const std::string command =
      "/usr/bin/python3 '" + script + "' '" + path + "' >'" + log + "' 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_EQ(status, 0) << read_file(log);
  EXPECT_TRUE(contains(read_file(log), "python read ok"));
}

TEST(Safetensors, ReadsAFileWrittenByPython) {
  // Written by tests/golden/make_optim_fixtures.py with its own writer and zlib checksum.
  const SafetensorsFile file =
      read_safetensors(std::string(RECUR_TEST_DIR) + "/golden/optim/adam.safetensors");
  EXPECT_EQ(file.metadata.at("kind"), "adam");
  EXPECT_EQ(file.at("params.0").shape, std::vector<int64_t>{37});
  EXPECT_EQ(file.at("params.0").as_f32().size(), 37u);
}

// ---- malformed files: each must be a recur::Error naming the file with a specific reason ----

TEST(SafetensorsBad, EmptyFile) {
  EXPECT_EQ(parse_error({}), "empty file, not safetensors");
}

TEST(SafetensorsBad, TooShortForTheHeaderLength) {
  EXPECT_EQ(parse_error({1, 0, 0, 0, 0}),
            "file is too short (5 bytes) to hold the 8-byte header length");
}

TEST(SafetensorsBad, HeaderLengthPastTheEnd) {
  std::vector<uint8_t> bytes = raw_file("{}");
  bytes[0] = 200;
  EXPECT_EQ(parse_error(bytes), "header length 200 runs past the end of the file (10 bytes)");
  std::fill(bytes.begin(), bytes.begin() + 8, 0xff);
  EXPECT_EQ(parse_error(bytes),
            "header length 18446744073709551615 runs past the end of the file (10 bytes)");
}

TEST(SafetensorsBad, HeaderOverTheSizeLimit) {
  const uint64_t n = 100'000'001;
  std::vector<uint8_t> bytes(8 + n, ' ');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  EXPECT_EQ(parse_error(bytes), "header length 100000001 exceeds the limit of 100000000 bytes");
}

TEST(SafetensorsBad, TruncatedData) {
  std::vector<uint8_t> bytes = valid_file();
  bytes.erase(bytes.end() - 6, bytes.end());
  EXPECT_EQ(parse_error(bytes),
            "tensor 'w': data_offsets [0, 16] run past the end of the data section (10 bytes)");
}

TEST(SafetensorsBad, EveryTruncationIsAnError) {
  const std::vector<uint8_t> bytes = valid_file();
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    const std::vector<uint8_t> cut(bytes.begin(),
                                   bytes.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_NE(parse_error(cut), "") << "accepted a file cut to " << size << " bytes";
  }
}

TEST(SafetensorsBad, OffsetsOutOfRange) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 std::vector<uint8_t>(8))),
            "tensor 'a': data_offsets [4, 12] run past the end of the data section (8 bytes)");
}

TEST(SafetensorsBad, OffsetsReversed) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                                 std::vector<uint8_t>(8))),
            "tensor 'a': data_offsets [8, 4] end before they begin");
}

TEST(SafetensorsBad, OffsetsNotAPair) {
  const std::string reason =
      "tensor 'a': data_offsets is not a list [begin, end] of two non-negative integers";
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})",
                                 std::vector<uint8_t>(4))),
            reason);
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
                                 std::vector<uint8_t>(4))),
            reason);
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":"0-4"}})",
                                 std::vector<uint8_t>(4))),
            reason);
}

TEST(SafetensorsBad, WrongDtype) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})",
                                 std::vector<uint8_t>(4))),
            "tensor 'a': unsupported dtype 'BF16' (recur reads F32, F64, I32, I64, U8)");
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
                                 std::vector<uint8_t>(4))),
            "tensor 'a': dtype is not a string");
}

TEST(SafetensorsBad, BadShape) {
  const std::string reason = "tensor 'a': shape is not a list of non-negative integers";
  for (const char* shape : {"[-1]", "[1.5]", "3", "[\"2\"]", "[9223372036854775808]"}) {
    EXPECT_EQ(parse_error(raw_file(std::string(R"({"a":{"dtype":"U8","shape":)") + shape +
                                   R"(,"data_offsets":[0,0]}})")),
              reason)
        << shape;
  }
}

TEST(SafetensorsBad, NumelDoesNotMatchByteLength) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                 std::vector<uint8_t>(8))),
            "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12 bytes");
}

TEST(SafetensorsBad, ShapeWhoseSizeOverflows) {
  EXPECT_EQ(parse_error(raw_file(
                R"({"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                std::vector<uint8_t>(8))),
            "tensor 'a': shape [4611686018427387904, 4] is too large");
  // 2^61 elements of 8 bytes wrap to exactly 0 in 64 bits: still refused.
  EXPECT_EQ(parse_error(raw_file(
                R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})")),
            "tensor 'a': shape [2305843009213693952] is too large");
}

TEST(SafetensorsBad, OverlappingTensors) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                 std::vector<uint8_t>(12))),
            "tensors 'a' and 'b' overlap in the data section");
}

TEST(SafetensorsBad, EmptyTensorsAndGapsAreNotOverlaps) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[10,12]}})",
                                 std::vector<uint8_t>(12))),
            "");
}

TEST(SafetensorsBad, JsonGarbage) {
  EXPECT_TRUE(contains(parse_error(raw_file("{not json")), "header is not valid JSON ("));
  EXPECT_TRUE(contains(parse_error(raw_file("{} trailing")), "header is not valid JSON ("));
  EXPECT_TRUE(
      contains(parse_error(raw_file(std::string("{\"a\xff\":1}"))), "header is not valid JSON ("));
}

TEST(SafetensorsBad, HeaderNotAnObject) {
  EXPECT_EQ(parse_error(raw_file("[1, 2]")), "header is not a JSON object");
  EXPECT_EQ(parse_error(raw_file("\"text\"  ")), "header is not a JSON object");
}

TEST(SafetensorsBad, DeepNesting) {
  const std::string header = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(parse_error(raw_file(header)), "header nests deeper than 32 levels");
}

TEST(SafetensorsBad, EntryNotAnObject) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":[1,2]})")), "tensor 'a': entry is not a JSON object");
}

TEST(SafetensorsBad, MissingField) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})")),
            "tensor 'a': missing \"data_offsets\"");
}

TEST(SafetensorsBad, DuplicateNames) {
  EXPECT_EQ(parse_error(raw_file(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                                 R"("a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})")),
            "duplicate tensor name 'a'");
  EXPECT_EQ(parse_error(raw_file(R"({"__metadata__":{"k":"1","k":"2"}})")),
            "duplicate key 'k' in the header");
}

TEST(SafetensorsBad, MetadataNotStrings) {
  EXPECT_EQ(parse_error(raw_file(R"({"__metadata__":{"epoch":3}})")),
            "metadata 'epoch' is not a string");
  EXPECT_EQ(parse_error(raw_file(R"({"__metadata__":["a"]})")),
            "__metadata__ is not a JSON object");
}

TEST(SafetensorsBad, ChecksumMismatch) {
  std::vector<uint8_t> bytes = valid_file();
  EXPECT_EQ(parse_error(bytes), "");
  bytes.back() ^= 0x01;  // the last byte of the data section
  EXPECT_EQ(parse_error(bytes), "checksum mismatch: file is corrupt");
}

TEST(SafetensorsBad, ChecksumNotHex) {
  EXPECT_EQ(parse_error(raw_file(R"({"__metadata__":{"recur.checksum":"12345zzz"}})")),
            "metadata recur.checksum '12345zzz' is not 8 hex digits");
}

TEST(SafetensorsBad, RandomByteFlipsNeverCrash) {
  // Any changed byte gives either a recur::Error naming the file or a file whose tensor data
  // is exactly the original (the checksum covers the data section): never another exception,
  // never silently different numbers. A changed data byte is always caught by the checksum.
  const std::vector<uint8_t> good = valid_file();
  std::uint64_t header = 0;
  std::memcpy(&header, good.data(), 8);
  const std::size_t data_begin = 8 + header;
  ASSERT_EQ(good.size(), data_begin + 16);
  const std::vector<uint8_t> data(good.begin() + static_cast<std::ptrdiff_t>(data_begin),
                                  good.end());
  std::mt19937 rng(7);
  int accepted = 0, refused = 0;
  for (std::size_t pos = 0; pos < good.size(); ++pos) {
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<uint8_t> bytes = good;
      bytes[pos] = static_cast<uint8_t>(bytes[pos] ^ (1 + rng() % 255));  // always a change
      try {
        const SafetensorsFile file = parse_safetensors("flip", bytes.data(), bytes.size());
        ++accepted;
        EXPECT_LT(pos, data_begin) << "a changed data byte at " << pos << " was accepted";
        ASSERT_EQ(file.tensors.size(), 1u) << "byte " << pos;
        EXPECT_EQ(file.tensors.begin()->second.bytes, data) << "byte " << pos;
      } catch (const Error& e) {
        ++refused;
        EXPECT_EQ(e.subject(), "flip");
        if (pos >= data_begin) {
          EXPECT_EQ(e.reason(), "checksum mismatch: file is corrupt");
        }
      }
    }
  }
  // Both outcomes occur: a change in the tensor's name or the metadata's value is still a valid
  // file, a change in the structure is not.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

TEST(SafetensorsBad, MissingFile) {
  try {
    (void)read_safetensors("/nonexistent/model.safetensors");
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "/nonexistent/model.safetensors");
    EXPECT_EQ(e.reason(), "no such file");
  }
}

}  // namespace
}  // namespace recur
