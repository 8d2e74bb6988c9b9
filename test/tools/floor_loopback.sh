# udpgen send -> mpt-floor client -> 3 x mpt-floor relay -> mpt-floor server -> udpgen echo, and
# back: the floor fans out and de-duplicates, so at a low rate the application sees every
# datagram once. The server drops exactly two copies of each; the client nearly as many (the
# first replies go only to the relays the server has heard from yet).
. "$(dirname "$0")/lib.sh"
: "${MPT_FLOOR:?MPT_FLOOR must name the mpt-floor binary}"

n=1000
start "$UDPGEN" echo --listen 127.0.0.1:0 --stats "$T/echo.json" --ready "$T/echo.addr"
echo_pid=$LAST
start "$MPT_FLOOR" server --listen 127.0.0.1:0 --to "$(wait_ready "$T/echo.addr")" \
    --ready "$T/server.addr" 2>"$T/server.log"
server_pid=$LAST
server=$(wait_ready "$T/server.addr")
tos=()
for i in 1 2 3; do
    start "$MPT_FLOOR" relay --listen 127.0.0.1:0 --to "$server" --ready "$T/relay$i.addr"
    tos+=(--to "$(wait_ready "$T/relay$i.addr")")
done
start "$MPT_FLOOR" client --listen 127.0.0.1:0 "${tos[@]}" --ready "$T/client.addr" \
    2>"$T/client.log"
client_pid=$LAST
client=$(wait_ready "$T/client.addr")

timeout 30 "$UDPGEN" send --to "$client" --count $n --rate 2000 --size 1-1200 --flows 4 \
    --seed 3 --json >"$T/send.json"
stop "$echo_pid"
stop "$server_pid"
stop "$client_pid"
cat "$T/send.json" "$T/echo.json" "$T/server.log" "$T/client.log"

check "$T/send.json" "d['sent'] == $n" "d['received_unique'] == $n" 'd["loss"] == 0' \
    'd["duplicates"] == 0' 'd["corrupt"] == 0' 'd["misdelivered"] == 0'
check "$T/echo.json" "d['received'] == $n" 'd["duplicates"] == 0' 'd["corrupt"] == 0'
grep -q "duplicates dropped $((2 * n))," "$T/server.log" || { echo "FAIL: server dups"; exit 1; }
client_dups=$(sed -n 's/.*duplicates dropped \([0-9]*\),.*/\1/p' "$T/client.log")
((client_dups > 2 * n - 20 && client_dups <= 2 * n)) || { echo "FAIL: client dups"; exit 1; }
echo "ok   copies dropped: server $((2 * n)), client $client_dups"
