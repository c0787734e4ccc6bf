#!/usr/bin/env bash
# Builds recur's libFuzzer harnesses with clang (ASan + UBSan) in build-asan/, the sanitizer build
# it shares with scripts/sanitize.sh (scripts/asan-build.sh), and runs each one in turn, one
# process at a time, on a copy of its committed seed corpus (tests/fuzz/corpus/NAME).
#
#   scripts/fuzz.sh [SECONDS] [RUNS] [HARNESS...]
#     SECONDS  time per harness (default 10); 0 = no time limit (then RUNS must be given)
#     RUNS     executions per harness (default: no limit); the first limit reached ends a harness
#     HARNESS  idx safetensors toml_config image model_json text npy infer_request (default: all)
#
# CI smoke: `scripts/fuzz.sh 5`. Long run: `scripts/fuzz.sh 0 1000000`. Prints a line per harness
# with its executions, time and result, and exits non-zero when any harness reports a crash, a
# hang, a leak, an out-of-memory or a sanitizer error; the input that caused it is kept under
# build-asan/artifacts/NAME/ and the log under build-asan/logs/NAME.log. Inputs that found new
# coverage go to build-asan/corpus/NAME/ (kept between runs, never committed automatically).
# Environment: RECUR_ASAN_BUILD_DIR (default build-asan), RECUR_ASAN_JOBS (build jobs, default 2),
# RECUR_ASAN_BUILD_TYPE (default Debug; RelWithDebInfo runs a long fuzz run faster).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

seconds=${1:-10}
runs=${2:-}
shift $(($# < 2 ? $# : 2))
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then harnesses=(idx safetensors toml_config image model_json text npy infer_request); fi
if [[ "$seconds" == 0 && -z "$runs" ]]; then
  echo "fuzz.sh: give a time limit or a number of runs" >&2
  exit 2
fi

build_dir=${RECUR_ASAN_BUILD_DIR:-$root/build-asan}
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
RECUR_ASAN_BUILD_DIR=$build_dir bash scripts/asan-build.sh "${targets[@]}"

# Leaks are findings; UBSan stops at its first report (the build also makes it abort).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=0
printf '%-12s %12s %9s  %s\n' harness executions seconds result
for h in "${harnesses[@]}"; do
  corpus=$build_dir/corpus/$h
  artifacts=$build_dir/artifacts/$h
  log=$build_dir/logs/$h.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  args=(-timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$artifacts/")
  [[ "$seconds" != 0 ]] && args+=("-max_total_time=$seconds")
  [[ -n "$runs" ]] && args+=("-runs=$runs")
  dict=$root/tests/fuzz/dict/$h.dict
  [[ -f "$dict" ]] && args+=("-dict=$dict")
  start=$(date +%s.%N)
  status=0
  "$build_dir/tests/fuzz/fuzz_$h" "${args[@]}" "$corpus" "$root/tests/fuzz/corpus/$h" \
    >"$log" 2>&1 || status=$?
  elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  execs=$(awk '/stat::number_of_executed_units/ { n = $NF } END { print n }' "$log")
  if ((status == 0)) && ! grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|recur fuzz finding' "$log"; then
    result="ok: no crash, hang, leak or sanitizer report"
  else
    failed=1
    what=$(grep -m1 -oE 'ERROR: [A-Za-z]+: [^(]*|runtime error: .*|recur fuzz finding: .*' "$log" || true)
    result="FAILED (exit $status): ${what:-see $log}; inputs in $artifacts"
  fi
  printf '%-12s %12s %9s  %s\n' "$h" "${execs:-?}" "$elapsed" "$result"
done
if ((failed)); then
  echo "fuzz.sh: a harness reported a problem; logs under $build_dir/logs" >&2
  exit 1
fi
