#!/usr/bin/env python3
"""The scaling model of docs/DISTRIBUTED.md: expected speedup of data-parallel training on N
machines (one rank per machine, its cores as threads) for a fixed global batch.

  step(N) = compute / N                                  the batch split over N machines
          + 2 (N - 1) / N * bytes / bandwidth            reduce-scatter + all-gather of the arena
          + 2 (N - 1) * latency                          N - 1 messages in each phase
          + bytes / memory_bandwidth                     summing the received segments
  speedup(N) = compute / step(N)

`compute` is one machine's time for one step of the global batch (measured with `recur bench
--mode train` or `recur train`), `bytes` the gradient arena (4 bytes a parameter). Prints a
Markdown table per model and link, and the first N at which communication takes longer than
compute. Usage: python3 bench/mpi/scaling_model.py [--efficiency 0.8] [--memory-gbs 10]
"""
import argparse

# (name, parameters in the arena, one machine's compute time per step in seconds, what it is)
MODELS = [
    ("MNIST LSTM-128 (mnist-lstm, batch 128)", 82186, 7.4e-3,
     "measured: the main job, 4,300 steps in 32 s on this 2-core machine"),
    ("IMDb BiLSTM-128 + 20000x128 embedding (batch 64, 256 tokens)", 2824706, 118e-3,
     "estimated: 25.8 GFLOP a step at the 218 GFLOP/s the MNIST LSTM reaches here"),
    # What helps, in the same model:
    ("MNIST LSTM-128 at batch 1024", 82186, 8 * 7.4e-3,
     "8x the batch: 8x the compute a step, the same arena"),
    ("IMDb BiLSTM, gradients sent as bf16", 2824706 // 2, 118e-3,
     "half the bytes a step (the arena counted as 1,412,353 floats)"),
    ("IMDb BiLSTM, embedding gradient sent sparse (rows of <= 5,000 distinct tokens a batch)",
     5000 * 128 + 2 * 5000 + 264706, 118e-3,
     "the touched rows with their indices instead of all 20,000 rows"),
]
# (name, line rate in bytes/s, one-way message latency in seconds)
LINKS = [("10 Gbit/s", 10e9 / 8, 25e-6), ("100 Gbit/s", 100e9 / 8, 10e-6)]
MACHINES = [1, 2, 4, 8, 16, 32, 64]


def step_time(n, compute, params, bandwidth, latency, memory):
    if n == 1:
        return compute
    nbytes = 4.0 * params
    comm = 2.0 * (n - 1) / n * nbytes / bandwidth + 2.0 * (n - 1) * latency + nbytes / memory
    return compute / n + comm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--efficiency", type=float, default=0.8,
                    help="fraction of the line rate MPI over TCP reaches (default 0.8)")
    ap.add_argument("--memory-gbs", type=float, default=10.0,
                    help="memory bandwidth of the local sum, GB/s (default 10)")
    args = ap.parse_args()
    memory = args.memory_gbs * 1e9
    for name, params, compute, source in MODELS:
        print(f"### {name}\n\narena {params:,} parameters = {4 * params / 1e6:.2f} MB; "
              f"compute {compute * 1e3:.1f} ms a step on one machine ({source})\n")
        print("| machines | " + " | ".join(
            f"{link} step ms | speedup" for link, _, _ in LINKS) + " |")
        print("|---:|" + "---:|---:|" * len(LINKS))
        crossover = {}
        for n in MACHINES:
            cells = []
            for link, rate, latency in LINKS:
                t = step_time(n, compute, params, rate * args.efficiency, latency, memory)
                cells.append(f"{t * 1e3:.2f} | {compute / t:.1f}x")
                if n > 1 and t - compute / n > compute / n and link not in crossover:
                    crossover[link] = n
            print(f"| {n} | " + " | ".join(cells) + " |")
        for link, _, _ in LINKS:
            where = crossover.get(link)
            print(f"\n{link}: communication exceeds compute from "
                  f"{where if where else 'beyond ' + str(MACHINES[-1])} machines", end="")
        print("\n")


if __name__ == "__main__":
    main()
