#include "recur/safetensors.hpp"

#include <zlib.h>
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "recur/error.hpp"
#include "recur/fs.hpp"

namespace recur {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; recur reads it in place");

namespace {

using json = nlohmann::json;

// The reference safetensors implementation refuses headers above this size; so does recur.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers nest three levels deep; anything far deeper is hostile input.
constexpr std::size_t kMaxHeaderDepth = 32;
constexpr const char* kMetadataKey = "__metadata__";

uint32_t crc32_of(const uint8_t* data, std::size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = crc32(crc, data, chunk);
    data += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

std::string checksum_text(uint32_t crc) {
  return fmt::format("{:08x}", crc);
}

std::optional<DType> dtype_from_name(const std::string& name) {
  if (name == "F32") return DType::F32;
  if (name == "F64") return DType::F64;
  if (name == "I32") return DType::I32;
  if (name == "I64") return DType::I64;
  if (name == "U8") return DType::U8;
  return std::nullopt;
}

// numel(shape) * element_size, or nullopt when it does not fit in 64 bits.
std::optional<uint64_t> byte_length(const std::vector<int64_t>& shape, std::size_t element_size) {
  uint64_t total = element_size;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(dim), &total)) return std::nullopt;
  }
  return total;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

// A JSON integer >= 0 that fits in int64, or nullopt (negative, fractional, huge, not a number).
std::optional<uint64_t> non_negative_int(const json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  const auto v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v;
}

// Parses the header text, rejecting duplicate keys (which plain JSON parsing would silently
// collapse) and absurd nesting.
json parse_header(const std::string& source, const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;
  std::size_t depth = 0;
  auto check_keys = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        [[fallthrough]];
      case json::parse_event_t::array_start:
        if (++depth > kMaxHeaderDepth) {
          throw Error(source, fmt::format("header nests deeper than {} levels", kMaxHeaderDepth));
        }
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        [[fallthrough]];
      case json::parse_event_t::array_end:
        --depth;
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) {
          if (open_objects.size() == 1) throw Error(source, "duplicate tensor name '" + key + "'");
          throw Error(source, "duplicate key '" + key + "' in the header");
        }
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, check_keys);
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep the position and cause.
    std::string what = e.what();
    const auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw Error(source, "header is not valid JSON (" + what + ")");
  }
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

Entry parse_entry(const std::string& source, const std::string& name, const json& value,
                  uint64_t data_size) {
  const std::string where = "tensor '" + name + "': ";
  if (!value.is_object()) throw Error(source, where + "entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(field)) throw Error(source, where + "missing \"" + field + "\"");
  }
  Entry entry{name, DType::F32, {}, 0, 0};

  const json& dtype = value["dtype"];
  if (!dtype.is_string()) throw Error(source, where + "dtype is not a string");
  const auto parsed_dtype = dtype_from_name(dtype.get<std::string>());
  if (!parsed_dtype) {
    throw Error(source, where + "unsupported dtype '" + dtype.get<std::string>() +
                            "' (recur reads F32, F64, I32, I64, U8)");
  }
  entry.dtype = *parsed_dtype;

  const json& shape = value["shape"];
  const char* bad_shape = "shape is not a list of non-negative integers";
  if (!shape.is_array()) throw Error(source, where + bad_shape);
  for (const json& dim : shape) {
    const auto d = non_negative_int(dim);
    if (!d) throw Error(source, where + bad_shape);
    entry.shape.push_back(static_cast<int64_t>(*d));
  }

  const json& offsets = value["data_offsets"];
  const char* bad_offsets = "data_offsets is not a list [begin, end] of two non-negative integers";
  if (!offsets.is_array() || offsets.size() != 2) throw Error(source, where + bad_offsets);
  const auto begin = non_negative_int(offsets[0]);
  const auto end = non_negative_int(offsets[1]);
  if (!begin || !end) throw Error(source, where + bad_offsets);
  entry.begin = *begin;
  entry.end = *end;
  const std::string range = fmt::format("data_offsets [{}, {}]", entry.begin, entry.end);
  if (entry.begin > entry.end) throw Error(source, where + range + " end before they begin");
  if (entry.end > data_size) {
    throw Error(source, where + range +
                            fmt::format(" run past the end of the data section ({} "
                                        "bytes)",
                                        data_size));
  }

  const auto needed = byte_length(entry.shape, dtype_size(entry.dtype));
  if (!needed) throw Error(source, where + "shape " + shape_text(entry.shape) + " is too large");
  if (*needed != entry.end - entry.begin) {
    throw Error(source, where + fmt::format("{} hold {} bytes but shape {} of {} needs {} bytes",
                                            range, entry.end - entry.begin, shape_text(entry.shape),
                                            dtype_name(entry.dtype), *needed));
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::string& source, const json& value) {
  if (!value.is_object()) throw Error(source, "__metadata__ is not a JSON object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) throw Error(source, "metadata '" + key + "' is not a string");
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

void check_no_overlap(const std::string& source, std::vector<const Entry*> entries) {
  // Empty tensors occupy no bytes, so they cannot overlap anything.
  std::erase_if(entries, [](const Entry* e) { return e->begin == e->end; });
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i]->begin < entries[i - 1]->end) {
      throw Error(source, "tensors '" + entries[i - 1]->name + "' and '" + entries[i]->name +
                              "' overlap in the data section");
    }
  }
}

void verify_checksum(const std::string& source, const std::string& stored, const uint8_t* data,
                     std::size_t size) {
  const bool well_formed =
      stored.size() == 8 && std::all_of(stored.begin(), stored.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
  if (!well_formed) {
    throw Error(source,
                "metadata " + std::string(kChecksumKey) + " '" + stored + "' is not 8 hex digits");
  }
  const auto expected = static_cast<uint32_t>(std::stoul(stored, nullptr, 16));
  if (crc32_of(data, size) != expected) throw Error(source, "checksum mismatch: file is corrupt");
}

// A safetensors file as pieces: the 8-byte header length and the header (both owned here),
// then each tensor's bytes where the caller keeps them. Nothing of the data is copied.
struct Layout {
  uint8_t length[8] = {};
  std::string header;
  std::vector<ByteSpan> data;  // the tensors in order
  std::size_t total = 0;
  // Length, header, then the tensors: valid while this Layout lives where it is.
  std::vector<ByteSpan> pieces() const {
    std::vector<ByteSpan> all{{length, 8}, {header.data(), header.size()}};
    all.insert(all.end(), data.begin(), data.end());
    return all;
  }
};

Layout lay_out(const std::string& subject, const std::vector<TensorRef>& tensors,
               const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  std::vector<uint64_t> lengths;
  uint64_t data_size = 0;
  for (const TensorRef& t : tensors) {
    if (t.name.empty()) throw Error(subject, "tensor name is empty");
    if (t.name == kMetadataKey) throw Error(subject, "tensor name '__metadata__' is reserved");
    if (!names.insert(t.name).second)
      throw Error(subject, "duplicate tensor name '" + t.name + "'");
    for (int64_t dim : t.shape) {
      if (dim < 0) {
        throw Error(subject,
                    "tensor '" + t.name + "': negative dimension in shape " + shape_text(t.shape));
      }
    }
    const auto length = byte_length(t.shape, dtype_size(t.dtype));
    if (!length || *length > std::numeric_limits<std::size_t>::max() - data_size) {
      throw Error(subject,
                  "tensor '" + t.name + "': shape " + shape_text(t.shape) + " is too large");
    }
    if (*length > 0 && t.data == nullptr) {
      throw Error(subject, "tensor '" + t.name + "': no data for a non-empty tensor");
    }
    lengths.push_back(*length);
    data_size += *length;
  }

  // The CRC of the data section, tensor by tensor: the same as over the joined bytes.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto* p = static_cast<const uint8_t*>(tensors[i].data);
    for (uint64_t left = lengths[i]; left > 0;) {
      const auto chunk = static_cast<uInt>(std::min<uint64_t>(left, 1u << 30));
      crc = crc32(crc, p, chunk);
      p += chunk;
      left -= chunk;
    }
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  auto meta = nlohmann::ordered_json::object();
  for (const auto& [key, value] : metadata) meta[key] = value;
  meta[std::string(kChecksumKey)] = checksum_text(static_cast<uint32_t>(crc));
  header[kMetadataKey] = std::move(meta);
  uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    header[tensors[i].name] = {{"dtype", dtype_name(tensors[i].dtype)},
                               {"shape", tensors[i].shape},
                               {"data_offsets", {offset, offset + lengths[i]}}};
    offset += lengths[i];
  }
  Layout out;
  try {
    out.header = header.dump();
  } catch (const nlohmann::ordered_json::exception&) {
    throw Error(subject, "tensor names and metadata must be valid UTF-8");
  }
  // Pad so that the data section starts 8-byte aligned (8 + header length is a multiple of 8).
  out.header.append((8 - out.header.size() % 8) % 8, ' ');
  const uint64_t header_length = out.header.size();
  for (int i = 0; i < 8; ++i) out.length[i] = static_cast<uint8_t>(header_length >> (8 * i));
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (lengths[i] > 0) out.data.push_back({tensors[i].data, lengths[i]});
  out.total = 8 + out.header.size() + data_size;
  return out;
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::U8:
      return "U8";
  }
  RECUR_ASSERT(false);
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::U8:
      return 1;
  }
  RECUR_ASSERT(false);
}

int64_t StoredTensor::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::vector<float> StoredTensor::as_f32() const {
  const auto n = static_cast<std::size_t>(numel());
  std::vector<float> out(n);
  if (dtype == DType::F32) {
    if (n > 0) std::memcpy(out.data(), bytes.data(), n * sizeof(float));
  } else if (dtype == DType::F64) {
    for (std::size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, bytes.data() + i * sizeof(double), sizeof(double));
      out[i] = static_cast<float>(v);
    }
  } else {
    throw Error("", std::string("cannot read a ") + dtype_name(dtype) +
                        " tensor as F32 (it must be F32 or F64)");
  }
  return out;
}

const StoredTensor& SafetensorsFile::at(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw Error("", "missing tensor '" + name + "'");
  return it->second;
}

std::vector<uint8_t> encode_safetensors(const std::vector<TensorRef>& tensors,
                                        const std::map<std::string, std::string>& metadata) {
  const Layout layout = lay_out("", tensors, metadata);
  std::vector<uint8_t> out(layout.total);
  std::size_t at = 0;
  for (const ByteSpan& piece : layout.pieces()) {
    std::memcpy(out.data() + at, piece.data, piece.size);
    at += piece.size;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Streamed from the tensors' own memory: no second copy of a large model (or of a resume
  // file's parameters and optimizer moments) while it is written.
  const Layout layout = lay_out(path, tensors, metadata);
  write_file_atomic(path, layout.pieces());
}

SafetensorsFile parse_safetensors(const std::string& source, const uint8_t* data,
                                  std::size_t size) {
  if (size == 0) throw Error(source, "empty file, not safetensors");
  if (size < 8) {
    throw Error(source,
                fmt::format("file is too short ({} bytes) to hold the 8-byte header length", size));
  }
  uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i) header_length |= static_cast<uint64_t>(data[i]) << (8 * i);
  if (header_length > size - 8) {
    throw Error(source, fmt::format("header length {} runs past the end of the file ({} bytes)",
                                    header_length, size));
  }
  if (header_length > kMaxHeaderBytes) {
    throw Error(source, fmt::format("header length {} exceeds the limit of {} bytes", header_length,
                                    kMaxHeaderBytes));
  }
  const auto* header_text = reinterpret_cast<const char*>(data + 8);
  const json header = parse_header(source, header_text, header_text + header_length);
  if (!header.is_object()) throw Error(source, "header is not a JSON object");

  const uint8_t* section = data + 8 + header_length;
  const std::size_t section_size = size - 8 - static_cast<std::size_t>(header_length);

  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      file.metadata = parse_metadata(source, value);
    } else {
      if (key.empty()) throw Error(source, "a tensor has an empty name");
      entries.push_back(parse_entry(source, key, value, section_size));
    }
  }
  std::vector<const Entry*> pointers;
  for (const Entry& e : entries) pointers.push_back(&e);
  check_no_overlap(source, pointers);

  const auto checksum = file.metadata.find(std::string(kChecksumKey));
  if (checksum != file.metadata.end()) {
    verify_checksum(source, checksum->second, section, section_size);
  }

  for (Entry& e : entries) {
    StoredTensor tensor{e.dtype, std::move(e.shape), {}};
    tensor.bytes.assign(section + e.begin, section + e.end);
    file.tensors.emplace(e.name, std::move(tensor));
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_safetensors(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace recur
