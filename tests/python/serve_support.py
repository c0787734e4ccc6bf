"""Shared by the `recur serve` tests (test_serve*.py): two trained models, a server started on
a free loopback port and stopped by the test, and small HTTP helpers.

The models are trained once per build of the binary (the folder's name carries the binary's size
and time; a lock serializes test processes started together):
  mnist.safetensors  an LSTM 128 on MNIST's rows (1,500 steps of 64: ~98% on the test digits)
  imdb.safetensors   a BiLSTM 32 (embedding 32, max pooling) on IMDb (600 steps of 64)
"""
import fcntl
import http.client
import json
import os
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST = os.path.join(ROOT, "data", "mnist")
IMDB = os.path.join(ROOT, "data", "imdb")

MNIST_ARGS = ["--hidden", "128", "--steps", "1500", "--batch", "64", "--val", "1000",
              "--eval-batch", "1000", "--display-step", "500", "--threads", "1"]
IMDB_ARGS = ["--model", "embedding 32, lstm 32 bidirectional, pool max, linear", "--vocab", "8000",
             "--max-len", "200", "--steps", "600", "--batch", "64", "--val", "500",
             "--eval-batch", "500", "--display-step", "200", "--threads", "1"]


def trained_models(cli, work):
    """(mnist_model, imdb_model) paths, trained once per binary."""
    st = os.stat(cli)
    key = f"{st.st_size}-{st.st_mtime_ns}"
    root = os.path.join(work, "serve-models")
    os.makedirs(root, exist_ok=True)
    folder = os.path.join(root, key)
    with open(os.path.join(root, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = os.path.join(folder, "done")
        if not os.path.exists(done):
            subprocess.run(["rm", "-rf", root + "/" + "x"], check=False)
            for name in os.listdir(root):
                if name not in ("lock", key):
                    subprocess.run(["rm", "-rf", os.path.join(root, name)], check=True)
            os.makedirs(folder, exist_ok=True)
            for name, data, args in (("mnist", MNIST, MNIST_ARGS), ("imdb", IMDB, IMDB_ARGS)):
                out = os.path.join(folder, name + "-run")
                subprocess.run(["rm", "-rf", out], check=True)
                p = subprocess.run([cli, "train", "--data", data, *args, "--out", out],
                                   capture_output=True, text=True)
                assert p.returncode == 0, f"training {name} failed: {p.stderr}"
                os.replace(os.path.join(out, "best.safetensors"),
                           os.path.join(folder, name + ".safetensors"))
            open(done, "w").close()
    return os.path.join(folder, "mnist.safetensors"), os.path.join(folder, "imdb.safetensors")


class Server:
    """`recur serve ARGS --port 0` on 127.0.0.1; the port is read from its first line."""

    def __init__(self, cli, args, log_path, timeout=60):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([cli, "serve", *args, "--host", "127.0.0.1", "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        first = self.proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, f"serve said: {first!r}"
        self.port = int(first.strip().rsplit(":", 1)[1])
        self.banner = first
        # The rest of stdout (the models, one line per request) goes to the log file.
        self._pump = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.get("/v2/health/ready")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the server never became ready")

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or self.connection()
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, r
        finally:
            if own:
                conn.close()

    def get(self, path, headers=None):
        status, data, _ = self.request("GET", path, headers=headers)
        return status, data

    def infer(self, model, body, conn=None, headers=None):
        status, data, _ = self.request("POST", f"/v2/models/{model}/infer", body, headers, conn)
        return status, json.loads(data) if data else None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig; returns the exit code (the server must stop by itself)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = "killed after a timeout"
        self._pump.wait(timeout=10)
        self.log.close()
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def outputs(answer):
    return {o["name"]: o for o in answer["outputs"]}


def read_idx_images(count):
    with open(os.path.join(MNIST, "t10k-images-idx3-ubyte"), "rb") as f:
        f.read(16)
        data = f.read(count * 784)
    return [list(data[i * 784:(i + 1) * 784]) for i in range(count)]


def read_idx_labels(count):
    with open(os.path.join(MNIST, "t10k-labels-idx1-ubyte"), "rb") as f:
        f.read(8)
        return list(f.read(count))


def reviews(count, cli):
    """The first `count` test reviews of recur's IMDb split (text, label), the split `recur train
    --data imdb` tests on, read through the Python module built beside `cli` (build/python)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(cli)), "python"))
    import recur
    _, (texts, labels) = recur.datasets.imdb(IMDB)
    return list(zip(texts[:count], [int(y) for y in labels[:count]]))
