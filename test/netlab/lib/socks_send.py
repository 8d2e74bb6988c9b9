#!/usr/bin/python3
"""One SOCKS5 UDP association through PySocks (Debian python3-socks, which only /usr/bin/python3
sees), run by a lab test inside a host: `socks_send.py SPEC`, SPEC a JSON object

    {"proxy": [HOST, PORT], "count": N, "rate": PPS, "size": [MIN, MAX], "linger": SECONDS,
     "seed": S, "pause_after_first": SECONDS, "dests": [[HOST, PORT, FLOW], ...]}

sends N datagrams to each destination, interleaved, at PPS per destination, in udpgen's full
format (magic, flow FLOW, sequence number, send time, length, checksum; test/tools/udpgen.c), so
that a udpgen echo or sink there counts them per flow (the first to each destination alone, then
a pause if `pause_after_first`); then waits `linger` seconds for the last replies. A HOST that
is not an IP address travels as a SOCKS domain name, resolved by the proxy's side. Prints one JSON object: per destination (in order) `sent`, `replies` (unique sequence
numbers echoed with that destination's own SOCKS header and an intact checksum), `duplicates`,
`missing` (the first 20 sequence numbers not echoed),
and in all `wrong_header` (replies of one destination's flow carrying another's header),
`corrupt` (a bad checksum or length), `stray` (not of any destination). Exit 77 without PySocks.
"""
import json
import random
import socket
import struct
import sys
import threading
import time

try:
    import socks
except ImportError:
    print("SKIP: PySocks is missing (Debian: python3-socks)", file=sys.stderr)
    sys.exit(77)

MAGIC = 0x4D505447  # "MPTG"
HDR = 32
M64 = (1 << 64) - 1


def _fnv(h, b):
    n = len(b) // 8
    for w in struct.unpack_from("<%dQ" % n, b):
        h = ((h ^ w) * 0x100000001B3) & M64
    for c in b[n * 8:]:
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def checksum(p):
    """udpgen's checksum of a full datagram: FNV-1a 64 without the field at 28, fmix64, low 32."""
    h = _fnv(_fnv(0xCBF29CE484222325, p[:28]), p[32:])
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h & 0xFFFFFFFF


def build(flow, seq, size, rng):
    p = bytearray(struct.pack(">IIQQII", MAGIC, flow, seq, time.monotonic_ns(), size, 0))
    p += rng.getrandbits(8 * (size - HDR)).to_bytes(size - HDR, "little") if size > HDR else b""
    struct.pack_into(">I", p, 28, checksum(p))
    return bytes(p)


def parse(p):
    """(flow, seq) of an intact full datagram, else None."""
    if len(p) < HDR:
        return None
    magic, flow, seq, _, length, ck = struct.unpack_from(">IIQQII", p)
    if magic != MAGIC or length != len(p) or ck != checksum(p):
        return None
    return flow, seq


def main():
    spec = json.loads(sys.argv[1])
    dests = [(str(h), int(port), int(flow)) for h, port, flow in spec["dests"]]
    count, rate = int(spec["count"]), float(spec["rate"])
    lo, hi = spec.get("size", [HDR, 1400])
    rng = random.Random(spec.get("seed", 1))
    by_flow = {flow: i for i, (_, _, flow) in enumerate(dests)}
    got = [set() for _ in dests]
    dups = [0] * len(dests)
    bad = {"wrong_header": 0, "corrupt": 0, "stray": 0}

    s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    s.set_proxy(socks.SOCKS5, spec["proxy"][0], int(spec["proxy"][1]))
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE as root
        try:
            s.setsockopt(socket.SOL_SOCKET, force, int(spec.get("bufsize", 8 << 20)))
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, opt, int(spec.get("bufsize", 8 << 20)))
    s.bind(("127.0.0.1", 0))  # the UDP ASSOCIATE
    s.settimeout(0.2)
    done = threading.Event()

    def receive():
        while not done.is_set():
            try:
                data, src = s.recvfrom(65535)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                if done.is_set():
                    return
                continue
            k = parse(data)
            if k is None:
                bad["corrupt"] += 1
                continue
            i = by_flow.get(k[0])
            if i is None:
                bad["stray"] += 1
                continue
            host = src[0].decode() if isinstance(src[0], bytes) else src[0]  # a domain: bytes
            if (host, src[1]) != dests[i][:2]:
                bad["wrong_header"] += 1
                continue
            if k[1] in got[i]:
                dups[i] += 1
            got[i].add(k[1])

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    pause = float(spec.get("pause_after_first", 0))
    t0 = time.monotonic()
    for seq in range(count):
        if seq == 1 and pause:
            time.sleep(pause)  # the first datagrams alone, then the stream
            t0 += pause
        for host, port, flow in dests:
            s.sendto(build(flow, seq, rng.randint(max(lo, HDR), hi), rng), (host, port))
        delay = t0 + (seq + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    secs = time.monotonic() - t0
    time.sleep(float(spec.get("linger", 1.5)))
    done.set()
    s.close()
    rx.join(2)
    out = {"seconds": round(secs, 3), "dests": []}
    for i, (h, p, f) in enumerate(dests):
        out["dests"].append({"host": h, "port": p, "flow": f, "sent": count,
                             "replies": len(got[i]), "duplicates": dups[i],
                             "missing": sorted(set(range(count)) - got[i])[:20]})
    out.update(bad)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
