// Safetensors: the file format recur uses for checkpoints and test fixtures.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of a JSON object (padded with spaces), then
// the data section. The JSON maps each tensor name to
//   {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
// with offsets in bytes relative to the start of the data section, and may hold
// "__metadata__": {"key": "value", ...} with string values only. Data is little-endian, row-major.
//
// recur writes tensors back to back in the order given, pads the header so that the data section
// starts at a multiple of 8 bytes, and stores the CRC-32 (zlib's crc32) of the whole data section
// as metadata "recur.checksum" (8 lowercase hex digits). Tensors are contiguous with no gaps, as
// the reference safetensors reader requires.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace recur {

enum class DType { F32, F64, I32, I64, U8 };

// "F32", "F64", "I32", "I64", "U8".
const char* dtype_name(DType dtype);
// Bytes per element: 4, 8, 4, 8, 1.
std::size_t dtype_size(DType dtype);

// A tensor to write: `data` points at numel(shape) contiguous elements of `dtype` (may be null
// when the tensor is empty).
struct TensorRef {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// A tensor read from a file; owns its bytes.
struct StoredTensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  int64_t numel() const;
  // The values as floats; F64 is rounded to F32. Throws recur::Error for any other dtype.
  std::vector<float> as_f32() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, StoredTensor> tensors;

  // Throws recur::Error("", "missing tensor 'name'").
  const StoredTensor& at(const std::string& name) const;
};

// The metadata key under which recur stores the data section's CRC-32.
inline constexpr std::string_view kChecksumKey = "recur.checksum";

// The bytes of a safetensors file holding `tensors` (in that order) and `metadata`, plus the
// checksum entry (which replaces a caller's "recur.checksum"). Throws recur::Error for an empty,
// duplicate or reserved ("__metadata__") name, a negative dimension, or null data for a
// non-empty tensor.
std::vector<uint8_t> encode_safetensors(const std::vector<TensorRef>& tensors,
                                        const std::map<std::string, std::string>& metadata);

// encode_safetensors, written atomically (recur::write_file_atomic). Errors name `path`.
void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata);

// Parses and validates a whole file held in memory; every length and offset in it is checked
// before use. Throws recur::Error(source_name, reason) for: a file shorter than 8 bytes, a header
// length past the end of the file or over 100 MB, a header that is not valid JSON or not an
// object, duplicate keys, an entry that is not an object, an unsupported dtype, a shape that is
// not a list of non-negative integers, data_offsets that are not [begin, end] with
// begin <= end <= data size, a byte length that differs from numel * dtype size, overlapping
// tensors, metadata that is not an object of strings, and a "recur.checksum" that does not match
// the data ("checksum mismatch: file is corrupt").
SafetensorsFile parse_safetensors(const std::string& source_name, const uint8_t* data,
                                  std::size_t size);

// Reads `path` and parses it with parse_safetensors; errors name `path`.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace recur
