#!/usr/bin/env python3
"""Fails a test run that skipped a test nobody allowed to skip.

    check_skips.py CTEST_JUNIT_XML     (written by `ctest --output-junit FILE`)

Lists every test ctest reports as skipped (a GoogleTest GTEST_SKIP, a script's exit code 77)
with the reason the test printed, and exits 1 when any of them is not allowed. A skip is allowed
only by an entry of RECUR_ALLOW_SKIPS, one per line or separated by ';', written
`PATTERN: reason`: an fnmatch pattern over test names (or pytest ids), ended by the first colon
followed by a space, and the reason, printed beside each skip it allows; e.g.
`FetchImdb.*: no network here`. python/tests/conftest.py applies the same rule to pytest's skips.
"""
import fnmatch
import os
import sys
import xml.etree.ElementTree as ET


def allowed_skips(text):
    """[(pattern, reason)] from RECUR_ALLOW_SKIPS; an entry without a reason is an error."""
    entries = []
    for raw in text.replace(";", "\n").splitlines():
        entry = raw.strip()
        if not entry:
            continue
        pattern, _, reason = entry.partition(": ")
        if not pattern.strip() or not reason.strip():
            sys.exit(f"check_skips: RECUR_ALLOW_SKIPS entry '{entry}' needs 'PATTERN: reason'")
        entries.append((pattern.strip(), reason.strip()))
    return entries


def skip_reason(case):
    """What the test printed about its skip: GoogleTest's message after "FILE:LINE: Skipped", a
    script's "SKIP..." line, else its last line of output, else ctest's own message."""
    lines = [line.strip() for line in (case.findtext("system-out") or "").splitlines()]
    for i, line in enumerate(lines):
        if line.endswith(": Skipped"):
            message = []
            for following in lines[i + 1:]:
                if following.startswith("[  SKIPPED ]"):
                    break
                message.append(following)
            return " ".join(m for m in message if m) or line
    for line in lines:
        if line.startswith("SKIP"):
            return line
    lines = [line for line in lines if line]
    if lines:
        return lines[-1]
    skipped = case.find("skipped")
    return skipped.get("message", "") if skipped is not None else ""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_skips.py CTEST_JUNIT_XML")
    allow = allowed_skips(os.environ.get("RECUR_ALLOW_SKIPS", ""))
    cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
    skipped = [c for c in cases if c.find("skipped") is not None or c.get("status") == "notrun"]
    unexpected = 0
    for case in skipped:
        name = case.get("name")
        why = next((reason for pattern, reason in allow if fnmatch.fnmatchcase(name, pattern)), None)
        if why is None:
            unexpected += 1
            print(f"SKIPPED (not allowed): {name}: {skip_reason(case)}")
        else:
            print(f"skipped (allowed: {why}): {name}: {skip_reason(case)}")
    total = sum(1 for _ in ET.parse(sys.argv[1]).getroot().iter("testcase"))
    print(f"check_skips: {total} tests, {len(skipped)} skipped, {unexpected} not allowed")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
