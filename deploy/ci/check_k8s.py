"""What kubernetes-validate and checkov do not check: that an overlay renders the federation
it promises (replicas, one volume per member, the headless Service, probes, the secrets and
config mounted, a PodDisruptionBudget, no root and no privilege anywhere)."""
import sys

import yaml  # PyYAML comes with checkov and kubernetes-validate

overlay, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
errors = []


def need(cond, what):
    if not cond:
        errors.append(what)


expected = {"federation-3": 3, "federation-50": 50, "monitoring": 3}[overlay]
(sts,) = by_kind["StatefulSet"]
spec = sts["spec"]
need(spec["replicas"] == expected, f"replicas {spec['replicas']} != {expected}")
need(spec["serviceName"] == "gaiamesh-peers", "serviceName")
need(len(spec.get("volumeClaimTemplates", [])) == 1, "one persistent volume per member")
peers = [s for s in by_kind["Service"] if s["metadata"]["name"] == "gaiamesh-peers"]
need(peers and peers[0]["spec"].get("clusterIP") == "None", "headless peers Service")
need("PodDisruptionBudget" in by_kind, "PodDisruptionBudget")
pod = spec["template"]["spec"]
need(pod["securityContext"].get("runAsNonRoot") is True, "pod runAsNonRoot")
for c in pod.get("initContainers", []) + pod["containers"]:
    sc = c.get("securityContext", {})
    need(sc.get("allowPrivilegeEscalation") is False, f"{c['name']}: privilege escalation")
    need(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: read-only root")
    need(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{c['name']}: capabilities")
    need(not sc.get("privileged"), f"{c['name']}: privileged")
    need("resources" in c and "requests" in c["resources"], f"{c['name']}: requests")
main = pod["containers"][0]
for probe in ["startupProbe", "readinessProbe", "livenessProbe"]:
    need(main.get(probe, {}).get("httpGet", {}).get("path") == "/api/v1/health", probe)
volumes = {v["name"]: v for v in pod["volumes"]}
secret = volumes["members"]["secret"]["secretName"]
genesis = volumes["genesis"]["configMap"]["name"]
names = {(d["kind"], d["metadata"]["name"]) for d in docs}
need(("Secret", secret) in names, f"Secret {secret} rendered")
need(("ConfigMap", genesis) in names, f"ConfigMap {genesis} rendered")
members = [d for d in by_kind["Secret"] if d["metadata"]["name"] == secret][0]
for i in range(expected):
    need(f"gaiamesh-{i}.key" in members["data"], f"key of gaiamesh-{i}")
    need(f"gaiamesh-{i}.cred" in members["data"], f"credential of gaiamesh-{i}")
for d in docs:
    if d["kind"] != "Namespace":
        need(d["metadata"].get("namespace") == "gaiamesh", f"{d['kind']} {d['metadata']['name']}: namespace")
if overlay == "monitoring":
    need("ServiceMonitor" in by_kind, "ServiceMonitor")

if errors:
    print(f"{overlay}: " + "; ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"{overlay}: {expected} members, volumes, probes, security context as promised")
