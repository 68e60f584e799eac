"""The real installation: a grid control box and a home energy manager on the gateway at the
same time. Two test CEMs over real SHIP/TLS on 127.0.0.1, each with its own identity, SPINE
device and role (tools/testcem/usecases.py ROLES: the guard announces only the Energy Guard
LPC / Monitoring Appliance MPC side on a GridGuard entity, the HEMS only the CEM side of the
e-mobility use cases), the gateway under MicroPython with the charging-station simulator.

Each of these fails on the code before the multi-peer work (commit 2accce1):
- test_guard_and_hems: the HEMS's heartbeat let an unheard guard's LPC limit through (failure 1),
  the guard's failsafe values before its first limit were refused with 7 (failure 5), a silent
  or killed HEMS left its OPEV limits in force (failure 2), the guard's silence did not enter
  LPC failsafe while the HEMS kept beating (failure 1);
- test_usecases_reread_on_discovery_change: the peer's use cases were never parsed and never
  read again (failure 3).
Failure 6 (the LPC init hold without a guard) is host_tests/cases/lpc_cases.py
case_init_paired_skips_init_until_a_guard_was_seen and test_init_paired_no_hold here.
"""

import asyncio
import os
import time

from support import mpyrun
import pytest
from support.bounded import runner
from support.gateway_proc import Gateway
from sim import Simulator
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import ShipError, data_message
from testcem.spine import SpineCem
from testcem.spinemsg import build_cmd, build_datagram, feature_address
from testcem.usecases import GUARD_USE_CASES, HEMS_USE_CASES, our_use_case_table

HOST = "127.0.0.1"
MAP = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
EV = (1, 1)
# OPEV/OSCEV fall back when the writer's heartbeat is older than its heartbeatTimeout (PT4S)
HB_TIMEOUT_S = 4.0


run = runner(120.0)


def entries(data, item):
    e = data.get(item, [])
    return [e] if isinstance(e, dict) else e


def server(remote, ftype, entity):
    for f in remote.features.values():
        if f.type == ftype and f.role == "server" and tuple(f.entity) == tuple(entity):
            return f
    raise AssertionError("no %s server on %s" % (ftype, entity))


async def wait_sim(sim, pred, timeout=8.0):
    return await asyncio.get_running_loop().run_in_executor(None, sim.wait_state, pred, timeout)


def start_station(tmp, idents, usecases, console=False):
    sim = Simulator(MAP, port=0, framing="rtu", seed=5).start()
    gw = Gateway(
        tmp,
        charger={"map": MAP, "link": {"kind": "rtu-over-tcp", "host": HOST, "port": sim.port},
                 "timeout_ms": 300, "retries": 1},
        extra={"usecases": usecases},
        console=console,
    )
    for i in idents:
        gw.trust(i.ski)
    gw.start()
    gw.wait_for(r"charger link up", 8)
    return gw, sim


@pytest.fixture(scope="module")
def idents():
    return Identity.generate(common_name="GridGuard"), Identity.generate(common_name="Hems")


@pytest.fixture(scope="module")
def station(tmp_path_factory, idents):
    # LPC timers shortened so that failsafe is reached within the test: 3 s without the guard
    gw, sim = start_station(tmp_path_factory.mktemp("mpgw"), idents,
                            {"hb_timeout_s": 1.5, "lpc_timeout_s": 3, "failsafe_w": 4140})
    try:
        yield gw, sim
    finally:
        gw.stop()
        sim.stop()


async def connect(gw, ident, role, name):
    peer = ShipPeer(ident, ship_id=name, timeout=8)
    await peer.dial(HOST, gw.port, expected_ski=gw.ski)
    classes = GUARD_USE_CASES if role == "guard" else HEMS_USE_CASES
    cem = SpineCem(peer, timeout=8, use_cases=our_use_case_table(classes),
                   entity_type="GridGuard" if role == "guard" else "CEM")
    if role == "hems":
        cem.add_local_feature("TimeSeries", "client")
        cem.add_local_feature("IncentiveTable", "client")
    remote = await cem.startup()
    return cem, remote


async def heartbeat_subscribed(cem, timeout=5.0):
    dd = cem.local_feature("DeviceDiagnosis", "server")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for s in cem.peer_subscriptions:
            if (tuple(s["serverAddress"].get("entity")), s["serverAddress"].get("feature")) == dd.key:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not subscribe our heartbeat: %r" % cem.peer_subscriptions)


def limits(ids, amps):
    v = {"number": amps, "scale": 0} if amps == int(amps) else {"number": int(round(amps * 10)), "scale": -1}
    return {"loadControlLimitData": [{"limitId": i, "isLimitActive": True, "value": dict(v)} for i in ids]}


def watts(w):
    return {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "value": {"number": w, "scale": 0}}]}


def failsafe_w(w):
    return {"deviceConfigurationKeyValueData": [
        {"keyId": 0, "value": {"scaledNumber": {"number": w, "scale": 0}}}]}


def test_guard_and_hems(station, idents):
    gw, sim = station
    g_id, h_id = idents

    async def go():
        await asyncio.get_running_loop().run_in_executor(None, sim.plug)
        await wait_sim(sim, lambda s: s["state"] == "C")
        await asyncio.sleep(1.5)  # the gateway has polled the plug-in
        hems, hr = await connect(gw, h_id, "hems", "Hems-1")
        await heartbeat_subscribed(hems)
        hems.start_heartbeat(0.5)
        guard, gr = await connect(gw, g_id, "guard", "GridGuard-1")
        await heartbeat_subscribed(guard)
        # the guard answered the gateway's heartbeat read once; past hb_timeout_s (1.5 s) it is
        # heard of only through the HEMS's heartbeat: its limit is not evaluated (LPC-TS-036)
        load = server(gr, "LoadControl", (1,))
        cfg = server(gr, "DeviceConfiguration", (1,))
        assert (await guard.bind(load.spec)).ok
        assert (await guard.bind(cfg.spec)).ok
        await asyncio.sleep(2.5)
        r = await guard.write(load.spec, "loadControlLimitListData", watts(5520), partial=True)
        assert r.error_number == 7, r  # failure 1: the HEMS's heartbeat must not count for LPC
        # the guard's heartbeat: its failsafe value before any limit is taken (failure 5)
        guard.start_heartbeat(0.5)
        await asyncio.sleep(1.0)
        r = await guard.write(cfg.spec, "deviceConfigurationKeyValueListData", failsafe_w(5000), partial=True)
        assert r.ok, r
        kv = await guard.read(cfg.spec, "deviceConfigurationKeyValueListData")
        v0 = [e for e in entries(kv, "deviceConfigurationKeyValueData") if e["keyId"] == 0][0]
        assert v0["value"]["scaledNumber"] == {"number": 5000, "scale": 0}
        # both limit the station: the strictest wins at the controller
        assert (await guard.write(load.spec, "loadControlLimitListData", watts(5520), partial=True)).ok
        await wait_sim(sim, lambda s: 7.8 <= s["limit_a"] <= 8.0)  # 5520 W / 3 / 229-232 V
        evl = server(hr, "LoadControl", EV)
        assert (await hems.subscribe(evl.spec)).ok
        assert (await hems.bind(evl.spec)).ok
        # the guard may not write the EV's limits without its own binding; the HEMS not LPC's
        assert (await hems.write(load.spec, "loadControlLimitListData", watts(9000), partial=True)).error_number == 9
        assert (await hems.write(evl.spec, "loadControlLimitListData", limits((0, 1, 2), 10), partial=True)).ok
        await asyncio.sleep(0.5)
        assert 7.8 <= sim.state()["limit_a"] <= 8.0  # LPC's 8 A is stricter than OPEV's 10 A
        assert (await hems.write(evl.spec, "loadControlLimitListData", limits((0, 1, 2), 7), partial=True)).ok
        await wait_sim(sim, lambda s: s["limit_a"] == 7)
        assert (await hems.write(evl.spec, "loadControlLimitListData", limits((3, 4, 5), 6.5), partial=True)).ok
        # OSCEV 6.5 A inside OPEV 7 A
        await wait_sim(sim, lambda s: s["limit_a"] == 6.5)
        # the HEMS falls silent: OSCEV withdrawn, OPEV replaced by the safe current (EV min 6 A)
        while hems.pending_notifies():
            await hems.next_notify(timeout=0.1)
        hems.stop_heartbeat()
        t0 = time.monotonic()
        await wait_sim(sim, lambda s: s["limit_a"] == 6, timeout=HB_TIMEOUT_S + 6)
        silent_fallback = time.monotonic() - t0
        assert silent_fallback < HB_TIMEOUT_S + 4, silent_fallback
        n = await hems.next_notify("loadControlLimitListData", timeout=3)
        got = {e["limitId"]: e for e in entries(n.data, "loadControlLimitData")}
        assert got[0]["value"] == {"number": 6, "scale": 0} and got[3]["isLimitActive"] is False
        # back: heartbeat and a new write restore its limits (LPC's 8 A still above)
        hems.start_heartbeat(0.5)
        await asyncio.sleep(0.7)
        assert (await hems.write(evl.spec, "loadControlLimitListData", limits((0, 1, 2), 7.5), partial=True)).ok
        await wait_sim(sim, lambda s: s["limit_a"] == 7.5)
        # the guard falls silent while the HEMS keeps beating: LPC failsafe (5000 W -> 7.1-7.2 A)
        guard.stop_heartbeat()
        t0 = time.monotonic()
        await wait_sim(sim, lambda s: 7.0 <= s["limit_a"] <= 7.3, timeout=3 + 8)
        lpc_fallback = time.monotonic() - t0
        # the HEMS dies (connection gone at once): its OPEV limit goes to the safe current
        hems.stop_heartbeat()
        t0 = time.monotonic()
        hems.peer.writer.transport.abort()
        await wait_sim(sim, lambda s: s["limit_a"] == 6, timeout=5)
        kill_fallback = time.monotonic() - t0
        print("\nfallback: silent HEMS %.2f s, silent guard %.2f s (lpc_timeout_s 3), killed HEMS %.2f s"
              % (silent_fallback, lpc_fallback, kill_fallback))
        assert not guard.problems, guard.problems
        await guard.close()
        await hems.close(ship_close=False)
        await asyncio.get_running_loop().run_in_executor(None, sim.unplug)

    run(go())


def test_usecases_reread_on_discovery_change(station, idents):
    gw, sim = station
    g_id, _ = idents

    async def go():
        guard, gr = await connect(gw, g_id, "guard", "GridGuard-1")
        await heartbeat_subscribed(guard)

        def ucd_reads():
            return [d for d in guard.transcript if d.direction != "send" and d.function == "nodeManagementUseCaseData"
                    and d.classifier == "read"]

        n0 = len(ucd_reads())
        assert n0 >= 1
        gw.wait_for(r"use case EnergyGuard/limitationOfPowerConsumption", 5)
        # our entities change: a discovery notify; the gateway reads our use cases again
        await guard.notify_subscribers(((0,), 0), "nodeManagementDetailedDiscoveryData")
        end = time.monotonic() + 5
        while len(ucd_reads()) <= n0 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        assert len(ucd_reads()) > n0
        await guard.close()

    run(go())


def test_third_peer_refused_at_max_sessions(station, idents):
    # ship.max_sessions (2 by default, as on a WROOM): a third SKI is refused: closed with 1013
    # when the gateway already knows it trusted at the upgrade, with a SHIP close "too many
    # sessions" when the trust store's reload lets it in only during the hello
    gw, sim = station
    g_id, h_id = idents
    third = Identity.generate(common_name="Third")
    gw.trust(third.ski)

    async def go():
        guard, _ = await connect(gw, g_id, "guard", "GridGuard-1")
        hems, _ = await connect(gw, h_id, "hems", "Hems-1")
        peer = ShipPeer(third, ship_id="Third-1", timeout=8)
        with pytest.raises(ShipError, match="1013|too many sessions"):
            await peer.dial(HOST, gw.port, expected_ski=gw.ski)
        gw.wait_for(r"refused, 2 sessions already", 5)
        # the two served peers are unaffected
        assert (await guard.read_usecases())
        await guard.close()
        await hems.close()

    run(go())


def test_init_paired_no_hold(tmp_path, idents):
    # lpc_init "paired": no guard was ever paired, so no 4.2 kW hold after the start; an
    # OPEV write takes effect at once (failure 6)
    _, h_id = idents
    gw, sim = start_station(tmp_path, idents, {"lpc_init": "paired", "failsafe_w": 4140})
    try:
        async def go():
            await asyncio.get_running_loop().run_in_executor(None, sim.plug)
            await wait_sim(sim, lambda s: s["state"] == "C")
            await asyncio.sleep(1.5)  # the gateway has polled the plug-in and written its limit
            s = await wait_sim(sim, lambda s: s["limit_a"] == 16)  # not the 6 A of 4140 W
            assert [60] not in [w[2:] for w in s["writes"] if w[1] == 100]
            hems, hr = await connect(gw, h_id, "hems", "Hems-1")
            evl = server(hr, "LoadControl", EV)
            assert (await hems.bind(evl.spec)).ok
            assert (await hems.write(evl.spec, "loadControlLimitListData", limits((0, 1, 2), 10), partial=True)).ok
            await wait_sim(sim, lambda s: s["limit_a"] == 10)
            await hems.close()

        run(go())
    finally:
        gw.stop()
        sim.stop()


def test_datagrams_of_two_peers_share_one_parse_state(tmp_path, idents):
    # The gateway reads SPINE datagrams with one parse state the sessions borrow (made at
    # start-up). The guard's datagram arrives in two frames 0.06 s apart; the HEMS's read comes
    # in between. Its session's next read is held back until the guard's datagram is done
    # (ship.node _reader, spine.session parse_wait) instead of a second parse state being made
    # at run time (~2.2 KB, the largest allocation of a session then). Both are answered.
    g_id, h_id = idents
    gw, sim = start_station(tmp_path, idents, {"failsafe_w": 4140}, console=True)
    try:
        async def go():
            guard, _ = await connect(gw, g_id, "guard", "GridGuard-1")
            hems, _ = await connect(gw, h_id, "hems", "Hems-1")
            await asyncio.sleep(0.5)  # the start-ups' traffic is over
            n = 7001
            plain = build_datagram(feature_address(guard.device, (0,), 0), guard.remote_nm_address(), "read",
                                   build_cmd("nodeManagementUseCaseData"), n)
            data = data_message(plain)
            split = asyncio.ensure_future(guard.peer.send_raw(data, fragment=len(data) - 16, gap=0.06))
            await asyncio.sleep(0.02)  # the guard's first frame is in: the datagram has begun
            assert await hems.read_usecases(timeout=5)
            await split
            end = time.monotonic() + 5
            while not [d for d in guard.transcript if d.direction != "send" and d.reference == n]:
                assert time.monotonic() < end, "no answer to the guard's split read"
                await asyncio.sleep(0.05)
            mark = gw.mark()
            gw.type("import spine.session as S;print('PARSE-MADE', S._spare[1])")
            assert gw.wait_for(r"^PARSE-MADE (-?\d+)$", 5, start=mark).group(1) == "0"
            await guard.close()
            await hems.close()

        run(go())
    finally:
        gw.stop()
        sim.stop()
