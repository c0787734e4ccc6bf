#!/usr/bin/env bash
# The sanitizer build, shared by scripts/sanitize.sh and scripts/fuzz.sh: configures build-asan/
# with clang, AddressSanitizer + UndefinedBehaviorSanitizer (RECUR_SANITIZE) and the libFuzzer
# harnesses (RECUR_FUZZ), and builds the targets given as arguments (default: all). One folder,
# one instrumented library: the unit, golden and reader tests and the fuzz harnesses link the
# same objects, and each script builds only what it runs.
#
# Debug (-O0 -g, asserts on) by default; RECUR_ASAN_BUILD_TYPE picks another (RelWithDebInfo
# for long fuzz runs). Built without Python (an instrumented extension needs libasan preloaded
# into python3) and without MPI (Open MPI's dlopen'ed components leak under LeakSanitizer in
# stacks no suppression can name; the mpirun tests run in scripts/test.sh).
# Environment: RECUR_ASAN_BUILD_DIR (default build-asan), RECUR_ASAN_BUILD_TYPE (default Debug),
# RECUR_ASAN_JOBS (build jobs, default 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
RECUR_FUZZ_DEPS=1 bash scripts/install-deps.sh --test
build_dir=${RECUR_ASAN_BUILD_DIR:-$root/build-asan}
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${RECUR_ASAN_BUILD_TYPE:-Debug}" \
  -DCMAKE_CXX_COMPILER=clang++ -DRECUR_SANITIZE=ON -DRECUR_FUZZ=ON -DRECUR_TESTS=ON \
  -DRECUR_BENCH=OFF -DRECUR_PYTHON=OFF -DRECUR_MPI=OFF >/dev/null
targets=()
if (($# > 0)); then targets=(--target "$@"); fi
cmake --build "$build_dir" -j "${RECUR_ASAN_JOBS:-2}" "${targets[@]}"
