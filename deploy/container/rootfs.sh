#!/usr/bin/env bash
# Makes the runtime image's file tree from a gaiamesh binary: the binary (stripped), exactly
# the shared libraries it links (from ldd) at their paths, /etc/passwd and /etc/group with
# the gaiamesh user (uid/gid 10001), an empty data dir and /tmp.
# Usage: deploy/container/rootfs.sh BINARY OUT
set -euo pipefail
bin="${1:?usage: rootfs.sh BINARY OUT}"; out="${2:?usage: rootfs.sh BINARY OUT}"
rm -rf "$out"
install -D -m 0755 "$bin" "$out/usr/bin/gaiamesh"
strip --strip-debug --strip-unneeded "$out/usr/bin/gaiamesh"
# Every library the dynamic linker resolves, and the linker itself.
ldd "$bin" | awk '/=> \//{print $3} /^\t\//{print $1}' | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$out$lib"
done
mkdir -p "$out/etc" "$out/var/lib/gaiamesh" "$out/tmp"
chmod 1777 "$out/tmp"
echo "gaiamesh:x:10001:10001:gaiamesh node:/var/lib/gaiamesh:/nonexistent" > "$out/etc/passwd"
echo "gaiamesh:x:10001:" > "$out/etc/group"
echo "wrote $out: $(du -sh "$out" | cut -f1) ($(find "$out" -type f | wc -l) files)"
