#!/usr/bin/env bash
# Builds the example compute-to-data algorithm (config/examples/algorithms/column-stats) for
# WASI 0.2 and refreshes the committed component the devnet publishes. `--check` fails when
# the committed component differs from a fresh build (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
target_dir="${CARGO_TARGET_DIR:-target}/wasm-guests"
cargo build --release --quiet --target wasm32-wasip2 \
  --manifest-path config/examples/algorithms/column-stats/Cargo.toml --target-dir "$target_dir"
built="$target_dir/wasm32-wasip2/release/column-stats.wasm"
committed=config/examples/algorithms/column-stats.wasm
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$built" "$committed"; then
    echo "config/examples/algorithms/column-stats.wasm is not what its source builds to;" >&2
    echo "run scripts/build-algorithms.sh and commit the result" >&2
    exit 1
  fi
  echo "column-stats.wasm matches its source"
else
  cp "$built" "$committed"
  echo "wrote $committed ($(stat -c %s "$committed") bytes, blake3 $(b3sum --no-names "$committed" 2>/dev/null || echo '?'))"
fi
