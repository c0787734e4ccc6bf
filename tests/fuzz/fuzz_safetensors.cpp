// The safetensors reader (recur::parse_safetensors) on the input as a whole file, then what a
// checkpoint loader does with the tensors, then a round trip: what was read, encoded again and
// parsed again, gives the same tensors and metadata.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_guard.hpp"
#include "recur/safetensors.hpp"

namespace {

const std::string kSource = "fuzz.safetensors";

void use_tensors(const recur::SafetensorsFile& file) {
  using recur::fuzz::check;
  for (const auto& entry : file.tensors) {
    const std::string& name = entry.first;
    const recur::StoredTensor& tensor = entry.second;
    check(!name.empty() && name != "__metadata__", "tensor names are real names");
    const std::int64_t n = tensor.numel();
    check(n >= 0, "numel is not negative");
    check(tensor.bytes.size() == static_cast<std::size_t>(n) * recur::dtype_size(tensor.dtype),
          "a tensor holds numel * dtype size bytes");
    if (tensor.dtype == recur::DType::F32 || tensor.dtype == recur::DType::F64) {
      std::vector<float> values;
      recur::fuzz::must_return([&] { values = tensor.as_f32(); });
      check(values.size() == static_cast<std::size_t>(n), "as_f32 gives numel values");
    } else {
      recur::fuzz::returns_or_throws_error({""}, [&] { (void)tensor.as_f32(); });
    }
  }
  recur::fuzz::returns_or_throws_error({""}, [&] { (void)file.at("rnn.weight_ih_l0"); });
}

void round_trip(const recur::SafetensorsFile& file) {
  std::vector<recur::TensorRef> refs;
  for (const auto& [name, tensor] : file.tensors)
    refs.push_back({name, tensor.dtype, tensor.shape, tensor.bytes.data()});
  std::map<std::string, std::string> metadata = file.metadata;
  metadata.erase(std::string(recur::kChecksumKey));
  std::vector<std::uint8_t> bytes;
  recur::fuzz::must_return([&] { bytes = recur::encode_safetensors(refs, metadata); });
  recur::SafetensorsFile again;
  recur::fuzz::must_return(
      [&] { again = recur::parse_safetensors("round trip", bytes.data(), bytes.size()); });
  using recur::fuzz::check;
  check(again.tensors.size() == file.tensors.size(), "round trip keeps every tensor");
  for (const auto& [name, tensor] : file.tensors) {
    const auto it = again.tensors.find(name);
    check(it != again.tensors.end(), "round trip keeps tensor names");
    check(it->second.dtype == tensor.dtype && it->second.shape == tensor.shape &&
              it->second.bytes == tensor.bytes,
          "round trip keeps dtype, shape and bytes");
  }
  metadata[std::string(recur::kChecksumKey)] = again.metadata[std::string(recur::kChecksumKey)];
  check(again.metadata == metadata, "round trip keeps the metadata");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  recur::SafetensorsFile file;
  const bool parsed = recur::fuzz::returns_or_throws_error(
      {kSource}, [&] { file = recur::parse_safetensors(kSource, data, size); });
  if (!parsed) return 0;
  use_tensors(file);
  round_trip(file);
  return 0;
}
