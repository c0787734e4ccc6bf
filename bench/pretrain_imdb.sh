#!/usr/bin/env bash
# IMDb with and without language-model pretraining (issue 22, item 2): recur pretrain on the
# training reviews (forward + backward LM), then recur train --init-from, against the plain
# recipe; wall time of each stage and the test accuracy of each classifier. Long: about 25
# minutes on the project's 2-core machine when it is quiet (check `uptime` first).
#   bash bench/pretrain_imdb.sh [OUT_DIR] [extra recur pretrain flags...]
# Tuning on held-out training reviews instead of the test set: VAL=2500 bash bench/...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
recur=${RECUR:-$root/build/recur}
out=${1:-$root/runs/bench-pretrain}
shift || true
val=${VAL:-0}
mkdir -p "$out"
rm -rf "$out/lm" "$out/init" "$out/plain"
seconds() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
t0=$(date +%s.%N)
"$recur" pretrain --data imdb --out "$out/lm" --batch 64 "$@"
t1=$(date +%s.%N)
"$recur" train --data imdb --val "$val" --init-from "$out/lm/lm.safetensors" --out "$out/init"
t2=$(date +%s.%N)
"$recur" train --data imdb --val "$val" --out "$out/plain"
t3=$(date +%s.%N)
python3 - "$out" "$t0" "$t1" "$t2" "$t3" "$val" <<'PY'
import json, sys
out, t0, t1, t2, t3, val = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6]
lm = json.load(open(f"{out}/lm/summary.json"))
init = json.load(open(f"{out}/init/summary.json"))
plain = json.load(open(f"{out}/plain/summary.json"))
key = "best_val_accuracy" if val != "0" else "test_accuracy"
print(f"pretrain: {t1 - t0:.0f} s, held-out perplexity forward {lm['holdout_perplexity_forward']:.1f}"
      f" backward {lm['holdout_perplexity_backward']:.1f}")
print(f"init-from: {key} {100 * init[key]:.2f}%, train {t2 - t1:.0f} s, total {t2 - t0:.0f} s")
print(f"plain:     {key} {100 * plain[key]:.2f}%, train {t3 - t2:.0f} s")
PY
