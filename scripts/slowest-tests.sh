#!/usr/bin/env bash
# The N slowest tests of the last nextest run (default 15), from its JUnit report
# (target/nextest/default/junit.xml, written by every run: .config/nextest.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-15}"
report="${CARGO_TARGET_DIR:-target}/nextest/default/junit.xml"
[ -f "$report" ] || { echo "no JUnit report at $report: run cargo nextest first" >&2; exit 1; }
python3 - "$report" "$n" <<'PY'
import sys, xml.etree.ElementTree as ET
report, n = sys.argv[1], int(sys.argv[2])
cases = [(float(t.get("time", 0)), t.get("classname", ""), t.get("name", ""))
         for t in ET.parse(report).iter("testcase")]
total = sum(c[0] for c in cases)
print(f"{len(cases)} tests, {total:.0f} s of test time; the {min(n, len(cases))} slowest:")
for secs, cls, name in sorted(cases, reverse=True)[:n]:
    print(f"{secs:8.1f} s  {cls} {name}")
PY
