"""Bench: the mDNS responder (lib/mdns) under the MicroPython unix port.

Run: .venv/bin/python -m pytest host_tests/bench/bench_mdns.py -q -s   (or make bench)

- heap the modules and a running responder take, and the .mpy sizes;
- allocation per answered query: the sans-IO core alone (GC disabled, mem_alloc after N
  answers minus before, / N; heap_lock proves 0), and the whole adapter path over a real UDP
  socket on 127.0.0.77 (the received bytes and address, the send), for a query of a unique
  record (A, answered at once) and of the shared PTR (answered after 20-120 ms);
- CPU per answered PTR query in the core (host figures; an ESP32 needs ~30-50x).
Only the core's zero allocation is asserted.
"""

import os
import re
import subprocess

import dns.message
from support import mpyrun

SCRIPT = r"""
import asyncio, gc, socket, time, micropython
gc.collect(); gc.collect(); base = gc.mem_alloc()
from mdns.responder import Responder
from mdns.setup import ship_txt
from mdns.udp import Mdns
from compat import recv_datagram
gc.collect(); gc.collect()
print("R import_bytes", gc.mem_alloc() - base)
SKI = "0123456789abcdef0123456789abcdef01234567"
base = gc.mem_alloc()
r = Responder("OpenEVGW-Box-1234", "openevgw-1234", 4712, "127.0.0.77",
              ship_txt("OpenEVGW-Box-1234", SKI, brand="OpenEVGW", model="Box", dtype="ChargingStation", serial="1234"))
md = Mdns(r)
gc.collect(); gc.collect()
print("R responder_bytes", gc.mem_alloc() - base)
r.start(0)
t = 0
while r.state != 3:
    r.poll(t)
    t += 250
QS = {"ptr": bytes.fromhex("%s"), "a": bytes.fromhex("%s")}

def core(q, count):
    n = 0
    for i in range(count):
        n = r.handle(q, len(q), 5353, 10000 + i)
    return n

N = 2000
n = core(QS["ptr"], 1)
a0 = 0
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
micropython.heap_lock()
n = core(QS["ptr"], N)
micropython.heap_unlock()
print("R core_bytes_per_query", (gc.mem_alloc() - a0) / N)
gc.enable()
t0 = time.ticks_us()
core(QS["ptr"], N)
print("R core_us_per_query", time.ticks_diff(time.ticks_us(), t0) / N)

# the adapter path over loopback: queries from a client socket, answers to a sink socket
def sock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo("127.0.0.77", port)[0][-1])
    s.setblocking(False)
    return s

md.sock = sock(15353)
sink = sock(15354)
md._group = socket.getaddrinfo("127.0.0.77", 15354)[0][-1]
client = sock(15355)
to = socket.getaddrinfo("127.0.0.77", 15353)[0][-1]

async def adapter(q, count):
    # allocation of the two halves the adapter does per packet, the harness left out:
    # receiving (bytes + address), then _received (answer, send; the delay's sleep for PTR)
    rx = tx = 0
    alloc = gc.mem_alloc
    for i in range(count):
        client.sendto(q, to)
        while True:
            a0 = alloc()
            got = recv_datagram(md.sock, 1500)
            if got is not None:
                data, addr = got
                rx += alloc() - a0
                break
            await asyncio.sleep_ms(0)
        a0 = alloc()
        delay = md._received(data, addr)
        if delay:
            await asyncio.sleep_ms(delay)
            md._flush()
        tx += alloc() - a0
        try:
            while sink.recvfrom(1500):
                pass
        except OSError:
            pass
    return rx, tx

for kind, count in (("a", 300), ("ptr", 40)):
    asyncio.run(adapter(QS[kind], 3))
    gc.collect()
    gc.disable()
    rx, tx = asyncio.run(adapter(QS[kind], count))
    gc.enable()
    print("R recv_bytes_per_query_%%s" %% kind, rx / count)
    print("R answer_bytes_per_query_%%s" %% kind, tx / count)
"""


def test_bench_mdns(tmp_path):
    def q(name, t):
        m = dns.message.make_query(name, t)
        m.id = 0
        return m.to_wire().hex()

    code = SCRIPT % (q("_ship._tcp.local.", "PTR"), q("openevgw-1234.local.", "A"))
    r = mpyrun.run_code(code, tmp_path, timeout=120).check()
    res = {}
    for m in re.finditer(r"^R (\S+) (\S+)(?: (\d+))?$", r.stdout, re.M):
        res[m.group(1)] = float(m.group(2))
    sizes = {}
    for f in ("dns", "responder", "setup", "browse", "udp"):  # the gateway's glue is gateway/mdns_service.py
        out = tmp_path / (f + ".mpy")
        subprocess.run([mpyrun.MPY_CROSS, "-o", str(out), os.path.join(mpyrun.LIB, "mdns", f + ".py")], check=True)
        sizes[f] = os.path.getsize(out)
    print()
    print("mDNS (64-bit host; ESP32 heap ~0.5-0.7x, CPU ~30-50x)")
    print("  import of mdns.responder, .setup, .udp (compiled from source): %d B" % res["import_bytes"])
    print("  a responder with its reply buffer and an Mdns adapter:      %d B" % res["responder_bytes"])
    print("  core, allocation per answered PTR query:                    %.1f B" % res["core_bytes_per_query"])
    print("  core, CPU per answered PTR query:                           %.1f us" % res["core_us_per_query"])
    for k, what in (("a", "A (answered at once)"), ("ptr", "PTR (answered after 20-120 ms)")):
        print("  adapter, per query of %s: receive %.0f B, answer and send %.0f B" % (
            what, res["recv_bytes_per_query_" + k], res["answer_bytes_per_query_" + k]))
    print("  .mpy sizes: %s (total %d B)" % (", ".join("%s %d" % kv for kv in sizes.items()), sum(sizes.values())))
    assert res["core_bytes_per_query"] == 0
