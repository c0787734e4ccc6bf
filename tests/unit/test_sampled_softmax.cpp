// The sampled softmax kernel: equal to the full softmax (loss and every gradient) when the
// candidates are the whole vocabulary, its gradients equal to finite differences of its own loss
// with repeated candidates, accidental hits and the logQ correction, and the float version (recur's
// packed kernels) equal to the double one (BLAS) to float precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/sampled_softmax.hpp"
#include "recur/rng.hpp"

namespace {

using recur::kernels::full_softmax_loss;
using recur::kernels::sampled_softmax_loss;

struct Problem {
  int N = 5, H = 4, V = 9;
  std::vector<double> h, W, b;
  std::vector<std::int32_t> targets;
  explicit Problem(std::uint64_t seed) {
    recur::Rng rng(seed);
    for (int i = 0; i < N * H; ++i) h.push_back(rng.normal());
    for (int i = 0; i < V * H; ++i) W.push_back(rng.normal());
    for (int i = 0; i < V; ++i) b.push_back(0.5 * rng.normal());
    for (int i = 0; i < N; ++i) targets.push_back(static_cast<std::int32_t>(rng.below(V)));
  }
};

TEST(SampledSoftmax, AllCandidatesGiveTheFullSoftmaxAndItsGradient) {
  const Problem p(3);
  std::vector<std::int32_t> cand(p.V);
  std::iota(cand.begin(), cand.end(), 0);
  const std::vector<double> logq(p.V, 1.7);  // a constant correction cancels
  std::vector<double> dh(p.N * p.H), dW(p.V * p.H, 0.0), db(p.V, 0.0);
  recur::kernels::SampledSoftmaxScratch<double> scratch;
  const double scale = 0.25;
  const double loss = sampled_softmax_loss<double>(
      p.h.data(), p.targets.data(), p.N, p.H, p.W.data(), p.b.data(), cand.data(), p.V, logq.data(),
      scale, dh.data(), dW.data(), db.data(), scratch);
  // The full softmax written out: loss, dh, dW, db.
  double ref = 0;
  std::vector<double> rdh(p.N * p.H, 0.0), rdW(p.V * p.H, 0.0), rdb(p.V, 0.0);
  for (int n = 0; n < p.N; ++n) {
    std::vector<double> z(p.V);
    double top = -1e300, sum = 0;
    for (int v = 0; v < p.V; ++v) {
      z[v] = p.b[v];
      for (int j = 0; j < p.H; ++j) z[v] += p.h[n * p.H + j] * p.W[v * p.H + j];
      top = std::max(top, z[v]);
    }
    for (int v = 0; v < p.V; ++v) sum += std::exp(z[v] - top);
    ref += top + std::log(sum) - z[p.targets[n]];
    for (int v = 0; v < p.V; ++v) {
      const double g = scale * (std::exp(z[v] - top) / sum - (v == p.targets[n] ? 1 : 0));
      rdb[v] += g;
      for (int j = 0; j < p.H; ++j) {
        rdh[n * p.H + j] += g * p.W[v * p.H + j];
        rdW[v * p.H + j] += g * p.h[n * p.H + j];
      }
    }
  }
  EXPECT_NEAR(loss, scale * ref, 1e-12);
  EXPECT_NEAR(full_softmax_loss<double>(p.h.data(), p.targets.data(), p.N, p.H, p.W.data(),
                                        p.b.data(), p.V, scratch.values),
              ref, 1e-12);
  for (int i = 0; i < p.N * p.H; ++i) EXPECT_NEAR(dh[i], rdh[i], 1e-12) << i;
  for (int i = 0; i < p.V * p.H; ++i) EXPECT_NEAR(dW[i], rdW[i], 1e-12) << i;
  for (int i = 0; i < p.V; ++i) EXPECT_NEAR(db[i], rdb[i], 1e-12) << i;
}

TEST(SampledSoftmax, GradientsMatchFiniteDifferences) {
  Problem p(11);
  // Repeats (4 twice) and candidates that are some rows' true words (accidental hits).
  const std::vector<std::int32_t> cand = {4, 1, p.targets[0], 4, 7, p.targets[2]};
  const int K = static_cast<int>(cand.size());
  std::vector<double> logq(p.V);
  recur::Rng rng(5);
  for (auto& q : logq) q = rng.normal();
  std::vector<double> dh(p.N * p.H), dW(p.V * p.H, 0.0), db(p.V, 0.0);
  recur::kernels::SampledSoftmaxScratch<double> scratch;
  const double scale = 0.5;
  sampled_softmax_loss<double>(p.h.data(), p.targets.data(), p.N, p.H, p.W.data(), p.b.data(),
                               cand.data(), K, logq.data(), scale, dh.data(), dW.data(), db.data(),
                               scratch);
  auto loss = [&] {
    return sampled_softmax_loss<double>(p.h.data(), p.targets.data(), p.N, p.H, p.W.data(),
                                        p.b.data(), cand.data(), K, logq.data(), scale, nullptr,
                                        nullptr, nullptr, scratch);
  };
  auto check = [&](std::vector<double>& x, const std::vector<double>& grad, const char* what) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i], eps = 1e-6;
      x[i] = keep + eps;
      const double up = loss();
      x[i] = keep - eps;
      const double down = loss();
      x[i] = keep;
      EXPECT_NEAR(grad[i], (up - down) / (2 * eps), 1e-7) << what << " " << i;
    }
  };
  check(p.h, dh, "h");
  check(p.W, dW, "W");
  check(p.b, db, "b");
  // Rows of W that are neither candidates nor targets get no gradient.
  for (int v = 0; v < p.V; ++v) {
    const bool used = std::find(cand.begin(), cand.end(), v) != cand.end() ||
                      std::find(p.targets.begin(), p.targets.end(), v) != p.targets.end();
    if (!used) {
      EXPECT_EQ(db[v], 0.0) << v;
    }
  }
}

// The float kernel (its products on recur's packed kernels, as recur pretrain runs it) against
// the double one (BLAS) on the same values, at sizes that leave partial tiles and panels
// everywhere, with repeated candidates and accidental hits, twice through the same scratch.
TEST(SampledSoftmax, FloatOnPackedKernelsMatchesDouble) {
  const int N = 37, H = 45, V = 60;
  recur::Rng rng(17);
  std::vector<double> h, W, b, logq;
  for (int i = 0; i < N * H; ++i) h.push_back(0.5 * rng.normal());
  for (int i = 0; i < V * H; ++i) W.push_back(0.5 * rng.normal());
  for (int i = 0; i < V; ++i) b.push_back(0.5 * rng.normal());
  for (int i = 0; i < V; ++i) logq.push_back(rng.normal());
  std::vector<std::int32_t> targets, cand;
  for (int i = 0; i < N; ++i) targets.push_back(static_cast<std::int32_t>(rng.below(V)));
  for (int i = 0; i < 41; ++i) cand.push_back(static_cast<std::int32_t>(rng.below(V)));
  cand[3] = cand[7];
  cand[5] = targets[0];
  const int K = static_cast<int>(cand.size());
  auto as_float = [](const std::vector<double>& v) {
    return std::vector<float>(v.begin(), v.end());
  };
  const std::vector<float> hf = as_float(h), Wf = as_float(W), bf = as_float(b),
                           qf = as_float(logq);
  // The float inputs widened again, so that both kernels see the same values.
  const std::vector<double> hd(hf.begin(), hf.end()), Wd(Wf.begin(), Wf.end()),
      bd(bf.begin(), bf.end()), qd(qf.begin(), qf.end());
  std::vector<double> dh(N * H), dW(V * H, 0.0), db(V, 0.0);
  recur::kernels::SampledSoftmaxScratch<double> sd;
  const double ref = sampled_softmax_loss<double>(hd.data(), targets.data(), N, H, Wd.data(),
                                                  bd.data(), cand.data(), K, qd.data(), 0.1,
                                                  dh.data(), dW.data(), db.data(), sd);
  recur::kernels::SampledSoftmaxScratch<float> sf;
  for (int round = 0; round < 2; ++round) {
    std::vector<float> fdh(N * H, 7.f), fdW(V * H, 0.f), fdb(V, 0.f);
    const double loss = sampled_softmax_loss<float>(hf.data(), targets.data(), N, H, Wf.data(),
                                                    bf.data(), cand.data(), K, qf.data(), 0.1f,
                                                    fdh.data(), fdW.data(), fdb.data(), sf);
    EXPECT_NEAR(loss, ref, 1e-5 * std::abs(ref)) << round;
    for (int i = 0; i < N * H; ++i) ASSERT_NEAR(fdh[i], dh[i], 1e-5) << "dh " << i;
    for (int i = 0; i < V * H; ++i) ASSERT_NEAR(fdW[i], dW[i], 1e-5) << "dW " << i;
    for (int i = 0; i < V; ++i) ASSERT_NEAR(fdb[i], db[i], 1e-5) << "db " << i;
  }
}

}  // namespace
