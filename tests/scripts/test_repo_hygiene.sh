#!/usr/bin/env bash
# The project stands alone and its main job stays lean:
#  - the main job (scripts/demo.sh) installs only the build and run packages: no PyTorch, no
#    test frameworks; the test command's list adds them;
#  - no tracked file points at the team's shared folder beside the repository (a user's clone
#    does not have it).
# Usage: test_repo_hygiene.sh SOURCE_DIR
set -u
root=${1:?source folder}
cd "$root" || exit 1
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

main=$(bash scripts/install-deps.sh --list) || fail "install-deps.sh --list exited non-zero"
tests=$(bash scripts/install-deps.sh --list --test) || fail "install-deps.sh --list --test exited non-zero"
for p in python3-torch libgtest-dev libbenchmark-dev chromium wrk python3-onnx; do
  grep -qx "$p" <<<"$main" && fail "the main job's packages include $p"
  grep -qx "$p" <<<"$tests" || fail "the test command's packages lack $p"
done
for p in g++ cmake libopenblas-dev libboost-dev npm; do
  grep -qx "$p" <<<"$main" || fail "the main job's packages lack $p"
done
grep -q '^bash scripts/install-deps.sh$' scripts/demo.sh || fail "demo.sh does not call install-deps.sh without --test"
grep -q 'install-deps.sh --test' scripts/test.sh || fail "test.sh does not install the test packages"
bash scripts/install-deps.sh --bogus >/dev/null 2>&1
[[ $? -eq 2 ]] || fail "install-deps.sh accepts an unknown argument"

outside="..""/shared"  # spelled in two parts so that this file does not match itself
refs=$(git grep -l -F "$outside" -- . ':!.ci' 2>/dev/null)
[[ -z "$refs" ]] || fail "files point at $outside: $refs"

echo "$(( failed == 0 ? 1 : 0 )) passed, $failed failed"
exit $(( failed > 0 ))
