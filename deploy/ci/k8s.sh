#!/usr/bin/env bash
# Renders every Kubernetes overlay with `kubectl kustomize`, validates each object offline
# against the Kubernetes schemas (kubernetes-validate --strict) and scans it for insecure
# settings (checkov). Needs: kubectl, a gaiamesh binary ($GAIAMESH), and a Python venv with
# kubernetes-validate and checkov ($K8S_VENV, made here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

g="${GAIAMESH:?set GAIAMESH to a gaiamesh binary}"
venv="${K8S_VENV:-/tmp/gaiamesh-k8s-venv}"
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "== installing kubernetes-validate and checkov into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate checkov
fi
kubectl version --client 2>/dev/null | head -n 2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The overlays read their members from generated/ (gitignored): make throwaway ones.
for n in 3 50; do
  gen="deploy/k8s/overlays/federation-$n/generated"
  rm -rf "$gen"
  GAIAMESH="$g" deploy/k8s/make-members.sh "$n" "$gen" 2>/dev/null
done

for overlay in federation-3 federation-50 monitoring; do
  out="$work/$overlay.yaml"
  kubectl kustomize "deploy/k8s/overlays/$overlay" > "$out"
  echo "== $overlay: $(grep -c '^kind:' "$out") objects rendered"
  "$venv/bin/kubernetes-validate" --strict --quiet "$out"
  "$venv/bin/python" deploy/ci/check_k8s.py "$overlay" "$out"
  "$venv/bin/checkov" -f "$out" --framework kubernetes --quiet --compact --skip-download
done
for n in 3 50; do rm -rf "deploy/k8s/overlays/federation-$n/generated"; done
# The simulator's parameter sweep as a Kubernetes Indexed Job (gaiamesh sim sweep --emit).
"$g" sim sweep config/examples/sim/sweep.toml --out "$work/sweep" --emit kubernetes >/dev/null
echo "== sim sweep: $(ls "$work/sweep/kubernetes" | wc -l) objects rendered"
"$venv/bin/kubernetes-validate" --strict --quiet "$work"/sweep/kubernetes/*.json
"$venv/bin/checkov" -d "$work/sweep/kubernetes" --framework kubernetes --quiet --compact --skip-download
echo "== kubernetes manifests: rendered, valid, scanned"
