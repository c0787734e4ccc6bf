#!/usr/bin/env python3
"""Round trip into PyTorch: models trained and saved by recur load with strict=True into the
equivalent torch module (nn.Linear projection, nn.LSTM / nn.GRU / nn.RNN, nn.Linear head) straight
from the safetensors file, parsed here with nothing but struct and json, and give the same logits
as `recur predict` on MNIST test images to 1e-5 (relative to the largest logit).

Run by ctest:  test_torch_roundtrip.py --cli build/recur --work DIR   (exit 77: torch missing)
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import torch
except ImportError:
    print("python3-torch is not installed; skipping (scripts/test.sh installs it)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "mnist")
DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DTYPES[e["dtype"]])
        tensors[name] = t.reshape(e["shape"])
    return tensors, meta


class Net(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        rnn_in = c["projection"] or c["input_size"]
        if c["projection"]:
            self.proj = torch.nn.Linear(c["input_size"], c["projection"])
        kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
        if c["cell"] in kinds:
            self.rnn = kinds[c["cell"]](rnn_in, c["hidden"], c["layers"], bidirectional=c["bidirectional"])
        else:
            self.rnn = torch.nn.RNN(rnn_in, c["hidden"], c["layers"], nonlinearity=c["cell"].split("_")[1],
                                    bidirectional=c["bidirectional"])
        self.head = torch.nn.Linear(c["hidden"] * (2 if c["bidirectional"] else 1), c["num_classes"])
        self.c = c

    def forward(self, x):
        if hasattr(self, "proj"):
            x = self.proj(x)
        out, _ = self.rnn(x)
        h = self.c["hidden"]
        if self.c["pooling"] == "last":
            pooled = out[-1]
            if self.c["bidirectional"]:
                pooled = torch.cat([out[-1, :, :h], out[0, :, h:]], dim=1)
        elif self.c["pooling"] == "mean":
            pooled = out.mean(dim=0)
        else:
            pooled = out.max(dim=0).values
        return self.head(pooled)


def short_form(meta):
    """The fixed-shape settings of a checkpoint: recur.model (format 1), or read off the layer
    list of recur.spec (format 2: [linear proj], recurrent rnn, pool, linear head)."""
    if "recur.model" in meta:
        return json.loads(meta["recur.model"])
    spec = json.loads(meta["recur.spec"])
    c = {"input_size": spec["input"]["features"], "num_classes": spec["num_classes"],
         "projection": 0}
    for layer in spec["layers"]:
        if layer["type"] == "linear" and layer["name"] == "proj":
            c["projection"] = layer["size"]
        elif layer["type"] == "recurrent":
            c.update(cell=layer["cell"], hidden=layer["size"], layers=layer["layers"],
                     bidirectional=layer["bidirectional"])
        elif layer["type"] == "pool":
            c["pooling"] = layer["pooling"]
    return c


def test_images(count):
    with open(os.path.join(DATA, "t10k-images-idx3-ubyte"), "rb") as f:
        blob = f.read()
    pixels = torch.frombuffer(bytearray(blob[16:16 + count * 784]), dtype=torch.uint8)
    return pixels.reshape(count, 28, 28).float() / 255.0


def view(images, name):
    b = images.shape[0]
    if name == "rows":
        seq = images
    elif name == "cols":
        seq = images.transpose(1, 2)
    else:
        seq = images.reshape(b, 784, 1)
    return seq.permute(1, 0, 2).contiguous()  # [steps, batch, features]


CASES = {
    "lstm": ["--cell", "lstm"],
    "gru_bidirectional": ["--cell", "gru", "--bidirectional"],
    "rnn_two_layers": ["--cell", "rnn", "--layers", "2"],
    "rnn_relu_cols": ["--cell", "rnn_relu", "--view", "cols"],
    "lstm_projection_mean": ["--cell", "lstm", "--projection", "12", "--pooling", "mean"],
    "gru_max_two_layers_bidirectional": ["--cell", "gru", "--pooling", "max", "--layers", "2", "--bidirectional"],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte")):
        print("MNIST missing in", DATA, "- run recur data fetch mnist")
        return 1
    work = os.path.join(args.work, "roundtrip")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    count = 16
    images = test_images(count)
    failures = 0
    for name, flags in CASES.items():
        out = os.path.join(work, name)
        subprocess.run([args.cli, "train", "--data", DATA, "--hidden", "10", "--steps", "3", "--train-limit", "256",
                        "--val", "64", "--batch", "32", "--seed", "3", "--out", out] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        model = os.path.join(out, "last.safetensors")
        tensors, meta = read_safetensors(model)
        config = short_form(meta)
        net = Net(config)
        net.load_state_dict(tensors, strict=True)  # exact names and shapes, nothing left over
        with torch.no_grad():
            want = net(view(images, meta["recur.view"]))
        pred = subprocess.run([args.cli, "predict", model, os.path.join(DATA, "t10k-images-idx3-ubyte"),
                               "--index", ",".join(str(i) for i in range(count)), "--json"],
                              check=True, capture_output=True, text=True)
        got = torch.tensor([p["logits"] for p in json.loads(pred.stdout)])
        err = ((got - want).abs().max() / want.abs().max()).item()
        ok = err <= 1e-5
        failures += not ok
        print(f"{name:36s} {len(tensors):3d} tensors  max relative logit error {err:.2e}  {'ok' if ok else 'FAIL'}")
    print(f"{len(CASES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
