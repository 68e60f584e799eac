"""Bench: the ECHONET Lite engine and UDP adapter (lib/echonet) under the MicroPython unix port.

Run: .venv/bin/python -m pytest host_tests/bench/bench_echonet.py -q -s   (or make bench)

- allocation per Get frame (a Home Assistant batch of 7 EPCs, 0x9F included), GC disabled,
  gc.mem_alloc() after N frames minus before, / N: the engine alone (feed into the TX
  buffer; heap_lock must pass), and the adapter's serve path (receive, feed, sendto) on a
  127.0.0.2:3610 socket;
- frames per second served in-process by the engine alone, and over UDP;
- Get round trip (CPython controller on 127.0.0.3 -> the node process on 127.0.0.2 -> back),
  median and p90 of N, and the same for a plain MicroPython UDP echo on the same loopback as
  the ratio's baseline (what the engine and adapter add to the socket round trip).
Host figures (64-bit): allocation is ~1.5-2x the ESP32's; times are ~30-50x shorter than on
an ESP32. Only the engine's zero allocation is asserted.
"""

import re
import statistics
import subprocess
import time

from support import echonet_peer as peer
from support import mpyrun
from support.echonet_node_proc import Node

N = 1000
GET7 = "1081000105ff0102a101620780008800c700da00d300d8009f00"

SCRIPT = r"""
import gc, socket, time, micropython, binascii
from charger import Charger
from echonet.engine import Engine
from echonet.udp import EchonetUdp
from compat import recv_datagram
N = %d
req = binascii.unhexlify("%s")
ch = Charger(6, 16, 3, 230)
ch.update(link=True, state="C", plugged=True, charging=True, error=0, power=7360, total_wh=123456)
e = Engine(ch, ident=b"0123456789")
n = e.feed(req, len(req), 0)
print("R answer_bytes", n)
def locked():  # a function: a new global under the lock could grow the module's dict
    micropython.heap_lock()
    try:
        for i in range(100):
            e.feed(req, len(req), 0)
        return 1
    except MemoryError:
        return 0
    finally:
        micropython.heap_unlock()
print("R heap_lock_ok", locked())
gc.collect(); gc.disable()
m0 = gc.mem_alloc()
for i in range(N):
    e.feed(req, len(req), 0)
print("R engine_alloc", (gc.mem_alloc() - m0) / N)
gc.enable()
t0 = time.ticks_us()
for i in range(N):
    e.feed(req, len(req), 0)
print("R engine_fps", N * 1000000 // time.ticks_diff(time.ticks_us(), t0))
# the adapter's path: recvfrom, feed, sendto on a real socket
u = EchonetUdp(e, "127.0.0.2", 3610, False).open()
s = u.socks[0]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind(socket.getaddrinfo("127.0.0.3", 3611)[0][-1])
dst = socket.getaddrinfo("127.0.0.2", 3610)[0][-1]
c.setblocking(False)
def drain():
    k = 0
    while True:
        try:
            c.recvfrom(1500)
            k += 1
        except OSError:
            return k
for i in range(50):
    c.sendto(req, dst); u.serve_one(s)
drain()
B = 100
tot = 0
gc.collect(); gc.disable()
for r in range(N // B):
    m0 = gc.mem_alloc()
    for i in range(B):
        c.sendto(req, dst)
        u.serve_one(s)
    tot += gc.mem_alloc() - m0
    gc.enable(); drain(); gc.collect(); gc.disable()
gc.enable()
print("R udp_alloc", tot / N)
# receiving alone (compat.recv_datagram: the peek and the one-byte read), for the split
gc.collect(); gc.disable()
m0 = gc.mem_alloc()
for i in range(B):
    c.sendto(req, dst)
    recv_datagram(s, 1500)
print("R recvfrom_alloc", (gc.mem_alloc() - m0) / B)
gc.enable()
t0 = time.ticks_us()
for r in range(N // B):
    for i in range(B):
        c.sendto(req, dst)
        u.serve_one(s)
    drain()
print("R udp_fps", N * 1000000 // time.ticks_diff(time.ticks_us(), t0))
u.close()
"""

ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(socket.getaddrinfo("127.0.0.2", 3610)[0][-1])
print("READY")
while True:
    d, a = s.recvfrom(1500)
    if d == b"quit":
        break
    s.sendto(d, a)
"""


def _results(text):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^R (\S+) (\S+)$", text, re.M)}


def _rtt(n):
    c = peer.Controller("127.0.0.3")
    req = bytes.fromhex(GET7)
    out = []
    try:
        for i in range(n + 20):
            t = time.perf_counter()
            c.send(req, "127.0.0.2")
            data, _ = c.recv(2.0)
            assert data is not None
            if i >= 20:
                out.append((time.perf_counter() - t) * 1e6)
    finally:
        c.close()
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.9)]


def test_bench_echonet(tmp_path):
    r = mpyrun.run_code(SCRIPT % (N, GET7), tmp_path, heapsize="256K").check()
    res = _results(r.stdout)
    node = Node(host="127.0.0.2", multicast=False)
    try:
        med, p90 = _rtt(500)
    finally:
        node.close()
    path = tmp_path / "echo.py"
    path.write_text(ECHO)
    p = subprocess.Popen(mpyrun.argv(str(path)), env=mpyrun.mpy_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "READY"
        emed, ep90 = _rtt(500)
    finally:
        c = peer.Controller("127.0.0.3")
        c.send(b"quit", "127.0.0.2")
        c.close()
        p.wait(5)
    print()
    print("ECHONET Lite, Get of 7 EPCs (answer %d bytes), MicroPython unix port, 64-bit host" % res["answer_bytes"])
    print("  allocation per Get frame, engine alone      %6.1f B  (heap_lock %s)" % (
        res["engine_alloc"], "passes" if res["heap_lock_ok"] else "FAILS"))
    print("  allocation per Get frame, UDP serve path    %6.1f B  (of which receiving %.1f B)" % (
        res["udp_alloc"], res["recvfrom_alloc"]))
    print("  frames per second, engine alone             %6d" % res["engine_fps"])
    print("  frames per second, UDP serve path           %6d" % res["udp_fps"])
    print("  Get round trip from CPython, median / p90   %6.0f / %.0f us" % (med, p90))
    print("  plain MicroPython UDP echo, median / p90    %6.0f / %.0f us  (Get / echo %.2fx)" % (
        emed, ep90, med / emed))
    # (a few bytes over the whole run are the script's own globals, not the frames)
    assert res["heap_lock_ok"] == 1 and res["engine_alloc"] < 1
