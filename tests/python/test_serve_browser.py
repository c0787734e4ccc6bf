#!/usr/bin/env python3
"""The pages of `recur serve` in Debian's headless Chromium, driven through the DevTools
protocol by the npm package playwright-core (serve_browser.js), against a server on a free
loopback port:

- the digit page: 20 MNIST test digits drawn with mouse strokes (one stroke per run of ink in
  each row, in two passes as a person draws a digit's core with a thick pen and its fainter
  edges with a thin one: pixels >= 160 with the pen at 11 px, then pixels >= 80 at 7 px, on the
  280 px canvas) are framed, streamed row by row, and the page must show the right class for at
  least 19, with the chart's ten lines of 28 points (one per row read). The 20 are the first test
  digits that the model itself reads right from their pixels (`recur predict --json`): the page
  is held to reading a person's drawing of a digit as the model reads the digit, not to the
  model's accuracy (the serve tests' small model misreads test digit 8, a 5, as a 6 from its own
  pixels, which left the first 20 digits no margin). A rasterization of the same strokes sent to
  /frame and /infer (592 test digits: the first 200 and 400 spread over the set) read 581 of the
  585 that the model reads right from their pixels as the model does (one pass, pixels >= 128 at
  11 px: 578), so two misread drawings among 20 are unlikely;
- the text page: a positive and a negative review typed key by key get a positive and a
  negative verdict and the chart of the running positive probability;
- no console error or warning on any page (the Content-Security-Policy refuses every inline
  script and outside asset, so a slip in the pages shows here);
- screenshots of every digit and review are kept in WORK/serve-browser/.

playwright-core comes from scripts/install-deps.sh --test (into .cache/npm), which this test
runs itself when it is missing.

Run by ctest:  test_serve_browser.py --cli build/recur --work DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_support as ss  # noqa: E402

POSITIVE = ("This film is wonderful. A great story, superb acting and a beautiful score; one of "
            "the best movies I have seen, and I loved every minute of it. Highly recommended.")
NEGATIVE = ("This film is awful. A boring story, terrible acting and a dull script; one of the "
            "worst movies I have seen, a waste of time and money. Avoid it.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    cli = os.path.abspath(args.cli)
    work = os.path.abspath(os.path.join(args.work, "serve-browser"))
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    modules = os.path.join(ss.ROOT, ".cache", "npm", "node_modules")
    if not os.path.isfile(os.path.join(modules, "playwright-core", "package.json")) \
            or not shutil.which("chromium"):
        subprocess.run(["bash", os.path.join(ss.ROOT, "scripts", "install-deps.sh"), "--test"],
                       check=True)
    mnist, imdb = ss.trained_models(cli, os.path.abspath(args.work))
    # The first 20 test digits the model reads right from their pixels.
    pool = 60
    idx = os.path.join(ss.MNIST, "t10k-images-idx3-ubyte")
    p = subprocess.run([cli, "predict", mnist, idx, "--index", ",".join(map(str, range(pool))),
                        "--json"], capture_output=True, text=True)
    assert p.returncode == 0, f"recur predict failed: {p.stderr}"
    predicted = [d["prediction"] for d in json.loads(p.stdout)]
    digits = [{"index": i, "pixels": px, "label": l}
              for i, (px, l) in enumerate(zip(ss.read_idx_images(pool), ss.read_idx_labels(pool)))
              if predicted[i] == l][:20]
    assert len(digits) == 20, f"the model reads only {len(digits)} of the first {pool} right"
    with open(os.path.join(work, "digits.json"), "w") as f:
        json.dump(digits, f)
    with open(os.path.join(work, "reviews.json"), "w") as f:
        json.dump([{"text": POSITIVE, "want": "positive"}, {"text": NEGATIVE, "want": "negative"}],
                  f)
    failures = []
    server = ss.Server(cli, [f"mnist={mnist}", f"imdb={imdb}"], os.path.join(work, "serve.log"))
    try:
        p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "serve_browser.js"),
                            str(server.port), os.path.join(work, "digits.json"),
                            os.path.join(work, "reviews.json"), work],
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "NODE_PATH": modules})
    finally:
        code = server.stop()
    if p.returncode != 0:
        print(p.stdout, p.stderr)
        return 1
    result = json.loads(p.stdout.strip().splitlines()[-1])
    if result["index"] != ["mnist", "imdb"]:
        failures.append(f"the index page lists {result['index']}")
    right = sum(1 for d in result["digits"] if d["shown"] == str(d["truth"]))
    for d in result["digits"]:
        print(f"test digit {d['index']} ({d['truth']}, {d['strokes']} strokes): page shows "
              f"{d['shown']} ({d['state']}) {d['error']}")
        if d["lines"] != 10 or d["points"] != [28] * 10:
            failures.append(f"test digit {d['index']}: the chart has {d['lines']} lines of "
                            f"{d['points']} points, not 10 of 28")
    if right < 19:
        failures.append(f"the digit page shows the right class for {right} of 20 digits")
    for r in result["reviews"]:
        print(f"review ({r['want']}): page says {r['verdict']} {r['error']}")
        if r["verdict"] != r["want"] or r["lines"] != 1:
            failures.append(f"the {r['want']} review: verdict {r['verdict']!r}, "
                            f"{r['lines']} chart lines, error {r['error']!r}")
    if result["console"]:
        failures.append(f"console messages: {result['console']}")
    if code != 0:
        failures.append(f"the server exited with {code}")
    shots = [f for f in os.listdir(work) if f.endswith(".png")]
    if len(shots) != 22:
        failures.append(f"{len(shots)} screenshots kept, 22 expected")
    print(f"digit page: {right} of 20 right; screenshots in {work}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
