#!/usr/bin/env python3
"""Load bench of `recur serve` against two peers serving the same MNIST LSTM, measured in one run
with the same client: wrk (Debian) with C connections (default 64) for S seconds (default 30),
each request one test digit as a KServe v2 infer request (UINT8 [1, 28, 28]).

  recur       build/recur serve MODEL --quiet (dynamic batching, its defaults; no request log,
              as the peers keep none)
  pytorch     the checkpoint in torch.nn.LSTM behind Python's ThreadingHTTPServer
              (bench/serve/torch_server.py, /usr/bin/python3 with Debian's python3-torch)
  onnxruntime the same network exported by torch.onnx, run by onnxruntime-node behind Node's
              http server (bench/serve/ort_server.js)

Every server is started on 127.0.0.1, checked to answer the digit's class, loaded, and stopped
by this script. Prints a Markdown table (requests/s, p50, p99, errors) and one JSON line.

  python3 bench/serve/load.py [--cli build/recur] [--model M.safetensors] [--seconds 30]
                              [--connections 64] [--only recur,pytorch,onnxruntime]
Without --model, trains the MNIST LSTM 128 of the serve tests into build/serve-bench/.
Needs wrk, python3-torch and onnxruntime-node (bash scripts/install-deps.sh --test).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import serve_support as ss  # noqa: E402


def wait_ready(port, proc, timeout=120):
    body = json.dumps({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 28, 28],
                                   "data": ss.read_idx_images(1)[0]}]}).encode()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            r = urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/v2/models/mnist/infer", body,
                {"Content-Type": "application/json"}), timeout=5)
            answer = json.loads(r.read())
            labels = [o for o in answer["outputs"] if o["name"] == "labels"][0]["data"]
            assert labels == [ss.read_idx_labels(1)[0]], f"wrong answer {labels}"
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server never answered")


def start(kind, cli, model, onnx, work):
    log = open(os.path.join(work, kind + ".log"), "w")
    env = dict(os.environ, NODE_PATH=os.path.join(ROOT, ".cache", "npm", "node_modules"))
    if kind == "recur":
        # --quiet: no request log, as the peers keep none.
        cmd = [cli, "serve", f"mnist={model}", "--host", "127.0.0.1", "--port", "0", "--quiet"]
    elif kind == "pytorch":
        cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_server.py"), model, "--port", "0"]
    else:
        cmd = ["node", os.path.join(HERE, "ort_server.js"), onnx, "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    first = proc.stdout.readline()
    m = re.search(r"(?:127\.0\.0\.1:|listening )(\d+)", first)
    if not m:
        proc.kill()
        raise RuntimeError(f"{kind} said {first!r}")
    port = int(m.group(1))
    # The rest of stdout (recur's request log) is drained to /dev/null.
    drain = subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, drain, port


def to_ms(text):
    v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(port, seconds, connections, body_path):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
           "-s", os.path.join(HERE, "post.lua"), f"http://127.0.0.1:{port}/v2/models/mnist/infer"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, BODY=body_path),
                         timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {"requests_per_s": rps, "p50_ms": p50, "p99_ms": p99, "requests": total,
            "errors": errors, "wrk": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "recur"))
    ap.add_argument("--model")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="recur,pytorch,onnxruntime")
    args = ap.parse_args()
    cli = os.path.abspath(args.cli)
    work = os.path.join(ROOT, "build", "serve-bench")
    os.makedirs(work, exist_ok=True)
    model = args.model or ss.trained_models(cli, work)[0]
    onnx = os.path.join(work, "mnist.onnx")
    kinds = args.only.split(",")
    if "onnxruntime" in kinds:
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_server.py"), model,
                        "--onnx", onnx], check=True, capture_output=True)
    body_path = os.path.join(work, "digit.json")
    with open(body_path, "w") as f:
        json.dump({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 28, 28],
                               "data": ss.read_idx_images(1)[0]}]}, f)
    results = {}
    for kind in kinds:
        proc, drain, port = start(kind, cli, model, onnx, work)
        try:
            results[kind] = run_wrk(port, args.seconds, args.connections, body_path)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            drain.wait(timeout=10)
        r = results[kind]
        print(f"{kind}: {r['requests_per_s']:.0f} requests/s, p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms, {r['errors']} errors of {r['requests']}", flush=True)
    print(f"\n| server | requests/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    for kind, r in results.items():
        print(f"| {kind} | {r['requests_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['errors']} of {r['requests']} |")
    peers = [results[k] for k in results if k != "recur"]
    if "recur" in results and peers:
        best = max(peers, key=lambda r: r["requests_per_s"])
        print(f"\nrecur / best peer: {results['recur']['requests_per_s'] / best['requests_per_s']:.1f}x "
              f"requests/s; p99 {results['recur']['p99_ms']:.2f} ms vs {best['p99_ms']:.2f} ms")
    print(json.dumps({k: {x: y for x, y in r.items() if x != "wrk"} for k, r in results.items()}))


if __name__ == "__main__":
    main()
