// A model prepared for bf16 training (PrepareFor::training_bf16) against the same model in fp32:
// logits and every parameter gradient within bf16's precision, for each cell, stacked,
// bidirectional, on a batch of mixed lengths (rows past their end on some steps) and on a batch
// under the packed kernel's 8 rows; the portable emulation and the AVX512_BF16 kernel (where this
// CPU has it) agree.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/bf16_gemm.hpp"
#include "recur/layers.hpp"
#include "recur/model.hpp"
#include "recur/rng.hpp"

namespace recur {
namespace {

struct Pass {
  std::vector<float> logits, grads;
};

Pass run(Model<float>& model, const std::vector<float>& x, const SeqInfo& seq,
         const std::vector<float>& dl, PrepareFor use) {
  model.prepare(use);
  ModelInput<float> in;
  in.x = x.data();
  in.batch = seq.batch;
  in.seq = &seq;
  ModelWorkspace<float> ws;
  const float* l = model.forward(in, ws, true);
  Pass p;
  p.logits.assign(l, l + dl.size());
  p.grads.assign(model.num_params(), 0.0f);
  model.backward(in, ws, dl.data(), p.grads.data());
  return p;
}

double norm(const float* v, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return std::sqrt(s);
}

// ||a - b|| / ||b|| over each tensor of the layout.
void expect_close(const Pass& a, const Pass& b, const ParamLayout& layout, double rel,
                  const std::string& what) {
  SCOPED_TRACE(what);
  std::vector<float> d(a.logits.size());
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = a.logits[i] - b.logits[i];
  EXPECT_LE(norm(d.data(), d.size()), rel * norm(b.logits.data(), b.logits.size())) << "logits";
  for (const auto& e : layout.entries()) {
    std::size_t n = 1;
    for (auto s : e.shape) n *= static_cast<std::size_t>(s);
    std::vector<float> diff(n);
    for (std::size_t i = 0; i < n; ++i) diff[i] = a.grads[e.offset + i] - b.grads[e.offset + i];
    EXPECT_LE(norm(diff.data(), n), rel * norm(b.grads.data() + e.offset, n) + 1e-7) << e.name;
  }
}

void check(CellKind cell, const std::vector<int>& lengths) {
  SCOPED_TRACE(to_string(cell) + " batch " + std::to_string(lengths.size()));
  ModelConfig cfg;
  cfg.cell = cell;
  cfg.input_size = 6;
  cfg.steps = lengths.front();
  cfg.hidden = 20;
  cfg.layers = 2;
  cfg.bidirectional = true;
  cfg.num_classes = 5;
  cfg.init.recurrent.kind = InitKind::orthogonal;
  Model<float> model(model_spec_from_config(cfg));
  model.init(3);
  const SeqInfo seq = SeqInfo::from_lengths(lengths);
  Rng data(5);
  std::vector<float> x(static_cast<std::size_t>(seq.steps) * seq.batch * cfg.input_size);
  for (auto& v : x) v = static_cast<float>(data.normal());
  std::vector<float> dl(static_cast<std::size_t>(seq.batch) * cfg.num_classes);
  for (auto& v : dl) v = static_cast<float>(data.normal());

  const Pass fp32 = run(model, x, seq, dl, PrepareFor::training);
  const kernels::Bf16Kernel before = kernels::set_bf16_kernel(kernels::Bf16Kernel::portable);
  const Pass portable = run(model, x, seq, dl, PrepareFor::training_bf16);
  kernels::set_bf16_kernel(before);
  // bf16 operands: each product within 2^-8 relative, the sums within a few percent.
  expect_close(portable, fp32, model.layout(), 0.03, "portable against fp32");
  EXPECT_NE(portable.grads, fp32.grads) << "the bf16 pass computed the fp32 products";
  for (kernels::Bf16Kernel k : {kernels::Bf16Kernel::avx512_bf16, kernels::Bf16Kernel::amx_bf16}) {
    if (!kernels::bf16_kernel_supported(k)) continue;
    kernels::set_bf16_kernel(k);
    const Pass simd = run(model, x, seq, dl, PrepareFor::training_bf16);
    kernels::set_bf16_kernel(before);
    expect_close(simd, portable, model.layout(), 1e-4, kernels::to_string(k) + " against portable");
  }
}

TEST(Bf16Training, GradientsFollowFp32ForEveryCell) {
  const std::vector<int> mixed = {9, 9, 8, 7, 7, 7, 5, 4, 4, 3, 2, 1};
  for (CellKind cell : {CellKind::lstm, CellKind::gru, CellKind::rnn_tanh}) {
    check(cell, mixed);
    check(cell, {6, 6, 6});  // under the 8 rows fp32 training sends to BLAS
  }
}

}  // namespace
}  // namespace recur
