// Microbenchmarks of one int8 inference step at B = 64 rows (kInferBlock), H = 128, MNIST rows
// (28 features): the step's products (x_t's side and h_{t-1}'s, int8_gemm_pair; the GRU's two
// int8_gemm calls) and each cell, which also quantizes h_t for the next step. Products report
// GOP/s (2 M N K per call); cells report hidden units per second. The kernel is what cpuid picks
// (RECUR_INT8_KERNEL and RECUR_ISA lower it).
//
//   build/bench/recur_bench --benchmark_filter=int8 --benchmark_min_time=0.3
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/int8_cell.hpp"
#include "kernels/int8_gemm.hpp"

namespace {

namespace k = recur::kernels;

constexpr int kRows = 64, kHid = 128, kIn = 28;

std::vector<float> values(std::size_t n, float scale, std::uint32_t seed) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(seed >> 8) / 16777216.0f - 0.5f);
  }
  return v;
}

// Weights [N, K] quantized for the current kernel.
k::QuantizedMatrix weights(int N, int K, std::uint32_t seed) {
  const std::vector<float> w = values(static_cast<std::size_t>(N) * K, 0.5f, seed);
  const std::vector<float> b = values(static_cast<std::size_t>(N), 0.1f, seed + 1);
  k::QuantizedMatrix q;
  k::quantize_weights(w.data(), N, K, K, b.data(), nullptr, k::int8_kernel(), q);
  return q;
}

// Rows [kRows, K] quantized as a step's activations are.
struct Rows {
  int ld;
  std::vector<std::uint8_t> q;
  std::vector<float> scales;
  Rows(int K, std::uint32_t seed)
      : ld(k::quantized_row_bytes(K)), q(static_cast<std::size_t>(kRows) * ld), scales(kRows) {
    const std::vector<float> x = values(static_cast<std::size_t>(kRows) * K, 2.0f, seed);
    k::quantize_rows(kRows, x.data(), K, K, q.data(), ld, scales.data());
  }
};

void report_ops(benchmark::State& state, double ops) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ops));
  state.counters["GOP/s"] = benchmark::Counter(
      ops * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
}

// An LSTM (gates 4H) or tanh RNN (gates H) step's products.
void step_pair(benchmark::State& state, int gates) {
  const k::QuantizedMatrix wx = weights(gates, kIn, 1), wh = weights(gates, kHid, 2);
  const Rows x(kIn, 3), h(kHid, 4);
  std::vector<float> c(static_cast<std::size_t>(kRows) * gates);
  for (auto _ : state) {
    k::int8_gemm_pair(kRows, x.q.data(), x.ld, x.scales.data(), wx, h.q.data(), h.ld,
                      h.scales.data(), wh, c.data(), gates);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report_ops(state, 2.0 * kRows * gates * (kIn + kHid));
}
void BM_int8_lstm_step_pair_b64(benchmark::State& s) {
  step_pair(s, 4 * kHid);
}
void BM_int8_rnn_step_pair_b64(benchmark::State& s) {
  step_pair(s, kHid);
}

// A GRU step's two products (the input side and the hidden side into separate buffers).
void BM_int8_gru_step_b64(benchmark::State& state) {
  const int gates = 3 * kHid;
  const k::QuantizedMatrix wx = weights(gates, kIn, 1), wh = weights(gates, kHid, 2);
  const Rows x(kIn, 3), h(kHid, 4);
  std::vector<float> g(static_cast<std::size_t>(kRows) * gates), hid(g.size());
  for (auto _ : state) {
    k::int8_gemm(kRows, x.q.data(), x.ld, x.scales.data(), wx, false, g.data(), gates);
    k::int8_gemm(kRows, h.q.data(), h.ld, h.scales.data(), wh, false, hid.data(), gates);
    benchmark::DoNotOptimize(hid.data());
    benchmark::ClobberMemory();
  }
  report_ops(state, 2.0 * kRows * gates * (kIn + kHid));
}

void set_units(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kRows * kHid);
}

void BM_int8_lstm_cell_b64(benchmark::State& state) {
  const std::vector<float> gates = values(static_cast<std::size_t>(kRows) * 4 * kHid, 6.0f, 5);
  const std::vector<float> c_prev = values(static_cast<std::size_t>(kRows) * kHid, 2.0f, 6);
  std::vector<float> c(c_prev.size()), h(c_prev.size()), scales(kRows);
  std::vector<std::uint8_t> q(static_cast<std::size_t>(kRows) * k::quantized_row_bytes(kHid));
  for (auto _ : state) {
    k::lstm_int8_cell(kRows, kHid, gates.data(), c_prev.data(), c.data(), h.data(), kHid, q.data(),
                      k::quantized_row_bytes(kHid), scales.data());
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_units(state);
}

void BM_int8_gru_cell_b64(benchmark::State& state) {
  const std::vector<float> gates = values(static_cast<std::size_t>(kRows) * 3 * kHid, 6.0f, 5);
  const std::vector<float> hidden = values(gates.size(), 6.0f, 7);
  const std::vector<float> h_prev = values(static_cast<std::size_t>(kRows) * kHid, 1.0f, 6);
  std::vector<float> h(h_prev.size()), scales(kRows);
  std::vector<std::uint8_t> q(static_cast<std::size_t>(kRows) * k::quantized_row_bytes(kHid));
  for (auto _ : state) {
    k::gru_int8_cell(kRows, kHid, gates.data(), hidden.data(), h_prev.data(), kHid, h.data(), kHid,
                     q.data(), k::quantized_row_bytes(kHid), scales.data());
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_units(state);
}

void BM_int8_rnn_cell_b64(benchmark::State& state) {
  const std::vector<float> pre = values(static_cast<std::size_t>(kRows) * kHid, 6.0f, 5);
  std::vector<float> h(pre.size()), scales(kRows);
  std::vector<std::uint8_t> q(static_cast<std::size_t>(kRows) * k::quantized_row_bytes(kHid));
  for (auto _ : state) {
    k::rnn_int8_cell(false, kRows, kHid, pre.data(), h.data(), kHid, q.data(),
                     k::quantized_row_bytes(kHid), scales.data());
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_units(state);
}

BENCHMARK(BM_int8_lstm_step_pair_b64);
BENCHMARK(BM_int8_rnn_step_pair_b64);
BENCHMARK(BM_int8_gru_step_b64);
BENCHMARK(BM_int8_lstm_cell_b64);
BENCHMARK(BM_int8_gru_cell_b64);
BENCHMARK(BM_int8_rnn_cell_b64);

}  // namespace
