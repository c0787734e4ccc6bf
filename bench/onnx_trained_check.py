#!/usr/bin/env python3
"""recur export on fully trained models, against ONNX Runtime on whole test sets.

The suite (tests/export/test_onnx_export.py) checks every model kind after a few training steps.
This script trains the models the export issue names with their own recipes to the end (the
three MNIST recipes, every tutorial config, the report's MLP and CNN, the IMDb BiLSTM), exports
each, and compares ONNX Runtime's logits with recur's on the whole test set: the 10,000 MNIST
test images, and the 25,000 test reviews of recur's IMDb split (recur.datasets.imdb, the split
`recur train --data imdb` tests on) in batches of 1,000 reviews of mixed lengths. Prints, per
model, the largest difference over the largest logit of the batch, the largest difference over
each sample's own largest logit, and the argmax differences; exits 1 when any model is off by
more than 1e-5 of the largest logit or differs in one argmax.

  /usr/bin/python3 bench/onnx_trained_check.py --cli build/recur \
      --reference build/tests/onnx_reference --work runs/onnx-trained

Trained runs are kept in WORK/runs and reused on the next call (a run folder with its
summary.json is finished). Needs the recur Python module for the IMDb split (installed by
scripts/install-python.sh, or PYTHONPATH=build/python) and `scripts/install-deps.sh --test`.
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    "export_suite", os.path.join(ROOT, "tests", "export", "test_onnx_export.py"))
suite_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite_mod)

IMAGE_RECIPES = [
    ("mnist-lstm", "examples/mnist-lstm.toml"),
    ("mnist-gru", "examples/mnist-gru.toml"),
    ("mnist-rnn", "examples/mnist-rnn.toml"),
    ("tutorial-000", "examples/tutorial-000-lstm-projection.toml"),
    ("tutorial-001-untied", "examples/tutorial-001-untied-rnn.toml"),
    ("tutorial-002", "examples/tutorial-002-rnn.toml"),
    ("tutorial-003", "examples/tutorial-003-lstm-projection.toml"),
    ("tutorial-004", "examples/tutorial-004-lstm.toml"),
    ("mlp", "examples/mnist-mlp.toml"),
    ("cnn", "examples/mnist-cnn.toml"),
]


def train_full(suite, name, config, extra):
    out = os.path.join(suite.work, "runs", name)
    if not os.path.exists(os.path.join(out, "summary.json")):
        r = suite.run([suite.cli, "train", "--config", config, *extra, "--out", out])
        if r.returncode != 0:
            raise RuntimeError(f"{name}: recur train failed: {r.stderr.strip()[-2000:]}")
    return os.path.join(out, "best.safetensors")


def report(name, ref, ort, failures):
    rel_batch, mismatches = suite_mod.worst_error(ref, ort)
    per_sample = (np.abs(ref - ort).max(axis=1) /
                  np.maximum(np.abs(ref).max(axis=1), 1e-6)).max()
    ok = rel_batch <= suite_mod.TOLERANCE and mismatches == 0
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(ref)} samples, largest error {rel_batch:.2e} "
          f"of the largest logit ({per_sample:.2e} of each sample's own), {mismatches} argmax "
          f"differences", flush=True)
    if not ok:
        failures.append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="", help="the models whose names contain this")
    args = ap.parse_args()
    args.cli, args.reference = os.path.abspath(args.cli), os.path.abspath(args.reference)
    args.work = os.path.abspath(args.work)
    suite = suite_mod.Suite(args)
    os.makedirs(os.path.join(args.work, "onnx"), exist_ok=True)
    failures = []
    images = suite_mod.image_inputs(10000)
    for name, config in IMAGE_RECIPES:
        if args.only not in name:
            continue
        model = train_full(suite, name, config, ["--data", suite_mod.MNIST])
        onnx_path = os.path.join(args.work, "onnx", name + ".onnx")
        suite.export(model, onnx_path)
        ref, ort = suite.logits_pair(name, model, onnx_path, images)
        report(name, ref, ort, failures)
    if args.only in "imdb-bilstm":
        import recur  # the module's split is the command line's
        _, (test_texts, _) = recur.datasets.imdb(suite_mod.IMDB)
        model = train_full(suite, "imdb-bilstm", "examples/imdb-bilstm.toml",
                           ["--data", suite_mod.IMDB])
        onnx_path = os.path.join(args.work, "onnx", "imdb-bilstm.onnx")
        suite.export(model, onnx_path)
        refs, orts = [], []
        for start in range(0, len(test_texts), 1000):
            chunk = list(test_texts[start:start + 1000])
            ref, ort = suite.logits_pair(f"imdb-bilstm-test-{start}", model, onnx_path,
                                         {"kind": "texts", "n": len(chunk), "texts": chunk})
            refs.append(ref)
            orts.append(ort)
        report("imdb-bilstm (test reviews)", np.concatenate(refs), np.concatenate(orts),
               failures)
    if failures:
        print("FAIL: " + ", ".join(failures))
        return 1
    print("every model equal within 1e-5 of the largest logit, argmax identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
