#!/usr/bin/env python3
"""Round trips one by one, for the lab tests that follow a change over time (standard library
only; run inside a host of the lab):

    rttlog.py ADDR:PORT SECONDS INTERVAL_MS [SIZE]

sends a datagram every INTERVAL_MS to ADDR:PORT (an echo through the tunnel) for SECONDS, each
carrying its sequence number, reads the echoes meanwhile and for 1.5 s after, and prints one JSON
object: {"interval_ms", "sent", "rtt_ms": [round trip of datagram i in ms, or null if no echo]},
send times being i * INTERVAL_MS from the start."""
import json
import select
import socket
import struct
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    secs, interval = float(sys.argv[2]), float(sys.argv[3]) / 1000.0
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host.strip("[]"), int(port)))
    s.setblocking(False)
    n = int(secs / interval)
    sent_at = [0.0] * n
    rtt = [None] * n
    pad = bytes(max(0, size - 12))
    t0 = time.monotonic()
    i = 0
    end = t0 + secs + 1.5
    while True:
        now = time.monotonic()
        if now >= end:
            break
        while i < n and t0 + i * interval <= now:
            sent_at[i] = time.monotonic()
            try:
                s.send(b"RTTL" + struct.pack(">Q", i) + pad)
            except OSError:
                pass
            i += 1
        nxt = t0 + i * interval if i < n else end
        r, _, _ = select.select([s], [], [], max(0.0, min(nxt, end) - time.monotonic()))
        if r:
            while True:
                try:
                    d = s.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if len(d) >= 12 and d[:4] == b"RTTL":
                    k = struct.unpack(">Q", d[4:12])[0]
                    if k < i and rtt[k] is None:
                        rtt[k] = round((time.monotonic() - sent_at[k]) * 1000.0, 3)
    print(json.dumps({"interval_ms": interval * 1000.0, "sent": i, "rtt_ms": rtt}))


if __name__ == "__main__":
    main()
