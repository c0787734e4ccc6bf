#!/usr/bin/env python3
"""The HTML report in a real browser: `recur report --from-json` writes report.html from fixed
numbers (five image models, their curves, confusions and misclassified digits, and the two text
models of --text in their own group, with mistake excerpts), Debian's headless Chromium opens it
from disk with the network disabled, and the test checks the rendered DOM: one table row per
model, the four charts of each group as <svg> elements with their dots and lines, the conclusion
naming the most accurate model of each group. Any message the page logs to the console fails the
test: the page runs no script, so a message can only be an error, a blocked fetch (the page's
Content-Security-Policy refuses every load that is not inline) or a warning. A copy of the page
with a script and an external image added must be caught by the same check, so the check can
fail. A screenshot (report.png) is written next to the report and checked to be a PNG with
something drawn on it.

Run by ctest:  test_report_browser.py --cli build/recur --work DIR   (exit 77: no chromium)
"""
import argparse
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def model(name, family, acc, params, latency, per_s, epoch_s, rss, seed):
    # A plain "digit": a bar whose position depends on the seed, so the images differ.
    pixels = [0] * (28 * 28)
    for r in range(5, 23):
        pixels[r * 28 + 8 + seed] = 255
        pixels[r * 28 + 9 + seed] = 180
    return {
        "name": name, "family": family, "description": f"{family} test model",
        "test_accuracy": acc, "test_count": 10000, "parameters": params,
        "checkpoint_bytes": params * 4 + 1500, "epochs": 3,
        "train_seconds_per_epoch": epoch_s, "inference_per_second": per_s,
        "latency_us": latency, "peak_rss_bytes": rss,
        "confused": [[4, 9, 11 + seed], [7, 2, 6]],
        "curve": [{"epoch": e, "train_loss": 0.6 / e + 0.01 * seed, "accuracy": acc - 0.02 / e}
                  for e in (1, 2, 3)],
        "misclassified": [{"width": 28, "height": 28, "truth": 4, "predicted": 9,
                           "pixels": pixels}] * 2,
    }


MODELS = [
    model("lstm", "LSTM", 0.9899, 69898, 122.0, 54881.0, 2.6, 78000000, 0),
    model("gru", "GRU", 0.9896, 52874, 91.0, 68917.0, 2.2, 83000000, 1),
    model("rnn", "RNN", 0.9757, 18058, 31.0, 218419.0, 1.9, 64000000, 2),
    model("cnn", "CNN", 0.9912, 61706, 45.0, 90000.0, 3.1, 95000000, 3),
    model("mlp", "MLP", 0.9810, 235146, 20.0, 400000.0, 0.9, 70000000, 4),
]


def text_model(name, family, acc, params, latency, per_s, epoch_s, rss, seed):
    # A model of `recur report --text`: its own group, class names, excerpts instead of images.
    m = model(name, family, acc, params, latency, per_s, epoch_s, rss, seed)
    m.update({"group": "IMDb", "test_count": 25000, "class_names": ["negative", "positive"],
              "confused": [[0, 1, 1400 + seed], [1, 0, 1100]], "misclassified": [],
              "mistakes": [{"truth": 0, "predicted": 1, "confidence": 0.99,
                            "text": "A <b>great</b> film & a \"must\" see... not."}]})
    return m


TEXT_MODELS = [
    text_model("imdb-bilstm", "BiLSTM", 0.8988, 2830594, 5200.0, 1900.0, 230.0, 2100000000, 5),
    text_model("imdb-cnn", "CNN", 0.8870, 2642306, 900.0, 9800.0, 70.0, 900000000, 6),
]


class Dom(html.parser.HTMLParser):
    """Counts what the checks need in the DOM Chromium serialised."""

    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.circles, self.polylines = [], [], 0, 0
        self.stack, self.conclusion, self.in_li = [], [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append((tag, a))
        if tag == "tr" and "data-model" in a and any(
                t == "table" and x.get("id", "").startswith("results-table") for t, x in self.stack):
            self.rows.append(a["data-model"])
        if tag == "svg":
            self.svgs.append(a.get("id"))
        self.circles += tag == "circle"
        self.polylines += tag == "polyline"
        if tag == "li" and any(t == "section" and x.get("id") == "conclusion" for t, x in self.stack):
            self.in_li = True
            self.conclusion.append("")

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break
        if tag == "li":
            self.in_li = False

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data):
        if self.in_li:
            self.conclusion[-1] += data


def run_chromium(chromium, profile, page, extra):
    """Runs headless Chromium on a file with the network disabled; returns (stdout, console)."""
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
           "--enable-logging=stderr", "--v=0", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--proxy-server=127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND"] + extra + ["file://" + page]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        sys.exit(f"FAIL: chromium exited {p.returncode}: {p.stderr[-2000:]}")
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    return p.stdout, console


def png_check(path, width, height):
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    w, h = struct.unpack(">II", blob[16:24])
    assert (w, h) == (width, height), f"{path} is {w}x{h}, expected {width}x{height}"
    idat, pos = b"", 8
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind = blob[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += blob[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    # A blank page compresses to a handful of byte values; text, charts and digits to many.
    distinct = len(set(raw))
    assert distinct > 64, f"{path} looks blank ({distinct} distinct byte values)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    chromium = find_chromium()
    if not chromium:
        print("chromium is not installed; skipping (scripts/test.sh installs it)")
        return 77

    work = os.path.abspath(os.path.join(args.work, "report-browser"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    measures = os.path.join(work, "measures.json")
    with open(measures, "w") as f:
        json.dump({"title": "Browser check", "data": "fixed numbers", "machine": "none",
                   "models": MODELS + TEXT_MODELS}, f)
    out = os.path.join(work, "report")
    p = subprocess.run([args.cli, "report", "--from-json", measures, "--out", out],
                       capture_output=True, text=True)
    assert p.returncode == 0, f"recur report failed ({p.returncode}): {p.stderr}"
    page = os.path.join(out, "report.html")
    assert os.path.isfile(page) and os.path.isfile(os.path.join(out, "report.md"))

    failures = []
    dom_text, console = run_chromium(chromium, os.path.join(work, "profile"), page,
                                     ["--dump-dom"])
    dom = Dom()
    dom.feed(dom_text)
    names = [m["name"] for m in MODELS + TEXT_MODELS]
    if dom.rows != names:
        failures.append(f"table rows {dom.rows}, expected {names}")
    charts = ["chart-accuracy-parameters", "chart-accuracy-latency",
              "chart-accuracy-parameters-imdb", "chart-accuracy-latency-imdb",
              "chart-curves-accuracy", "chart-curves-loss",
              "chart-curves-accuracy-imdb", "chart-curves-loss-imdb"]
    if dom.svgs != charts:
        failures.append(f"svg elements {dom.svgs}, expected {charts}")
    # A dot per model in each scatter; a line per model and a dot per epoch in each curve chart
    # (five image models, two text models).
    if dom.circles != 2 * 7 + 2 * 7 * 3 or dom.polylines != 2 * 7:
        failures.append(f"{dom.circles} circles and {dom.polylines} polylines in the charts")
    if not any(l.startswith("Accuracy: cnn is the most accurate at 99.12%") for l in dom.conclusion):
        failures.append(f"conclusion without the accuracy winner: {dom.conclusion}")
    if not any(l.startswith("IMDb: Accuracy: imdb-bilstm is the most accurate at 89.88%")
               for l in dom.conclusion):
        failures.append(f"conclusion without the text pair's accuracy winner: {dom.conclusion}")
    if 'must" see... not.' not in dom_text:
        failures.append("the text mistake's excerpt is not on the page")
    if console:
        failures.append("the page logged:\n  " + "\n  ".join(console))

    # The same check on a defective copy: a script and an external image must be reported.
    with open(page) as f:
        text = f.read()
    bad = os.path.join(work, "defective.html")
    with open(bad, "w") as f:
        f.write(text.replace("</main>", '<img src="http://example.invalid/x.png">'
                             '<script>console.error("defect")</script></main>'))
    _, bad_console = run_chromium(chromium, os.path.join(work, "profile-bad"), bad, ["--dump-dom"])
    if not any("example.invalid" in l for l in bad_console) or \
            not any("script" in l.lower() for l in bad_console):
        failures.append(f"the console check missed the defects of defective.html: {bad_console}")

    shot = os.path.join(out, "report.png")
    _, shot_console = run_chromium(chromium, os.path.join(work, "profile-shot"), page,
                                   [f"--screenshot={shot}", "--window-size=1280,2600",
                                    "--hide-scrollbars"])
    if shot_console:
        failures.append("the page logged while drawing the screenshot:\n  " + "\n  ".join(shot_console))
    try:
        png_check(shot, 1280, 2600)
    except (AssertionError, OSError) as e:
        failures.append(str(e))

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: {len(dom.rows)} rows, {len(dom.svgs)} charts, conclusion of "
          f"{len(dom.conclusion)} lines, no console messages; screenshot {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
