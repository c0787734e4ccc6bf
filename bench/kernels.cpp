// Microbenchmarks of the kernels a training step spends its time in: the GEMM shapes of a
// one-layer LSTM-128 on MNIST rows (S = 28 steps, I = 28 features, G*H = 512) and the fused
// pointwise cell kernels at B = 64, H = 128. GEMMs report FLOP/s ("items" are FLOPs); cell
// kernels report hidden units processed per second ("items" are B*H elements).
//
//   build-bench/bench/recur_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/bf16_gemm.hpp"
#include "kernels/cell.hpp"
#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"

namespace {

using recur::kernels::gemm;

constexpr int kSteps = 28, kInput = 28, kHidden = 128, kLstmGates = 4 * kHidden;

std::vector<float> filled(std::size_t n, float scale) {
  std::vector<float> v(n);
  std::uint32_t s = 12345;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 16777216.0f - 0.5f);
  }
  return v;
}

// Items processed and a GFLOP/s counter for `flops` per iteration.
void report_flops(benchmark::State& state, double flops) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * flops));
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
}

// C[M,N] = op(A) op(B) with the given transposes; A, B stored as the network stores them.
void run_gemm(benchmark::State& state, bool trans_a, bool trans_b, int M, int N, int K,
              float beta) {
  recur::kernels::blas_single_threaded();
  const std::vector<float> a = filled(static_cast<std::size_t>(M) * K, 1.0f);
  const std::vector<float> b = filled(static_cast<std::size_t>(K) * N, 1.0f);
  std::vector<float> c = filled(static_cast<std::size_t>(M) * N, 1.0f);
  const int lda = trans_a ? M : K, ldb = trans_b ? K : N;
  for (auto _ : state) {
    gemm<float>(trans_a, trans_b, M, N, K, 1.0f, a.data(), lda, b.data(), ldb, beta, c.data(), N);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * M * N * K);
}

// Recurrent step: gates[B,4H] += h_{t-1}[B,H] x W_hh^T (W_hh stored [4H,H]).
void BM_gemm_step_b64(benchmark::State& s) {
  run_gemm(s, false, true, 64, kLstmGates, kHidden, 1.0f);
}
void BM_gemm_step_b128(benchmark::State& s) {
  run_gemm(s, false, true, 128, kLstmGates, kHidden, 1.0f);
}
// Input projection of all steps at once: gates[S*B,4H] = x[S*B,I] x W_ih^T (W_ih [4H,I]).
void BM_gemm_input_projection(benchmark::State& s) {
  run_gemm(s, false, true, kSteps * 128, kLstmGates, kInput, 0.0f);
}
// Backward per step: dh_{t-1}[B,H] = dgates[B,4H] x W_hh[4H,H].
void BM_gemm_backward_dh_b64(benchmark::State& s) {
  run_gemm(s, false, false, 64, kHidden, kLstmGates, 0.0f);
}
// Weight gradients over all steps: dW_hh[4H,H] += dgates^T [4H,S*B] x h[S*B,H], and the same
// for dW_ih[4H,I] with the inputs.
void BM_gemm_weight_grad_hh(benchmark::State& s) {
  run_gemm(s, true, false, kLstmGates, kHidden, kSteps * 128, 1.0f);
}
void BM_gemm_weight_grad_ih(benchmark::State& s) {
  run_gemm(s, true, false, kLstmGates, kInput, kSteps * 128, 1.0f);
}

// The same step products through recur's packed kernel (W packed once, outside the loop), and
// the packing itself, which the network pays once per forward or backward.
void run_packed(benchmark::State& state, int M, int N, int K, bool w_is_k_by_n) {
  const std::vector<float> a = filled(static_cast<std::size_t>(M) * K, 1.0f);
  const std::vector<float> w = filled(static_cast<std::size_t>(N) * K, 1.0f);
  std::vector<float> c = filled(static_cast<std::size_t>(M) * N, 1.0f);
  recur::kernels::PackedMatrix packed;
  recur::kernels::pack_weights(w.data(), N, K, w_is_k_by_n, packed);
  for (auto _ : state) {
    recur::kernels::gemm_packed(M, a.data(), K, packed, true, c.data(), N);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * M * N * K);
}

void BM_packed_step_b1(benchmark::State& s) {
  run_packed(s, 1, kLstmGates, kHidden, false);
}
void BM_packed_step_b64(benchmark::State& s) {
  run_packed(s, 64, kLstmGates, kHidden, false);
}
void BM_packed_step_b128(benchmark::State& s) {
  run_packed(s, 128, kLstmGates, kHidden, false);
}
// dh_{t-1}[B,H] = dgates[B,4H] x W_hh[4H,H]: W_hh read as [K,N].
void BM_packed_backward_dh_b64(benchmark::State& s) {
  run_packed(s, 64, kHidden, kLstmGates, true);
}

// The weight gradients through recur's own C += A^T X (per thread the batch is 64 rows; these
// use the same S*128 rows as the BLAS versions above so the two compare directly).
void run_tn(benchmark::State& state, int M, int N, int K) {
  const std::vector<float> a = filled(static_cast<std::size_t>(K) * M, 1.0f);
  const std::vector<float> x = filled(static_cast<std::size_t>(K) * N, 1.0f);
  std::vector<float> c = filled(static_cast<std::size_t>(M) * N, 1.0f);
  recur::AlignedVector<float> scratch;
  for (auto _ : state) {
    recur::kernels::gemm_tn_accumulate(M, N, K, a.data(), M, x.data(), N, c.data(), N, scratch);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * M * N * K);
}
void BM_tn_weight_grad_hh(benchmark::State& s) {
  run_tn(s, kLstmGates, kHidden, kSteps * 128);
}
void BM_tn_weight_grad_ih(benchmark::State& s) {
  run_tn(s, kLstmGates, kInput, kSteps * 128);
}
// dW_hh of the larger training benchmarks, one thread's rows: LSTM-256 at batch 128 and LSTM-512
// at batch 64 on two threads (C is 1 and 4 MB: beyond L1, and at 512 beyond L2).
void BM_tn_weight_grad_hh_256(benchmark::State& s) {
  run_tn(s, 4 * 256, 256, kSteps * 64);
}
void BM_tn_weight_grad_hh_512(benchmark::State& s) {
  run_tn(s, 4 * 512, 512, kSteps * 32);
}
// dW_ih at those sizes: 28 input columns against gate gradients 1,024 or 2,048 floats apart.
void BM_tn_weight_grad_ih_256(benchmark::State& s) {
  run_tn(s, 4 * 256, kInput, kSteps * 64);
}
void BM_tn_weight_grad_ih_512(benchmark::State& s) {
  run_tn(s, 4 * 512, kInput, kSteps * 32);
}

// Packing W_hh [4H,H]; items are matrix elements.
void BM_pack_weights(benchmark::State& state) {
  const std::vector<float> w = filled(static_cast<std::size_t>(kLstmGates) * kHidden, 1.0f);
  recur::kernels::PackedMatrix packed;
  for (auto _ : state) {
    recur::kernels::pack_weights(w.data(), kLstmGates, kHidden, false, packed);
    benchmark::DoNotOptimize(packed.panels.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kLstmGates * kHidden);
}

// A training step's packings at hidden 512 (every step packs the updated weights again, into
// the previous packing's buffers): [W_ih | W_hh] into column panels for the forward step, and
// W_hh as [K, N] for the backward step. Items are matrix elements.
void BM_pack_pair_512(benchmark::State& state) {
  const int H = 512, G = 4 * H;
  const std::vector<float> w_ih = filled(static_cast<std::size_t>(G) * kInput, 1.0f);
  const std::vector<float> w_hh = filled(static_cast<std::size_t>(G) * H, 1.0f);
  const std::vector<float> b = filled(G, 1.0f);
  recur::kernels::PackedMatrix packed;
  for (auto _ : state) {
    recur::kernels::pack_weights_pair(G, w_ih.data(), kInput, w_hh.data(), H, b.data(), b.data(),
                                      packed);
    benchmark::DoNotOptimize(packed.panels.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * G * (kInput + H));
}
void BM_pack_backward_512(benchmark::State& state) {
  const int H = 512, G = 4 * H;
  const std::vector<float> w_hh = filled(static_cast<std::size_t>(G) * H, 1.0f);
  recur::kernels::PackedMatrix packed;
  for (auto _ : state) {
    recur::kernels::pack_weights(w_hh.data(), H, G, true, packed);
    benchmark::DoNotOptimize(packed.panels.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * G * H);
}

// The same products in bf16 with fp32 accumulation (--precision bf16; kernels/bf16_gemm.hpp),
// with the kernel this CPU runs: the step as the LSTM trains it ([x_t | h_{t-1}] x [W_ih |
// W_hh]^T), the backward step and the weight gradients. On a CPU without bf16 they report an
// error instead of a time.
void run_bf16_step(benchmark::State& state, int M, int N, int K, bool w_is_k_by_n) {
  if (recur::kernels::bf16_kernel() == recur::kernels::Bf16Kernel::none) {
    state.SkipWithError("no bf16 kernel on this CPU");
    return;
  }
  const std::vector<float> a = filled(static_cast<std::size_t>(M) * K, 1.0f);
  const std::vector<float> w = filled(static_cast<std::size_t>(N) * K, 1.0f);
  std::vector<float> c = filled(static_cast<std::size_t>(M) * N, 1.0f);
  recur::kernels::PackedBf16Matrix packed;
  recur::kernels::pack_bf16(w.data(), N, K, w_is_k_by_n, packed);
  recur::AlignedVector<std::uint16_t> scratch;
  for (auto _ : state) {
    recur::kernels::gemm_bf16(M, a.data(), K, K, nullptr, 0, packed, true, c.data(), N, scratch);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * M * N * K);
}
void BM_bf16_step_b64(benchmark::State& s) {
  run_bf16_step(s, 64, kLstmGates, kInput + kHidden, false);
}
void BM_packed_step_pair_b64(benchmark::State& s) {
  run_packed(s, 64, kLstmGates, kInput + kHidden, false);
}
void BM_bf16_backward_dh_b64(benchmark::State& s) {
  run_bf16_step(s, 64, kHidden, kLstmGates, true);
}
// GRU-128's shapes (G*H = 384): the two step products, the backward step and the input gradient.
void BM_bf16_gru_step_x_b64(benchmark::State& s) {
  run_bf16_step(s, 64, 3 * kHidden, kInput, false);
}
// A training step's two products per thread at hidden 256 (batch 128: 64 rows a thread) and 512
// (batch 64: 32 rows), where the packed weights outgrow a core's L2: [x_t | h_{t-1}] x [W_ih |
// W_hh]^T and the backward step.
void BM_packed_step_pair_256(benchmark::State& s) {
  run_packed(s, 64, 4 * 256, kInput + 256, false);
}
void BM_packed_backward_dh_256(benchmark::State& s) {
  run_packed(s, 64, 256, 4 * 256, true);
}
void BM_packed_step_pair_512(benchmark::State& s) {
  run_packed(s, 32, 4 * 512, kInput + 512, false);
}
void BM_packed_backward_dh_512(benchmark::State& s) {
  run_packed(s, 32, 512, 4 * 512, true);
}
void BM_packed_gru_step_x_b64(benchmark::State& s) {
  run_packed(s, 64, 3 * kHidden, kInput, false);
}
void BM_bf16_gru_step_h_b64(benchmark::State& s) {
  run_bf16_step(s, 64, 3 * kHidden, kHidden, false);
}
void BM_packed_gru_step_h_b64(benchmark::State& s) {
  run_packed(s, 64, 3 * kHidden, kHidden, false);
}
void BM_bf16_gru_backward_dh_b64(benchmark::State& s) {
  run_bf16_step(s, 64, kHidden, 3 * kHidden, true);
}
void BM_packed_gru_backward_dh_b64(benchmark::State& s) {
  run_packed(s, 64, kHidden, 3 * kHidden, true);
}

void run_tn_bf16(benchmark::State& state, int M, int N, int K) {
  if (recur::kernels::bf16_kernel() == recur::kernels::Bf16Kernel::none) {
    state.SkipWithError("no bf16 kernel on this CPU");
    return;
  }
  const std::vector<float> a = filled(static_cast<std::size_t>(K) * M, 1.0f);
  const std::vector<float> x = filled(static_cast<std::size_t>(K) * N, 1.0f);
  std::vector<float> c = filled(static_cast<std::size_t>(M) * N, 1.0f);
  recur::AlignedVector<std::uint16_t> scratch;
  for (auto _ : state) {
    recur::kernels::gemm_tn_bf16(M, N, K, a.data(), M, x.data(), N, c.data(), N, scratch);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * M * N * K);
}
void BM_bf16_weight_grad_hh(benchmark::State& s) {
  run_tn_bf16(s, kLstmGates, kHidden, kSteps * 128);
}
void BM_bf16_weight_grad_ih(benchmark::State& s) {
  run_tn_bf16(s, kLstmGates, kInput, kSteps * 128);
}

BENCHMARK(BM_gemm_step_b64);
BENCHMARK(BM_gemm_step_b128);
BENCHMARK(BM_gemm_input_projection);
BENCHMARK(BM_gemm_backward_dh_b64);
BENCHMARK(BM_gemm_weight_grad_hh);
BENCHMARK(BM_gemm_weight_grad_ih);
BENCHMARK(BM_packed_step_b1);
BENCHMARK(BM_packed_step_b64);
BENCHMARK(BM_packed_step_b128);
BENCHMARK(BM_packed_backward_dh_b64);
BENCHMARK(BM_pack_weights);
BENCHMARK(BM_pack_pair_512);
BENCHMARK(BM_pack_backward_512);
BENCHMARK(BM_tn_weight_grad_hh);
BENCHMARK(BM_tn_weight_grad_ih);
BENCHMARK(BM_tn_weight_grad_hh_256);
BENCHMARK(BM_tn_weight_grad_hh_512);
BENCHMARK(BM_tn_weight_grad_ih_256);
BENCHMARK(BM_tn_weight_grad_ih_512);
BENCHMARK(BM_packed_step_pair_b64);
BENCHMARK(BM_packed_step_pair_256);
BENCHMARK(BM_packed_backward_dh_256);
BENCHMARK(BM_packed_step_pair_512);
BENCHMARK(BM_packed_backward_dh_512);
BENCHMARK(BM_bf16_step_b64);
BENCHMARK(BM_bf16_backward_dh_b64);
BENCHMARK(BM_bf16_weight_grad_hh);
BENCHMARK(BM_bf16_weight_grad_ih);
BENCHMARK(BM_packed_gru_step_x_b64);
BENCHMARK(BM_bf16_gru_step_x_b64);
BENCHMARK(BM_packed_gru_step_h_b64);
BENCHMARK(BM_bf16_gru_step_h_b64);
BENCHMARK(BM_packed_gru_backward_dh_b64);
BENCHMARK(BM_bf16_gru_backward_dh_b64);

constexpr int kB = 64, kH = 128;

void set_elements(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kB * kH);
}

// The forward kernels turn pre-activations into activations in place; running them again on
// their own output keeps the values in range, and the vectorized activations do not branch on
// the value, so the timing is that of fresh pre-activations.
void BM_lstm_forward(benchmark::State& state) {
  std::vector<float> gates = filled(static_cast<std::size_t>(kB) * 4 * kH, 4.0f);
  const std::vector<float> c_prev = filled(static_cast<std::size_t>(kB) * kH, 2.0f);
  std::vector<float> c(static_cast<std::size_t>(kB) * kH), h(c.size());
  for (auto _ : state) {
    recur::kernels::lstm_pointwise_forward<float>(kB, kH, gates.data(), c_prev.data(), c.data(),
                                                  h.data(), kH);
    benchmark::DoNotOptimize(h.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

void BM_lstm_backward(benchmark::State& state) {
  const std::vector<float> gates = filled(static_cast<std::size_t>(kB) * 4 * kH, 1.0f);
  const std::vector<float> c_prev = filled(static_cast<std::size_t>(kB) * kH, 2.0f);
  const std::vector<float> c = filled(c_prev.size(), 2.0f), dh = filled(c_prev.size(), 0.1f);
  const std::vector<float> dout = filled(c_prev.size(), 0.0f);
  std::vector<float> dc = filled(c_prev.size(), 0.1f), dgates(gates.size());
  for (auto _ : state) {
    recur::kernels::lstm_pointwise_backward<float>(kB, kH, gates.data(), c_prev.data(), c.data(),
                                                   dh.data(), dout.data(), kH, dc.data(),
                                                   dgates.data());
    benchmark::DoNotOptimize(dgates.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

void BM_gru_forward(benchmark::State& state) {
  std::vector<float> gates = filled(static_cast<std::size_t>(kB) * 3 * kH, 4.0f);
  const std::vector<float> hidden = filled(gates.size(), 4.0f);
  const std::vector<float> h_prev = filled(static_cast<std::size_t>(kB) * kH, 1.0f);
  std::vector<float> h(h_prev.size());
  for (auto _ : state) {
    recur::kernels::gru_pointwise_forward<float>(kB, kH, gates.data(), hidden.data(), h_prev.data(),
                                                 kH, h.data(), kH);
    benchmark::DoNotOptimize(h.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

void BM_gru_backward(benchmark::State& state) {
  const std::vector<float> gates = filled(static_cast<std::size_t>(kB) * 3 * kH, 1.0f);
  const std::vector<float> hidden = filled(gates.size(), 4.0f);
  const std::vector<float> h_prev = filled(static_cast<std::size_t>(kB) * kH, 1.0f);
  const std::vector<float> dh = filled(h_prev.size(), 0.1f), dout = filled(h_prev.size(), 0.0f);
  std::vector<float> dgate_in(gates.size()), dgate_hid(gates.size()), dh_prev(h_prev.size());
  for (auto _ : state) {
    recur::kernels::gru_pointwise_backward<float>(
        kB, kH, gates.data(), hidden.data(), h_prev.data(), kH, dh.data(), dout.data(), kH,
        dgate_in.data(), dgate_hid.data(), dh_prev.data());
    benchmark::DoNotOptimize(dh_prev.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

void BM_rnn_forward(benchmark::State& state) {
  const std::vector<float> pre = filled(static_cast<std::size_t>(kB) * kH, 4.0f);
  std::vector<float> h(pre.size());
  for (auto _ : state) {
    recur::kernels::rnn_pointwise_forward<float>(false, kB, kH, pre.data(), h.data(), kH);
    benchmark::DoNotOptimize(h.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

void BM_rnn_backward(benchmark::State& state) {
  const std::vector<float> h = filled(static_cast<std::size_t>(kB) * kH, 1.5f);
  const std::vector<float> dh = filled(h.size(), 0.1f), dout = filled(h.size(), 0.0f);
  std::vector<float> dpre(h.size());
  for (auto _ : state) {
    recur::kernels::rnn_pointwise_backward<float>(false, kB, kH, h.data(), kH, dh.data(),
                                                  dout.data(), kH, dpre.data());
    benchmark::DoNotOptimize(dpre.data());
    benchmark::ClobberMemory();
  }
  set_elements(state);
}

BENCHMARK(BM_lstm_forward);
BENCHMARK(BM_lstm_backward);
BENCHMARK(BM_gru_forward);
BENCHMARK(BM_gru_backward);
BENCHMARK(BM_rnn_forward);
BENCHMARK(BM_rnn_backward);

}  // namespace

BENCHMARK_MAIN();
