#!/usr/bin/env bash
# The training time of each cell's recipe against the recipe before the training methods joined
# it (no augmentation, no weight averaging; the plain RNN at lr 0.004 for 10 epochs with
# PyTorch's recurrent init), run alternately on the same machine so that both see the same load.
# Prints each run's wall seconds and test accuracy, then the median ratio new / old per cell.
#
# Usage: bash bench/recipe_time.sh [ROUNDS] [RECUR]   (default 1 round, build/recur)
set -euo pipefail
rounds=${1:-1}
recur=${2:-build/recur}
data=${RECUR_DATA:-data/mnist}
[ -x "$recur" ] || { echo "recipe_time: $recur is not an executable (build first)" >&2; exit 2; }
[ -d "$data" ] || { echo "recipe_time: $data is missing (recur data fetch mnist)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

old_flags() {
  local flags="--ema 0 --augment-shift 0 --augment-rotate 0"
  [ "$1" = rnn ] && flags="$flags --lr 0.004 --epochs 10 --init-recurrent pytorch"
  echo "$flags"
}

# run CELL KIND FLAGS... -> "seconds accuracy"
run() {
  local cell=$1 kind=$2
  shift 2
  local out="$work/$cell-$kind"
  rm -rf "$out"
  local t0 t1
  t0=$(date +%s.%N)
  "$recur" train --data "$data" --cell "$cell" --out "$out" "$@" >"$out.log" 2>&1
  t1=$(date +%s.%N)
  local acc
  acc=$(grep -o 'test accuracy [0-9.]*%' "$out.log" | tail -1 | awk '{print $3}')
  echo "$(echo "$t1 - $t0" | bc) $acc"
}

echo "| cell | round | old recipe (s) | old test | new recipe (s) | new test | new / old |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for cell in lstm gru rnn; do
  ratios=()
  for ((r = 1; r <= rounds; r++)); do
    # shellcheck disable=SC2046
    read -r old_s old_acc < <(run "$cell" old $(old_flags "$cell"))
    read -r new_s new_acc < <(run "$cell" new)
    ratio=$(echo "scale=2; $new_s / $old_s" | bc)
    ratios+=("$ratio")
    printf '| %s | %d | %.1f | %s | %.1f | %s | %s |\n' "$cell" "$r" "$old_s" "$old_acc" "$new_s" \
      "$new_acc" "$ratio"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  echo "| $cell | median | | | | | $median |"
done
