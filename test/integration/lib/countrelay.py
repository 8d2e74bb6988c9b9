"""A UDP relay in a thread that counts what it forwards each way, with times: one path of a
tunnel whose traffic a test wants to see. One peer at a time (the last source heard from the
listening side gets the replies), which is what a client's path is."""
import socket
import threading
import time


class CountRelay:
    def __init__(self, listen_port, to_host, to_port, host="127.0.0.1"):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.lsock.bind((host, listen_port))
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.usock.bind((host, 0))
        self.to = (to_host, to_port)
        self.peer = None
        self.lock = threading.Lock()
        self.times = {"to": [], "back": []}  # monotonic arrival times per direction
        self.stopped = False
        self.threads = [threading.Thread(target=self._loop, args=(self.lsock, "to"), daemon=True),
                        threading.Thread(target=self._loop, args=(self.usock, "back"),
                                         daemon=True)]
        for th in self.threads:
            th.start()

    def _loop(self, sock, way):
        sock.settimeout(0.1)
        while not self.stopped:
            try:
                data, src = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.times[way].append(time.monotonic())
                if way == "to":
                    self.peer = src
                peer = self.peer
            try:
                if way == "to":
                    self.usock.sendto(data, self.to)
                elif peer:
                    self.lsock.sendto(data, peer)
            except OSError:
                pass

    def count(self, way, t0=0.0, t1=float("inf")):
        """Datagrams relayed in direction `way` ("to" the server, "back" to the client)."""
        with self.lock:
            return sum(1 for t in self.times[way] if t0 <= t < t1)

    def close(self):
        self.stopped = True
        for th in self.threads:
            th.join(1)
        self.lsock.close()
        self.usock.close()
