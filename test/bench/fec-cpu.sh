#!/usr/bin/env bash
# CPU per datagram of both cores in fec mode against redundant mode (mpt-coreloop: no sockets,
# 1 flow, 1,000-byte datagrams both ways over 3 loss-free paths). Each mode runs 3 times in turn
# and its least time counts (a shared machine's noise only adds time). fec runs with the repairs
# 3 paths at 5% loss need (fec:64:9) and with those of 3 paths at 20% (fec:64:30). Fails if fec:64:9
# costs more than LIMIT times redundant's.
set -u
LOOP=${1:?usage: fec-cpu.sh MPT-CORELOOP}
N=${MPT_FEC_CPU_DATAGRAMS:-60000}
LIMIT=2.5

best() {
    local mode=$1 b="" v
    for _ in 1 2 3; do
        v=$("$LOOP" 1 "$N" 1000 "$mode" | sed -n 's/.*cpu_ns_per_datagram=\([0-9]*\).*/\1/p')
        [ -n "$v" ] || { echo "mpt-coreloop $mode failed" >&2; exit 1; }
        if [ -z "$b" ] || [ "$v" -lt "$b" ]; then b=$v; fi
    done
    echo "$b"
}

red=$(best redundant)
f9=$(best fec:64:9)
f30=$(best fec:64:30)
r9=$(awk -v a="$f9" -v b="$red" 'BEGIN { printf "%.2f", a / b }')
r30=$(awk -v a="$f30" -v b="$red" 'BEGIN { printf "%.2f", a / b }')
echo "redundant: $red ns per datagram (both cores)"
echo "fec 64:9 (3 paths at 5%): $f9 ns, ${r9}x redundant (limit ${LIMIT}x)"
echo "fec 64:30 (3 paths at 20%): $f30 ns, ${r30}x redundant"
awk -v r="$r9" -v l="$LIMIT" 'BEGIN { exit !(r <= l) }' || { echo "FAIL: fec 64:9 costs ${r9}x"; exit 1; }
