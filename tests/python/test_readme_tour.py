#!/usr/bin/env python3
"""The README cannot rot: every shell command in the README's code blocks (the quick start's
aside, which installs and builds) runs exactly as written, from the root of a scratch copy of
the repository whose build/ is this build and whose data/mnist holds the data the test command
fetched. The test fails when any command exits non-zero, or when the README has no tour left.

Run by ctest:  test_readme_tour.py --cli build/recur --work DIR
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Sections whose commands are not run here: the quick start installs packages and builds; the
# Python section installs the module into the system interpreter's site-packages (outside any
# scratch copy) and trains for minutes; its install and its example are tested by python.install
# and the pytest suite (python/tests).
SKIPPED = {"quick start", "python"}


def readme_commands(text):
    """(section, command) for each command line of the README's sh blocks but SKIPPED's."""
    commands, section, block = [], "", None
    for line in text.splitlines():
        if line.startswith("#") and block is None:
            section = line.lstrip("#").strip()
        if line.startswith("```"):
            if block is None:
                block = line[3:].strip()
            else:
                block = None
            continue
        if block in ("sh", "bash", "console") and section.lower() not in SKIPPED:
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append((section, command))
    return commands


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    build = os.path.dirname(os.path.abspath(a.cli))
    commands = readme_commands(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())
    if len(commands) < 5:
        print(f"FAIL: only {len(commands)} commands found in the README's code blocks")
        return 1

    # A scratch copy of the tracked files, this build as its build/, the fetched MNIST as its data.
    scratch = os.path.join(a.work, "readme-tour")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True).stdout
    for rel in files.decode().split("\0"):
        if not rel or not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        os.makedirs(os.path.join(scratch, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), os.path.join(scratch, rel))
    os.symlink(build, os.path.join(scratch, "build"))
    os.makedirs(os.path.join(scratch, "data"))
    shutil.copytree(os.path.join(ROOT, "data", "mnist"), os.path.join(scratch, "data", "mnist"))
    # IMDb too when the source tree has it (else the README's `data fetch imdb` fetches it).
    if os.path.exists(os.path.join(ROOT, "data", "imdb", "reviews.json")):
        shutil.copytree(os.path.join(ROOT, "data", "imdb"), os.path.join(scratch, "data", "imdb"))

    failed = 0
    for section, command in commands:
        t0 = time.monotonic()
        r = subprocess.run(["bash", "-c", command], cwd=scratch, capture_output=True, text=True,
                           timeout=900)
        took = time.monotonic() - t0
        status = "ok" if r.returncode == 0 else f"exit {r.returncode}"
        print(f"[{section}] {command}  -> {status} ({took:.1f} s)")
        if r.returncode != 0:
            failed += 1
            print("  stdout: " + r.stdout[-2000:].replace("\n", "\n    "))
            print("  stderr: " + r.stderr[-2000:].replace("\n", "\n    "))
    print(f"{len(commands) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
