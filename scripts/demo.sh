#!/usr/bin/env bash
# The main job: installs dependencies and MNIST if missing, builds recur, trains the LSTM recipe
# on MNIST read row by row, evaluates it on the 10,000 test images and writes the pictures to
# runs/mnist-lstm/. A finished run with the same config is evaluated again, not retrained
# (pass --retrain to train anew).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
bash scripts/build.sh
recur=$root/build/recur
run_dir=$root/runs/mnist-lstm
"$recur" data fetch mnist --data "$root/data/mnist"
if [[ "${1:-}" == --retrain || ! -f "$run_dir/best.safetensors" ]]; then
  "$recur" train --config examples/mnist-lstm.toml --data "$root/data/mnist" --out "$run_dir"
fi
"$recur" eval "$run_dir/best.safetensors" --data "$root/data/mnist" --out "$run_dir"
echo "pictures: $run_dir/curves.png $run_dir/confusion.png $run_dir/misclassified.png $run_dir/correct.png"
