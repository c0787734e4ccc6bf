#!/usr/bin/env bash
# Do two recur binaries train the same weights? Trains every MNIST recipe, tutorial config, the
# report's model families, a layer list and (when data/imdb exists) the IMDb recipe for a few
# hundred steps with each binary, then compares every tensor of last.safetensors and
# best.safetensors byte for byte. A refactor that must change no result passes this unchanged.
#
#   bench/same_weights.sh OLD_RECUR NEW_RECUR [STEPS] [NAME...]
#     STEPS  training steps per run (default 200)
#     NAME   only these runs (default: all; see the list printed by --list)
#   bench/same_weights.sh --list
#
# Runs from the repository root; writes under runs/same-weights/ (old/ and new/ per run).
# Prints one line per run (same / DIFFERENT with the first differing tensor) and exits 1 when
# any run differs. Both binaries use 2 threads: weights are bit-identical for one thread count.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# name | arguments of recur train (without --out and --steps) [| more arguments for NEW only]
# The third field states a known, intended change: a layer list's recurrent weights now follow
# --init-recurrent (auto: orthogonal for LSTM and GRU) where earlier builds ignored the init flags
# on a list and drew PyTorch's init; --init-recurrent pytorch gives the new build the old draw.
runs=(
  "lstm|"
  "gru|--cell gru"
  "rnn|--cell rnn"
  "bilstm|--bidirectional"
  "lstm-2layer|--layers 2"
  "bigru-proj-max|--cell gru --layers 2 --bidirectional --projection 64 --pooling max --dropout 0.3 --view cols"
  "mnist-lstm|--config examples/mnist-lstm.toml"
  "mnist-gru|--config examples/mnist-gru.toml"
  "mnist-rnn|--config examples/mnist-rnn.toml"
  "mnist-mlp|--config examples/mnist-mlp.toml"
  "mnist-cnn|--config examples/mnist-cnn.toml"
  "tutorial-000|--config examples/tutorial-000-lstm-projection.toml"
  "tutorial-001|--config examples/tutorial-001-untied-rnn.toml"
  "tutorial-002|--config examples/tutorial-002-rnn.toml"
  "tutorial-003|--config examples/tutorial-003-lstm-projection.toml"
  "tutorial-004|--config examples/tutorial-004-lstm.toml"
  "layer-list|--model 'gru 64 layers=2 dropout=0.2, pool mean, dropout 0.1, linear 32, tanh, linear'|--init-recurrent pytorch"
  "imdb|--config examples/imdb-bilstm.toml --data data/imdb"
  "short-form-as-list||--model 'lstm 128 name=rnn, pool last name=pool, linear name=head'"
)
# Runs that differ on purpose from builds before a known change: they print the reason and do not
# fail the comparison. Image layer lists hold out the first --val images and batch as the short
# form does since the commit "Images keep MNIST's hold-out and batches whatever describes the
# model" (before: a seeded draw and batches by length), so an old build trains them otherwise.
declare -A intended=(
  [mnist-mlp]="image layer list: MNIST's hold-out and batches now"
  [mnist-cnn]="image layer list: MNIST's hold-out and batches now"
  [layer-list]="image layer list: MNIST's hold-out and batches now"
)

if [[ "${1:-}" == --list ]]; then
  for r in "${runs[@]}"; do
    IFS='|' read -r name args extra <<<"$r"
    echo "$name: recur train $args${extra:+ (new build adds: $extra)}"
  done
  exit 0
fi
if (($# < 2)); then
  echo "usage: bench/same_weights.sh OLD_RECUR NEW_RECUR [STEPS] [NAME...]" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
steps=${3:-200}
shift $(($# < 3 ? $# : 3))
only=("$@")
for bin in "$old" "$new"; do
  [[ -x "$bin" ]] || { echo "same_weights: $bin is not an executable" >&2; exit 2; }
done

out=runs/same-weights
differ=0
for r in "${runs[@]}"; do
  IFS='|' read -r name args extra <<<"$r"
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  if [[ "$args" == *data/imdb* && ! -d data/imdb ]]; then
    echo "$name: no data/imdb (recur data fetch imdb), not run"
    continue
  fi
  for side in old new; do
    bin=$old
    more=
    [[ $side == new ]] && bin=$new && more=$extra
    rm -rf "$out/$side/$name"
    mkdir -p "$out/$side"
    if ! eval "\"$bin\" train $args $more --steps $steps --threads 2 --out $out/$side/$name" \
      >"$out/$side/$name.log" 2>&1; then
      echo "$name: the $side binary failed (see $out/$side/$name.log)"
      differ=1
      continue 2
    fi
  done
  if verdict=$(/usr/bin/python3 - "$out/old/$name" "$out/new/$name" <<'EOF'
import json, struct, sys

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}

for file in ("last.safetensors", "best.safetensors"):
    a, b = tensors(f"{sys.argv[1]}/{file}"), tensors(f"{sys.argv[2]}/{file}")
    if a.keys() != b.keys():
        print(f"DIFFERENT: {file} names {sorted(a.keys() ^ b.keys())}")
        sys.exit(1)
    for k in sorted(a):
        if a[k] != b[k]:
            print(f"DIFFERENT: {file} tensor {k}")
            sys.exit(1)
print(f"same ({len(a)} tensors in each file)")
EOF
  ); then
    echo "$name: $verdict"
  elif [[ -n "${intended[$name]:-}" ]]; then
    echo "$name: $verdict (intended against older builds: ${intended[$name]})"
  else
    echo "$name: $verdict"
    differ=1
  fi
done
exit $differ
