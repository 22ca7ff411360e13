#!/usr/bin/env bash
# A throwaway redis-server for the cluster tests and for trying a cluster by
# hand: Debian's `redis-server`, installed with apt-get when missing, on a
# loopback port, with no persistence (no RDB, no AOF).
#
# Usage: scripts/redis-server.sh install        install redis-server if missing
#        scripts/redis-server.sh start [PORT]   start one in the background (default 6379);
#                                               prints its pid; logs to /tmp/ssehub-redis-PORT.log
#        scripts/redis-server.sh stop [PORT]    stop the one started on PORT
# The cluster tests (tests/cluster.rs) start and stop their own servers
# through the same binary; with CI=true a server that cannot start fails them.
set -euo pipefail

log() { echo "redis-server.sh: $*" >&2; }

install() {
    if command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    log "installing redis-server (apt-get)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    command -v redis-server >/dev/null 2>&1
}

case "${1:-}" in
    install)
        install
        ;;
    start)
        install
        port="${2:-6379}"
        redis-server --save '' --appendonly no --port "$port" --bind 127.0.0.1 \
            --daemonize yes --pidfile "/tmp/ssehub-redis-$port.pid" \
            --logfile "/tmp/ssehub-redis-$port.log"
        for _ in $(seq 1 50); do
            if redis-cli -p "$port" ping >/dev/null 2>&1; then
                cat "/tmp/ssehub-redis-$port.pid"
                exit 0
            fi
            sleep 0.1
        done
        log "redis-server did not answer on port $port (see /tmp/ssehub-redis-$port.log)"
        exit 1
        ;;
    stop)
        port="${2:-6379}"
        if [ -f "/tmp/ssehub-redis-$port.pid" ]; then
            kill "$(cat "/tmp/ssehub-redis-$port.pid")" 2>/dev/null || true
            rm -f "/tmp/ssehub-redis-$port.pid"
        fi
        ;;
    *)
        echo "usage: $0 install | start [PORT] | stop [PORT]" >&2
        exit 2
        ;;
esac
