#!/usr/bin/env python3
"""Validates the node's generated OpenAPI document and checks live answers against it.

The document (saved from a running node's /api/v1/openapi.json by tests/ui/dashboard.py) must
be a valid OpenAPI 3.1 document (openapi-spec-validator). Each saved answer (DIR/api/*.json:
method, path, status, body) must match the schema its path and status declare, with no
undocumented field (unevaluatedProperties is set to false on every object schema). Exits
non-zero naming every mismatch.

    check_openapi.py ci-artifacts/dashboard
"""

import copy
import glob
import json
import os
import re
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def strict(components):
    """Object schemas with properties refuse properties they do not name."""
    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["unevaluatedProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    c = copy.deepcopy(components)
    walk(c)
    return c


def template_of(doc, path):
    """The documented path template matching a concrete path."""
    for tpl in doc["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpl)) + "$"
        if re.match(rx, path):
            return tpl
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    doc = json.load(open(os.path.join(out, "openapi.json")))
    validate(doc)
    print(f"check_openapi: the document is valid OpenAPI {doc['openapi']} "
          f"({len(doc['paths'])} paths, {len(doc['components']['schemas'])} schemas)")
    components = strict(doc["components"])
    failures = []
    answers = sorted(glob.glob(os.path.join(out, "api", "*.json")))
    if not answers:
        sys.exit(f"check_openapi: no saved answers in {out}/api")
    for path in answers:
        a = json.load(open(path))
        bare = a["path"].split("?")[0]
        tpl = template_of(doc, bare)
        if tpl is None:
            failures.append(f"{a['path']}: not described")
            continue
        op = doc["paths"][tpl].get(a["method"].lower())
        resp = (op or {}).get("responses", {}).get(str(a["status"]))
        if resp is None:
            failures.append(f"{a['method']} {a['path']}: status {a['status']} not described")
            continue
        content = resp.get("content", {})
        media = "application/problem+json" if a["status"] >= 400 else "application/json"
        if media not in content:
            failures.append(f"{a['method']} {a['path']} {a['status']}: no {media} schema")
            continue
        schema = dict(content[media]["schema"])
        schema["components"] = components
        errors = sorted(Draft202012Validator(schema).iter_errors(a["body"]), key=lambda e: list(e.path))
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.path) or "(root)"
            failures.append(f"{a['method']} {a['path']} {a['status']}: {where}: {e.message[:300]}")
        if not errors:
            print(f"check_openapi: ok: {a['method']} {a['path']} {a['status']} matches {tpl}")
    if failures:
        sys.exit("check_openapi: answers that do not match their schema:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
