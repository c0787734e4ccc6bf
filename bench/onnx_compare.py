#!/usr/bin/env python3
"""recur's inference against ONNX Runtime running recur's exported model, in one run.

Models: the MNIST recipes (examples/mnist-{lstm,gru,rnn}.toml: 128 hidden units over image rows)
and the IMDb BiLSTM (examples/imdb-bilstm.toml: embedding 128, 128 per direction, vocabulary
20,000, max pooling), trained for a few steps (speed and equality do not depend on accuracy),
exported with `recur export --onnx`.

Equality: the whole MNIST test set (10,000 images) through each MNIST model and 1,000 token
sequences of 1 to 500 tokens (one padded batch) through the BiLSTM, in ONNX Runtime and in
recur: the largest error relative to the largest logit, and argmax differences.

Speed, 1 and 2 threads:
  recur, MNIST    `recur bench --mode latency` (batch 1, median of 500) and `--mode infer`
                  (batch 1,000, median of 10) on a model of the same shape
  recur, IMDb     Predictor::predict_texts on 1,000 real reviews (the last of reviews.json) and
                  on the longest of them, timed by tests/export/onnx_reference (one thread
                  whatever the setting; tokenizing included)
  ONNX Runtime    bench/onnx_time.js (onnxruntime-node, intra-op threads 1 or 2), the same
                  inputs (reviews: their token ids, one padded batch with lengths): batch 1
                  median of 500 runs (IMDb 30), batch 1,000 median of 10 (IMDb 3)
Each figure is the median over --rounds rounds (3), recur measured first in even rounds and
ONNX Runtime first in odd ones.
  python3 bench/onnx_compare.py --recur build/recur --reference build/tests/onnx_reference
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "export"))
import test_onnx_export as t  # noqa: E402  (the test's input makers and comparison)


def run(cmd, env=None):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def save_inputs(folder, arrays):
    os.makedirs(folder, exist_ok=True)
    specs = []
    for k, a in arrays.items():
        path = os.path.join(folder, k + ".bin")
        a.tofile(path)
        specs.append({"name": k, "type": str(a.dtype), "dims": list(a.shape), "file": path})
    with open(os.path.join(folder, "inputs.json"), "w") as f:
        json.dump(specs, f)
    return os.path.join(folder, "inputs.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recur", default=os.path.join(ROOT, "build", "recur"))
    ap.add_argument("--reference", default=os.path.join(ROOT, "build", "tests", "onnx_reference"))
    ap.add_argument("--work", default="")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="onnx-compare-")
    env = dict(os.environ, NODE_PATH=os.path.join(ROOT, ".cache", "npm", "node_modules"))
    suite = t.Suite(argparse.Namespace(cli=args.recur, reference=args.reference, work=work))
    os.makedirs(os.path.join(work, "onnx"), exist_ok=True)
    rng = np.random.default_rng(1)
    mnist = ["--data", t.MNIST, "--val", "100", "--train-limit", "300"]
    full = t.image_inputs(10000)
    one = {"kind": "images", "n": 1, "arrays": {"images": full["arrays"]["images"][:1].copy()}}
    thousand = {"kind": "images", "n": 1000,
                "arrays": {"images": full["arrays"]["images"][:1000].copy()}}
    node = ["node", os.path.join(HERE, "onnx_time.js")]
    t1 = save_inputs(os.path.join(work, "t1"), one["arrays"])
    t1000 = save_inputs(os.path.join(work, "t1000"), thousand["arrays"])
    # Each row: (name, threads, four measures): recur batch 1 (us), ONNX Runtime batch 1 (us),
    # recur batch 1,000 (samples/s), ONNX Runtime batch 1,000 (samples/s).
    plan = []
    for cell in ("lstm", "gru", "rnn"):
        name = f"mnist-{cell}"
        model = suite.train(name, ["--config", f"examples/mnist-{cell}.toml"], mnist)
        onnx_path = os.path.join(work, "onnx", name + ".onnx")
        suite.export(model, onnx_path)
        ref, ort = suite.logits_pair(name, model, onnx_path, full)
        err, diff = t.worst_error(ref, ort)
        print(f"{name}: 10,000 test images, error {err:.2e} of the largest logit, {diff} argmax "
              f"differences", flush=True)
        for threads in (1, 2):
            th = str(threads)
            plan.append((name, threads, [
                lambda c=cell, th=th: json.loads(run(
                    [args.recur, "bench", "--mode", "latency", "--cell", c, "--threads", th,
                     "--latency-runs", "500", "--json"]))["latency_us_median"],
                lambda o=onnx_path, th=th: 1000 * json.loads(
                    run(node + [o, t1, th, "500"], env))["ms_median"],
                lambda c=cell, th=th: json.loads(run(
                    [args.recur, "bench", "--mode", "infer", "--cell", c, "--threads", th,
                     "--steps", "10", "--json"]))["infer_samples_per_s"],
                lambda o=onnx_path, th=th: 1e6 / json.loads(
                    run(node + [o, t1000, th, "10"], env))["ms_median"],
            ]))

    text = ["--data", t.IMDB, "--train-limit", "2000"]
    model = suite.train("imdb-bilstm", ["--config", "examples/imdb-bilstm.toml"], text)
    onnx_path = os.path.join(work, "onnx", "imdb-bilstm.onnx")
    suite.export(model, onnx_path)
    tokens = t.text_inputs(t.vocab_size(model), 1000, rng)
    ref, ort = suite.logits_pair("imdb-bilstm", model, onnx_path, tokens)
    err, diff = t.worst_error(ref, ort)
    print(f"imdb-bilstm: 1,000 sequences of 1-500 tokens, error {err:.2e} of the largest logit, "
          f"{diff} argmax differences", flush=True)
    # Speed on real reviews: recur's predict_texts (tokenizing included, a small share) against
    # ONNX Runtime on the ids the checkpoint's tokenizer settings give (onnx_reference writes
    # them). Batch 1: the longest of the 1,000 reviews (max_len 500 tokens).
    reviews = t.review_inputs(1000)["texts"]
    longest = max(reviews, key=len)

    def recur_texts(folder, texts, repeat):
        d = os.path.join(work, folder)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "texts.bin"), "wb") as f:
            f.write(b"\0".join(x.encode() for x in texts))
        out = json.loads(run([args.reference, model, "texts", str(len(texts)),
                              os.path.join(d, "texts.bin"), os.path.join(d, "tokens.bin"),
                              os.path.join(d, "lengths.bin"), os.path.join(d, "out.bin")],
                             dict(os.environ, ONNX_REFERENCE_REPEAT=str(repeat))))
        steps = os.path.getsize(os.path.join(d, "tokens.bin")) // 8 // len(texts)
        with open(os.path.join(d, "inputs.json"), "w") as f:
            json.dump([{"name": "tokens", "type": "int64", "dims": [len(texts), steps],
                        "file": os.path.join(d, "tokens.bin")},
                       {"name": "lengths", "type": "int64", "dims": [len(texts)],
                        "file": os.path.join(d, "lengths.bin")}], f)
        return out["ms_median"]

    recur_texts("r1", [longest], 1)
    recur_texts("r1000", reviews, 1)
    f1 = os.path.join(work, "r1", "inputs.json")
    f1000 = os.path.join(work, "r1000", "inputs.json")
    for threads in (1, 2):  # recur's predict_texts runs on one thread: both rows time the same
        th = str(threads)
        plan.append(("imdb-bilstm", threads, [
            lambda: 1000 * recur_texts("r1", [longest], 30),
            lambda th=th: 1000 * json.loads(run(node + [onnx_path, f1, th, "30"], env))["ms_median"],
            lambda: 1e6 / recur_texts("r1000", reviews, 3),
            lambda th=th: 1e6 / json.loads(run(node + [onnx_path, f1000, th, "3"], env))["ms_median"],
        ]))

    print(f"load average before the rounds: {os.getloadavg()}", flush=True)
    # Rounds: recur first in even rounds, ONNX Runtime first in odd ones; medians over rounds.
    values = {(name, th): [[] for _ in range(4)] for name, th, _ in plan}
    for r in range(args.rounds):
        for name, th, measures in plan:
            order = (0, 2, 1, 3) if r % 2 == 0 else (1, 3, 0, 2)
            for k in order:
                values[(name, th)][k].append(measures[k]())
            print(f"round {r + 1}: {name}, {th} threads: "
                  f"{[round(v[-1], 1) for v in values[(name, th)]]}", flush=True)

    print(f"load average after the rounds: {os.getloadavg()}", flush=True)
    print("\n| model | threads | recur batch 1 (us) | ORT batch 1 (us) | recur/ORT time | "
          "recur batch 1,000 (samples/s) | ORT batch 1,000 (samples/s) | recur/ORT rate |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, th), v in values.items():
        r1, o1, rt, ot = (statistics.median(x) for x in v)
        print(f"| {name} | {th} | {r1:,.0f} | {o1:,.0f} | {r1 / o1:.2f} | {rt:,.0f} | {ot:,.0f} | "
              f"{rt / ot:.2f} |")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
