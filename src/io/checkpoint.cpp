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

}  // namespace

void save_model(const std::string& path, const Network<float>& net, const Metadata& extra) {
  std::vector<TensorRef> refs;
  for (const ParamInfo& p : net.layout().entries())
    refs.push_back({p.name, DType::F32, p.shape, net.params().data() + p.offset});
  Metadata meta = extra;
  meta["recur.format"] = "recur-model-1";
  meta["recur.model"] = to_json(net.config());
  write_safetensors(path, refs, meta);
}

LoadedModel load_model(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  auto it = file.metadata.find("recur.model");
  if (it == file.metadata.end())
    throw Error(path, "not a recur model: the metadata has no 'recur.model' entry");
  const ModelConfig config = model_config_from_json(it->second, path);
  // Compare sizes before allocating the model: a small file must not make recur allocate a huge
  // one. Small models go straight to the tensor-by-tensor checks, which say more.
  std::uint64_t stored = 0;
  for (const auto& [name, t] : file.tensors) stored += static_cast<std::uint64_t>(t.numel());
  if (config.parameter_count() > stored && config.parameter_count() > (1u << 20))
    throw Error(path, "the file holds " + std::to_string(stored) +
                          " values but its model config needs " +
                          std::to_string(config.parameter_count()));
  LoadedModel out;
  out.net = std::make_unique<Network<float>>(config);
  Network<float>& net = *out.net;
  for (const ParamInfo& p : net.layout().entries()) {
    auto t = file.tensors.find(p.name);
    if (t == file.tensors.end()) throw Error(path, "tensor '" + p.name + "' is missing");
    if (t->second.shape != p.shape)
      throw Error(path, "tensor '" + p.name + "' has shape " + shape_text(t->second.shape) +
                            " but the model config needs " + shape_text(p.shape));
    if (t->second.dtype != DType::F32 && t->second.dtype != DType::F64)
      throw Error(path, "tensor '" + p.name + "' has dtype " + dtype_name(t->second.dtype) +
                            ", expected F32");
    const std::vector<float> v = t->second.as_f32();
    std::memcpy(net.params().data() + p.offset, v.data(), v.size() * sizeof(float));
  }
  for (const auto& [name, tensor] : file.tensors)
    if (!net.layout().find(name))
      throw Error(path, "unexpected tensor '" + name + "' for this model config");
  out.metadata = std::move(file.metadata);
  return out;
}

}  // namespace recur
