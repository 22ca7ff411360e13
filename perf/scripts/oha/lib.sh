# Shared by the oha scripts: defaults and the oha install. Source it.
#
#   URL       server base URL        (default http://127.0.0.1:8080; loopback only)
#   TOKEN     admin bearer token     (default $SSEHUB_ADMIN_TOKEN)
#   DURATION  each oha run           (default 10s)
#   CONNS     concurrent connections (default 16)

URL="${URL:-http://127.0.0.1:8080}"
TOKEN="${TOKEN:-${SSEHUB_ADMIN_TOKEN:-}}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-16}"

case "$URL" in
    http://127.*|http://localhost*|http://\[::1\]*) ;;
    *) echo "oha: refusing non-loopback URL $URL" >&2; exit 2 ;;
esac

ensure_oha() {
    if ! command -v oha >/dev/null 2>&1; then
        echo "oha: installing (cargo install oha --locked)" >&2
        cargo install oha --locked >&2
    fi
}

need_token() {
    if [[ -z "$TOKEN" ]]; then
        echo "oha: set TOKEN (or SSEHUB_ADMIN_TOKEN) to the server's admin token" >&2
        exit 2
    fi
}

# oha with the text summary only (no TUI), bounded by DURATION; extra
# arguments pass through. timeout is the backstop.
run_oha() {
    local secs
    secs="$(duration_secs "$DURATION")"
    timeout "$((secs + 60))" oha --no-tui -z "$DURATION" -c "$CONNS" "$@"
}

duration_secs() { # 10s / 500ms / 2m -> whole seconds, at least 1
    local d="$1"
    case "$d" in
        *ms) echo 1 ;;
        *s) echo "${d%s}" ;;
        *m) echo "$(( ${d%m} * 60 ))" ;;
        *) echo "$d" ;;
    esac
}

# POSTs one JSON body to /admin/events and prints the response.
publish_once() {
    curl -fsS -m 5 -X POST "$URL/admin/events" \
        -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d "$1"
}

# A JSON array of N events of type TYPE: [{"type":TYPE,"n":1,...},...].
json_batch() { # N TYPE
    local n="$1" type="$2" i sep=""
    printf '['
    for ((i = 1; i <= n; i++)); do
        printf '%s{"type":"%s","n":%d,"text":"hello"}' "$sep" "$type" "$i"
        sep=","
    done
    printf ']'
}
