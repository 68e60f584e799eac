"""The e-mobility and power use cases end to end: the gateway under the MicroPython unix port
with the charging-station simulator (tools/sim.py, pymodbus) as its controller, against the
test CEM's own SPINE (tools/testcem) over real SHIP/TLS on 127.0.0.1. Plug-in and unplug as
the CEM sees them, EVCC/EVCEM data, OPEV and OSCEV writes reaching the charger model and the
limit register, LPC limits, failsafe when the guard's heartbeats stop, writes without a
binding refused."""

import asyncio
import os

from support import mpyrun
import pytest
from support.bounded import runner
from support.gateway_proc import Gateway
from sim import Simulator
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.spine import SpineCem

HOST = "127.0.0.1"
MAP = os.path.join(mpyrun.ROOT, "board_configs", "chargers", "sim.json")
EV = (1, 1)


run = runner(60.0)


@pytest.fixture(scope="module")
def cem_ident():
    return Identity.generate(common_name="UseCaseCEM")


@pytest.fixture(scope="module")
def station(tmp_path_factory, cem_ident):
    sim = Simulator(MAP, port=0, framing="rtu", seed=11).start()
    gw = Gateway(
        tmp_path_factory.mktemp("ucgw"),
        charger={"map": MAP, "link": {"kind": "rtu-over-tcp", "host": HOST, "port": sim.port},
                 "timeout_ms": 300, "retries": 1},
        # LPC timers shortened so that failsafe is reached within the test
        extra={"usecases": {"hb_timeout_s": 1.5, "lpc_timeout_s": 3, "failsafe_w": 4500, "cevc": True}},
    )
    gw.trust(cem_ident.ski)
    try:
        gw.start()
        gw.wait_for(r"charger link up", 8)
        yield gw, sim
    finally:
        gw.stop()
        sim.stop()


async def connect(gw, ident):
    peer = ShipPeer(ident, ship_id="UseCaseCEM-1", timeout=8)
    await peer.dial(HOST, gw.port, expected_ski=gw.ski)
    cem = SpineCem(peer, timeout=8)
    # clients for CEVC's servers, in our discovery before the gateway reads it
    cem.add_local_feature("TimeSeries", "client")
    cem.add_local_feature("IncentiveTable", "client")
    remote = await cem.startup()
    return cem, remote


def ucs(remote_ucs):
    out = {}
    for u in remote_ucs:
        out.setdefault((tuple(u.entity) if not isinstance(u.entity, tuple) else u.entity, u.actor), []).append(u.name)
    return out


def server(remote, ftype, entity):
    for f in remote.features.values():
        if f.type == ftype and f.role == "server" and tuple(f.entity) == tuple(entity):
            return f
    raise AssertionError("no %s server on %s" % (ftype, entity))




async def sim_reaches(sim, cond, timeout=6.0):
    """The simulator's first state cond accepts (Simulator.wait_state, off the event loop)."""
    return await asyncio.get_running_loop().run_in_executor(None, sim.wait_state, cond, timeout)


def entries(data, item):
    e = data.get(item, [])
    return [e] if isinstance(e, dict) else e


def test_plug_opev_oscev_evcem_unplug(station, cem_ident):
    gw, sim = station

    async def go():
        cem, remote = await connect(gw, cem_ident)
        types = {tuple(k): e.type for k, e in remote.entities.items()} if isinstance(remote.entities, dict) else {}
        assert "EV" not in types.values()
        uc = await cem.read_usecases()
        names = {(u.actor, u.name) for u in uc}
        assert ("EVSE", "evseCommissioningAndConfiguration") in names
        assert ("ControllableSystem", "limitationOfPowerConsumption") in names
        assert ("MonitoredUnit", "monitoringOfPowerConsumption") in names
        assert not any(a == "EV" for a, _ in names)

        # plug-in: the entity-added notify comes first, then the use cases with the EV actor
        await asyncio.get_running_loop().run_in_executor(None, sim.plug)
        dd = await cem.next_notify("nodeManagementDetailedDiscoveryData", timeout=6)
        assert dd.partial
        ucn = await cem.next_notify("nodeManagementUseCaseData", timeout=3)
        assert ucn.msg_counter > dd.msg_counter
        ev_names = {u["useCaseName"] for i in entries(ucn.data, "useCaseInformation") if i["actor"] == "EV"
                    for u in entries(i, "useCaseSupport")}
        assert {"evCommissioningAndConfiguration", "measurementOfElectricityDuringEvCharging",
                "overloadProtectionByEvChargingCurrentCurtailment", "optimizationOfSelfConsumptionDuringEvCharging",
                "coordinatedEvCharging"} <= ev_names
        remote = cem.remote
        assert EV in {tuple(k) for k in remote.entities}

        # EVCC: configuration keys, EV diagnosis state, permitted values
        cfg = server(remote, "DeviceConfiguration", EV)
        desc = await cem.read(cfg.spec, "deviceConfigurationKeyValueDescriptionListData")
        keys = {d["keyName"] for d in entries(desc, "deviceConfigurationKeyValueDescriptionData")}
        assert keys == {"communicationsStandard", "asymmetricChargingSupported"}
        vals = await cem.read(cfg.spec, "deviceConfigurationKeyValueListData")
        assert {"string": "iec61851"} in [v["value"] for v in entries(vals, "deviceConfigurationKeyValueData")]
        diag = server(remote, "DeviceDiagnosis", EV)
        st = await cem.read(diag.spec, "deviceDiagnosisStateData")
        assert st["operatingState"] in ("normalOperation", "standby")
        elec = server(remote, "ElectricalConnection", EV)
        pv = await cem.read(elec.spec, "electricalConnectionPermittedValueSetListData")
        sets = entries(pv, "electricalConnectionPermittedValueSetData")
        first = sets[0]["permittedValueSet"]
        first = first[0] if isinstance(first, list) else first
        rng = first["range"][0] if isinstance(first["range"], list) else first["range"]
        assert rng["min"] == {"number": 6, "scale": 0} and rng["max"] == {"number": 16, "scale": 0}

        # OPEV: a write without a binding is refused (9), nothing changes
        load = server(remote, "LoadControl", EV)
        limits = [{"limitId": p, "isLimitActive": True, "value": {"number": 10, "scale": 0}} for p in range(3)]
        r = await cem.write(load.spec, "loadControlLimitListData", {"loadControlLimitData": limits}, partial=True)
        assert r.error_number == 9
        assert (await cem.subscribe(load.spec)).ok
        assert (await cem.bind(load.spec)).ok
        # 10 A per phase: notify of the limit list first, then result 0; the limit register follows
        r = await cem.write(load.spec, "loadControlLimitListData", {"loadControlLimitData": limits}, partial=True)
        assert r.ok, r
        n = await cem.next_notify("loadControlLimitListData", timeout=3)
        got = {e["limitId"]: e for e in entries(n.data, "loadControlLimitData")}
        assert got[0]["isLimitActive"] is True and got[0]["value"] == {"number": 10, "scale": 0}
        assert got[3]["isLimitActive"] is False
        await sim_reaches(sim, lambda s: s["limit_a"] == 10)
        # out of range: 40 A is clamped to the permitted maximum, a negative value refused
        big = [{"limitId": 0, "isLimitActive": True, "value": {"number": 40, "scale": 0}}]
        assert (await cem.write(load.spec, "loadControlLimitListData", {"loadControlLimitData": big}, partial=True)).ok
        n = await cem.next_notify("loadControlLimitListData", timeout=3)
        got = {e["limitId"]: e for e in entries(n.data, "loadControlLimitData")}
        assert got[0]["value"] == {"number": 16, "scale": 0}
        neg = [{"limitId": 1, "isLimitActive": True, "value": {"number": -5, "scale": 0}}]
        r = await cem.write(load.spec, "loadControlLimitListData", {"loadControlLimitData": neg}, partial=True)
        assert r.error_number == 7
        # OSCEV below OPEV: 8 A recommendation wins inside the obligations
        osc = [{"limitId": 3 + p, "isLimitActive": True, "value": {"number": 8, "scale": 0}} for p in range(3)]
        assert (await cem.write(load.spec, "loadControlLimitListData", {"loadControlLimitData": osc}, partial=True)).ok
        await sim_reaches(sim, lambda s: s["limit_a"] == 8)

        # CEVC: the energy broker's power limits (a constraints time series) become a
        # recommendation; 4140 W over 3 phases pauses-free at 6 A, below the 8 A of OSCEV
        ts = server(remote, "TimeSeries", EV)
        tdesc = await cem.read(ts.spec, "timeSeriesDescriptionListData")
        assert "constraints" in [d["timeSeriesType"] for d in entries(tdesc, "timeSeriesDescriptionData")]
        assert (await cem.bind(ts.spec)).ok
        plan = {"timeSeriesData": [{"timeSeriesId": 2, "timePeriod": {"startTime": "PT0S", "endTime": "PT2H"},
                                    "timeSeriesSlot": [
                                        {"timeSeriesSlotId": 0, "timePeriod": {"startTime": "PT0S"},
                                         "maxValue": {"number": 5000, "scale": 0}},
                                        {"timeSeriesSlotId": 1, "timePeriod": {"startTime": "PT1H", "endTime": "PT2H"},
                                         "maxValue": {"number": 11000, "scale": 0}}]}]}
        r = await cem.write(ts.spec, "timeSeriesListData", plan, partial=False)
        assert r.ok, r
        # 5000 W / (3 x 229-232 V): 7.1-7.2 A
        await sim_reaches(sim, lambda s: 7.1 <= s["limit_a"] <= 7.3)

        # EVCEM: measurement descriptions and notifies of the currents per phase
        meas = server(remote, "Measurement", EV)
        md = await cem.read(meas.spec, "measurementDescriptionListData")
        scopes = [d["scopeType"] for d in entries(md, "measurementDescriptionData")]
        assert scopes.count("acCurrent") == 3 and scopes.count("acPower") == 3 and "charge" in scopes
        assert (await cem.subscribe(meas.spec)).ok
        m = await cem.next_notify("measurementListData", timeout=5)
        ids = {e["measurementId"] for e in entries(m.data, "measurementData")}
        assert {0, 1, 2} <= ids

        # unplug: the use cases without the EV first, then the entity-removed notify
        await asyncio.get_running_loop().run_in_executor(None, sim.unplug)
        ucn = await cem.next_notify("nodeManagementUseCaseData", timeout=6)
        dd = await cem.next_notify("nodeManagementDetailedDiscoveryData", timeout=3)
        assert dd.msg_counter > ucn.msg_counter
        assert EV not in {tuple(k) for k in cem.remote.entities}
        # the EV's limits went with it
        await sim_reaches(sim, lambda s: s["limit_a"] == 16)
        assert not cem.problems, cem.problems
        await cem.close()

    run(go())


def test_lpc_limit_and_failsafe(station, cem_ident):
    gw, sim = station

    async def go():
        cem, remote = await connect(gw, cem_ident)
        # the gateway subscribes its DeviceDiagnosis client [1]/3 to our heartbeat (LPC scenario 3)
        dd = cem.local_feature("DeviceDiagnosis", "server")
        for _ in range(50):
            subs = [s for s in cem.peer_subscriptions
                    if (tuple(s["serverAddress"].get("entity")), s["serverAddress"].get("feature")) == dd.key]
            if subs:
                break
            await asyncio.sleep(0.1)
        assert subs and subs[0]["clientAddress"]["entity"] == [1], cem.peer_subscriptions
        assert subs[0]["clientAddress"]["feature"] == 3, cem.peer_subscriptions
        cem.start_heartbeat(0.5)
        load = server(remote, "LoadControl", (1,))
        cfg = server(remote, "DeviceConfiguration", (1,))
        desc = await cem.read(load.spec, "loadControlLimitDescriptionListData")
        d0 = entries(desc, "loadControlLimitDescriptionData")[0]
        assert (d0["limitType"], d0["limitCategory"], d0["limitDirection"], d0["unit"], d0["scopeType"]) == (
            "signDependentAbsValueLimit", "obligation", "consume", "W", "activePowerLimit")
        kd = await cem.read(cfg.spec, "deviceConfigurationKeyValueDescriptionListData")
        names = {d["keyName"] for d in entries(kd, "deviceConfigurationKeyValueDescriptionData")}
        assert {"failsafeConsumptionActivePowerLimit", "failsafeDurationMinimum"} <= names
        ch = server(remote, "ElectricalConnection", (1,))
        cd = await cem.read(ch.spec, "electricalConnectionCharacteristicListData")
        c0 = entries(cd, "electricalConnectionCharacteristicData")[0]
        assert c0["characteristicType"] == "powerConsumptionNominalMax"

        lim = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "value": {"number": 4500, "scale": 0}}]}
        r = await cem.write(load.spec, "loadControlLimitListData", lim, partial=True)
        assert r.error_number == 9  # no binding yet
        assert (await cem.subscribe(load.spec)).ok
        assert (await cem.bind(load.spec)).ok
        await asyncio.sleep(1.0)  # a heartbeat has reached the gateway
        r = await cem.write(load.spec, "loadControlLimitListData", lim, partial=True)
        assert r.ok, r
        n = await cem.next_notify("loadControlLimitListData", timeout=3)
        e = entries(n.data, "loadControlLimitData")[0]
        assert e["isLimitActive"] is True and e["value"] == {"number": 4500, "scale": 0}
        # 4500 W over 3 phases at the measured 229-232 V: 6.4-6.5 A per phase (rounded down)
        await sim_reaches(sim, lambda s: 6.4 <= s["limit_a"] <= 6.5)
        # negative limit -> rejected, nothing changes
        bad = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "value": {"number": -1, "scale": 0}}]}
        assert (await cem.write(load.spec, "loadControlLimitListData", bad, partial=True)).error_number == 7
        # deactivated: back to the station's maximum
        off = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": False}]}
        assert (await cem.write(load.spec, "loadControlLimitListData", off, partial=True)).ok
        await sim_reaches(sim, lambda s: s["limit_a"] == 16)
        # heartbeats stop: failsafe (the failsafe limit 4500 W -> 6.4-6.5 A) after the shortened timeout
        cem.stop_heartbeat()
        await sim_reaches(sim, lambda s: 6.4 <= s["limit_a"] <= 6.5, 10)
        # heartbeats again and a new limit: out of failsafe
        cem.start_heartbeat(0.5)
        await asyncio.sleep(1.0)
        lim2 = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "value": {"number": 6900, "scale": 0}}]}
        assert (await cem.write(load.spec, "loadControlLimitListData", lim2, partial=True)).ok
        await sim_reaches(sim, lambda s: 9.8 <= s["limit_a"] <= 10)
        cem.stop_heartbeat()
        assert not cem.problems, cem.problems
        await cem.close()

    run(go(), 90)


def test_every_use_case_through_the_cems_runner(station, cem_ident):
    """The installer's check (`gw cem --usecases`): the test CEM's use-case runner finds every
    use case the station announces available by eebus-go's rules, and reads EVSECC, MPC,
    EVCEM and, after the session, the EVCS bill."""
    from testcem.ucrun import CemUseCases

    gw, sim = station

    async def go():
        peer = ShipPeer(cem_ident, ship_id="UseCaseCEM-1", timeout=8)
        await peer.dial(HOST, gw.port, expected_ski=gw.ski)
        cem = SpineCem(peer, timeout=8)
        ucs = CemUseCases(cem, heartbeat=0.5)
        await ucs.start()
        await ucs.settle()
        assert ucs.evsecc.available() and ucs.lpc.available() and ucs.mpc.available() and ucs.evcs.available()
        assert ucs.evsecc.operating_state()[0] == "normalOperation"
        assert ucs.evsecc.manufacturer()["brandName"] == "Test"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sim.plug)
        for _ in range(40):  # the bridge polls once a second, then the EV entity is notified
            await asyncio.sleep(0.2)
            await ucs.settle()
            if ucs.evcc.available():
                break
        for uc in (ucs.evcc, ucs.evcem, ucs.opev, ucs.oscev, ucs.cevc):
            assert uc.available(), (uc, ucs.check())
        assert not ucs.evsoc.available()  # no state of charge from an IEC 61851 controller
        # the simulated EV draws current: MPC and EVCEM see it
        for _ in range(60):
            p = ucs.mpc.power()
            i = ucs.evcem.current_per_phase()
            if p and p > 1000 and i and min(i) > 5:
                break
            await asyncio.sleep(0.2)
        assert p > 1000 and len(i) == 3 and min(i) > 5, (p, i)
        await loop.run_in_executor(None, sim.unplug)
        for _ in range(50):
            bills = ucs.evcs.bills()
            if bills:
                break
            await asyncio.sleep(0.2)
        assert bills and bills[-1]["energy"] is not None and bills[-1]["energy"] > 0, bills
        assert not ucs.problems, ucs.problems
        await ucs.close()
        await cem.close()

    run(go(), 90)
