"""mDNS end to end, inside a private network namespace (`unshare -rn`, loopback up, a route
for 224.0.0.0/4 on lo): our responder under MicroPython found by python-zeroconf (TXT, port,
address, goodbye as removal), our browser finding a service python-zeroconf registered, and
the gateway announcing itself and dialing a CEM it found by browsing.

Each test re-runs itself under `unshare -rn` (GW_IN_NETNS=1 marks the inner run), so no
multicast leaves this machine's loopback in a namespace of its own."""

import asyncio
import functools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from support import mpyrun
from support.paths import MPY_SCRIPTS
import pytest

NODE = os.path.join(MPY_SCRIPTS, "mdns_node.py")
INSIDE = os.environ.get("GW_IN_NETNS") == "1"
SKI = "0123456789abcdef0123456789abcdef01234567"  # mdns_node.py's
SETUP = "ip link set lo up && ip route add 224.0.0.0/4 dev lo src 127.0.0.1 && exec \"$@\""


@functools.lru_cache(None)
def _unshare_works():
    try:
        p = subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=20)
        return p.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def in_netns(fn):
    """Run the test body in a fresh network namespace: pytest runs this one test again there."""

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        if INSIDE:
            return fn(*args, **kw)
        if not _unshare_works():
            pytest.skip("unshare -rn (user and network namespaces) not available")
        cmd = ["unshare", "-rn", "sh", "-c", SETUP, "sh", sys.executable, "-m", "pytest", "-q", "-x",
               "-p", "no:cacheprovider", "%s::%s" % (os.path.abspath(__file__), fn.__name__)]
        p = subprocess.run(cmd, env=dict(os.environ, GW_IN_NETNS="1"), cwd=mpyrun.ROOT, capture_output=True,
                           text=True, timeout=240)
        assert p.returncode == 0, p.stdout[-8000:] + p.stderr[-2000:]

    return wrapper


class Proc:
    """A MicroPython process whose output lines are queued as they come."""

    def __init__(self, script, args):
        self.p = mpyrun.start(script, args=args)
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait(self, pattern, timeout=20.0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no line %r in time; output:\n%s" % (pattern, "\n".join(self.lines)))
            if line is None:
                raise AssertionError("process ended; output:\n%s" % "\n".join(self.lines))
            self.lines.append(line)
            assert "Traceback" not in line, "\n".join(self.lines)
            m = rx.search(line)
            if m:
                return m

    def stop(self):
        rest = mpyrun.stop(self.p)
        out = "\n".join(self.lines) + rest
        assert "Traceback" not in out, out
        return out


def _zeroconf():
    from zeroconf import IPVersion, Zeroconf

    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)


class Events:
    def __init__(self):
        self.q = queue.Queue()

    # zeroconf ServiceListener
    def add_service(self, zc, type_, name):
        self.q.put(("add", name))

    def update_service(self, zc, type_, name):
        self.q.put(("update", name))

    def remove_service(self, zc, type_, name):
        self.q.put(("remove", name))

    def wait(self, kind, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s event" % kind)
            try:
                k, name = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if k == kind:
                return name


@in_netns
def test_zeroconf_finds_our_responder_and_sees_its_goodbye(tmp_path):
    from zeroconf import ServiceBrowser

    stop = str(tmp_path / "stop")
    node = Proc(NODE, ["respond", stop])
    zc = _zeroconf()
    try:
        node.wait("READY")
        ev = Events()
        ServiceBrowser(zc, "_ship._tcp.local.", ev)
        name = ev.wait("add")
        assert name == "OpenEVGW-Test-42._ship._tcp.local."
        info = zc.get_service_info("_ship._tcp.local.", name, timeout=5000)
        assert info is not None
        assert info.port == 4712 and info.server == "openevgw-42.local."
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.properties == {
            b"txtvers": b"1", b"id": b"OpenEVGW-Test-42", b"path": b"/ship/", b"ski": SKI.encode(),
            b"register": b"false", b"brand": b"OpenEVGW", b"model": b"Test", b"type": b"ChargingStation",
            b"serial": b"42", b"cat": b"3"}
        assert info.text.startswith(b"\x09txtvers=1")  # RFC 6763 6.7: txtvers first
        node.wait("UP")
        # a one-shot resolver (source port not 5353) gets a unicast answer to its own port
        import dns.message

        q = dns.message.make_query("openevgw-42.local.", "A")
        q.id = 0x1234
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(10)
        u.sendto(q.to_wire(), ("224.0.0.251", 5353))
        a = dns.message.from_wire(u.recvfrom(1500)[0])
        u.close()
        assert q.is_response(a) and a.answer[0].ttl == 10 and a.answer[0][0].address == "127.0.0.1"
        open(stop, "w").close()
        node.wait("BYE")
        assert ev.wait("remove") == name  # the goodbye, not the TTL: that would take 120 s
    finally:
        zc.close()
        node.stop()


@in_netns
def test_our_browser_finds_a_zeroconf_service_and_its_removal(tmp_path):
    from zeroconf import ServiceInfo

    stop = str(tmp_path / "stop")
    zc = _zeroconf()
    cem_ski = "ab" * 20
    info = ServiceInfo("_ship._tcp.local.", "HEMS Test._ship._tcp.local.", addresses=[socket.inet_aton("127.0.0.1")],
                       port=4711, server="hems-test.local.",
                       properties={"txtvers": "1", "id": "HEMS-1", "path": "/ship/", "ski": cem_ski,
                                   "register": "false",
                                   "type": "EnergyManagementSystem"})
    node = None
    try:
        zc.register_service(info)
        node = Proc(NODE, ["browse", stop])
        m = node.wait(r"^PICK (.+) (\S+) (\d+) ([0-9a-f]{40})$")
        assert m.groups() == ("HEMS Test", "127.0.0.1", "4711", cem_ski)
        zc.unregister_service(info)
        node.wait(r"^COUNT 0$")
        open(stop, "w").close()
        node.wait("BYE")
    finally:
        zc.close()
        if node is not None:
            node.stop()


@in_netns
def test_gateway_announces_itself(tmp_path):
    from support.gateway_proc import Gateway
    from zeroconf import ServiceBrowser

    g = Gateway(tmp_path / "gw", extra={"mdns": {"enabled": True, "ip": "127.0.0.1"}})
    zc = _zeroconf()
    try:
        g.start()
        g.wait_for(r"^mDNS ")
        ev = Events()
        ServiceBrowser(zc, "_ship._tcp.local.", ev)
        name = ev.wait("add")
        assert name == "Test-GW-0001._ship._tcp.local."
        info = zc.get_service_info("_ship._tcp.local.", name, timeout=5000)
        assert info.port == g.port and info.parsed_addresses() == ["127.0.0.1"]
        assert info.server == "test-0001.local."
        p = info.properties
        assert p[b"ski"] == g.ski.encode() and p[b"id"] == g.ship_id.encode() and p[b"register"] == b"false"
        # Ctrl-C: the gateway says goodbye on its way out
        g.proc.send_signal(signal.SIGINT)
        assert ev.wait("remove") == name
        g.wait_for("^stopped")
    finally:
        zc.close()
        g.stop()


@in_netns
def test_gateway_dials_a_cem_it_found_by_browsing(tmp_path):
    from support.gateway_proc import Gateway
    from testcem.identity import Identity
    from testcem.shipserver import ShipServer
    from zeroconf import ServiceInfo

    ident = Identity.generate(common_name="BrowsedCEM")

    async def go():
        srv = ShipServer(ident, ship_id="BrowsedCEM-1", timeout=8)
        await srv.start("127.0.0.1", 0)
        zc = _zeroconf()
        info = ServiceInfo("_ship._tcp.local.", "BrowsedCEM._ship._tcp.local.",
                           addresses=[socket.inet_aton("127.0.0.1")], port=srv.port, server="cem.local.",
                           properties={"txtvers": "1", "id": "BrowsedCEM-1", "path": "/ship/", "ski": ident.ski,
                                       "register": "false"})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, zc.register_service, info)  # blocks while it probes
        g = Gateway(tmp_path / "gwb", ship={"cem_browse": True}, extra={"mdns": {"enabled": True, "ip": "127.0.0.1"}})
        g.trust(ident.ski)
        await loop.run_in_executor(None, g.start)
        try:
            srv.trusted = {g.ski}
            p = await srv.accept(timeout=30)
            assert p.handshake_complete and p.peer_ski == g.ski
            await loop.run_in_executor(None, g.wait_for, r"CEM found: 127\.0\.0\.1:%d SKI %s" % (srv.port, ident.ski))
            assert await p.close()
        finally:
            await srv.close()
            g.stop()
            zc.close()

    asyncio.run(asyncio.wait_for(go(), 90))
