#!/usr/bin/env python3
"""`recur predict` on digits as a person would hand them in: the first 1,000 MNIST test digits
drawn in dark ink on light paper of varying grey, scaled 2-8x, placed off-centre on a larger
canvas, with light noise, saved as 8-bit PNG. With the main job's recipe (examples/mnist-lstm.toml)
trained for 3 of its 10 epochs on 2 threads (here, unless the work folder holds the run already;
98.25% on the plain test set) predict must be right at least 97% of the time (97.7% measured on
the 2-core machine; the 10-epoch model of the README gets 98.4%). Also: a blank picture is refused naming the file (exit 2), and a
picture of two digits side by side is reported as several blobs.

Run by ctest:  test_predict_framing.py --cli build/recur --work DIR   (exit 77: numpy missing)
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

try:
    import numpy as np
except ImportError:
    print("python3-numpy is not installed; skipping (scripts/test.sh installs it)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "data", "mnist")
COUNT = 1000
BAR = 0.97


def read_idx(path):
    with open(path, "rb") as f:
        blob = f.read()
    magic, = struct.unpack(">I", blob[:4])
    dims = [struct.unpack(">I", blob[4 + 4 * k:8 + 4 * k])[0] for k in range(magic & 0xFF)]
    offset = 4 + 4 * len(dims)
    return np.frombuffer(blob, dtype=np.uint8, offset=offset).reshape(dims)


def write_png(path, gray):
    """8-bit grayscale PNG, written with nothing but zlib."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def upscale(img, size):
    """Bilinear resampling of a square float image to size x size."""
    n = img.shape[0]
    pos = (np.arange(size) + 0.5) * n / size - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    t = np.clip(pos - lo, 0, 1)
    rows = img[lo] * (1 - t)[:, None] + img[hi] * t[:, None]
    return rows[:, lo] * (1 - t)[None, :] + rows[:, hi] * t[None, :]


def render(digit, rng):
    """One MNIST digit as a person's picture: dark ink, grey paper, scaled, off-centre, noisy."""
    paper = rng.uniform(150, 250)
    ink = rng.uniform(0, paper - 90)
    size = int(round(28 * rng.uniform(2, 8)))
    shape = upscale(digit.astype(np.float64) / 255.0, size)
    width = size + int(rng.integers(size // 4, size + 1))
    height = size + int(rng.integers(size // 4, size + 1))
    canvas = np.zeros((height, width))
    x, y = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
    canvas[y:y + size, x:x + size] = shape
    picture = paper - (paper - ink) * canvas + rng.normal(0, rng.uniform(1, 5), canvas.shape)
    return np.clip(np.round(picture), 0, 255).astype(np.uint8)


def run(args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args[:3])}... exited {r.returncode}\n{r.stderr[-3000:]}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    work = os.path.join(a.work, "framing")
    os.makedirs(work, exist_ok=True)

    run_dir = os.path.join(work, "mnist-lstm")
    model = os.path.join(run_dir, "best.safetensors")
    if not os.path.exists(os.path.join(run_dir, "summary.json")):
        shutil.rmtree(run_dir, ignore_errors=True)
        run([a.cli, "train", "--config", os.path.join(ROOT, "examples", "mnist-lstm.toml"),
             "--epochs", "3", "--threads", "2", "--data", DATA, "--out", run_dir])

    images = read_idx(os.path.join(DATA, "t10k-images-idx3-ubyte"))[:COUNT]
    labels = read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte"))[:COUNT]
    rng = np.random.default_rng(20261130)
    pictures = os.path.join(work, "pictures")
    os.makedirs(pictures, exist_ok=True)
    paths = []
    for i in range(COUNT):
        path = os.path.join(pictures, f"{i:04d}.png")
        write_png(path, render(images[i], rng))
        paths.append(path)

    def accuracy(extra):
        out = json.loads(run([a.cli, "predict", model, *paths, "--json", "--top", "1", *extra]).stdout)
        assert len(out) == COUNT, len(out)
        return sum(int(o["prediction"] == int(labels[i])) for i, o in enumerate(out)) / COUNT, out

    framed, out = accuracy([])
    raw, _ = accuracy(["--raw"])
    print(f"predict on {COUNT} rendered test digits: framed {100 * framed:.1f}%, --raw {100 * raw:.1f}%")
    failures = []
    if framed < BAR:
        failures.append(f"framed accuracy {100 * framed:.1f}% is below {100 * BAR:.0f}%")
    if not all(o["framed"] and o["inverted"] for o in out):
        failures.append("every rendered picture should be framed and inverted")

    blank = os.path.join(work, "blank.png")
    write_png(blank, np.full((64, 48), 200, dtype=np.uint8))
    r = run([a.cli, "predict", model, blank], check=False)
    if r.returncode != 2 or "blank.png: holds no ink" not in r.stderr:
        failures.append(f"blank picture: exit {r.returncode}, stderr {r.stderr!r}")

    two = os.path.join(work, "two.png")
    canvas = np.full((150, 300), 230.0)
    for k, img in enumerate(images[:2]):
        canvas[30:114, 20 + 150 * k:104 + 150 * k] -= 200 * upscale(img / 255.0, 84)
    write_png(two, np.clip(canvas, 0, 255).astype(np.uint8))
    r = run([a.cli, "predict", model, two, "--json"])
    if json.loads(r.stdout)[0]["blobs"] < 2 or "separate blobs of ink" not in r.stderr:
        failures.append(f"two digits: {r.stdout} {r.stderr}")

    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
