// Optimizers against torch.optim fixtures, checkpoint resume, clipping, schedules and the
// errors for bad settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "golden/golden_util.hpp"
#include "recur/error.hpp"
#include "recur/optim.hpp"
#include "recur/safetensors.hpp"

namespace recur {
namespace {

// PyTorch's CPU kernels fuse some multiply-adds (its vectorized add-with-alpha is an FMA) and not
// others (the scalar tail), so one result can differ from recur's by a rounding per operation:
// a few float ulps (1.2e-7 each) after five steps. 1e-6 leaves room for that and nothing more;
// the fixtures keep every parameter above 0.1 in magnitude so the relative test is meaningful.
constexpr double kGoldenRelTol = 1e-6;

std::string golden_path(const std::string& name) {
  return std::string(RECUR_TEST_DIR) + "/golden/optim/" + name + ".safetensors";
}

float meta_float(const SafetensorsFile& f, const std::string& key, float fallback) {
  const auto it = f.metadata.find(key);
  // The fixture prints float32 values exactly, so stod then float is lossless.
  return it == f.metadata.end() ? fallback : static_cast<float>(std::stod(it->second));
}

OptimizerConfig config_from(const SafetensorsFile& f) {
  OptimizerConfig cfg;
  cfg.kind = parse_optimizer(f.metadata.at("kind"));
  cfg.lr = meta_float(f, "lr", cfg.lr);
  cfg.momentum = meta_float(f, "momentum", cfg.momentum);
  cfg.dampening = meta_float(f, "dampening", cfg.dampening);
  cfg.weight_decay = meta_float(f, "weight_decay", cfg.weight_decay);
  cfg.beta1 = meta_float(f, "beta1", cfg.beta1);
  cfg.beta2 = meta_float(f, "beta2", cfg.beta2);
  cfg.eps = meta_float(f, "eps", cfg.eps);
  cfg.alpha = meta_float(f, "alpha", cfg.alpha);
  cfg.nesterov = f.metadata.count("nesterov") && f.metadata.at("nesterov") == "true";
  cfg.centered = f.metadata.count("centered") && f.metadata.at("centered") == "true";
  return cfg;
}

// Largest |got - want| / |want| over the arrays.
double max_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, diff / std::abs(static_cast<double>(want[i])));
  }
  return worst;
}

class OptimGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimGolden, MatchesTorchStepByStep) {
  const SafetensorsFile f = read_safetensors(golden_path(GetParam()));
  const OptimizerConfig cfg = config_from(f);
  const int steps = std::stoi(f.metadata.at("steps"));
  const std::vector<float> lrs = f.at("lr").as_f32();
  ASSERT_EQ(static_cast<int>(lrs.size()), steps);

  std::vector<float> params = f.at("params.0").as_f32();
  Optimizer opt(cfg, params.size());
  double worst = 0;
  for (int k = 1; k <= steps; ++k) {
    const std::vector<float> grad = f.at("grad." + std::to_string(k)).as_f32();
    opt.step(params.data(), grad.data(), lrs[k - 1]);
    const double err = max_rel_error(params, f.at("params." + std::to_string(k)).as_f32());
    EXPECT_LE(err, kGoldenRelTol) << "after step " << k;
    worst = std::max(worst, err);
  }
  RecordProperty("max_relative_error", fmt::format("{:.3g}", worst));
  EXPECT_EQ(opt.steps(), steps);

  // The final state matches torch's, buffer by buffer, and names the same buffers. State values
  // can sit near zero (a running mean of gradients of both signs), so they are compared
  // relative to the buffer's largest magnitude.
  std::vector<std::string> ours;
  for (auto& [name, buffer] : opt.state_buffers()) {
    ours.push_back(name);
    const std::vector<float> want = f.at("state." + name).as_f32();
    ASSERT_EQ(buffer->size(), want.size()) << name;
    double scale = 0;
    for (float v : want) scale = std::max(scale, std::abs(static_cast<double>(v)));
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR((*buffer)[i], want[i], kGoldenRelTol * scale) << name << "[" << i << "]";
    }
  }
  std::vector<std::string> theirs;
  for (const auto& [name, tensor] : f.tensors) {
    if (name.rfind("state.", 0) == 0) theirs.push_back(name.substr(6));
  }
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(ours, theirs);
}

const std::vector<std::string> kOptimFixtures = {
    "sgd",   "sgd_momentum", "sgd_nesterov_wd",           "sgd_dampening_wd",   "adam", "adam_wd",
    "adamw", "rmsprop",      "rmsprop_centered_momentum", "rmsprop_wd_momentum"};

INSTANTIATE_TEST_SUITE_P(Optim, OptimGolden, ::testing::ValuesIn(kOptimFixtures),
                         [](const auto& param_info) { return param_info.param; });

// The folder holds exactly the fixtures tested here (the optimizers' and the clipping one).
TEST(OptimGoldenFixtures, FolderHoldsExactlyTheTestedFixtures) {
  std::vector<std::string> tested = kOptimFixtures;
  tested.push_back("clip");
  std::sort(tested.begin(), tested.end());
  EXPECT_EQ(golden::fixture_files(std::string(RECUR_TEST_DIR) + "/golden/optim"), tested);
}

std::vector<float> random_values(std::size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& v : out) v = dist(rng);
  return out;
}

std::vector<OptimizerConfig> every_variant() {
  std::vector<OptimizerConfig> out;
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  c.lr = 0.01f;
  out.push_back(c);
  c.momentum = 0.9f;
  c.nesterov = true;
  c.weight_decay = 0.01f;
  out.push_back(c);
  c = OptimizerConfig{};
  out.push_back(c);
  c.kind = OptimizerKind::adamw;
  c.weight_decay = 0.01f;
  out.push_back(c);
  c = OptimizerConfig{};
  c.kind = OptimizerKind::rmsprop;
  c.centered = true;
  c.momentum = 0.9f;
  c.weight_decay = 0.001f;
  out.push_back(c);
  return out;
}

TEST(OptimizerState, ResumeFromSavedStateMatchesAnUninterruptedRun) {
  const std::size_t n = 50;
  const std::vector<float> start = random_values(n, 1, -1, 1);
  std::vector<std::vector<float>> grads;
  for (uint32_t k = 0; k < 6; ++k) grads.push_back(random_values(n, 100 + k, -1, 1));

  for (const OptimizerConfig& cfg : every_variant()) {
    SCOPED_TRACE(optimizer_name(cfg.kind));
    std::vector<float> straight = start;
    Optimizer a(cfg, n);
    for (const auto& g : grads) a.step(straight.data(), g.data(), cfg.lr);

    // Three steps, a checkpoint through safetensors, a fresh optimizer, three more steps.
    std::vector<float> resumed = start;
    Optimizer b(cfg, n);
    for (int k = 0; k < 3; ++k) b.step(resumed.data(), grads[k].data(), cfg.lr);
    std::vector<TensorRef> refs;
    for (auto& [name, buffer] : b.state_buffers()) {
      refs.push_back({name, DType::F32, {static_cast<int64_t>(n)}, buffer->data()});
    }
    const std::vector<uint8_t> bytes =
        encode_safetensors(refs, {{"step", std::to_string(b.steps())}});
    const SafetensorsFile saved = parse_safetensors("checkpoint", bytes.data(), bytes.size());

    Optimizer c(cfg, n);
    for (auto& [name, buffer] : c.state_buffers()) *buffer = saved.at(name).as_f32();
    c.set_step_count(std::stoll(saved.metadata.at("step")));
    for (int k = 3; k < 6; ++k) c.step(resumed.data(), grads[k].data(), cfg.lr);
    EXPECT_EQ(resumed, straight);
    EXPECT_EQ(c.steps(), 6);
  }
}

TEST(OptimizerState, ReleasedUpdateStateKeepsTheAverageAndRefusesAnotherStep) {
  OptimizerConfig cfg;
  cfg.lr = 0.1f;
  cfg.ema = 0.5f;
  std::vector<float> w = {0.5f, -1.0f, 2.0f};
  const std::vector<float> g = {1.0f, 0.5f, -0.25f};
  Optimizer opt(cfg, w.size());
  opt.step(w.data(), g.data(), cfg.lr);
  opt.step(w.data(), g.data(), cfg.lr);
  const std::vector<float> average = opt.averaged();
  opt.release_update_state();
  EXPECT_EQ(opt.averaged(), average);
  EXPECT_EQ(opt.steps(), 2);
  for (auto& [name, buffer] : opt.state_buffers())
    EXPECT_EQ(buffer->empty(), name != "ema") << name;
  try {
    opt.step(w.data(), g.data(), cfg.lr);
    FAIL() << "a step after the release";
  } catch (const Error& e) {
    EXPECT_STREQ(e.subject().c_str(), "optimizer state");
  }
}

TEST(OptimizerEma, AverageEqualsItsClosedForm) {
  // ema_T = w_0 prod_s d_s + sum_t (1 - d_t) prod_{s > t} d_s w_t over the weights after each
  // update, with the warmed-up decay d_t = min(d, (1 + t) / (10 + t)).
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adam}) {
    OptimizerConfig cfg;
    cfg.kind = kind;
    cfg.lr = 0.1f;
    cfg.ema = 0.75f;
    std::vector<float> w = {0.5f, -1.0f, 2.0f};
    Optimizer opt(cfg, w.size());
    EXPECT_TRUE(opt.averaged().size() == w.size());
    std::vector<std::vector<double>> seen = {{w.begin(), w.end()}};
    for (int t = 1; t <= 40; ++t) {
      const std::vector<float> g = {0.3f * t, -0.2f, std::sin(1.0f * t)};
      opt.step(w.data(), g.data(), cfg.lr);
      seen.emplace_back(w.begin(), w.end());
    }
    const int T = static_cast<int>(seen.size()) - 1;
    auto decay = [&](int t) { return std::min<double>(cfg.ema, (1.0 + t) / (10.0 + t)); };
    auto kept = [&](int from) {  // prod_{s >= from} d_s
      double p = 1;
      for (int s = from; s <= T; ++s) p *= decay(s);
      return p;
    };
    for (std::size_t i = 0; i < w.size(); ++i) {
      double closed = kept(1) * seen[0][i];
      for (int t = 1; t <= T; ++t) closed += (1 - decay(t)) * kept(t + 1) * seen[t][i];
      EXPECT_NEAR(opt.averaged()[i], closed, 1e-5) << i;
      EXPECT_NE(opt.averaged()[i], w[i]) << i;  // an average, not the weights
    }
    auto buffers = opt.state_buffers();
    EXPECT_EQ(buffers.back().first, "ema");
  }
  OptimizerConfig off;
  EXPECT_TRUE(Optimizer(off, 3).averaged().empty());
  off.ema = 1;
  EXPECT_THROW(Optimizer(off, 3), Error);
}

TEST(OptimizerState, BufferNamesPerConfiguration) {
  auto names = [](const OptimizerConfig& cfg) {
    Optimizer opt(cfg, 3);
    std::vector<std::string> out;
    for (auto& [name, buffer] : opt.state_buffers()) {
      EXPECT_EQ(buffer->size(), 3u);
      out.push_back(name);
    }
    return out;
  };
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  EXPECT_TRUE(names(c).empty());
  c.momentum = 0.5f;
  EXPECT_EQ(names(c), std::vector<std::string>{"momentum_buffer"});
  c = OptimizerConfig{};
  EXPECT_EQ(names(c), (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  c.kind = OptimizerKind::rmsprop;
  EXPECT_EQ(names(c), std::vector<std::string>{"square_avg"});
  c.momentum = 0.9f;
  c.centered = true;
  EXPECT_EQ(names(c), (std::vector<std::string>{"square_avg", "momentum_buffer", "grad_avg"}));
}

TEST(Optimizer, LargeArenaMatchesChunkedUpdates) {
  // Above the threading threshold the update runs in parallel; it must equal running the same
  // configuration chunk by chunk on one thread.
  const std::size_t n = 100'003;
  const std::size_t chunk = 1000;
  const std::vector<float> start = random_values(n, 3, -1, 1);
  const std::vector<float> g1 = random_values(n, 4, -1, 1);
  const std::vector<float> g2 = random_values(n, 5, -1, 1);
  for (const OptimizerConfig& cfg : every_variant()) {
    SCOPED_TRACE(optimizer_name(cfg.kind));
    std::vector<float> whole = start;
    Optimizer big(cfg, n);
    big.step(whole.data(), g1.data(), cfg.lr);
    big.step(whole.data(), g2.data(), cfg.lr);

    std::vector<float> pieces = start;
    for (std::size_t begin = 0; begin < n; begin += chunk) {
      const std::size_t len = std::min(chunk, n - begin);
      Optimizer small(cfg, len);
      small.step(pieces.data() + begin, g1.data() + begin, cfg.lr);
      small.step(pieces.data() + begin, g2.data() + begin, cfg.lr);
    }
    for (std::size_t i = 0; i < n; i += 997) ASSERT_FLOAT_EQ(whole[i], pieces[i]) << i;
  }
}

TEST(Optimizer, RangeRunnerGivesTheSameBits) {
  // The update split into uneven ranges, run in reverse order and on two threads at once (as a
  // SequenceRunner's pool runs it): every element the same bits as on one thread, for every
  // optimizer and option (the weight decays, decoupled too, and the EMA).
  const std::size_t n = 200'003;
  const std::vector<float> start = random_values(n, 7, -1, 1);
  const std::vector<float> g1 = random_values(n, 8, -1, 1);
  const std::vector<float> g2 = random_values(n, 9, -1, 1);
  int calls = 0;
  auto split = [&calls](std::size_t count,
                        const std::function<void(std::size_t, std::size_t)>& fn) {
    ++calls;
    const std::size_t cut1 = count / 7, cut2 = count / 2 + 3;
    std::thread other([&] { fn(cut2, count); });
    fn(cut1, cut2);
    fn(0, cut1);
    other.join();
  };
  std::vector<OptimizerConfig> variants = every_variant();
  OptimizerConfig decoupled;  // SGDW: the decay as a pass of its own
  decoupled.kind = OptimizerKind::sgd;
  decoupled.lr = 0.01f;
  decoupled.momentum = 0.9f;
  decoupled.weight_decay = 0.01f;
  decoupled.decoupled_weight_decay = true;
  variants.push_back(decoupled);
  for (OptimizerConfig cfg : variants) {
    for (const float ema : {0.0f, 0.9f}) {
      cfg.ema = ema;
      SCOPED_TRACE(std::string(optimizer_name(cfg.kind)) + (ema > 0 ? " ema" : ""));
      std::vector<float> one = start, split_run = start;
      Optimizer a(cfg, n), b(cfg, n);
      b.set_range_runner(split);
      const int before = calls;
      for (const auto* g : {&g1, &g2}) {
        a.step(one.data(), g->data(), cfg.lr);
        b.step(split_run.data(), g->data(), cfg.lr);
      }
      EXPECT_GT(calls, before);
      ASSERT_EQ(std::memcmp(one.data(), split_run.data(), n * sizeof(float)), 0);
      if (ema > 0) {
        ASSERT_EQ(std::memcmp(a.averaged().data(), b.averaged().data(), n * sizeof(float)), 0);
      }
    }
  }
}

TEST(Optimizer, AdamFirstStepMovesEachParameterByLr) {
  // With zero state, m / sqrt(v) after bias correction is sign(g): the classic first step.
  OptimizerConfig cfg;
  cfg.eps = 0;
  Optimizer opt(cfg, 3);
  std::vector<float> p{1, 1, 1};
  const std::vector<float> g{0.5f, -2.0f, 1e-3f};
  opt.step(p.data(), g.data(), 0.01f);
  EXPECT_FLOAT_EQ(p[0], 0.99f);
  EXPECT_FLOAT_EQ(p[1], 1.01f);
  EXPECT_FLOAT_EQ(p[2], 0.99f);
}

// Decoupled weight decay: adam with it is adamw bit for bit; sgd and rmsprop with it are the plain
// update of p * (1 - lr * wd) with no decay term in the gradient, over several steps with
// momentum (the state evolves as without weight decay).
TEST(Optimizer, DecoupledWeightDecayIsAdamwsForEveryOptimizer) {
  const std::size_t n = 37;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> p0(n);
  for (float& v : p0) v = u(gen);
  std::vector<std::vector<float>> grads(4, std::vector<float>(n));
  for (auto& g : grads)
    for (float& v : g) v = u(gen);
  const float lr = 0.03f, wd = 0.2f;
  auto run = [&](OptimizerConfig cfg, bool decay_by_hand) {
    Optimizer opt(cfg, n);
    std::vector<float> p = p0;
    for (const auto& g : grads) {
      if (decay_by_hand) {
        const float scale = static_cast<float>(1.0 - static_cast<double>(lr) * 0.2);
        for (float& v : p) v = v * scale;
      }
      opt.step(p.data(), g.data(), lr);
    }
    return p;
  };
  OptimizerConfig adam, adamw;
  adam.weight_decay = wd;
  adam.decoupled_weight_decay = true;
  adamw.kind = OptimizerKind::adamw;
  adamw.weight_decay = wd;
  EXPECT_EQ(run(adam, false), run(adamw, false));
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::rmsprop}) {
    OptimizerConfig decoupled, plain;
    decoupled.kind = plain.kind = kind;
    decoupled.momentum = plain.momentum = 0.9f;
    decoupled.weight_decay = wd;
    decoupled.decoupled_weight_decay = true;
    EXPECT_EQ(run(decoupled, false), run(plain, true)) << optimizer_name(kind);
    // ... and not the coupled form.
    OptimizerConfig coupled = decoupled;
    coupled.decoupled_weight_decay = false;
    EXPECT_NE(run(decoupled, false), run(coupled, false)) << optimizer_name(kind);
  }
  // Nothing to decouple, or decoupled already: refused, naming the flag.
  OptimizerConfig none;
  none.decoupled_weight_decay = true;
  EXPECT_THROW(check_optimizer_config(none), Error);
  adamw.decoupled_weight_decay = true;
  EXPECT_THROW(check_optimizer_config(adamw), Error);
}

TEST(Optimizer, ParseNames) {
  EXPECT_EQ(parse_optimizer("sgd"), OptimizerKind::sgd);
  EXPECT_EQ(parse_optimizer("adam"), OptimizerKind::adam);
  EXPECT_EQ(parse_optimizer("adamw"), OptimizerKind::adamw);
  EXPECT_EQ(parse_optimizer("rmsprop"), OptimizerKind::rmsprop);
  for (auto kind :
       {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::rmsprop}) {
    EXPECT_EQ(parse_optimizer(optimizer_name(kind)), kind);
  }
  try {
    parse_optimizer("Adam");
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--optimizer: unknown optimizer 'Adam' (sgd, adam, adamw, rmsprop)");
  }
}

// The flag named by the error `make` throws, or "" when it throws none.
template <typename F>
std::string error_subject(F make) {
  try {
    make();
  } catch (const Error& e) {
    return e.subject();
  }
  return "";
}

TEST(Optimizer, RejectsBadSettings) {
  auto with = [](auto edit) {
    OptimizerConfig c;
    edit(c);
    return error_subject([&] { Optimizer opt(c, 4); });
  };
  EXPECT_EQ(with([](OptimizerConfig&) {}), "");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.lr = -1; }), "--lr");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.lr = std::numeric_limits<float>::quiet_NaN(); }),
            "--lr");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.momentum = -0.1f; }), "--momentum");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.weight_decay = -1; }), "--weight-decay");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.beta1 = 1; }), "--beta1");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.beta2 = -0.5f; }), "--beta2");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.eps = -1e-8f; }), "--eps");
  EXPECT_EQ(with([](OptimizerConfig& c) { c.alpha = -1; }), "--alpha");
  EXPECT_EQ(with([](OptimizerConfig& c) {
              c.kind = OptimizerKind::sgd;
              c.nesterov = true;
            }),
            "--nesterov");
  EXPECT_EQ(with([](OptimizerConfig& c) {
              c.kind = OptimizerKind::sgd;
              c.nesterov = true;
              c.momentum = 0.9f;
              c.dampening = 0.1f;
            }),
            "--nesterov");
  try {
    OptimizerConfig c;
    c.beta1 = 1.5f;
    check_optimizer_config(c);
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.reason(), "must be in [0, 1), got 1.5");
  }
}

TEST(Optimizer, StepRejectsANegativeRate) {
  Optimizer opt(OptimizerConfig{}, 1);
  float p = 1, g = 1;
  EXPECT_EQ(error_subject([&] { opt.step(&p, &g, -0.1f); }), "--lr");
  EXPECT_EQ(opt.steps(), 0);
  EXPECT_EQ(error_subject([&] { opt.set_step_count(-1); }), "optimizer state");
}

TEST(ClipGradNorm, MatchesTorch) {
  const SafetensorsFile f = read_safetensors(golden_path("clip"));
  for (const std::string c : {"shrink", "keep"}) {
    SCOPED_TRACE(c);
    std::vector<float> grads = f.at(c + ".before").as_f32();
    const float max_norm = meta_float(f, c + ".max_norm", 0);
    const float norm = clip_grad_norm(grads.data(), grads.size(), max_norm);
    const float want_norm = f.at(c + ".norm").as_f32()[0];
    // torch sums squares in float, recur in double: the norms agree to a few ulps.
    EXPECT_NEAR(norm, want_norm, kGoldenRelTol * want_norm);
    const std::vector<float> want = f.at(c + ".after").as_f32();
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(grads[i], want[i], kGoldenRelTol * std::abs(want[i]) + 1e-30) << i;
    }
  }
}

TEST(ClipGradNorm, ClosedForm) {
  std::vector<float> g{3, 4};
  EXPECT_FLOAT_EQ(clip_grad_norm(g.data(), g.size(), 1.0f), 5.0f);
  EXPECT_FLOAT_EQ(g[0], 3.0f / (5.0f + 1e-6f));
  EXPECT_FLOAT_EQ(g[1], 4.0f / (5.0f + 1e-6f));
  g = {3, 4};
  EXPECT_FLOAT_EQ(clip_grad_norm(g.data(), g.size(), 10.0f), 5.0f);
  EXPECT_EQ(g, (std::vector<float>{3, 4}));
  std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(clip_grad_norm(zeros.data(), zeros.size(), 1.0f), 0.0f);
  EXPECT_EQ(zeros, std::vector<float>(4, 0.0f));
  EXPECT_EQ(clip_grad_norm(nullptr, 0, 1.0f), 0.0f);
}

TEST(ClipGradNorm, LargeArena) {
  std::vector<float> g(1'000'000, 0.5f);  // norm = 0.5 * 1000
  EXPECT_FLOAT_EQ(clip_grad_norm(g.data(), g.size(), 50.0f), 500.0f);
  EXPECT_FLOAT_EQ(g[0], 0.5f * 50.0f / (500.0f + 1e-6f));
  EXPECT_FLOAT_EQ(g.back(), g[0]);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsAlone) {
  std::vector<float> g{1, std::numeric_limits<float>::infinity(), 2};
  EXPECT_TRUE(std::isinf(clip_grad_norm(g.data(), g.size(), 1.0f)));
  EXPECT_EQ(g[0], 1.0f);
  EXPECT_EQ(g[2], 2.0f);
  g = {1, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_TRUE(std::isnan(clip_grad_norm(g.data(), g.size(), 1.0f)));
  EXPECT_EQ(g[0], 1.0f);
}

TEST(ClipGradNorm, RejectsANonPositiveLimit) {
  float g = 1;
  EXPECT_EQ(error_subject([&] { clip_grad_norm(&g, 1, 0.0f); }), "--clip-norm");
  EXPECT_EQ(error_subject([&] { clip_grad_norm(&g, 1, -1.0f); }), "--clip-norm");
}

TEST(ClipGradValue, ClampsEveryValue) {
  std::vector<float> g{-3,
                       -1,
                       -0.5f,
                       0,
                       0.5f,
                       1,
                       3,
                       std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN()};
  clip_grad_value(g.data(), g.size(), 1.0f);
  const std::vector<float> want{-1, -1, -0.5f, 0, 0.5f, 1, 1, 1};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(g[i], want[i]) << i;
  EXPECT_TRUE(std::isnan(g.back()));
  std::vector<float> big = random_values(100'000, 9, -4, 4);
  clip_grad_value(big.data(), big.size(), 2.0f);
  EXPECT_EQ(*std::max_element(big.begin(), big.end()), 2.0f);
  EXPECT_EQ(*std::min_element(big.begin(), big.end()), -2.0f);
}

TEST(ClipGradValue, RejectsANonPositiveLimit) {
  float g = 1;
  EXPECT_EQ(error_subject([&] { clip_grad_value(&g, 1, 0.0f); }), "--clip-value");
}

TEST(Schedule, ParseNames) {
  EXPECT_EQ(parse_schedule("constant"), ScheduleKind::constant);
  EXPECT_EQ(parse_schedule("step"), ScheduleKind::step);
  EXPECT_EQ(parse_schedule("cosine"), ScheduleKind::cosine);
  for (auto kind : {ScheduleKind::constant, ScheduleKind::step, ScheduleKind::cosine}) {
    EXPECT_EQ(parse_schedule(schedule_name(kind)), kind);
  }
  try {
    parse_schedule("linear");
    FAIL() << "expected recur::Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--schedule: unknown schedule 'linear' (constant, step, cosine)");
  }
}

TEST(Schedule, Constant) {
  const ScheduleConfig s;
  EXPECT_EQ(learning_rate_at(s, 0.1f, 0), 0.1f);
  EXPECT_EQ(learning_rate_at(s, 0.1f, 123456), 0.1f);
}

TEST(Schedule, LinearWarmupThenConstant) {
  ScheduleConfig s;
  s.warmup_steps = 4;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 0), 0.025f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 1), 0.05f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 2), 0.075f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 3), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 4), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 1000), 0.1f);
}

TEST(Schedule, StepDecay) {
  ScheduleConfig s;
  s.kind = ScheduleKind::step;
  s.step_size = 10;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 9), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 10), 0.05f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 25), 0.025f);
  s.warmup_steps = 5;  // the decay counts from the end of warmup
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 2), 0.06f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 14), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 15), 0.05f);
}

TEST(Schedule, Cosine) {
  ScheduleConfig s;
  s.kind = ScheduleKind::cosine;
  s.total_steps = 100;
  s.min_lr = 0.01f;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 25),
                  static_cast<float>(0.01 + 0.09 * (1 + std::cos(std::numbers::pi / 4)) / 2));
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 50), 0.055f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 99),
                  static_cast<float>(0.01 + 0.09 * (1 + std::cos(std::numbers::pi * 0.99)) / 2));
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 100), 0.01f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 0.1f, 500), 0.01f);
}

TEST(Schedule, CosineAfterWarmup) {
  ScheduleConfig s;
  s.kind = ScheduleKind::cosine;
  s.warmup_steps = 10;
  s.total_steps = 110;
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 9), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 10), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 60), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 110), 0.0f);
  s.total_steps = 5;  // all warmup: the rate falls to min_lr once warmup ends
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 9), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate_at(s, 1.0f, 10), 0.0f);
}

TEST(Schedule, RejectsBadSettings) {
  auto with = [](auto edit) {
    ScheduleConfig s;
    edit(s);
    return error_subject([&] { learning_rate_at(s, 0.1f, 0); });
  };
  EXPECT_EQ(with([](ScheduleConfig&) {}), "");
  EXPECT_EQ(with([](ScheduleConfig& s) { s.warmup_steps = -1; }), "--warmup");
  EXPECT_EQ(with([](ScheduleConfig& s) {
              s.kind = ScheduleKind::step;
              s.step_size = 0;
            }),
            "--step-size");
  EXPECT_EQ(with([](ScheduleConfig& s) {
              s.kind = ScheduleKind::step;
              s.gamma = 0;
            }),
            "--gamma");
  EXPECT_EQ(with([](ScheduleConfig& s) { s.kind = ScheduleKind::cosine; }), "--schedule");
  EXPECT_EQ(with([](ScheduleConfig& s) {
              s.kind = ScheduleKind::cosine;
              s.total_steps = 10;
              s.min_lr = -1;
            }),
            "--min-lr");
}

}  // namespace
}  // namespace recur
