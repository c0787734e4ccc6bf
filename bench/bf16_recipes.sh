#!/usr/bin/env bash
# The recipes trained in fp32 and in bf16 (`recur train --precision bf16`), one after the other
# with the same seed: the MNIST LSTM (`recur train`), GRU (`--cell gru`) and the IMDb BiLSTM
# (`--data imdb`). Prints each run's test accuracy, test loss and training seconds (summary.json)
# and the accuracy difference bf16 - fp32 in points. Run folders go to OUT/<model>-<precision>.
#
# Usage: bash bench/bf16_recipes.sh [OUT] [RECUR]   (default runs/bf16-recipes, build/recur)
# RECUR_MODELS picks the models (default "lstm gru imdb"). Needs a CPU with AVX512_BF16.
set -euo pipefail
out=${1:-runs/bf16-recipes}
recur=${2:-build/recur}
models=${RECUR_MODELS:-lstm gru imdb}
[ -x "$recur" ] || { echo "bf16_recipes: $recur is not an executable (build first)" >&2; exit 2; }
mkdir -p "$out"

flags() {
  case $1 in
    lstm) echo "" ;;
    gru) echo "--cell gru" ;;
    imdb) echo "--data imdb" ;;
  esac
}

# "accuracy loss seconds" of a finished run folder
summary() {
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1] + "/summary.json"))
print(s["test_accuracy"], s["test_loss"], s["train_seconds"])' "$1"
}

echo "| model | fp32 test | bf16 test | bf16 - fp32 (points) | fp32 loss | bf16 loss | fp32 train s | bf16 train s | fp32 / bf16 time |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for model in $models; do
  for p in fp32 bf16; do
    dir="$out/$model-$p"
    rm -rf "$dir"
    # shellcheck disable=SC2046
    "$recur" train $(flags "$model") --precision "$p" --out "$dir" >"$dir.log" 2>&1
  done
  read -r fa fl fs <<<"$(summary "$out/$model-fp32")"
  read -r ba bl bs <<<"$(summary "$out/$model-bf16")"
  python3 -c 'import sys
m, fa, fl, fs, ba, bl, bs = sys.argv[1], *map(float, sys.argv[2:])
print(f"| {m} | {100*fa:.2f}% | {100*ba:.2f}% | {100*(ba-fa):+.2f} | {fl:.4f} | {bl:.4f} | {fs:.1f} | {bs:.1f} | {fs/bs:.2f}x |")' \
    "$model" "$fa" "$fl" "$fs" "$ba" "$bl" "$bs"
done
