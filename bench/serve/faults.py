#!/usr/bin/env python3
"""Fault soak of `recur serve`: malformed requests interleaved with valid ones on 127.0.0.1, for a
bounded time and count, while the server's RSS is sampled.

Malformed (--malformed, default 10,000, spread over --seconds, default 300): the fuzz corpus of
the request parser (tests/fuzz/corpus/infer_request), valid bodies with random bytes flipped,
truncated bodies (with a Content-Length that says so, and with one that promises more before the
client hangs up), wrong datatypes and shapes, strings where numbers go, bodies over the size
limit, requests that are not HTTP, streams fed without a start, and slow clients that send half
a request and stall past --timeout-s. Valid: one digit each, checked against `recur predict
--json`'s logits bit for bit.

Pass: every valid request answered correctly, no malformed one answered 2xx or 5xx, the server
alive throughout and exiting 0 on SIGTERM, and its RSS flat: every sample after the first fifth
of the run within +-10% of the sample taken at that point. Run it with the ASan build
(scripts/asan-build.sh recur_cli; --cli build-asan/recur) for the crash check: ASan's report
would end the server and fail the run.

  python3 bench/serve/faults.py [--cli build/recur] [--seconds 300] [--malformed 10000]
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import serve_support as ss  # noqa: E402

POOL = 100


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw_http(port, data, read=True, timeout=10):
    """Sends bytes as they are; returns the status code (0: no answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return 0
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        parts = answer.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except OSError:
        return 0
    finally:
        s.close()


def post(path, body, length=None, ctype=b"application/json"):
    n = len(body) if length is None else length
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype +
            b"\r\nContent-Length: " + str(n).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def malformed_cases(digits, corpus):
    img = {"name": "input", "datatype": "UINT8", "shape": [1, 28, 28], "data": digits[0]}
    valid = json.dumps({"inputs": [img]}).encode()
    path = b"/v2/models/mnist/infer"

    def flipped(rng):
        b = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return post(path, bytes(b))

    cases = [
        ("corpus", lambda rng: post(path if rng.random() < .5 else b"/v2/models/imdb/infer",
                                    rng.choice([c for c in corpus if c[0] in (0, 3)])[1:])),
        ("flipped", flipped),
        ("truncated", lambda rng: post(path, valid[:rng.randrange(len(valid))])),
        ("short_body", lambda rng: post(path, valid[:100], length=len(valid))),
        ("wrong_type", lambda rng: post(path, json.dumps({"inputs": [{**img, "datatype": rng.choice(
            ["FP64", "INT8", "BYTES", "UINT16", 7])}]}).encode())),
        ("wrong_shape", lambda rng: post(path, json.dumps({"inputs": [{**img, "shape": [
            1, rng.randint(29, 40), rng.randint(-2, 27)]}]}).encode())),
        ("strings", lambda rng: post(path, json.dumps({"inputs": [{**img, "data": ["x"] * 784}]})
                                     .encode())),
        ("huge", lambda rng: post(path, b"[" * (2 << 20))),
        ("not_http", lambda rng: bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) +
         b"\r\n\r\n"),
        ("no_start", lambda rng: post(path, json.dumps({"inputs": [{**img, "shape": [1, 1, 28],
                                                                    "data": digits[0][:28]}],
                                                        "parameters": {"sequence_id": rng.randint(
                                                            1, 10**9)}}).encode())),
        ("bad_png", lambda rng: post(path, b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256)
                                                                       for _ in range(64)),
                                     ctype=b"image/png")),
    ]
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "recur"))
    ap.add_argument("--model", help="an MNIST model (default: the serve tests' LSTM)")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--malformed", type=int, default=10000)
    ap.add_argument("--slow-clients", type=int, default=40)
    args = ap.parse_args()
    cli = os.path.abspath(args.cli)
    work = os.path.join(ROOT, "build", "serve-bench")
    os.makedirs(work, exist_ok=True)
    model = args.model or ss.trained_models(os.path.join(ROOT, "build", "recur"), work)[0]
    digits = ss.read_idx_images(POOL)
    p = subprocess.run([os.path.join(ROOT, "build", "recur"), "predict", model,
                        os.path.join(ss.MNIST, "t10k-images-idx3-ubyte"), "--index",
                        ",".join(map(str, range(POOL))), "--json"], capture_output=True, text=True)
    want = [w["logits"] for w in json.loads(p.stdout)]
    corpus_dir = os.path.join(ROOT, "tests", "fuzz", "corpus", "infer_request")
    corpus = [open(os.path.join(corpus_dir, f), "rb").read() for f in sorted(os.listdir(corpus_dir))]
    cases = malformed_cases(digits, corpus)

    server = ss.Server(cli, [f"mnist={model}", "--max-body-mb", "1", "--timeout-s", "2", "--quiet"],
                       os.path.join(work, "faults-serve.log"), timeout=300)
    pid = server.proc.pid
    stats = {"valid_ok": 0, "valid_bad": 0, "malformed": 0, "malformed_2xx_5xx": 0,
             "by_status": {}, "slow": 0}
    lock = threading.Lock()
    samples = []
    start = time.time()
    stop_at = start + args.seconds
    per_worker = args.malformed // 8

    def worker(k):
        rng = random.Random(k)
        conn = server.connection(timeout=30)
        for n in range(per_worker):
            # Spread the malformed requests over the soak.
            target = start + (n + 1) * args.seconds / per_worker
            while time.time() < target:
                time.sleep(max(0.0, min(0.05, target - time.time())))
            name, make = rng.choice(cases)
            status = raw_http(server.port, make(rng))
            # A corpus seed or a flipped byte may still be a valid request (a valid seed, a
            # pixel 0 become 5): those may succeed; none may get a 5xx.
            may_succeed = name in ("corpus", "flipped")
            with lock:
                stats["malformed"] += 1
                stats["by_status"][status] = stats["by_status"].get(status, 0) + 1
                if status >= 500 or (200 <= status < 300 and not may_succeed):
                    stats["malformed_2xx_5xx"] += 1
                    print(f"malformed {name} got {status}", flush=True)
            i = rng.randrange(POOL)
            try:
                code, a = server.infer("mnist", {"inputs": [{"name": "input", "datatype": "UINT8",
                                                             "shape": [1, 28, 28],
                                                             "data": digits[i]}]}, conn)
                ok = code == 200 and ss.outputs(a)["logits"]["data"] == want[i]
            except OSError:
                conn.close()
                conn = server.connection(timeout=30)
                ok = False
            with lock:
                stats["valid_ok" if ok else "valid_bad"] += 1

    def slow(k):
        # Half a request, then silence past --timeout-s: the server must drop it.
        rng = random.Random(1000 + k)
        for _ in range(args.slow_clients // 4):
            if time.time() > stop_at:
                break
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            s.sendall(b"POST /v2/models/mnist/infer HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{\"in")
            time.sleep(3 + rng.random())
            s.close()
            with lock:
                stats["slow"] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    threads += [threading.Thread(target=slow, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if server.proc.poll() is not None:
            break
        samples.append((round(time.time() - start, 1), rss_kb(pid)))
        time.sleep(min(5.0, max(1.0, args.seconds / 60)))
    for t in threads:
        t.join(timeout=60)
    alive = server.proc.poll() is None
    samples.append((round(time.time() - start, 1), rss_kb(pid) if alive else 0))
    code = server.stop()
    with open(server.log_path) as f:
        stderr_tail = f.read()[-3000:]
    ref_index = max(1, len(samples) // 5)
    ref = samples[ref_index][1]
    later = [r for _, r in samples[ref_index:]]
    drift = (max(later) / ref - 1, min(later) / ref - 1) if ref else (0, 0)
    ok = (alive and code == 0 and stats["valid_bad"] == 0 and stats["malformed_2xx_5xx"] == 0
          and abs(drift[0]) <= 0.10 and abs(drift[1]) <= 0.10
          and "ERROR: AddressSanitizer" not in stderr_tail)
    print(json.dumps({"seconds": round(time.time() - start, 1), **stats,
                      "rss_kb_samples": samples, "rss_reference_kb": ref,
                      "rss_drift": [round(d, 4) for d in drift], "server_alive": alive,
                      "exit_code": code, "pass": ok}))
    if not ok:
        print(stderr_tail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
