#!/usr/bin/env bash
# Installs what recur's build, tests and benchmarks need, from Debian's packages.
# Idempotent: packages already installed are skipped, and nothing is fetched when all are there.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libopenblas-dev zlib1g-dev libpng-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev
  nodejs npm
  python3 python3-numpy python3-torch
  libopenmpi-dev openmpi-bin
)
if [[ "${RECUR_FUZZ_DEPS:-0}" == 1 ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$p" == npm || "$p" == nodejs ]] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
