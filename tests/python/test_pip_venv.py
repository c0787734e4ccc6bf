#!/usr/bin/env python3
"""`pip install .` into a fresh virtual environment, then the README's Python section there.

From a scratch copy of the tracked files: creates a venv of Debian's /usr/bin/python3 (with the
system's site-packages, for NumPy), runs `pip install --no-build-isolation --no-index .` with the
venv's pip (setup.py builds the module with CMake for the venv's interpreter), checks that
`import recur` now loads the venv's installed copy from any folder, and runs the README's
```python block of the section "Python" line by line in that interpreter. The README's trainings
run 10 epochs; here each `recur.train(` call gets `steps=20, val=200, train_limit=2000` added
(keywords the README documents), and `runs/gru/best.safetensors`, which the README's tour
trains, comes from a 20-step `recur train --cell gru`. Everything else runs as written.

Run by ctest:  test_pip_venv.py --cli build/recur --work DIR
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = "steps=20, val=200, train_limit=2000, "


def readme_python_block(text):
    """The lines of the first ```python block under the README's "## Python" heading."""
    section = text.split("\n## Python\n", 1)
    if len(section) != 2:
        return None
    body = section[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", body, re.S)
    return match.group(1).splitlines() if match else None


def run(cmd, **kw):
    print("$", " ".join(map(str, cmd)), flush=True)
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print(r.stdout[-4000:])
        print(r.stderr[-4000:])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    cli = os.path.abspath(a.cli)
    python = "/usr/bin/python3"
    lines = readme_python_block(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())
    if not lines or not any("recur.train(" in line for line in lines):
        print("FAIL: no ```python block with recur.train( under the README's '## Python'")
        return 1

    # A scratch copy of the tracked files: pip builds in the source folder it is given.
    work = os.path.join(a.work, "pip-venv")
    shutil.rmtree(work, ignore_errors=True)
    src = os.path.join(work, "src")
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                           check=True).stdout
    for rel in files.decode().split("\0"):
        if rel and os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(src, rel))

    venv = os.path.join(work, "venv")
    if run([python, "-m", "venv", "--system-site-packages", venv]).returncode != 0:
        print("FAIL: python3 -m venv failed (Debian: python3-venv)")
        return 1
    vpy = os.path.join(venv, "bin", "python")
    # The build's objects match the test build's (warnings as errors), so ccache serves them.
    env = dict(os.environ, RECUR_PIP_CMAKE_ARGS="-DRECUR_WERROR=ON")
    env.pop("PYTHONPATH", None)
    r = run([vpy, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps", src],
            env=env, timeout=1200)
    if r.returncode != 0:
        print("FAIL: pip install . into the venv failed")
        return 1

    # Where the README runs it: a folder with data/mnist, examples/ and the tour's runs/gru.
    scratch = os.path.join(work, "readme")
    os.makedirs(os.path.join(scratch, "data"))
    os.symlink(os.path.join(ROOT, "data", "mnist"), os.path.join(scratch, "data", "mnist"))
    shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(scratch, "examples"))
    r = run([cli, "train", "--cell", "gru", "--steps", "20", "--val", "200", "--train-limit",
             "2000", "--out", "runs/gru"], cwd=scratch)
    if r.returncode != 0:
        print("FAIL: recur train for runs/gru failed")
        return 1

    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = run([vpy, "-c", "import recur, sys; print(recur.__file__); print(sys.prefix)"], cwd="/",
            env=clean)
    site = os.path.realpath(venv)
    if r.returncode != 0 or not os.path.realpath(r.stdout.split("\n")[0]).startswith(site):
        print(f"FAIL: import recur does not load the venv's copy: {r.stdout}{r.stderr}")
        return 1

    script = []
    for line in lines:
        if "recur.train(" in line:
            line = re.sub(r"recur\.train\(([^,]+), ([^,]+), ", r"recur.train(\1, \2, " + SMALL,
                          line)
            if SMALL not in line:
                print(f"FAIL: cannot add {SMALL!r} to: {line}")
                return 1
        script.append(line)
    program = "\n".join(script) + "\n"
    print(program)
    r = run([vpy, "-c", program], cwd=scratch, env=clean, timeout=900)
    if r.returncode != 0:
        print("FAIL: the README's Python section failed in the venv")
        return 1
    print(r.stdout[-2000:])
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
