# The SPINE session (lib/spine/session.py) fed datagrams as SHIP delivers them; its answers
# rendered with the eejson writer and read back. Runs under CPython and MicroPython.
from eejson.dialect import build
from eejson.writer import Writer
from spine import datagram as D
from spine import nodemgmt as NM
from usecases.station import SpineApp
from spine.device import OP_READ, OP_WRITE_PARTIAL, Entity, Feature, Function
from spine.session import Session
from support.paths import CAPTURES

GW = "d:_n:Test_GW-0001"
CEM = "d:_n:Demo_CEMPeer-cem-0001"


class App(SpineApp):
    # the base device plus one writable server feature, to exercise the write path
    def __init__(self):
        super().__init__(GW, {"brand": "Test", "model": "GW", "serial": "0001"})
        self.value = 7
        self.written = []

        def emit(w):
            w.obj_begin()
            w.member("testValue")
            w.integer(self.value)
            w.obj_end()

        def write(session, inc):
            v = inc.data.result.get("testValue") if isinstance(inc.data.result, dict) else None
            if not isinstance(v, int) or v < 0:
                return D.E_REJECTED, "value out of range"
            self.value = v
            self.written.append(v)
            return D.E_OK, None

        fn = Function("testData", OP_READ | OP_WRITE_PARTIAL, emit, write)
        self.device.entity((1,)).features.append(Feature(9, "Test", "server", (fn,)))


def datagram(src, dst, counter, classifier, cmd, ack=False, ref=None):
    # a datagram in the wire dialect; src/dst: (device, entity list, feature)
    def addr(a):
        parts = []
        if a[0] is not None:
            parts.append('{"device":"%s"}' % a[0])
        parts.append('{"entity":[%s]}' % ",".join(str(e) for e in a[1]))
        parts.append('{"feature":%d}' % a[2])
        return "[" + ",".join(parts) + "]"

    h = ('{"specificationVersion":"1.3.0"},{"addressSource":%s},{"addressDestination":%s},{"msgCounter":%d}'
         % (addr(src), addr(dst), counter))
    if ref is not None:
        h += ',{"msgCounterReference":%d}' % ref
    h += ',{"cmdClassifier":"%s"}' % classifier
    if ack:
        h += ',{"ackRequest":true}'
    return ('{"datagram":[{"header":[%s]},{"payload":[{"cmd":[%s]}]}]}' % (h, cmd)).encode()


def feed(session, data, chunk=5):
    session.spine_begin()
    buf = bytearray(data)
    for i in range(0, len(buf), chunk):
        session.spine_data(buf, i, min(chunk, len(buf) - i))
    session.spine_end()


def take(session):
    """The queued answers as plain dicts (the datagram value), emptying the queue."""
    w = Writer(64)
    out = []
    for o in session.out:
        parts = bytearray()
        n = w.measure(o.emit)
        w.stream(o.emit, lambda mv: parts.extend(mv))
        assert n == len(parts)
        out.append(build(bytes(parts))["datagram"])
    session.out = []
    return out


def new():
    app = App()
    return app, Session(app)


def result_of(d):
    return d["payload"]["cmd"][0]["resultData"]


CEM_NM = (CEM, [0], 0)
GW_NM = (GW, [0], 0)


def case_detailed_discovery_read_answered():
    app, s = new()
    feed(s, datagram(CEM_NM, (None, [0], 0), 1, "read", '[{"nodeManagementDetailedDiscoveryData":[]}]'))
    (r,) = take(s)
    h = r["header"]
    assert h["cmdClassifier"] == "reply" and h["msgCounterReference"] == 1
    assert h["addressSource"] == {"device": GW, "entity": [0], "feature": 0}
    assert h["addressDestination"] == {"device": CEM, "entity": [0], "feature": 0}
    dd = r["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]
    types = [e["description"]["entityType"] for e in dd["entityInformation"]]
    assert types == ["DeviceInformation", "EVSE"]
    feats = [(f["description"]["featureType"], f["description"]["role"]) for f in dd["featureInformation"]]
    assert ("NodeManagement", "special") in feats and ("DeviceDiagnosis", "client") in feats


def case_every_read_answered():
    app, s = new()
    for name in ("nodeManagementUseCaseData", "nodeManagementSubscriptionData", "nodeManagementBindingData",
                 "nodeManagementDestinationListData"):
        feed(s, datagram(CEM_NM, GW_NM, 2, "read", '[{"%s":[]}]' % name))
        (r,) = take(s)
        assert r["header"]["cmdClassifier"] == "reply" and name in r["payload"]["cmd"][0], r
    feed(s, datagram((CEM, [1], 1), (GW, [1], 1), 3, "read", '[{"deviceClassificationManufacturerData":[]}]'))
    (r,) = take(s)
    assert r["payload"]["cmd"][0]["deviceClassificationManufacturerData"]["brandName"] == "Test"


def case_unknown_function_feature_and_nm_address():
    app, s = new()
    feed(s, datagram((CEM, [1], 1), (GW, [1], 1), 4, "read", '[{"loadControlLimitConstraintsListData":[]}]'))
    assert result_of(take(s)[0])["errorNumber"] == 6
    feed(s, datagram((CEM, [1], 1), (GW, [1], 77), 5, "read", '[{"deviceDiagnosisStateData":[]}]'))
    assert result_of(take(s)[0])["errorNumber"] == 4
    feed(s, datagram(CEM_NM, (GW, [5], 0), 6, "read", '[{"nodeManagementDetailedDiscoveryData":[]}]'))
    assert result_of(take(s)[0])["errorNumber"] == 4
    feed(s, datagram(CEM_NM, GW_NM, 7, "read", '[{"nodeManagementFooData":[]}]'))
    assert result_of(take(s)[0])["errorNumber"] == 6


def _sub(s, counter, client, server, ftype, binding=False):
    kind = "binding" if binding else "subscription"
    call = "nodeManagementBindingRequestCall" if binding else "nodeManagementSubscriptionRequestCall"
    body = ('[{"%s":[{"%sRequest":['
            '{"clientAddress":[{"device":"%s"},{"entity":[%s]},{"feature":%d}]},'
            '{"serverAddress":[{"device":"%s"},{"entity":[%s]},{"feature":%d}]},'
            '{"serverFeatureType":"%s"}]}]}]') % (
        call, kind, CEM, ",".join(map(str, client[0])), client[1], GW, ",".join(map(str, server[0])), server[1], ftype)
    feed(s, datagram(CEM_NM, GW_NM, counter, "call", body, ack=True))
    return result_of(take(s)[0])


def case_subscription_duplicate_and_delete():
    app, s = new()
    assert _sub(s, 10, ([1], 1), ([1], 2), "DeviceDiagnosis")["errorNumber"] == 0
    r = _sub(s, 11, ([1], 1), ([1], 2), "DeviceDiagnosis")
    # the installed base's answer (capture 13)
    assert r == {"errorNumber": 1, "description": "requested subscription is already present"}
    assert _sub(s, 12, ([1], 1), ([1], 99), "DeviceDiagnosis")["errorNumber"] == 1
    assert _sub(s, 13, ([1], 1), ([1], 2), "LoadControl")["errorNumber"] == 1
    feed(s, datagram(CEM_NM, GW_NM, 14, "read", '[{"nodeManagementSubscriptionData":[]}]'))
    entries = take(s)[0]["payload"]["cmd"][0]["nodeManagementSubscriptionData"]["subscriptionEntry"]
    assert len(entries) == 1 and entries[0]["serverAddress"]["feature"] == 2
    dele = ('[{"nodeManagementSubscriptionDeleteCall":[{"subscriptionDelete":['
            '{"clientAddress":[{"device":"%s"},{"entity":[1]},{"feature":1}]},'
            '{"serverAddress":[{"device":"%s"},{"entity":[1]},{"feature":2}]}]}]}]') % (CEM, GW)
    for c in (15, 16):  # twice: SPINE-TS-SUBS-02
        feed(s, datagram(CEM_NM, GW_NM, c, "call", dele, ack=True))
        assert result_of(take(s)[0])["errorNumber"] == 0
    assert s.subs == []


def case_binding_to_node_management_refused():
    app, s = new()
    assert _sub(s, 20, ([1], 1), ([0], 0), "NodeManagement", binding=True)["errorNumber"] == 1
    # subscribing to NodeManagement is always accepted (SPINE-TS-SUBS-01)
    assert _sub(s, 21, ([0], 0), ([0], 0), "NodeManagement")["errorNumber"] == 0


WRITE = '[{"function":"testData"},{"filter":[[{"cmdControl":[{"partial":[]}]}]]},{"testData":[{"testValue":%d}]}]'


def case_write_needs_binding_then_notifies_and_results():
    app, s = new()
    feed(s, datagram((CEM, [1], 5), (GW, [1], 9), 30, "write", WRITE % 42, ack=True))
    (r,) = take(s)
    assert result_of(r)["errorNumber"] == 9 and app.value == 7
    assert _sub(s, 31, ([1], 5), ([1], 9), "Test", binding=True)["errorNumber"] == 0
    assert _sub(s, 32, ([1], 5), ([1], 9), "Test")["errorNumber"] == 0
    feed(s, datagram((CEM, [1], 5), (GW, [1], 9), 33, "write", WRITE % 42, ack=True))
    notify, result = take(s)
    assert notify["header"]["cmdClassifier"] == "notify"
    assert notify["payload"]["cmd"][0]["testData"] == {"testValue": 42}
    assert result_of(result)["errorNumber"] == 0 and result["header"]["msgCounterReference"] == 33
    assert notify["header"]["msgCounter"] < result["header"]["msgCounter"]
    # a refused write changes nothing and notifies nobody
    feed(s, datagram((CEM, [1], 5), (GW, [1], 9), 34, "write", WRITE % -1, ack=True))
    (r,) = take(s)
    assert result_of(r)["errorNumber"] == 7 and app.value == 42
    # another client feature of the same device holds no binding
    feed(s, datagram((CEM, [1], 6), (GW, [1], 9), 35, "write", WRITE % 1, ack=True))
    assert result_of(take(s)[0])["errorNumber"] == 9


def case_write_to_read_only_function():
    app, s = new()
    assert _sub(s, 40, ([1], 5), ([1], 2), "DeviceDiagnosis", binding=True)["errorNumber"] == 0
    feed(s, datagram((CEM, [1], 5), (GW, [1], 2), 41, "write",
                     '[{"deviceDiagnosisStateData":[{"operatingState":"failure"}]}]', ack=True))
    assert result_of(take(s)[0])["errorNumber"] == 7


def case_malformed_datagrams_answered_or_dropped():
    app, s = new()
    # header readable, payload broken: error result
    feed(s, datagram((CEM, [1], 1), (GW, [1], 1), 50, "read", '[{"deviceClassificationManufacturerData":[]}]')[:-12])
    (r,) = take(s)
    assert result_of(r)["errorNumber"] == 1 and r["header"]["msgCounterReference"] == 50
    # no usable header: dropped
    for bad in (b"{}", b"[", b'{"datagram":[{"payload":[{"cmd":[[{"x":[]}]]}]}]}', b"\xff\xfe",
                b'{"datagram":[{"header":[{"msgCounter":-3}]}]}'):
        feed(s, bad)
        assert take(s) == [], bad
    # the session carries on
    feed(s, datagram(CEM_NM, GW_NM, 51, "read", '[{"nodeManagementUseCaseData":[]}]'))
    assert take(s)[0]["header"]["cmdClassifier"] == "reply"


def case_notify_with_ack_gets_result_and_results_are_never_answered():
    app, s = new()
    hb = '[{"deviceDiagnosisHeartbeatData":[{"heartbeatCounter":1},{"heartbeatTimeout":"PT4S"}]}]'
    feed(s, datagram((CEM, [1], 4), (GW, [1], 3), 60, "notify", hb, ack=True))
    (r,) = take(s)
    assert result_of(r)["errorNumber"] == 0 and r["header"]["msgCounterReference"] == 60
    feed(s, datagram((CEM, [1], 4), (GW, [1], 3), 61, "notify", hb))
    assert take(s) == []
    feed(s, datagram(CEM_NM, GW_NM, 62, "result", '[{"resultData":[{"errorNumber":0}]}]', ack=True, ref=1))
    assert take(s) == []


def case_remote_discovery_summary_and_follow_up():
    app, s = new()
    with open(CAPTURES + "/02_evse_reply_detaileddiscovery.raw.json", "rb") as f:
        data = f.read().strip()
    data = data[data.index(b'"payload":') + 10 : -3].replace(b"d:_n:Demo_ControlBox-123456789", GW.encode())
    feed(s, data, chunk=37)
    r = s.remote
    assert r.device == "d:_n:Demo_EVSE-234567890"
    assert r.entities == {(0,): "DeviceInformation", (1,): "EVSE"}
    assert r.features[((1,), 2)] == ("LoadControl", "server")
    assert [k for k in r.features if r.features[k] == ("DeviceDiagnosis", "server")][0] == ((1,), 4)
    # on learning the peer: subscribe to its NodeManagement, read its use cases
    calls = take(s)
    assert [c["header"]["cmdClassifier"] for c in calls] == ["call", "read"]
    assert "nodeManagementSubscriptionRequestCall" in calls[0]["payload"]["cmd"][0]
    assert calls[0]["header"]["ackRequest"] is True


def case_ev_plug_in_and_out_notifies_in_order():
    app, s = new()
    assert _sub(s, 70, ([0], 0), ([0], 0), "NodeManagement")["errorNumber"] == 0
    assert _sub(s, 71, ([1], 5), ([1], 9), "Test", binding=True)["errorNumber"] == 0
    diag = Feature(1, "DeviceDiagnosis", "server", (Function("deviceDiagnosisStateData", OP_READ),))
    ev = Entity((1, 1), "EV", [diag])
    app.device.add(ev)
    s.entity_changed(ev, True)
    dd, ucd = take(s)
    assert dd["payload"]["cmd"][0]["function"] == "nodeManagementDetailedDiscoveryData"
    ent = dd["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]["entityInformation"]
    assert ent == [{"description": {"entityAddress": {"device": GW, "entity": [1, 1]}, "entityType": "EV",
                                    "lastStateChange": "added"}}]
    assert "nodeManagementUseCaseData" in ucd["payload"]["cmd"][0]
    assert _sub(s, 72, ([1], 5), ([1, 1], 1), "DeviceDiagnosis")["errorNumber"] == 0
    app.device.remove((1, 1))
    s.entity_changed(ev, False)
    ucd, dd = take(s)
    assert "nodeManagementUseCaseData" in ucd["payload"]["cmd"][0]
    ddv = dd["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"]
    assert ddv["entityInformation"][0]["description"]["lastStateChange"] == "removed"
    assert "featureInformation" not in ddv
    # links into the removed entity are gone, others stay
    assert all(x[2].entity != (1, 1) for x in s.subs) and len(s.binds) == 1


def case_heartbeat_notified_on_period_only_with_synced_clock():
    app, s = new()
    app.sessions.append(s)
    assert _sub(s, 80, ([1], 1), ([1], 2), "DeviceDiagnosis")["errorNumber"] == 0
    t0 = app._hb_at
    app.clock_synced = lambda: False
    app.tick(t0 + 2000)
    assert take(s) == [] and app.heartbeat_counter == 0  # held: a 1970/2000 clock would be rejected
    app.clock_synced = lambda: True
    app.tick(t0 + 3000)
    assert take(s) == []  # not yet a period since the last attempt
    app.tick(t0 + 4000)
    (n,) = take(s)
    hb = n["payload"]["cmd"][0]["deviceDiagnosisHeartbeatData"]
    assert n["header"]["cmdClassifier"] == "notify"
    assert n["header"]["addressSource"] == {"device": GW, "entity": [1], "feature": 2}
    assert hb["heartbeatCounter"] == 1 and hb["heartbeatTimeout"] == "PT4S"
    assert len(hb["timestamp"]) == 20 and hb["timestamp"].endswith("Z")
    app.tick(t0 + 6000)
    assert take(s)[0]["payload"]["cmd"][0]["deviceDiagnosisHeartbeatData"]["heartbeatCounter"] == 2
    # a read answers the current heartbeat data
    feed(s, datagram((CEM, [1], 1), (GW, [1], 2), 81, "read", '[{"deviceDiagnosisHeartbeatData":[]}]'))
    assert take(s)[0]["payload"]["cmd"][0]["deviceDiagnosisHeartbeatData"]["heartbeatCounter"] == 2


def case_operating_state_change_notified():
    app, s = new()
    app.sessions.append(s)
    assert _sub(s, 90, ([1], 1), ([1], 2), "DeviceDiagnosis")["errorNumber"] == 0
    app.set_operating_state("failure", "controller link lost")
    (n,) = take(s)
    st = n["payload"]["cmd"][0]["deviceDiagnosisStateData"]
    assert st == {"operatingState": "failure", "lastErrorCode": "controller link lost"}
    app.set_operating_state("failure", "controller link lost")
    assert take(s) == []  # no change, no notify
    app.set_operating_state("normalOperation")
    assert take(s)[0]["payload"]["cmd"][0]["deviceDiagnosisStateData"] == {"operatingState": "normalOperation"}


class ApprovalApp(App):
    # the write handler asks the application, which answers later
    def __init__(self):
        super().__init__()
        self.asked = []
        fn = self.device.feature((1,), 9).functions[0]
        app = self

        def write(session, inc):
            app.asked.append((session.defer(1000, timeout_ms=5000), inc.data.result["testValue"]))
            return None

        fn.write = write


def _approval_session():
    app = ApprovalApp()
    s = Session(app)
    app.sessions.append(s)
    assert _sub(s, 100, ([1], 5), ([1], 9), "Test", binding=True)["errorNumber"] == 0
    assert _sub(s, 101, ([1], 5), ([1], 9), "Test")["errorNumber"] == 0
    feed(s, datagram((CEM, [1], 5), (GW, [1], 9), 102, "write", WRITE % 21, ack=True))
    assert take(s) == []  # nothing until the application decides
    return app, s


def case_deferred_write_approved():
    app, s = _approval_session()
    handle, v = app.asked[0]
    app.value = v  # the application applies it, then settles
    assert s.settle(handle, 0)
    notify, result = take(s)
    assert notify["payload"]["cmd"][0]["testData"] == {"testValue": 21}
    assert result_of(result)["errorNumber"] == 0 and result["header"]["msgCounterReference"] == 102
    assert not s.settle(handle, 0)  # once only


def case_deferred_write_denied():
    app, s = _approval_session()
    s.settle(app.asked[0][0], 7, "denied by the user")
    (r,) = take(s)
    assert result_of(r) == {"errorNumber": 7, "description": "denied by the user"} and app.value == 7


def case_deferred_write_times_out():
    app, s = _approval_session()
    app.tick(1000 + 4999)
    assert take(s) == []
    app.tick(1000 + 5000)
    (r,) = take(s)
    assert result_of(r) == {"errorNumber": 1, "description": "write not approved in time by application"}
    assert r["header"]["msgCounterReference"] == 102
    assert not s.settle(app.asked[0][0], 0)  # too late: already refused


def case_possible_operations_as_the_dialect_writes_them():
    # emit_ops writes a constant per flag combination (read 1, read partial 2, write 4, write
    # partial 8); each must be what the writer makes of {"read": {"partial": {}}, "write": {}}
    w = Writer(128)
    for ops in range(16):
        def expect(w):
            w.obj_begin()
            for name, plain, partial in (("read", 1, 2), ("write", 4, 8)):
                if ops & (plain | partial):
                    w.member(name)
                    w.obj_begin()
                    if ops & partial:
                        w.member("partial")
                        w.obj_begin()
                        w.obj_end()
                    w.obj_end()
            w.obj_end()

        n = w.render(expect)
        want = bytes(w.buf[:n])
        # inside a function entry, as discovery writes it: the writer's state around it matters
        n = w.render(lambda w: (w.obj_begin(), w.member("possibleOperations"), NM.emit_ops(w, ops), w.obj_end()))
        got = bytes(w.buf[:n])
        n = w.render(lambda w: (w.obj_begin(), w.member("possibleOperations"), expect(w), w.obj_end()))
        assert got == bytes(w.buf[:n]), (ops, got)
        assert want.startswith(b"[") and want.endswith(b"]"), want
