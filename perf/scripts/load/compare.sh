#!/usr/bin/env bash
# Side-by-side SSE fan-out: ssehub vs the baseline (axum Sse + broadcast) vs
# the machine's limit (encode once, coalesced writes), same load parameters.
#
#   perf/scripts/load/compare.sh [CONNECTIONS] [RATE] [BATCH] [DURATION]
#   (defaults 1000 10000 10 10s; RATE 0 = as fast as each server answers)
#
# Builds release, then for each server in turn: starts it on a loopback
# port, waits for /healthz, runs the load generator against it with --json
# and --server-pid, stops it. Prints one table at the end. All traffic goes
# to 127.0.0.1; every wait is bounded. Extra load flags: LOAD_FLAGS="...".
# ssehub runs as `target/release/ssehub serve` (what `cargo run --release --
# serve` runs, but with the server's own pid for --server-pid); SSEHUB_BIN
# points at another build. Servers log at RUST_LOG=warn (default here).
set -euo pipefail

connections="${1:-1000}"
rate="${2:-10000}"
batch="${3:-10}"
duration="${4:-10s}"
token="compare-token"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"

echo "compare: building release (ssehub and the perf lab's peers)"
cargo build --release -p ssehub-cli -p ssehub-perf >/dev/null
load=(target/release/ssehub load)

# Servers and the load generator inherit this: room for every connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

wait_healthy() { # port -> 0 when /healthz answers within 15 s
    local port="$1"
    for _ in $(seq 1 150); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            return 1
        fi
        if curl -fs -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

run_one() { # name port command...
    local name="$1" port="$2"
    shift 2
    echo "compare: $name on 127.0.0.1:$port"
    "$@" >"$out/$name.server.log" 2>&1 &
    server_pid=$!
    if ! wait_healthy "$port"; then
        echo "compare: $name did not come up; see below" >&2
        tail -n 5 "$out/$name.server.log" >&2 || true
        cleanup
        server_pid=""
        return 0
    fi
    # Bounded: the run itself is bounded; timeout is the backstop.
    timeout 600 "${load[@]}" --url "http://127.0.0.1:$port" --token "$token" \
        --connections "$connections" --rate "$rate" --batch "$batch" \
        --duration "$duration" --server-pid "$server_pid" --json ${LOAD_FLAGS:-} \
        >"$out/$name.json" 2>"$out/$name.load.log" \
        || { echo "compare: load run against $name failed:" >&2; tail -n 3 "$out/$name.load.log" >&2; }
    # Server CPU seconds (user + system) over its whole life: on a shared
    # machine, frames per CPU-second is steadier than frames per second.
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' \
        "/proc/$server_pid/stat" >"$out/$name.cpu" 2>/dev/null || true
    cleanup
    server_pid=""
}

export RUST_LOG="${RUST_LOG:-warn}"
run_one ssehub 18180 "${SSEHUB_BIN:-target/release/ssehub}" serve --listen 127.0.0.1:18180 --admin-token "$token"
run_one baseline 18181 target/release/baseline --listen 127.0.0.1:18181 --admin-token "$token"
run_one limit 18182 target/release/limit --listen 127.0.0.1:18182 --admin-token "$token"

field() { # file jq-path ("cpu" and "per_cpu" read the .cpu file)
    local cpu_file="${1%.json}.cpu"
    if [[ "$2" == cpu ]]; then
        cat "$cpu_file" 2>/dev/null || echo "-"
        return
    fi
    if [[ "$2" == per_cpu ]]; then
        if [[ -s "$1" && -s "$cpu_file" ]]; then
            jq -r --arg cpu "$(cat "$cpu_file")" \
                'if ($cpu | tonumber) > 0 then (.delivered / ($cpu | tonumber) | round) else "-" end' "$1"
        else
            echo "-"
        fi
        return
    fi
    if [[ -s "$1" ]]; then
        jq -r "$2 // \"-\" | if type == \"number\" then (. * 10 | round / 10) else . end" "$1" 2>/dev/null || echo "-"
    else
        echo "-"
    fi
}

echo
echo "connections=$connections rate=$rate batch=$batch duration=$duration $(nproc) cpus, $(rustc --version), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-22s %14s %14s %14s\n' "" ssehub baseline limit
for row in \
    "established:.established" \
    "published ev/s:.publish_rate" \
    "delivered frames/s:.delivered_per_sec" \
    "latency p50 us:.latency.p50_us" \
    "latency p99 us:.latency.p99_us" \
    "latency p99.9 us:.latency.p999_us" \
    "latency max us:.latency.max_us" \
    "lost (gaps):.lost" \
    "undelivered at stop:.undelivered" \
    "duplicates:.duplicates" \
    "ended by server:.ended_by_server" \
    "connect errors:.connect_errors" \
    "publish errors:.publish_errors" \
    "rss/conn bytes:.rss.per_connection_bytes" \
    "server cpu s:cpu" \
    "frames per cpu-s:per_cpu"; do
    label="${row%%:*}"
    path="${row#*:}"
    printf '%-22s %14s %14s %14s\n' "$label" \
        "$(field "$out/ssehub.json" "$path")" \
        "$(field "$out/baseline.json" "$path")" \
        "$(field "$out/limit.json" "$path")"
done
echo "(raw reports and logs: $out)"
