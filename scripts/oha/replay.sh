#!/usr/bin/env bash
# Connect/replay storms on GET /events:
#  1. resume from an id REPLAY events back (default 1000): each request gets
#     the headers and the replayed frames, then is cut by oha's short timeout
#     (TIMEOUT, default 200ms) - the run measures connect + subscribe + replay
#     under churn, and timeouts are the expected outcome;
#  2. resume from an id of another generation: every request is a quick 410;
#  3. live subscribe with no resume point, cut by the same timeout.
#
#   TOKEN=T URL=http://127.0.0.1:8080 scripts/oha/replay.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_token
ensure_oha

replay="${REPLAY:-1000}"
timeout_="${TIMEOUT:-200ms}"

# Publish REPLAY events after a marker and resume from the marker's id.
marker="$(publish_once '{"type":"oha-marker"}' | jq -r '.ids[0]')"
remaining="$replay"
while (( remaining > 0 )); do
    n=$(( remaining < 1000 ? remaining : 1000 ))
    body="[$(for i in $(seq 1 "$n"); do printf '{"type":"oha","n":%d}' "$i"; [[ $i -lt $n ]] && printf ','; done)]"
    publish_once "$body" >/dev/null
    remaining=$(( remaining - n ))
done

echo "== replay storm: from=$marker ($replay events back), timeout $timeout_"
run_oha -t "$timeout_" "$URL/events?from=$marker"
echo
echo "== gone storm: from an id of another generation (expect 410)"
run_oha -t "$timeout_" "$URL/events?from=0000000000000000-1"
echo
echo "== live connect storm: no resume point, timeout $timeout_"
run_oha -t "$timeout_" "$URL/events"
