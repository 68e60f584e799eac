# The use-case layer (lib/usecases/station.py with ev.py, evse.py, lpc.py over lib/charger.py): a
# session fed datagrams as SHIP delivers them, the charger model driven as the bridge would.
# Runs under CPython and MicroPython.
from charger import F_I1, F_U1, SRC_LPC, SRC_OPEV, SRC_OSCEV, Charger
from eejson.dialect import build
from eejson.writer import Writer
from spine import datagram as D
from usecases.station import SpineApp
from spine.session import Session
from spine.table import key_fields

GW = "d:_n:Test_GW-0001"
CEM = "d:_n:Demo_CEMPeer-cem-0001"
EV = [1, 1]


def dialect(v):
    # plain value -> dialect text: dicts become lists of one-key objects
    if isinstance(v, dict):
        return "[" + ",".join('{"%s":%s}' % (k, dialect(v[k])) for k in v) + "]"
    if isinstance(v, list):
        return "[" + ",".join(dialect(x) for x in v) + "]"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return '"%s"' % v
    return str(v)


def datagram(src, dst, counter, classifier, cmd, ack=False):
    def addr(a):
        return dialect({"device": a[0], "entity": a[1], "feature": a[2]})

    h = ('{"specificationVersion":"1.3.0"},{"addressSource":%s},{"addressDestination":%s},'
         '{"msgCounter":%d},{"cmdClassifier":"%s"}' % (addr(src), addr(dst), counter, classifier))
    if ack:
        h += ',{"ackRequest":true}'
    return ('{"datagram":[{"header":[%s]},{"payload":[{"cmd":[[%s]]}]}]}' % (h, cmd)).encode()


def feed(s, data, chunk=17):
    s.spine_begin()
    buf = bytearray(data)
    for i in range(0, len(buf), chunk):
        s.spine_data(buf, i, min(chunk, len(buf) - i))
    s.spine_end()


def take(s):
    w = Writer(128)
    out = []
    for o in s.out:
        parts = bytearray()
        n = w.measure(o.emit)
        w.stream(o.emit, lambda mv: parts.extend(mv))
        assert n == len(parts)
        out.append(build(bytes(parts))["datagram"])
    s.out = []
    return out


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


def new(plugged=False, discharges=False, failsafe_w=11040):
    # failsafe_w: the LPC failsafe limit in force in LPC's init state; by default no lower
    # than the station's maximum, so that it does not mask the other use cases
    clock = Clock()
    ch = Charger(6, 16, 3, 230)
    ch.tick(clock.t)
    ch.update(link=True, state="B" if plugged else "A", plugged=plugged)
    app = SpineApp(GW, {"brand": "Test", "model": "GW", "serial": "0001"}, ch,
                   {"phases": 3, "voltage": 230, "discharges": discharges, "clock": clock,
                    "lpc": {"nominal_max_w": 11040, "failsafe_w": failsafe_w}})
    app.clock_synced = lambda: True
    app.clock = clock
    s = Session(app)
    app.sessions.append(s)
    return app, ch, s


_counter = [100]


def send(s, classifier, dst, cmd, src=([1], 7), ack=True):
    _counter[0] += 1
    feed(s, datagram((CEM, src[0], src[1]), (GW, dst[0], dst[1]), _counter[0], classifier, cmd, ack))
    return _counter[0]


def link(s, kind, server, client=([1], 7), ftype="LoadControl"):
    fn = "nodeManagementSubscriptionRequestCall" if kind == "sub" else "nodeManagementBindingRequestCall"
    inner = "subscriptionRequest" if kind == "sub" else "bindingRequest"
    body = {fn: {inner: {"clientAddress": {"device": CEM, "entity": client[0], "feature": client[1]},
                         "serverAddress": {"device": GW, "entity": server[0], "feature": server[1]},
                         "serverFeatureType": ftype}}}
    send(s, "call", ([0], 0), dialect([body])[1:-1], src=client)
    r = take(s)
    assert cmdof(r[-1])["resultData"]["errorNumber"] == 0, r


def read(s, dst, fn, filt=None):
    cmd = '{"%s":[]}' % fn
    if filt:
        cmd = '{"function":"%s"},{"filter":%s},%s' % (fn, filt, cmd)
    send(s, "read", dst, cmd, ack=False)
    r = take(s)
    assert len(r) == 1 and r[0]["header"]["cmdClassifier"] == "reply", r
    return cmdof(r[0])


def limits_cmd(entries, partial=True):
    data = dialect({"loadControlLimitData": entries})
    if partial:
        return ('{"function":"loadControlLimitListData"},{"filter":[[{"cmdControl":[{"partial":[]}]}]]},'
                '{"loadControlLimitListData":%s}' % data)
    return '{"loadControlLimitListData":%s}' % data


def lim(lid, active, number=None, scale=0):
    e = {"limitId": lid, "isLimitActive": active}
    if number is not None:
        e["value"] = {"number": number, "scale": scale}
    return e


def cmdof(d):
    # one cmd entry: a dict when it has one member, else a list holding it
    c = d["payload"]["cmd"]
    return c[0] if isinstance(c, list) else c


def fname(d):
    for k in cmdof(d):
        if k != "function" and k != "filter":
            return k


def result(d):
    return cmdof(d)["resultData"]["errorNumber"]


def items(v, key):
    e = v[key]
    return [e] if isinstance(e, dict) else e


def entity_types(app):
    return [e.type for e in app.device.entities]


def case_ev_entity_follows_plug_and_order_of_notifies():
    app, ch, s = new()
    assert entity_types(app) == ["DeviceInformation", "EVSE"]
    link(s, "sub", ([0], 0), ([0], 0), "NodeManagement")
    ch.update(plugged=True, state="B")
    out = take(s)
    fns = [fname(d) for d in out]
    assert fns == ["nodeManagementDetailedDiscoveryData", "nodeManagementUseCaseData"], fns
    dd = cmdof(out[0])["nodeManagementDetailedDiscoveryData"]
    ent = items(dd, "entityInformation")[0]["description"]
    assert ent["entityType"] == "EV" and ent["lastStateChange"] == "added"
    types = [f["description"]["featureType"] for f in items(dd, "featureInformation")]
    assert types == ["DeviceConfiguration", "Identification", "DeviceClassification", "DeviceDiagnosis",
                     "ElectricalConnection", "Measurement", "LoadControl"], types
    ucs = items(cmdof(out[1])["nodeManagementUseCaseData"], "useCaseInformation")
    assert [u["actor"] for u in ucs] == ["EVSE", "ControllableSystem", "MonitoredUnit", "EV"]
    assert "EV" in entity_types(app)
    ch.update(plugged=False, state="A")
    out = take(s)
    fns = [fname(d) for d in out]
    assert fns == ["nodeManagementUseCaseData", "nodeManagementDetailedDiscoveryData"], fns
    assert "EV" not in entity_types(app)


def case_usecases_announced_with_their_scenarios():
    app, ch, s = new(plugged=True)
    ucs = read(s, ([0], 0), "nodeManagementUseCaseData", None)["nodeManagementUseCaseData"]
    got = {}
    for u in items(ucs, "useCaseInformation"):
        for x in items(u, "useCaseSupport"):
            got[(u["actor"], x["useCaseName"])] = (x["useCaseVersion"], x["scenarioSupport"], x["useCaseAvailable"])
    assert got[("EVSE", "evseCommissioningAndConfiguration")] == ("1.0.1", [1, 2], True)
    assert got[("ControllableSystem", "limitationOfPowerConsumption")] == ("1.0.0", [1, 2, 3, 4], True)
    assert got[("EV", "overloadProtectionByEvChargingCurrentCurtailment")] == ("1.0.1", [1, 2, 3], True)
    assert got[("EV", "evCommissioningAndConfiguration")][1] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert ("ControllableSystem", "limitationOfPowerProduction") not in got
    app, ch, s = new(plugged=True, discharges=True)
    ucs = read(s, ([0], 0), "nodeManagementUseCaseData", None)["nodeManagementUseCaseData"]
    names = [x["useCaseName"] for u in items(ucs, "useCaseInformation") for x in items(u, "useCaseSupport")]
    assert "limitationOfPowerProduction" in names


def case_evse_operating_state_follows_the_controller_link_and_error():
    # EVSECC scenario 2 from the charger model alone (usecases.evse), no relay by the gateway
    app, ch, s = new()
    link(s, "sub", ([1], 2), ftype="DeviceDiagnosis")

    def state():
        out = take(s)
        assert len(out) == 1 and fname(out[0]) == "deviceDiagnosisStateData", out
        return cmdof(out[0])["deviceDiagnosisStateData"]

    ch.update(link=False)
    assert state() == {"operatingState": "failure", "lastErrorCode": "controller link lost"}
    ch.update(link=True, error=5)
    assert state() == {"operatingState": "failure", "lastErrorCode": "controller error 5"}
    ch.update(error=5, power=100)
    assert take(s) == []  # no change, no notify
    ch.update(error=0)
    assert state() == {"operatingState": "normalOperation"}


def case_opev_write_needs_binding_and_reaches_the_model():
    app, ch, s = new(plugged=True)
    c = send(s, "write", (EV, 7), limits_cmd([lim(p, True, 10) for p in range(3)]))
    r = take(s)
    assert result(r[0]) == D.E_BINDING_NEEDED and ch.effective()[1] is None
    link(s, "sub", (EV, 7))
    link(s, "bind", (EV, 7))
    c = send(s, "write", (EV, 7), limits_cmd([lim(p, True, 10) for p in range(3)]))
    r = take(s)
    assert [d["header"]["cmdClassifier"] for d in r] == ["notify", "result"]
    assert r[1]["header"]["msgCounterReference"] == c and result(r[1]) == 0
    got = {e["limitId"]: e for e in items(cmdof(r[0])["loadControlLimitListData"], "loadControlLimitData")}
    assert got[0]["value"] == {"number": 10, "scale": 0} and got[0]["isLimitActive"] is True
    assert got[0]["isLimitChangeable"] is True and got[3]["isLimitActive"] is False
    eff, src, paused = ch.effective()
    assert eff == (10, 10, 10) and src == SRC_OPEV and not paused


def case_opev_out_of_range_and_all_or_nothing():
    app, ch, s = new(plugged=True)
    link(s, "bind", (EV, 7))
    # above the permitted maximum: clamped to 16 A; 10.5 A kept as written
    send(s, "write", (EV, 7), limits_cmd([lim(0, True, 40), lim(1, True, 105, -1), lim(2, True, 10)]))
    assert result(take(s)[-1]) == 0
    assert ch.request_of(SRC_OPEV)[1] == (16, 10.5, 10)
    # one bad entry refuses the whole write, nothing changes
    for bad in ([lim(0, True, 8), lim(1, True, -1)], [lim(0, True, 8), lim(9, True, 8)],
                [lim(0, True, 8), {"limitId": 1, "isLimitActive": "yes"}],
                [lim(0, True, 8), {"limitId": 2, "value": "x"}]):
        send(s, "write", (EV, 7), limits_cmd(bad))
        assert result(take(s)[-1]) == D.E_REJECTED
        assert ch.request_of(SRC_OPEV)[1] == (16, 10.5, 10)
    # below the minimum: accepted, the model pauses
    send(s, "write", (EV, 7), limits_cmd([lim(p, True, 0) for p in range(3)]))
    assert result(take(s)[-1]) == 0
    assert ch.effective()[2] is True
    # deactivated: withdrawn
    send(s, "write", (EV, 7), limits_cmd([lim(p, False) for p in range(3)]))
    assert result(take(s)[-1]) == 0
    assert ch.request_of(SRC_OPEV) is None
    # a full write (no partial filter) from a CEM that saw no partial in the discovery
    send(s, "write", (EV, 7), limits_cmd([lim(p, True, 12) for p in range(6)], partial=False))
    assert result(take(s)[-1]) == 0
    assert ch.request_of(SRC_OPEV)[1] == (12, 12, 12) and ch.request_of(SRC_OSCEV)[1] == (12, 12, 12)


def case_oscev_acts_inside_opev_and_unplug_withdraws():
    app, ch, s = new(plugged=True)
    link(s, "bind", (EV, 7))
    send(s, "write", (EV, 7),
         limits_cmd([lim(p, True, 12) for p in range(3)] + [lim(3 + p, True, 8) for p in range(3)]))
    assert result(take(s)[-1]) == 0
    eff, src, _ = ch.effective()
    assert eff == (8, 8, 8) and src == SRC_OSCEV
    ch.update(plugged=False, state="A")
    assert ch.request_of(SRC_OPEV) is None and ch.request_of(SRC_OSCEV) is None


def case_evcc_and_evcem_data():
    app, ch, s = new(plugged=True)
    v = read(s, (EV, 1), "deviceConfigurationKeyValueListData")["deviceConfigurationKeyValueListData"]
    vals = {e["keyId"]: e["value"] for e in items(v, "deviceConfigurationKeyValueData")}
    assert vals == {1: {"string": "iec61851"}, 2: {"boolean": False}}
    # no entry: no identificationData member
    assert read(s, (EV, 2), "identificationListData")["identificationListData"] == []
    st = read(s, (EV, 4), "deviceDiagnosisStateData")["deviceDiagnosisStateData"]
    assert st == {"operatingState": "standby"}
    ch.update(state="C", charging=True)
    st = read(s, (EV, 4), "deviceDiagnosisStateData")["deviceDiagnosisStateData"]
    assert st == {"operatingState": "normalOperation"}
    fn = "electricalConnectionParameterDescriptionListData"
    pd = read(s, (EV, 5), fn)[fn]
    params = items(pd, "electricalConnectionParameterDescriptionData")
    # the first parameter of each phase is its current parameter (spine.md 12.10)
    first = {}
    for p in params:
        if p.get("acMeasuredPhases") in ("a", "b", "c") and "measurementId" in p:
            first.setdefault(p["acMeasuredPhases"], p["measurementId"])
    assert first == {"a": 0, "b": 1, "c": 2}
    for p in params:
        assert "acMeasuredPhases" in p
    fn = "electricalConnectionPermittedValueSetListData"
    pv = read(s, (EV, 5), fn)[fn]
    sets = {e["parameterId"]: e["permittedValueSet"] for e in items(pv, "electricalConnectionPermittedValueSetData")}
    assert sets[0] == [{"value": [{"number": 0, "scale": 0}],
                        "range": [{"min": {"number": 6, "scale": 0}, "max": {"number": 16, "scale": 0}}]}]
    assert sets[3][0]["range"][0]["max"] == {"number": 11040, "scale": 0}
    for p in range(3):
        ch.set(F_I1 + p, 10.5)
        ch.set(F_U1 + p, 230)
    ch.flush()
    m = read(s, (EV, 6), "measurementListData")["measurementListData"]
    vals = {e["measurementId"]: e["value"] for e in items(m, "measurementData")}
    assert vals[0] == {"number": 105, "scale": -1} and vals[3] == {"number": 2415, "scale": 0}


def case_every_list_function_has_its_key_fields():
    # a read restricted to elements keeps each entry's key fields, looked up by the function's
    # name (spine.table.key_fields): every list function served has them, and every row of it
    # has them
    app, ch, s = new(plugged=True, discharges=True)
    seen = 0
    for e in app.device.entities:
        for f in e.features:
            for fn in f.functions:
                if not fn.selects:
                    continue
                keys = key_fields(fn.name)
                assert keys, fn.name
                for row in fn.rows():
                    names = [row[i] for i in range(0, len(row), 2)]
                    assert all(k in names for k in keys), (fn.name, row)
                seen += 1
    assert seen >= 17


def case_read_with_selectors_and_elements():
    app, ch, s = new(plugged=True)
    filt = ('[[{"cmdControl":[{"partial":[]}]},{"measurementDescriptionListDataSelectors":[{"measurementId":4}]},'
            '{"measurementDescriptionDataElements":[{"scopeType":[]}]}]]')
    cmd = read(s, (EV, 6), "measurementDescriptionListData", filt)
    assert "filter" in cmd
    e = items(cmd["measurementDescriptionListData"], "measurementDescriptionData")
    assert e == [{"measurementId": 4, "scopeType": "acPower"}], e
    # a function without partial read support answers in full
    cmd = read(s, (EV, 4), "deviceDiagnosisStateData", '[[{"cmdControl":[{"partial":[]}]}]]')
    assert cmd["deviceDiagnosisStateData"]["operatingState"] == "standby"


def case_measurement_notifies_rate_limited():
    app, ch, s = new(plugged=True)
    link(s, "sub", (EV, 6), ftype="Measurement")
    link(s, "sub", ([1], 7), ftype="Measurement")
    t = app.clock.t + 5000
    app.clock.t = t
    app.tick(t)
    take(s)
    for k in range(5):
        ch.set(F_I1, 6 + k)
        ch.flush()
        app.clock.t = t + 100 * k
        app.tick(app.clock.t)
    n = [d for d in take(s) if "measurementListData" in cmdof(d)]
    assert len(n) == 2  # one per subscribed feature within the second
    ch.set(F_I1, 9.5)
    ch.flush()
    app.clock.t = t + 1500
    app.tick(t + 1500)
    n = [d for d in take(s) if "measurementListData" in cmdof(d)]
    assert len(n) == 2


def case_lpc_write_after_heartbeat_reaches_the_model():
    app, ch, s = new(failsafe_w=4140)
    # init: the failsafe limit is in force until the guard speaks (LPC-TS-017)
    eff, src, _ = ch.effective()
    assert eff == (6, 6, 6) and src == 6
    link(s, "sub", ([1], 4))
    link(s, "bind", ([1], 4))
    desc = read(s, ([1], 4), "loadControlLimitDescriptionListData")["loadControlLimitDescriptionListData"]
    d0 = items(desc, "loadControlLimitDescriptionData")[0]
    assert (d0["limitType"], d0["limitCategory"], d0["limitDirection"], d0["unit"], d0["scopeType"]) == (
        "signDependentAbsValueLimit", "obligation", "consume", "W", "activePowerLimit")
    # the guard's heartbeat to our DeviceDiagnosis client
    hb = ('{"deviceDiagnosisHeartbeatData":[{"timestamp":"2026-11-21T19:55:33Z"},{"heartbeatCounter":1},'
          '{"heartbeatTimeout":"PT4S"}]}')
    send(s, "notify", ([1], 3), hb, src=([1], 2), ack=False)
    take(s)
    send(s, "write", ([1], 4), limits_cmd([{"limitId": 0, "isLimitActive": True, "timePeriod": {"endTime": "PT1H"},
                                            "value": {"number": 4140, "scale": 0}}]))
    r = take(s)
    assert result(r[-1]) == 0, r
    req = ch.request_of(SRC_LPC)
    assert req is not None and req[1] == 4140
    eff, src, _ = ch.effective()
    assert eff == (6, 6, 6) and src == SRC_LPC
    # negative: rejected, unchanged
    send(s, "write", ([1], 4), limits_cmd([lim(0, True, -5)]))
    assert result(take(s)[-1]) == D.E_REJECTED
    assert ch.request_of(SRC_LPC)[1] == 4140


def case_delete_filter_parsed():
    inc = D.Incoming(lambda i, n: D.BoundedTree())
    from eejson.reader import Reader

    filt = ('[[{"cmdControl":[{"delete":[]}]},{"loadControlLimitListDataSelectors":[{"limitId":0}]},'
            '{"loadControlLimitDataElements":[{"timePeriod":[]}]}],[{"cmdControl":[{"partial":[]}]}]]')
    cmd = ('{"function":"loadControlLimitListData"},{"filter":%s},'
           '{"loadControlLimitListData":[{"loadControlLimitData":[[{"limitId":0},{"isLimitActive":true}]]}]}' % filt)
    data = datagram((CEM, [1], 7), (GW, [1], 4), 5, "write", cmd)
    r = Reader(inc)
    r.feed(bytearray(data), 0, len(data))
    r.finish()
    inc.check()
    assert inc.delete and inc.partial
    assert inc.del_selectors == {"limitId": 0} and inc.del_elements == ["timePeriod"]
    assert inc.selectors is None


def wire(s):
    # the bytes of each queued message, as they go out
    w = Writer(128)
    out = []
    for o in s.out:
        parts = bytearray()
        w.stream(o.emit, lambda mv: parts.extend(mv))
        out.append(bytes(parts))
    s.out = []
    return out


def case_zero_entry_lists_are_left_out_on_the_wire():
    # eebus-go reads `[]` as an empty object: "identificationData":[] failed to unmarshal and the
    # whole message was dropped. A list without entries is the member left out (spine-go writes
    # an empty list function as {"xxxListData":[]}).
    app, ch, s = new(plugged=True)
    send(s, "read", (EV, 2), '{"identificationListData":[]}', ack=False)
    r = wire(s)
    assert len(r) == 1 and b'{"cmd":[[{"identificationListData":[]}]]}' in r[0], r
    # selectors matching no entry
    filt = '[[{"cmdControl":[{"partial":[]}]},{"measurementDescriptionListDataSelectors":[{"measurementId":99}]}]]'
    send(s, "read", (EV, 6),
         '{"function":"measurementDescriptionListData"},{"filter":%s},{"measurementDescriptionListData":[]}' % filt,
         ack=False)
    r = wire(s)
    assert b'{"measurementDescriptionListData":[]}' in r[0] and b'"measurementDescriptionData"' not in r[0], r
    # nobody subscribed or bound yet
    for fn in ("nodeManagementSubscriptionData", "nodeManagementBindingData"):
        send(s, "read", ([0], 0), '{"%s":[]}' % fn, ack=False)
        r = wire(s)
        assert b'{"%s":[]}' % fn.encode() in r[0] and b"Entry" not in r[0], r


def _meas_notifies(s):
    return [m for m in wire(s) if b'"measurementListData"' in m and b'"notify"' in m]


def case_measurement_notifies_carry_only_what_moved():
    # the first notify is the whole list; then only entries that moved a step (0.5 A, 100 W,
    # 10 Wh, 5 V), as a partial notify the peer merges by measurementId; reads stay whole
    app, ch, s = new(plugged=True)
    link(s, "sub", (EV, 6), ftype="Measurement")
    link(s, "sub", ([1], 7), ftype="Measurement")

    def second(**changes):
        ch.update(**changes)
        app.clock.t += 1000
        app.tick(app.clock.t)
        return _meas_notifies(s)

    n = second(i1=10.5, i2=10.5, i3=10.5, u1=230.0, u2=230.0, u3=230.0, power=7245, total_wh=5000, session_wh=0)
    assert len(n) == 2 and all(b'"filter"' not in m for m in n), n  # full: everything is new
    full = max(len(m) for m in n)
    # 0.3 V, 0.4 A and 92 W: below the steps, nothing goes out
    assert second(u1=230.3, i2=10.9, power=7337) == []
    # phase a's current moves 0.6 A: EVCEM's current a and power a (11.1 A x 230.3 V), MPC's the same
    n = second(i1=11.1)
    assert len(n) == 2, n
    part = (b'{"function":"measurementListData"},{"filter":[[{"cmdControl":[{"partial":[]}]}]]},'
            b'{"measurementListData":[{"measurementData":[')
    for m in n:
        assert part in m, m
        assert len(m) < full * 2 // 3, (len(m), full)
    evcem = [m for m in n if b'"entity":[1,1]' in m.split(b'"addressDestination"')[0]][0]
    assert evcem.count(b'{"measurementId":') == 2, evcem
    assert b'[{"measurementId":0},{"valueType":"value"},{"value":[{"number":111},{"scale":-1}]}' in evcem, evcem
    assert b'[{"measurementId":3},{"valueType":"value"},{"value":[{"number":2556},{"scale":0}]}' in evcem, evcem
    mpc = [m for m in n if m is not evcem][0]
    assert mpc.count(b'{"measurementId":') == 2, mpc  # power a (1) and current a (5)
    assert b'[{"measurementId":1},' in mpc and b'[{"measurementId":5},' in mpc, mpc
    # energy: every 10 Wh
    assert second(session_wh=9, total_wh=5009) == []
    n = second(session_wh=10, total_wh=5010)
    assert len(n) == 2 and all(m.count(b'{"measurementId":') == 1 for m in n), n
    # a read is the whole list
    v = read(s, (EV, 6), "measurementListData")["measurementListData"]
    assert len(items(v, "measurementData")) == 7
    # a new EV starts with the whole list again
    ch.update(plugged=False, state="A")
    app.clock.t += 1000
    app.tick(app.clock.t)
    take(s)
    ch.update(plugged=True, state="B")
    link(s, "sub", (EV, 6), ftype="Measurement")
    n = second(session_wh=11)
    evcem = [m for m in n if b'"entity":[1,1]' in m.split(b'"addressDestination"')[0]]
    assert len(evcem) == 1 and b'"filter"' not in evcem[0] and evcem[0].count(b'{"measurementId":') == 7, evcem


# ---- two managers at once: a grid guard and a HEMS, one session each ---------------------

GUARD = "d:_n:Demo_ControlBox-0002"
_HB = ('{"deviceDiagnosisHeartbeatData":[{"timestamp":"2026-11-21T19:55:33Z"},{"heartbeatCounter":1},'
       '{"heartbeatTimeout":"PT4S"}]}')


def send_from(dev, s, classifier, dst, cmd, src=([1], 7), ack=True):
    _counter[0] += 1
    feed(s, datagram((dev, src[0], src[1]), (GW, dst[0], dst[1]), _counter[0], classifier, cmd, ack))


def link_from(dev, s, kind, server, client, ftype):
    fn = "nodeManagementSubscriptionRequestCall" if kind == "sub" else "nodeManagementBindingRequestCall"
    inner = "subscriptionRequest" if kind == "sub" else "bindingRequest"
    body = {fn: {inner: {"clientAddress": {"device": dev, "entity": client[0], "feature": client[1]},
                         "serverAddress": {"device": GW, "entity": server[0], "feature": server[1]},
                         "serverFeatureType": ftype}}}
    send_from(dev, s, "call", ([0], 0), dialect([body])[1:-1], src=client)
    assert cmdof(take(s)[-1])["resultData"]["errorNumber"] == 0


def announce(dev, s, actor, names, classifier="reply"):
    info = [{"address": {"device": dev, "entity": [1]}, "actor": actor,
             "useCaseSupport": [{"useCaseName": n, "useCaseVersion": "1.0.0", "useCaseAvailable": True,
                                 "scenarioSupport": [1, 2, 3, 99]} for n in names]}]
    send_from(dev, s, classifier, ([0], 0), '{"nodeManagementUseCaseData":%s}' % dialect({"useCaseInformation": info}),
              src=([0], 0), ack=False)
    take(s)


def two_peers(plugged=False):
    app, ch, hems = new(plugged=plugged, failsafe_w=4140)
    guard = Session(app)
    app.sessions.append(guard)
    announce(CEM, hems, "CEM", ("overloadProtectionByEvChargingCurrentCurtailment",
                                "optimizationOfSelfConsumptionDuringEvCharging"))
    announce(GUARD, guard, "EnergyGuard", ("limitationOfPowerConsumption",))
    return app, ch, hems, guard


def case_peer_usecases_parsed_bounded():
    app, ch, hems, guard = two_peers()
    assert [u[:3] for u in guard.remote.ucs] == [["EnergyGuard", "limitationOfPowerConsumption", 0b1110]]
    assert guard.remote.ucs[0][3] == (1,)
    assert len(hems.remote.ucs) == 2
    # useCaseAvailable false is left out; at most 16 kept
    info = [{"address": {"device": CEM, "entity": [1]}, "actor": "CEM",
             "useCaseSupport": [{"useCaseName": "uc%d" % i, "useCaseAvailable": i != 3, "scenarioSupport": [1]}
                                for i in range(40)]}]
    send_from(CEM, hems, "notify", ([0], 0), '{"nodeManagementUseCaseData":%s}' % dialect({"useCaseInformation": info}),
              src=([0], 0), ack=False)
    take(hems)
    names = [u[1] for u in hems.remote.ucs]
    assert len(names) == 16 and "uc3" not in names


def case_only_the_guards_heartbeat_supervises_lpc():
    app, ch, hems, guard = two_peers()
    assert app.lpc_guard() is guard  # by its EnergyGuard announcement
    assert app.limit_text() == "limit 6A lpc init"  # 4140 W in LPC's init (LPC-TS-017)
    link_from(GUARD, guard, "bind", ([1], 4), ([1], 4), "LoadControl")
    assert app.lpc_guard() is guard  # by its binding
    # the HEMS's heartbeat does not make LPC writes evaluable
    send_from(CEM, hems, "notify", ([1], 3), _HB, src=([1], 2), ack=False)
    take(hems)
    send_from(GUARD, guard, "write", ([1], 4), limits_cmd([lim(0, True, 5520)]), src=([1], 4))
    assert result(take(guard)[-1]) == D.E_REJECTED
    send_from(GUARD, guard, "notify", ([1], 3), _HB, src=([1], 2), ack=False)
    take(guard)
    # failsafe values before the first limit: taken after the guard's heartbeat
    link_from(GUARD, guard, "bind", ([1], 5), ([1], 5), "DeviceConfiguration")
    kv = dialect({"deviceConfigurationKeyValueData": [
        {"keyId": 0, "value": {"scaledNumber": {"number": 5000, "scale": 0}}}]})
    send_from(GUARD, guard, "write", ([1], 5), '{"deviceConfigurationKeyValueListData":%s}' % kv, src=([1], 5))
    assert result(take(guard)[-1]) == 0 and app.lpc.failsafe_w == 5000
    send_from(GUARD, guard, "write", ([1], 4), limits_cmd([lim(0, True, 5520)]), src=([1], 4))
    assert result(take(guard)[-1]) == 0 and ch.request_of(SRC_LPC)[1] == 5520
    # a second peer binding LPC's LoadControl may not write it
    link_from(CEM, hems, "bind", ([1], 4), ([1], 7), "LoadControl")
    send_from(CEM, hems, "write", ([1], 4), limits_cmd([lim(0, True, 9000)]))
    assert result(take(hems)[-1]) == D.E_REJECTED and ch.request_of(SRC_LPC)[1] == 5520


def case_opev_falls_back_when_its_writer_falls_silent_or_leaves():
    app, ch, hems, guard = two_peers(plugged=True)
    clock = app.clock
    link_from(CEM, hems, "sub", (EV, 7), ([1], 7), "LoadControl")
    link_from(CEM, hems, "bind", (EV, 7), ([1], 7), "LoadControl")
    send_from(CEM, hems, "notify", ([1], 3), _HB, src=([1], 2), ack=False)
    send_from(CEM, hems, "write", (EV, 7), limits_cmd([lim(p, True, 10) for p in range(3)]))
    send_from(CEM, hems, "write", (EV, 7), limits_cmd([lim(3 + p, True, 8) for p in range(3)]))
    take(hems)
    ch.end_failsafe(SRC_LPC, clock.t)  # LPC's init hold out of the way
    assert ch.effective()[0] == (8, 8, 8) and ch.effective()[1] == SRC_OSCEV
    clock.t += 3900
    app.tick(clock.t)
    assert not hems.silent and ch.effective()[1] == SRC_OSCEV
    clock.t += 200  # 4.1 s after the heartbeat (PT4S)
    app.tick(clock.t)
    assert hems.silent
    eff, src, _ = ch.effective()
    assert eff == (6, 6, 6) and src == 6 and ch.request_of(SRC_OSCEV) is None
    assert app.limit_text() == "limit 6A opev fallback"
    st = read(guard, ([1], 2), "deviceDiagnosisStateData")["deviceDiagnosisStateData"]
    assert st["vendorStateCode"] == "limit 6A opev fallback"
    n = [d for d in take(hems) if fname(d) == "loadControlLimitListData"]
    got = {e["limitId"]: e for e in items(cmdof(n[-1])["loadControlLimitListData"], "loadControlLimitData")}
    assert got[0]["value"] == {"number": 6, "scale": 0} and got[3]["isLimitActive"] is False
    # back: heartbeat and a new write restore its limits
    send_from(CEM, hems, "notify", ([1], 3), _HB, src=([1], 2), ack=False)
    send_from(CEM, hems, "write", (EV, 7), limits_cmd([lim(p, True, 9) for p in range(3)]))
    assert result(take(hems)[-1]) == 0 and not hems.silent
    assert ch.effective()[0] == (9, 9, 9) and ch.effective()[1] == SRC_OPEV
    # the connection goes: at once
    app.sessions.remove(hems)
    app.peer_lost(hems, clock.t)
    assert ch.effective()[0] == (6, 6, 6) and ch.effective()[1] == 6
    # the guard's heartbeat never supervised OPEV: it did not write it
    assert app.ev.opev.owner is None


def case_measurement_notify_whole_for_a_new_subscriber_in_place_of_one_that_left():
    # one subscriber leaves and another session subscribes before the next notify: the count of
    # subscribers is the same, but the newcomer has not seen the list: the next notify is whole
    app, ch, hems, guard = two_peers(plugged=True)
    clock = app.clock
    link_from(CEM, hems, "sub", (EV, 6), ([1], 7), "Measurement")

    def second(s, **changes):
        ch.update(**changes)
        clock.t += 1000
        app.tick(clock.t)
        return _meas_notifies(s)

    n = second(hems, i1=10.5, i2=10.5, i3=10.5, u1=230.0, u2=230.0, u3=230.0, power=7245, total_wh=5000,
               session_wh=0)
    assert len(n) == 1 and b'"filter"' not in n[0] and n[0].count(b'{"measurementId":') == 7, n
    n = second(hems, i1=11.1)
    assert len(n) == 1 and b'"filter"' in n[0], n  # only what moved
    # the HEMS goes, the guard subscribes: still one subscriber
    app.sessions.remove(hems)
    app.peer_lost(hems, clock.t)
    link_from(GUARD, guard, "sub", (EV, 6), ([1], 7), "Measurement")
    assert app.subscribers(tuple(EV), 6) == 1
    n = second(guard, i1=11.7)
    assert len(n) == 1, n
    assert b'"filter"' not in n[0] and n[0].count(b'{"measurementId":') == 7, n[0]
