"""Hostile-peer benchmark (make bench): how long the trusted CEM needs to reach data exchange
while the gateway's pre-authentication budget is full of attackers, against the same without
them, and what the attackers cost in live heap.

Attackers (host_tests/support/attacker.py, CPython, independent of lib/), kept alive by re-opening:
- idle: TLS with a self-signed certificate, then silence;
- slow: TLS, then the upgrade head one byte every 0.5 s;
- pending: through CMI, hello pending, held for the pairing;
- non-reading: through CMI, then pings without ever reading.
The CEM (tools/testcem) dials, completes SHIP and waits for the gateway's first SPINE datagram;
20 tries each way. Live heap: the gateway's console (diag.status(), after gc.collect()).
Host figures are from the 64-bit unix port, roughly 1.5-2x the ESP32's.
"""

import asyncio
import statistics
import time

from support.attacker import Intruder, flood_pings_without_reading
from support.gateway_proc import FAST_TIMERS, Gateway
from testcem.identity import Identity
from testcem.ship import ShipPeer

TRIES = 20
HOST = "127.0.0.1"


async def cem_time(gw, cem):
    t0 = time.monotonic()
    for _ in range(20):
        p = ShipPeer(cem, ship_id="Bench-CEM", timeout=10)
        try:
            await p.dial(HOST, gw.port, expected_ski=gw.ski)
            await p.recv_datagram(timeout=10)
            took = time.monotonic() - t0
            await p.close()
            return took
        except Exception:  # noqa: BLE001 - refused: a CEM tries again
            await asyncio.sleep(0.3)
    raise AssertionError("CEM never served")


async def keep(kind, port, stop, counts):
    """One attacker of a kind, re-opened whenever the gateway closes it."""
    while not stop.is_set():
        a = None
        try:
            if kind == "idle":
                a = await Intruder(port).tls()
            elif kind == "pending":
                a = Intruder(port)
                await a.pending()
            elif kind == "nonreader":
                a, _, _ = await flood_pings_without_reading(port, seconds=1.0)
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "slow":
                a = await Intruder(port).tls()
                head = b"GET /ship/ HTTP/1.1\r\nHost: x\r\n"
                for i in range(len(head)):
                    if stop.is_set():
                        break
                    a.send(head[i:i + 1])
                    await asyncio.sleep(0.5)
            else:
                # hold until closed by the gateway or the bench ends (reading nothing for a
                # non-reader: wait on the stop event only)
                while not stop.is_set():
                    if kind != "nonreader" and await a.closed_within(0.5):
                        break
                    if kind == "nonreader":
                        await asyncio.sleep(0.5)
                        if a.w.transport.is_closing():
                            break
        except Exception:  # noqa: BLE001 - refused or closed: open the next
            pass
        finally:
            if a is not None:
                a.close()
        await asyncio.sleep(1.0)  # then again (a tight loop would only make strangers evict strangers)


def heap(gw):
    mark = gw.mark()
    gw.type("diag.status()")
    return int(gw.wait_for(r"^heap: (\d+) used", start=mark, timeout=10).group(1))


def test_hostile_bench(tmp_path):
    cem = Identity.generate(common_name="BenchCEM")
    gw = Gateway(tmp_path / "gw", env_probe=True, console=True, ship={"timers_ms": dict(FAST_TIMERS, hello=15000)})
    gw.trust(cem.ski)
    gw.start()
    try:
        gw.wait_for("console:", timeout=10)
        heap(gw)
        base = heap(gw)
        calm = [asyncio.run(cem_time(gw, cem)) for _ in range(TRIES)]
        after_calm = heap(gw)

        # live heap per pre-auth connection: a stranger held pending (TLS + WebSocket), the most
        # the default budget lets strangers hold past TLS (ship.admission.stranger_sets 1: a
        # second one takes the share over, the newest may be the peer being paired); then the
        # whole budget: that one, one connection in the TLS stage and two trusted sessions
        cems = [cem, Identity.generate(common_name="BenchCEM2")]
        gw.trust(cems[1].ski)
        time.sleep(1.5)  # the gateway polls the trust store

        async def held():
            loop = asyncio.get_running_loop()
            crowd = [Intruder(gw.port)]
            for a in crowd:
                await a.pending()
            await asyncio.sleep(0.5)
            one = await loop.run_in_executor(None, heap, gw)
            sessions = []
            for c in cems:
                p = ShipPeer(c, ship_id="Bench-CEM-%d" % len(sessions), timeout=10)
                await p.dial(HOST, gw.port, expected_ski=gw.ski)
                await p.recv_datagram(timeout=10)
                sessions.append(p)
            raw = await Intruder(gw.port).tcp()  # a pre-auth slot in the TLS stage, no set
            await asyncio.sleep(0.5)
            whole = await loop.run_in_executor(None, heap, gw)
            alive = 0
            for a in crowd:
                if not await a.closed_within(0.1):
                    alive += 1
            for a in crowd + [raw]:
                a.close()
            for p in sessions:
                await p.close()
            return one, whole, alive

        one, whole, alive = asyncio.run(held())
        assert alive == 1

        async def under_attack():
            stop = asyncio.Event()
            counts = {}
            kinds = ["idle", "idle", "slow", "pending", "pending", "nonreader"]
            tasks = [asyncio.ensure_future(keep(k, gw.port, stop, counts)) for k in kinds]
            await asyncio.sleep(2.0)
            times = []
            for _ in range(TRIES):
                times.append(await cem_time(gw, cem))
                await asyncio.sleep(0.1)
            peak = await asyncio.get_running_loop().run_in_executor(None, heap, gw)
            stop.set()
            await asyncio.wait(tasks, timeout=10)
            return times, counts, peak

        hostile, counts, peak = asyncio.run(asyncio.wait_for(under_attack(), 300))
        time.sleep(2.0)
        asyncio.run(cem_time(gw, cem))
        time.sleep(0.5)
        after = heap(gw)
        adm = gw.mark()
        gw.type("diag.status()")
        line = gw.wait_for(r"^SHIP stats: (.*)", start=adm, timeout=10).group(1)
    finally:
        gw.stop()

    med_c, med_h = statistics.median(calm), statistics.median(hostile)
    print()
    print("Hostile bench: trusted CEM to data exchange, %d tries each (MicroPython unix port, 64-bit)" % TRIES)
    print("  without attackers     median %6.3f s  max %6.3f s" % (med_c, max(calm)))
    print("  pre-auth budget full  median %6.3f s  max %6.3f s  (attackers opened: %s)" % (
        med_h, max(hostile), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    print("  difference of medians %+6.3f s (target: within 1 s)" % (med_h - med_c))
    print("  live heap listening                %6d B" % base)
    print("  after the calm sessions            %6d B" % after_calm)
    print("  with a stranger held pending       %6d B  (%d B per pre-auth connection)" % (one, one - after_calm))
    print("  budget full (1 pending, 1 in TLS, 2 trusted sessions) %6d B  (%+d B above after the calm sessions)" % (
        whole, whole - after_calm))
    print("  while under attack (budget full)   %6d B" % peak)
    print("  after the attack                   %6d B  (%+d B against after the calm sessions)"
          % (after, after - after_calm))
    print("  SHIP stats: %s" % line)
    assert max(hostile) < 10
    assert after - after_calm < 4096
