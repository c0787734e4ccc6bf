#include "recur/checkpoint.hpp"

#include <cstring>

#include "recur/error.hpp"
#include "recur/safetensors.hpp"

namespace recur {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

// Copies every tensor of `layout` from the file into params, after checking names, shapes and
// dtypes; no tensor of the file may be left over.
void read_arena(const std::string& path, const SafetensorsFile& file, const ParamLayout& layout,
                float* params) {
  for (const ParamInfo& p : layout.entries()) {
    auto t = file.tensors.find(p.name);
    if (t == file.tensors.end()) throw Error(path, "tensor '" + p.name + "' is missing");
    if (t->second.shape != p.shape)
      throw Error(path, "tensor '" + p.name + "' has shape " + shape_text(t->second.shape) +
                            " but the model config needs " + shape_text(p.shape));
    if (t->second.dtype != DType::F32 && t->second.dtype != DType::F64)
      throw Error(path, "tensor '" + p.name + "' has dtype " + dtype_name(t->second.dtype) +
                            ", expected F32");
    const std::vector<float> v = t->second.as_f32();
    std::memcpy(params + p.offset, v.data(), v.size() * sizeof(float));
  }
  for (const auto& [name, tensor] : file.tensors)
    if (!layout.find(name))
      throw Error(path, "unexpected tensor '" + name + "' for this model config");
}

std::uint64_t stored_values(const SafetensorsFile& file) {
  std::uint64_t stored = 0;
  for (const auto& [name, t] : file.tensors) stored += static_cast<std::uint64_t>(t.numel());
  return stored;
}

}  // namespace

bool is_layer_list_checkpoint(const Metadata& metadata) {
  return metadata.count("recur.spec") > 0;
}

void save_checkpoint(const std::string& path, const Model<float>& model, const Metadata& extra) {
  std::vector<TensorRef> refs;
  for (const ParamInfo& p : model.layout().entries())
    refs.push_back({p.name, DType::F32, p.shape, model.params().data() + p.offset});
  Metadata meta = extra;
  meta["recur.format"] = "recur-model-2";
  meta["recur.spec"] = to_json(model.spec());
  write_safetensors(path, refs, meta);
}

LoadedCheckpoint load_checkpoint(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  LoadedCheckpoint out;
  ModelSpec spec;
  if (auto it = file.metadata.find("recur.spec"); it != file.metadata.end()) {
    spec = model_spec_from_json(it->second, path);
  } else if (auto v1 = file.metadata.find("recur.model"); v1 != file.metadata.end()) {
    const ModelConfig config = model_config_from_json(v1->second, path);
    spec = model_spec_from_config(config);
    out.format = 1;
  } else {
    throw Error(path, "not a recur model: the metadata has neither 'recur.spec' nor 'recur.model'");
  }
  // A small file must not make recur allocate a huge model.
  const std::uint64_t needed = spec.parameter_count();
  const std::uint64_t stored = stored_values(file);
  if (needed > stored && needed > (1u << 20))
    throw Error(path, "the file holds " + std::to_string(stored) +
                          " values but its model description needs " + std::to_string(needed));
  out.model = std::make_unique<Model<float>>(spec);
  read_arena(path, file, out.model->layout(), out.model->params().data());
  out.metadata = std::move(file.metadata);
  return out;
}

}  // namespace recur
