// A float recurrent stack ("rnn.") with weights drawn uniformly from [-w, w]: the setup of the
// tests that run one stack two ways (packed and not, split and not, skipped and multiplied) and
// compare the bits. `rng` goes on from the weights, for the inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nn/recurrent.hpp"
#include "recur/cell.hpp"
#include "recur/params.hpp"
#include "recur/rng.hpp"

namespace recur::test {

struct RandomStack {
  RandomStack(CellKind cell, int input_size, int hidden, int directions, std::uint64_t seed,
              double w)
      : rng(seed) {
    spec.cell = cell;
    spec.input_size = input_size;
    spec.hidden = hidden;
    spec.directions = directions;
    stack = std::make_unique<nn::RecurrentStack<float>>(spec, layout, "rnn.");
    params.resize(layout.total());
    for (float& v : params) v = static_cast<float>(rng.uniform(-w, w));
  }
  // n values uniform in [-1, 1] (the inputs).
  std::vector<float> inputs(std::size_t n) {
    std::vector<float> x(n);
    for (float& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    return x;
  }

  nn::StackSpec spec;
  ParamLayout layout;
  std::unique_ptr<nn::RecurrentStack<float>> stack;
  std::vector<float> params;
  Rng rng;
};

}  // namespace recur::test
