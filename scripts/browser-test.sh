#!/usr/bin/env bash
# Browser test of the live page: headless Chromium (Debian's `chromium`,
# driven by playwright-core) loads `GET /` of a real `ssehub serve` and
# checks that its figures change as events are published.
#
# Usage: scripts/browser-test.sh            (from anywhere in the repo)
#        SCREENSHOT=/tmp/page.png scripts/browser-test.sh
# Installs what it needs: `chromium` via apt-get when missing (as root, or
# through sudo), and playwright-core via npm in scripts/browser.
# Exits non-zero when a check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { echo "browser-test: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
    log "installing chromium (apt-get)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"

log "installing playwright-core (npm)"
(cd scripts/browser && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })

log "building ssehub (release)"
cargo build --release --quiet --bin ssehub

workdir="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

token="browser-test-$RANDOM$RANDOM"
# Port 0: the server picks a free loopback port and logs it.
cargo run --release --quiet --bin ssehub -- serve \
    --listen 127.0.0.1:0 --admin-token "$token" --keep-alive 5s \
    2>"$workdir/server.log" &
server_pid=$!

url=""
for _ in $(seq 1 300); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$workdir/server.log" | head -n1 | sed 's/^listening on //')" || true
    [ -n "$url" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "server exited early:"; cat "$workdir/server.log" >&2; exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    log "server did not start:"; cat "$workdir/server.log" >&2; exit 1
fi
log "server at $url"

status=0
SSEHUB_URL="$url" SSEHUB_ADMIN_TOKEN="$token" node scripts/browser/live-page.test.mjs || status=$?

if [ "$status" -ne 0 ]; then
    log "server log:"; cat "$workdir/server.log" >&2
fi
exit "$status"
