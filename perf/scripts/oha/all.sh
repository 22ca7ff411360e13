#!/usr/bin/env bash
# Every oha scenario against one server: publish, replay storms, stats.
#
#   TOKEN=T URL=http://127.0.0.1:8080 DURATION=10s perf/scripts/oha/all.sh
set -euo pipefail
dir="$(dirname "$0")"
"$dir/publish.sh"
echo
"$dir/replay.sh"
echo
"$dir/stats.sh"
