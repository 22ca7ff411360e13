#!/usr/bin/env bash
# Connect/replay storms on GET /events.
#
#  1. replay storm: resume from an id REPLAY events back (default 1000). Each
#     request gets the headers and the replayed frames, then oha cuts it at
#     TIMEOUT (default 50ms). With STORM_CONNS connections (default 64) that
#     is about STORM_CONNS / TIMEOUT subscribe+replay cycles per second
#     (1,280/s by default, i.e. 1.28 M replayed frames/s asked of the server).
#     Every request should end as "timeout" (the stream was open when cut);
#     any other error (refused, reset, 4xx/5xx) is a failure. A curl check
#     first shows how many frames one resume actually returns.
#  2. gone storm: resume from an id of another generation: every request is
#     a quick 410; requests/s is the server's reject rate.
#  3. live connect storm: no resume point, cut at TIMEOUT like (1).
#
#   TOKEN=T URL=http://127.0.0.1:8080 perf/scripts/oha/replay.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_token
ensure_oha

replay="${REPLAY:-1000}"
timeout_="${TIMEOUT:-50ms}"
storm_conns="${STORM_CONNS:-64}"

# Publish REPLAY events after a marker and resume from the marker's id.
marker="$(publish_once '{"type":"oha-marker"}' | jq -r '.ids[0]')"
remaining="$replay"
while ((remaining > 0)); do
    n=$((remaining < 1000 ? remaining : 1000))
    publish_once "$(json_batch "$n" oha)" >/dev/null
    remaining=$((remaining - n))
done

got="$(curl -sN -m 1 "$URL/events?from=$marker" 2>/dev/null | grep -c '^data:' || true)"
echo "== replay check: one resume from $marker returned $got of $replay frames within 1 s"
echo
echo "== replay storm: from=$marker ($replay events back), $storm_conns connections, cut at $timeout_"
CONNS="$storm_conns" run_oha -t "$timeout_" "$URL/events?from=$marker"
echo
echo "== gone storm: from an id of another generation (expect 410)"
run_oha -t "$timeout_" "$URL/events?from=0000000000000000-1"
echo
echo "== live connect storm: no resume point, $storm_conns connections, cut at $timeout_"
CONNS="$storm_conns" run_oha -t "$timeout_" "$URL/events"
