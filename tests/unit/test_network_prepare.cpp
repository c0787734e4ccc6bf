// Network::prepare packs the recurrent weights once for every thread of a step; forward and
// backward through the prepared weights give exactly (bit for bit) what packing on each call
// gives, for every cell, one and two layers, both directions, a projection, and batches on
// both sides of the packed kernel's threshold.
#include <gtest/gtest.h>

#include <vector>

#include "recur/model.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

struct Pass {
  std::vector<float> logits, grads, dx;
};

Pass run(const Network<float>& net, const std::vector<float>& x, int B) {
  NetworkWorkspace<float> ws;
  Rng rng(7);
  const int C = net.config().num_classes;
  const float* z = net.forward(x.data(), B, ws, true, &rng);
  Pass p;
  p.logits.assign(z, z + static_cast<std::size_t>(B) * C);
  std::vector<float> dz(p.logits.size());
  for (std::size_t i = 0; i < dz.size(); ++i) dz[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
  p.grads.assign(net.num_params(), 0.f);
  p.dx.assign(x.size(), 0.f);
  net.backward(x.data(), B, ws, dz.data(), p.grads.data(), p.dx.data());
  return p;
}

TEST(NetworkPrepare, PreparedWeightsGiveBitIdenticalResults) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh})
    for (int layers : {1, 2})
      for (bool bi : {false, true})
        for (int B : {3, 16}) {
          ModelConfig c;
          c.cell = cell;
          c.input_size = 6;
          c.steps = 5;
          c.hidden = 12;
          c.layers = layers;
          c.bidirectional = bi;
          c.projection = layers == 2 ? 8 : 0;
          c.dropout = layers == 2 ? 0.25 : 0.0;
          c.num_classes = 4;
          Network<float> net(c);
          net.init(3);
          std::vector<float> x(static_cast<std::size_t>(c.steps) * B * c.input_size);
          Rng r(11);
          for (float& v : x) v = static_cast<float>(r.uniform() * 2 - 1);
          const Pass plain = run(net, x, B);
          net.prepare();
          const Pass prepared = run(net, x, B);
          net.drop_prepared();
          const Pass again = run(net, x, B);
          const std::string what = to_string(cell) + " layers " + std::to_string(layers) +
                                   (bi ? " bi" : "") + " B " + std::to_string(B);
          EXPECT_EQ(plain.logits, prepared.logits) << what;
          EXPECT_EQ(plain.grads, prepared.grads) << what;
          EXPECT_EQ(plain.dx, prepared.dx) << what;
          EXPECT_EQ(plain.grads, again.grads) << what;
          // Prepared weights are a snapshot: a change of the parameters after prepare() is
          // not seen until the next prepare(), which is why the runner drops them each step.
          net.prepare();
          net.params()[net.layout().find("rnn.weight_hh_l0")->offset] += 1.0f;
          const Pass stale = run(net, x, B);
          net.drop_prepared();
          const Pass fresh = run(net, x, B);
          if (B >= 8) {
            EXPECT_NE(stale.logits, fresh.logits) << what;
          }
          net.params()[net.layout().find("rnn.weight_hh_l0")->offset] -= 1.0f;
        }
}

}  // namespace
}  // namespace recur
