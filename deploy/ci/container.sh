#!/usr/bin/env bash
# Builds the container image from a gaiamesh binary (podman, vfs storage, the Containerfile's
# `prebuilt` path: no registry is reachable here) and runs it once: --version, `init` of a
# data volume, the daemon until its health check (the image's HEALTHCHECK command) passes,
# then SIGTERM and a clean exit. Root only.
#
# This machine cannot run containers as they come: crun is refused setrlimit(RLIMIT_NPROC)
# and cannot use the hybrid cgroup layout. The runs therefore use deploy/ci/crun (drops the
# rlimits and cgroups from the OCI spec) inside a mount namespace without the cgroup2 mount.
# Usage: deploy/ci/container.sh path/to/gaiamesh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$(realpath "${1:?usage: deploy/ci/container.sh path/to/gaiamesh}")"
[ "$(id -u)" = 0 ] || { echo "container.sh: needs root"; exit 1; }
fail() { echo "container.sh: $*" >&2; exit 1; }
pm() { podman --storage-driver vfs "$@"; }
image=localhost/gaiamesh:ci

echo "== image"
deploy/container/rootfs.sh "$bin" target/container-rootfs
pm build -q --format docker -f deploy/container/Containerfile --build-arg BINARY_FROM=prebuilt \
  --target runtime -t "$image" . >/dev/null
echo "size: $(pm image inspect "$image" --format '{{.Size}}') bytes"
[ "$(pm image inspect "$image" --format '{{.User}}')" = "10001:10001" ] || fail "not the non-root user"
pm image inspect "$image" --format '{{json .HealthCheck}}' | grep -q "status" || fail "no HEALTHCHECK"
pm image inspect "$image" --format '{{json .Config.Volumes}}' | grep -q /var/lib/gaiamesh || fail "no volume"

echo "== run it once"
work="$(mktemp -d)"
trap 'rm -rf "$work"; pm rm -f gaiamesh-ci >/dev/null 2>&1 || true' EXIT
"$bin" federation init --name "container check" --out "$work/fed" >/dev/null
mkdir -p "$work/data"
chown 10001:10001 "$work/data"
chmod 755 "$work" "$work/fed"
export IMAGE="$image" WORK="$work" RUNTIME="$PWD/deploy/ci/crun"
unshare --mount bash -euo pipefail -c '
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  pm() { podman --storage-driver vfs --runtime "$RUNTIME" "$@"; }
  run() { pm run --rm --cgroups disabled --network none "$@"; }
  run "$IMAGE" --version
  peer="$(run -v "$WORK/data:/var/lib/gaiamesh" -v "$WORK/fed:/fed:ro" "$IMAGE" \
    init --genesis /fed/genesis.toml 2>/dev/null | head -n 1)"
  printf "legal_name = \"Container Check\"\nregistration = { kind = \"taxID\", value = \"OCI-1\" }\nheadquarters_country = \"DE\"\n" > "$WORK/p.toml"
  echo "$peer" > "$WORK/peer"
'
peer="$(cat "$work/peer")"
[ -n "$peer" ] || fail "init in the container printed no PeerId"
"$bin" federation admit --federation "$work/fed" --peer "$peer" --participant "$work/p.toml" \
  --out "$work/fed/member.cred" >/dev/null 2>&1
chmod 644 "$work/fed/member.cred"
# Loopback only on this machine: the node listens on 127.0.0.1 in the host's network.
cat > "$work/data/config.toml" <<TOML
[network]
listen = ["/ip4/127.0.0.1/udp/17401/quic-v1"]
[api]
listen = "127.0.0.1:17301"
TOML
chown 10001:10001 "$work/data/config.toml"
unshare --mount bash -euo pipefail -c '
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  pm() { podman --storage-driver vfs --runtime "$RUNTIME" "$@"; }
  pm run --rm --cgroups disabled --network none -v "$WORK/data:/var/lib/gaiamesh" \
    -v "$WORK/fed:/fed:ro" "$IMAGE" init --genesis /fed/genesis.toml --credential /fed/member.cred >/dev/null 2>&1
  pm run -d --name gaiamesh-ci --cgroups disabled --network host \
    -v "$WORK/data:/var/lib/gaiamesh" "$IMAGE" >/dev/null
  for _ in $(seq 1 60); do
    if pm healthcheck run gaiamesh-ci >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  pm healthcheck run gaiamesh-ci || { pm logs gaiamesh-ci; exit 1; }
  echo "health check passed"
  pm exec gaiamesh-ci /usr/bin/gaiamesh status --data-dir /var/lib/gaiamesh
  pm stop -t 25 gaiamesh-ci >/dev/null
  code="$(pm inspect gaiamesh-ci --format "{{.State.ExitCode}}")"
  pm logs gaiamesh-ci > "$WORK/node.log" 2>&1
  pm rm gaiamesh-ci >/dev/null
  [ "$code" = 0 ] || { cat "$WORK/node.log"; echo "exit code $code after SIGTERM"; exit 1; }
'
grep -q "records flushed" "$work/node.log" || { cat "$work/node.log"; fail "no clean shutdown in the log"; }
[ -f "$work/data/key" ] || fail "the data volume has no key"
echo "== container image: built, ran (init, daemon, health check, SIGTERM)"
