#!/usr/bin/env bash
# Soak and fault harness (issue 10 item 12): starts `ssehub serve` (release)
# on a free loopback port with a small subscriber limit and ring, then runs
# the soak driver (perf/src/bin/soak.rs, logic in cli/src/load/soak/) for
# DURATION: a fast publisher, a reset every 6 s, steady readers, readers that
# pause until they are lapped, readers that stop for good, readers that hang
# up mid-frame and resume, and bursts of connects beyond the limit, while
# /healthz, /admin/stats and the server's VmRSS are sampled.
#
# Usage: scripts/soak.sh [DURATION]        (default 60s; humantime: 90s, 10m)
#        SOAK_RSS_LIMIT=128MiB scripts/soak.sh 10m
#
# Checks: the driver's thirteen (each prints PASS/FAIL with its figures; see
# the module docs of ssehub_cli::load::soak), then three of its own: a clean
# exit (status 0) within 5 s of SIGTERM, the write timeout ended the stalled
# readers (the server log's `reason`), and no panic in the server log. Ends with
# `N passed, M failed`; exits non-zero if any check failed. The server log is
# kept (path printed) when a check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

duration="${1:-60s}"
rss_limit="${SOAK_RSS_LIMIT:-96MiB}"
max_subscribers=120
target_dir="${CARGO_TARGET_DIR:-$root/target}"

log() { echo "soak: $*" >&2; }

log "building ssehub and the soak driver (release)"
cargo build --release --quiet -p ssehub-cli --bin ssehub -p ssehub-perf --bin soak

workdir="$(mktemp -d)"
server_pid=""
keep_log=0
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$keep_log" = 1 ]; then
        log "server log kept in $workdir/server.log"
    else
        rm -rf "$workdir"
    fi
}
trap cleanup EXIT

token="soak-$RANDOM$RANDOM$RANDOM"
# Port 0: the server picks a free loopback port and logs it. The write
# timeout is the server's (30 s, src/http/fast.rs); the driver is told.
RUST_LOG="${RUST_LOG:-info}" "$target_dir/release/ssehub" serve \
    --listen 127.0.0.1:0 --admin-token "$token" \
    --max-subscribers "$max_subscribers" --capacity 1024 --max-bytes 4MiB \
    --keep-alive 5s \
    2>"$workdir/server.log" &
server_pid=$!

url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$workdir/server.log" | head -n1 | sed 's/^listening on //')" || true
    [ -n "$url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "server exited early:"; cat "$workdir/server.log" >&2; exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    log "server did not log its address within 10 s"; keep_log=1; exit 1
fi
log "server $server_pid on $url; running for $duration"

passed=0
failed=0
record() { # record NAME PASSED(0|1) DETAIL
    if [ "$2" = 1 ]; then
        passed=$((passed + 1)); echo "PASS $1: $3"
    else
        failed=$((failed + 1)); echo "FAIL $1: $3"
    fi
}

driver_status=0
"$target_dir/release/soak" --url "$url" --token "$token" --server-pid "$server_pid" \
    --max-subscribers "$max_subscribers" --write-timeout 30s --rss-limit "$rss_limit" \
    --duration "$duration" | tee "$workdir/driver.out" || driver_status=$?
driver_passed="$(grep -c '^PASS ' "$workdir/driver.out" || true)"
driver_failed="$(grep -c '^FAIL ' "$workdir/driver.out" || true)"
passed=$((passed + driver_passed))
failed=$((failed + driver_failed))
if [ "$driver_status" -ne 0 ] && [ "$driver_failed" -eq 0 ]; then
    record soak_driver_ran 0 "the driver exited with status $driver_status before judging"
fi

if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    exit_status=""
    for _ in $(seq 1 50); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            exit_status=0; wait "$server_pid" || exit_status=$?
            break
        fi
        sleep 0.1
    done
    if [ "$exit_status" = 0 ]; then
        record clean_shutdown 1 "exit status 0 within 5 s of SIGTERM"
    elif [ -n "$exit_status" ]; then
        record clean_shutdown 0 "exit status $exit_status after SIGTERM"
    else
        record clean_shutdown 0 "still running 5 s after SIGTERM"
    fi
    server_pid=""
else
    exit_status=0; wait "$server_pid" || exit_status=$?
    record clean_shutdown 0 "the server died during the soak (status $exit_status)"
    server_pid=""
fi

panics="$(grep -c -i 'panicked' "$workdir/server.log" || true)"
if [ "$panics" -eq 0 ]; then
    record no_panic_in_log 1 "$(wc -l <"$workdir/server.log") log lines, none with a panic"
else
    record no_panic_in_log 0 "$panics panic lines, first: $(grep -i -m1 'panicked' "$workdir/server.log")"
fi

# How the server ended its streams (its `stream closed` log lines).
echo "soak: server stream ends: $(grep -o 'reason="*[a-z_]*' "$workdir/server.log" | sed 's/reason="*//' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')"
# The stalled readers advertise a small segment size, so the server's write
# to them blocks before the ring laps them and only the write timeout can
# end it (a pausing reader resumes well within the timeout).
write_timeouts="$(grep -c 'reason="*write_timeout' "$workdir/server.log" || true)"
if [ "$write_timeouts" -gt 0 ]; then
    record write_timeout_ends_stalled_readers 1 "$write_timeouts streams ended by the server's write timeout"
else
    record write_timeout_ends_stalled_readers 0 "no stream ended with reason write_timeout in the server log"
fi

[ "$failed" -eq 0 ] || keep_log=1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
