"""A relay that an attacker runs on one path of a tunnel: it sees the client's datagrams first and
the server's replies, and decides for each what to do with it (forward it, drop it, send
something else, or send it from other sockets first). Subclasses override up() and down(); the
defaults forward. One peer (the client's path socket), as a path is.

This file lives below lib/ so that the CMake glob of test/integration/*.py does not make it a test.
"""
import select
import socket
import threading

DATA_MIN = 144  # test payloads of 100 bytes or more make DATA datagrams at least this long


def is_data(d):
    """A DATA datagram (any version) long enough to carry a test payload: not a probe (84 bytes),
    an ack (60), a challenge or its answer, or a handshake message."""
    return len(d) >= DATA_MIN and len(d) >= 4 and d[1] == 3


class EvilRelay:
    def __init__(self, to_port, host="127.0.0.1"):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.bind((host, 0))
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.bind((host, 0))
        self.to = (host, to_port)
        for s in (self.lsock, self.usock):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.lsock.getsockname()[1]
        self.peer = None
        self.extra = []  # more sockets to watch: on_extra(sock, data) is called for them
        self.lock = threading.Lock()
        self.stopped = False
        self.th = None

    def start(self):
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()
        return self

    # ---- what the attacker does; both run in the relay's thread ----
    def up(self, data):
        """A datagram from the client: returns True to forward it to the server."""
        return True

    def down(self, data):
        """A datagram from the server: returns True to forward it to the client."""
        return True

    def on_extra(self, sock, data, src):
        pass

    # ---- helpers for subclasses ----
    def send_up(self, data, sock=None):
        try:
            (sock or self.usock).sendto(data, self.to)
        except OSError:
            pass

    def send_down(self, data):
        if self.peer is not None:
            try:
                self.lsock.sendto(data, self.peer)
            except OSError:
                pass

    def _loop(self):
        while not self.stopped:
            socks = [self.lsock, self.usock] + self.extra
            r, _, _ = select.select(socks, [], [], 0.1)
            for s in r:
                try:
                    data, src = s.recvfrom(65535)
                except OSError:
                    continue
                with self.lock:
                    if s is self.lsock:
                        self.peer = src
                        if self.up(data):
                            self.send_up(data)
                    elif s is self.usock:
                        if self.down(data):
                            self.send_down(data)
                    else:
                        self.on_extra(s, data, src)

    def close(self):
        self.stopped = True
        if self.th:
            self.th.join(2)
        for s in [self.lsock, self.usock] + self.extra:
            s.close()
