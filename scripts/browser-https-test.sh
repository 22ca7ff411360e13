#!/usr/bin/env bash
# Browser test of HTTPS + HTTP/2: headless Chromium (Debian's `chromium`,
# driven by playwright-core) opens 20 EventSources to one `ssehub serve`
# origin over TLS with a self-signed certificate made here, and all 20
# receive every event (see scripts/browser/https-eventsource.test.mjs).
#
# Usage: scripts/browser-https-test.sh      (from anywhere in the repo)
# Installs what it needs: `chromium` and `openssl` via apt-get when missing
# (as root, or through sudo), and playwright-core via npm in scripts/browser.
# Exits non-zero when a check fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { echo "browser-https-test: $*" >&2; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
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

log "making a self-signed certificate for localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$workdir/key.pem" -out "$workdir/cert.pem" -days 1 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null

token="browser-https-test-$RANDOM$RANDOM"
cargo run --release --quiet --bin ssehub -- serve \
    --listen 127.0.0.1:0 --admin-token "$token" --keep-alive 5s \
    --tls-cert "$workdir/cert.pem" --tls-key "$workdir/key.pem" \
    2>"$workdir/server.log" &
server_pid=$!

port=""
for _ in $(seq 1 300); do
    port="$(grep -o 'listening on https://127.0.0.1:[0-9]*' "$workdir/server.log" | head -n1 | sed 's/.*://')" || true
    [ -n "$port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "server exited early:"; cat "$workdir/server.log" >&2; exit 1
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    log "server did not start:"; cat "$workdir/server.log" >&2; exit 1
fi
url="https://localhost:$port"
log "server at $url"

status=0
SSEHUB_URL="$url" SSEHUB_ADMIN_TOKEN="$token" node scripts/browser/https-eventsource.test.mjs || status=$?

if [ "$status" -ne 0 ]; then
    log "server log:"; cat "$workdir/server.log" >&2
fi
exit "$status"
