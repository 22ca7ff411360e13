#!/usr/bin/env bash
# Stats polling: GET /admin/stats for DURATION over CONNS connections, then
# GET /healthz for comparison.
#
#   TOKEN=T URL=http://127.0.0.1:8080 perf/scripts/oha/stats.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_token
ensure_oha

echo "== GET /admin/stats ($DURATION, $CONNS connections)"
run_oha -H "Authorization: Bearer $TOKEN" "$URL/admin/stats"
echo
echo "== GET /healthz ($DURATION, $CONNS connections)"
run_oha "$URL/healthz"
