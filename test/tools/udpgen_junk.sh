# udpgen junk against an echo (everything comes back, counted per kind) and a sink (nothing comes
# back), with a replay file of [u32 big-endian length][bytes] records.
. "$(dirname "$0")/lib.sh"

python3 - "$T/rec.bin" <<'PY'
import random, struct, sys
r = random.Random(5)
with open(sys.argv[1], "wb") as f:
    for n in (1, 7, 32, 60, 200, 1200):
        f.write(struct.pack(">I", n) + bytes(r.randrange(256) for _ in range(n)))
    f.write(struct.pack(">I", 999) + b"torn")
PY

start "$UDPGEN" echo --listen 127.0.0.1:0 --stats "$T/echo.json" --ready "$T/echo.addr"
echo_pid=$LAST
timeout 30 "$UDPGEN" junk --to "$(wait_ready "$T/echo.addr")" --count 400 --replay "$T/rec.bin" \
    --rate 20000 --json >"$T/junk_echo.json"
stop "$echo_pid"

start "$UDPGEN" sink --listen 127.0.0.1:0 --stats "$T/sink.json" --ready "$T/sink.addr"
sink_pid=$LAST
timeout 30 "$UDPGEN" junk --to "$(wait_ready "$T/sink.addr")" --count 400 --json \
    >"$T/junk_sink.json"
stop "$sink_pid"
cat "$T/junk_echo.json" "$T/echo.json" "$T/junk_sink.json" "$T/sink.json"

check "$T/junk_echo.json" 'd["sent"]["total"] == 400' 'd["replay_records"] == 6' \
    'd["received"]["total"] == 400' 'd["received"]["max_size"] == 65000' \
    'all(d["sent"][k] > 0 for k in ("random", "oversize", "replay", "truncated", "bitflip", "swapped"))' \
    'all(d["received"]["by_kind"][k] == d["sent"][k] for k in d["received"]["by_kind"])'
check "$T/echo.json" 'd["received"] == 400'
check "$T/junk_sink.json" 'd["sent"]["total"] == 400' 'd["received"]["total"] == 0'
check "$T/sink.json" 'd["received"] == 400'
