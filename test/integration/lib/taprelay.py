"""A hostile relay on one path of a tunnel, in a thread: it forwards UDP between one client (the
last source heard on its listening socket) and the server, records every datagram with its time
and direction, lets a test drop or hold back datagrams (`decide`), and injects datagrams of its
own towards either side. Standard library only."""
import select
import socket
import threading
import time

UP, DOWN = "up", "down"  # client -> server, server -> client


class TapRelay:
    def __init__(self, listen_port, to, host="127.0.0.1", up_host="127.0.0.1"):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.lsock.bind((host, listen_port))
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.usock.bind((up_host, 0))
        self.to = to
        self.peer = None
        self.lock = threading.Lock()
        self.records = []  # (monotonic time, UP or DOWN, bytes)
        self.recording = True
        # decide(way, data) -> None to forward, "drop", or "hold" (kept in self.held, not sent)
        self.decide = None
        self.held = []  # (monotonic time, way, bytes)
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        socks = [self.lsock, self.usock]
        while not self.stopped:
            try:
                r, _, _ = select.select(socks, [], [], 0.1)
            except (OSError, ValueError):
                return
            for s in r:
                try:
                    data, src = s.recvfrom(65535)
                except OSError:
                    continue
                now = time.monotonic()
                way = UP if s is self.lsock else DOWN
                if way == UP:
                    self.peer = src
                with self.lock:
                    if self.recording:
                        self.records.append((now, way, data))
                    verdict = self.decide(way, data) if self.decide else None
                    if verdict == "hold":
                        self.held.append((now, way, data))
                if verdict is not None:
                    continue
                try:
                    if way == UP:
                        self.usock.sendto(data, self.to)
                    elif self.peer is not None:
                        self.lsock.sendto(data, self.peer)
                except OSError:
                    pass

    def inject(self, way, data):
        """Sends data as if the relay had received it from the other side."""
        try:
            if way == UP:
                self.usock.sendto(data, self.to)
            elif self.peer is not None:
                self.lsock.sendto(data, self.peer)
        except OSError:
            pass

    def recorded(self, way=None):
        with self.lock:
            return [r for r in self.records if way is None or r[1] == way]

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.lsock.close()
        self.usock.close()
