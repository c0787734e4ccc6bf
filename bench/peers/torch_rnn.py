#!/usr/bin/python3
"""The PyTorch side of `recur bench`: the same model, data, options and JSON keys.

    /usr/bin/python3 bench/peers/torch_rnn.py --cell lstm --mode train --json

Model: nn.LSTM / nn.GRU / nn.RNN (batch_first=False, one layer) on MNIST read as sequences, the
last step's output into an nn.Linear head, softmax cross-entropy, Adam at 1e-3. Batches are real
MNIST images read from the IDX files with numpy; the uint8 -> float conversion of each batch is
inside the timed region, as it is in recur (BatchRunner fills the batch inside train_batch).
torch.set_num_threads(--threads) with OpenBLAS on --blas-threads (default 1, see main()).

Modes: train (samples/s of optimizer steps: forward, backward, Adam), infer (samples/s of
forward + argmax at --infer-batch under torch.inference_mode), latency (batch-1 forward,
microseconds). Peak RSS comes from getrusage(RUSAGE_SELF).
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", default="train", choices=["train", "infer", "latency"])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn", "rnn_tanh", "rnn_relu"])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--view", default="rows", choices=["rows", "cols", "pixels"])
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--infer-batch", type=int, default=1000)
    p.add_argument("--latency-runs", type=int, default=500)
    p.add_argument("--blas-threads", type=int, default=1,
                   help="OpenBLAS threads under PyTorch (default 1: see below)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 1:
        p.error("--steps, --batch and --threads must be positive, --warmup not negative")
    return args


def read_idx(path, dims):
    """The array of an IDX ubyte file (raw or gzip) with `dims` dimensions."""
    import numpy as np

    for candidate in (path, path + ".gz"):
        if os.path.exists(candidate):
            with open(candidate, "rb") as f:
                raw = f.read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            break
    else:
        sys.exit(f"torch_rnn.py: {path} not found (run `recur data fetch mnist`)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + dims:
        sys.exit(f"torch_rnn.py: {path}: not an IDX{dims} ubyte file")
    shape = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist(folder, train):
    prefix = "train" if train else "t10k"
    images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), 3)
    labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), 1).astype("int64")
    return images, labels


def main(argv):
    args = parse_args(argv)
    # Debian's PyTorch calls OpenBLAS, which takes its thread count from the environment at load
    # time, not from torch.set_num_threads. OpenBLAS threads on top of PyTorch's spinning OpenMP
    # team oversubscribe the cores: on 2 cores, LSTM training steps then take 35 ms most of the
    # time and 100-500 ms every few steps (total samples/s a third of the median). One BLAS
    # thread (--blas-threads 1, the default) was PyTorch's fastest setting for every cell and
    # mode measured, so that is the peer; the environment overrides both.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.blas_threads))
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)

    images, labels = load_mnist(args.data, args.mode == "train")
    rows, cols = images.shape[1], images.shape[2]

    def to_sequence(idx):
        """x [steps, batch, features] float32 in [0, 1] for the images at idx (time-major)."""
        batch = images[idx]
        if args.view == "rows":
            seq = batch.transpose(1, 0, 2)
        elif args.view == "cols":
            seq = batch.transpose(2, 0, 1)
        else:
            seq = batch.reshape(len(idx), rows * cols).T[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(seq)).float().div_(255.0)

    steps, features = {"rows": (rows, cols), "cols": (cols, rows), "pixels": (rows * cols, 1)}[args.view]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            if args.cell == "lstm":
                self.rnn = nn.LSTM(features, args.hidden)
            elif args.cell == "gru":
                self.rnn = nn.GRU(features, args.hidden)
            else:
                relu = args.cell == "rnn_relu"
                self.rnn = nn.RNN(features, args.hidden, nonlinearity="relu" if relu else "tanh")
            self.head = nn.Linear(args.hidden, 10)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[-1])

    net = Net()
    params = sum(p.numel() for p in net.parameters())
    gates = {"lstm": 4, "gru": 3}.get(args.cell, 1)
    GH, H, I, S = gates * args.hidden, args.hidden, features, steps
    result = {"impl": "pytorch", "torch_version": torch.__version__, "mode": args.mode,
              "cell": args.cell, "hidden": args.hidden, "batch": args.batch,
              "threads": args.threads, "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
              "view": args.view, "steps": args.steps,
              "warmup": args.warmup, "params": params}

    if args.mode == "train":
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        order = np.random.default_rng(1).permutation(np.arange(5000, len(labels)))
        per_epoch = len(order) // args.batch
        times, losses = [], []
        for step in range(args.warmup + args.steps):
            k = step % per_epoch
            idx = order[k * args.batch:(k + 1) * args.batch]
            t0 = time.perf_counter()
            x = to_sequence(idx)
            y = torch.from_numpy(labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            dt = time.perf_counter() - t0
            losses.append(loss.item())
            if step >= args.warmup:
                times.append(dt)
        median = statistics.median(times)
        flops = 2 * S * args.batch * (I + H) * GH + 2 * S * args.batch * (I + 2 * H) * GH \
            + 3 * 2 * args.batch * H * 10
        result.update({
            "train_samples_per_s": args.batch / median,
            "train_samples_per_s_total": args.batch * len(times) / sum(times),
            "step_ms_median": 1e3 * median, "step_ms_min": 1e3 * min(times),
            "gflop_per_step": flops * 1e-9, "effective_gflops": flops * 1e-9 / median,
            "loss_first": losses[0], "loss_last": losses[-1]})
    elif args.mode == "infer":
        B = min(args.infer_batch, len(labels))
        times, start = [], 0
        with torch.inference_mode():
            for call in range(args.warmup + args.steps):
                if start + B > len(labels):
                    start = 0
                idx = np.arange(start, start + B)
                start += B
                t0 = time.perf_counter()
                net(to_sequence(idx)).argmax(1)
                dt = time.perf_counter() - t0
                if call >= args.warmup:
                    times.append(dt)
        median = statistics.median(times)
        flops = (2 * S * (I + H) * GH + 2 * H * 10) * B
        result.update({
            "infer_batch": B, "infer_samples_per_s": B / median,
            "infer_samples_per_s_total": B * len(times) / sum(times),
            "infer_ms_median": 1e3 * median, "infer_effective_gflops": flops * 1e-9 / median})
    else:
        runs, warm = max(200, args.latency_runs), max(10, args.warmup)
        times = []
        with torch.inference_mode():
            for run in range(warm + runs):
                idx = np.array([run % len(labels)])
                t0 = time.perf_counter()
                int(net(to_sequence(idx)).argmax(1)[0])
                dt = time.perf_counter() - t0
                if run >= warm:
                    times.append(dt)
        times.sort()
        result.update({
            "latency_runs": runs, "latency_us_median": 1e6 * statistics.median(times),
            "latency_us_p90": 1e6 * times[int(0.9 * (len(times) - 1))],
            "latency_us_min": 1e6 * times[0]})

    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value:.4g}" if isinstance(value, float) else f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
