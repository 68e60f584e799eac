"""SPINE for the test CEM (CPython, independent of the firmware's lib/): ``SpineCem``, our CEM device on
one SHIP connection (requests and their answers, discovery, subscriptions, bindings, notifies, the answers
to the peer's requests, heartbeat). Datagrams: spinemsg.py; the device model: spinemodel.py.

Datagrams are built and parsed in **plain** JSON (``{"datagram": {"header": {...}, "payload": {"cmd":
[...]}}}``); ``dialect`` turns them into the EEBUS wire form and ``ShipPeer.send_datagram`` frames them.
Dicts are built in schema order so that the wire bytes match what spine-go emits (the tests compare with
the captures byte for byte modulo counters and device names).

Usage::

    peer = ShipPeer(ident); await peer.dial(host, port, expected_ski=gw_ski)
    cem = SpineCem(peer)                       # starts the receive loop; answers the gateway's requests
    remote = await cem.startup()               # discovery read, NodeManagement subscription, use cases
    print(remote.format())
    lc = remote.server("LoadControl", entity=(1, 1))
    await cem.subscribe(lc.address); await cem.bind(lc.address)
    limits = await cem.read(lc.address, "loadControlLimitListData")
    res = await cem.write(lc.address, "loadControlLimitListData",
                          {"loadControlLimitData": [{"limitId": 0, "isLimitActive": True,
                                                     "value": {"number": 10, "scale": 0}}]})
    assert res.ok
    n = await cem.next_notify("loadControlLimitListData", timeout=5)
    print(cem.describe())
    await cem.close()

Feature addresses may be given as ``"1:4"`` (entity [1], feature 4), ``"1.1:4"`` (entity [1,1]),
``(entity, feature)`` tuples, address dicts ``{"device":..., "entity":[...], "feature":n}``,
``RemoteFeature`` objects, and (remote features, once discovered) ``"LoadControl"`` or ``"1.1:LoadControl"``
(the server feature of that type).
"""

import asyncio
import itertools
import json
import time

from .shipmsg import ShipError
from .spinemodel import LocalFeature, RemoteDevice, RemoteFeature, _default_features, parse_use_cases
from .spinemsg import (CEM_USE_CASES, E_DESTINATION_UNKNOWN, E_GENERAL, E_NOT_SUPPORTED, NM, SPEC_VERSION,
                       Datagram, Result, SpineError, SpineResultError, _addr_str, _entity, _now_utc, _obj,
                       build_cmd, build_datagram, feature_address, parse_datagram, parse_feature_spec,
                       result_cmd)

__all__ = ["SpineCem"]


class SpineCem:
    """The test CEM's SPINE device on a connected ShipPeer (handshake complete).

    Parameters:
      peer          ShipPeer in data phase; SpineCem owns its receive side from now on (do not call
                    ``peer.recv*`` yourself while the SpineCem runs)
      device        our device address (default ``d:_i:TestCEM_<first 8 chars of our SKI>``)
      device_type   ``EnergyManagementSystem``
      timeout       default bound (s) for every request
      log           callable(direction, Datagram) for every datagram sent/received
      use_cases     (actor, name, version, scenarios) tuples announced on entity [1]
      start         start the receive loop now (needs a running event loop)
      heartbeat_timeout  ``heartbeatTimeout`` announced in our heartbeat (ISO duration)

    Attributes: ``local_features`` {(entity, feature): LocalFeature}; ``remote`` (RemoteDevice after
    discovery, also updated by discovery notifies); ``use_cases`` (the peer's); ``transcript`` (every
    Datagram, sent and received, in order); ``notifies`` (every notify received, history);
    ``subscriptions`` / ``bindings`` (ours at the peer: list of (client addr, server addr, type));
    ``peer_subscriptions`` / ``peer_bindings`` (the peer's at us: dicts with id, clientAddress,
    serverAddress, serverFeatureType); ``problems`` (protocol deviations seen in the peer's datagrams,
    text); ``errors`` (exceptions while handling input).
    """

    def __init__(self, peer, *, device=None, device_type="EnergyManagementSystem", timeout=10.0, log=None,
                 use_cases=CEM_USE_CASES, start=True, heartbeat_timeout="PT4S", spec_version=SPEC_VERSION,
                 entity_type="CEM"):
        self.peer = peer
        if device is None:
            ski = getattr(getattr(peer, "identity", None), "ski", None) or "00000000"
            device = "d:_i:TestCEM_%s" % ski[:8]
        self.device = device
        self.device_type = device_type
        self.entity_type = entity_type     # of our entity [1]: CEM, or GridGuard for a control box
        self.timeout = timeout
        self.log = log
        self.spec_version = spec_version
        self.use_case_table = list(use_cases)
        self.heartbeat_timeout = heartbeat_timeout
        self.heartbeat_counter = 0
        self.operating_state = "normalOperation"
        self.local_features = {f.key: f for f in _default_features()}
        self._init_local_data()

        self.remote = None
        self.remote_device_seen = None     # addressSource.device of the first datagram from the peer
        self.use_cases = []
        self.transcript = []
        self.notifies = []
        self.ship_messages = []            # non-data SHIP messages that arrived while we ran
        self.subscriptions = []
        self.bindings = []
        self.peer_subscriptions = []
        self.peer_bindings = []
        self.problems = []
        self.errors = []
        self.closed_error = None

        self._counter = itertools.count(1)
        self._pending = {}                 # msgCounter -> (Future, Datagram sent)
        self._answered = set()             # msgCounters of ours that got their answer
        self._notify_queue = []
        self._notify_event = asyncio.Event()
        self._last_in_counter = None
        self._next_sub_id = 1
        self._next_bind_id = 1
        self._t0 = time.monotonic()
        self._reader = None
        self._hb_task = None
        # callables(Datagram) run for every notify received, after discovery/use-case data is applied
        # (testcem.ucrun keeps its copy of the peer's data with it)
        self.notify_listeners = []
        if start:
            self.start()

    # ------------------------------------------------------------------ local device

    def _init_local_data(self):
        nm = self.local_features[NM]
        nm.data.update({
            "nodeManagementDetailedDiscoveryData": self.detailed_discovery_data,
            "nodeManagementUseCaseData": self.use_case_data,
            "nodeManagementSubscriptionData": lambda: {"subscriptionEntry": [
                {"subscriptionId": s["subscriptionId"], "clientAddress": s["clientAddress"],
                 "serverAddress": s["serverAddress"]} for s in self.peer_subscriptions]},
            "nodeManagementBindingData": lambda: {"bindingEntry": [
                {"bindingId": b["bindingId"], "clientAddress": b["clientAddress"],
                 "serverAddress": b["serverAddress"]} for b in self.peer_bindings]},
            "nodeManagementDestinationListData": lambda: {"nodeManagementDestinationData": [
                {"deviceDescription": self._device_description()}]},
        })
        self.local_features[((0,), 1)].data["deviceClassificationManufacturerData"] = {
            "deviceName": "TestCEM", "deviceCode": "TestCEM", "softwareRevision": "1",
            "vendorName": "gw-test", "brandName": "gw-test"}
        dd = self.local_feature("DeviceDiagnosis", "server")
        dd.data["deviceDiagnosisStateData"] = lambda: {"operatingState": self.operating_state}
        dd.data["deviceDiagnosisHeartbeatData"] = self._heartbeat_data

    def add_local_feature(self, ftype, role="client", functions=(), entity=(1,), description=None):
        """Add a feature to our device (next free feature number on the entity) and return it; an existing
        one of that type and role is returned instead. Add features before the peer reads our discovery
        (e.g. right after creating the SpineCem): eebus-go drops messages from unknown features."""
        try:
            return self.local_feature(ftype, role, entity)
        except LookupError:
            pass
        ent = _entity(entity)
        n = max([f.feature for f in self.local_features.values() if f.entity == ent] + [0]) + 1
        lf = LocalFeature(ent, n, ftype, role, functions,
                          description=description or "%s %s" % (ftype, role.capitalize()))
        self.local_features[lf.key] = lf
        return lf

    def local_feature(self, ftype, role="client", entity=(1,)):
        """Our feature of that type and role (entity [1] unless given; NodeManagement: [0]/0)."""
        if ftype == "NodeManagement":
            return self.local_features[NM]
        ent = _entity(entity)
        for f in self.local_features.values():
            if f.type == ftype and f.role == role and (ent is None or f.entity == ent):
                return f
        raise LookupError("the test CEM has no %s %s feature" % (ftype, role))

    def local_address(self, x):
        """Our full feature address from a LocalFeature / (entity, feature) / "1:2" / address dict."""
        if isinstance(x, LocalFeature):
            return feature_address(self.device, x.entity, x.feature)
        if isinstance(x, dict):
            return feature_address(self.device, _entity(x.get("entity")), x.get("feature"))
        ent, f = parse_feature_spec(x) if isinstance(x, str) else x
        if isinstance(f, str):
            lf = self.local_feature(f, "client", ent)
            return feature_address(self.device, lf.entity, lf.feature)
        return feature_address(self.device, _entity(ent), f)

    def _device_description(self):
        return {"deviceAddress": {"device": self.device}, "deviceType": self.device_type,
                "networkFeatureSet": "smart"}

    def detailed_discovery_data(self):
        """Our nodeManagementDetailedDiscoveryData (plain), structured like the eebus-go captures."""
        ents = sorted({f.entity for f in self.local_features.values()})
        feats = []
        for key in sorted(self.local_features):
            f = self.local_features[key]
            d = {"featureAddress": feature_address(self.device, f.entity, f.feature), "featureType": f.type,
                 "role": f.role}
            if f.role != "client":
                d["supportedFunction"] = [{"function": fn, "possibleOperations": ops}
                                          for fn, ops in f.functions.items()]
            if f.description:
                d["description"] = f.description
            feats.append({"description": d})
        return {
            "specificationVersionList": {"specificationVersion": [self.spec_version]},
            "deviceInformation": {"description": self._device_description()},
            "entityInformation": [
                {"description": {"entityAddress": {"device": self.device, "entity": list(e)},
                                 "entityType": "DeviceInformation" if e == (0,) else self.entity_type}}
                for e in ents
            ],
            "featureInformation": feats,
        }

    def use_case_data(self):
        """Our nodeManagementUseCaseData (plain): one entry per actor on entity [1]."""
        infos = []
        by_actor = {}
        for entry in self.use_case_table:
            actor, name, version, scenarios = entry[:4]
            sub_revision = entry[4] if len(entry) > 4 else "release"   # EVSOC: "RC1"
            if actor not in by_actor:
                by_actor[actor] = {"address": {"device": self.device, "entity": [1]}, "actor": actor,
                                   "useCaseSupport": []}
                infos.append(by_actor[actor])
            by_actor[actor]["useCaseSupport"].append({
                "useCaseName": name, "useCaseVersion": version, "useCaseAvailable": True,
                "scenarioSupport": list(scenarios), "useCaseDocumentSubRevision": sub_revision})
        return {"useCaseInformation": infos}

    def _heartbeat_data(self):
        return {"timestamp": _now_utc(), "heartbeatCounter": self.heartbeat_counter,
                "heartbeatTimeout": self.heartbeat_timeout}

    # ------------------------------------------------------------------ life cycle

    def start(self):
        if self._reader is None:
            self._t0 = time.monotonic()
            self._reader = asyncio.ensure_future(self._read_loop())
        return self

    async def close(self, *, ship_close=True):
        """Stop heartbeats and the receive loop, then (``ship_close``) close the SHIP connection.
        Returns what ShipPeer.close returns (True when the peer confirmed)."""
        self.stop_heartbeat()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._reader = None
        self._fail_pending(SpineError("SpineCem closed", closed=True))
        if ship_close and not self.peer.closed:
            return await self.peer.close()
        return None

    async def __aenter__(self):
        return self.start()

    async def __aexit__(self, *exc):
        await self.close()

    @property
    def closed(self):
        return self.closed_error is not None or self.peer.closed

    def _now(self):
        return round(time.monotonic() - self._t0, 3)

    def _emit(self, dg):
        self.transcript.append(dg)
        if self.log is not None:
            try:
                self.log(dg.direction, dg)
            except Exception:  # noqa: BLE001 - a broken logger must not break the CEM
                pass

    def describe(self, last=None):
        """The transcript, one line per datagram (``last``: only the last n)."""
        items = self.transcript if last is None else self.transcript[-last:]
        return "\n".join("%8.3f %s" % (d.t or 0.0, d.describe()) for d in items)

    # ------------------------------------------------------------------ sending

    def remote_nm_address(self):
        """The peer's NodeManagement address; without ``device`` before the discovery reply is known
        (as every SPINE stack sends its first read)."""
        dev = self.remote.device if self.remote is not None else None
        return feature_address(dev, (0,), 0)

    def remote_address(self, x):
        """The peer's full feature address from "1:2" / "1.1:LoadControl" / "LoadControl" / (entity,
        feature) / RemoteFeature / address dict (device filled in)."""
        dev = self.remote.device if self.remote is not None else self.remote_device_seen
        if isinstance(x, RemoteFeature):
            return dict(x.address)
        if isinstance(x, dict):
            a = dict(x)
            if "device" not in a and dev is not None:
                a = feature_address(dev, _entity(a.get("entity")), a.get("feature"))
            return a
        ent, f = parse_feature_spec(x) if isinstance(x, str) else x
        if isinstance(f, str):
            if self.remote is None:
                raise LookupError("feature type %r: run discover() first" % f)
            return dict(self.remote.server(f, ent).address)
        if self.remote is not None:
            rf = self.remote.features.get((_entity(ent), f))
            if rf is not None:
                return dict(rf.address)
        return feature_address(dev, _entity(ent), f)

    def remote_feature(self, x):
        """RemoteFeature for an address (None when the discovery does not list it)."""
        if self.remote is None:
            return None
        a = self.remote_address(x)
        return self.remote.features.get((_entity(a.get("entity")), a.get("feature")))

    async def send(self, destination, classifier, cmd, *, source=None, reference=None, ack_request=None,
                   timestamp=None, msg_counter=None):
        """Send one datagram now (no waiting for an answer); returns the sent Datagram.
        ``destination``/``source``: full address dicts (source default: our NodeManagement)."""
        if source is None:
            source = feature_address(self.device, (0,), 0)
        n = next(self._counter) if msg_counter is None else msg_counter
        plain = build_datagram(source, destination, classifier, cmd, n, reference=reference,
                               ack_request=ack_request, timestamp=timestamp, spec_version=self.spec_version)
        dg = Datagram(plain["datagram"], "send", self._now())
        self._emit(dg)
        try:
            await self.peer.send_datagram(plain)
        except ShipError as e:
            raise SpineError("sending %s failed: %s" % (dg.describe(), e), closed=True, request=dg) from None
        return dg

    async def request(self, destination, classifier, cmd, *, source=None, ack_request=None, timeout=None):
        """Send a read/write/call and wait for the answer referencing its msgCounter (a reply or a
        result, whichever comes first). Returns the answer Datagram; SpineError on timeout/close."""
        if self.closed_error is not None:
            raise SpineError("connection closed: %s" % self.closed_error, closed=True)
        fut = asyncio.get_running_loop().create_future()
        n = next(self._counter)
        self._pending[n] = (fut, None)
        t = self.timeout if timeout is None else timeout
        try:
            sent = await self.send(destination, classifier, cmd, source=source, ack_request=ack_request,
                                   msg_counter=n)
            self._pending[n] = (fut, sent)
            try:
                return await asyncio.wait_for(fut, t)
            except asyncio.TimeoutError:
                raise SpineError("no answer within %.1f s to %s" % (t, sent.describe()), timeout=True,
                                 request=sent) from None
        finally:
            self._pending.pop(n, None)

    async def read(self, feature, function, selectors=None, elements=None, *, source=None, timeout=None,
                   raw=False):
        """Read a function of a peer feature (``selectors``/``elements``: partial read). Returns the plain
        function data of the reply ({} for an empty object); ``raw=True`` returns the reply Datagram.
        A result instead of a reply raises SpineResultError (e.g. error 6 for an unknown function)."""
        dest = self.remote_address(feature)
        src = self.local_address(source) if source is not None else self._client_for(dest)
        cmd = build_cmd(function, {}, selectors=selectors, elements=elements)
        ans = await self.request(dest, "read", cmd, source=src, timeout=timeout)
        if ans.classifier == "result" or ans.function == "resultData":
            r = ans.result
            raise SpineResultError("read %s %s answered with result %s%s" % (
                _addr_str(dest), function, r.error_number, " (%s)" % r.description if r.description else ""),
                r, datagram=ans)
        if ans.function != function:
            self.problems.append("reply #%s to read %s carries %s" % (ans.msg_counter, function, ans.function))
        return ans if raw else ans.data

    async def write(self, feature, function, data, partial=None, delete=None, *, source=None, timeout=None):
        """Write (``ackRequest``) and wait for the result; returns Result (errorNumber, description).
        ``partial``: True -> partial filter, False -> full write, None -> as the peer's discovery
        announces the function (partial when announced or unknown). ``delete``: {"selectors": ...,
        "elements": ...} -> a delete filter before the partial one. Needs a binding (see ``bind``)."""
        dest = self.remote_address(feature)
        src = self.local_address(source) if source is not None else self._client_for(dest)
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        if partial is None:
            rf = self.remote_feature(dest)
            partial = True if rf is None or not rf.can_write(function) else rf.write_partial(function)
        cmd = build_cmd(function, data, partial=partial, delete=delete)
        ans = await self.request(dest, "write", cmd, source=src, ack_request=True, timeout=timeout)
        return self._as_result(ans)

    async def call(self, feature, function, data, *, source=None, timeout=None):
        """Send a call (``ackRequest``) and wait for the result; returns Result."""
        dest = self.remote_address(feature)
        src = self.local_address(source) if source is not None else self._client_for(dest)
        ans = await self.request(dest, "call", build_cmd(function, data), source=src, ack_request=True,
                                 timeout=timeout)
        return self._as_result(ans)

    def _as_result(self, ans):
        r = ans.result
        if r is None:
            self.problems.append("answer #%s to our #%s is a %s, not a result" % (
                ans.msg_counter, ans.reference, ans.classifier))
            return Result(None, "answer was a %s (%s)" % (ans.classifier, ans.function), ans)
        return r

    def _client_for(self, dest):
        """Our client feature matching the type of the peer's feature at ``dest`` (NodeManagement for
        NodeManagement and unknown features)."""
        key = (_entity(dest.get("entity")), dest.get("feature"))
        rf = self.remote.features.get(key) if self.remote is not None else None
        if rf is None or rf.type == "NodeManagement":
            return feature_address(self.device, (0,), 0)
        try:
            lf = self.local_feature(rf.type, "client")
        except LookupError:
            return feature_address(self.device, (0,), 0)
        return feature_address(self.device, lf.entity, lf.feature)

    # ------------------------------------------------------------------ NodeManagement client operations

    async def discover(self, timeout=None):
        """Read the peer's nodeManagementDetailedDiscoveryData; returns (and stores as ``remote``) the
        RemoteDevice summary."""
        ans = await self.request(self.remote_nm_address(), "read",
                                 build_cmd("nodeManagementDetailedDiscoveryData", {}),
                                 source=feature_address(self.device, (0,), 0), timeout=timeout)
        if ans.function != "nodeManagementDetailedDiscoveryData":
            r = ans.result or Result(None, ans.function)
            raise SpineResultError("detailed discovery read answered with %s" % ans.describe(), r, datagram=ans)
        rd = RemoteDevice()
        rd.apply(ans.data, header_device=ans.source.get("device"))
        if self.remote is not None:
            rd.use_cases = self.remote.use_cases
        self.remote = rd
        return rd

    async def read_usecases(self, timeout=None):
        """Read the peer's nodeManagementUseCaseData; returns the list of UseCase (also in ``use_cases``
        and ``remote.use_cases``)."""
        data = await self.read(self.remote_nm_address(), "nodeManagementUseCaseData",
                               source=feature_address(self.device, (0,), 0), timeout=timeout)
        self.use_cases = parse_use_cases(data, self.remote.device if self.remote else None)
        if self.remote is not None:
            self.remote.use_cases = self.use_cases
        return self.use_cases

    def _sub_parts(self, remote_feature_addr, local_feature_addr, feature_type):
        server = self.remote_address(remote_feature_addr)
        rf = self.remote_feature(server)
        if feature_type is None:
            if rf is None:
                raise LookupError("feature type of %s unknown: run discover() or give feature_type"
                                  % _addr_str(server))
            feature_type = rf.type
        if local_feature_addr is None:
            if feature_type == "NodeManagement":
                client = feature_address(self.device, (0,), 0)
            else:
                lf = self.local_feature(feature_type, "client")
                client = feature_address(self.device, lf.entity, lf.feature)
        else:
            client = self.local_address(local_feature_addr)
        return client, server, feature_type

    async def subscribe(self, remote_feature_addr, local_feature_addr=None, feature_type=None, *, timeout=None):
        """nodeManagementSubscriptionRequestCall to the peer's NodeManagement (from ours, like spine-go):
        subscribe our client feature (default: our client of the same type; NodeManagement for
        NodeManagement) to the peer's server feature. Returns Result."""
        client, server, ftype = self._sub_parts(remote_feature_addr, local_feature_addr, feature_type)
        data = {"subscriptionRequest": {"clientAddress": client, "serverAddress": server,
                                        "serverFeatureType": ftype}}
        r = await self.call(self.remote_nm_address(), "nodeManagementSubscriptionRequestCall", data,
                            source=NM, timeout=timeout)
        if r.ok and (client, server, ftype) not in self.subscriptions:
            self.subscriptions.append((client, server, ftype))
        return r

    async def unsubscribe(self, remote_feature_addr, local_feature_addr=None, feature_type=None, *,
                          timeout=None):
        """nodeManagementSubscriptionDeleteCall {clientAddress, serverAddress}. Returns Result."""
        client, server, ftype = self._sub_parts(remote_feature_addr, local_feature_addr, feature_type)
        data = {"subscriptionDelete": {"clientAddress": client, "serverAddress": server}}
        r = await self.call(self.remote_nm_address(), "nodeManagementSubscriptionDeleteCall", data,
                            source=NM, timeout=timeout)
        if r.ok:
            self.subscriptions = [s for s in self.subscriptions if s[:2] != (client, server)]
        return r

    async def bind(self, remote_feature_addr, local_feature_addr=None, feature_type=None, *, timeout=None):
        """nodeManagementBindingRequestCall (needed before writing). Returns Result."""
        client, server, ftype = self._sub_parts(remote_feature_addr, local_feature_addr, feature_type)
        data = {"bindingRequest": {"clientAddress": client, "serverAddress": server,
                                   "serverFeatureType": ftype}}
        r = await self.call(self.remote_nm_address(), "nodeManagementBindingRequestCall", data,
                            source=NM, timeout=timeout)
        if r.ok and (client, server, ftype) not in self.bindings:
            self.bindings.append((client, server, ftype))
        return r

    async def unbind(self, remote_feature_addr, local_feature_addr=None, feature_type=None, *, timeout=None):
        """nodeManagementBindingDeleteCall {clientAddress, serverAddress}. Returns Result."""
        client, server, ftype = self._sub_parts(remote_feature_addr, local_feature_addr, feature_type)
        data = {"bindingDelete": {"clientAddress": client, "serverAddress": server}}
        r = await self.call(self.remote_nm_address(), "nodeManagementBindingDeleteCall", data,
                            source=NM, timeout=timeout)
        if r.ok:
            self.bindings = [b for b in self.bindings if b[:2] != (client, server)]
        return r

    def is_bound(self, remote_feature_addr, local_feature_addr=None):
        server = self.remote_address(remote_feature_addr)
        return any(b[1] == server and (local_feature_addr is None or b[0] == self.local_address(local_feature_addr))
                   for b in self.bindings)

    async def ensure_bound(self, remote_feature_addr, local_feature_addr=None, feature_type=None, *,
                           timeout=None):
        """Bind unless already bound; returns Result (0 when already bound)."""
        if self.is_bound(remote_feature_addr, local_feature_addr):
            return Result(0, "already bound")
        return await self.bind(remote_feature_addr, local_feature_addr, feature_type, timeout=timeout)

    async def startup(self, timeout=None):
        """The start-up of a real CEM (spine.md 5.3): detailed-discovery read, subscription to the peer's
        NodeManagement, use-case read. Our side answers the peer's own requests meanwhile. Returns the
        RemoteDevice (with ``use_cases``). SpineResultError when the subscription is refused."""
        remote = await self.discover(timeout)
        r = await self.subscribe(self.remote_nm_address(), NM, "NodeManagement", timeout=timeout)
        if not r.ok:
            raise SpineResultError("NodeManagement subscription refused: %r" % (r,), r, datagram=r.datagram)
        await self.read_usecases(timeout)
        return remote

    # ------------------------------------------------------------------ notifies

    async def next_notify(self, function=None, timeout=None, *, source=None):
        """Next not yet consumed notify (Datagram), optionally only of ``function`` and/or from ``source``
        (feature spec/address). Notifies that do not match stay queued. SpineError on timeout."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        want_src = None
        if source is not None:
            a = self.remote_address(source)
            want_src = (_entity(a.get("entity")), a.get("feature"))
        while True:
            for i, dg in enumerate(self._notify_queue):
                if (function is None or dg.function == function) and (want_src is None or dg.source_key == want_src):
                    del self._notify_queue[i]
                    return dg
            if self.closed_error is not None:
                raise SpineError("connection closed while waiting for a notify", closed=True)
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpineError("no %s notify within %.1f s" % (function or "", t), timeout=True)
            self._notify_event.clear()
            try:
                await asyncio.wait_for(self._notify_event.wait(), left)
            except asyncio.TimeoutError:
                pass

    def pending_notifies(self):
        """The queued (not yet consumed) notifies."""
        return list(self._notify_queue)

    # ------------------------------------------------------------------ heartbeat (our DeviceDiagnosis server)

    def _subscribers(self, lf):
        return [s for s in self.peer_subscriptions
                if (_entity(s["serverAddress"].get("entity")), s["serverAddress"].get("feature")) == lf.key]

    async def send_heartbeat(self):
        """One deviceDiagnosisHeartbeatData notify to every subscriber of our DeviceDiagnosis server;
        returns the number sent."""
        dd = self.local_feature("DeviceDiagnosis", "server")
        if not self._subscribers(dd):
            return 0
        self.heartbeat_counter += 1
        return await self.notify_subscribers(dd, "deviceDiagnosisHeartbeatData")

    async def notify_subscribers(self, local_feature, function):
        """Notify the current data of one of our server functions to every peer subscriber of that
        feature (``local_feature``: LocalFeature or (entity, feature)); returns the number sent."""
        lf = local_feature if isinstance(local_feature, LocalFeature) else self.local_features[
            (_entity(local_feature[0]), local_feature[1])]
        data = lf.data[function]
        data = data() if callable(data) else data
        subs = self._subscribers(lf)
        for s in subs:
            await self.send(s["clientAddress"], "notify", {function: data},
                            source=feature_address(self.device, lf.entity, lf.feature))
        return len(subs)

    async def set_operating_state(self, state):
        """Our deviceDiagnosisStateData operatingState (OPEV/OSCEV scenario 3: ``normalOperation`` or
        ``failure``); subscribers get a notify. Returns the number of notifies sent."""
        self.operating_state = state
        return await self.notify_subscribers(self.local_feature("DeviceDiagnosis", "server"),
                                             "deviceDiagnosisStateData")

    @property
    def heartbeat_running(self):
        return self._hb_task is not None and not self._hb_task.done()

    def start_heartbeat(self, period=2.0):
        """Send heartbeats every ``period`` seconds to whoever subscribed (spine.md 10: about timeout/2)."""
        self.stop_heartbeat()

        async def beat():
            try:
                while not self.closed:
                    await self.send_heartbeat()
                    await asyncio.sleep(period)
            except (asyncio.CancelledError, SpineError):
                pass
        self._hb_task = asyncio.ensure_future(beat())

    def stop_heartbeat(self):
        if self._hb_task is not None:
            self._hb_task.cancel()
            self._hb_task = None

    # ------------------------------------------------------------------ receiving

    async def _read_loop(self):
        try:
            while True:
                try:
                    m = await self.peer.recv(30.0)
                except ShipError as e:
                    if e.timeout:
                        continue
                    self.closed_error = e
                    self._fail_pending(SpineError("connection closed: %s" % e, closed=True))
                    self._notify_event.set()
                    return
                if m.name != "data":
                    self.ship_messages.append(m)
                    continue
                try:
                    dg = parse_datagram(m, "recv", self._now())
                except (ValueError, TypeError, AttributeError) as e:
                    self.errors.append("unparsable data message: %s: %s" % (e, m.describe()[:200]))
                    continue
                self._emit(dg)
                try:
                    await self._handle(dg)
                except SpineError as e:
                    self.errors.append("answering %s: %s" % (dg.describe(), e))
                except Exception as e:  # noqa: BLE001 - keep the loop alive, report
                    self.errors.append("handling %s: %r" % (dg.describe(), e))
        except asyncio.CancelledError:
            pass

    def _fail_pending(self, err):
        for n, (fut, _sent) in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(err)
        self._notify_event.set()

    def _check_header(self, dg):
        h = dg.header
        for k in ("specificationVersion", "addressSource", "addressDestination", "msgCounter", "cmdClassifier"):
            if k not in h:
                self.problems.append("#%s %s: header without %s" % (dg.msg_counter, dg.classifier, k))
        n = dg.msg_counter
        if isinstance(n, int):
            if self._last_in_counter is not None and n <= self._last_in_counter:
                self.problems.append("msgCounter %d after %d (not ascending)" % (n, self._last_in_counter))
            self._last_in_counter = n
        src = dg.source
        if "device" not in src:
            self.problems.append("#%s: addressSource without device" % n)
        elif self.remote_device_seen is None:
            self.remote_device_seen = src["device"]
        dev = dg.destination.get("device")
        if dev is not None and dev != self.device:
            self.problems.append("#%s: addressed to device %r, we are %r" % (n, dev, self.device))
        if self.remote is not None and dg.source_key not in self.remote.features:
            self.problems.append("#%s %s from %s: feature not in the peer's discovery" % (
                n, dg.classifier, _addr_str(src)))

    async def _handle(self, dg):
        self._check_header(dg)
        c = dg.classifier
        if c in ("reply", "result"):
            ref = dg.reference
            ent = self._pending.get(ref)
            if ent is not None and not ent[0].done():
                ent[0].set_result(dg)
                self._answered.add(ref)
            elif ref in self._answered:
                self.problems.append("second answer (%s) to our #%s" % (c, ref))
            else:
                self.problems.append("%s #%s references #%s, which is not an open request of ours" % (
                    c, dg.msg_counter, ref))
            if c == "reply" and dg.ack_request:
                await self._answer(dg, "result", result_cmd(0))
            return
        if c == "notify":
            self._on_notify(dg)
            if dg.ack_request:
                await self._answer(dg, "result", result_cmd(0))
            return
        if c == "read":
            await self._on_read(dg)
            return
        if c == "call":
            await self._on_call(dg)
            return
        if c == "write":
            await self._on_write(dg)
            return
        self.problems.append("#%s: unknown cmdClassifier %r" % (dg.msg_counter, c))
        await self._answer(dg, "result", result_cmd(E_DESTINATION_UNKNOWN, "missing or unknown cmdClassifier"))

    async def _answer(self, req, classifier, cmd):
        """Reply/result to ``req``: from the feature it addressed, to its source, referencing its counter."""
        ent, f = req.destination_key
        if ent is None or f is None:
            src = feature_address(self.device, (0,), 0)
        else:
            src = feature_address(self.device, ent, f)
        dest = dict(req.source)
        return await self.send(dest, classifier, cmd, source=src, reference=req.msg_counter)

    def _on_notify(self, dg):
        self.notifies.append(dg)
        fn = dg.function
        if fn == "nodeManagementDetailedDiscoveryData":
            if self.remote is None:
                self.remote = RemoteDevice()
            self.remote.apply(dg.data, partial=dg.partial, header_device=dg.source.get("device"))
        elif fn == "nodeManagementUseCaseData":
            self.use_cases = parse_use_cases(dg.data, self.remote.device if self.remote else
                                             dg.source.get("device"))
            if self.remote is not None:
                self.remote.use_cases = self.use_cases
        for listener in list(self.notify_listeners):
            try:
                listener(dg)
            except Exception as e:  # noqa: BLE001 - a broken listener must not break the CEM
                self.errors.append("notify listener %r: %r" % (listener, e))
        self._notify_queue.append(dg)
        self._notify_event.set()

    def _target(self, dg):
        """(LocalFeature or None, function) addressed by a request."""
        return self.local_features.get(dg.destination_key), dg.function

    async def _on_read(self, dg):
        lf, fn = self._target(dg)
        if lf is None:
            return await self._answer(dg, "result", result_cmd(E_DESTINATION_UNKNOWN, "unknown feature %s"
                                                               % _addr_str(dg.destination)))
        if fn not in lf.functions or "read" not in lf.functions[fn] or fn not in lf.data:
            return await self._answer(dg, "result", result_cmd(
                E_NOT_SUPPORTED, "function %s is not supported by %s" % (fn, lf.spec)))
        data = lf.data[fn]
        data = data() if callable(data) else data
        await self._answer(dg, "reply", {fn: data})

    async def _on_write(self, dg):
        lf, fn = self._target(dg)
        if lf is None:
            r = result_cmd(E_DESTINATION_UNKNOWN, "unknown feature %s" % _addr_str(dg.destination))
        elif fn not in lf.functions:
            r = result_cmd(E_NOT_SUPPORTED, "function %s is not supported by %s" % (fn, lf.spec))
        else:
            r = result_cmd(E_GENERAL, "write is not allowed on this function")
        await self._answer(dg, "result", r)

    async def _on_call(self, dg):
        lf, fn = self._target(dg)
        if lf is None:
            return await self._answer(dg, "result", result_cmd(E_DESTINATION_UNKNOWN, "unknown feature %s"
                                                               % _addr_str(dg.destination)))
        if lf.key != NM or fn not in lf.functions:
            return await self._answer(dg, "result", result_cmd(
                E_NOT_SUPPORTED, "function %s is not supported by %s" % (fn, lf.spec)))
        data = dg.data
        if fn == "nodeManagementSubscriptionRequestCall":
            r = self._peer_request(_obj(data.get("subscriptionRequest")), self.peer_subscriptions,
                                   "subscriptionId", binding=False)
        elif fn == "nodeManagementBindingRequestCall":
            r = self._peer_request(_obj(data.get("bindingRequest")), self.peer_bindings, "bindingId",
                                   binding=True)
        elif fn == "nodeManagementSubscriptionDeleteCall":
            r = self._peer_delete(_obj(data.get("subscriptionDelete")), self.peer_subscriptions, "subscriptionId")
        elif fn == "nodeManagementBindingDeleteCall":
            r = self._peer_delete(_obj(data.get("bindingDelete")), self.peer_bindings, "bindingId")
        else:
            r = result_cmd(E_NOT_SUPPORTED, "function %s is not supported" % fn)
        await self._answer(dg, "result", r)

    def _peer_request(self, req, table, id_key, binding):
        client = _obj(req.get("clientAddress"))
        server = _obj(req.get("serverAddress"))
        key = (_entity(server.get("entity")), server.get("feature"))
        lf = self.local_features.get(key)
        what = "binding" if binding else "subscription"
        if lf is None or lf.role not in ("server", "special"):
            return result_cmd(E_GENERAL, "%s: %s is not a server feature of ours" % (what, _addr_str(server)))
        if binding and lf.role == "special":
            return result_cmd(E_GENERAL, "binding to NodeManagement is not allowed")
        if server.get("device") not in (None, self.device):
            return result_cmd(E_GENERAL, "%s: server device %r is not us" % (what, server.get("device")))
        if req.get("serverFeatureType") not in (None, lf.type):
            self.problems.append("%s request for %s names type %r, the feature is %s" % (
                what, lf.spec, req.get("serverFeatureType"), lf.type))
        for e in table:
            if e["clientAddress"] == client and e["serverAddress"] == server:
                return result_cmd(0)   # duplicate: friendly
        if binding:
            n, self._next_bind_id = self._next_bind_id, self._next_bind_id + 1
        else:
            n, self._next_sub_id = self._next_sub_id, self._next_sub_id + 1
        table.append({id_key: n, "clientAddress": client, "serverAddress": server,
                      "serverFeatureType": req.get("serverFeatureType")})
        return result_cmd(0)

    @staticmethod
    def _peer_delete(req, table, id_key):
        client = req.get("clientAddress")
        server = req.get("serverAddress")
        ident = req.get(id_key)
        keep = []
        for e in table:
            match = ((ident is None or e[id_key] == ident)
                     and (client is None or _obj(client) == e["clientAddress"])
                     and (server is None or _obj(server) == e["serverAddress"]))
            if not match:
                keep.append(e)
        table[:] = keep
        return result_cmd(0)   # deleting twice is fine (SPINE-TS-SUBS-02)
