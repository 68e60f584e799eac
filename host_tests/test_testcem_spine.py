"""The test CEM's SPINE layer (tools/testcem/spine.py) against the wire captures and a small fake SPINE
device: a ShipServer on 127.0.0.1 whose peer answers from canned capture replies (header rewritten to
reference the request). Every wait is bounded; nothing leaves 127.0.0.1.
"""

import asyncio
import contextlib
import glob
import itertools
import json
import os
import subprocess
import sys
import time

import pytest

from testcem import dialect
from testcem.identity import Identity
from testcem.ship import ShipPeer
from testcem.shipmsg import ShipError, data_message
from testcem.shipserver import ShipServer
from testcem.spine import SpineCem
from testcem.spinemodel import parse_detailed_discovery, parse_use_cases
from testcem.spinemsg import (CEM_USE_CASES, SpineError, SpineResultError, build_cmd, build_datagram,
                              elements_name, feature_address, format_address, parse_datagram, parse_feature_spec,
                              result_cmd, selectors_name)

from support.bounded import runner
from support.paths import CAPTURES, ROOT

HOST = "127.0.0.1"

EVSE = "d:_n:Demo_EVSE-234567890"
CONTROLBOX = "d:_n:Demo_ControlBox-123456789"
EVSESIM = "d:_n:Demo_EVSESim-sim-0001"
CEMPEER = "d:_n:Demo_CEMPeer-cem-0001"


def cap_text(name):
    with open(os.path.join(CAPTURES, name), encoding="utf-8") as f:
        return f.read().rstrip("\n")


def cap(name):
    return parse_datagram(cap_text(name))


run = runner(15.0)


def renamed(dg, mapping, counter=None, **header):
    """Plain body of a datagram with device names replaced (key order kept) and header fields set."""
    text = json.dumps(dg.body)
    for a, b in mapping.items():
        text = text.replace(json.dumps(a), json.dumps(b))
    body = json.loads(text)
    if counter is not None:
        body["header"]["msgCounter"] = counter
    body["header"].update(header)
    return body


def wire_equal_to_capture(body, name):
    """Our datagram body, framed like ship-go, equals the capture file byte for byte."""
    text = cap_text(name)
    if text.startswith('{"data"'):
        return data_message({"datagram": body}) == b"\x02" + text.encode()
    return dialect.dumps_compact(dialect.message_to_eebus({"datagram": body})) == text


def skeleton(v):
    """Structure of a plain value: keys in order, list element shapes, scalar types."""
    if isinstance(v, dict):
        return {k: skeleton(x) for k, x in v.items()}
    if isinstance(v, list):
        return [skeleton(v[0])] if v else []
    return type(v).__name__


# ------------------------------------------------------------------------------------------------
# the fake SPINE device (gateway stand-in) on the server side of a SHIP connection

class FakeDevice:
    """Answers the CEM from captures: reads -> canned reply (header rewritten) or result 6; calls ->
    result 0; writes -> optional canned notify, then result. Records everything it receives."""

    def __init__(self, peer, *, discovery="02_evse_reply_detaileddiscovery.raw.json",
                 usecases="04_evse_reply_usecasedata.raw.json", reads=(), write_notify=None, write_error=0):
        self.peer = peer
        self.canned = {}
        for name in (discovery, usecases) + tuple(reads):
            dg = cap(name)
            self.canned[dg.function] = dg
        self.device = self.canned["nodeManagementDetailedDiscoveryData"].source["device"]
        self.write_notify = write_notify
        self.write_error = write_error
        self.silent = set()
        self.received = []
        self.answers = {}
        self.cem_device = None
        self.counter = itertools.count(1)
        self._event = asyncio.Event()
        self.task = asyncio.ensure_future(self._loop())

    def requests(self):
        """Datagrams the CEM sent on its own (not answers to us)."""
        return [d for d in self.received if d.classifier in ("read", "write", "call", "notify")]

    async def _loop(self):
        while True:
            try:
                m = await self.peer.recv_data(30)
            except ShipError as e:
                if e.timeout:
                    continue
                return
            dg = parse_datagram(m)
            self.received.append(dg)
            if self.cem_device is None:
                self.cem_device = dg.source.get("device")
            await self._handle(dg)
            self._event.set()

    async def _handle(self, dg):
        c = dg.classifier
        if c == "read":
            if dg.function in self.silent:
                return
            canned = self.canned.get(dg.function)
            if canned is not None:
                await self.answer(dg, "reply", canned.cmd, source=canned.source)
            else:
                await self.answer(dg, "result", result_cmd(6, "function not supported"))
        elif c == "call":
            await self.answer(dg, "result", result_cmd(0))
        elif c == "write":
            if self.write_notify and self.write_error == 0:
                await self.send_capture(self.write_notify, destination=dg.source)
            await self.answer(dg, "result", result_cmd(self.write_error))
        elif c in ("reply", "result"):
            self.answers[dg.reference] = dg

    async def send(self, source, destination, classifier, cmd, reference=None, ack_request=None):
        n = next(self.counter)
        await self.peer.send_datagram(build_datagram(source, destination, classifier, cmd, n,
                                                     reference=reference, ack_request=ack_request))
        return n

    async def answer(self, req, classifier, cmd, source=None):
        if source is None:
            ent, f = req.destination_key
            source = feature_address(self.device, ent, f)
        return await self.send(source, req.source, classifier, cmd, reference=req.msg_counter)

    async def send_capture(self, name, destination=None, **header):
        """Send a captured datagram: destination (default the CEM's NodeManagement) and counter rewritten."""
        body = cap(name).body
        body = json.loads(json.dumps(body))
        h = body["header"]
        h["addressDestination"] = destination or feature_address(self.cem_device, (0,), 0)
        h["msgCounter"] = next(self.counter)
        h.update(header)
        await self.peer.send_datagram({"datagram": body})
        return h["msgCounter"]

    async def request(self, classifier, destination, cmd, *, source=None, ack_request=None, timeout=2.0):
        """Send a request to the CEM and wait for its answer (reply/result) by msgCounterReference."""
        source = source or feature_address(self.device, (0,), 0)
        n = await self.send(source, destination, classifier, cmd, ack_request=ack_request)
        return await self.wait_answer(n, timeout)

    async def wait_answer(self, n, timeout=2.0):
        deadline = time.monotonic() + timeout
        while n not in self.answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer to #%d" % n)
            self._event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)
        return self.answers[n]

    async def wait_received(self, pred, timeout=2.0):
        deadline = time.monotonic() + timeout
        while True:
            for d in self.received:
                if pred(d):
                    return d
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("nothing matching arrived; got:\n"
                                     + "\n".join(d.describe() for d in self.received))
            self._event.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)


@pytest.fixture(scope="module")
def ids():
    return {"gw": Identity.generate(common_name="gw"), "cem": Identity.generate(common_name="cem")}


@contextlib.asynccontextmanager
async def connected(ids, cem_kw=None, **fake_kw):
    async with ShipServer(ids["gw"], ship_id="Demo-EVSE-234567890") as srv:
        cli = ShipPeer(ids["cem"], ship_id="TestCEM-1", timeout=3.0)
        await cli.dial(HOST, srv.port, expected_ski=ids["gw"].ski)
        sp = await srv.accept(3)
        fake = FakeDevice(sp, **fake_kw)
        cem = SpineCem(cli, timeout=3.0, **(cem_kw or {}))
        try:
            yield cem, fake
        finally:
            await cem.close()
            fake.task.cancel()


# ------------------------------------------------------------------------------------------------
# building and parsing (no network; independence: test_testcem.py)

def test_build_matches_captures_byte_for_byte():
    # the first discovery read: destination without device (spine-go expected output)
    nm = feature_address("TestDeviceAddress", (0,), 0)
    body = build_datagram(nm, feature_address(None, (0,), 0), "read",
                          build_cmd("nodeManagementDetailedDiscoveryData"), 1)["datagram"]
    assert wire_equal_to_capture(body, "spine-go_spine_nm_detaileddiscoverydata_send_read_expected.json")
    # the energy guard's partial LPC write (capture 10)
    limit = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True, "timePeriod": {"endTime": "PT1H2M3S"},
                                       "value": {"number": 100, "scale": 0}}]}
    body = build_datagram(feature_address(CONTROLBOX, (1,), 2), feature_address(EVSE, (1,), 2), "write",
                          build_cmd("loadControlLimitListData", limit, partial=True), 22, ack_request=True)
    assert wire_equal_to_capture(body["datagram"], "10_cb_write_loadcontrol_limitlist.raw.json")
    # results with and without description (captures 12, 13)
    body = build_datagram(feature_address(EVSE, (1,), 2), feature_address(CONTROLBOX, (1,), 2), "result",
                          result_cmd(0), 25, reference=22)
    assert wire_equal_to_capture(body["datagram"], "12_evse_result_for_write.raw.json")
    body = build_datagram(feature_address(EVSE, (0,), 0), feature_address(CONTROLBOX, (0,), 0), "result",
                          result_cmd(1, "requested subscription is already present"), 10, reference=6)
    assert wire_equal_to_capture(body["datagram"], "13_evse_result_error.raw.json")
    # optional header fields go last, in schema order
    h = build_datagram(nm, nm, "notify", {"x": {}}, 5, timestamp="2026-01-01T00:00:00Z")["datagram"]["header"]
    assert list(h) == ["specificationVersion", "addressSource", "addressDestination", "msgCounter",
                       "cmdClassifier", "timestamp"]
    with pytest.raises(ValueError):
        build_datagram(nm, nm, "query", {}, 1)


def test_filters_delete_partial_and_partial_read():
    # eebus-go: remove a limit's duration = delete filter (selectors + elements), then the partial data
    cmd = build_cmd("loadControlLimitListData", {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True}]},
                    partial=True, delete={"selectors": {"limitId": 0}, "elements": {"timePeriod": {}}})
    assert cmd == {
        "function": "loadControlLimitListData",
        "filter": [{"cmdControl": {"delete": {}}, "loadControlLimitListDataSelectors": {"limitId": 0},
                    "loadControlLimitDataElements": {"timePeriod": {}}},
                   {"cmdControl": {"partial": {}}}],
        "loadControlLimitListData": {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True}]}}
    wire = dialect.dumps_compact(dialect.to_eebus({"cmd": [cmd]}))
    assert wire.startswith('[{"cmd":[[{"function":"loadControlLimitListData"},'
                           '{"filter":[[{"cmdControl":[{"delete":[]}]},'
                           '{"loadControlLimitListDataSelectors":[{"limitId":0}]},'
                           '{"loadControlLimitDataElements":[{"timePeriod":[]}]}],[{"cmdControl":[{"partial":[]}]}]]}')
    # partial read: function + filter, empty data element
    cmd = build_cmd("measurementListData", selectors={"measurementId": 3})
    assert cmd == {"function": "measurementListData",
                   "filter": [{"cmdControl": {"partial": {}}, "measurementListDataSelectors": {"measurementId": 3}}],
                   "measurementListData": {}}
    # full write: neither function nor filter
    assert build_cmd("loadControlLimitListData", {"loadControlLimitData": []}) == {
        "loadControlLimitListData": {"loadControlLimitData": []}}
    # explicit names are kept
    cmd = build_cmd("x", selectors={"otherSelectors": {"a": 1}})
    assert cmd["filter"][0]["otherSelectors"] == {"a": 1}
    assert selectors_name("deviceConfigurationKeyValueListData") == "deviceConfigurationKeyValueListDataSelectors"
    assert elements_name("deviceConfigurationKeyValueListData") == "deviceConfigurationKeyValueDataElements"
    assert elements_name("deviceDiagnosisHeartbeatData") == "deviceDiagnosisHeartbeatDataElements"


def test_feature_specs():
    assert parse_feature_spec("1:4") == ((1,), 4)
    assert parse_feature_spec("1.1:4") == ((1, 1), 4)
    assert parse_feature_spec("0:0") == ((0,), 0)
    assert parse_feature_spec("1.1:LoadControl") == ((1, 1), "LoadControl")
    assert parse_feature_spec("LoadControl") == (None, "LoadControl")
    for bad in ("1:", "x:4", "1:4:5", "1-1:4", ""):
        with pytest.raises(ValueError):
            parse_feature_spec(bad)
    assert format_address((1, 1), 4) == "1.1:4" and format_address((0,)) == "0"


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CAPTURES, "*.json"))), ids=os.path.basename)
def test_every_capture_parses_and_describes(path):
    with open(path, encoding="utf-8") as f:
        dg = parse_datagram(f.read())
    assert dg.classifier in ("read", "reply", "notify", "write", "call", "result")
    assert dg.function and dg.function in dg.describe() and dg.classifier in dg.describe()
    assert "#%d" % dg.msg_counter in dg.describe()
    # the plain body goes back to the same wire text
    assert wire_equal_to_capture(dg.body, os.path.basename(path))


def test_describe_lines():
    d = cap("10_cb_write_loadcontrol_limitlist.raw.json")
    d.direction = "send"
    assert d.describe() == "-> write  1:2 -> 1:2 loadControlLimitListData[partial] #22 ack"
    d = cap("13_evse_result_error.raw.json")
    d.direction = "recv"
    assert d.describe() == "<- result 0:0 -> 0:0 resultData(1 'requested subscription is already present') #10 ref #6"
    assert d.result == (1, "requested subscription is already present") and not d.result.ok
    d = cap("01_read_detaileddiscovery.raw.json")
    assert d.describe().endswith("read   0:0 -> 0:0 nodeManagementDetailedDiscoveryData #1")
    assert d.data == {} and d.destination == {"entity": [0], "feature": 0}


def test_parse_discovery_and_use_cases():
    rd = parse_detailed_discovery(cap("02_evse_reply_detaileddiscovery.raw.json").data)
    assert rd.device == EVSE and rd.device_type == "ChargingStation" and rd.spec_versions == ["1.3.0"]
    assert rd.network_feature_set == "smart"
    assert {k: e.type for k, e in rd.entities.items()} == {(0,): "DeviceInformation", (1,): "EVSE"}
    assert {(f.spec, f.type, f.role) for f in rd.features.values()} == {
        ("0:0", "NodeManagement", "special"), ("0:1", "DeviceClassification", "server"),
        ("1:1", "DeviceDiagnosis", "client"), ("1:2", "LoadControl", "server"),
        ("1:3", "DeviceConfiguration", "server"), ("1:4", "DeviceDiagnosis", "server"),
        ("1:5", "ElectricalConnection", "server")}
    lc = rd.server("LoadControl")
    assert lc.address == {"device": EVSE, "entity": [1], "feature": 2}
    assert lc.functions == {"loadControlLimitDescriptionListData": {"read": {}},
                            "loadControlLimitListData": {"read": {}, "write": {"partial": {}}}}
    assert lc.can_write("loadControlLimitListData") and lc.write_partial("loadControlLimitListData")
    assert not lc.can_write("loadControlLimitDescriptionListData")
    assert lc.operations("loadControlLimitListData") == "rw(p)" and lc.description == "LoadControl Server"
    nm = rd.feature("0:0")
    assert len(nm.functions) == 9 and nm.operations("nodeManagementBindingRequestCall") == "-"
    assert rd.feature("1:1").functions == {}
    assert [f.spec for f in rd.find(role="server", entity=(1,))] == ["1:2", "1:3", "1:4", "1:5"]
    assert rd.feature("1:DeviceDiagnosis").spec == "1:4"
    with pytest.raises(LookupError):
        rd.server("Measurement")
    summary = rd.as_dict()
    assert summary["entities"] == [{"entity": [0], "type": "DeviceInformation"}, {"entity": [1], "type": "EVSE"}]
    assert summary["features"][3] == {"address": {"device": EVSE, "entity": [1], "feature": 2}, "type": "LoadControl",
                                      "role": "server", "description": "LoadControl Server",
                                      "functions": lc.functions}
    text = rd.format()
    assert "entity 1 EVSE" in text and "1:2    LoadControl server" in text
    assert "loadControlLimitListData (rw(p))" in text

    # Porsche: addresses without device; full notify with and without the EV
    porsche = cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_reply_full.json")
    rd = parse_detailed_discovery(porsche.data)
    assert rd.device == "d:_i:19667_PorscheEVSE_0011111"
    assert all(f.address["device"] == rd.device for f in rd.features.values())
    full = cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_notify_full.json")
    rd.apply(full.data, partial=full.partial)
    ev_lc = rd.server("LoadControl", entity=(1, 1))
    assert ev_lc.can_write("loadControlLimitListData") and not ev_lc.write_partial("loadControlLimitListData")
    gone = cap("spine-go_spine_wallbox_detaileddiscoverydata_recv_notify_remove_full.json")
    rd.apply(gone.data, partial=gone.partial)
    assert (1, 1) not in rd.entities and not rd.find(entity=(1, 1))

    # partial notifies: EV added / removed (captures 22, 27) on the station of capture 20
    rd = parse_detailed_discovery(cap("20_evsesim_reply_detaileddiscovery_evse_only.raw.json").data)
    added = cap("22_evsesim_notify_detaileddiscovery_ev_added.raw.json")
    assert added.partial
    assert rd.apply(added.data, partial=True) == [("added", (1, 1))]
    assert rd.entities[(1, 1)].type == "EV" and (1,) in rd.entities
    assert [f.type for f in rd.find(entity=(1, 1))] == [
        "DeviceConfiguration", "Identification", "DeviceClassification", "DeviceDiagnosis",
        "ElectricalConnection", "Measurement", "LoadControl"]
    assert rd.apply(cap("27_evsesim_notify_detaileddiscovery_ev_removed.raw.json").data, partial=True) == [
        ("removed", (1, 1))]
    assert (1, 1) not in rd.entities and not rd.find(entity=(1, 1)) and len(rd.find(entity=(1,))) == 2

    ucs = parse_use_cases(cap("21_evsesim_notify_usecasedata_with_ev.raw.json").data)
    assert [(u.entity, u.actor, u.name) for u in ucs][:2] == [
        ((1,), "EVSE", "evseCommissioningAndConfiguration"), ((1, 1), "EV", "evCommissioningAndConfiguration")]
    assert ucs[2].scenarios == [1, 2, 3] and ucs[2].available is True and ucs[2].sub_revision == "release"
    elli = parse_use_cases(cap("spine-go_spine_nm_usecaseinformationlistdata_recv_reply.json").data)
    assert len(elli) == 7 and elli[0].entity is None and elli[0].available is None


# ------------------------------------------------------------------------------------------------
# the CEM against the fake device

def test_startup_order_and_wire_form(ids):
    async def main():
        async with connected(ids) as (cem, fake):
            assert cem.device == "d:_i:TestCEM_%s" % ids["cem"].ski[:8]
            remote = await cem.startup()
            assert remote.device == EVSE and set(remote.entities) == {(0,), (1,)}
            assert remote.server("LoadControl").spec == "1:2"
            assert [(u.actor, u.name, u.scenarios) for u in cem.use_cases] == [
                ("ControllableSystem", "limitationOfPowerConsumption", [1, 2, 3, 4])]
            assert remote.use_cases == cem.use_cases
            reqs = fake.requests()
            assert [(d.classifier, d.function) for d in reqs] == [
                ("read", "nodeManagementDetailedDiscoveryData"), ("call", "nodeManagementSubscriptionRequestCall"),
                ("read", "nodeManagementUseCaseData")]
            assert [d.msg_counter for d in reqs] == [1, 2, 3]
            # first read: destination without device, exactly as spine-go sends it
            assert wire_equal_to_capture(renamed(reqs[0], {cem.device: "TestDeviceAddress"}),
                                         "spine-go_spine_nm_detaileddiscoverydata_send_read_expected.json")
            # the NodeManagement subscription call: capture 03 modulo our device name and counter
            assert wire_equal_to_capture(renamed(reqs[1], {cem.device: CONTROLBOX}, 3),
                                         "03_subscription_request_call.raw.json")
            assert cem.subscriptions == [(feature_address(cem.device, (0,), 0), feature_address(EVSE, (0,), 0),
                                          "NodeManagement")]
            # the use case read goes to the now known device
            assert reqs[2].destination == {"device": EVSE, "entity": [0], "feature": 0}
            lines = cem.describe().splitlines()
            assert len(lines) == 6
            assert lines[0].split(None, 1)[1] == "-> read   0:0 -> 0:0 nodeManagementDetailedDiscoveryData #1"
            assert lines[1].split(None, 1)[1] == "<- reply  0:0 -> 0:0 nodeManagementDetailedDiscoveryData #1 ref #1"
            assert lines[3].split(None, 1)[1] == "<- result 0:0 -> 0:0 resultData(0) #2 ref #2"
            assert cem.problems == [] and cem.errors == []
    run(main())


def test_bind_read_write_notify_like_captures(ids):
    async def main():
        async with connected(ids, reads=("07_evse_reply_loadcontrol_limitlist.raw.json",),
                             write_notify="11_evse_notify_loadcontrol_limitlist.raw.json") as (cem, fake):
            await cem.startup()
            # binding call for the LoadControl: capture 05 modulo device and counter
            r = await cem.bind("1:2")
            assert r.ok and r == (0, None) and cem.is_bound("1:2")
            call = fake.requests()[-1]
            assert wire_equal_to_capture(renamed(call, {cem.device: CONTROLBOX}, 7), "05_binding_request_call.raw.json")
            assert (await cem.ensure_bound("LoadControl")) == (0, "already bound")
            # read -> data of the canned reply (capture 07)
            limits = await cem.read("1:2", "loadControlLimitListData")
            assert limits == cap("07_evse_reply_loadcontrol_limitlist.raw.json").data
            assert fake.requests()[-1].source == feature_address(cem.device, (1,), 2)   # our LoadControl client
            # partial write: capture 10 modulo device and counter; notify (11) then result
            data = {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True,
                                              "timePeriod": {"endTime": "PT1H2M3S"},
                                              "value": {"number": 100, "scale": 0}}]}
            r = await cem.write("LoadControl", "loadControlLimitListData", data)   # partial from discovery
            assert r.ok and r.error_number == 0 and r.description is None
            wr = fake.requests()[-1]
            assert wire_equal_to_capture(renamed(wr, {cem.device: CONTROLBOX}, 22),
                                         "10_cb_write_loadcontrol_limitlist.raw.json")
            n = await cem.next_notify("loadControlLimitListData", timeout=2)
            assert n.source_key == ((1,), 2)
            assert n.data["loadControlLimitData"][0]["value"] == {"number": 100, "scale": 0}
            assert n.destination == feature_address(cem.device, (1,), 2)
            # the notify came before the result on the wire (spine.md 3.2)
            kinds = [d.classifier for d in cem.transcript if d.direction == "recv"][-2:]
            assert kinds == ["notify", "result"]
            # full write and delete+partial write
            await cem.write("1:2", "loadControlLimitListData", data, partial=False)
            assert "filter" not in fake.requests()[-1].cmd and "function" not in fake.requests()[-1].cmd
            await cem.write("1:2", "loadControlLimitListData", {"loadControlLimitData": [{"limitId": 0}]},
                            delete={"selectors": {"limitId": 0}, "elements": {"timePeriod": {}}})
            assert fake.requests()[-1].delete and fake.requests()[-1].partial
            # a refused write returns the error
            fake.write_error = 7
            assert (await cem.write("1:2", "loadControlLimitListData", data)) == (7, None)
            # unknown function -> result 6 as SpineResultError
            with pytest.raises(SpineResultError) as ei:
                await cem.read("1:2", "loadControlLimitConstraintsListData")
            assert ei.value.error_number == 6 and ei.value.description == "function not supported"
            # no answer -> bounded timeout
            fake.silent.add("loadControlLimitDescriptionListData")
            t0 = time.monotonic()
            with pytest.raises(SpineError) as ei:
                await cem.read("1:2", "loadControlLimitDescriptionListData", timeout=0.3)
            assert ei.value.timeout and time.monotonic() - t0 < 1.5
            # unbind / unsubscribe are delete calls
            assert (await cem.unbind("1:2")).ok and not cem.is_bound("1:2")
            assert fake.requests()[-1].data == {"bindingDelete": {
                "clientAddress": feature_address(cem.device, (1,), 2), "serverAddress": feature_address(EVSE, (1,), 2)}}
            assert (await cem.subscribe("1:4")).ok
            sub = fake.requests()[-1].data["subscriptionRequest"]
            assert sub["clientAddress"] == feature_address(cem.device, (1,), 1)
            assert sub["serverFeatureType"] == "DeviceDiagnosis"
            assert (await cem.unsubscribe("1:4")).ok
            assert fake.requests()[-1].function == "nodeManagementSubscriptionDeleteCall"
            assert cem.problems == [] and cem.errors == []
            # an answer to nothing is reported as a problem
            await fake.send(feature_address(EVSE, (1,), 2), feature_address(cem.device, (1,), 2), "result",
                            result_cmd(0), reference=999)
            await fake.request("read", feature_address(cem.device, (0,), 0),
                               build_cmd("nodeManagementUseCaseData"))
            assert any("#999" in p for p in cem.problems)
    run(main())


def test_ev_plug_in_and_opev_write(ids):
    async def main():
        async with connected(ids, discovery="20_evsesim_reply_detaileddiscovery_evse_only.raw.json",
                             usecases="21_evsesim_notify_usecasedata_with_ev.raw.json",
                             write_notify="25_evsesim_notify_loadcontrol_after_write.raw.json") as (cem, fake):
            remote = await cem.startup()
            assert remote.device == EVSESIM and (1, 1) not in remote.entities
            # plug-in: discovery notify (entity added), then the use case notify
            await fake.send_capture("22_evsesim_notify_detaileddiscovery_ev_added.raw.json")
            await fake.send_capture("21_evsesim_notify_usecasedata_with_ev.raw.json")
            n = await cem.next_notify("nodeManagementDetailedDiscoveryData", timeout=2)
            assert n.partial and cem.remote.entities[(1, 1)].type == "EV"
            await cem.next_notify("nodeManagementUseCaseData", timeout=2)
            assert {u.name for u in cem.use_cases if u.actor == "EV"} >= {
                "overloadProtectionByEvChargingCurrentCurtailment", "optimizationOfSelfConsumptionDuringEvCharging"}
            ev_lc = cem.remote.server("LoadControl", entity=(1, 1))
            assert ev_lc.spec == "1.1:7"
            assert (await cem.bind("1.1:LoadControl")).ok
            limits = {"loadControlLimitData": [{"limitId": i, "isLimitActive": True,
                                                "value": {"number": 10, "scale": 0}} for i in range(3)]}
            r = await cem.write("1.1:7", "loadControlLimitListData", limits)
            assert r.ok
            wr = fake.requests()[-1]
            # capture 24 modulo device, counter and our LoadControl client's feature number (7 there, 2 here)
            body = renamed(wr, {cem.device: CEMPEER}, 31)
            assert body["header"]["addressSource"] == {"device": CEMPEER, "entity": [1], "feature": 2}
            body["header"]["addressSource"]["feature"] = 7
            assert wire_equal_to_capture(body, "24_cem_write_opev_loadcontrol_limitlist.raw.json")
            n = await cem.next_notify(source="1.1:7", timeout=2)
            assert n.function == "loadControlLimitListData"
            # plug-out
            await fake.send_capture("27_evsesim_notify_detaileddiscovery_ev_removed.raw.json")
            await cem.next_notify("nodeManagementDetailedDiscoveryData", timeout=2)
            assert (1, 1) not in cem.remote.entities and not cem.remote.find(entity=(1, 1))
            assert cem.errors == []
            with pytest.raises(SpineError) as ei:
                await cem.next_notify("measurementListData", timeout=0.2)
            assert ei.value.timeout
    run(main())


def test_answers_the_gateways_requests(ids):
    async def main():
        async with connected(ids) as (cem, fake):
            me = feature_address(cem.device, (0,), 0)
            # the gateway's first discovery read (destination without device), like capture 01
            rq = cap("01_read_detaileddiscovery.raw.json")
            n = await fake.send(rq.source, rq.destination, "read", rq.cmd)
            ans = await fake.wait_answer(n)
            assert ans.classifier == "reply" and ans.reference == n
            assert ans.source == me and ans.destination == rq.source
            assert list(ans.header) == ["specificationVersion", "addressSource", "addressDestination", "msgCounter",
                                        "msgCounterReference", "cmdClassifier"]
            ours = ans.data
            exp = cap("spine-go_spine_nm_detaileddiscoverydata_send_reply_expected.json").data
            assert list(ours) == list(exp)
            for k in ("specificationVersionList", "deviceInformation"):
                assert skeleton(ours[k]) == skeleton(exp[k])
            assert skeleton(ours["entityInformation"][0]) == skeleton(exp["entityInformation"][0])
            def nm_skeleton(d):
                sk = skeleton(d["featureInformation"][0])
                sk["description"]["supportedFunction"] = [skeleton(f) for f in d["featureInformation"][0][
                    "description"]["supportedFunction"] if f["function"] == "nodeManagementDetailedDiscoveryData"]
                return sk
            assert nm_skeleton(ours) == nm_skeleton(exp)
            assert ours["deviceInformation"]["description"] == {
                "deviceAddress": {"device": cem.device}, "deviceType": "EnergyManagementSystem",
                "networkFeatureSet": "smart"}
            # the NodeManagement announces the same functions and operations as spine-go's
            def nm_functions(d):
                fi = d["featureInformation"][0]["description"]
                return {f["function"]: dialect.dumps_compact(dialect.to_eebus(f["possibleOperations"]))
                        for f in fi["supportedFunction"]}
            assert nm_functions(ours) == nm_functions(exp)
            # parsed back by our own discovery parser: entity [1] CEM with the client features the use cases need
            rd = parse_detailed_discovery(ours)
            assert rd.entities[(1,)].type == "CEM"
            clients = {f.type for f in rd.find(role="client", entity=(1,))}
            assert clients >= {"LoadControl", "Measurement", "ElectricalConnection", "DeviceConfiguration",
                               "DeviceDiagnosis", "DeviceClassification", "Identification"}
            assert rd.server("DeviceDiagnosis", entity=(1,)).functions == {
                "deviceDiagnosisStateData": {"read": {}}, "deviceDiagnosisHeartbeatData": {"read": {}}}
            assert all(f.functions == {} for f in rd.find(role="client"))
            # wire: client features carry a description and no supportedFunction, as in capture 02
            wire = ans.to_wire()
            assert ('{"featureType":"LoadControl"},{"role":"client"},{"description":"LoadControl Client"}]}]'
                    in wire)

            # use case data: CEM actor use cases + LPC energy guard on entity [1]
            ans = await fake.request("read", me, build_cmd("nodeManagementUseCaseData"))
            ucs = parse_use_cases(ans.data)
            assert [(u.actor, u.name, u.version, u.scenarios) for u in ucs] == [
                (a, n_, v, s) for a, n_, v, s in CEM_USE_CASES]
            assert all(u.entity == (1,) and u.available is True and u.sub_revision == "release" for u in ucs)
            assert '{"useCaseInformation":[[{"address":[{"device":"%s"},{"entity":[1]}]},{"actor":"CEM"}' % cem.device \
                in ans.to_wire()

            # ackRequest on a read is not evaluated: only the reply comes
            ack = cap("spine-go_spine_nm_detaileddiscoverydata_recv_read_ack.json")
            n = await fake.send(feature_address(EVSE, (0,), 0), me, "read", ack.cmd, ack_request=True)
            assert (await fake.wait_answer(n)).classifier == "reply"

            # unknown function -> 6, unknown feature -> 4, write to us -> error result
            ans = await fake.request("read", me, build_cmd("nodeManagementFooData"))
            assert ans.result.error_number == 6
            ans = await fake.request("read", feature_address(cem.device, (1,), 42), build_cmd("measurementListData"))
            assert ans.result.error_number == 4
            ans = await fake.request("read", feature_address(cem.device, (1,), 2),
                                     build_cmd("loadControlLimitListData"))
            assert ans.result.error_number == 6      # a client feature serves nothing
            ans = await fake.request("write", feature_address(cem.device, (1,), 4),
                                     build_cmd("deviceDiagnosisStateData", {"operatingState": "failure"}),
                                     ack_request=True)
            assert ans.result.error_number not in (0, None)

            # the gateway subscribes (from its client feature, like the wallbox fixture) to our heartbeat
            dd_client = feature_address(EVSE, (1,), 1)
            ours_dd = feature_address(cem.device, (1,), 4)
            sub = {"subscriptionRequest": {"clientAddress": dd_client, "serverAddress": ours_dd,
                                           "serverFeatureType": "DeviceDiagnosis"}}
            ans = await fake.request("call", me, build_cmd("nodeManagementSubscriptionRequestCall", sub),
                                     source=dd_client, ack_request=True)
            assert ans.result == (0, None) and ans.destination == dd_client and ans.source == me
            assert (await fake.request("call", me, build_cmd("nodeManagementSubscriptionRequestCall", sub),
                                       ack_request=True)).result.ok      # duplicate: friendly
            assert len(cem.peer_subscriptions) == 1
            ans = await fake.request("read", me, build_cmd("nodeManagementSubscriptionData"))
            assert ans.data == {"subscriptionEntry": [{"subscriptionId": 1, "clientAddress": dd_client,
                                                       "serverAddress": ours_dd}]}
            assert await cem.send_heartbeat() == 1
            hb = await fake.wait_received(lambda d: d.function == "deviceDiagnosisHeartbeatData")
            assert hb.classifier == "notify" and hb.destination == dd_client and hb.source == ours_dd
            assert hb.data["heartbeatCounter"] == 1 and hb.data["heartbeatTimeout"] == "PT4S"
            assert hb.data["timestamp"].endswith("Z")
            ans = await fake.request("read", ours_dd, build_cmd("deviceDiagnosisHeartbeatData"), source=dd_client)
            assert ans.classifier == "reply" and ans.data["heartbeatCounter"] == 1
            # a subscription to a feature we do not have, and a binding to NodeManagement, are refused
            bad = {"subscriptionRequest": {"clientAddress": dd_client,
                                           "serverAddress": feature_address(cem.device, (1,), 9),
                                           "serverFeatureType": "Measurement"}}
            ans = await fake.request("call", me, build_cmd("nodeManagementSubscriptionRequestCall", bad),
                                     ack_request=True)
            assert ans.result.error_number == 1
            bnm = {"bindingRequest": {"clientAddress": feature_address(EVSE, (0,), 0), "serverAddress": me,
                                      "serverFeatureType": "NodeManagement"}}
            ans = await fake.request("call", me, build_cmd("nodeManagementBindingRequestCall", bnm), ack_request=True)
            assert ans.result.error_number == 1 and cem.peer_bindings == []
            # deleting twice is fine
            dele = {"subscriptionDelete": {"clientAddress": dd_client, "serverAddress": ours_dd}}
            for _ in range(2):
                ans = await fake.request("call", me, build_cmd("nodeManagementSubscriptionDeleteCall", dele),
                                         ack_request=True)
                assert ans.result.ok
            assert cem.peer_subscriptions == [] and await cem.send_heartbeat() == 0

            # a notify with ackRequest is acknowledged; a result with ackRequest is never answered
            n = await fake.send_capture("09_evse_notify_heartbeat.raw.json",
                                        destination=feature_address(cem.device, (1,), 1), ackRequest=True)
            assert (await fake.wait_answer(n)).result == (0, None)
            assert (await cem.next_notify("deviceDiagnosisHeartbeatData", timeout=1)).data["heartbeatCounter"] == 2
            n = await fake.send(feature_address(EVSE, (0,), 0), me, "result", result_cmd(0), reference=1,
                                ack_request=True)
            await fake.request("read", me, build_cmd("nodeManagementDestinationListData"))  # round trip
            assert n not in fake.answers
            assert fake.answers[max(fake.answers)].data == {"nodeManagementDestinationData": [{"deviceDescription": {
                "deviceAddress": {"device": cem.device}, "deviceType": "EnergyManagementSystem",
                "networkFeatureSet": "smart"}}]}
            assert cem.errors == []
            # our msgCounters ascend over everything we sent
            sent = [d.msg_counter for d in cem.transcript if d.direction == "send"]
            assert sent == sorted(sent) and len(set(sent)) == len(sent)
    run(main())


def test_connection_loss_fails_pending_requests(ids):
    async def main():
        async with connected(ids) as (cem, fake):
            await cem.discover()
            fake.silent.add("nodeManagementUseCaseData")
            task = asyncio.ensure_future(cem.read_usecases(timeout=5))
            await fake.wait_received(lambda d: d.function == "nodeManagementUseCaseData")
            t0 = time.monotonic()
            await fake.peer.abort()
            with pytest.raises(SpineError) as ei:
                await task
            assert ei.value.closed and time.monotonic() - t0 < 2
            with pytest.raises(SpineError):
                await cem.read("1:2", "loadControlLimitListData")
    run(main())


# ------------------------------------------------------------------------------------------------
# gw cem with SPINE options against the fake device

def test_cli_spine_options(ids, tmp_path):
    gw = os.path.join(ROOT, "tools", "gw.py")
    # usage errors are found before connecting
    for bad in (["--read", "x:y", "loadControlLimitListData"], ["--write", "1:2", "f", "{not json"]):
        r = subprocess.run([sys.executable, gw, "cem", "--host", HOST, "--port", "9", "--cert", str(tmp_path / "c")]
                           + bad, capture_output=True, text=True, timeout=20, cwd=ROOT)
        assert r.returncode == 2 and "error:" in r.stdout, r.stdout + r.stderr

    async def main():
        async with ShipServer(ids["gw"]) as srv:
            write = json.dumps({"loadControlLimitData": [{"limitId": 0, "isLimitActive": True,
                                                          "value": {"number": 4200, "scale": 0}}]})
            proc = await asyncio.create_subprocess_exec(
                sys.executable, gw, "cem", "--host", HOST, "--port", str(srv.port), "--cert", str(tmp_path / "c"),
                "--ski", ids["gw"].ski, "--spine", "--subscribe", "1:2", "--read", "1:2", "loadControlLimitListData",
                "--write", "LoadControl", "loadControlLimitListData", write, "--wait", "0.5", "--spine-timeout", "3",
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
            try:
                sp = await srv.accept(10)
                fake = FakeDevice(sp, reads=("07_evse_reply_loadcontrol_limitlist.raw.json",),
                                  write_notify="11_evse_notify_loadcontrol_limitlist.raw.json")
                out, _ = await asyncio.wait_for(proc.communicate(), 15)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            fake.task.cancel()
            return proc.returncode, out.decode(), fake

    code, out, fake = run(main(), timeout=25)
    assert code == 0, out
    assert "test CEM SPINE device: d:_i:TestCEM_" in out
    assert "device %s (ChargingStation, smart, SPINE 1.3.0)" % EVSE in out
    assert "entity 1 EVSE" in out and "1:2    LoadControl server" in out
    assert "0:ControllableSystem" not in out and "1 ControllableSystem: limitationOfPowerConsumption 1.0.0" in out
    assert "subscribe 1:2 (LoadControl): result 0 (ok)" in out
    assert "read 1:2 (LoadControl) loadControlLimitListData: {\"loadControlLimitData\":[{\"limitId\":0" in out
    assert "write LoadControl (LoadControl) loadControlLimitListData: result 0 (ok)" in out
    assert "-> call   0:0 -> 0:0 nodeManagementBindingRequestCall" in out
    assert "<- notify 1:2 -> 1:2 loadControlLimitListData" in out
    assert "closed (confirmed)" in out
    assert "[02] data" not in out      # SPINE lines instead of raw SHIP data messages
    assert [(d.classifier, d.function) for d in fake.requests()] == [
        ("read", "nodeManagementDetailedDiscoveryData"), ("call", "nodeManagementSubscriptionRequestCall"),
        ("read", "nodeManagementUseCaseData"), ("call", "nodeManagementSubscriptionRequestCall"),
        ("read", "loadControlLimitListData"), ("call", "nodeManagementBindingRequestCall"),
        ("write", "loadControlLimitListData")]
