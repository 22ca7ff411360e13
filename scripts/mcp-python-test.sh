#!/usr/bin/env bash
# Resuming a dropped MCP tool call, tested with a client nobody here wrote:
# the official Python MCP SDK (PyPI `mcp`, 2.x) against the store's example
# server (store/examples/mcp_server.rs) on 127.0.0.1, a free port. See
# scripts/mcp/resume_test.py for what is checked, on both protocol eras the
# SDK speaks (2025-11-25 with a session, 2026-07-28 stateless).
#
# The SDK is installed when missing, into a venv under the cargo target dir
# (or with `pip --user` if no venv can be made). With CI=true, failing to
# install it fails the run; otherwise that is reported and skipped. A server
# that does not build or start always fails.
#
# Prints one line per check and ends with "N passed, M failed"; exits
# non-zero if any check failed.
#
# Run: bash scripts/mcp-python-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Absolute: the test itself runs from scripts/mcp.
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
VENV="$TARGET/mcp-venv"
MCP_SPEC='mcp>=2.3,<3'

unavailable() {
  echo "mcp-python-test: $*" >&2
  if [ "${CI:-}" = true ]; then
    exit 1
  fi
  echo "mcp-python-test: skipped (with CI=true this fails the run)"
  exit 0
}

PY="$VENV/bin/python"
if ! "$PY" -c 'import mcp' 2>/dev/null; then
  command -v python3 >/dev/null || unavailable "python3 not found"
  if python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet "$MCP_SPEC"; then
    PY="$VENV/bin/python"
  elif python3 -m pip install --quiet --user "$MCP_SPEC"; then
    PY=python3
  else
    unavailable "cannot install $MCP_SPEC"
  fi
  "$PY" -c 'import mcp' || unavailable "$MCP_SPEC installed but not importable"
fi

cargo build --quiet -p ssehub-store --features rmcp --example mcp_server
SERVER="$TARGET/debug/examples/mcp_server"

LOG="$(mktemp)"
"$SERVER" 127.0.0.1:0 2>"$LOG" &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -f "$LOG"
}
trap cleanup EXIT

URL=""
for _ in $(seq 100); do # at most 10 s
  URL="$(grep -o 'http://127\.0\.0\.1:[0-9]*/mcp' "$LOG" || true)"
  [ -n "$URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$URL" ]; then
  cat "$LOG" >&2
  echo "mcp-python-test: the example server did not start" >&2
  exit 1
fi

cd scripts/mcp
timeout 300 "$PY" resume_test.py "$URL"
