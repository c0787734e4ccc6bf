#!/usr/bin/python3
"""recur against PyTorch on MNIST read as sequences, each measurement in its own process.

    /usr/bin/python3 bench/compare.py                      # lstm, gru, rnn; 5 rounds
    /usr/bin/python3 bench/compare.py --rounds 3 --write   # and rewrite bench/RESULTS.md
    /usr/bin/python3 bench/compare.py --config lstm:256:64:1

A config is CELL:HIDDEN:BATCH:THREADS. For every config and round, `recur bench` and
bench/peers/torch_rnn.py run alternately (recur first in even rounds, PyTorch first in odd ones)
in modes train, infer and latency; `recur bench --mode sgemm` gives the BLAS rate to put recur's
effective GFLOP/s against. The table shows the median over rounds of each process's own median.
PyTorch runs twice: at its best setting here (OpenBLAS on one thread under torch's two; the
ratios of the first column) and stock, as Debian ships it and as issue 5 measured it (OpenBLAS
on as many threads as torch, oversubscribing the cores). The bars are checked against both.
Peak RSS is per process (getrusage in the process; wait4 from here agrees). A `recur train` run
of the MNIST LSTM (--steps 50, with its validation pass and checkpoints) is measured for the
peak-RSS bar. Must run with /usr/bin/python3 (the Python that has torch).
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(HERE, "peers", "torch_rnn.py")
RESULTS = os.path.join(HERE, "RESULTS.md")

# Issue 5's bars: training samples/s ratio per cell, inference ratio, latency and RSS limits.
TRAIN_BARS = {"lstm": 6.0, "gru": 6.0, "rnn": 4.0}
INFER_BAR_LSTM = 8.0
LATENCY_BAR_US = 150.0
TRAIN_RSS_BAR_MB = 200.0
# Issue 21's bar across sizes: LSTM training >= 5x PyTorch best at hidden 64, 256, 512 and 1024
# (batch 128, 128, 64, 32); hidden 128, batch 128 keeps issue 5's 6x.
SIZE_TRAIN_BARS = {("lstm", 64, 128): 5.0, ("lstm", 256, 128): 5.0, ("lstm", 512, 64): 5.0,
                   ("lstm", 1024, 32): 5.0}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", action="append", default=None,
                   help="CELL:HIDDEN:BATCH:THREADS, repeatable (default lstm, gru, rnn at 128:128:2)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement")
    p.add_argument("--steps", type=int, default=30, help="timed steps (or inference calls)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data", default=os.path.join(ROOT, "data", "mnist"))
    p.add_argument("--recur", default=None, help="the recur binary (default: build-bench/recur "
                   "or build/recur under the repository)")
    p.add_argument("--modes", default="train,infer,latency")
    p.add_argument("--no-train-rss", action="store_true", help="skip the `recur train` RSS run")
    p.add_argument("--write", action="store_true", help="rewrite bench/RESULTS.md")
    p.add_argument("--quiet-cores", type=float, default=0.25,
                   help="before each measurement, wait until other processes use fewer cores")
    p.add_argument("--quiet-wait", type=float, default=120,
                   help="longest wait for that, in seconds (then measure anyway and warn)")
    p.add_argument("--imdb", action="store_true",
                   help="measure the IMDb BiLSTM instead (bench/imdb_bench.py); with --write its "
                   "section at the end of bench/RESULTS.md is replaced")
    p.add_argument("--imdb-data", default=os.path.join(ROOT, "data", "imdb"))
    p.add_argument("--torch-steps", type=int, default=4,
                   help="--imdb: timed steps of PyTorch on packed sequences")
    p.add_argument("--save", metavar="FILE", help="also write every process's JSON result here")
    args = p.parse_args(argv)
    args.config = args.config or ["lstm:128:128:2", "gru:128:128:2", "rnn:128:128:2"]
    args.modes = [m for m in args.modes.split(",") if m]
    for m in args.modes:
        if m not in ("train", "infer", "latency"):
            p.error(f"unknown mode {m!r} (train, infer, latency)")
    if args.rounds < 1:
        p.error("--rounds must be positive")
    if args.recur is None:
        for candidate in ("build-bench/recur", "build/recur"):
            if os.access(os.path.join(ROOT, candidate), os.X_OK):
                args.recur = os.path.join(ROOT, candidate)
                break
        else:
            p.error("no recur binary found; build it or pass --recur")
    return args


def parse_config(text):
    parts = text.split(":")
    if len(parts) != 4:
        sys.exit(f"compare.py: config {text!r} is not CELL:HIDDEN:BATCH:THREADS")
    return {"cell": parts[0], "hidden": int(parts[1]), "batch": int(parts[2]),
            "threads": int(parts[3])}


def run_process(cmd):
    """Runs cmd, returns (stdout, rusage from wait4). Exits on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"compare.py: {shlex.join(cmd)} failed ({proc.returncode}):\n{stderr}")
    return stdout, usage


# PyTorch's two settings: OpenBLAS threads under torch.set_num_threads(THREADS).
PEERS = {"pytorch": "1", "pytorch_stock": "THREADS"}


def bench_command(impl, args, cfg, mode):
    opts = ["--mode", mode, "--cell", cfg["cell"], "--hidden", str(cfg["hidden"]),
            "--batch", str(cfg["batch"]), "--threads", str(cfg["threads"]),
            "--steps", str(args.steps), "--warmup", str(args.warmup), "--data", args.data,
            "--json"]
    if impl == "recur":
        return [args.recur, "bench"] + opts
    blas = PEERS[impl].replace("THREADS", str(cfg["threads"]))
    return ["/usr/bin/python3", PEER, "--blas-threads", blas] + opts


def cpu_times():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(window=1.0):
    """How many cores other processes kept busy over the last `window` seconds."""
    busy0, total0 = cpu_times()
    time.sleep(window)
    busy1, total1 = cpu_times()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


class Quiet:
    """Before each measurement: waits (up to `wait` s) until other processes use less than
    `limit` cores, and records how busy the machine was. The 1-minute load average would also
    count this script's own previous measurement, so it is recorded but not used to decide."""

    def __init__(self, limit, wait):
        self.limit, self.wait = limit, wait
        self.busy, self.during, self.loads = [], [], []
        self.kept = []  # `during` of the measurements that made it into the tables
        self.retried = 0

    def settle(self):
        deadline = time.monotonic() + self.wait
        busy = busy_cores()
        while busy > self.limit and time.monotonic() < deadline:
            busy = busy_cores(2.0)
        self.busy.append(busy)
        self.loads.append(os.getloadavg()[0])
        return busy

    def run(self, cmd):
        """settle(), then runs cmd and records the cores other processes used meanwhile: the
        machine's busy CPU time less the child's own (from wait4), over the wall time."""
        self.settle()
        busy0, _ = cpu_times()
        t0 = time.monotonic()
        stdout, usage = run_process(cmd)
        wall = time.monotonic() - t0
        busy1, _ = cpu_times()
        machine = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
        self.during.append(max(0.0, (machine - usage.ru_utime - usage.ru_stime) / wall))
        return stdout, usage

    def summary(self):
        kept = self.kept or [0.0]
        return (f"cores used by other processes during the measurements kept: median "
                f"{statistics.median(kept):.2f}, max {max(kept):.2f} (of {os.cpu_count()}); "
                f"{self.retried} measurements repeated because a neighbour took more than "
                f"{self.limit:g} core; 1-minute load average (this script's own runs included) "
                f"{min(self.loads):.2f} to {max(self.loads):.2f}")

    def was_quiet(self):
        """Quiet when at most one measurement in ten was kept with a busy neighbour (the
        medians over rounds absorb that)."""
        busy = sum(1 for d in self.kept if d > self.limit)
        return busy * 10 <= len(self.kept)


def measure(cmd, quiet, retries=3):
    """One measurement; repeated (up to `retries` times) while other processes took more than
    the quiet limit of cores during it, so that a neighbour's burst does not land in a median."""
    for _ in range(retries + 1):
        stdout, usage = quiet.run(cmd)
        if quiet.during[-1] <= quiet.limit:
            break
        quiet.retried += 1
    quiet.kept.append(quiet.during[-1])
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wait4_rss_mb"] = usage.ru_maxrss / 1024.0
    result["busy_cores_before"] = quiet.busy[-1]
    result["other_cores_during"] = quiet.during[-1]
    return result


def median_of(results, key):
    values = [r[key] for r in results if key in r]
    return statistics.median(values) if values else float("nan")


def fmt(value, digits=0):
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def machine():
    model, cores = "unknown CPU", os.cpu_count()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model, cores


def versions(recur):
    import torch  # only for its version string

    out = subprocess.run([recur, "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return (out or "recur") + (f" (git {git})" if git else ""), torch.__version__


def main_imdb(args):
    import imdb_bench
    if not os.path.exists(os.path.join(args.imdb_data, "reviews.json")):
        sys.exit("compare.py: no reviews.json in " + args.imdb_data + " (recur data fetch imdb)")
    quiet = Quiet(args.quiet_cores, args.quiet_wait)
    rows = imdb_bench.run(args, lambda cmd: quiet.run(cmd))
    model, cores = machine()
    section = imdb_bench.table(rows, args, f"{model}, {cores} cores")
    print(section)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(rows, f, indent=1)
    if args.write:
        old = open(RESULTS).read() if os.path.exists(RESULTS) else ""
        at = old.find("\n## IMDb BiLSTM")
        text = (old[:at] if at >= 0 else old.rstrip("\n") + "\n") + "\n" + section
        tmp = RESULTS + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, RESULTS)
        print(f"wrote {os.path.relpath(RESULTS, ROOT)}", file=sys.stderr)
    return 0


def main(argv):
    args = parse_args(argv)
    if args.imdb:
        return main_imdb(args)
    configs = [parse_config(c) for c in args.config]
    quiet = Quiet(args.quiet_cores, args.quiet_wait)
    results = {}  # (config index, impl, mode) -> [result per round]
    sgemm = {}  # threads -> [result per round]
    started = datetime.datetime.now()
    for r in range(args.rounds):
        impls = ["recur"] + list(PEERS)
        order = impls[r % len(impls):] + impls[:r % len(impls)]  # each goes first in turn
        for k, cfg in enumerate(configs):
            for mode in args.modes:
                for impl in order:
                    res = measure(bench_command(impl, args, cfg, mode), quiet)
                    results.setdefault((k, impl, mode), []).append(res)
                    print(f"round {r + 1}/{args.rounds} {args.config[k]} {mode:7} {impl:7} "
                          f"other cores before {quiet.busy[-1]:.2f} during {quiet.during[-1]:.2f}",
                          file=sys.stderr)
        for threads in sorted({c["threads"] for c in configs}):
            cmd = [args.recur, "bench", "--mode", "sgemm", "--threads", str(threads), "--json"]
            sgemm.setdefault(threads, []).append(measure(cmd, quiet))

    train_rss = None
    train_rss_cmd = None
    if not args.no_train_rss:
        tmp = tempfile.mkdtemp(prefix="recur-rss-")
        try:
            cmd = [args.recur, "train", "--cell", "lstm", "--hidden", "128", "--steps", "50",
                   "--threads", str(configs[0]["threads"]), "--data", args.data,
                   "--out", os.path.join(tmp, "run")]
            _, usage = quiet.run(cmd)
            train_rss = usage.ru_maxrss / 1024.0
            shown = [os.path.relpath(a, ROOT) if os.path.isabs(a) else a for a in cmd[:-2]]
            train_rss_cmd = "/usr/bin/time -f %M " + shlex.join(shown + ["--out", "runs/rss"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.save:
        raw = [r for rs in list(results.values()) + list(sgemm.values()) for r in rs]
        raw.append({"mode": "train_rss", "command": train_rss_cmd, "peak_rss_mb": train_rss})
        with open(args.save, "w") as f:
            json.dump(raw, f, indent=1)

    # The comparison table.
    head = ("| config | metric | recur | PyTorch best | recur/best | PyTorch stock | recur/stock "
            "| bar |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---|"]

    def ratio_of(rv, tv):
        return rv / tv if tv == tv and tv and rv == rv else float("nan")

    def row(name, metric, rv, tv, sv, digits=0, bar=""):
        lines.append(f"| {name} | {metric} | {fmt(rv, digits)} | {fmt(tv, digits)} | "
                     f"{fmt(ratio_of(rv, tv), 2)} | {fmt(sv, digits)} | {fmt(ratio_of(rv, sv), 2)} "
                     f"| {bar} |")

    def ratio_bar(rv, tv, sv, factor):
        return (f">= {factor:g}x: vs best {check(rv >= factor * tv)}, "
                f"vs stock {check(rv >= factor * sv)}")

    def check(ok):
        return "met" if ok else "not met"

    for k, cfg in enumerate(configs):
        name = args.config[k]
        cell = "rnn" if cfg["cell"] in ("rnn", "rnn_tanh") else cfg["cell"]
        size_bar = SIZE_TRAIN_BARS.get((cell, cfg["hidden"], cfg["batch"]))
        # Issue 5's bars are set for hidden 128, batch 128; other configs show issue 21's size
        # bar where it has one.
        if (cfg["hidden"], cfg["batch"]) != (128, 128):
            cell = "other"
        get = lambda impl, mode, key: median_of(results.get((k, impl, mode), []), key)
        three = lambda mode, key: [get(impl, mode, key) for impl in ["recur"] + list(PEERS)]
        if "train" in args.modes:
            rv, tv, sv = three("train", "train_samples_per_s")
            bar = TRAIN_BARS.get(cell, size_bar)
            row(name, "train samples/s (median step)", rv, tv, sv, 0,
                ratio_bar(rv, tv, sv, bar) if bar else "")
            rv, tv, sv = three("train", "train_samples_per_s_total")
            row(name, "train samples/s (total)", rv, tv, sv, 0,
                ratio_bar(rv, tv, sv, bar) if bar else "")
            row(name, "train peak RSS MB", *three("train", "peak_rss_mb"), 1)
        if "infer" in args.modes:
            rv, tv, sv = three("infer", "infer_samples_per_s")
            bar = ratio_bar(rv, tv, sv, INFER_BAR_LSTM) if cell == "lstm" else ""
            row(name, "infer samples/s, batch 1000", rv, tv, sv, 0, bar)
            row(name, "infer peak RSS MB", *three("infer", "peak_rss_mb"), 1)
        if "latency" in args.modes:
            rv, tv, sv = three("latency", "latency_us_median")
            bar = f"<= {LATENCY_BAR_US:g} us: {check(rv <= LATENCY_BAR_US)}" if cell == "lstm" else ""
            row(name, "batch-1 latency us (median)", rv, tv, sv, 1, bar)
    table = "\n".join(lines)

    # Effective GFLOP/s against the sgemm rate.
    glines = ["| config | GFLOP/step | recur GFLOP/s | PyTorch best GFLOP/s | sgemm 1 thread | "
              "sgemm N threads | recur / sgemm N |", "|---|---:|---:|---:|---:|---:|---:|"]
    if "train" in args.modes:
        for k, cfg in enumerate(configs):
            rg = median_of(results[(k, "recur", "train")], "effective_gflops")
            tg = median_of(results[(k, "pytorch", "train")], "effective_gflops")
            s1 = median_of(sgemm[cfg["threads"]], "sgemm_gflops_1t")
            sn = median_of(sgemm[cfg["threads"]], "sgemm_gflops_mt")
            glines.append(f"| {args.config[k]} | {fmt(median_of(results[(k, 'recur', 'train')], 'gflop_per_step'), 3)} "
                          f"| {fmt(rg, 1)} | {fmt(tg, 1)} | {fmt(s1, 1)} | {fmt(sn, 1)} ({cfg['threads']}) "
                          f"| {fmt(100 * rg / sn, 0)}% |")
    gtable = "\n".join(glines)

    rss_line = ""
    if train_rss is not None:
        rss_line = (f"Peak RSS of a real `recur train` of the MNIST LSTM (50 steps, then validation "
                    f"and checkpoints): **{train_rss:.1f} MB** (bar <= {TRAIN_RSS_BAR_MB:g} MB: "
                    f"{check(train_rss <= TRAIN_RSS_BAR_MB)}).\nCommand: `{train_rss_cmd}`")
    load_line = quiet.summary()
    was_quiet = quiet.was_quiet()
    command = "/usr/bin/python3 bench/compare.py " + " ".join(shlex.quote(a) for a in argv)

    print(table)
    print()
    if "train" in args.modes:
        print(gtable)
        print()
    if rss_line:
        print(rss_line)
    print(load_line + ("" if was_quiet else "  (WARNING: busy machine, numbers are not reliable)"))

    if args.write:
        model, cores = machine()
        recur_version, torch_version = versions(args.recur)
        text = f"""# recur against PyTorch: results

Written by `bench/compare.py --write`; see bench/README.md for what each number means.

- Machine: {model}, {cores} cores (`lscpu`); {load_line}{'' if was_quiet else ' - the machine was busy, treat the numbers as rough'}
- Date: {started.strftime('%Y-%m-%d %H:%M')}
- Versions: {recur_version}, PyTorch {torch_version} (Debian python3-torch, OpenBLAS)
- Command: `{command.strip()}`
- Each cell is the median over {args.rounds} rounds (recur, PyTorch best and PyTorch stock taking
  turns to go first, one process per measurement) of that process's median over {args.steps} timed
  steps after {args.warmup} warm-up steps ("total" rows: all timed samples over the total time).
- PyTorch best: OpenBLAS on 1 thread under torch.set_num_threads(N), its fastest setting here.
  PyTorch stock: OpenBLAS on N threads as well, its default as Debian ships it, which is how
  issue 5 measured its baseline (about 1,200 LSTM training samples/s).

## Speed and memory

{table}

## Effective GFLOP/s of a training step against the machine's sgemm

GEMM FLOPs of one step (forward 2·S·B·(I+H)·G·H, backward 2·S·B·(I+2H)·G·H, head 6·B·H·C)
divided by the median step time; sgemm is 2048³ through OpenBLAS, single-threaded per thread,
rows split over N threads.

{gtable}

## Peak RSS of training

{rss_line or 'not measured (--no-train-rss)'}
"""
        # Hand-written notes at the end of the file (from a "## Notes" heading on) are kept.
        if os.path.exists(RESULTS):
            with open(RESULTS) as f:
                old = f.read()
            at = old.find("\n## Notes")
            if at >= 0:
                text += old[at:]
        tmp = RESULTS + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, RESULTS)
        print(f"wrote {os.path.relpath(RESULTS, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
