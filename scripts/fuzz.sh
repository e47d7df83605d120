#!/usr/bin/env bash
# Bounded fuzz run of every decoder: FUZZ_SECONDS (default 30) per target, FUZZ_JOBS targets
# at a time (default: one per core).
# Uses cargo-fuzz (libFuzzer). cargo-fuzz needs nightly compiler flags; on a stable toolchain
# RUSTC_BOOTSTRAP=1 enables them for this build only. Seeds come from valid encodings written
# by `cargo run -p gaiamesh-protocol --example fuzz-seeds` so the fuzzer starts deep.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# (CI writes them during its test phase, from the test build, and sets FUZZ_SEEDS_WRITTEN=1:
# building the example here, after CI's `cargo clean`, would compile its dependencies again.)
if [ "${FUZZ_SEEDS_WRITTEN:-0}" != 1 ]; then
  cargo run --quiet -p gaiamesh-protocol --features test-utils --example fuzz-seeds -- fuzz/corpus
fi
# Gaia-X credential fixtures (JSON-LD, VC-JWT, signed JsonWebSignature2020) seed their target.
mkdir -p fuzz/corpus/gaiax_credentials
find gaiax/tests/fixtures -name '*.json' -o -name '*.jsonld' | while read -r f; do
  cp "$f" "fuzz/corpus/gaiax_credentials/seed-$(basename "$f")"
done
# Every target built in one cargo invocation (the targets compile in parallel and share the
# instrumented dependencies); each `cargo fuzz run` below then finds its binary built.
cargo fuzz build --fuzz-dir fuzz
targets=(decode_signed_sd decode_credential decode_attestation decode_revocation_list decode_genesis parse_documents decode_reconcile parse_query decode_repository exchange_messages gaiax_credentials)
# Targets run side by side, one per core (each libFuzzer run is single-threaded).
jobs="${FUZZ_JOBS:-$(nproc)}"
run_target() {
  local t="$1"
  mkdir -p "fuzz/corpus/$t"
  cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
    >"fuzz/$t.log" 2>&1
}
declare -A pid_of=()
failed=()
report() {
  local t="$1" rc="$2"
  echo "== fuzz $t: ${seconds}s, exit $rc"
  if [ "$rc" != 0 ]; then
    tail -n 60 "fuzz/$t.log" >&2
    echo "fuzz target $t failed (crash or build error); inputs in fuzz/artifacts/$t" >&2
    failed+=("$t")
  else
    grep -E '^(Done|stat::number_of_executed_units)' "fuzz/$t.log" || true
  fi
}
running=()
for t in "${targets[@]}"; do
  run_target "$t" &
  pid_of[$t]=$!
  running+=("$t")
  if [ "${#running[@]}" -ge "$jobs" ]; then
    first="${running[0]}"
    rc=0
    wait "${pid_of[$first]}" || rc=$?
    report "$first" "$rc"
    running=("${running[@]:1}")
  fi
done
for t in "${running[@]}"; do
  rc=0
  wait "${pid_of[$t]}" || rc=$?
  report "$t" "$rc"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a crash"
