"""mptunnel's network lab: hosts are network namespaces joined by veth pairs (python3, standard
library only; builds on ../../integration/lib/mptlib.py).

A lab test is a script in test/netlab/ that calls

    netlab.run(body, budget)            # body(t, lab): t is an mptlib.Test, lab a Lab

It skips (exit 77, with the reason) unless it runs as root on a machine with network namespaces,
veth pairs and the tools it asks for; exits 0 if every check held, 1 if one failed. Whatever
happens (failure, exception, SIGTERM/SIGINT, the time budget), every process it started is killed
by pid and every namespace it made is deleted by name, which also removes the veth pairs, routes
and nftables rules inside. Namespace names are `mptl<pid>-<role>` (pid of the test), so tests
run in parallel (ctest -j) never share anything; a lab left behind by a SIGKILLed test is deleted
by the next lab test that starts.

Lab API (all addresses are inside the namespaces only: IPv4 from the documentation ranges
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 cut into /28s, IPv6 from the ULA fd6d:7074::/48):

  lab.need(*tools)                 Skip unless each program is on PATH (names the Debian package)
  h = lab.host(role)               a new namespace with lo up; h.role, h.ns, h.links
  ln = lab.link(a, b, mtu=1500, v4=True, v6=True, rate=None)
                                   a veth pair a<->b (interfaces eth0, eth1, ... in each host),
                                   MTU on both ends, one IPv4 /28 and one IPv6 /64; `rate`
                                   ("100mbit") shapes both ends with tc tbf.
      ln.addr(h, family=4)         h's address on the link (family 4 or 6)
      ln.peer(h)                   the host at the other end
      ln.ifname(h)                 h's interface name
      ln.set_mtu(mtu)              change the MTU of both ends
  lab.add_address(h, ln, family)   a further address for h on ln (multi-homed host); returns it
  lab.subnet()                     (IPv4 /28, IPv6 /64) used by no link, counted down from the
                                   last /28: for tun interfaces and the like
  lab.router(h)                    IPv4 and IPv6 forwarding on in h
  lab.route(h, dest, via)          a static route in h ("default" or a prefix; family from via)
  lab.nat(box, outside, random_ports=True)
                                   box forwards and masquerades (nftables, table inet) what
                                   leaves through link `outside`; random_ports: a new mapping
                                   gets a random port, so a flush really rebinds
  lab.flush_conntrack(box)         forget every NAT mapping in box (conntrack -F, both families)
  lab.conntrack(box)               the text of `conntrack -L` in box
  lab.relay_paths(client, server, n, mtu=1500, families=(4,)*n, rate=None, name="relay")
                                   n relay hosts <name>K, each with a link from client and one to
                                   server; returns [(relay, link_in, link_out)]; families[i]:
                                   4, 6 or 46 (both) for the links of path i
  lab.shaped_paths(client, server, rates, mtu=1500, name="relay")
                                   relay_paths with the link from the client to relay i shaped
                                   to rates[i] ("20mbit") both ways (tc tbf); the relay-server
                                   link is not shaped
  lab.set_rate(ln, rate)           reshape both ends of link ln (tc tbf, replacing the last)
  netlab.path_opts(delays, losses=None, seed=1)
                                   per-path `mptunnel bridge` options: one-way delay delays[i] ms
                                   each way and loss losses[i], seeded (for lab.tunnel)
  lab.sh(h, argv, timeout=10, check=True)
                                   runs argv in h, waits; returns its stdout (str)
  lab.start(h, name, argv, ready=None, timeout=5)
                                   starts argv in h as mptlib's t.start (pid recorded, killed at
                                   the end; `ready`: a regex its stderr must show)
  lab.wait_listening(h, port, proto="udp", timeout=5)
                                   waits until something in h listens on port
  lab.mptunnel_config(name, secret, ...)
                                   t.write_config with a control socket per role in t.dir
  lab.server(h, cfg) / lab.client(h, cfg) / lab.bridge(h, name, listen, to, *opts)
  lab.echo(h, name, listen)        udpgen echo in h; lab.stop_echo(pr) returns its stats
  lab.sink(h, name, listen)        udpgen sink in h (counts, never replies); lab.stop_echo too
  lab.etc_hosts(h, {name: addr}) names that resolve in h's processes started after the call:
                                   /etc/netns/<ns>/hosts, which `ip netns exec` mounts over
                                   /etc/hosts (with localhost; deleted with the namespace)
  lab.udpgen_send(h, to, count, rate, size=..., ...)
                                   udpgen send in h; returns its JSON summary
  lab.check_throughput(label, value, limit)
                                   t.check of a throughput ratio, asserted only if the host's load
                                   average was at most 2 per CPU at the start (else printed only)
  lab.snmp(h)                      h's /proc/net/snmp and snmp6 counters: {"Udp": {...}, ...},
                                   e.g. ["Udp"]["RcvbufErrors"] (receive buffers overflowed)
  lab.warm_up(h, to, timeout=10)   small runs until one is echoed through the tunnel
  lab.tunnel(client, server, paths, ...)
                                   a whole tunnel: server in `server`, a bridge on each relay of
                                   `paths` (as returned by relay_paths; per-path bridge options),
                                   client in `client`, all paths up; returns a dict (see there)
  lab.bridge_counts(pr)            stop a bridge, return its per-direction counters from its log

Real applications (iperf3 and ping between two hosts, e.g. across a VPN through the tunnel):

  netlab.wait_text(pr, regex, timeout)
                                   waits until a started process's stdout or stderr shows regex
  lab.iperf_tcp(client, server, addr, secs, port, name, cc="cubic", omit=0)
                                   iperf3 TCP from client to an iperf3 server in `server` bound to
                                   addr; prints and returns the bits per second received (0: none)
  lab.ping(client, addr, count, parallel, interval, name)
                                   `parallel` ping processes of count/parallel requests each;
                                   returns the fraction lost, prints it with the average RTT
  lab.rcvbuf_drops(hosts, before, what)
                                   prints the datagrams each host's full receive buffers dropped
                                   since `before` ({role: lab.snmp(h)})
  netlab.OpenVpn(lab, name, client, server, remote, lport, key, tun_mtu)
                                   static-key point-to-point OpenVPN: a server instance in
                                   `server` on UDP lport, a client in `client` sending to remote;
                                   .saddr, .caddr, .ready(timeout), .replays(), .stop(t)
A VPN below is any object with .name, .saddr (its address in the server host) and
.ready(timeout) (waits until it carries traffic or raises Failed):
  lab.tcp_best(client, server, vpns, secs, rounds, port)
                                   rounds of iperf_tcp over each VPN in turn; the best of each
  lab.lossy_figures(app, client, server, paths, mpt, alone, port, ...)
                                   the figures over lossy paths: pings through the tunnel (`mpt`)
                                   and their loss checked; TCP through it checked against `alone`
                                   (the application over one such path) and an absolute floor

This file lives below lib/ so that the CMake glob of test/netlab/*.py does not make it a test.
"""
import atexit
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "integration", "lib"))
import mptlib  # noqa: E402
from mptlib import Failed, Skip  # noqa: E402,F401 - re-exported for the tests

SKIP = mptlib.SKIP
PREFIX = "mptl"
V4_BLOCKS = ("192.0.2.0", "198.51.100.0", "203.0.113.0")
V6_PREFIX = "fd6d:7074:0:%x::"

# Debian package of each tool a test may need, for the skip message.
PACKAGES = {"ip": "iproute2", "tc": "iproute2", "ss": "iproute2", "nft": "nftables",
            "conntrack": "conntrack", "dnsmasq": "dnsmasq", "dig": "dnsutils",
            "iperf3": "iperf3", "openvpn": "openvpn", "ping": "iputils-ping",
            "wg": "wireguard-tools", "wireguard-go": "wireguard-go"}
# TCP congestion control of every iperf3 run: Debian's default, whatever this host's is (BBR
# ignores random loss, and its figures over a 20%-loss path vary tenfold from run to run).
IPERF_CC = "cubic"
# The lossy paths of the real applications' figures: `mptunnel bridge` options losing 20% and
# delaying 20 ms each way; 10,000 pings through the tunnel at 1,000/s in all from 10 ping
# processes lose at most 2% (expected 1.6%: 0.2^3 each way); 5 s of TCP through it.
LOSSY = ["--loss", "0.2", "--delay", "20"]
LOSSY_PING = (10000, 10, "0.01", 0.02)  # count, processes, interval of each (s), limit
LOSSY_TCP_SECS = 5
LOSSY_RATIO = 3.0

_labs = []


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _ip(*args, timeout=10, check=True):
    out = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout, preexec_fn=mptlib._child_setup)
    if check and out.returncode != 0:
        raise Failed("ip %s: %s" % (" ".join(args), out.stderr.decode().strip()))
    return out.stdout.decode()


def _netns_list():
    try:
        text = _ip("netns", "list", check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _kill_netns(ns):
    """Kills every process left in namespace ns (ours: the name is ours), then deletes it."""
    for _ in range(3):
        try:
            pids = [int(p) for p in _ip("netns", "pids", ns, check=False).split()]
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pids = []
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    try:
        _ip("netns", "del", ns, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass
    shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)


def sweep_stale():
    """Deletes the namespaces of lab tests whose process is gone (a SIGKILLed test)."""
    for ns in _netns_list():
        m = re.match(r"^%s(\d+)-" % PREFIX, ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            _kill_netns(ns)


def wait_text(pr, regex, timeout):
    """Waits until the started process's stdout or stderr shows regex."""
    end = time.monotonic() + timeout
    while not re.search(regex, pr.log() + pr.stdout()):
        if not pr.alive():
            raise Failed("%s exited: %s" % (pr.name, (pr.log() + pr.stdout())[-2000:]))
        if time.monotonic() > end:
            raise Failed("%s: no `%s' within %d s: %s"
                         % (pr.name, regex, timeout, (pr.log() + pr.stdout())[-2000:]))
        time.sleep(0.05)


def v4_subnet(index):
    """The IPv4 /28 of link number `index` (0..47)."""
    if index >= 16 * len(V4_BLOCKS):
        raise Failed("too many links for the documentation ranges (%d)" % index)
    base = ipaddress.IPv4Address(V4_BLOCKS[index // 16]) + (index % 16) * 16
    return ipaddress.IPv4Network("%s/28" % base)


def v6_subnet(index):
    return ipaddress.IPv6Network(V6_PREFIX % (index + 1) + "/64")


def path_opts(delays, losses=None, seed=1):
    """`mptunnel bridge` options for paths with one-way delays[i] ms each way and loss losses[i]
    (default none), each path with a seed of its own: bridge_opts for lab.tunnel."""
    opts = []
    for i, d in enumerate(delays):
        o = ["--delay", str(d), "--seed", str(seed + i)]
        if losses and losses[i]:
            o += ["--loss", str(losses[i])]
        opts.append(o)
    return opts


# OpenVPN drops a datagram that comes more than --replay-window (default 64) datagrams late. The
# first copy of a datagram lost on one path comes over another, and on a loaded machine a relay
# process stalls for tens of milliseconds: at 2,000 datagrams/s that is over 64. The manual
# advises a larger window where links reorder; the drops that remain are printed.
OPENVPN_REPLAY_WINDOW = 1024


class OpenVpn:
    """One OpenVPN point-to-point link (static key): a server instance in `server` on UDP port
    `lport`, a client in `client` sending to `remote`; tun addresses from a fresh /28."""

    def __init__(self, lab, name, client, server, remote, lport, key, tun_mtu):
        net, _ = lab.subnet()
        self.saddr, self.caddr = str(net[1]), str(net[2])
        self.name = name
        common = ["openvpn", "--dev", "tun-" + name, "--dev-type", "tun", "--proto", "udp",
                  "--cipher", "AES-256-CBC", "--auth", "SHA256", "--verb", "3",
                  "--suppress-timestamps", "--tun-mtu", str(tun_mtu),
                  "--replay-window", str(OPENVPN_REPLAY_WINDOW)]
        self.srv = lab.start(server, "openvpn-%s-server" % name, common + [
            "--secret", key, "0", "--lport", str(lport), "--local", "0.0.0.0",
            "--ifconfig", self.saddr, self.caddr, "--float"])
        rhost, rport = remote.rsplit(":", 1)
        self.cli = lab.start(client, "openvpn-%s-client" % name, common + [
            "--secret", key, "1", "--nobind", "--remote", rhost, rport,
            "--ifconfig", self.caddr, self.saddr, "--ping", "1"])

    def ready(self, timeout=15):
        for pr in (self.srv, self.cli):
            wait_text(pr, r"Initialization Sequence Completed", timeout)

    def replays(self):
        return sum(pr.stdout().count("bad packet ID") for pr in (self.cli, self.srv))

    def stop(self, t):
        for pr in (self.cli, self.srv):
            t.stop(pr, timeout=3)


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


# Above this many runnable processes per CPU (1-minute load average), a throughput ratio says
# more about the other processes on the host than about the tunnel.
LOADED_PER_CPU = 2.0


class Host:
    def __init__(self, lab, role):
        self.lab = lab
        self.role = role
        self.ns = "%s%d-%s" % (PREFIX, os.getpid(), role)
        self.links = []
        self.nif = 0

    def cmd(self, argv):
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]

    def new_ifname(self):
        n = "eth%d" % self.nif
        self.nif += 1
        return n

    def addr(self, family=4):
        """h's first address of that family, on any link."""
        for ln in self.links:
            a = ln.addr(self, family)
            if a:
                return a
        raise Failed("%s has no IPv%d address" % (self.role, family))

    def __repr__(self):
        return "Host(%s)" % self.role


class Link:
    def __init__(self, lab, index, a, b, mtu):
        self.lab = lab
        self.index = index
        self.a, self.b = a, b
        self.mtu = mtu
        self.ifs = {a.role: a.new_ifname(), b.role: b.new_ifname()}
        self.addrs = {}  # (role, family) -> [address, ...]
        self.v4net = v4_subnet(index)
        self.v6net = v6_subnet(index)
        self.next_host = 3  # .1 and .2 (::1, ::2) are the two ends' first addresses

    def peer(self, h):
        return self.b if h is self.a else self.a

    def ifname(self, h):
        return self.ifs[h.role]

    def addr(self, h, family=4):
        lst = self.addrs.get((h.role, family))
        return lst[0] if lst else None

    def all_addrs(self, h, family=4):
        return list(self.addrs.get((h.role, family), []))

    def set_mtu(self, mtu):
        for h in (self.a, self.b):
            _ip("-n", h.ns, "link", "set", "dev", self.ifname(h), "mtu", str(mtu))
        self.mtu = mtu

    def __repr__(self):
        return "Link(%s %s <-> %s %s, mtu %d)" % (self.a.role, self.ifname(self.a), self.b.role,
                                                  self.ifname(self.b), self.mtu)


class Lab:
    def __init__(self, t):
        self.t = t
        self.hosts = []
        self.links = []
        self.destroyed = False
        self.load_at_start = load_average()
        if os.geteuid() != 0:
            raise Skip("the network lab needs root (namespaces, veth pairs)")
        self.need("ip")
        sweep_stale()

    # ---- checks ----
    def need(self, *tools):
        for tool in tools:
            if shutil.which(tool) is None:
                raise Skip("%s not found (Debian package %s)" % (tool, PACKAGES.get(tool, tool)))

    # ---- building ----
    def host(self, role):
        if not re.match(r"^[a-z][a-z0-9]{0,15}$", role) or any(h.role == role
                                                               for h in self.hosts):
            raise Failed("bad or duplicate host role %r" % role)
        h = Host(self, role)
        if h.ns in _netns_list():
            _kill_netns(h.ns)
        out = subprocess.run(["ip", "netns", "add", h.ns], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=10)
        if out.returncode != 0:
            raise Skip("cannot create a network namespace: %s" % out.stderr.decode().strip())
        self.hosts.append(h)
        _ip("-n", h.ns, "link", "set", "dev", "lo", "up")
        return h

    def link(self, a, b, mtu=1500, v4=True, v6=True, rate=None):
        ln = Link(self, len(self.links), a, b, mtu)
        ia, ib = ln.ifname(a), ln.ifname(b)
        out = subprocess.run(["ip", "link", "add", "name", ia, "netns", a.ns, "mtu", str(mtu),
                              "type", "veth", "peer", "name", ib, "netns", b.ns, "mtu", str(mtu)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        if out.returncode != 0:
            raise Skip("cannot create a veth pair: %s" % out.stderr.decode().strip())
        self.links.append(ln)
        a.links.append(ln)
        b.links.append(ln)
        for k, h in ((1, a), (2, b)):
            if v4:
                self._addr(ln, h, 4, str(ln.v4net[k]))
            if v6:
                self._addr(ln, h, 6, str(ln.v6net[k]))
            _ip("-n", h.ns, "link", "set", "dev", ln.ifname(h), "up")
            if rate:
                self._tbf(h, ln, "add", rate)
        ln.rate = rate
        return ln

    def _tbf(self, h, ln, verb, rate):
        self.sh(h, ["tc", "qdisc", verb, "dev", ln.ifname(h), "root", "tbf", "rate", rate,
                    "burst", "64kb", "latency", "50ms"])

    def set_rate(self, ln, rate):
        """Shapes both ends of ln to rate (tc tbf), replacing their shaping."""
        for h in (ln.a, ln.b):
            self._tbf(h, ln, "replace", rate)
        ln.rate = rate

    def subnet(self):
        """A fresh (IPv4 /28, IPv6 /64) pair not used by any link, for addresses that a test
        gives to something else (an OpenVPN tun, a WireGuard interface)."""
        self.nsubnets = getattr(self, "nsubnets", 0) + 1
        index = 16 * len(V4_BLOCKS) - self.nsubnets
        if index < len(self.links) + 1:
            raise Failed("out of subnets")
        return v4_subnet(index), v6_subnet(0x100 + self.nsubnets)

    def _addr(self, ln, h, family, a):
        plen = 28 if family == 4 else 64
        extra = ["nodad"] if family == 6 else []
        _ip("-n", h.ns, "addr", "add", "%s/%d" % (a, plen), "dev", ln.ifname(h), *extra)
        ln.addrs.setdefault((h.role, family), []).append(a)
        return a

    def add_address(self, h, ln, family=4):
        net = ln.v4net if family == 4 else ln.v6net
        a = str(net[ln.next_host])
        ln.next_host += 1
        return self._addr(ln, h, family, a)

    def router(self, h):
        self.sh(h, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.sh(h, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])

    def route(self, h, dest, via):
        fam = "-6" if ":" in via else "-4"
        _ip("-n", h.ns, fam, "route", "add", dest, "via", via)

    def nat(self, box, outside, random_ports=True):
        self.need("nft")
        self.router(box)
        rnd = " random" if random_ports else ""
        rules = ("table inet mptnat {\n chain post {\n  type nat hook postrouting priority srcnat;"
                 "\n  oifname \"%s\" masquerade%s\n }\n}\n" % (outside.ifname(box), rnd))
        out = subprocess.run(box.cmd(["nft", "-f", "-"]), input=rules.encode(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        if out.returncode != 0:
            raise Skip("nftables NAT does not work here: %s" % out.stderr.decode().strip())

    def flush_conntrack(self, box):
        self.need("conntrack")
        for fam in ("ipv4", "ipv6"):
            self.sh(box, ["conntrack", "-F", "-f", fam], check=False)

    def conntrack(self, box):
        self.need("conntrack")
        return self.sh(box, ["conntrack", "-L"], check=False)

    def relay_paths(self, client, server, n, mtu=1500, families=None, rate=None, name="relay"):
        families = families or (4,) * n
        paths = []
        for i in range(n):
            fam = families[i]
            r = self.host("%s%d" % (name, i))
            v4 = fam in (4, 46)
            v6 = fam in (6, 46)
            li = self.link(client, r, mtu=mtu, v4=v4, v6=v6, rate=rate)
            lo = self.link(r, server, mtu=mtu, v4=v4, v6=v6, rate=rate)
            paths.append((r, li, lo))
        return paths

    def shaped_paths(self, client, server, rates, mtu=1500, name="relay"):
        """len(rates) relay paths (as relay_paths), the link from the client to relay i shaped to
        rates[i] both ways with tc tbf: each path carries at most that, whichever way."""
        paths = self.relay_paths(client, server, len(rates), mtu=mtu, name=name)
        for (r, li, lo), rate in zip(paths, rates):
            self.set_rate(li, rate)
        return paths

    # ---- processes ----
    def sh(self, h, argv, timeout=10, check=True, input=None):
        out = subprocess.run(h.cmd(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout, preexec_fn=mptlib._child_setup, input=input)
        if check and out.returncode != 0:
            raise Failed("%s in %s exited %d: %s" % (" ".join(map(str, argv)), h.role,
                                                     out.returncode, out.stderr.decode()[-500:]))
        return out.stdout.decode("utf-8", "replace")

    def start(self, h, name, argv, ready=None, timeout=5.0):
        return self.t.start(name, h.cmd(argv), ready=ready, timeout=timeout)

    def wait_listening(self, h, port, proto="udp", timeout=5.0, proc=None):
        end = time.monotonic() + timeout
        flag = "-lnu" if proto == "udp" else "-lnt"
        while True:
            text = self.sh(h, ["ss", "-H", flag], check=False)
            if re.search(r"[:\]]%d\s" % port, text):
                return
            if proc is not None and not proc.alive():
                raise Failed("%s exited (status %s) before listening on %d; log:\n%s"
                             % (proc.name, proc.p.returncode, port, proc.log()[-2000:]))
            if time.monotonic() > end:
                raise Failed("nothing listens on %s port %d in %s within %.1f s"
                             % (proto, port, h.role, timeout))
            time.sleep(0.05)

    def mptunnel_config(self, name, secret, **kw):
        kw.setdefault("extra_client", [])
        kw.setdefault("extra_server", [])
        kw["extra_client"] = list(kw["extra_client"]) + [
            "control = " + self.t.path(name + "-client.sock")]
        kw["extra_server"] = list(kw["extra_server"]) + [
            "control = " + self.t.path(name + "-server.sock")]
        return self.t.write_config(name + ".ini", secret, **kw)

    def server(self, h, cfg, name="server", **kw):
        return self.start(h, name, [mptlib.MPTUNNEL, "server", "-c", cfg],
                          ready=r"server listening", **kw)

    def client(self, h, cfg, name="client", **kw):
        return self.start(h, name, [mptlib.MPTUNNEL, "client", "-c", cfg],
                          ready=r"client listening", **kw)

    def bridge(self, h, name, listen, to, *opts, bufsize=mptlib.BUFSIZE):
        bufs = ["--sndbuf", bufsize, "--rcvbuf", bufsize] if bufsize else []
        return self.start(h, name, [mptlib.MPTUNNEL, "bridge", "--listen", listen, "--to", to] +
                          bufs + list(opts), ready=r"listening on")

    def bridge_counts(self, pr):
        """Stops a bridge (SIGTERM) and returns {"to": {...}, "back": {...}} from its summary."""
        rc, _ = self.t.stop(pr, timeout=3)
        if rc != 0:
            raise Failed("%s exited with %s: %s" % (pr.name, rc, pr.log()[-1000:]))
        res = {}
        for line in pr.log().splitlines():
            m = re.search(r"bridge: (to|back): (.*)", line)
            if m:
                res[m.group(1)] = {k.strip().replace(" ", "_"): int(v) for k, v in
                                   re.findall(r"([a-z ]+?) (\d+)", m.group(2))}
        return res

    def echo(self, h, name, listen, bufsize=mptlib.BUFSIZE_BYTES, kind="echo"):
        stats = self.t.path(name + ".json")
        ready = self.t.path(name + ".ready")
        pr = self.start(h, name, [mptlib.UDPGEN, kind, "--listen", listen, "--stats", stats,
                                  "--ready", ready, "--bufsize", str(bufsize)])
        end = time.monotonic() + 5
        while not os.path.exists(ready) or not open(ready).read().strip():
            if not pr.alive():
                raise Failed("%s exited: %s" % (name, pr.log()))
            if time.monotonic() > end:
                raise Failed("%s not ready" % name)
            time.sleep(0.02)
        pr.stats = stats
        return pr

    def sink(self, h, name, listen, bufsize=mptlib.BUFSIZE_BYTES):
        """A udpgen sink in h on listen: counts and checks what arrives, answers nothing."""
        return self.echo(h, name, listen, bufsize, kind="sink")

    def etc_hosts(self, h, names):
        """Makes each name of {name: address} resolve to its address in the processes started in
        h from now on: `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts (glibc's
        `files' source, first in Debian's nsswitch.conf). _kill_netns deletes the directory."""
        d = "/etc/netns/" + h.ns
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
            for name, addr in names.items():
                f.write("%s %s\n" % (addr, name))

    def stop_echo(self, pr):
        return self.t.stop_echo(pr)

    def udpgen_send(self, h, to, count, rate, size="1-1200", flows=1, seed=1, linger=1000,
                    extra=(), bufsize=mptlib.BUFSIZE_BYTES):
        argv = [mptlib.UDPGEN, "send", "--to", to, "--count", count, "--rate", rate, "--size",
                size, "--flows", flows, "--seed", seed, "--linger", linger, "--bufsize",
                bufsize, "--json"] + list(extra)
        tmo = count / max(rate, 1) + linger / 1000.0 + 30
        out = self.sh(h, argv, timeout=tmo)
        return json.loads(out.strip().splitlines()[-1])

    def check_throughput(self, label, value, limit, op=">=", fmt="%.3f"):
        """t.check for a throughput ratio, asserted in CI (CI=true, not a sanitized build) and
        wherever the host was not loaded by others when the lab started (1-minute load average at
        most LOADED_PER_CPU per CPU; later readings include the test's own processes); otherwise
        the figure is printed with its limit and marked as not asserted."""
        cpus = os.cpu_count() or 1
        # In CI nothing else runs and ctest runs these tests alone (RUN_SERIAL): always asserted
        # there, except in the sanitized build, whose figures say nothing of the tunnel's speed.
        ci = os.environ.get("CI") == "true" and "ASAN_OPTIONS" not in os.environ
        if ci or self.load_at_start <= LOADED_PER_CPU * cpus:
            return self.t.check(label, value, limit, op, fmt)
        print("%s %s (%s %s; not asserted: host load average %.1f on %d CPUs at the start)"
              % (label, fmt % value, "at least" if op == ">=" else "limit", fmt % limit,
                 self.load_at_start, cpus), flush=True)
        return True

    def snmp(self, h):
        """h's kernel counters of /proc/net/snmp ({"Ip": {...}, "Udp": {...}, ...}) and
        /proc/net/snmp6 (under "Ip6", "Udp6", ... by the prefix of each name)."""
        res = {}
        lines = self.sh(h, ["cat", "/proc/net/snmp"]).splitlines()
        for head, vals in zip(lines[0::2], lines[1::2]):
            k, names = head.split(":", 1)
            res[k] = dict(zip(names.split(), (int(v) for v in vals.split(":", 1)[1].split())))
        for line in self.sh(h, ["cat", "/proc/net/snmp6"]).splitlines():
            m = re.match(r"^(Ip6|Icmp6|Udp6|UdpLite6)(\S+)\s+(\d+)", line)
            if m:
                res.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3))
        return res

    def rcvbuf_drops(self, hosts, before, what):
        """Prints, for each of hosts that has some, the datagrams its full receive buffers
        dropped since `before` ({role: lab.snmp(h)}) during `what`."""
        for h in hosts:
            d = self.snmp(h)["Udp"]["RcvbufErrors"] - before[h.role]["Udp"]["RcvbufErrors"]
            if d:
                print("%s: %d datagrams dropped by full receive buffers during %s"
                      % (h.role, d, what), flush=True)

    # ---- real applications ----
    def iperf_tcp(self, client, server, addr, secs, port, name, cc=IPERF_CC, omit=0,
                  reverse=False):
        """iperf3 TCP from client to an iperf3 server in `server` bound to addr (port `port`) for
        secs seconds (after `omit` seconds left out of the figure), or from the server to the
        client if `reverse`; returns the bits per second received (0 if iperf3 could not even
        connect)."""
        srv = self.start(server, "iperf3-%s-%d" % (name, port),
                         ["iperf3", "-s", "-1", "-B", addr, "-p", port])
        self.wait_listening(server, port, proto="tcp", proc=srv)
        out = self.sh(client, ["iperf3", "-c", addr, "-p", port, "-t", secs, "-J", "-C", cc,
                               "--connect-timeout", "5000"] + (["-O", omit] if omit else []) +
                      (["-R"] if reverse else []),
                      timeout=secs + omit + 30, check=False)
        try:
            bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
        except (ValueError, KeyError):
            print("iperf3 over %s gave no result: %s" % (name, out[-300:]))
            bps = 0.0
        self.t.stop(srv)
        print("TCP %s %s: %.2f Mbit/s" % ("back over" if reverse else "over", name, bps / 1e6),
              flush=True)
        return bps

    def ping(self, client, addr, count, parallel, interval, name):
        """`parallel` ping processes in client of count/parallel echo requests each to addr, one
        every `interval` seconds each (one ping keeps only a few requests in flight); returns the
        fraction lost."""
        per = count // parallel
        procs = [subprocess.Popen(client.cmd(["ping", "-q", "-n", "-c", per, "-i", interval,
                                              "-W", "1", addr]),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  preexec_fn=mptlib._child_setup) for _ in range(parallel)]
        sent = got = 0
        rtts = []
        try:
            for p in procs:
                out = p.communicate(timeout=max(5, self.t.left() - 20))[0]
                out = out.decode("utf-8", "replace")
                m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
                if not m:
                    raise Failed("ping gave no summary: %s" % out[-300:])
                sent += int(m.group(1))
                got += int(m.group(2))
                rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
                if rtt:
                    rtts.append(float(rtt.group(1)))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        print("ping over %s: %d sent, %d answered, average RTT %.1f ms"
              % (name, sent, got, sum(rtts) / len(rtts) if rtts else -1), flush=True)
        return 1 - got / sent

    def alone_vpn(self, client, server, key, rate="20mbit", delay=2, port=1196,
                  bridge_port=4200, name="alone"):
        """The baseline of the throughput tests: OpenVPN (static key file `key`, tun-mtu 1340)
        over one path alone, through a relay host of its own whose link to the client is shaped
        to `rate`, running `mptunnel bridge --delay delay`. Returns (vpn, bridge) once the VPN is
        up (lab.bridge_counts(bridge) stops the bridge)."""
        (relay, li, lo), = self.shaped_paths(client, server, [rate], name=name)
        br = self.bridge(relay, "bridge-" + name, "%s:%d" % (li.addr(relay), bridge_port),
                         "%s:%d" % (lo.addr(server), port), "--delay", str(delay))
        vpn = OpenVpn(self, name, client, server, "%s:%d" % (li.addr(relay), bridge_port), port,
                      key, 1340)
        vpn.ready()
        return vpn, br

    def tcp_best(self, client, server, vpns, secs, rounds, port, omit=0, reverse=False):
        """`rounds` rounds of iperf_tcp for secs seconds (after omit) over each of vpns in turn
        (alternating, so that load from elsewhere hits each alike), on ports from `port` up, from
        the server to the client if `reverse`; returns the best bits per second of each VPN, in
        order."""
        best = [0.0] * len(vpns)
        for _ in range(rounds):
            for i, vpn in enumerate(vpns):
                best[i] = max(best[i], self.iperf_tcp(client, server, vpn.saddr, secs, port,
                                                      vpn.name, omit=omit, reverse=reverse))
                port += 1
        return best

    def lossy_figures(self, app, client, server, paths, mpt, alone, port, ping=LOSSY_PING,
                      secs=LOSSY_TCP_SECS, ratio=LOSSY_RATIO, least_mbps=0.5, alone_timeout=10,
                      after_ping=None):
        """The figures of application `app` over lossy paths: ping = (count, parallel, interval,
        limit) pings through the tunnel's VPN `mpt`, their loss checked against limit (with the
        datagrams dropped by full receive buffers of client, server and the relays of `paths`
        printed, and then after_ping() called if given); TCP for secs seconds through mpt, then
        over `alone` (the application over one such path; 0 if it does not come up within
        alone_timeout s), on ports port and port + 1; checks that TCP through the tunnel is at
        least `ratio` times that over alone, and at least least_mbps Mbit/s."""
        t = self.t
        hosts = [client, server] + [p[0] for p in paths]
        before = {h.role: self.snmp(h) for h in hosts}
        count, parallel, interval, limit = ping
        loss = self.ping(client, mpt.saddr, count, parallel, interval, mpt.name)
        self.rcvbuf_drops(hosts, before, "the pings")
        if after_ping:
            after_ping()
        t.check("lossy: ping loss through the tunnel", loss, limit, fmt="%.4f")
        m = self.iperf_tcp(client, server, mpt.saddr, secs, port, mpt.name)
        try:
            alone.ready(timeout=alone_timeout)
            b = self.iperf_tcp(client, server, alone.saddr, secs, port + 1, alone.name)
        except Failed as e:
            print("%s over one lossy path did not come up: %s" % (app, str(e)[:200]))
            b = 0.0
        print("lossy: %s over one path %.2f Mbit/s, through the tunnel %.2f Mbit/s"
              % (app, b / 1e6, m / 1e6))
        t.check("lossy: TCP through the tunnel / %s over one such path" % app,
                m / b if b else float("inf"), ratio, ">=", fmt="%.3f")
        t.check("lossy: TCP through the tunnel (Mbit/s)", m / 1e6, least_mbps, ">=", fmt="%.2f")

    def warm_up(self, h, to, timeout=10.0):
        t0 = time.monotonic()
        seed = 1000
        while time.monotonic() - t0 < timeout:
            seed += 1
            r = self.udpgen_send(h, to, 5, 50, size="64", seed=seed, linger=300)
            if r["received_unique"] > 0:
                return time.monotonic() - t0
        raise Failed("no echo through the tunnel within %.1f s" % timeout)

    def tunnel(self, client, server, paths, bridge_opts=None, family=4, target=None,
               client_port=3000, server_port=2000, bridge_port=4000, extra_client=(),
               extra_server=(), extra_tunnel=(), mode=None, name="t", wait_up=True,
               path_families=None, echo_addr="127.0.0.1:7000", bufsize=None):
        """Starts a tunnel: the server in `server` (listen = server_port, all addresses),
        `mptunnel bridge` on every relay of `paths` [(relay, link_in, link_out)] (listening on the
        relay's address on link_in, to the server's address on link_out; per-path options from
        bridge_opts[i]; the address family of each path is the one its links have: IPv4 where
        the link has both unless family=6, or path_families[i]: 4, 6, or (4, 6) for a bridge that
        listens on IPv4 and forwards over IPv6), the client in `client` listening on 127.0.0.1
        (::1 if family == 6) client_port. `target` ("HOST:PORT", as seen from the server host)
        defaults to a udpgen echo in the server host on echo_addr. extra_client, extra_server
        and extra_tunnel: lines of the config file's sections. Waits until every path is up.
        bufsize (bytes): socket buffers of the tunnel, the bridges and the echo (default 4 MiB).
        Returns {"client", "server", "bridges", "echo" (or None), "listen", "cfg", "secret"}."""
        t = self.t
        secret = t.genkey()
        echo = None
        if target is None:
            echo = self.echo(server, "echo", echo_addr, bufsize or mptlib.BUFSIZE_BYTES)
            target = echo_addr
        bridge_addrs = []
        for i, (relay, li, lo) in enumerate(paths):
            pf = path_families[i] if path_families else None
            if pf is None:
                fam = family if li.addr(relay, family) and lo.addr(server, family) else (
                    4 if li.addr(relay, 4) else 6)
                pf = (fam, fam)
            elif isinstance(pf, int):
                pf = (pf, pf)
            a, sa = li.addr(relay, pf[0]), lo.addr(server, pf[1])
            if not a or not sa:
                raise Failed("path %d has no IPv%d address on one of its links" % (i, pf[0]))
            bridge_addrs.append((relay, a, sa))
        loop = "::1" if family == 6 else "127.0.0.1"
        listen = mptlib.fmt_addr(loop, client_port)
        extra = list(extra_client) + (["mode = " + mode] if mode else [])
        cfg = self.mptunnel_config(name, secret, client_listen=listen,
                                   bridges=[mptlib.fmt_addr(a, bridge_port)
                                            for (_, a, _) in bridge_addrs],
                                   server_listen=server_port, target=target,
                                   extra_client=extra, extra_server=extra_server,
                                   extra_tunnel=extra_tunnel,
                                   bufsize=str(bufsize) if bufsize else mptlib.BUFSIZE)
        srv = self.server(server, cfg)
        bridges = []
        for i, (relay, a, sa) in enumerate(bridge_addrs):
            opts = list(bridge_opts[i]) if bridge_opts else []
            bridges.append(self.bridge(relay, "bridge%d" % i, mptlib.fmt_addr(a, bridge_port),
                                       mptlib.fmt_addr(sa, server_port), *opts,
                                       bufsize=str(bufsize) if bufsize else mptlib.BUFSIZE))
        cl = self.client(client, cfg)
        if wait_up:
            t.wait_log(cl, r"path \d+ up", count=len(paths), timeout=10)
        return {"client": cl, "server": srv, "bridges": bridges, "echo": echo, "listen": listen,
                "cfg": cfg, "secret": secret, "bridge_addrs": bridge_addrs}

    def describe(self):
        """Prints the topology: every link with its MTU and addresses."""
        for ln in self.links:
            parts = []
            for h in (ln.a, ln.b):
                ad = ln.all_addrs(h, 4) + ln.all_addrs(h, 6)
                parts.append("%s %s %s" % (h.role, ln.ifname(h), ",".join(ad)))
            print("link %d mtu %d: %s <-> %s" % (ln.index, ln.mtu, parts[0], parts[1]),
                  flush=True)

    # ---- teardown ----
    def destroy(self):
        if self.destroyed:
            return
        self.destroyed = True
        for h in reversed(self.hosts):
            _kill_netns(h.ns)


def _destroy_all():
    for lab in _labs:
        lab.destroy()


atexit.register(_destroy_all)


def run(body, budget, name=None):
    """Runs body(t, lab) under mptlib.run: processes are stopped with SIGTERM (which must end
    them with status 0) and then killed, and the lab's namespaces deleted, whatever happens."""

    def wrapper(t):
        lab = None
        try:
            print("host load average %.2f (%d CPUs)" % (load_average(), os.cpu_count() or 1),
                  flush=True)
            lab = Lab(t)
            _labs.append(lab)
            body(t, lab)
            t.finish()
            if t.failures:
                t.dump_logs()
        except Skip:
            raise
        except BaseException:
            t.dump_logs()
            raise
        finally:
            t.cleanup()
            if lab is not None:
                lab.destroy()

    mptlib.run(wrapper, budget, name=name, attempts=1)
