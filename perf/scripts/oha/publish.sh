#!/usr/bin/env bash
# Publish throughput: POST /admin/events with a single event, then with a
# batch of BATCH events (default 100), each for DURATION over CONNS
# connections. Prints oha's summary for each.
#
#   TOKEN=T URL=http://127.0.0.1:8080 perf/scripts/oha/publish.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_token
ensure_oha

batch="${BATCH:-100}"
single='{"type":"oha","n":1,"text":"hello"}'
batched="$(json_batch "$batch" oha)"

echo "== publish: one event per request ($DURATION, $CONNS connections)"
run_oha -m POST -H "Authorization: Bearer $TOKEN" -T application/json -d "$single" "$URL/admin/events"
echo
echo "== publish: $batch events per request ($DURATION, $CONNS connections)"
echo "   (events/s = requests/s x $batch)"
run_oha -m POST -H "Authorization: Bearer $TOKEN" -T application/json -d "$batched" "$URL/admin/events"
