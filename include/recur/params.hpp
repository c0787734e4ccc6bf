// The parameter arena's table of contents: every tensor of a model as a named slice of one flat
// buffer, in PyTorch's state_dict naming and layout. Gradients and optimizer state use the same
// layout, so zeroing, clipping, the optimizer step and checkpointing are loops over one buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace recur {

struct ParamInfo {
  std::string name;            // e.g. "rnn.weight_hh_l0_reverse"
  std::vector<int64_t> shape;  // PyTorch's shape, row-major
  std::size_t offset = 0;      // first element in the arena
  std::size_t size = 0;        // element count
};

class ParamLayout {
 public:
  // Appends a tensor and returns its offset.
  std::size_t add(const std::string& name, std::vector<int64_t> shape);
  const std::vector<ParamInfo>& entries() const { return entries_; }
  std::size_t total() const { return total_; }
  // The tensor called `name`, or nullptr.
  const ParamInfo* find(const std::string& name) const;

 private:
  std::vector<ParamInfo> entries_;
  std::size_t total_ = 0;
};

}  // namespace recur
