#!/usr/bin/env bash
# Training step time in fp32 against bf16 (`--precision bf16`), measured alternately so that both
# see the same load on a shared machine, ROUNDS rounds of one fp32 and one bf16 run each, for
# each cell: `recur bench --mode train` (MNIST rows, batch 128, hidden 128, 2 threads; its median
# step), then the recipe itself, `recur train --cell CELL --steps 5*STEPS` (augmentation, weight
# average, clipping, Adam; its summary.json's training seconds). Prints every run's figure and
# the medians' ratio fp32 / bf16.
#
# RECUR_CELLS (default "lstm gru") may add imdb: the IMDb BiLSTM recipe's steps (recipe only).
#
# Usage: bash bench/bf16_train.sh [ROUNDS] [STEPS] [RECUR]   (default 7 rounds of 40 steps)
# Needs a CPU with AVX512_BF16 (the bf16 runs exit 2 elsewhere).
set -euo pipefail
rounds=${1:-7}
steps=${2:-40}
recur=${3:-build/recur}
cells=${RECUR_CELLS:-lstm gru}
[ -x "$recur" ] || { echo "bf16_train: $recur is not an executable (build first)" >&2; exit 2; }

# step_ms CELL PRECISION -> the run's median step time in ms
step_ms() {
  "$recur" bench --mode train --cell "$1" --precision "$2" --steps "$steps" --threads 2 --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["step_ms_median"])'
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two reviews to test the IMDb runs on: the timing is of training, not of the 25,000-review test.
printf '1\ta fine film\n0\ta dull film\n' >"$work/test.tsv"

# train_s CELL PRECISION -> seconds of training (no test pass) of 5*STEPS recipe steps; cell imdb
# is the IMDb BiLSTM recipe (recur train --data imdb).
train_s() {
  rm -rf "$work/run"
  local model=(--cell "$1")
  [ "$1" = imdb ] && model=(--data imdb --test-data "$work/test.tsv")
  "$recur" train "${model[@]}" --precision "$2" --steps $((5 * steps)) --threads 2 \
    --out "$work/run" >/dev/null
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["train_seconds"])' \
    "$work/run/summary.json"
}

median() {
  python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"
}

echo "| measure | fp32, each round | bf16, each round | fp32 median | bf16 median | fp32 / bf16 |"
echo "|---|---|---|---:|---:|---:|"
for cell in $cells; do
  whats="step recipe"
  [ "$cell" = imdb ] && whats=recipe  # recur bench trains on MNIST only
  for what in $whats; do
    fp32=()
    bf16=()
    for ((r = 0; r < rounds; ++r)); do
      if [ "$what" = step ]; then
        fp32+=("$(step_ms "$cell" fp32)")
        bf16+=("$(step_ms "$cell" bf16)")
      else
        fp32+=("$(train_s "$cell" fp32)")
        bf16+=("$(train_s "$cell" bf16)")
      fi
    done
    f=$(median "${fp32[@]}")
    b=$(median "${bf16[@]}")
    label="$cell bench step (ms)"
    [ "$what" = recipe ] && label="$cell recipe, $((5 * steps)) steps (s)"
    printf '| %s | %s | %s | %.2f | %.2f | %.2fx |\n' "$label" \
      "$(printf '%.2f ' "${fp32[@]}")" "$(printf '%.2f ' "${bf16[@]}")" "$f" "$b" \
      "$(python3 -c "print($f / $b)")"
  done
done
