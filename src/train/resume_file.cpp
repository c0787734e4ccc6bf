#include "train/resume_file.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/json_util.hpp"
#include "dist/comm.hpp"
#include "recur/error.hpp"

namespace recur {

void write_resume_file(const std::string& path, const ParamLayout& layout, const float* params,
                       Optimizer& opt, nlohmann::json position, const Metadata& meta) {
  std::vector<TensorRef> refs;
  for (const ParamInfo& p : layout.entries())
    refs.push_back({p.name, DType::F32, p.shape, params + p.offset});
  for (auto& [name, buffer] : opt.state_buffers())
    refs.push_back(
        {"optimizer." + name, DType::F32, {static_cast<int64_t>(buffer->size())}, buffer->data()});
  Metadata m = meta;
  m["recur.optimizer"] = optimizer_name(opt.config().kind);
  position["optimizer_steps"] = opt.steps();
  m["recur.position"] = position.dump();
  write_safetensors(path, refs, m);
}

SafetensorsFile open_resume_file(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("--resume", path + " does not exist: the run has no checkpoint to resume from");
  SafetensorsFile file = read_safetensors(path);
  if (file.metadata.count("recur.position") == 0)
    throw Error(path, "not a recur resume checkpoint");
  return file;
}

nlohmann::json read_resume_state(const std::string& path, const SafetensorsFile& file,
                                 const ParamLayout& layout, float* params, Optimizer& opt) {
  for (const ParamInfo& p : layout.entries()) {
    const StoredTensor& t = file.at(p.name);
    if (t.dtype != DType::F32 || t.shape != p.shape)
      throw Error(path, "tensor '" + p.name + "' does not match the model");
    std::memcpy(params + p.offset, t.bytes.data(), t.bytes.size());
  }
  for (auto& [name, buffer] : opt.state_buffers()) {
    const StoredTensor& t = file.at("optimizer." + name);
    if (t.dtype != DType::F32 || t.numel() != static_cast<int64_t>(buffer->size()))
      throw Error(path, "optimizer buffer '" + name + "' does not match the model");
    std::memcpy(buffer->data(), t.bytes.data(), t.bytes.size());
  }
  nlohmann::json position;
  try {
    position = nlohmann::json::parse(file.metadata.at("recur.position"));
    opt.set_step_count(json_integer<std::int64_t>(position, "optimizer_steps", path));
    position.erase("optimizer_steps");
  } catch (const nlohmann::json::exception&) {
    throw Error(path, "the run position in the metadata is unreadable");
  }
  return position;
}

void share_resume_state(float* params, std::size_t n, Optimizer& opt, void* position,
                        std::size_t bytes) {
  if (dist::size() == 1) return;
  dist::broadcast(params, sizeof(float) * n);
  for (auto& [name, buffer] : opt.state_buffers())
    dist::broadcast(buffer->data(), sizeof(float) * buffer->size());
  dist::broadcast(position, bytes);
  std::int64_t optimizer_steps = opt.steps();
  dist::broadcast(&optimizer_steps, sizeof(optimizer_steps));
  opt.set_step_count(optimizer_steps);
}

}  // namespace recur
