#!/usr/bin/env bash
# The main job: installs dependencies and MNIST if missing, builds recur, trains the LSTM recipe
# on MNIST read row by row, evaluates it on the 10,000 test images and writes the pictures to
# runs/mnist-lstm/. A finished run is evaluated again, not retrained (pass --retrain to train
# anew); an interrupted one is resumed. A new run trains in runs/mnist-lstm.new and replaces the
# old folder only once it has finished, so a failed or interrupted retrain keeps the last run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
# The main job needs only the library and the CLI. A build folder the test command configured
# keeps its tests and benchmarks: turning them off here would only make the next test run
# configure and link them again.
export RECUR_BUILD_DIR=$root/build
if [[ -f build/CMakeCache.txt ]]; then
  bash scripts/build.sh
else
  bash scripts/build.sh -DRECUR_TESTS=OFF -DRECUR_BENCH=OFF
fi
recur=$root/build/recur
run_dir=$root/runs/mnist-lstm
"$recur" data fetch mnist --data "$root/data/mnist"
fresh=$run_dir.new
retrain=false
[[ "${1:-}" == --retrain ]] && retrain=true
finished() { [[ -f "$1/summary.json" && -f "$1/best.safetensors" ]]; }
if ! $retrain && finished "$run_dir"; then
  :  # evaluate the finished run again
elif ! $retrain && [[ -f "$run_dir/resume.safetensors" ]]; then
  "$recur" train --resume "$run_dir"
else
  if [[ -f "$fresh/resume.safetensors" ]] && ! finished "$fresh"; then
    "$recur" train --resume "$fresh"
  elif ! finished "$fresh"; then
    rm -rf "$fresh"
    "$recur" train --config examples/mnist-lstm.toml --data "$root/data/mnist" --out "$fresh"
  fi
  rm -rf "$run_dir"
  mv "$fresh" "$run_dir"
fi
"$recur" eval "$run_dir/best.safetensors" --data "$root/data/mnist" --out "$run_dir"
echo "pictures: $run_dir/curves.png $run_dir/confusion.png $run_dir/misclassified.png $run_dir/correct.png"
