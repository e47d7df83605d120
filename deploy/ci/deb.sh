#!/usr/bin/env bash
# Installs the Debian package on this machine and checks it end to end (as root):
#   install → files, user, version, man page → systemd-analyze verify and security (exposure
#   reported, ≤ 2.0 required) → a node initialised as the gaiamesh user and started with the
#   unit's own ExecStart (systemd is not PID 1 here: the unit's command line is run under
#   setpriv as User=, with NOTIFY_SOCKET answered by this script) → API answers, READY=1 →
#   SIGTERM → remove: nothing left but the config and the state → purge.
# Usage: deploy/ci/deb.sh path/to/gaiamesh_*.deb
set -euo pipefail
cd "$(dirname "$0")/../.."
deb="$(realpath "${1:?usage: deploy/ci/deb.sh gaiamesh_*.deb}")"
[ "$(id -u)" = 0 ] || { echo "deb.sh: needs root (apt install)"; exit 1; }

unit=/usr/lib/systemd/system/gaiamesh.service
work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb.sh: $*" >&2; exit 1; }

echo "== apt install $(basename "$deb")"
# A leftover from an earlier run would hide what this install does.
dpkg -s gaiamesh >/dev/null 2>&1 && apt-get purge -y -qq gaiamesh >/dev/null
rm -rf /var/lib/gaiamesh /etc/gaiamesh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
gaiamesh --version
getent passwd gaiamesh >/dev/null || fail "no gaiamesh user"
[ "$(stat -c '%U %a' /var/lib/gaiamesh)" = "gaiamesh 750" ] || fail "/var/lib/gaiamesh: $(stat -c '%U %a' /var/lib/gaiamesh)"
for f in /usr/bin/gaiamesh /etc/gaiamesh/config.toml "$unit" /usr/share/man/man1/gaiamesh-run.1.gz \
  /usr/share/bash-completion/completions/gaiamesh /usr/share/doc/gaiamesh/deploy.md; do
  [ -e "$f" ] || fail "$f not installed"
done
echo "binary: $(stat -c %s /usr/bin/gaiamesh) bytes; links: $(ldd /usr/bin/gaiamesh | awk '{print $1}' | tr '\n' ' ')"

echo "== systemd-analyze"
systemd-analyze verify "$unit"
systemd-analyze security --offline=true "$unit" > "$work/security.txt" 2>&1 || true
exposure="$(grep -o 'Overall exposure level for gaiamesh.service: [0-9.]* [A-Z]*' "$work/security.txt" || true)"
[ -n "$exposure" ] || { cat "$work/security.txt"; fail "no exposure level"; }
echo "$exposure"
score="$(echo "$exposure" | awk '{print $(NF-1)}')"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score above 2.0"

echo "== a node as the package runs it"
run_as() { setpriv --reuid=gaiamesh --regid=gaiamesh --init-groups -- "$@"; }
chmod 755 "$work"
gaiamesh federation init --name "deb check" --out "$work/fed" >/dev/null
peer="$(run_as gaiamesh init --data-dir /var/lib/gaiamesh --genesis "$work/fed/genesis.toml" 2>/dev/null | head -n 1)"
printf 'legal_name = "Deb Check"\nregistration = { kind = "taxID", value = "DEB-1" }\nheadquarters_country = "DE"\n' > "$work/p.toml"
gaiamesh federation admit --federation "$work/fed" --peer "$peer" --participant "$work/p.toml" --out "$work/m.cred" >/dev/null 2>&1
run_as gaiamesh init --data-dir /var/lib/gaiamesh --genesis "$work/fed/genesis.toml" --credential "$work/m.cred" >/dev/null 2>&1
# Loopback only on this machine (the packaged default listens on all interfaces): editing the
# conffile also checks that removal keeps an operator's changes.
sed -i 's|/ip4/0.0.0.0/|/ip4/127.0.0.1/|g; s|^listen = "127.0.0.1:7300"|listen = "127.0.0.1:17300"|' /etc/gaiamesh/config.toml
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
[ -n "$exec_start" ] || fail "no ExecStart in $unit"
python3 - "$work/notify.sock" > "$work/notify.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os; os.chmod(sys.argv[1], 0o777)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " "), flush=True)
PY
notify_pid=$!
sleep 0.5
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it (no quotes in it)
NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=30000000 setpriv --reuid=gaiamesh --regid=gaiamesh --init-groups -- \
  env -C /var/lib/gaiamesh $exec_start > "$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q "READY=1" "$work/notify.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/node.log"; fail "the node exited"; }
  sleep 0.2
done
grep -q "READY=1" "$work/notify.log" || { cat "$work/node.log"; fail "no READY=1"; }
run_as gaiamesh status --data-dir /var/lib/gaiamesh
curl -fsS http://127.0.0.1:17300/api/v1/health | grep -q '"ok":true' || fail "health"
kill -TERM "$pid"
wait "$pid" || fail "the node did not exit cleanly on SIGTERM"
pid=""
grep -q "STOPPING=1" "$work/notify.log" || fail "no STOPPING=1"
kill "$notify_pid" 2>/dev/null || true
echo "notifications: $(tr '\n' '|' < "$work/notify.log")"

echo "== apt remove"
apt-get remove -y -qq gaiamesh >/dev/null
[ ! -e /usr/bin/gaiamesh ] || fail "/usr/bin/gaiamesh left after remove"
[ -f /etc/gaiamesh/config.toml ] || fail "remove deleted the config"
grep -q "127.0.0.1:17300" /etc/gaiamesh/config.toml || fail "remove lost the operator's config change"
[ -f /var/lib/gaiamesh/key ] || fail "remove deleted the node's state"
left="$(dpkg -L gaiamesh 2>/dev/null | grep -v -e '^/etc' -e '^/\.$' | while read -r f; do [ -f "$f" ] && echo "$f"; done || true)"
[ -z "$left" ] || fail "files left after remove: $left"
echo "removed: binary, unit, man pages gone; /etc/gaiamesh/config.toml and /var/lib/gaiamesh kept"

echo "== apt purge"
apt-get purge -y -qq gaiamesh >/dev/null
[ ! -e /etc/gaiamesh/config.toml ] || fail "purge left the config"
[ -f /var/lib/gaiamesh/key ] || fail "purge deleted the node key"
rm -rf /var/lib/gaiamesh
echo "== Debian package: installed, verified, ran, removed"
