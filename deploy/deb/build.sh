#!/usr/bin/env bash
# Builds the Debian package: target/debian/gaiamesh_<version>-1_<arch>.deb.
#
# The release binary is stripped by cargo-deb, its debug info split off into
# /usr/lib/debug/.build-id/ (compressed) in the same package; man pages and shell completions
# are generated from the binary itself. Needs cargo-deb (`cargo install cargo-deb --locked`)
# and objcopy (binutils).
#
# Usage: deploy/deb/build.sh [--no-build]   (--no-build: package target/release/gaiamesh as is)
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1
[ "${1:-}" = "--no-build" ] && build=0

target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = 1 ]; then
  echo "== release build (gaiamesh-node)"
  cargo build --release --locked -p gaiamesh-node --bin gaiamesh
fi
bin="$target/release/gaiamesh"
[ -x "$bin" ] || { echo "error: $bin is missing; build it or drop --no-build" >&2; exit 1; }

echo "== man pages and completions from $bin"
assets="$target/release/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --out "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/gaiamesh"
"$bin" completions zsh > "$assets/completions/_gaiamesh"
"$bin" completions fish > "$assets/completions/gaiamesh.fish"

echo "== cargo deb"
cargo deb -p gaiamesh-node --no-build --locked --dbgsym
ls -l "$target"/debian/gaiamesh_*.deb "$target"/debian/gaiamesh-dbgsym_*.ddeb
