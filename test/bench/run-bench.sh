#!/usr/bin/env bash
# run-bench.sh: mptunnel's throughput, CPU, memory and latency benchmark, set against the floor.
#
#   udpgen send -> mptunnel client -> N x mptunnel bridge -> mptunnel server -> udpgen echo
#   udpgen send -> mpt-floor client -> N x mpt-floor relay -> mpt-floor server -> udpgen echo
#
# Both topologies run on 127.0.0.1 with the same socket buffers everywhere; the echo sends every
# datagram back, so both directions are measured. For each number of paths and payload size:
#   - the highest rate with < 0.1% round-trip loss (doubling from 10,000/s, then bisecting);
#   - CPU seconds per million delivered datagrams of every process, from /proc/PID/stat, during
#     one trial at a rate both carry without loss (the lower of the two loss-free rates);
#   - peak RSS (VmHWM) of every process;
#   - round-trip latency at 1,000 datagrams/s minus that of udpgen -> echo directly, measured
#     right after, with the same processes running.
# Then fec mode against redundant mode over 3 paths through lossy bridges (5% and 20% each way):
# residual round-trip loss, bytes on the wire per payload byte, CPU per delivered datagram and
# the round trip at 1,000 datagrams/s; their CPU at 50,000 datagrams/s over 3 loss-free paths
# (fec_procs.py); and a 10,000-flow memory check of the client and server.
#
# Only the C programs move packets; python3 (stdlib) does arithmetic and formatting.
# Usage: test/bench/run-bench.sh [--quick] [--paths "1 3"] [--sizes "64 1200"] [--duration SEC]
#            [--build DIR] [--markdown FILE] [--flows N] [--bufsize BYTES] [--modes LOSSES]
set -euo pipefail
# Configurations hold secrets: mptunnel refuses them in files that others can read.
umask 077

usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "$0" | sed '/^$/d'
    cat <<'EOF'
  --quick          smoke run: one small trial per configuration (sizes "1200" and modes "0.2"
                   unless given), 1,000 flows; checks that traffic went through and figures
                   came out
  --paths LIST     numbers of paths (default "1 3")
  --sizes LIST     payload sizes in bytes (default "64 1200")
  --duration SEC   length of each trial (default 2; latency trials at least 3)
  --build DIR      build directory with cmd/mptunnel, test/tools/udpgen, test/bench/mpt-floor
                   (default build/; the variables MPTUNNEL, UDPGEN, MPT_FLOOR override)
  --markdown FILE  also write the results as a markdown section (for update-readme.sh)
  --flows N        flows of the memory check (default 10000; 0 skips it)
  --bufsize BYTES  SO_SNDBUF/SO_RCVBUF of every socket (default 4194304)
  --modes LOSSES   loss per path and direction of the rows of fec against redundant mode
                   (default "0.05 0.2"; "" skips them)
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cmdline="test/bench/run-bench.sh${*:+ $*}"
quick=0 paths="1 3" sizes="64 1200" duration=2 build="$root/build" markdown="" nflows=10000
bufsize=4194304 sizes_given="" mode_losses="0.05 0.2" modes_given=""
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --paths) paths=$2; shift ;;
    --sizes) sizes=$2 sizes_given=1; shift ;;
    --duration) duration=$2; shift ;;
    --build) build=$2; shift ;;
    --markdown) markdown=$2; shift ;;
    --flows) nflows=$2; shift ;;
    --bufsize) bufsize=$2; shift ;;
    --modes) mode_losses=$2 modes_given=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-bench.sh: unknown option \`$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[[ $build = /* ]] || build="$PWD/$build"
# The environment may name the binaries one by one (ctest does).
MPTUNNEL=${MPTUNNEL:-$build/cmd/mptunnel} UDPGEN=${UDPGEN:-$build/test/tools/udpgen}
FLOOR=${MPT_FLOOR:-$build/test/bench/mpt-floor}
for b in "$MPTUNNEL" "$UDPGEN" "$FLOOR"; do
    [[ -x $b ]] || { echo "run-bench.sh: $b not found (build first, or --build DIR)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "SKIP: python3 is needed for the arithmetic"; exit 77; }
linger=300
if ((quick)); then
    [[ $nflows = 10000 ]] && nflows=1000
    [[ $sizes_given ]] || sizes=1200
    [[ $modes_given ]] || mode_losses=0.2
    linger=200
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

T=$(mktemp -d "${TMPDIR:-/tmp}/mpt-bench.XXXXXX")
RES=$T/results.tsv
: >"$RES"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

say() { printf "%s\n" "$*" >&2; }
fail() { say "run-bench.sh: FAIL: $*"; exit 1; }
# res KIND PATHS SIZE KEY VALUE: one figure for the report.
res() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
calc() { awk "BEGIN { print $1 }"; }

# free_ports N: N UDP ports that no socket of this machine was bound to a moment ago, below the
# ephemeral range (where the relays' own upstream sockets would take them meanwhile).
declare -A GIVEN=()
read -r port_hi _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || port_hi=32768
port_lo=$((port_hi > 12000 ? port_hi - 10000 : 1024))
free_ports() {
    local used out=() p
    used=" $(awk 'NR > 1 {split($2, a, ":"); printf "%d ", strtonum("0x" a[2])}' \
        /proc/net/udp /proc/net/udp6 2>/dev/null) "
    while ((${#out[@]} < $1)); do
        p=$((port_lo + (RANDOM * 32768 + RANDOM) % (port_hi - port_lo)))
        [[ $used = *" $p "* || -n ${GIVEN[$p]:-} ]] && continue
        GIVEN[$p]=1
        out+=("$p")
    done
    echo "${out[*]}"
}

# Processes of the topology under test: role name -> pid, in start order.
declare -A RPID=()
ROLES=()
# spawn ROLE LOG CMD...: starts a process of the topology.
spawn() {
    local role=$1 log=$2
    shift 2
    "$@" >"$log.out" 2>"$log" &
    RPID[$role]=$!
    ROLES+=("$role")
    PIDS+=("$!")
}

# wait_for FILE REGEX PID: until FILE matches REGEX (5 s), failing early if PID died.
wait_for() {
    local i
    for i in $(seq 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || fail "process $3 exited: $(tail -3 "$1")"
        sleep 0.05
    done
    fail "no \`$2' in $1 after 5 s: $(tail -3 "$1")"
}

topology_down() {
    local r
    for r in "${ROLES[@]}"; do kill "${RPID[$r]}" 2>/dev/null || true; done
    for r in "${ROLES[@]}"; do wait "${RPID[$r]}" 2>/dev/null || true; done
    RPID=()
    ROLES=()
}

ticks=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# busy_jiffies: jiffies all CPUs spent outside idle and iowait since boot, and the total.
busy_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# topology_up KIND N: starts the echo, the server, N bridges or relays and the client; sets ENTRY.
topology_up() {
    local kind=$1 n=$2 i d=$T/$1-$2 ports
    mkdir -p "$d"
    read -ra ports <<<"$(free_ports $((n + 3)))"
    local echo_addr=127.0.0.1:${ports[0]} server=127.0.0.1:${ports[1]}
    ENTRY=127.0.0.1:${ports[2]} ECHO=$echo_addr
    spawn echo "$d/echo.log" "$UDPGEN" echo --listen "$echo_addr" --bufsize "$bufsize" \
        --ready "$d/echo.addr" --stats "$d/echo.json"
    wait_for "$d/echo.addr" . "${RPID[echo]}"
    if [[ $kind = tunnel ]]; then
        local bridges=""
        for ((i = 1; i <= n; i++)); do bridges+="bridge = 127.0.0.1:${ports[$((i + 2))]}"$'\n'; done
        cat >"$d/tunnel.ini" <<EOF
[tunnel]
secret = $($MPTUNNEL genkey)
sndbuf = $bufsize
rcvbuf = $bufsize
log_level = info

[client]
listen = $ENTRY
${bridges}max_flows = 1024
control = $d/client.sock

[server]
listen = $server
target = $echo_addr
control = $d/server.sock
EOF
        spawn server "$d/server.log" "$MPTUNNEL" server -c "$d/tunnel.ini"
        wait_for "$d/server.log" "server listening" "${RPID[server]}"
        for ((i = 1; i <= n; i++)); do
            spawn "bridge$i" "$d/bridge$i.log" "$MPTUNNEL" bridge \
                --listen "127.0.0.1:${ports[$((i + 2))]}" --to "$server" \
                --sndbuf "$bufsize" --rcvbuf "$bufsize"
            wait_for "$d/bridge$i.log" "listening on" "${RPID[bridge$i]}"
        done
        spawn client "$d/client.log" "$MPTUNNEL" client -c "$d/tunnel.ini"
        wait_for "$d/client.log" "client listening" "${RPID[client]}"
    else
        local tos=()
        spawn server "$d/server.log" "$FLOOR" server --listen "$server" --to "$echo_addr" \
            --bufsize "$bufsize" --ready "$d/server.addr"
        wait_for "$d/server.addr" . "${RPID[server]}"
        for ((i = 1; i <= n; i++)); do
            spawn "relay$i" "$d/relay$i.log" "$FLOOR" relay \
                --listen "127.0.0.1:${ports[$((i + 2))]}" --to "$server" \
                --bufsize "$bufsize" --ready "$d/relay$i.addr"
            wait_for "$d/relay$i.addr" . "${RPID[relay$i]}"
            tos+=(--to "127.0.0.1:${ports[$((i + 2))]}")
        done
        spawn client "$d/client.log" "$FLOOR" client --listen "$ENTRY" "${tos[@]}" \
            --bufsize "$bufsize" --ready "$d/client.addr"
        wait_for "$d/client.addr" . "${RPID[client]}"
    fi
}

# trial TO RATE COUNT SIZE: one udpgen send run. Sets RECV (unique echoes), LOSS (ratio),
# PPS (achieved), P50/P99/P999 (round trip, us), CPU[role] (seconds during the run) and BUSY
# (CPUs busy on average during the run, whoever used them).
declare -A CPU=()
trial() {
    local to=$1 rate=$2 count=$3 size=$4 r before=() json=$T/send.json
    for r in "${ROLES[@]}"; do before+=("$(cpu_ticks "${RPID[$r]}")"); done
    local b0 t0 b1 t1
    read -r b0 t0 < <(busy_jiffies)
    timeout $((count / (rate > 0 ? rate : 1) + 30)) "$UDPGEN" send --to "$to" --count "$count" \
        --rate "$rate" --size "$size" --linger "$linger" --bufsize "$bufsize" --json \
        >"$json" 2>"$T/send.err" || fail "udpgen send: $(cat "$T/send.err")"
    read -r b1 t1 < <(busy_jiffies)
    BUSY=$(calc "$(nproc) * ($b1 - $b0) / ($t1 - $t0 + 0.001)")
    local i=0
    CPU=()
    for r in "${ROLES[@]}"; do
        kill -0 "${RPID[$r]}" 2>/dev/null || fail "$r (pid ${RPID[$r]}) died during a trial"
        CPU[$r]=$(calc "($(cpu_ticks "${RPID[$r]}") - ${before[$i]}) / $ticks")
        i=$((i + 1))
    done
    read -r _ RECV LOSS PPS P50 P99 P999 BAD <<<"$(jfields "$json" sent received_unique \
        loss_ratio rate_pps p50 p99 p999 corrupt misdelivered duplicates |
        awk '{print $1, $2, $3, $4, $5, $6, $7, $8 + $9 + $10}')"
    ((BAD == 0)) || fail "corrupt, misdelivered or duplicate datagrams: $(cat "$T/send.err")"
}

# jfields FILE KEY...: the first value of each KEY in udpgen's one-line JSON (the summary's
# figures come before the per-flow list, and rtt_us's p50/p99/p999 are unique).
jfields() {
    local f=$1 k v out=()
    shift
    for k; do
        v=$(grep -o "\"$k\":[-0-9.e+]*" "$f" | head -1)
        out+=("${v#*:}")
    done
    echo "${out[*]}"
}

good() { awk "BEGIN { exit !($RECV > 0 && $LOSS < 0.001) }"; }

# attempt RATE COUNT SIZE: a trial through the topology, up to twice more while it loses too much,
# since one burst of other work on a small machine can cost a trial its datagrams.
attempt() {
    local k
    for k in 1 2 3; do
        trial "$ENTRY" "$@"
        good && return 0
        ((k < 3)) && say "    (loss $LOSS at $1/s; once more)"
    done
    return 1
}

# up KIND PATHS SIZE: the topology, warmed up: the handshake and the first flow happen outside
# any measurement.
up() {
    topology_up "$1" "$2"
    trial "$ENTRY" 1000 $((quick ? 100 : 200)) "$3"
    ((RECV > 0)) || fail "$1 with $2 path(s): nothing came back from the warm-up"
}

# search KIND PATHS SIZE: the highest loss-free rate (in BEST, requested) and the peak RSS of
# every process over the whole search.
BEST=0
search() {
    local kind=$1 n=$2 size=$3 lo=0 hi=0 rate=10000 best_pps=0 count ok cap=2560000 r
    up "$kind" "$n" "$size"
    while :; do
        count=$((rate * duration))
        if attempt "$rate" "$count" "$size"; then ok=1; else ok=0; fi
        say "  $kind paths=$n size=$size: $rate/s -> achieved $PPS/s, loss $LOSS"
        if ((ok)); then
            lo=$rate best_pps=$PPS
            # A sender that cannot keep up bounds the search, not the relay.
            awk "BEGIN { exit !($PPS < 0.9 * $rate) }" &&
                { res "$kind" "$n" "$size" sender_limited 1; break; }
            ((rate * 2 <= cap)) || break
            rate=$((rate * 2))
        else
            hi=$rate
            break
        fi
    done
    for _ in 1 2 3; do
        ((hi > 0)) || break
        rate=$(((lo + hi) / 2))
        count=$((rate * duration))
        if attempt "$rate" "$count" "$size"; then ok=1; else ok=0; fi
        say "  $kind paths=$n size=$size: $rate/s -> achieved $PPS/s, loss $LOSS"
        if ((ok)); then lo=$rate best_pps=$PPS; else hi=$rate; fi
    done
    res "$kind" "$n" "$size" rate_req "$lo"
    res "$kind" "$n" "$size" rate_pps "$best_pps"
    for r in "${ROLES[@]}"; do res "$kind" "$n" "$size" "rss.$r" "$(hwm_kb "${RPID[$r]}")"; done
    topology_down
    BEST=$lo
}

# profile KIND PATHS SIZE RATE: CPU per delivered datagram at RATE, and latency at 1,000/s.
profile() {
    local kind=$1 n=$2 size=$3 rate=$4 count r
    up "$kind" "$n" "$size"
    if ((quick)); then count=1000; else count=$((rate * duration)); fi
    attempt "$rate" "$count" "$size" || true
    say "  $kind paths=$n size=$size: CPU at $rate/s -> loss $LOSS, $BUSY CPUs busy"
    if ((quick)); then
        # The smoke run has no search: this trial stands for the rate, and memory is read here.
        res "$kind" "$n" "$size" rate_req "$rate"
        res "$kind" "$n" "$size" rate_pps "$PPS"
        for r in "${ROLES[@]}"; do res "$kind" "$n" "$size" "rss.$r" "$(hwm_kb "${RPID[$r]}")"; done
    fi
    res "$kind" "$n" "$size" cpu_rate "$PPS"
    res "$kind" "$n" "$size" cpu_loss "$LOSS"
    res "$kind" "$n" "$size" cpu_busy "$BUSY"
    res "$kind" "$n" "$size" cpu_delivered $((2 * RECV))
    for r in "${ROLES[@]}"; do res "$kind" "$n" "$size" "cpu.$r" "${CPU[$r]}"; done
    # Latency through the relays, then straight to the same echo at once: the difference is what
    # the relays add, with the machine in the same state for both.
    if ((quick)); then count=200; else count=$((1000 * (duration > 5 ? duration : 5))); fi
    trial "$ENTRY" 1000 "$count" "$size"
    res "$kind" "$n" "$size" lat.p50 "$P50"
    res "$kind" "$n" "$size" lat.p99 "$P99"
    res "$kind" "$n" "$size" lat.p999 "$P999"
    res "$kind" "$n" "$size" lat.loss "$LOSS"
    trial "$ECHO" 1000 "$count" "$size"
    res "$kind" "$n" "$size" direct.p50 "$P50"
    res "$kind" "$n" "$size" direct.p99 "$P99"
    res "$kind" "$n" "$size" direct.p999 "$P999"
    say "  $kind paths=$n size=$size: round trip at 1000/s p50 $(grep -P "^$kind\t$n\t$size\tlat.p50\t" "$RES" | cut -f5) us, direct $P50 us"
    topology_down
}

# flows_check N: one datagram from each of N flows through client -> server (direct path), then
# the resident memory of both.
flows_check() {
    local total=$1 d=$T/flows ports left chunk sent=0 recv=0
    mkdir -p "$d"
    read -ra ports <<<"$(free_ports 3)"
    spawn echo "$d/echo.log" "$UDPGEN" echo --listen "127.0.0.1:${ports[0]}" \
        --bufsize "$bufsize" --ready "$d/echo.addr" --stats "$d/echo.json"
    wait_for "$d/echo.addr" . "${RPID[echo]}"
    cat >"$d/tunnel.ini" <<EOF
[tunnel]
secret = $($MPTUNNEL genkey)
sndbuf = $bufsize
rcvbuf = $bufsize

[client]
listen = 127.0.0.1:${ports[2]}
bridge = 127.0.0.1:${ports[1]}
max_flows = $((total > 1024 ? total + 100 : 1024))
control = $d/client.sock

[server]
listen = 127.0.0.1:${ports[1]}
target = 127.0.0.1:${ports[0]}
max_flows = $((total > 4096 ? total + 100 : 4096))
control = $d/server.sock
EOF
    spawn server "$d/server.log" "$MPTUNNEL" server -c "$d/tunnel.ini"
    wait_for "$d/server.log" "server listening" "${RPID[server]}"
    spawn client "$d/client.log" "$MPTUNNEL" client -c "$d/tunnel.ini"
    wait_for "$d/client.log" "client listening" "${RPID[client]}"
    local c0 s0
    c0=$(rss_kb "${RPID[client]}") s0=$(rss_kb "${RPID[server]}")
    trial "127.0.0.1:${ports[2]}" 1000 100 64
    left=$total
    while ((left > 0)); do
        chunk=$((left > 2500 ? 2500 : left))
        timeout 60 "$UDPGEN" send --to "127.0.0.1:${ports[2]}" --count "$chunk" --flows "$chunk" \
            --rate 5000 --size 64 --linger 1000 --json >"$d/send.json" 2>"$d/send.err" ||
            fail "udpgen send --flows $chunk: $(cat "$d/send.err")"
        read -r s r <<<"$(jfields "$d/send.json" sent received_unique)"
        sent=$((sent + s)) recv=$((recv + r)) left=$((left - chunk))
    done
    say "  $total flows: sent $sent, echoed $recv"
    res flows "$total" 64 sent "$sent"
    res flows "$total" 64 echoed "$recv"
    res flows "$total" 64 rss0.client "$c0"
    res flows "$total" 64 rss0.server "$s0"
    res flows "$total" 64 rss.client "$(rss_kb "${RPID[client]}")"
    res flows "$total" 64 rss.server "$(rss_kb "${RPID[server]}")"
    res flows "$total" 64 hwm.client "$(hwm_kb "${RPID[client]}")"
    res flows "$total" 64 hwm.server "$(hwm_kb "${RPID[server]}")"
    topology_down
}

# status_bytes INI ROLE: the bytes the role sent on its paths (every UDP payload: datagrams,
# repairs, probes, headers), from its control socket.
status_bytes() {
    "$MPTUNNEL" status -c "$1" --json "--$2" | python3 -c '
import json, sys
st = json.load(sys.stdin)
if "session" in st:
    print(sum(p["tx"]["bytes"] for p in st["paths"]))
else:
    print(sum(p["tx"]["bytes"] for s in st["sessions"]["list"] for p in s["paths"]))'
}

# mode_row MODE LOSS: the tunnel in MODE over 3 paths through bridges losing LOSS each way:
# round-trip loss, bytes on the wire per payload byte (client and server, both ways), CPU of the
# client and the server per delivered datagram at MODE_RATE, and the round trip at 1,000/s.
MODE_RATE=5000 MODE_SIZE=1000
mode_row() {
    local mode=$1 loss=$2 d=$T/mode-$1-$2 ports i r count tag c0 s0 c1 s1
    tag=$(awk -v l="$loss" 'BEGIN { printf "%d", l * 1000 + 0.5 }')
    mkdir -p "$d"
    read -ra ports <<<"$(free_ports 6)"
    local echo_addr=127.0.0.1:${ports[0]} server=127.0.0.1:${ports[1]} entry=127.0.0.1:${ports[2]}
    spawn echo "$d/echo.log" "$UDPGEN" echo --listen "$echo_addr" --bufsize "$bufsize" \
        --ready "$d/echo.addr" --stats "$d/echo.json"
    wait_for "$d/echo.addr" . "${RPID[echo]}"
    cat >"$d/tunnel.ini" <<EOF
[tunnel]
secret = $($MPTUNNEL genkey)
sndbuf = $bufsize
rcvbuf = $bufsize

[client]
listen = $entry
bridge = 127.0.0.1:${ports[3]}
bridge = 127.0.0.1:${ports[4]}
bridge = 127.0.0.1:${ports[5]}
mode = $mode
control = $d/client.sock

[server]
listen = $server
target = $echo_addr
control = $d/server.sock
EOF
    spawn server "$d/server.log" "$MPTUNNEL" server -c "$d/tunnel.ini"
    wait_for "$d/server.log" "server listening" "${RPID[server]}"
    for i in 1 2 3; do
        spawn "bridge$i" "$d/bridge$i.log" "$MPTUNNEL" bridge \
            --listen "127.0.0.1:${ports[$((i + 2))]}" --to "$server" --sndbuf "$bufsize" \
            --rcvbuf "$bufsize" --loss "$loss" --seed "$((60 + i))"
        wait_for "$d/bridge$i.log" "listening on" "${RPID[bridge$i]}"
    done
    spawn client "$d/client.log" "$MPTUNNEL" client -c "$d/tunnel.ini"
    wait_for "$d/client.log" "client listening" "${RPID[client]}"
    # Warm-up: the handshake, and both ends measure each path's loss (fec's plans follow it).
    if ((quick)); then count=1000; else count=$((MODE_RATE * 2)); fi
    trial "$entry" "$MODE_RATE" "$count" "$MODE_SIZE"
    ((RECV > 0)) || fail "$mode at loss $loss: nothing came back from the warm-up"
    c0=$(status_bytes "$d/tunnel.ini" client) s0=$(status_bytes "$d/tunnel.ini" server)
    if ((quick)); then count=1000; else count=$((MODE_RATE * (duration > 5 ? duration : 5))); fi
    trial "$entry" "$MODE_RATE" "$count" "$MODE_SIZE"
    c1=$(status_bytes "$d/tunnel.ini" client) s1=$(status_bytes "$d/tunnel.ini" server)
    r=$mode.$tag
    res modes 3 "$MODE_SIZE" "$r.loss" "$LOSS"
    res modes 3 "$MODE_SIZE" "$r.rate" "$PPS"
    res modes 3 "$MODE_SIZE" "$r.delivered" $((2 * RECV))
    # Payload both ways: what was sent, and what the echo sent back (about what came back over
    # the one-way loss, taken as half the round trip's).
    res modes 3 "$MODE_SIZE" "$r.wire" \
        "$(calc "($c1 - $c0 + $s1 - $s0) / (($count + $RECV / (1 - $LOSS / 2)) * $MODE_SIZE)")"
    res modes 3 "$MODE_SIZE" "$r.cpu" \
        "$(calc "(${CPU[client]} + ${CPU[server]}) / (2 * $RECV + 1e-9) * 1e6")"
    res modes 3 "$MODE_SIZE" "$r.cpu_bridges" \
        "$(calc "(${CPU[bridge1]} + ${CPU[bridge2]} + ${CPU[bridge3]}) / (2 * $RECV + 1e-9) * 1e6")"
    if ((quick)); then count=200; else count=$((1000 * (duration > 5 ? duration : 5))); fi
    trial "$entry" 1000 "$count" "$MODE_SIZE"
    res modes 3 "$MODE_SIZE" "$r.p50" "$P50"
    res modes 3 "$MODE_SIZE" "$r.p99" "$P99"
    say "  $mode, 3 paths at $loss: round-trip loss $(grep -P "^modes\t3\t$MODE_SIZE\t$r.loss\t" \
        "$RES" | cut -f5), round trip at 1000/s p50 $P50 us"
    topology_down
}

# source_commit: the commit the binaries were built from, as far as the build directory tells.
source_commit() {
    local src c
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
    c=$(git -C "${src:-$root}" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
    git -C "${src:-$root}" diff --quiet HEAD -- . ':!test/bench' ':!README.md' 2>/dev/null ||
        c+=" with uncommitted changes"
    echo "$c"
}

t0=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
say "mptunnel benchmark: paths \"$paths\", sizes \"$sizes\", ${duration}s trials$( ((quick)) && echo ", quick")"
for size in $sizes; do
    for n in $paths; do
        say "== $n path(s), $size-byte payloads"
        if ((quick)); then
            profile tunnel "$n" "$size" 4000
            profile floor "$n" "$size" 4000
            continue
        fi
        search tunnel "$n" "$size"
        tbest=$BEST
        search floor "$n" "$size"
        # CPU is compared at one rate that both carry without loss.
        common=$((BEST < tbest ? BEST : tbest))
        ((common > 0)) || common=1000
        profile tunnel "$n" "$size" "$common"
        profile floor "$n" "$size" "$common"
    done
done
for loss in $mode_losses; do
    say "== fec against redundant, 3 paths at $loss loss each way"
    mode_row redundant "$loss"
    mode_row fec "$loss"
done
# fec's CPU against redundant's at 50,000 datagrams/s over 3 loss-free paths (fec_procs.py: its
# own processes; it judges nothing with --quick, and skips where the machine cannot carry it).
if [[ $mode_losses ]]; then
    say "== fec against redundant: CPU at 50,000 datagrams/s over 3 loss-free paths"
    rc=0
    MPTUNNEL=$MPTUNNEL MPT_TOOLS=$(dirname "$UDPGEN") python3 "$here/fec_procs.py" \
        $( ((quick)) && echo --quick) --tsv "$T/fecprocs.tsv" >"$T/fecprocs.log" 2>&1 || rc=$?
    if [[ -s $T/fecprocs.tsv ]]; then
        while IFS=$'\t' read -r k v; do res fecprocs 3 1000 "$k" "$v"; done <"$T/fecprocs.tsv"
        say "  $(grep -E '^(fec|redundant)' "$T/fecprocs.log" | tr '\n' ';')"
    else
        say "  fec_procs.py $( ((rc == 77)) && echo skipped || echo "failed ($rc)"): $(tail -3 "$T/fecprocs.log")"
        ((rc == 77)) || fail "fec_procs.py exited $rc"
    fi
fi
((nflows > 0)) && flows_check "$nflows"
elapsed=$(($(date +%s) - t0))

# Machine and build facts for the report.
{
    echo "nproc	$(nproc)"
    echo "cpu	$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "kernel	$(uname -sr)"
    echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "version	$("$MPTUNNEL" --version 2>&1 | head -1)"
    echo "commit	$(source_commit)"
    echo "command	$cmdline"
    echo "elapsed	$elapsed"
    echo "bufsize	$bufsize"
    echo "duration	$duration"
    echo "quick	$quick"
    echo "rmem_max	$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo '?')"
    echo "uid	$(id -u)"
    echo "load	$load0"
    echo "ticks	$ticks"
} >"$T/meta.tsv"

python3 "$here/bench_report.py" "$RES" "$T/meta.tsv" ${markdown:+"$markdown"}
