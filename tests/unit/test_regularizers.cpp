// The training methods that perturb a step: recurrent (variational) dropout, word dropout and
// image augmentation. Recurrent dropout keeps one mask per sequence for every step (checked
// against the reference cells stepped by hand) and its backward is exact (finite differences,
// every cell, ragged batches, float's packed path against double); word dropout drops whole
// tokens; augmentation is a pure function of its seed and keeps shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "kernels/reference/cell_reference.hpp"
#include "nn/recurrent.hpp"
#include "recur/augment.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/rng.hpp"
#include "support/finite_difference.hpp"

namespace recur {
namespace {

// ---- recurrent dropout: the mask is the sequence's, the same at every step ----

// One direction of one layer run by hand with the reference cell on h_{t-1} * mask, for cells
// whose h_{t-1} enters only through the recurrent product (LSTM, RNN).
void expect_mask_fixed_across_steps(CellKind cell) {
  const int I = 3, H = 6, S = 7, B = 4;
  nn::StackSpec spec;
  spec.cell = cell;
  spec.input_size = I;
  spec.hidden = H;
  spec.recurrent_dropout = 0.5;
  ParamLayout layout;
  nn::RecurrentStack<double> stack(spec, layout, "rnn.");
  std::vector<double> params(layout.total());
  Rng init(3);
  for (double& p : params) p = init.uniform(-0.6, 0.6);
  std::vector<double> x(static_cast<std::size_t>(S) * B * I);
  for (double& v : x) v = init.normal();

  nn::StackWorkspace<double> ws;
  Rng rng(17);
  stack.forward(params.data(), x.data(), S, B, nullptr, nullptr, true, &rng, ws);
  const std::vector<double> mask(ws.layers[0].dir[0].h_mask.begin(),
                                 ws.layers[0].dir[0].h_mask.begin() + B * H);
  int zeros = 0;
  for (double m : mask) {
    EXPECT_TRUE(m == 0.0 || m == 2.0) << m;  // 0 or 1 / keep
    zeros += m == 0.0;
  }
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, B * H);

  const nn::DirectionParams& p = stack.direction_params(0, 0);
  std::vector<double> h(static_cast<std::size_t>(B) * H, 0.0), c(h), h_next(h), c_next(h),
      masked(h);
  for (int t = 0; t < S; ++t) {
    for (std::size_t k = 0; k < masked.size(); ++k) masked[k] = h[k] * mask[k];
    kernels::reference::cell_step_forward<double>(
        cell, B, I, H, x.data() + static_cast<std::size_t>(t) * B * I, masked.data(), c.data(),
        params.data() + p.w_ih, params.data() + p.w_hh, params.data() + p.b_ih,
        params.data() + p.b_hh, h_next.data(), c_next.data());
    h = h_next;
    c = c_next;
    const double* out = ws.layers[0].out.data() + static_cast<std::size_t>(t) * B * H;
    for (std::size_t k = 0; k < h.size(); ++k)
      ASSERT_NEAR(out[k], h[k], 1e-12) << "step " << t << " element " << k;
  }
}

TEST(RecurrentDropout, LstmMaskIsFixedAcrossSteps) {
  expect_mask_fixed_across_steps(CellKind::lstm);
}
TEST(RecurrentDropout, RnnMaskIsFixedAcrossSteps) {
  expect_mask_fixed_across_steps(CellKind::rnn_tanh);
}

// ---- recurrent and word dropout: backward against finite differences ----

ModelSpec dropped_spec(CellKind cell, bool ids, double word, double recurrent) {
  ModelSpec spec;
  spec.num_classes = 3;
  if (ids) {
    spec.input = ActShape{ActKind::sequence, 0};
    spec.input.ids = true;
    LayerSpec e;
    e.type = "embedding";
    e.name = "embed";
    e.vocab = 9;
    e.size = 5;
    e.dropout = word;
    spec.layers.push_back(e);
  } else {
    spec.input = ActShape{ActKind::sequence, 3};
  }
  LayerSpec r;
  r.type = "recurrent";
  r.name = "rnn";
  r.cell = cell;
  r.size = 4;
  r.layers = 2;
  r.bidirectional = true;
  r.recurrent_dropout = recurrent;
  spec.layers.push_back(r);
  LayerSpec pool;
  pool.type = "pool";
  pool.pooling = Pooling::max;
  spec.layers.push_back(pool);
  LayerSpec head;
  head.type = "linear";
  head.name = "head";
  head.size = 3;
  spec.layers.push_back(head);
  return spec;
}

template <typename T>
struct Inputs {
  SeqInfo seq;
  std::vector<std::int32_t> ids;
  std::vector<T> x;
  ModelInput<T> in;
};

template <typename T>
void make_inputs(Inputs<T>& d, const std::vector<int>& lengths, int F) {
  d.seq = SeqInfo::from_lengths(lengths);
  const std::size_t rows = static_cast<std::size_t>(d.seq.steps) * d.seq.batch;
  Rng rng(11);
  d.ids.resize(rows);
  d.x.resize(rows * F);
  for (auto& id : d.ids) id = 2 + static_cast<std::int32_t>(rng.below(7));
  for (auto& v : d.x) v = static_cast<T>(rng.normal());
  d.in.batch = d.seq.batch;
  d.in.seq = &d.seq;
  d.in.ids = d.ids.data();
  d.in.x = d.x.data();
}

// loss = sum(logits * w) of a training forward whose masks come from a fresh Rng(seed), so every
// evaluation drops the same units and tokens.
void expect_exact_backward(CellKind cell, bool ids) {
  Model<double> model(dropped_spec(cell, ids, ids ? 0.3 : 0.0, 0.4));
  model.init(5);
  Inputs<double> d;
  make_inputs(d, {6, 5, 5, 3, 1}, 3);
  const int B = d.seq.batch, C = 3;
  std::vector<double> w(static_cast<std::size_t>(B) * C);
  Rng wr(9);
  for (double& v : w) v = wr.normal();
  ModelWorkspace<double> ws;
  auto loss = [&]() {
    Rng rng(23);
    const double* z = model.forward(d.in, ws, true, &rng);
    double s = 0;
    for (std::size_t k = 0; k < w.size(); ++k) s += z[k] * w[k];
    return s;
  };
  // The masks change the output: dropout is on.
  const double dropped = loss();
  const double* plain = model.forward(d.in, ws, false);
  double undropped = 0;
  for (std::size_t k = 0; k < w.size(); ++k) undropped += plain[k] * w[k];
  EXPECT_GT(std::fabs(dropped - undropped), 1e-6);

  loss();
  std::vector<double> grads(model.num_params(), 0.0);
  model.backward(d.in, ws, w.data(), grads.data());
  int checked = 0;
  for (std::size_t k = 0; k < model.num_params(); k += 2) {
    const double numeric = test::central_difference(model.params()[k], 1e-6, loss);
    EXPECT_NEAR(grads[k], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
        << "parameter " << k << " of " << to_string(cell);
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(RecurrentDropout, LstmBackwardMatchesFiniteDifferences) {
  expect_exact_backward(CellKind::lstm, false);
}
TEST(RecurrentDropout, GruBackwardMatchesFiniteDifferences) {
  expect_exact_backward(CellKind::gru, false);
}
TEST(RecurrentDropout, RnnBackwardMatchesFiniteDifferences) {
  expect_exact_backward(CellKind::rnn_tanh, false);
}
TEST(WordDropout, EmbeddingBackwardMatchesFiniteDifferences) {
  expect_exact_backward(CellKind::lstm, true);
}

// Float's packed fast path (batches of 8 rows and more) computes what double's BLAS path does.
TEST(RecurrentDropout, PackedFloatMatchesDouble) {
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh}) {
    const ModelSpec spec = dropped_spec(cell, false, 0.0, 0.3);
    Model<double> md(spec);
    Model<float> mf(spec);
    md.init(7);
    mf.init(7);
    Inputs<double> dd;
    Inputs<float> df;
    const std::vector<int> lengths = {9, 9, 8, 7, 7, 5, 4, 4, 2, 1};
    make_inputs(dd, lengths, 3);
    make_inputs(df, lengths, 3);
    ModelWorkspace<double> wsd;
    ModelWorkspace<float> wsf;
    Rng rd(31), rf(31);
    const double* zd = md.forward(dd.in, wsd, true, &rd);
    const float* zf = mf.forward(df.in, wsf, true, &rf);
    const int B = dd.seq.batch, C = 3;
    for (int k = 0; k < B * C; ++k) EXPECT_NEAR(zf[k], zd[k], 1e-4) << to_string(cell);
    std::vector<double> dz(static_cast<std::size_t>(B) * C, 0.1), gd(md.num_params(), 0.0);
    std::vector<float> dzf(dz.begin(), dz.end()), gf(mf.num_params(), 0.f);
    md.backward(dd.in, wsd, dz.data(), gd.data());
    mf.backward(df.in, wsf, dzf.data(), gf.data());
    for (std::size_t k = 0; k < gd.size(); ++k)
      EXPECT_NEAR(gf[k], gd[k], 1e-4 * std::max(1.0, std::fabs(gd[k]))) << to_string(cell) << k;
  }
}

// Inference ignores both dropouts: the same logits as a model without them.
TEST(RecurrentDropout, InferenceIsUnchanged) {
  Model<double> dropped(dropped_spec(CellKind::lstm, true, 0.5, 0.5));
  Model<double> plain(dropped_spec(CellKind::lstm, true, 0.0, 0.0));
  dropped.init(4);
  plain.init(4);
  Inputs<double> d;
  make_inputs(d, {4, 3, 1}, 3);
  ModelWorkspace<double> wa, wb;
  const double* za = dropped.forward(d.in, wa, false);
  const double* zb = plain.forward(d.in, wb, false);
  for (int k = 0; k < 9; ++k) EXPECT_EQ(za[k], zb[k]);
}

// Word dropout drops whole tokens: each embedded vector is all zero or its row times 1 / keep.
TEST(WordDropout, DropsWholeTokens) {
  ModelSpec spec = dropped_spec(CellKind::lstm, true, 0.5, 0.0);
  Model<double> model(spec);
  model.init(2);
  Inputs<double> d;
  make_inputs(d, {30, 30, 30, 30}, 3);
  ModelWorkspace<double> ws;
  Rng rng(5);
  model.forward(d.in, ws, true, &rng);
  const double* emb = model.activation(ws, 1);  // the recurrent layer's input
  const double* table = model.params().data();  // embed.weight comes first
  int dropped = 0, kept = 0;
  for (std::size_t r = 0; r < d.ids.size(); ++r) {
    const double* v = emb + r * 5;
    const double* row = table + static_cast<std::size_t>(d.ids[r]) * 5;
    const bool zero = std::all_of(v, v + 5, [](double e) { return e == 0.0; });
    if (zero) {
      ++dropped;
      continue;
    }
    ++kept;
    for (int e = 0; e < 5; ++e) EXPECT_DOUBLE_EQ(v[e], row[e] * 2.0);
  }
  EXPECT_GT(dropped, 30);
  EXPECT_GT(kept, 30);
}

// Layer lists take both settings and write them back.
TEST(RecurrentDropout, LayerListKeys) {
  const auto layers = parse_layer_list(
      "embedding 16 dropout=0.1, lstm 8 recurrent_dropout=0.25, pool max, linear", "--model");
  EXPECT_DOUBLE_EQ(layers[0].dropout, 0.1);
  EXPECT_DOUBLE_EQ(layers[1].recurrent_dropout, 0.25);
  const auto again = parse_layer_list(layer_list_text(layers), "--model");
  EXPECT_DOUBLE_EQ(again[0].dropout, 0.1);
  EXPECT_DOUBLE_EQ(again[1].recurrent_dropout, 0.25);
  EXPECT_THROW(parse_layer_list("lstm 8 recurrent_dropout=1.5, pool last, linear", "--model"),
               Error);
  ModelSpec spec = dropped_spec(CellKind::lstm, false, 0.0, 0.25);
  spec.layers[0].untied_steps = 4;  // [recurrent, pool, head] for features
  spec.layers[0].bidirectional = false;
  spec.layers[0].layers = 1;
  spec.layers[1].pooling = Pooling::last;
  EXPECT_THROW(Model<double>{spec}, Error);  // untied weights refuse it
}

// ---- augmentation ----

std::vector<std::uint8_t> test_image(int rows, int cols) {
  std::vector<std::uint8_t> img(static_cast<std::size_t>(rows) * cols, 0);
  for (int r = 8; r < 20; ++r)
    for (int c = 10; c < 16; ++c) img[r * cols + c] = static_cast<std::uint8_t>(40 + 7 * r + c);
  return img;
}

TEST(Augment, WholePixelMoveCopiesExactly) {
  const int R = 28, C = 28;
  const auto img = test_image(R, C);
  std::vector<std::uint8_t> out(img.size());
  warp_image(img.data(), R, C, 2, -3, 0, out.data());
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const int sr = r - 2, sc = c + 3;
      const int want = sr >= 0 && sr < R && sc >= 0 && sc < C ? img[sr * C + sc] : 0;
      ASSERT_EQ(out[r * C + c], want) << r << "," << c;
    }
  warp_image(img.data(), R, C, 0, 0, 0, out.data());
  EXPECT_EQ(out, img);
}

TEST(Augment, QuarterTurnMovesPixelsAroundTheCentre) {
  // A 90-degree turn of a square image maps pixels exactly (no interpolation).
  const int N = 8;
  std::vector<std::uint8_t> img(N * N);
  for (int k = 0; k < N * N; ++k) img[k] = static_cast<std::uint8_t>(k + 1);
  std::vector<std::uint8_t> out(img.size());
  warp_image(img.data(), N, N, 0, 0, 90, out.data());
  std::multiset<int> before(img.begin(), img.end()), after(out.begin(), out.end());
  EXPECT_EQ(before, after);  // a permutation of the pixels
  EXPECT_NE(out, img);
  std::vector<std::uint8_t> back(img.size());
  warp_image(out.data(), N, N, 0, 0, -90, back.data());
  EXPECT_EQ(back, img);
}

TEST(Augment, DeterministicForASeedAndShapePreserving) {
  const int R = 28, C = 28;
  const auto img = test_image(R, C);
  const Augment a{2, 10.0};
  std::vector<std::uint8_t> first(img.size()), again(img.size()), other(img.size());
  Rng r1 = augment_rng(1234, 7), r2 = augment_rng(1234, 7);
  augment_image(img.data(), R, C, a, r1, first.data());
  augment_image(img.data(), R, C, a, r2, again.data());
  EXPECT_EQ(first, again);
  int differing = 0;
  for (std::uint64_t step = 1; step <= 8; ++step) {
    Rng r3 = augment_rng(1234 + step, 7);
    augment_image(img.data(), R, C, a, r3, other.data());
    differing += other != first;
    EXPECT_EQ(other.size(), img.size());
  }
  EXPECT_GE(differing, 6);
  // The ink stays about where it was: a small move and turn keep most of it on the image.
  long ink = 0, moved = 0;
  for (std::size_t k = 0; k < img.size(); ++k) ink += img[k], moved += first[k];
  EXPECT_NEAR(static_cast<double>(moved), static_cast<double>(ink), 0.1 * ink);
}

TEST(Augment, BoundsNameTheFlag) {
  try {
    check_augment(Augment{14, 0}, 28, 28);
    FAIL() << "a shift of half the image passed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--augment-shift"), std::string::npos);
  }
  try {
    check_augment(Augment{0, 120}, 28, 28);
    FAIL() << "a turn of 120 degrees passed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--augment-rotate"), std::string::npos);
  }
  EXPECT_NO_THROW(check_augment(Augment{3, 15}, 28, 28));
}

}  // namespace
}  // namespace recur
