#!/usr/bin/env python3
"""Batch-1 latency of Model.predict from Python against the C++ batch-1 latency.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_latency.py [--cli build/recur]
        [--data data/mnist] [--cells rnn,gru,lstm] [--hidden 128] [--runs 2000] [--rounds 3]

For each cell: C++ is `recur bench --mode latency` (one forward of one test image through
BatchRunner::infer_batch: uint8 -> float, forward, argmax; median over its runs); Python is
`model.predict(x_test[i:i+1])` on a model of the same shape (one layer, hidden units, rows view,
trained one step so that it is a real checkpoint), timed call by call with perf_counter_ns after
a warm-up, median. Everything the Python call does is in its time: argument checks, the arrays
it returns, the GIL released and taken back, softmax. Rounds alternate C++ and Python, one
process each for C++; the figures are the medians of the rounds. Measure on a quiet machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np

import recur


def cpp_latency_us(cli, data, cell, hidden, runs):
    out = subprocess.run([cli, "bench", "--mode", "latency", "--cell", cell, "--hidden",
                          str(hidden), "--threads", "1", "--latency-runs", str(runs), "--data",
                          data, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["latency_us_median"]


def python_latency_us(model, images, runs):
    times = []
    for i in range(200 + runs):
        x = images[i % len(images):i % len(images) + 1]
        t0 = time.perf_counter_ns()
        model.predict(x)
        dt = time.perf_counter_ns() - t0
        if i >= 200:
            times.append(dt / 1000)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cli", default="build/recur")
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object per cell")
    a = p.parse_args()
    (x, y), (x_test, _) = recur.datasets.mnist(a.data)
    if not a.json:
        print(f"batch-1 latency, hidden {a.hidden}, rows view, 1 thread, medians of "
              f"{a.rounds} rounds of {a.runs} calls")
        print(f"{'cell':6} {'C++ us':>8} {'Python us':>10} {'ratio':>6}")
    for cell in a.cells.split(","):
        model, _ = recur.train(x[:600], y[:600], val=100, cell=cell, hidden=a.hidden, steps=1,
                               threads=1, verbose=False)
        cpp, py = [], []
        for _ in range(a.rounds):
            cpp.append(cpp_latency_us(a.cli, a.data, cell, a.hidden, a.runs))
            py.append(python_latency_us(model, x_test, a.runs))
        c, q = statistics.median(cpp), statistics.median(py)
        if a.json:
            print(json.dumps({"cell": cell, "hidden": a.hidden, "cpp_latency_us": c,
                              "python_latency_us": q, "ratio": q / c,
                              "cpp_rounds": cpp, "python_rounds": py}))
        else:
            print(f"{cell:6} {c:8.1f} {q:10.1f} {q / c:6.2f}")


if __name__ == "__main__":
    main()
