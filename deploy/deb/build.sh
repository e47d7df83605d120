#!/usr/bin/env bash
# Builds the Debian package: target/debian/gaiamesh_<version>-1_<arch>.deb.
#
# The release binary is stripped by cargo-deb, its debug info split off into
# /usr/lib/debug/.build-id/ (compressed) in the same package; man pages and shell completions
# are generated from the binary itself. Needs cargo-deb (`cargo install cargo-deb --locked`)
# and objcopy (binutils).
#
# Usage: deploy/deb/build.sh [--no-build] [--profile NAME]
#   --no-build        package target/<profile>/gaiamesh as it is
#   --profile NAME    the Cargo profile to package (default: release)
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --profile)
      [ $# -ge 2 ] || { echo "error: --profile needs a profile name" >&2; exit 2; }
      profile="$2"
      shift
      ;;
    *) echo "error: unknown argument $1 (usage: $0 [--no-build] [--profile NAME])" >&2; exit 2 ;;
  esac
  shift
done

target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = 1 ]; then
  echo "== $profile build (gaiamesh-node)"
  cargo build --profile "$profile" --locked -p gaiamesh-node --bin gaiamesh
fi
# Cargo writes the `dev` profile to target/debug, every other profile to target/<name>
dir="$profile"
[ "$profile" = dev ] && dir=debug
bin="$target/$dir/gaiamesh"
[ -x "$bin" ] || { echo "error: $bin is missing; build it or drop --no-build" >&2; exit 1; }

echo "== man pages and completions from $bin"
assets="$target/$dir/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --out "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/gaiamesh"
"$bin" completions zsh > "$assets/completions/_gaiamesh"
"$bin" completions fish > "$assets/completions/gaiamesh.fish"

echo "== cargo deb"
cargo deb -p gaiamesh-node --profile "$profile" --no-build --locked --dbgsym
ls -l "$target"/debian/gaiamesh_*.deb "$target"/debian/gaiamesh-dbgsym_*.ddeb
