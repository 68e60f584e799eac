"""Bench: two managers at once (a grid guard and a HEMS).

Run: .venv/bin/python -m pytest host_tests/bench/bench_multipeer.py -q -s   (or make bench)

1. The live heap per additional SHIP session of the running gateway (MicroPython unix port,
   64-bit wheel, GW_HEAP_PROBE=live: gc.collect() and mem_alloc() after every connection step):
   the median over 2 s of steady state (heartbeats flowing, subscriptions, bindings, limits
   written) with one, two and three managers connected. TLS buffers live in the C heap, not
   here (about 23 KB each on the ESP32's mbedTLS sizes). Also the SPINE session alone, sans-IO:
   the station's SpineApp with the EV plugged in, then one peer after another with its use
   cases announced, two subscriptions, a binding and a heartbeat.
2. Over real SHIP/TLS with the gateway and the simulator (test_multipeer_e2e.py's set-up):
   the time from a HEMS's silence (heartbeat stopped, PT4S) and from its disconnect to the
   fallback current at the simulated controller, and the time from a guard's dial to its first
   accepted LPC limit while the HEMS stays served (its heartbeat and OPEV limit in force).
"""

import asyncio
import os
import re
import statistics
import time

from support import mpyrun
import test_multipeer_e2e as mp

_HEAP = r'''
import gc, sys
sys.path.insert(0, "%(cases)s")
import usecase_cases as U
from spine.session import Session
app, ch, s0 = U.new(plugged=True)
app.sessions.remove(s0)
s0 = None
gc.collect()
prev = gc.mem_alloc()
for k in range(4):
    dev = "d:_n:Peer_%%d-000%%d" %% (k, k)
    s = Session(app)
    app.sessions.append(s)
    U.announce(dev, s, "CEM", ("overloadProtectionByEvChargingCurrentCurtailment",
                               "optimizationOfSelfConsumptionDuringEvCharging", "coordinatedEvCharging"))
    U.link_from(dev, s, "sub", (U.EV, 7), ([1], 7), "LoadControl")
    U.link_from(dev, s, "sub", ([1], 2), ([1], 2), "DeviceDiagnosis")
    U.link_from(dev, s, "bind", (U.EV, 7), ([1], 7), "LoadControl")
    U.send_from(dev, s, "notify", ([1], 3), U._HB, src=([1], 2), ack=False)
    U.take(s)
    gc.collect()
    now = gc.mem_alloc()
    print("SESSION", k + 1, now - prev)
    prev = now
'''


def test_heap_per_session(tmp_path):
    code = _HEAP % {"cases": os.path.join(mpyrun.ROOT, "host_tests", "cases")}
    r = mpyrun.run_code(code, tmp_path, heapsize="1M").check()
    per = [int(m.group(2)) for m in re.finditer(r"^SESSION (\d+) (-?\d+)$", r.stdout, re.M)]
    print("\nSPINE session per additional peer (MicroPython unix port, 64-bit, sans-IO): %s B" % per)
    assert len(per) == 4 and max(per) < 16384


def _live(gw, mark):
    vals = [int(m.group(1)) for m in re.finditer(r"^HEAP live (\d+)$", gw.output()[mark:], re.M)]
    assert vals, "no HEAP live lines"
    return statistics.median(vals)


def test_heap_per_ship_session(tmp_path):
    ids = [mp.Identity.generate(common_name="HeapPeer%d" % i) for i in range(3)]
    sim = mp.Simulator(mp.MAP, port=0, framing="rtu", seed=5).start()
    gw = mp.Gateway(tmp_path, env_probe="live", ship={"max_sessions": 4}, extra={"usecases": {"failsafe_w": 11040}},
                    charger={"map": mp.MAP, "link": {"kind": "rtu-over-tcp", "host": mp.HOST, "port": sim.port},
                             "timeout_ms": 300, "retries": 1})
    for i in ids:
        gw.trust(i.ski)
    live = []
    try:
        gw.start()
        gw.wait_for(r"charger link up", 8)

        async def go():
            await asyncio.get_running_loop().run_in_executor(None, sim.plug)
            await mp.wait_sim(sim, lambda s: s["state"] == "C")
            await asyncio.sleep(1.5)
            peers = []
            for k, ident in enumerate(ids):
                role = "guard" if k == 1 else "hems"
                cem, remote = await mp.connect(gw, ident, role, "HeapPeer-%d" % k)
                await mp.heartbeat_subscribed(cem)
                cem.start_heartbeat(0.5)
                if role == "hems":
                    evl = mp.server(remote, "LoadControl", mp.EV)
                    assert (await cem.subscribe(evl.spec)).ok and (await cem.bind(evl.spec)).ok
                    await asyncio.sleep(0.6)
                    assert (await cem.write(evl.spec, "loadControlLimitListData", mp.limits((0, 1, 2), 10),
                                            partial=True)).ok
                else:
                    load = mp.server(remote, "LoadControl", (1,))
                    assert (await cem.subscribe(load.spec)).ok and (await cem.bind(load.spec)).ok
                    await asyncio.sleep(0.6)
                    assert (await cem.write(load.spec, "loadControlLimitListData", mp.watts(9000), partial=True)).ok
                peers.append(cem)
                await asyncio.sleep(1.0)
                mark = len(gw.output())
                await asyncio.sleep(2.0)
                live.append(_live(gw, mark))
            for cem in peers:
                await cem.close()

        mp.run(go(), timeout=120)
    finally:
        gw.stop()
        sim.stop()
    print("\nlive heap of the gateway, steady state (MicroPython unix port, 64-bit): %s B with 1, 2, 3 managers;"
          " per additional SHIP session %s B"
          % ([int(x) for x in live], [int(live[i + 1] - live[i]) for i in range(2)]))


def test_fallback_and_second_peer(tmp_path):
    g_id, h_id = mp.Identity.generate(common_name="BenchGuard"), mp.Identity.generate(common_name="BenchHems")
    gw, sim = mp.start_station(tmp_path, (g_id, h_id), {"failsafe_w": 11040})
    silent, killed, second = [], [], []
    try:
        async def go():
            await asyncio.get_running_loop().run_in_executor(None, sim.plug)
            await mp.wait_sim(sim, lambda s: s["state"] == "C")
            await asyncio.sleep(1.5)  # the gateway has polled the plug-in
            for rnd in range(3):
                hems, hr = await mp.connect(gw, h_id, "hems", "BenchHems-1")
                await mp.heartbeat_subscribed(hems)
                hems.start_heartbeat(0.5)
                evl = mp.server(hr, "LoadControl", mp.EV)
                assert (await hems.bind(evl.spec)).ok
                await asyncio.sleep(0.6)
                assert (await hems.write(evl.spec, "loadControlLimitListData", mp.limits((0, 1, 2), 10),
                                         partial=True)).ok
                await mp.wait_sim(sim, lambda s: s["limit_a"] == 10)
                # a guard joins while the HEMS is served
                t0 = time.monotonic()
                guard, gr = await mp.connect(gw, g_id, "guard", "BenchGuard-1")
                await mp.heartbeat_subscribed(guard)
                guard.start_heartbeat(0.5)
                load = mp.server(gr, "LoadControl", (1,))
                assert (await guard.bind(load.spec)).ok
                while True:
                    r = await guard.write(load.spec, "loadControlLimitListData", mp.watts(9000), partial=True)
                    if r.ok:
                        break
                    await asyncio.sleep(0.05)  # before its heartbeat arrived: 7, retry
                second.append(time.monotonic() - t0)
                assert sim.state()["limit_a"] == 10  # the HEMS's limit stayed in force
                # silence (after the charger model's 1 s minimum write interval has passed)
                await asyncio.sleep(1.2)
                hems.stop_heartbeat()
                t0 = time.monotonic()
                await mp.wait_sim(sim, lambda s: s["limit_a"] == 6, timeout=12)
                silent.append(time.monotonic() - t0)
                hems.start_heartbeat(0.5)
                await asyncio.sleep(0.6)
                assert (await hems.write(evl.spec, "loadControlLimitListData", mp.limits((0, 1, 2), 10),
                                         partial=True)).ok
                await mp.wait_sim(sim, lambda s: s["limit_a"] == 10)
                # kill
                await asyncio.sleep(1.2)
                hems.stop_heartbeat()
                t0 = time.monotonic()
                hems.peer.writer.transport.abort()
                await mp.wait_sim(sim, lambda s: s["limit_a"] == 6, timeout=8)
                killed.append(time.monotonic() - t0)
                await hems.close(ship_close=False)
                await guard.close()
                await asyncio.sleep(0.5)

        mp.run(go(), timeout=300)
    finally:
        gw.stop()
        sim.stop()
    print("\ntwo managers over SHIP/TLS on 127.0.0.1 (3 rounds; median, max):")
    print("  HEMS silent (PT4S) -> 6 A at the controller: %.2f s, %.2f s" % (statistics.median(silent), max(silent)))
    print("  HEMS connection killed -> 6 A: %.2f s, %.2f s" % (statistics.median(killed), max(killed)))
    print("  guard dial -> first accepted LPC write, HEMS served meanwhile: %.2f s, %.2f s"
          % (statistics.median(second), max(second)))
