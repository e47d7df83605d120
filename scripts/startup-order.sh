#!/usr/bin/env bash
# The daemon's start-up code, laid out together (BENCHMARKS.md, "idle node").
#
# An idle node's resident memory was mostly pages of its own code: start-up runs ~4,500
# functions (3.7 MB) scattered over 41 MB of text, and the kernel maps each touched page with
# its neighbours (fault-around, 64 KiB). node/build.rs hands `node/startup-order.txt` to the
# linker (LLD's --symbol-ordering-file) in optimised builds, so those functions sit side by side.
#
#   scripts/startup-order.sh             build the release binary, profile a node's start-up,
#                                        idle, API calls and shutdown under callgrind, write
#                                        node/startup-order.txt (needs valgrind)
#   scripts/startup-order.sh --check BIN whether BIN has the listed functions side by side
#                                        (exit 1 if not) and how many of them it has (exit 2
#                                        below 97 %: symbol names carry hashes that change
#                                        with the compiler and the dependencies, so the list
#                                        goes stale); needs nm
#
# The list is for `cargo build --release -p gaiamesh-node` (what the README, the Debian package
# and the container build) and for CI's build of the node with the bench, a dev build with the
# release profile's settings: dependencies are built alike in both profiles and the node
# enables the protocol's `test-utils` as the bench does, so all give the same names. Another
# feature set of the shared crates, another compiler, other dependency versions or a
# workspace wrapper (clippy-driver) give other hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
order=node/startup-order.txt

if [ "${1:-}" = "--check" ]; then
  bin="${2:?usage: scripts/startup-order.sh --check path/to/gaiamesh}"
  # How many listed functions the binary has (a stale list: a warning, exit 2), and whether
  # the linker placed them together (a build that ignored the list: an error, exit 1).
  nm -S --defined-only "$bin" | python3 -c '
import sys
order = [l.strip() for l in open(sys.argv[1]) if l.strip()]
syms = {}
for line in sys.stdin:
    p = line.split()
    if len(p) == 4 and p[2] in "tTwW":
        syms.setdefault(p[3], (int(p[0], 16), int(p[1], 16)))
found = [syms[n] for n in order if n in syms]
pct = 100 * len(found) // max(len(order), 1)
print(f"startup order: {len(found)} of {len(order)} listed functions are in {sys.argv[2]} ({pct} %)")
if not found:
    sys.exit(2)
code = sum(size for _, size in found)
span = max(a + size for a, size in found) - min(a for a, _ in found)
print(f"startup order: their {code / 2**20:.1f} MiB of code span {span / 2**20:.1f} MiB of the binary")
if span > 2 * code:
    print("startup order: the functions are not laid out together: was the list given to the linker (node/build.rs)?", file=sys.stderr)
    sys.exit(1)
if pct < 97:
    print("startup order: the list is stale (another compiler or dependency versions); run scripts/startup-order.sh to regenerate it", file=sys.stderr)
    sys.exit(2)
' "$order" "$bin"
  exit $?
fi

command -v valgrind >/dev/null || { echo "startup-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
# (With or without the current list applied: the list names functions, not places.)
cargo build --release --locked -p gaiamesh-node --bin gaiamesh
bin="$PWD/target/release/gaiamesh"
work="$(mktemp -d)"
trap 'pkill -f "$work/net" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "== a 2-node devnet, once, for node0's data dir (federation, credential, catalogue)"
"$bin" devnet --nodes 2 --dir "$work/net" --once --repo-mib 0 --exchange-mib 0 \
  --no-compute --no-light >/dev/null 2>&1
data="$work/net/node0"
echo "== node0 under callgrind: start-up, API calls, 20 s idle, SIGTERM"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.out" \
  "$bin" run --data-dir "$data" >"$work/node.log" 2>&1 &
node=$!
for _ in $(seq 1 240); do
  if "$bin" status --data-dir "$data" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
"$bin" status --data-dir "$data" >/dev/null
"$bin" peers --data-dir "$data" >/dev/null 2>&1 || true
sleep 20
kill -TERM "$node"
wait "$node" || true
python3 - "$work/callgrind.out" "$bin" "$order" <<'PY'
import re, sys
out, binary, order = sys.argv[1:4]
# callgrind's compressed names: "(id) name" defines, "(id)" refers; ob= sets the object.
pat = re.compile(r"^(c?ob|c?fn|c?fi|c?fe|fl)=\((\d+)\)(?: (.*))?$")
objects, names, current, functions = {}, {}, None, set()
for line in open(out):
    m = pat.match(line.rstrip("\n"))
    if not m:
        continue
    kind, i, name = m.groups()
    if kind in ("ob", "cob"):
        if name:
            objects[i] = name
        if kind == "ob":
            current = objects.get(i)
    elif kind in ("fn", "cfn"):
        if name:
            names[i] = name
        if kind == "fn" and current == binary and not names[i].startswith("0x"):
            functions.add(names[i])
if len(functions) < 1000:
    sys.exit(f"only {len(functions)} functions of {binary} ran: did the node start?")
with open(order, "w") as f:
    f.write("\n".join(sorted(functions)) + "\n")
print(f"{len(functions)} functions written to {order}")
PY
echo "== the release build again, linked with the new list"
cargo build --release --locked -p gaiamesh-node --bin gaiamesh
scripts/startup-order.sh --check "$bin"
