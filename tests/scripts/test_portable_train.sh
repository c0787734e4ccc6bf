#!/usr/bin/env bash
# The portable kernels end to end (ctest runs this with RECUR_ISA=portable): a short LSTM
# training run and its evaluation on the baseline copies of the float kernels, and the same run
# on the CPU's own; both must learn, and land within 2 points of each other (the copies compute
# the same sums, rounded differently).
#   test_portable_train.sh RECUR_CLI MNIST_DIR WORK_DIR
set -euo pipefail
cli=$1 data=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
[[ ${RECUR_ISA:-} == portable ]] || { echo "run with RECUR_ISA=portable" >&2; exit 1; }
run() {  # run NAME ISA
  local flags=(--data "$data" --steps 150 --batch 32 --hidden 32 --seed 1 --threads 2 --ema 0
               --augment-shift 0 --augment-rotate 0 --out "$work/$1")
  RECUR_ISA=$2 "$cli" train "${flags[@]}" > "$work/$1.log" 2>&1 || { cat "$work/$1.log"; exit 1; }
  RECUR_ISA=$2 "$cli" eval "$work/$1/last.safetensors" --data "$data" --json > "$work/$1.eval" \
    2> "$work/$1.eval.err" || { cat "$work/$1.eval.err"; exit 1; }
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' "$work/$1.eval"
}
portable=$(run portable portable)
native=$(RECUR_ISA= run native "")
echo "test accuracy after 150 steps: portable $portable, the CPU's own kernels $native"
python3 - "$portable" "$native" <<'PY'
import sys
p, n = map(float, sys.argv[1:])
assert p > 0.5 and n > 0.5, f"a run did not learn: portable {p}, native {n}"
assert abs(p - n) < 0.02, f"the portable kernels land {abs(p - n):.4f} away from the native ones"
PY
