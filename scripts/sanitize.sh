#!/usr/bin/env bash
# The unit, golden and reader tests under AddressSanitizer + UndefinedBehaviorSanitizer: builds
# them with clang in build-asan/ (scripts/asan-build.sh, shared with scripts/fuzz.sh) and runs
# the ctest tests labelled unit, golden and reader there. Any sanitizer report fails its test and
# the run, and so does any skipped test (scripts/check_skips.py). Extra arguments go to ctest
# (e.g. -R Safetensors to run a subset).
#
# Left to scripts/test.sh: the cli tests (whole training runs of the command line, most of an
# hour at -O0 with the sanitizers; the code they run is the library the unit and golden tests
# cover here), the Python and package tests. The parsers get millions of inputs under the same
# sanitizers from the fuzz harnesses (scripts/fuzz.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_dir=${RECUR_ASAN_BUILD_DIR:-$root/build-asan}
RECUR_ASAN_BUILD_DIR=$build_dir bash scripts/asan-build.sh recur_cli recur_unit_tests \
  recur_golden_tests recur_reader_tests

# Leaks count; the first UBSan report stops the process with a stack trace (the build also makes
# UBSan non-recoverable). Child processes (the CLI run by the reader tests) inherit these.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

"$build_dir/recur" data fetch mnist --data "$root/data/mnist"
"$build_dir/recur" data fetch imdb --data "$root/data/imdb"
cd "$build_dir"
status=0
ctest --output-on-failure -j "${RECUR_ASAN_JOBS:-2}" --timeout 1800 -L '^(unit|golden|reader)$' \
  --output-junit "$build_dir/ctest-junit.xml" "$@" || status=$?
python3 "$root/scripts/check_skips.py" "$build_dir/ctest-junit.xml" || status=$((status ? status : 1))
exit "$status"
