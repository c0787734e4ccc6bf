#!/usr/bin/env bash
# Builds the recur Python module (RECUR_PYTHON=ON, in build/) and installs it into the
# site-packages of Debian's /usr/bin/python3 (/usr/local/lib/python3.X/dist-packages), so that
# `python3 -c "import recur"` works from any folder. Idempotent. Extra arguments go to cmake's
# configure step (e.g. -DRECUR_PYTHON_INSTALL_DIR=DIR to install elsewhere).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
build_dir=${RECUR_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECUR_PYTHON=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target recur_python
cmake --install "$build_dir" --component python
python=$(sed -n 's/^Python3_EXECUTABLE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
(cd / && "${python:-python3}" -c "import recur; print('installed recur', recur.__version__, 'at', recur.__path__[0])")
