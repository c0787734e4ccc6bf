// The finite-difference harness of the gradient checks: the central difference of a loss in one
// parameter or input, the value restored afterwards.
#pragma once

namespace recur::test {

// (loss(v + h) - loss(v - h)) / 2h with `value` set to v + h, then v - h, then back to v.
template <typename Loss>
double central_difference(double& value, double h, Loss&& loss) {
  const double keep = value;
  value = keep + h;
  const double up = loss();
  value = keep - h;
  const double down = loss();
  value = keep;
  return (up - down) / (2 * h);
}

}  // namespace recur::test
