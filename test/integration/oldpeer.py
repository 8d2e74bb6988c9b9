#!/usr/bin/env python3
"""Peers that cannot talk to this server get a clear log line, not silence in the log, and still
no answer on the wire: a protocol 1 client's HELLO (128 bytes, version 1), and an INIT of the
other mode (a key-mode client's 180 bytes at a shared-secret server). Then an ordinary client
connects as if nothing happened."""
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402


def send_and_listen(data, to, wait=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(wait)
    s.sendto(data, to)
    answers = 0
    try:
        while True:
            s.recvfrom(65535)
            answers += 1
    except socket.timeout:
        pass
    port = s.getsockname()[1]
    s.close()
    return answers, port


def body(t):
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % sport], server_listen="127.0.0.1:%d" % sport,
                         target=tgt.addr, extra_client=["control = " + t.path("client.sock")],
                         extra_server=["control = " + t.path("server.sock")])
    apps = None
    try:
        server = t.server(cfg)
        hello_v1 = bytes([1, 1, 0, 0]) + os.urandom(124)
        answers, port = send_and_listen(hello_v1, ("127.0.0.1", sport))
        t.check("answers to a protocol 1 HELLO", answers, 0, "==")
        log = t.wait_log(server, r"protocol version 1 from 127\.0\.0\.1:%d" % port, timeout=3)
        t.expect(re.search(r"upgrade it", log) is not None, "the line says what to do")
        init_ik = bytes([2, 1, 0, 0]) + os.urandom(176)
        answers, port = send_and_listen(init_ik, ("127.0.0.1", sport))
        t.check("answers to a key-mode INIT at a shared-secret server", answers, 0, "==")
        log = t.wait_log(server, r"from 127\.0\.0\.1:%d is for key mode, and this server is in "
                         r"shared-secret mode" % port, timeout=3)
        # Each kind at most once a minute, however many come.
        for _ in range(50):
            send_and_listen(hello_v1, ("127.0.0.1", sport), wait=0.01)
        time.sleep(0.3)
        t.check("log lines about protocol 1 peers after 51 HELLOs",
                len(re.findall(r"protocol version 1", server.log())), 1, "==")
        client = t.client(cfg)
        apps = lifelib.Apps(1, cport, 0x6f000000)
        batch = apps.send(20)
        t.check("an ordinary client afterwards: echoed", apps.wait_echoes(batch, 10), 20, "==")
        t.expect(server.alive() and client.alive(), "every process alive")
    finally:
        if apps:
            apps.close()
        tgt.close()


mptlib.run(body, budget=40)
