#include "recur/params.hpp"

#include "recur/error.hpp"

namespace recur {

std::size_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape) {
  RECUR_ASSERT(find(name) == nullptr);
  std::size_t n = 1;
  for (int64_t d : shape) n *= static_cast<std::size_t>(d);
  ParamInfo info{name, std::move(shape), total_, n};
  entries_.push_back(std::move(info));
  total_ += n;
  return entries_.back().offset;
}

const ParamInfo* ParamLayout::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace recur
