#!/usr/bin/env bash
# ssehub over each transport in one session: HTTP/1.1 plain, HTTP/1.1 over
# TLS, HTTP/2 over TLS with the subscriptions spread over 10 and over 100
# connections — same load parameters, runs interleaved REPEAT times, medians.
#
#   perf/scripts/load/transports.sh [CONNECTIONS] [RATE] [BATCH] [DURATION]
#   (defaults 1000 1000 50 8s; REPEAT=3; HTTP2_MAX_STREAMS=256 and
#   SERVE_FLAGS="..." for the server)
#
# Builds release, makes a self-signed certificate (openssl), then for each
# run starts `ssehub serve` on a loopback port, runs `ssehub load` against it
# with --json and --server-pid, reads the server's CPU time from /proc, and
# stops it. CPU per frame uses the load report's server_cpu_secs: CPU from
# all connections established to the end of the drain (no TLS handshakes). Prints the median of each figure per transport. Every wait is
# bounded.
set -euo pipefail

connections="${1:-1000}"
rate="${2:-1000}"
batch="${3:-50}"
duration="${4:-8s}"
repeat="${REPEAT:-3}"
token="transports-token"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
bin="${CARGO_TARGET_DIR:-target}/release/ssehub"

echo "transports: building release"
cargo build --release --bin ssehub >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

out="$(mktemp -d)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$out/key.pem" -out "$out/cert.pem" -days 1 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null

server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

port=18190
run_one() { # name tls(0/1) load-flags...
    local name="$1" tls="$2"
    shift 2
    port=$((port + 1))
    local scheme=http tls_flags=()
    if [[ "$tls" == 1 ]]; then
        scheme=https
        tls_flags=(--tls-cert "$out/cert.pem" --tls-key "$out/key.pem")
    fi
    RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --admin-token "$token" \
        "${tls_flags[@]}" --http2-max-streams "${HTTP2_MAX_STREAMS:-256}" ${SERVE_FLAGS:-} >"$out/$name.$run.server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 150); do
        curl -fsk -m 1 "$scheme://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    timeout 600 "$bin" load --url "$scheme://localhost:$port" --cacert "$out/cert.pem" \
        --token "$token" --connections "$connections" --rate "$rate" --batch "$batch" \
        --duration "$duration" --server-pid "$server_pid" --json "$@" \
        >"$out/$name.$run.json" 2>"$out/$name.$run.load.log" \
        || { echo "transports: $name run $run failed:" >&2; tail -n 3 "$out/$name.$run.load.log" >&2; }
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' \
        "/proc/$server_pid/stat" >"$out/$name.$run.cpu" 2>/dev/null || true
    cleanup
    server_pid=""
}

names=(h1 h1-tls h2-tls-10 h2-tls-100)
for run in $(seq 1 "$repeat"); do
    echo "transports: run $run of $repeat"
    run_one h1 0
    run_one h1-tls 1
    run_one h2-tls-10 1 --http2-connections 10
    run_one h2-tls-100 1 --http2-connections 100
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
figure() { # name what
    local name="$1" what="$2"
    for run in $(seq 1 "$repeat"); do
        local json="$out/$name.$run.json" cpu
        cpu="$(cat "$out/$name.$run.cpu" 2>/dev/null || echo 0)"
        [[ -s "$json" ]] || continue
        case "$what" in
            cpu) echo "$cpu" ;;
            ns_per_frame) jq -r 'if .delivered > 0 and .server_cpu_secs != null then .server_cpu_secs * 1e9 / .delivered else empty end' "$json" ;;
            *) jq -r "$what // empty" "$json" ;;
        esac
    done | median | awk '{ if ($1 == "-") print "-"; else if ($1 >= 100) printf "%.0f\n", $1; else printf "%.2f\n", $1 }'
}

echo
echo "connections=$connections rate=$rate serve flags: ${SERVE_FLAGS:-none} batch=$batch duration=$duration repeat=$repeat (medians) $(nproc) cpus, $(rustc --version), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-24s' ""; for name in "${names[@]}"; do printf '%14s' "$name"; done; echo
for row in \
    "established:.established" \
    "delivered frames/s:.delivered_per_sec" \
    "published ev/s:.publish_rate" \
    "server cpu s (life):cpu" \
    "server cpu s (stream):.server_cpu_secs" \
    "server cpu ns/frame:ns_per_frame" \
    "latency p50 us:.latency.p50_us" \
    "latency p99 us:.latency.p99_us" \
    "lost (gaps):.lost" \
    "duplicates:.duplicates" \
    "ended by server:.ended_by_server" \
    "rss/stream bytes:.rss.per_connection_bytes"; do
    label="${row%%:*}"
    path="${row#*:}"
    printf '%-24s' "$label"
    for name in "${names[@]}"; do
        printf '%14s' "$(figure "$name" "$path")"
    done
    echo
done
echo "(raw reports and logs: $out)"
