#!/usr/bin/env python3
"""A recur CNN checkpoint in PyTorch: `recur report --budget tiny` trains its LeNet-style CNN (the
report's layer list with narrow layers, two epochs) on the first 6,000 MNIST training images and
measures it on the first 500 test images; the test loads runs/cnn/best.safetensors into the
matching torch.nn.Sequential (tensor names 0.weight, 3.weight, 7.weight, ... unchanged) and
checks that PyTorch gets the same test accuracy (the same count of correct answers) and makes
the same mistake on every misclassified digit the report shows.

Run by ctest:  test_cnn_torch.py --cli build/recur --work DIR   (exit 77: no torch or no MNIST)
"""
import argparse
import json
import os
import struct
import subprocess
import sys

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST = os.path.join(SOURCE, "data", "mnist")


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return count, rows, cols, data[16:]
    return count, 0, 0, data[8:]


def write_subset(src, dst, prefix, count):
    """The first `count` images and labels of an MNIST file pair, in MNIST's file names."""
    n, rows, cols, pixels = read_idx(os.path.join(src, prefix + "-images-idx3-ubyte"))
    _, _, _, labels = read_idx(os.path.join(src, prefix + "-labels-idx1-ubyte"))
    count = min(count, n)
    with open(os.path.join(dst, prefix + "-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 2051, count, rows, cols) + pixels[: count * rows * cols])
    with open(os.path.join(dst, prefix + "-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 2049, count) + labels[:count])
    return count, rows, cols, pixels[: count * rows * cols], labels[:count]


def load_safetensors(path, torch):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    body = data[8 + size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=torch.float32)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, header.get("__metadata__", {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 77
    if not os.path.exists(os.path.join(MNIST, "t10k-images-idx3-ubyte")):
        print(f"SKIP: no MNIST in {MNIST}")
        return 77

    work = os.path.join(os.path.abspath(args.work), "cnn-torch")
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    write_subset(MNIST, data, "train", 6000)
    n, rows, cols, pixels, labels = write_subset(MNIST, data, "t10k", 500)
    out = os.path.join(work, "report")
    subprocess.run([args.cli, "report", "--budget", "tiny", "--threads", "2", "--data", data,
                    "--out", out], check=True, stdout=subprocess.DEVNULL)

    run = os.path.join(out, "runs", "cnn")
    tensors, meta = load_safetensors(os.path.join(run, "best.safetensors"), torch)
    spec = json.loads(meta["recur.spec"])
    print("recur CNN layers:", [layer["type"] for layer in spec["layers"]])
    c1 = tensors["0.weight"].shape[0]
    c2 = tensors["3.weight"].shape[0]
    f1 = tensors["7.weight"].shape[0]
    f2 = tensors["9.weight"].shape[0]
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, c1, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(c1, c2, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(c2 * 5 * 5, f1), torch.nn.ReLU(), torch.nn.Linear(f1, f2),
        torch.nn.ReLU(), torch.nn.Linear(f2, 10))
    missing, unexpected = net.load_state_dict(tensors, strict=True)
    assert not missing and not unexpected, (missing, unexpected)

    x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).float().div(255.0)
    x = x.reshape(n, 1, rows, cols)
    y = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    with torch.no_grad():
        logits = net(x)
    predicted = logits.argmax(1)
    torch_correct = int((predicted == y).sum())

    measures = json.load(open(os.path.join(run, "measures.json")))["models"][0]
    recur_correct = round(measures["test_accuracy"] * measures["test_count"])
    print(f"test accuracy on {n} images: recur {recur_correct}/{measures['test_count']}, "
          f"PyTorch {torch_correct}/{n}")
    ok = measures["test_count"] == n and recur_correct == torch_correct
    # A weak model still gets far more than chance; a wrong layout would not.
    ok &= torch_correct > n // 5
    # Every digit the report shows as misclassified is misclassified the same way by PyTorch.
    shown = measures["misclassified"]
    ok &= len(shown) > 0
    for m in shown:
        img = bytes(m["pixels"])
        matches = [i for i in range(n) if pixels[i * rows * cols : (i + 1) * rows * cols] == img]
        if not matches or all(int(predicted[i]) != m["predicted"] for i in matches):
            print(f"FAIL: a digit recur calls {m['predicted']} (truth {m['truth']}): PyTorch "
                  f"says {[int(predicted[i]) for i in matches]}")
            ok = False
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
