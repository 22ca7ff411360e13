#!/usr/bin/env bash
# Fuzz smoke: run every cargo-fuzz target in fuzz/ for a few seconds each.
#
#   scripts/fuzz-smoke.sh [SECONDS]     # default 20 s per target
#
# Needs a nightly toolchain (`cargo +nightly`); without one it prints a skip
# line and exits 0. Installs cargo-fuzz if it is missing. A crash fails the
# script; the input is left in fuzz/artifacts/<target>/ — keep it as a
# #[test] under tests/fuzz/testdata/ once fixed.
set -euo pipefail

secs="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: skipped (no nightly toolchain)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$root/fuzz"
targets="$(cargo +nightly fuzz list)"
for target in $targets; do
    echo "fuzz-smoke: $target for ${secs}s"
    # -max_total_time bounds the run; timeout is the backstop for a hang in
    # the build or the harness itself.
    log="$(mktemp)"
    if ! timeout "$((secs + 600))" cargo +nightly fuzz run "$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz-smoke: $target FAILED"
        rm -f "$log"
        exit 1
    fi
    grep -E '^(#[0-9]+ +DONE|Done )' "$log" || tail -n 2 "$log"
    rm -f "$log"
done
echo "fuzz-smoke: ok ($(echo $targets | wc -w) targets, ${secs}s each)"
