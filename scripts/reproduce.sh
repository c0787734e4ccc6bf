#!/usr/bin/env bash
# Trains every example config, evaluates each on the 10,000 MNIST test images and prints the
# README's results table (markdown) to stdout and runs/RESULTS.md. About 20 minutes on 2 cores.
# Usage: bash scripts/reproduce.sh [config-name ...]   (default: every MNIST config in examples/,
# mnist-*.toml and tutorial-*.toml; the IMDb config has its own command in the README)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh -DRECUR_TESTS=OFF -DRECUR_BENCH=OFF >/dev/null
recur=$root/build/recur
"$recur" data fetch mnist --data data/mnist >/dev/null
names=("$@")
if ((${#names[@]} == 0)); then
  for f in examples/mnist-*.toml examples/tutorial-*.toml; do names+=("$(basename "$f" .toml)"); done
fi
mkdir -p runs/reproduce
table="| config | test accuracy | misclassified | best validation | training wall time | training samples/s |
|---|---|---|---|---|---|"
for name in "${names[@]}"; do
  out=runs/reproduce/$name
  rm -rf "$out"
  "$recur" train --config "examples/$name.toml" --data data/mnist --out "$out" >"$out.log" 2>&1 || {
    echo "$name: training failed, see $out.log" >&2; exit 1; }
  "$recur" eval "$out/best.safetensors" --data data/mnist --json >"$out.eval.json"
  row=$(/usr/bin/env python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
e = json.load(open(out + ".eval.json"))
s = json.load(open(out + "/summary.json"))
name = out.split("/")[-1]
# Runs of the short form and of a --model layer list name their timings differently.
wall = s.get("wall_seconds", s.get("train_seconds"))
speed = s.get("train_samples_per_second", s.get("samples_per_second"))
print(f"| {name} | {100 * e['accuracy']:.2f}% | {e['misclassified']} | {100 * s['best_val_accuracy']:.2f}% "
      f"| {wall:.0f} s | {speed:.0f} |")
PY
)
  echo "$row" >&2
  table+=$'\n'"$row"
done
printf '%s\n' "$table" | tee runs/RESULTS.md
