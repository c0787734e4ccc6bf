#!/usr/bin/env bash
# Two or more recur builds taking turns on one `recur bench` measurement: on a shared or virtual
# machine the speed moves by 10-20% within minutes, so builds timed minutes apart cannot be
# compared; taking turns round by round, each sees the same weather.
#
#   bench/ab_train.sh ROUNDS "BENCH ARGUMENTS" RECUR_A RECUR_B [RECUR_C...]
#   e.g. bench/ab_train.sh 8 "--mode train --cell lstm --hidden 256 --batch 128 --threads 2
#        --steps 80" /tmp/recur-before build/recur
#
# Prints each build's samples/s per round, then its median and maximum and the median's ratio to
# the first build's. The first number `recur bench` prints with "samples/s" is the one taken
# (train: median step; infer: median call).
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
rounds=$1
args=$2
shift 2
for b in "$@"; do
  [ -x "$b" ] || { echo "ab_train.sh: $b: not an executable recur build" >&2; exit 2; }
done
for ((i = 1; i <= rounds; i++)); do
  for b in "$@"; do
    # shellcheck disable=SC2086  # the bench arguments are words
    out=$("$b" bench $args) || { echo "ab_train.sh: $b bench $args failed" >&2; exit 1; }
    v=$(grep -oE '[0-9]+ samples/s' <<<"$out" | head -n 1 | grep -oE '^[0-9]+' || true)
    [ -n "$v" ] || { echo "ab_train.sh: no samples/s in the output of $b bench $args" >&2; exit 1; }
    echo "round $i $b $v"
  done
done | /usr/bin/env python3 -c '
import collections, statistics, sys
runs = collections.OrderedDict()
for line in sys.stdin:
    print(line.rstrip(), "samples/s", flush=True)
    _, _, build, value = line.split()
    runs.setdefault(build, []).append(float(value))
first = None
for build, values in runs.items():
    median = statistics.median(values)
    first = first or median
    print(f"{build}: median {median:,.0f} max {max(values):,.0f} samples/s, "
          f"{median / first:.3f} of the first build")
'
