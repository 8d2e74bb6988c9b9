#!/usr/bin/env python3
"""The protocol-2 peer of the attack tests (lib/mpt2.py, an independent implementation on Debian's
python3-dissononce) against the real server, in shared-secret mode:
 0. its own checks: HChaCha20's published vector, its initiator against dissononce's responder;
 1. it completes a handshake (INIT, RESPONSE) and exchanges DATA: a FLOW to the default target
    comes back echoed, a PROBE gets its PROBE_ACK;
 2. a second handshake naming the first session as previous, with the proof under its resume
    key, continues it: the same flow is echoed under the new keys, the server holds one session;
 3. a handshake naming that session with a wrong proof does not continue it (the session goes on
    working under its keys);
 4. the first INIT sent again 1.5 s later (a replay) gets no answer;
 5. under load (LOAD_INITS fresh INITs at once from another address), an INIT gets a COOKIE; sent
    again with MAC2 under that cookie, it is answered with a RESPONSE;
 6. the other way round, the real client against this module as the server: its INIT (MAC1,
    payload, timestamp) reads as specified, it takes a RESPONSE made here, and an application's
    datagram crosses both ways under the keys derived here."""
import base64
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mpt2  # noqa: E402
import mptlib  # noqa: E402

mpt2.need_crypto()

LOAD_INITS = 1200


def exchange(sock, server, sess, inner, want, timeout=1.0):
    """Sends sess.seal(inner) (again every 0.2 s) until an inner message for which want(msg)
    holds comes back; returns it or None."""
    end = time.monotonic() + timeout
    next_tx = 0.0
    while time.monotonic() < end:
        if time.monotonic() >= next_tx:
            sock.sendto(sess.seal(inner), server)
            next_tx = time.monotonic() + 0.2
        sock.settimeout(max(0.001, min(end, next_tx) - time.monotonic()))
        try:
            d, _ = sock.recvfrom(65535)
        except (socket.timeout, OSError):
            continue
        p = sess.open(d)
        a = sess.answer(p)
        if a is not None:
            sock.sendto(a, server)
        elif p is not None and want(p):
            return p
    return None


def python_server(t, secret_b64, secret):
    """Step 6: mptunnel client -> a socket of this test answering as the server."""
    ps = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ps.bind(("127.0.0.1", 0))
    cp = t.port()
    cfg = t.write_config("interop2c.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                         bridges=["127.0.0.1:%d" % ps.getsockname()[1]],
                         extra_client=["control = " + t.path("c.sock")])
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.bind(("127.0.0.1", 0))
    try:
        client = t.client(cfg, name="client")
        sess = init = None
        payload = mptlib.make_payload(9, 1, 80)
        end = time.monotonic() + 5
        got_flow = back = None
        while time.monotonic() < end and back is None:
            if sess is not None and got_flow is None:
                app.sendto(payload, ("127.0.0.1", cp))
            ps.settimeout(0.1)
            try:
                d, src = ps.recvfrom(65535)
            except socket.timeout:
                d = None
            if d is not None and sess is None and mpt2.classify(d) == (mpt2.V2, mpt2.INIT):
                pl, hs = mpt2.read_init(secret, d)
                if pl is None:
                    continue
                init = pl
                buf = bytearray()
                cs = hs.write_message(bytes(8), buf)
                body = mpt2.header(mpt2.V2, mpt2.RESPONSE) + d[4:12] + bytes(buf)
                ps.sendto(body + mpt2.b2b(body, mpt2.k_mac1(secret), 16), src)
                sess = mpt2.Session(mpt2.V2, mpt2.sid_of(d), cs[1]._key, cs[0]._key, mpt2.CHACHA)
            elif d is not None and sess is not None and got_flow is None:
                f = mpt2.parse_flow(sess.open(d) if mpt2.sid_of(d) == sess.sid else None)
                if f and f[1] == payload:
                    got_flow = f
                    ps.sendto(sess.seal(mpt2.flow(f[0], payload[::-1])), src)
            if got_flow is not None:
                app.settimeout(0.5)
                try:
                    back = app.recvfrom(65535)[0]
                except socket.timeout:
                    got_flow = None  # sent again
        t.expect(init is not None and abs(init["time"] - time.time()) < 5 and init["prev_sid"] == 0,
                 "the client's INIT read here (MAC1, payload, a timestamp of now)")
        t.expect(got_flow is not None, "the client's FLOW opened under the keys derived here")
        t.expect(back == payload[::-1], "a FLOW sealed here delivered to the application")
        t.stop(client)
    finally:
        ps.close()
        app.close()


def body(t):
    mpt2.self_check()
    print("mpt2 self-check (HChaCha20 vector, initiator against dissononce's responder): ok")
    secret_b64 = t.genkey()
    secret = base64.b64decode(secret_b64)
    sp = t.port()
    tgt = mptlib.Target()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server = ("127.0.0.1", sp)
    try:
        cfg = t.write_config("interop2.ini", secret_b64, server_listen="127.0.0.1:%d" % sp,
                             target=tgt.addr, extra_server=["control = " + t.path("s.sock")])
        t.server(cfg)
        ini = mpt2.Initiator(secret)
        first_init = ini.dgram
        sess = None
        for _ in range(4):
            sock.sendto(ini.dgram, server)
            sock.settimeout(0.25)
            try:
                d, _ = sock.recvfrom(65535)
            except socket.timeout:
                continue
            c = ini.read_cookie(d)
            if c is not None:
                ini.with_cookie(c)
                continue
            sess = ini.read_response(d)
            if sess:
                break
        t_init = time.monotonic()
        if not t.expect(sess is not None, "handshake completed with the server (INIT, RESPONSE)"):
            return
        print("session %016x, cipher %d" % (sess.sid, sess.cipher))
        t.expect(sess.cipher == mpt2.CHACHA, "ChaCha20-Poly1305 chosen (AES-256-GCM not offered)")
        payload = mptlib.make_payload(7, 1, 100)
        got = exchange(sock, server, sess, mpt2.flow(1, payload),
                       lambda p: mpt2.parse_flow(p) == (1, payload))
        t.expect(got is not None, "a FLOW to the default target came back echoed")
        got = exchange(sock, server, sess, mpt2.probe(0, 1), lambda p: p[0] == mpt2.K_PROBE_ACK)
        t.expect(got is not None and len(got) == 40, "a PROBE got its 40-byte PROBE_ACK")
        clock = int.from_bytes(got[32:40], "big") if got else 0
        t.expect(clock != 0, "the PROBE_ACK names the server's clock (bytes 32-39 nonzero)")
        got = exchange(sock, server, sess, mpt2.probe(0, 2)[:48],
                       lambda p: p[0] == mpt2.K_PROBE_ACK)
        t.expect(got is not None and len(got) == 40,
                 "a 48-byte PROBE (no fixed fec ratio) got its PROBE_ACK too")
        t.expect(got is not None and int.from_bytes(got[32:40], "big") == clock,
                 "the same clock named in the next PROBE_ACK")

        sess2, _ = mpt2.connect(sock, server, secret, prev_sid=sess.sid,
                                prev_resume=sess.resume_key())
        if t.expect(sess2 is not None, "a handshake continuing the session with its proof"):
            payload = mptlib.make_payload(7, 2, 100)
            got = exchange(sock, server, sess2, mpt2.flow(1, payload),
                           lambda p: mpt2.parse_flow(p) == (1, payload))
            t.expect(got is not None, "the flow echoed under the new keys")
            doc = lifelib.status(cfg, "server")
            t.check("sessions at the server after it", doc["sessions"]["used"], 1, "==")
            sess3, _ = mpt2.connect(sock, server, secret, prev_sid=sess2.sid,
                                    proof_bytes=bytes(16), timeout=0.6)
            print("a handshake naming it with a wrong proof: %s"
                  % ("answered (a session of its own)" if sess3 else "not answered"))
            payload = mptlib.make_payload(7, 3, 100)
            got = exchange(sock, server, sess2, mpt2.flow(1, payload),
                           lambda p: mpt2.parse_flow(p) == (1, payload))
            t.expect(got is not None, "the session goes on under its keys after a wrong proof")
            if sess3 is not None:
                got = exchange(sock, server, sess3, mpt2.flow(1, mptlib.make_payload(7, 4, 50)),
                               lambda p: mpt2.parse_flow(p) is not None, timeout=0.6)
                t.expect(got is None or got[8:] == mptlib.make_payload(7, 4, 50),
                         "the wrong proof's session gets nothing of the other's flows")
        time.sleep(max(0.0, t_init + 1.5 - time.monotonic()))
        sock.sendto(first_init, server)
        answers = 0
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            sock.settimeout(max(0.001, end - time.monotonic()))
            try:
                d, _ = sock.recvfrom(65535)
            except (socket.timeout, OSError):
                break
            answers += mpt2.classify(d) != (mpt2.V2, mpt2.DATA)
        t.check("answers to the first INIT replayed 1.5 s later", answers, 0, "==")

        flood = [mpt2.Initiator(secret).dgram for _ in range(LOAD_INITS)]
        fs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fs.bind(("127.0.3.1", 0))
        for d in flood:
            fs.sendto(d, server)
        fs.close()
        s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s2.bind(("127.0.3.2", 0))
        sess4, st = mpt2.connect(s2, server, secret, timeout=1.0)
        s2.close()
        print("after %d INITs at once: %d COOKIE(s) for a new INIT, %s"
              % (LOAD_INITS, st["cookies"], "answered" if sess4 else "not answered"))
        t.check("COOKIEs under load", st["cookies"], 1, ">=")
        t.expect(sess4 is not None, "the INIT with MAC2 under the cookie answered")
        python_server(t, secret_b64, secret)
    finally:
        sock.close()
        tgt.close()


mptlib.run(body, budget=30)
