#!/usr/bin/env bash
# The whole test suite: installs dependencies and MNIST if missing, builds with warnings as
# errors, and runs every test through ctest. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --test
# Data-parallel training under mpirun (RECUR_MPI) is built and tested where OpenMPI is installed
# (install-deps --test installs it).
mpi=OFF
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then mpi=ON; fi
RECUR_BUILD_DIR=${RECUR_BUILD_DIR:-$root/build} bash scripts/build.sh -DRECUR_WERROR=ON \
  -DRECUR_TESTS=ON -DRECUR_BENCH=ON -DRECUR_PYTHON=ON -DRECUR_MPI=$mpi
build_dir=${RECUR_BUILD_DIR:-$root/build}
"$build_dir/recur" data fetch mnist --data "$root/data/mnist"
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" --timeout 900
