#!/usr/bin/env python3
"""Checks Grafana dashboards (deploy/grafana/*.json) against what a node really exports.

Every dashboard must be valid JSON with panels; every PromQL expression in it must name only
metrics that appear in a live node's /metrics (the exposition text saved by
tests/ui/dashboard.py, or fetched from --url). Exits non-zero naming each unknown metric and
the panel that uses it.

    check_grafana.py --metrics ci-artifacts/dashboard/metrics-node0.txt deploy/grafana/*.json
    check_grafana.py --url http://127.0.0.1:9100/metrics deploy/grafana/*.json
"""

import argparse
import json
import re
import sys
import urllib.request

# PromQL words that are not metric names.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def exported_names(text):
    """Sample names in an exposition text, plus the names its # TYPE lines promise (a labelled
    family that has seen no observation yet has no samples)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
            elif kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            m = IDENT.match(line)
            if m:
                names.add(m.group(0))
    return names


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range selectors and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in IDENT.finditer(e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):  # a function
            continue
        if word.lower() in KEYWORDS or word.startswith("$"):
            continue
        if m.start() > 0 and e[m.start() - 1] == "$":  # a Grafana variable
            continue
        names.add(word)
    return names


def expressions(dashboard):
    """(panel title, expression) for every target of every panel, rows included."""
    def walk(panels):
        for p in panels:
            yield from walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield p.get("title", "?"), t["expr"]
    yield from walk(dashboard.get("panels", []))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--metrics", help="a saved /metrics exposition text")
    src.add_argument("--url", help="a live node's /metrics URL")
    ap.add_argument("dashboards", nargs="+")
    a = ap.parse_args()
    if a.metrics:
        text = open(a.metrics).read()
    else:
        with urllib.request.urlopen(a.url, timeout=10) as r:
            text = r.read().decode()
    known = exported_names(text)
    if not any(n.startswith("gaiamesh_") for n in known):
        sys.exit("check_grafana: the metrics text has no gaiamesh_ metric: not a gaiamesh node?")
    failures = []
    for path in a.dashboards:
        try:
            d = json.load(open(path))
        except json.JSONDecodeError as e:
            failures.append(f"{path}: not valid JSON: {e}")
            continue
        exprs = list(expressions(d))
        if not exprs:
            failures.append(f"{path}: no panel has a PromQL expression")
        used = set()
        for title, expr in exprs:
            names = metric_names(expr)
            if not names:
                failures.append(f"{path}: panel {title!r}: {expr!r} reads no metric")
            for n in sorted(names - known):
                failures.append(f"{path}: panel {title!r}: {n} is not exported by the node")
            used |= names
        print(f"check_grafana: {path}: {len(d.get('panels', []))} panels, {len(exprs)} expressions, "
              f"{len(used)} metrics, all exported" if not failures else f"check_grafana: {path}: checked")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    main()
