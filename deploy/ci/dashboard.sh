#!/usr/bin/env bash
# Browser tests of the dashboard (docs/dashboard.md), the generated OpenAPI document (valid
# OpenAPI 3.1; live answers match their schemas) and the Grafana dashboard's metric names:
# starts a devnet with the given gaiamesh binary, drives Debian's headless Chromium with
# Playwright for Python (its own browser download cannot work here: executable_path points at
# /usr/bin/chromium), and checks deploy/grafana/*.json against a live /metrics.
# Needs: chromium (Debian package), python3-venv; a venv with playwright ($UI_VENV, made here).
# Screenshots go to $UI_OUT (default ci-artifacts/dashboard), kept as CI artefacts.
set -euo pipefail
cd "$(dirname "$0")/../.."

g="${1:?usage: deploy/ci/dashboard.sh path/to/gaiamesh}"
venv="${UI_VENV:-/tmp/gaiamesh-ui-venv}"
out="${UI_OUT:-ci-artifacts/dashboard}"
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
chromium --version 2>/dev/null || true
if [ ! -x "$venv/bin/python" ] \
  || ! "$venv/bin/python" -c "import playwright, openapi_spec_validator, jsonschema" 2>/dev/null; then
  echo "== installing playwright into $venv (no browser download: Debian's chromium is used)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q playwright openapi-spec-validator jsonschema
fi
"$venv/bin/python" tests/ui/dashboard.py --gaiamesh "$g" --out "$out"
# The generated OpenAPI document is valid, and the nodes' answers match its schemas.
"$venv/bin/python" deploy/ci/check_openapi.py "$out"
# That check must be able to fail: a status answer with a field the schema does not name.
neg="$(mktemp -d)"
mkdir "$neg/api"
cp "$out/openapi.json" "$neg/"
"$venv/bin/python" -c 'import json,sys; a=json.load(open(sys.argv[1])); a["body"]["undocumented"]=1; json.dump(a,open(sys.argv[2],"w"))' \
  "$out/api/00.json" "$neg/api/00.json"
if "$venv/bin/python" deploy/ci/check_openapi.py "$neg" >/dev/null 2>&1; then
  echo "check_openapi.py accepted an answer with an undocumented field" >&2
  exit 1
fi
rm -rf "$neg"
"$venv/bin/python" deploy/ci/check_grafana.py --metrics "$out/metrics-node0.txt" deploy/grafana/*.json
# The check must be able to fail: a dashboard naming a metric the node does not export.
bad="$(mktemp --suffix=.json)"
sed 's/gaiamesh_directory_entries/gaiamesh_directory_entires/' deploy/grafana/gaiamesh-nodes.json > "$bad"
if "$venv/bin/python" deploy/ci/check_grafana.py --metrics "$out/metrics-node0.txt" "$bad" 2>/dev/null; then
  echo "check_grafana.py accepted a dashboard with a misspelt metric" >&2
  exit 1
fi
rm -f "$bad"
echo "== dashboard: browser tests passed; screenshots in $out"
