#!/usr/bin/env bash
# Cluster figures beside single-node figures, in one run (issue 11):
#
#   perf/scripts/load/cluster.sh [DURATION]      (default 5s per scenario)
#
# Builds release, starts a throwaway redis-server (scripts/redis-server.sh,
# no persistence, loopback), then for each scenario starts the servers it
# needs — one `ssehub serve` without Redis ("single"), or three `ssehub
# serve --redis` nodes ("cluster", a fresh --redis-prefix per scenario) —
# runs `ssehub load --json` against them, stops them, and prints one table.
# Scenarios:
#   publish-1    publish as fast as answered, single events (1 subscriber)
#   publish-100  the same in batches of 100
#   fanout       1,000 subscribers, 10,000 events/s offered in batches of 50
#   latency      100 subscribers, 1,000 events/s, single events
# Cluster runs spread subscribers over the three nodes; "via 1" publishes
# through the first node, "via 3" through all three (3 publishers).
# Everything on 127.0.0.1; every wait is bounded.
set -euo pipefail

duration="${1:-5s}"
token="cluster-bench"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
bin="${SSEHUB_BIN:-target/release/ssehub}"

echo "cluster: building release" >&2
cargo build --release --bin ssehub >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

redis_port=$(( 20000 + RANDOM % 20000 ))
bash scripts/redis-server.sh start "$redis_port" >/dev/null
out="$(mktemp -d)"
pids=()
stop_servers() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_servers
    bash scripts/redis-server.sh stop "$redis_port"
}
trap cleanup EXIT

wait_healthy() { # port
    for _ in $(seq 1 150); do
        if curl -fs -m 1 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "cluster: server on port $1 did not start" >&2
    return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_single() {
    local port; port=$(free_port)
    RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --admin-token "$token" --keep-alive 0 \
        2>>"$out/servers.log" &
    pids+=($!)
    wait_healthy "$port"
    urls="http://127.0.0.1:$port"
}

start_cluster() { # prefix
    urls=""
    local port
    for _ in 1 2 3; do
        port=$(free_port)
        RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --admin-token "$token" --keep-alive 0 \
            --redis "redis://127.0.0.1:$redis_port/0" --redis-prefix "$1" 2>>"$out/servers.log" &
        pids+=($!)
        wait_healthy "$port"
        urls="${urls:+$urls,}http://127.0.0.1:$port"
    done
}

run() { # name connections rate batch publishers extra-flags...
    local name="$1" connections="$2" rate="$3" batch="$4" publishers="$5"
    shift 5
    "$bin" load --url "$urls" --token "$token" --connections "$connections" --rate "$rate" \
        --batch "$batch" --publishers "$publishers" --duration "$duration" --drain 3s \
        --json "$@" >"$out/$name.json" 2>>"$out/load.log"
    echo "$name" >>"$out/order"
}

scenario() { # name connections rate batch
    local name="$1"
    shift
    start_single
    run "$name/single" "$@" 1
    stop_servers
    start_cluster "bench-$name-1"
    run "$name/cluster-via-1" "$@" 1
    stop_servers
    start_cluster "bench-$name-3"
    run "$name/cluster-via-3" "$@" 3 --publish-all
    stop_servers
}

mkdir -p "$out/publish-1" "$out/publish-100" "$out/fanout" "$out/latency"
scenario publish-1 1 0 1
scenario publish-100 1 0 100
scenario fanout 1000 10000 50
scenario latency 100 1000 1

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
names = [line.strip() for line in open(os.path.join(out, "order"))]
print(f"{'run':34} {'published/s':>12} {'delivered/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5} {'dup':>4} {'pub err':>7}")
for name in names:
    r = json.load(open(os.path.join(out, name + ".json")))
    lat = r["latency"]
    print(f"{name:34} {r['publish_rate']:>12,.0f} {r['delivered_per_sec']:>12,.0f} "
          f"{lat['p50_us']/1000:>8.2f} {lat['p99_us']/1000:>8.2f} {r['lost']:>5} {r['duplicates']:>4} {r['publish_errors']:>7}")
PY
