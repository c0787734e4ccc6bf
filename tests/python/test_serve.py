#!/usr/bin/env python3
"""`recur serve` end to end on 127.0.0.1 (issue 23's bars):

1. the first 1,000 MNIST test digits (an LSTM on rows) and 1,000 IMDb reviews (a BiLSTM) through
   POST /v2/models/NAME/infer give exactly `recur predict --json`'s labels, logits and
   probabilities;
2. 200 digits sent one by one and by 64 concurrent clients (so that the server joins them into
   batches, which /metrics must show) give bit-identical answers;
3. the 1,000 digits fed 1 to 3 rows per request through streaming sessions, 16 sessions at once
   interleaved (joined by the server into batched steps, which /metrics must show), end bit for
   bit with their solo session runs and within 1e-5 of whole-image inference;
4. a PNG upload is framed as `recur predict` frames it; bad JSON, wrong datatypes and shapes,
   an unknown model, non-UTF-8 text, a body that is not a PNG, streaming a bidirectional model,
   an unknown sequence, a body over the limit (also chunked), a missing token, a request that is
   not HTTP and a head over 64 KiB each get their 4xx with a JSON error naming the field, and
   the server keeps serving; Expect: 100-continue is answered;
5. SIGTERM stops it (exit code 0) after it logged one line per request.

Run by ctest:  test_serve.py --cli build/recur --work DIR
"""
import argparse
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_support as ss  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": "Bearer " + TOKEN}
N_DIGITS, N_REVIEWS, N_ALONE, CLIENTS, SESSIONS = 1000, 1000, 200, 64, 16


def png_gray(path, pixels, width, height):
    raw = b"".join(b"\x00" + bytes(pixels[r * width:(r + 1) * width]) for r in range(height))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                                    0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def predict_json(cli, args, stdin=None):
    p = subprocess.run([cli, "predict", *args, "--json"], input=stdin, capture_output=True,
                       text=True)
    assert p.returncode == 0, f"recur predict failed: {p.stderr}"
    return json.loads(p.stdout)


def in_parallel(count, work):
    """Runs work(k) on `count` threads; re-raises the first failure."""
    errors = []

    def run(k):
        try:
            work(k)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def check_digits_and_reviews(server, cli, mnist, imdb, digits, failures):
    idx = os.path.join(ss.MNIST, "t10k-images-idx3-ubyte")
    want = predict_json(cli, [mnist, idx, "--index", ",".join(map(str, range(N_DIGITS))),
                              "--top", "10"])
    got = [None] * N_DIGITS

    def send(k):  # 4 clients, 50 digits a request
        conn = server.connection()
        for start in range(k * 50, N_DIGITS, 200):
            status, a = server.infer("mnist", {"inputs": [{"name": "input", "datatype": "UINT8",
                                                           "shape": [50, 28, 28],
                                                           "data": digits[start:start + 50]}]},
                                     conn, AUTH)
            assert status == 200, a
            o = ss.outputs(a)
            for i in range(50):
                got[start + i] = (o["labels"]["data"][i], o["logits"]["data"][i * 10:i * 10 + 10],
                                  o["probabilities"]["data"][i * 10:i * 10 + 10])
        conn.close()

    in_parallel(4, send)
    bad = 0
    for i, w in enumerate(want):
        probs = [0.0] * 10
        for t in w["top"]:
            probs[t["class"]] = t["probability"]
        if got[i] != (w["prediction"], w["logits"], probs):
            bad += 1
    if bad:
        failures.append(f"{bad} of {N_DIGITS} digits differ from recur predict --json")

    texts = [t.replace("\n", " ").replace("\r", " ") for t, _ in ss.reviews(N_REVIEWS, cli)]
    want = predict_json(cli, [imdb], stdin="\n".join(texts) + "\n")
    assert len(want) == N_REVIEWS, len(want)
    bad = 0
    for start in range(0, N_REVIEWS, 100):
        status, a = server.infer("imdb", {"inputs": [{"name": "input", "datatype": "BYTES",
                                                      "shape": [100],
                                                      "data": texts[start:start + 100]}]},
                                 headers=AUTH)
        assert status == 200, a
        o = ss.outputs(a)
        for i in range(100):
            w = want[start + i]
            if (o["labels"]["data"][i] != w["class"]
                    or o["probabilities"]["data"][2 * i:2 * i + 2] != w["probabilities"]):
                bad += 1
    if bad:
        failures.append(f"{bad} of {N_REVIEWS} reviews differ from recur predict --json")
    return want


def batch_samples_count(server):
    status, text = server.get("/metrics", AUTH)
    assert status == 200
    counts = {}
    for line in text.decode().splitlines():
        if line.startswith('recur_batch_samples_bucket{model="mnist",le="1"}'):
            counts["le1"] = int(line.split()[-1])
        if line.startswith('recur_batch_samples_count{model="mnist"}'):
            counts["all"] = int(line.split()[-1])
    return counts


def check_batch_independence(server, digits, failures):
    alone = []
    conn = server.connection()
    for i in range(N_ALONE):
        status, a = server.infer("mnist", {"inputs": [{"name": "input", "datatype": "UINT8",
                                                       "shape": [1, 28, 28], "data": digits[i]}]},
                                 conn, AUTH)
        assert status == 200, a
        alone.append(ss.outputs(a)["logits"]["data"])
    conn.close()
    before = batch_samples_count(server)
    work = queue.Queue()
    for i in range(N_ALONE):
        work.put(i)
    together = [None] * N_ALONE
    barrier = threading.Barrier(CLIENTS)

    def client(_):
        conn = server.connection()
        barrier.wait()
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                break
            status, a = server.infer("mnist", {"inputs": [{"name": "input", "datatype": "UINT8",
                                                           "shape": [1, 28, 28],
                                                           "data": digits[i]}]}, conn, AUTH)
            assert status == 200, a
            together[i] = ss.outputs(a)["logits"]["data"]
        conn.close()

    in_parallel(CLIENTS, client)
    after = batch_samples_count(server)
    passes = after["all"] - before["all"]
    singles = after["le1"] - before["le1"]
    if passes >= N_ALONE or singles == passes:
        failures.append(f"64 concurrent clients were never batched ({passes} forward passes, "
                        f"{singles} of one sample, for {N_ALONE} requests)")
    differ = sum(1 for a, b in zip(alone, together) if a != b)
    if differ:
        failures.append(f"{differ} of {N_ALONE} digits answered differently alone and batched")
    print(f"batching: {N_ALONE} requests of 64 clients ran in {passes} forward passes")


def session_batches(server):
    """(batched steps, steps of one session) of the mnist model so far, from /metrics."""
    status, text = server.get("/metrics", AUTH)
    assert status == 200
    counts = [0, 0]
    for line in text.decode().splitlines():
        if line.startswith('recur_session_batch_sessions_count{model="mnist"}'):
            counts[0] = int(line.split()[-1])
        if line.startswith('recur_session_batch_sessions_bucket{model="mnist",le="1"}'):
            counts[1] = int(line.split()[-1])
    return counts


def check_streaming(server, digits, whole, failures):
    """Each digit fed through a session alone (one request of 28 rows, no other session open),
    then all of them 16 sessions at once, interleaved, each request carrying the next 1 to 3
    rows: the server joins concurrent sessions' rows into batched steps, and every session must
    end bit for bit where its solo run ended (and within 1e-5 of whole-image inference)."""
    solo = []
    conn = server.connection()
    for i in range(N_DIGITS):
        status, a = server.infer("mnist", {
            "inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 28, 28],
                        "data": digits[i]}],
            "parameters": {"sequence_id": f"solo-{i}", "sequence_start": True,
                           "sequence_end": True}}, conn, AUTH)
        assert status == 200, a
        solo.append(ss.outputs(a)["logits"]["data"])
    conn.close()
    before = session_batches(server)
    final = [None] * N_DIGITS
    sent = [0] * SESSIONS

    def session(k):
        conn = server.connection()
        for i in range(k, N_DIGITS, SESSIONS):
            r, piece = 0, 0
            while r < 28:
                n = min(1 + (k + i + piece) % 3, 28 - r)
                body = {"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, n, 28],
                                    "data": digits[i][r * 28:(r + n) * 28]}],
                        "parameters": {"sequence_id": 1000 + i, "sequence_start": r == 0,
                                       "sequence_end": r + n == 28}}
                status, a = server.infer("mnist", body, conn, AUTH)
                assert status == 200, a
                assert a["parameters"]["sequence_steps"] == r + n, a["parameters"]
                r, piece = r + n, piece + 1
                sent[k] += 1
            final[i] = ss.outputs(a)["logits"]["data"]
        conn.close()

    in_parallel(SESSIONS, session)
    after = session_batches(server)
    steps, singles = after[0] - before[0], after[1] - before[1]
    if steps >= sum(sent) or singles == steps:
        failures.append(f"16 concurrent sessions were never batched ({steps} batched steps, "
                        f"{singles} of one session, for {sum(sent)} requests)")
    differ = sum(1 for a, b in zip(final, solo) if a != b)
    if differ:
        failures.append(f"{differ} of {N_DIGITS} sessions fed among others differ from their "
                        "solo run")
    worst = max(abs(a - b) for i in range(N_DIGITS) for a, b in zip(final[i], whole[i]["logits"]))
    if worst > 1e-5:
        failures.append(f"streamed logits differ from whole-image ones by up to {worst:g}")
    print(f"streaming: {N_DIGITS} digits, {sum(sent)} requests of 1-3 rows in {steps} batched "
          f"steps ({singles} of one session), worst logit gap to whole images {worst:g}")
    return N_DIGITS + sum(sent)


def expect_error(failures, what, got, status, field, reason_part=""):
    code, answer = got
    if code != status or not isinstance(answer, dict) or answer.get("field") != field \
            or reason_part not in answer.get("error", ""):
        failures.append(f"{what}: expected {status} naming {field} ({reason_part}), got {code} "
                        f"{answer}")


def raw(server, path, body, headers):
    status, data, _ = server.request("POST", path, body, headers)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data


def raw_exchange(port, pieces, pause=0.0):
    """Sends the byte strings in `pieces` on one new connection (pausing between them), then
    reads until the server closes or 5 s pass; returns every status line's code and the last
    answer's body."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
                s.settimeout(0.5)
                try:
                    data += s.recv(65536)
                except socket.timeout:
                    pass
                s.settimeout(5)
            s.sendall(piece)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        s.close()
    codes = [int(line.split(b" ")[1]) for line in data.split(b"\r\n")
             if line.startswith(b"HTTP/1.1 ")]
    body = data.rsplit(b"\r\n\r\n", 1)[-1]
    try:
        return codes, json.loads(body)
    except ValueError:
        return codes, body


def check_http_layer(server, digits, failures):
    """What the HTTP layer answers itself: not HTTP, a head over 64 KiB, a chunked body over the
    limit, Expect: 100-continue, HEAD; each refusal as JSON naming the field."""
    def expect(what, got, codes, field):
        have, answer = got
        if have != codes or not isinstance(answer, dict) or answer.get("field") != field:
            failures.append(f"{what}: expected statuses {codes} naming {field}, got {have} "
                            f"{answer}")

    expect("not HTTP", raw_exchange(server.port, [b"HELLO THERE\r\n\r\n"]), [400], "request")
    big_head = (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (70 << 10)
                + b"\r\n\r\n")
    expect("a 70 KiB head", raw_exchange(server.port, [big_head]), [431], "headers")
    chunk = b"%x\r\n" % (256 << 10) + b" " * (256 << 10) + b"\r\n"
    chunked = [b"POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
               b"\r\nContent-Type: application/json\r\nAuthorization: " +
               AUTH["Authorization"].encode() + b"\r\n\r\n"] + [chunk] * 6 + [b"0\r\n\r\n"]
    expect("a chunked body over --max-body-mb", raw_exchange(server.port, chunked), [413], "body")
    body = json.dumps({"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 28, 28],
                                   "data": digits[0]}]}).encode()
    head = (b"POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\nAuthorization: " +
            AUTH["Authorization"].encode() + b"\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n")
    got = raw_exchange(server.port, [b"HEAD /v2/health/live HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n"])
    if got != ([200], b""):
        failures.append(f"HEAD: expected a 200 head without a body, got {got}")
    codes, answer = raw_exchange(server.port, [head, body], pause=0.3)
    if codes != [100, 200] or ss.outputs(answer)["labels"]["data"] != [ss.read_idx_labels(1)[0]]:
        failures.append(f"Expect: 100-continue: got {codes} {answer}")


def check_errors(server, work, cli, mnist, digits, failures):
    jh = {"Content-Type": "application/json", **AUTH}
    img = {"name": "input", "datatype": "UINT8", "shape": [1, 28, 28], "data": digits[0]}
    expect_error(failures, "bad JSON", raw(server, "/v2/models/mnist/infer", b"{\"inputs\": [", jh),
                 400, "body", "not valid JSON")
    expect_error(failures, "FP32 to a text model",
                 server.infer("imdb", {"inputs": [{**img, "datatype": "FP32"}]}, headers=AUTH),
                 400, "inputs[0].datatype", "BYTES")
    expect_error(failures, "a wrong shape",
                 server.infer("mnist", {"inputs": [{**img, "shape": [1, 28, 27]}]}, headers=AUTH),
                 400, "inputs[0].shape", "[N, 28, 28]")
    expect_error(failures, "too few elements",
                 server.infer("mnist", {"inputs": [{**img, "data": digits[0][:100]}]},
                              headers=AUTH), 400, "inputs[0].data", "100 elements")
    expect_error(failures, "a pixel of 256",
                 server.infer("mnist", {"inputs": [{**img, "data": [256] + digits[0][1:]}]},
                              headers=AUTH), 400, "inputs[0].data", "0..255")
    expect_error(failures, "an unknown model", server.infer("nope", {"inputs": [img]},
                                                            headers=AUTH), 404, "model", "nope")
    bad_utf8 = b'{"inputs":[{"name":"input","datatype":"BYTES","shape":[1],"data":["ab\xff"]}]}'
    expect_error(failures, "non-UTF-8 text", raw(server, "/v2/models/imdb/infer", bad_utf8, jh),
                 400, "body", "invalid UTF-8 at byte")
    expect_error(failures, "an empty text",
                 server.infer("imdb", {"inputs": [{"name": "input", "datatype": "BYTES",
                                                   "shape": [1], "data": [" "]}]}, headers=AUTH),
                 400, "inputs[0].data", "whitespace")
    expect_error(failures, "a picture that is not a PNG",
                 raw(server, "/v2/models/mnist/infer", b"GIF89a....",
                     {"Content-Type": "image/png", **AUTH}), 400, "body", "not a PNG")
    expect_error(failures, "streaming a bidirectional model",
                 server.infer("imdb", {"inputs": [{"name": "input", "datatype": "BYTES",
                                                   "shape": [1], "data": ["good"]}],
                                       "parameters": {"sequence_id": 5, "sequence_start": True}},
                              headers=AUTH), 400, "parameters.sequence_id", "bidirectional")
    expect_error(failures, "an unknown sequence",
                 server.infer("mnist", {"inputs": [{**img, "shape": [1, 1, 28],
                                                    "data": digits[0][:28]}],
                                        "parameters": {"sequence_id": 99}}, headers=AUTH),
                 400, "parameters.sequence_id", "not open")
    huge = b'{"inputs": [' + b" " * (2 << 20) + b"]}"
    expect_error(failures, "a body over --max-body-mb", raw(server, "/v2/models/mnist/infer",
                                                             huge, jh), 413, "body", "limit")
    expect_error(failures, "no token", server.infer("mnist", {"inputs": [img]}), 401,
                 "Authorization", "Bearer")
    expect_error(failures, "a wrong token",
                 server.infer("mnist", {"inputs": [img]}, headers={"Authorization": "Bearer x"}),
                 401, "Authorization", "Bearer")
    if server.get("/v2/health/live")[0] != 200:
        failures.append("the health check needs a token")
    check_http_layer(server, digits, failures)
    # A PNG upload is framed as recur predict frames a picture.
    png = os.path.join(work, "digit.png")
    png_gray(png, [255 - p for p in digits[3]], 28, 28)  # dark ink on light paper
    want = predict_json(cli, [mnist, png])[0]
    with open(png, "rb") as f:
        status, a = raw(server, "/v2/models/mnist/infer", f.read(),
                        {"Content-Type": "image/png", **AUTH})
    if status != 200 or ss.outputs(a)["logits"]["data"] != want["logits"]:
        failures.append(f"the PNG upload's answer differs from recur predict: {status} {a}")
    status, meta = server.get("/v2/models/mnist", AUTH)
    meta = json.loads(meta)
    if status != 200 or meta["inputs"][0]["shape"] != [-1, 28, 28] or \
            meta["inputs"][0]["datatype"] != "UINT8" or len(meta["outputs"]) != 3:
        failures.append(f"model metadata: {status} {meta}")
    # Still serving after every refusal.
    status, a = server.infer("mnist", {"inputs": [img]}, headers=AUTH)
    if status != 200 or ss.outputs(a)["labels"]["data"] != [ss.read_idx_labels(1)[0]]:
        failures.append(f"after the refusals a valid request got {status} {a}")


def check_int8(cli, work, mnist, digits, failures):
    """`recur serve --precision int8`: a second server on the MNIST LSTM answers 100 digits as
    `recur predict --precision int8 --json` does, bit for bit, and a digit fed row by row through
    a session ends on its whole-image int8 logits exactly (both read the pixel bytes); a bad
    precision is refused with exit 2 naming the flag."""
    n = 100
    server = ss.Server(cli, [f"mnist={mnist}", "--precision", "int8", "--quiet"],
                       os.path.join(work, "serve-int8.log"))
    try:
        idx = os.path.join(ss.MNIST, "t10k-images-idx3-ubyte")
        want = predict_json(cli, [mnist, idx, "--index", ",".join(map(str, range(n))),
                                  "--top", "10", "--precision", "int8"])
        status, a = server.infer("mnist", {"inputs": [{"name": "input", "datatype": "UINT8",
                                                       "shape": [n, 28, 28],
                                                       "data": [p for d in digits[:n] for p in d]}]})
        assert status == 200, a
        o = ss.outputs(a)
        bad = 0
        for i, w in enumerate(want):
            probs = [0.0] * 10
            for t in w["top"]:
                probs[t["class"]] = t["probability"]
            if (o["labels"]["data"][i], o["logits"]["data"][i * 10:i * 10 + 10],
                    o["probabilities"]["data"][i * 10:i * 10 + 10]) != (w["prediction"],
                                                                       w["logits"], probs):
                bad += 1
        if bad:
            failures.append(f"int8: {bad} of {n} digits differ from recur predict --precision "
                            "int8 --json")
        fp32 = predict_json(cli, [mnist, idx, "--index", ",".join(map(str, range(n)))])
        if all(f["logits"] == w["logits"] for f, w in zip(fp32, want)):
            failures.append("int8: the server's logits are fp32's bits (int8 did not run)")
        for i in range(3):
            for r in range(28):
                status, a = server.infer("mnist", {
                    "inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 1, 28],
                                "data": digits[i][r * 28:(r + 1) * 28]}],
                    "parameters": {"sequence_id": f"int8-{i}", "sequence_start": r == 0,
                                   "sequence_end": r == 27}})
                assert status == 200, a
            if ss.outputs(a)["logits"]["data"] != want[i]["logits"]:
                failures.append(f"int8: digit {i} streamed row by row ends off its whole logits")
    finally:
        code = server.stop()
    if code != 0:
        failures.append(f"int8: SIGTERM: the server exited with {code}")
    p = subprocess.run([cli, "serve", mnist, "--precision", "fp16", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 2 or "--precision" not in p.stderr:
        failures.append(f"serve --precision fp16: exit {p.returncode}, {p.stderr.strip()!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    cli = os.path.abspath(args.cli)
    work = os.path.abspath(os.path.join(args.work, "serve"))
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    mnist, imdb = ss.trained_models(cli, os.path.abspath(args.work))
    digits = ss.read_idx_images(N_DIGITS)
    failures = []
    streamed = [0]
    started = time.time()
    server = ss.Server(cli, [f"mnist={mnist}", f"imdb={imdb}", "--token", TOKEN,
                             "--max-body-mb", "1", "--max-batch", "64", "--max-delay-us", "3000"],
                       os.path.join(work, "serve.log"))
    try:
        idx = os.path.join(ss.MNIST, "t10k-images-idx3-ubyte")
        phases = [("protocol", lambda: check_digits_and_reviews(server, cli, mnist, imdb, digits,
                                                                failures)),
                  ("batching", lambda: check_batch_independence(server, digits, failures)),
                  ("streaming", lambda: streamed.__setitem__(
                      0, check_streaming(server, digits, whole, failures))),
                  ("errors", lambda: check_errors(server, work, cli, mnist, digits, failures))]
        whole = predict_json(cli, [mnist, idx, "--index", ",".join(map(str, range(N_DIGITS)))])
        for name, phase in phases:
            t0 = time.time()
            phase()
            print(f"{name}: {time.time() - t0:.1f} s")
    finally:
        code = server.stop()
    if code != 0:
        failures.append(f"SIGTERM: the server exited with {code}")
    with open(server.log_path) as f:
        log = f.read()
    t0 = time.time()
    check_int8(cli, work, mnist, digits, failures)
    print(f"int8: {time.time() - t0:.1f} s")
    posts = sum(1 for line in log.splitlines() if line.startswith("POST /v2/models/"))
    expected = 20 + 10 + 2 * N_ALONE + streamed[0]
    if posts < expected or "recur serve: stopped" not in log:
        failures.append(f"the log holds {posts} infer lines (>= {expected} expected) "
                        f"and {'a' if 'stopped' in log else 'no'} stop line")
    print(f"test_serve: {time.time() - started:.1f} s")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
