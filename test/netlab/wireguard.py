#!/usr/bin/env python3
"""WireGuard through the tunnel, with iperf3 TCP (CUBIC) and ping, against WireGuard without the
tunnel in the same run. The kernel's WireGuard where `ip link add type wireguard` works, else
wireguard-go (userspace, over /dev/net/tun), configured with `wg` either way.

Hosts: client, server, three relay hosts running `mptunnel bridge`, all joined by MTU-1500 veth
pairs (IPv4), and a direct client-server link used only by the reference WireGuard. WireGuard's
peer endpoint in the client host is the tunnel client's listen address (127.0.0.1:3000), and the
tunnel server's target is the WireGuard listen port in the server host.

MTU: a path of MTU 1500 carries 1500 - 20 (IPv4 header) - 8 (UDP header) = 1,472 bytes of UDP
payload; the tunnel adds 44 bytes (20 of header, 16 of tag, 8 of flow header), which leaves 1,428
bytes for each WireGuard datagram; WireGuard adds 32 bytes to each packet (4 type, 4 receiver
index, 8 counter, 16 tag; it pads to 16 bytes but never past the interface MTU), so the WireGuard
interface through the tunnel has MTU 1,428 - 32 = 1,396 (the README's advice) and no datagram is
fragmented: the client's warning about datagrams a path carries only as fragments must not
appear. The reference WireGuard keeps its default, 1,420 (1500 - 40 - 8 - 32: room for IPv6).

- clean: TCP through the tunnel over three clean paths must reach at least 50% of WireGuard
  straight over the direct link (each measured three times, alternating, the best of each kept;
  asserted only while other processes leave the host's CPUs to the test, see
  netlab.check_throughput); 1,000 pings through it lose at most 1%.
- lossy: every bridge loses 20% and delays 20 ms each way; 10,000 pings through the tunnel lose
  at most 2% (expected 1.6%: 0.2^3 each way), and TCP through it reaches at least 3x what
  WireGuard gets over one such path alone (a bridge of its own on relay0, same impairments).
"""
import atexit
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

TUNNEL_MTU = 1396  # 1500 - 20 - 8 - 44 - 32: see above
DIRECT_MTU = 1420  # WireGuard's default
TCP_SECS = 2
TCP_ROUNDS = 3  # clean: rounds of (straight, through the tunnel); the best of each is kept
CLEAN_RATIO = 0.5
CLEAN_PING = (1000, 10, "0.01", 0.01)  # count, processes, interval of each (s), limit
FRAGMENTS_WARNING = "leave as IP fragments"
UAPI_DIR = "/var/run/wireguard"


class Impl:
    """How WireGuard interfaces are made here: the kernel's (`ip link add type wireguard`) or
    wireguard-go's, whose control socket UAPI_DIR/NAME.sock is shared by every namespace, so
    that interface names carry the test's pid."""

    def __init__(self, lab, probe_host):
        self.lab = lab
        self.n = 0
        self.socks = []
        name = self.ifname()
        out = lab.sh(probe_host, ["ip", "link", "add", name, "type", "wireguard"], check=False)
        self.kernel = name in lab.sh(probe_host, ["ip", "-o", "link", "show"])
        if self.kernel:
            lab.sh(probe_host, ["ip", "link", "del", name])
            print("WireGuard: the kernel's module", flush=True)
        else:
            lab.need("wireguard-go")
            try:
                os.close(os.open("/dev/net/tun", os.O_RDWR))
            except OSError as e:
                raise netlab.Skip("/dev/net/tun is not usable (%s), and no WireGuard module "
                                  "(ip link add type wireguard: %s)" % (e, out.strip()))
            print("WireGuard: wireguard-go (no kernel module here)", flush=True)
            atexit.register(self.remove_sockets)

    def ifname(self):
        self.n += 1
        return "wg%d-%d" % (os.getpid(), self.n)  # at most 15 bytes: pid <= 4194304

    def add(self, h, name):
        """A new WireGuard interface in h; returns its name."""
        ifname = self.ifname()
        if self.kernel:
            self.lab.sh(h, ["ip", "link", "add", ifname, "type", "wireguard"])
            return ifname
        sock = os.path.join(UAPI_DIR, ifname + ".sock")
        self.socks.append(sock)
        pr = self.lab.start(h, "wireguard-go-%s" % name,
                            ["env", "WG_PROCESS_FOREGROUND=1", "wireguard-go", "-f", ifname])
        end = time.monotonic() + 5
        while not os.path.exists(sock):
            if not pr.alive():
                log = (pr.log() + pr.stdout()).strip()
                if "TUN" in log:
                    raise netlab.Skip("wireguard-go cannot make a TUN device: %s" % log[-300:])
                raise netlab.Failed("wireguard-go exited (status %s): %s"
                                    % (pr.p.returncode, log[-1000:]))
            if time.monotonic() > end:
                raise netlab.Failed("wireguard-go made no %s within 5 s" % sock)
            time.sleep(0.02)
        return ifname

    def remove_sockets(self):
        """Control sockets left by a wireguard-go that was killed (SIGTERM removes its own)."""
        for sock in self.socks:
            try:
                os.unlink(sock)
            except OSError:
                pass


class Wg:
    """One WireGuard point-to-point link: an interface in `server` listening on UDP `lport`, one
    in `client` whose peer endpoint is `endpoint`; addresses from a fresh /28."""

    def __init__(self, lab, impl, name, client, server, endpoint, lport, mtu):
        t = lab.t
        net, _ = lab.subnet()
        self.lab, self.name, self.client = lab, name, client
        self.saddr, self.caddr = str(net[1]), str(net[2])
        keys = {}
        for side in ("server", "client"):
            priv = lab.sh(client, ["wg", "genkey"]).strip()
            keys[side] = (t.path("wg-%s-%s.key" % (name, side)),
                          lab.sh(client, ["wg", "pubkey"], input=(priv + "\n").encode()).strip())
            with open(os.open(keys[side][0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                      "w") as f:
                f.write(priv + "\n")
        for side, h, addr, peer, peer_addr, extra in (
                ("server", server, self.saddr, "client", self.caddr, []),
                ("client", client, self.caddr, "server", self.saddr, ["endpoint", endpoint])):
            ifname = impl.add(h, "%s-%s" % (name, side))
            lab.sh(h, ["wg", "set", ifname, "private-key", keys[side][0]] +
                   (["listen-port", lport] if side == "server" else []) +
                   ["peer", keys[peer][1], "allowed-ips", peer_addr + "/32"] + extra)
            lab.sh(h, ["ip", "addr", "add", "%s/%d" % (addr, net.prefixlen), "dev", ifname])
            lab.sh(h, ["ip", "link", "set", "dev", ifname, "mtu", mtu, "up"])

    def ready(self, timeout=15):
        """Pings until one is answered (the first one makes WireGuard's handshake, which it
        repeats every 5 s while it gets no answer); returns the seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            out = self.lab.sh(self.client, ["ping", "-q", "-n", "-c", "1", "-W", "1",
                                            self.saddr], timeout=5, check=False)
            if " 1 received" in out:
                print("WireGuard %s up after %.1f s" % (self.name, time.monotonic() - t0),
                      flush=True)
                return time.monotonic() - t0
        raise netlab.Failed("WireGuard %s: no ping answered within %d s" % (self.name, timeout))


def body(t, lab):
    lab.need("wg", "iperf3", "ping")
    client = lab.host("client")
    server = lab.host("server")
    impl = Impl(lab, client)
    direct = lab.link(client, server, mtu=1500)
    paths = lab.relay_paths(client, server, 3, mtu=1500)

    # Clean: WireGuard straight over the direct link, and through the tunnel.
    tun = lab.tunnel(client, server, paths, target="127.0.0.1:51821", name="clean")
    base = Wg(lab, impl, "direct", client, server, "%s:51820" % direct.addr(server), 51820,
              DIRECT_MTU)
    mpt = Wg(lab, impl, "mpt", client, server, tun["listen"], 51821, TUNNEL_MTU)
    base.ready()
    mpt.ready()
    loss = lab.ping(client, mpt.saddr, *CLEAN_PING[:3], mpt.name)
    t.check("clean: ping loss through the tunnel", loss, CLEAN_PING[3], fmt="%.4f")
    port = 5201
    b, m = lab.tcp_best(client, server, [base, mpt], TCP_SECS, TCP_ROUNDS, port)
    port += 2 * TCP_ROUNDS
    print("clean: WireGuard straight %.1f Mbit/s, through the tunnel %.1f Mbit/s"
          % (b / 1e6, m / 1e6))
    lab.check_throughput("clean: TCP through the tunnel / WireGuard straight",
                         m / b if b else 0.0, CLEAN_RATIO)
    for pr in tun["bridges"] + [tun["client"], tun["server"]]:
        t.stop(pr, timeout=3)
    t.expect(FRAGMENTS_WARNING not in tun["client"].log(),
             "clean: WireGuard MTU %d, no datagram a path carries only as fragments"
             % TUNNEL_MTU)

    # Lossy: WireGuard over one lossy path alone, and through the tunnel over three such paths.
    relay0, li0, lo0 = paths[0]
    lb = lab.bridge(relay0, "bridge-alone", "%s:4200" % li0.addr(relay0),
                    "%s:51822" % lo0.addr(server), *(netlab.LOSSY + ["--seed", "51"]))
    base = Wg(lab, impl, "alone", client, server, "%s:4200" % li0.addr(relay0), 51822,
              DIRECT_MTU)
    opts = [netlab.LOSSY + ["--seed", str(61 + i)] for i in range(3)]
    tun = lab.tunnel(client, server, paths, bridge_opts=opts, target="127.0.0.1:51823",
                     client_port=3100, server_port=2100, bridge_port=4100, name="lossy")
    mpt = Wg(lab, impl, "lossy", client, server, tun["listen"], 51823, TUNNEL_MTU)
    mpt.ready()
    lab.lossy_figures("WireGuard", client, server, paths, mpt, base, port, alone_timeout=20)
    t.expect(FRAGMENTS_WARNING not in tun["client"].log(),
             "lossy: no datagram a path carries only as fragments")
    lab.bridge_counts(lb)


netlab.run(body, budget=120)
