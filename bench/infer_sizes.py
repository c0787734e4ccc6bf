#!/usr/bin/env python3
"""LSTM inference from hidden 64 to 1024 and batch 1 to 4096: recur against ONNX Runtime running
recur's exported model of the same size, in one run (issue 21, "every model size").

For each hidden size an LSTM over MNIST rows (28 steps of 28 pixels, 10 classes) is trained for a
few steps (speed does not depend on the weights), exported with `recur export --onnx`, and checked
equal to recur on 1,000 test images (largest error relative to the largest logit, argmax
differences). Then, per batch size B:
  recur         B = 1: `recur bench --mode latency --threads 1` (median of 300 single images);
                B > 1: `recur bench --mode infer --infer-batch B --threads T` (median per call)
  ONNX Runtime  bench/onnx_time.js on the first B test images, intra-op threads 1 (B = 1) or T
Each figure is the median over --rounds rounds, recur first in even rounds and ONNX Runtime first
in odd ones. Calls per measurement shrink with the work of a call so that each takes a few
seconds.

  python3 bench/infer_sizes.py [--recur build/recur] [--rounds 2] [--threads 2]
      [--hidden 64,128,256,512,1024] [--batch 1,16,256,4096]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "export"))
import test_onnx_export as t  # noqa: E402  (the export test's training, export and comparison)
from onnx_compare import run, save_inputs  # noqa: E402


def sample_flops(hidden):
    """Multiply-adds x 2 of one image: 28 steps of [x | h] (28 + H) x 4H, and the 10-class head."""
    return 28 * 2 * (28 + hidden) * 4 * hidden + 2 * hidden * 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recur", default=os.path.join(ROOT, "build", "recur"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", default="64,128,256,512,1024")
    ap.add_argument("--batch", default="1,16,256,4096")
    ap.add_argument("--work", default="")
    args = ap.parse_args()
    hiddens = [int(h) for h in args.hidden.split(",") if h]
    batches = [int(b) for b in args.batch.split(",") if b]
    if args.rounds < 1 or args.threads < 1 or not hiddens or not batches or \
            min(hiddens) < 1 or min(batches) < 1 or max(batches) > 10000:
        ap.error("--rounds and --threads must be at least 1; --hidden and --batch lists of "
                 "positive sizes, batches at most 10,000 (the test set)")
    work = args.work or tempfile.mkdtemp(prefix="infer-sizes-")
    env = dict(os.environ, NODE_PATH=os.path.join(ROOT, ".cache", "npm", "node_modules"))
    suite = t.Suite(argparse.Namespace(cli=args.recur, reference=os.path.join(
        ROOT, "build", "tests", "onnx_reference"), work=work))
    os.makedirs(os.path.join(work, "onnx"), exist_ok=True)
    images = t.image_inputs(10000)["arrays"]["images"]
    inputs = {b: save_inputs(os.path.join(work, f"b{b}"), {"images": images[:b].copy()})
              for b in batches}
    node = ["node", os.path.join(HERE, "onnx_time.js")]
    mnist = ["--data", t.MNIST, "--val", "100", "--train-limit", "300"]

    plan = []  # (hidden, batch, threads, recur measure, ORT measure): seconds per call
    for h in hiddens:
        name = f"lstm-{h}"
        model = suite.train(name, ["--cell", "lstm", "--hidden", str(h)], mnist)
        onnx_path = os.path.join(work, "onnx", name + ".onnx")
        suite.export(model, onnx_path)
        ref, ort = suite.logits_pair(name, model, onnx_path, t.image_inputs(1000))
        err, diff = t.worst_error(ref, ort)
        print(f"{name}: 1,000 test images, error {err:.2e} of the largest logit, {diff} argmax "
              f"differences", flush=True)
        for b in batches:
            th = 1 if b == 1 else args.threads
            work_s = sample_flops(h) * b / 50e9  # a call's rough time at 50 GFLOP/s
            calls = max(3, min(300, int(3.0 / max(work_s, 1e-6))))
            if b == 1:
                mine = (lambda h=h, n=calls: 1e-6 * json.loads(run(
                    [args.recur, "bench", "--mode", "latency", "--cell", "lstm", "--hidden",
                     str(h), "--threads", "1", "--latency-runs", str(max(200, n)),
                     "--json"]))["latency_us_median"])
            else:
                mine = (lambda h=h, b=b, th=th, n=calls: 1e-3 * json.loads(run(
                    [args.recur, "bench", "--mode", "infer", "--cell", "lstm", "--hidden", str(h),
                     "--threads", str(th), "--infer-batch", str(b), "--steps", str(n),
                     "--warmup", "1", "--json"]))["infer_ms_median"])
            theirs = (lambda o=onnx_path, b=b, th=th, n=calls: 1e-3 * json.loads(run(
                node + [o, inputs[b], str(th), str(n), "1" if n < 10 else "5"],
                env))["ms_median"])
            plan.append((h, b, th, mine, theirs))

    print(f"load average before the rounds: {os.getloadavg()}", flush=True)
    times = {(h, b): ([], []) for h, b, _, _, _ in plan}
    for r in range(args.rounds):
        for h, b, th, mine, theirs in plan:
            order = (mine, theirs) if r % 2 == 0 else (theirs, mine)
            got = [f() for f in order]
            if r % 2:
                got.reverse()
            times[(h, b)][0].append(got[0])
            times[(h, b)][1].append(got[1])
            print(f"round {r + 1}: hidden {h}, batch {b}: recur {got[0] * 1e3:.3f} ms, ONNX "
                  f"Runtime {got[1] * 1e3:.3f} ms", flush=True)
    print(f"load average after the rounds: {os.getloadavg()}", flush=True)

    print("\n| hidden | batch | threads | recur ms a call | ONNX Runtime ms a call | recur / ORT "
          "time | recur samples/s | recur GFLOP/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for h, b, th, _, _ in plan:
        mine = statistics.median(times[(h, b)][0])
        theirs = statistics.median(times[(h, b)][1])
        print(f"| {h} | {b} | {th} | {mine * 1e3:,.3f} | {theirs * 1e3:,.3f} | "
              f"{mine / theirs:.2f} | {b / mine:,.0f} | {sample_flops(h) * b / mine * 1e-9:.1f} |")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
