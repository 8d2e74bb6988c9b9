# udpgen send -> udpgen echo directly on loopback (IPv4, or IPv6 with argument 6): every
# datagram, from 1 to 1200 bytes, must come back once, intact, on its own flow.
. "$(dirname "$0")/lib.sh"

host=127.0.0.1
if [[ ${1:-4} == 6 ]]; then
    host='[::1]'
    python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' \
        2>/dev/null || { echo "SKIP: no IPv6 loopback"; exit 77; }
fi

start "$UDPGEN" echo --listen "$host:0" --stats "$T/echo.json" --ready "$T/echo.addr"
echo_pid=$LAST
addr=$(wait_ready "$T/echo.addr")
echo "echo listening on $addr"

timeout 30 "$UDPGEN" send --to "$addr" --count 2000 --rate 5000 --size 1-1200 --flows 4 \
    --seed 7 --json >"$T/send.json"
stop "$echo_pid"
cat "$T/send.json" "$T/echo.json"

check "$T/send.json" 'd["sent"] == 2000' 'd["received_unique"] == 2000' 'd["loss"] == 0' \
    'd["duplicates"] == 0' 'd["corrupt"] == 0' 'd["misdelivered"] == 0' \
    'len(d["flows"]) == 4' 'all(f["sent"] == 500 and f["loss"] == 0 for f in d["flows"])' \
    'd["rtt_us"]["samples"] > 1900' '4000 < d["rate_pps"] < 6000'
check "$T/echo.json" 'd["received"] == 2000' 'd["unique"] + d["tiny"] == 2000' \
    'd["duplicates"] == 0' 'd["corrupt"] == 0'
