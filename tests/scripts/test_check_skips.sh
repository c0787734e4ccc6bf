#!/usr/bin/env bash
# scripts/check_skips.py fails a run with a skipped test, passes it when RECUR_ALLOW_SKIPS allows
# that test with a reason, and prints the reason the test gave.
# Usage: test_check_skips.sh SOURCE_DIR WORK_DIR
set -u
root=${1:?source folder}
work=${2:?work folder}
mkdir -p "$work"
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { python3 "$root/scripts/check_skips.py" "$@"; }

cat >"$work/skipped.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="recur" tests="2" failures="0" disabled="0" skipped="1">
	<testcase name="Fetch.Works" classname="Fetch.Works" time="0.1" status="run">
		<system-out>[       OK ] Fetch.Works</system-out>
	</testcase>
	<testcase name="FetchImdb.RealFile" classname="FetchImdb.RealFile" time="0.0" status="notrun">
		<skipped message="SKIP_REGULAR_EXPRESSION_MATCHED"/>
		<system-out>tests/data/test_text.cpp:423: Skipped
IMDb is not in data/imdb
[  SKIPPED ] FetchImdb.RealFile (0 ms)</system-out>
	</testcase>
</testsuite>
XML
sed -e '/<testcase name="FetchImdb/,/<\/testcase>/d' -e 's/skipped="1"/skipped="0"/' \
  "$work/skipped.xml" >"$work/clean.xml"

out=$(RECUR_ALLOW_SKIPS= check "$work/clean.xml") || fail "a run without skips failed: $out"
out=$(RECUR_ALLOW_SKIPS= check "$work/skipped.xml") && fail "a skipped test passed: $out"
grep -q 'SKIPPED (not allowed): FetchImdb.RealFile: IMDb is not in data/imdb$' <<<"$out" || fail "no reason printed: $out"
out=$(RECUR_ALLOW_SKIPS='Other.*: x; FetchImdb.*: no IMDb on this machine' check "$work/skipped.xml") ||
  fail "an allowed skip failed: $out"
grep -q 'skipped (allowed: no IMDb on this machine): FetchImdb.RealFile' <<<"$out" ||
  fail "the allowance's reason is not printed: $out"
out=$(RECUR_ALLOW_SKIPS='FetchImdb.*' check "$work/skipped.xml" 2>&1) &&
  fail "an allowance without a reason was accepted: $out"

echo "$((failed == 0 ? 1 : 0)) passed, $failed failed"
exit $((failed > 0))
