#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer: builds recur with
# g++ and -DRECUR_SANITIZE=ON in build-asan/ and runs every ctest test there. Any sanitizer
# report fails its test and the run. Extra arguments go to ctest (e.g. -R cli to run a subset).
#
# Debug (-O0 -g, asserts on) by default: on 2 cores it builds and tests in about 3.5 minutes,
# against 8 for RelWithDebInfo (whose -O2 costs more in compile time than it saves in the
# tests); reports carry file and line either way. RECUR_ASAN_BUILD_TYPE picks another.
#
# Left out: the benchmarks (not tests), package.find_package_consumer, which links an
# uninstrumented program against the installed, instrumented library (it runs in scripts/test.sh),
# the tests labelled "long" (the README tour and the framed-digit test train whole models,
# most of an hour at -O0 with the sanitizers; scripts/test.sh runs them), and the Python module
# (RECUR_PYTHON stays off): an ASan-instrumented extension loaded into the uninstrumented python3
# needs libasan preloaded (LD_PRELOAD) and reports the interpreter's own allocations as leaks;
# its tests run in scripts/test.sh.
# Built without MPI (-DRECUR_MPI=OFF), so the mpirun tests (tests/cli/test_cli_mpi.cpp) skip here:
# under LeakSanitizer a bare MPI_Init/MPI_Allreduce/MPI_Finalize program leaks about 120 KB in
# 3,350 allocations per rank (Open MPI 4.1.4), from components Open MPI loads and unloads with
# dlopen, whose stacks end in "<unknown module>" so that no suppression can name them. The
# chunk split that MPI runs rely on is tested here too (tests/train/test_seq_chunks.cpp).
# -Wno-maybe-uninitialized: with the sanitizers g++ 12 warns falsely inside libstdc++ (<regex>).
# Environment: RECUR_ASAN_BUILD_DIR (default build-asan), RECUR_ASAN_BUILD_TYPE (default Debug),
# RECUR_ASAN_JOBS (build and test jobs, default 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --test
build_dir=${RECUR_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${RECUR_ASAN_JOBS:-2}
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${RECUR_ASAN_BUILD_TYPE:-Debug}" \
  -DRECUR_SANITIZE=ON -DRECUR_BENCH=OFF -DRECUR_PYTHON=OFF -DRECUR_MPI=OFF -DCMAKE_CXX_FLAGS=-Wno-maybe-uninitialized >/dev/null
cmake --build "$build_dir" -j "$jobs"

# Leaks count; the first UBSan report stops the process with a stack trace (the build also makes
# UBSan non-recoverable). Child processes (the CLI run by the tests) inherit these.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

"$build_dir/recur" data fetch mnist --data "$root/data/mnist"
cd "$build_dir"
ctest --output-on-failure -j "$jobs" --timeout 1800 -E '^package[.]' -LE long "$@"
