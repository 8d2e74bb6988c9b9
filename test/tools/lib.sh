# Shared by the tools' smoke tests: a scratch directory, background processes started with
# `start` and killed by pid on exit, ready files, JSON checks. Source it; it sets -euo pipefail.
set -euo pipefail
: "${UDPGEN:?UDPGEN must name the udpgen binary}"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the JSON"; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/mpt-tools.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

# start CMD...: runs CMD in the background; its pid is in $LAST.
start() {
    "$@" &
    LAST=$!
    PIDS+=("$LAST")
}

# wait_ready FILE: prints the address a tool wrote to FILE once bound (5 s at most).
wait_ready() {
    local i
    for i in $(seq 100); do
        if [[ -s $1 ]]; then cat "$1"; return 0; fi
        sleep 0.05
    done
    echo "FAIL: nothing in $1 after 5 s" >&2
    exit 1
}

# stop PID: SIGTERM and wait (the tools write their stats on SIGTERM).
stop() {
    kill -TERM "$1"
    wait "$1"
}

# check FILE 'EXPR' ...: each EXPR is Python over the JSON object d; prints it, fails if false.
check() {
    python3 - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = 0
for e in sys.argv[2:]:
    ok = eval(e, {"d": d})
    print(("ok   " if ok else "FAIL ") + e)
    bad += not ok
sys.exit(1 if bad else 0)
PY
}
