#!/usr/bin/env bash
# Is the per-datagram work of the cores flat as the number of flows grows? Runs mpt-coreloop (a
# client and a server core wired in memory, see coreloop.c) under callgrind for 1..10000 flows,
# counting only the measured section, and prints the instructions per delivered datagram (one
# round trip through both cores: 2 seals, 2 opens, 4 duplicates stopped by the replay window)
# against the figure for 1 flow. Then where the instructions go at the largest flow count.
#
# Usage: flows-callgrind.sh [MPT-CORELOOP]   (default: $MPT_CORELOOP)
# Environment: MPT_CG_FLOWS (default "1 10 100 1000 10000"), MPT_CG_DATAGRAMS (20000),
#   MPT_CG_SIZES ("1200 64"), MPT_CG_MAX_RATIO (1.25), MPT_CG_JOBS (the number of CPUs, at most 4).
# Exit: 0 flat; 1 the ratio at the largest flow count exceeds MPT_CG_MAX_RATIO, or a run failed;
#   77 valgrind is missing.
set -u

bin=${1:-${MPT_CORELOOP:-}}
flows=${MPT_CG_FLOWS:-"1 10 100 1000 10000"}
count=${MPT_CG_DATAGRAMS:-20000}
sizes=${MPT_CG_SIZES:-"1200 64"}
max_ratio=${MPT_CG_MAX_RATIO:-1.25}
jobs_max=${MPT_CG_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs_max" -gt 4 ] && jobs_max=4

if ! command -v valgrind >/dev/null 2>&1; then
    echo "skip: valgrind is not installed (apt-get install valgrind)"
    exit 77
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "error: mpt-coreloop not found (pass its path or set MPT_CORELOOP)" >&2
    exit 1
fi

work=$(mktemp -d)
cleanup()
{
    rm -rf "$work"
}
trap cleanup EXIT

# One run: callgrind out file, the program's line of figures, valgrind's messages, exit code.
run_one()
{
    local n=$1 s=$2 base=$work/$2.$1
    valgrind --tool=callgrind --toggle-collect=measured_run --callgrind-out-file="$base.cg" \
        "$bin" "$n" "$count" "$s" >"$base.out" 2>"$base.err"
    echo $? >"$base.rc"
}

largest=0
for n in $flows; do
    [ "$n" -gt "$largest" ] && largest=$n
done
smallest=$(echo $flows | awk '{print $1}')

echo "method: valgrind --tool=callgrind --toggle-collect=measured_run mpt-coreloop FLOWS $count SIZE"
echo "        (3 paths, redundant mode, no loss; instructions of the measured section only)"
start=$SECONDS
for s in $sizes; do
    for n in $flows; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
            wait -n
        done
        run_one "$n" "$s" &
    done
done
wait

# Instructions per delivered datagram of one run, or nothing if the run failed.
per_dgram()
{
    local base=$work/$2.$1 ir delivered
    [ "$(cat "$base.rc" 2>/dev/null)" = 0 ] || return 1
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$base.cg")
    delivered=$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' "$base.out")
    [ -n "$ir" ] && [ -n "$delivered" ] && [ "$delivered" -gt 0 ] || return 1
    awk -v ir="$ir" -v d="$delivered" 'BEGIN { printf "%.0f", ir / d }'
}

fail=0
echo
printf '%8s' flows
for s in $sizes; do
    printf '  %16s %6s' "Ir/dgram ${s} B" ratio
done
echo
declare -A base_ir
for n in $flows; do
    printf '%8s' "$n"
    for s in $sizes; do
        if ! v=$(per_dgram "$n" "$s"); then
            printf '  %16s %6s' FAILED -
            echo >&2
            echo "error: mpt-coreloop $n $count $s failed:" >&2
            cat "$work/$s.$n.out" "$work/$s.$n.err" >&2
            fail=1
            continue
        fi
        [ "$n" = "$smallest" ] && base_ir[$s]=$v
        if [ -n "${base_ir[$s]:-}" ]; then
            r=$(awk -v a="$v" -v b="${base_ir[$s]}" 'BEGIN { printf "%.3f", a / b }')
        else
            r=-
        fi
        printf '  %16s %6s' "$v" "$r"
        if [ "$n" = "$largest" ] && [ "$r" != - ] &&
            awk -v r="$r" -v m="$max_ratio" 'BEGIN { exit !(r > m) }'; then
            echo >&2
            echo "FAIL: $s-byte datagrams cost $r times as many instructions at $n flows as at" \
                "$smallest (limit $max_ratio): something on the per-datagram path grows with" \
                "the flows" >&2
            fail=1
        fi
    done
    echo
done

# Where the instructions go at the largest flow count: the top functions, then by part.
if command -v callgrind_annotate >/dev/null 2>&1; then
    for s in $sizes; do
        base=$work/$s.$largest
        [ "$(cat "$base.rc" 2>/dev/null)" = 0 ] || continue
        delivered=$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' "$base.out")
        callgrind_annotate --threshold=100 "$base.cg" 2>/dev/null |
            sed -nE 's/^ *([0-9,]+) +\( *[0-9.]+%\) +(.*) \[(.*)\]$/\1\t\2\t\3/p' |
            tr -d , >"$base.fn"
        echo
        echo "top functions at $largest flows, $s-byte datagrams (Ir per datagram, share):"
        awk -F'\t' -v d="$delivered" '
            { total += $1; ir[NR] = $1; fn[NR] = $2; obj[NR] = $3 }
            END {
                for (i = 1; i <= NR && i <= 10; i++) {
                    name = fn[i]
                    sub(/^.*\//, "", name)
                    if (name ~ /^\?\?\?:/) {
                        o = obj[i]
                        sub(/^.*\//, "", o)
                        sub(/^\?\?\?:/, o ":", name)
                    }
                    printf "  %9.0f %5.1f%%  %s\n", ir[i] / d, 100 * ir[i] / total, name
                }
            }' "$base.fn"
        echo "by part:"
        awk -F'\t' -v d="$delivered" '
            {
                if ($3 ~ /libsodium/) part = "AEAD (libsodium)"
                else if ($2 ~ /core\/table\.c:/) part = "flow and session tables (core/table.c)"
                else if ($2 ~ /core\/addr\.c:/) part = "addresses: compare, hash (core/addr.c)"
                else if ($2 ~ /core\//) part = "rest of the cores (core/)"
                else if ($3 ~ /libc/) part = "libc (memcpy, memset, explicit_bzero)"
                else if ($2 ~ /coreloop\.c:/) part = "in-memory wiring (coreloop.c)"
                else part = "other"
                sum[part] += $1; total += $1
            }
            END {
                for (p in sum)
                    printf "  %9.0f %5.1f%%  %s\n", sum[p] / d, 100 * sum[p] / total, p
            }' "$base.fn" | sort -k1,1nr
    done
fi
echo
echo "($((SECONDS - start)) s)"
exit $fail
