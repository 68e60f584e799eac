"""SHIP memory benchmark (make bench): one handshake plus a 10 KB SPINE message sent in 1 KB
WebSocket fragments, gateway under the MicroPython unix port, peer = the CPython test CEM.

Figures:
- live-heap high-water above the post-import baseline: the gateway collects and reads
  gc.mem_alloc() after every step of the connection (GW_HEAP_PROBE), so this is the largest
  live set between steps; transients inside a step are covered by the next figure;
- the smallest -X heapsize at which the scenario still passes (bisection, 1 KB steps).
Host figures are from a 64-bit build, roughly 1.5-2x the ESP32's.
"""

import asyncio
import binascii
import re

from support.gateway_proc import Gateway
from support.mpyrun import min_heapsize
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import data_message

TARGET_HIGH_WATER = 12 * 1024
SESSIONS = 6


def payload_10k():
    head = (b'{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"msgCounter":7},{"cmdClassifier":"notify"}]},'
            b'{"payload":[{"cmd":[[{"x":"')
    tail = b'"}]]}]}]}'
    return head + b"y" * (10 * 1024 - len(head) - len(tail)) + tail


def scenario(gw, cem):
    """Handshake, 10 KB in 1 KB fragments, close; True when the gateway saw the right bytes."""
    payload = payload_10k()
    want = "datagram %d bytes crc32 %08x" % (len(payload), binascii.crc32(payload) & 0xFFFFFFFF)

    async def go():
        p = ShipPeer(cem, ship_id="Bench-CEM", timeout=10)
        await p.dial("127.0.0.1", gw.port, expected_ski=gw.ski)
        await p.recv_datagram(timeout=10)
        await p.send_raw(data_message(payload), fragment=1024)
        gw.wait_for(re.escape(want), timeout=10)
        await p.close()

    asyncio.run(asyncio.wait_for(go(), 40))


def run_once(tmp_path, cem, heapsize=None, tag="x", sessions=1):
    gw = Gateway(tmp_path / ("gw-%s" % tag), heapsize=heapsize, env_probe=True)
    gw.trust(cem.ski)
    try:
        gw.start(timeout=20)
        closed = []
        for _ in range(sessions):
            mark = gw.mark()
            scenario(gw, cem)
            closed.append(int(gw.wait_for(r"^HEAP closed (\d+) open 0$", start=mark).group(1)))
        heap = {"closed": closed}
        for line in gw.output().splitlines():
            m = re.match(r"HEAP (imports|base|max) (\d+)$", line)
            if m:
                heap[m.group(1)] = int(m.group(2))
        return heap
    finally:
        gw.stop()


def test_ship_handshake_and_10k_message_memory(tmp_path):
    cem = Identity.generate(common_name="Bench")
    heap = run_once(tmp_path, cem, sessions=SESSIONS)
    high = heap["max"] - heap["imports"]
    over_listen = heap["max"] - heap["base"]

    def passes(hs):
        try:
            run_once(tmp_path, cem, heapsize=hs, tag=str(hs))
            return True
        except Exception:  # noqa: BLE001 - any failure (a timeout, MemoryError, ...) means too small
            return False

    smallest = min_heapsize(passes, lo=16 * 1024, hi=1024 * 1024)
    print()
    print("SHIP bench: handshake + 10 KB message in 1 KB fragments (MicroPython unix port, 64-bit)")
    print("  live heap after imports            %6d B" % heap["imports"])
    print("  live heap listening (TLS ctx etc.) %6d B" % heap["base"])
    print("  live heap high-water               %6d B" % heap["max"])
    print("  high-water above post-import base  %6d B  (target <= %d)  %s"
          % (high, TARGET_HIGH_WATER, "met" if high <= TARGET_HIGH_WATER else "NOT met"))
    print("  high-water above listening base    %6d B" % over_listen)
    closed = heap["closed"]
    print("  live heap after 1st / last session %6d / %d B  (one-time after the 1st %+d B, "
          "growth over %d more sessions %+d B)"
          % (closed[0], closed[-1], closed[0] - heap["base"], SESSIONS - 1, closed[-1] - closed[0]))
    print("  smallest -X heapsize that passes   %6d B  (%d KB)" % (smallest, smallest // 1024))
    # the first session leaves one-time state (log ring lines, lazily imported modules);
    # after that, sessions must not leave anything behind
    assert closed[-1] - closed[0] < 512, "connection state not freed"
