"""Shared fixtures: the recur command line, MNIST and small models trained by the command line.

Run by ctest (python/CMakeLists.txt) with PYTHONPATH on the build tree's package and RECUR_CLI,
RECUR_DATA, RECUR_TEST_WORK set; by hand: PYTHONPATH=build/python RECUR_CLI=build/recur
RECUR_DATA=data/mnist python3 -m pytest python/tests
"""

import fnmatch
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import recur

ROOT = Path(__file__).resolve().parents[2]


# A skip fails the run unless RECUR_ALLOW_SKIPS allows it (`PATTERN: reason` entries over test
# ids, one per line or separated by ';'; scripts/check_skips.py reads the same variable for
# ctest), so that no test stops running unseen.
_skips = []


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skips.append((report.nodeid, reason))


def _allowed(nodeid):
    for entry in os.environ.get("RECUR_ALLOW_SKIPS", "").replace(";", "\n").splitlines():
        pattern, _, reason = entry.strip().partition(": ")
        if pattern.strip() and reason.strip() and fnmatch.fnmatchcase(nodeid, pattern.strip()):
            return reason.strip()
    return None


def pytest_terminal_summary(terminalreporter):
    for nodeid, reason in _skips:
        why = _allowed(nodeid)
        if why is None:
            terminalreporter.write_line(f"SKIPPED (not allowed): {nodeid}: {reason}")
        else:
            terminalreporter.write_line(f"skipped (allowed: {why}): {nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and any(_allowed(nodeid) is None for nodeid, _ in _skips):
        session.exitstatus = 1


def env_path(name, default):
    return Path(os.environ.get(name, default)).resolve()


@pytest.fixture(scope="session")
def cli():
    path = env_path("RECUR_CLI", ROOT / "build" / "recur")
    assert path.is_file(), f"recur command line not found at {path} (set RECUR_CLI)"
    return str(path)


@pytest.fixture(scope="session")
def data_dir():
    path = env_path("RECUR_DATA", ROOT / "data" / "mnist")
    assert path.is_dir(), f"MNIST not found in {path} (build/recur data fetch mnist)"
    return str(path)


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    base = os.environ.get("RECUR_TEST_WORK")
    if not base:
        return tmp_path_factory.mktemp("work")
    path = Path(base)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="session")
def mnist(data_dir):
    return recur.datasets.mnist(data_dir)


def run_cli(cli, *args):
    """Runs the command line; returns stdout. Fails the test with stderr on a non-zero exit."""
    r = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"recur {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}"
    return r.stdout


# Small models the command line trains once per session: (name, train flags).
CLI_MODELS = {
    "gru_rows": ["--cell", "gru", "--hidden", "16", "--view", "rows"],
    "lstm_cols_bi": ["--cell", "lstm", "--hidden", "12", "--view", "cols", "--bidirectional",
                     "--layers", "2", "--pooling", "mean"],
    "rnn_permuted_proj": ["--cell", "rnn", "--hidden", "8", "--view", "permuted",
                          "--view-seed", "7", "--projection", "4"],
}


@pytest.fixture(scope="session", params=sorted(CLI_MODELS))
def cli_model(request, cli, data_dir, work):
    """A checkpoint trained by `recur train` for a few steps: (name, path)."""
    name = request.param
    out = work / f"cli-{name}"
    run_cli(cli, "train", *CLI_MODELS[name], "--steps", "20", "--batch", "32", "--val", "200",
            "--train-limit", "2000", "--threads", "1", "--data", data_dir, "--out", out)
    return name, out / "last.safetensors"


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)} and the metadata of a safetensors file."""
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {k: (v["dtype"], tuple(v["shape"]), data[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in header.items()}
    return tensors, meta
