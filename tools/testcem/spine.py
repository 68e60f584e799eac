"""SPINE for the test CEM (CPython, independent of the firmware's lib/).

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

from . import dialect
from .shipmsg import ShipError, ShipMessage

__all__ = [
    "SPEC_VERSION", "SpineError", "SpineResultError", "Result", "Datagram", "SpineCem",
    "RemoteDevice", "RemoteEntity", "RemoteFeature", "UseCase", "LocalFeature",
    "build_datagram", "build_cmd", "result_cmd", "parse_datagram", "parse_detailed_discovery",
    "parse_use_cases", "parse_feature_spec", "format_address", "feature_address", "selectors_name",
    "elements_name", "CEM_USE_CASES",
    "E_OK", "E_GENERAL", "E_TIMEOUT", "E_OVERLOAD", "E_DESTINATION_UNKNOWN", "E_DESTINATION_UNREACHABLE",
    "E_NOT_SUPPORTED", "E_REJECTED", "E_RFE_COMBINATION", "E_BINDING_NECESSARY",
]

SPEC_VERSION = "1.3.0"
CLASSIFIERS = ("read", "reply", "notify", "write", "call", "result")

E_OK = 0
E_GENERAL = 1
E_TIMEOUT = 2
E_OVERLOAD = 3
E_DESTINATION_UNKNOWN = 4
E_DESTINATION_UNREACHABLE = 5
E_NOT_SUPPORTED = 6
E_REJECTED = 7
E_RFE_COMBINATION = 8
E_BINDING_NECESSARY = 9

# CmdType members that are not the function's data element
_CMD_META = ("function", "filter", "manufacturerSpecificExtension", "lastUpdateAt")

NM = ((0,), 0)   # NodeManagement: entity [0], feature 0

NM_FUNCTIONS = (
    # (function, possibleOperations) as eebus-go's NodeManagement announces them
    ("nodeManagementDetailedDiscoveryData", {"read": {}}),
    ("nodeManagementUseCaseData", {"read": {}}),
    ("nodeManagementSubscriptionData", {"read": {}}),
    ("nodeManagementSubscriptionRequestCall", {}),
    ("nodeManagementSubscriptionDeleteCall", {}),
    ("nodeManagementBindingData", {"read": {}}),
    ("nodeManagementBindingRequestCall", {}),
    ("nodeManagementBindingDeleteCall", {}),
    ("nodeManagementDestinationListData", {"read": {}}),
)

# The CEM side of the use cases the gateway offers (actor, name, version, scenarios), on entity [1].
CEM_USE_CASES = (
    ("CEM", "evseCommissioningAndConfiguration", "1.0.1", [1, 2]),
    ("CEM", "evCommissioningAndConfiguration", "1.0.1", [1, 2, 3, 4, 5, 6, 7, 8]),
    ("CEM", "measurementOfElectricityDuringEvCharging", "1.0.1", [1, 2, 3]),
    ("CEM", "overloadProtectionByEvChargingCurrentCurtailment", "1.0.1", [1, 2, 3]),
    ("CEM", "optimizationOfSelfConsumptionDuringEvCharging", "1.0.1", [1, 2, 3]),
    ("EnergyGuard", "limitationOfPowerConsumption", "1.0.0", [1, 2, 3, 4]),
)


class SpineError(Exception):
    """A SPINE request failed: ``timeout`` (no answer in time), ``closed`` (connection gone),
    ``datagram`` (the answer, when there is one)."""

    def __init__(self, message, *, timeout=False, closed=False, datagram=None, request=None):
        super().__init__(message)
        self.timeout = timeout
        self.closed = closed
        self.datagram = datagram
        self.request = request


class SpineResultError(SpineError):
    """A request was answered with a ``resultData`` error (``error_number``, ``description``)."""

    def __init__(self, message, result, **kw):
        super().__init__(message, **kw)
        self.result = result
        self.error_number = result.error_number
        self.description = result.description


class Result:
    """``resultData`` of an answer: ``error_number`` (int, None when the answer was no result),
    ``description`` (str or None), ``datagram`` (the answer). ``ok`` = errorNumber 0."""

    __slots__ = ("error_number", "description", "datagram")

    def __init__(self, error_number, description=None, datagram=None):
        self.error_number = error_number
        self.description = description
        self.datagram = datagram

    @property
    def ok(self):
        return self.error_number == 0

    def __iter__(self):  # (errorNumber, description) unpacking
        return iter((self.error_number, self.description))

    def __eq__(self, other):
        if isinstance(other, Result):
            other = tuple(other)
        return tuple(self) == other

    def __repr__(self):
        return "Result(%r%s)" % (self.error_number, ", %r" % self.description if self.description else "")


# ---------------------------------------------------------------------------------------------------
# small helpers

def _obj(v):
    """Plain object that may have come through the dialect's [] ambiguity: [] / None -> {}."""
    if v is None or v == []:
        return {}
    return v


def _norm_ops(ops):
    """possibleOperations with every empty object as {} (e.g. {"read": {}, "write": {"partial": {}}})."""
    ops = _obj(ops)
    if not isinstance(ops, dict):
        return {}
    out = {}
    for k, v in ops.items():
        v = _obj(v)
        out[k] = {kk: _obj(vv) for kk, vv in v.items()} if isinstance(v, dict) else v
    return out


def _list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _entity(e):
    if e is None:
        return None
    if isinstance(e, int):
        return (e,)
    return tuple(int(x) for x in e)


def format_address(entity, feature=None):
    """((1, 1), 4) -> "1.1:4"; entity only -> "1.1"; None entity -> "?"."""
    e = "?" if entity is None else ".".join(str(x) for x in entity)
    return e if feature is None else "%s:%s" % (e, feature)


def _addr_str(addr):
    if not isinstance(addr, dict):
        return "-"
    return format_address(_entity(addr.get("entity")), addr.get("feature"))


def feature_address(device, entity, feature):
    """Plain feature address in schema order (device omitted when None)."""
    a = {}
    if device is not None:
        a["device"] = device
    a["entity"] = list(entity)
    a["feature"] = int(feature)
    return a


def parse_feature_spec(spec):
    """"1:4" -> ((1,), 4); "1.1:4" -> ((1, 1), 4); "1.1:LoadControl" -> ((1, 1), "LoadControl");
    "LoadControl" -> (None, "LoadControl"). ValueError for anything else."""
    s = str(spec).strip()
    if ":" in s:
        e, f = s.split(":", 1)
        try:
            entity = tuple(int(x) for x in e.split(".")) if e else None
        except ValueError:
            raise ValueError("bad entity in feature %r (use e.g. 1:4 or 1.1:4)" % spec) from None
        f = f.strip()
        if f.isdigit():
            return entity, int(f)
        if f.isidentifier():
            return entity, f
        raise ValueError("bad feature in %r (use e.g. 1:4, 1.1:4 or 1.1:LoadControl)" % spec)
    if s.isidentifier():
        return None, s
    raise ValueError("bad feature %r (use e.g. 1:4, 1.1:4 or LoadControl)" % spec)


def selectors_name(function):
    """loadControlLimitListData -> loadControlLimitListDataSelectors."""
    return function + "Selectors"


def elements_name(function):
    """loadControlLimitListData -> loadControlLimitDataElements; deviceDiagnosisStateData ->
    deviceDiagnosisStateDataElements."""
    if function.endswith("ListData"):
        return function[:-len("ListData")] + "DataElements"
    return function + "Elements"


def _now_utc():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------------------
# building

def build_cmd(function, data=None, *, partial=False, delete=None, selectors=None, elements=None,
              with_function=None):
    """One plain CmdType: ``{"function":..., "filter":[...], <function>: data}``.

    ``partial``: add ``filter:[{"cmdControl":{"partial":{}, ...selectors/elements}}]`` (partial write, or a
    partial read with ``selectors``/``elements``). ``delete``: dict with ``selectors`` and/or ``elements``
    -> a ``cmdControl.delete`` filter first (eebus-go: delete + partial in one write). Selectors/elements
    are plain dicts; their names are derived from the function (``selectors_name``/``elements_name``) unless
    the dict is already ``{"<name>Selectors": {...}}`` / ``{"<name>Elements": {...}}``.
    ``with_function``: force the ``function`` member (default: present whenever there is a filter)."""
    filters = []
    if delete is not None:
        f = {"cmdControl": {"delete": {}}}
        _add_restrictions(f, function, delete.get("selectors"), delete.get("elements"))
        filters.append(f)
    if partial or selectors is not None or elements is not None:
        f = {"cmdControl": {"partial": {}}}
        _add_restrictions(f, function, selectors, elements)
        filters.append(f)
    cmd = {}
    if with_function or (with_function is None and filters):
        cmd["function"] = function
    if filters:
        cmd["filter"] = filters
    cmd[function] = {} if data is None else data
    return cmd


def _add_restrictions(f, function, selectors, elements):
    for value, suffix, namer in ((selectors, "Selectors", selectors_name), (elements, "Elements", elements_name)):
        if value is None:
            continue
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)).endswith(suffix):
            f.update(value)
        else:
            f[namer(function)] = value


def result_cmd(error_number=0, description=None):
    rd = {"errorNumber": int(error_number)}
    if description:
        rd["description"] = description
    return {"resultData": rd}


def build_datagram(source, destination, classifier, cmd, msg_counter, *, reference=None, ack_request=None,
                   timestamp=None, spec_version=SPEC_VERSION):
    """Plain ``{"datagram": ...}`` in schema order. ``cmd``: one CmdType dict or a list of them."""
    if classifier not in CLASSIFIERS:
        raise ValueError("cmdClassifier must be one of %s" % (CLASSIFIERS,))
    h = {"specificationVersion": spec_version, "addressSource": source, "addressDestination": destination,
         "msgCounter": int(msg_counter)}
    if reference is not None:
        h["msgCounterReference"] = int(reference)
    h["cmdClassifier"] = classifier
    if ack_request is not None:
        h["ackRequest"] = bool(ack_request)
    if timestamp is not None:
        h["timestamp"] = timestamp
    cmds = cmd if isinstance(cmd, list) else [cmd]
    return {"datagram": {"header": h, "payload": {"cmd": cmds}}}


# ---------------------------------------------------------------------------------------------------
# parsing

class Datagram:
    """One SPINE datagram (plain form) with accessors. ``direction``: "send" / "recv" / None;
    ``t``: seconds since the SpineCem started (transcript)."""

    def __init__(self, body, direction=None, t=None):
        if not isinstance(body, dict):
            raise ValueError("a datagram is an object")
        self.body = body
        self.direction = direction
        self.t = t
        self.header = _obj(body.get("header"))
        if not isinstance(self.header, dict):
            raise ValueError("datagram header is not an object")
        self.payload = _obj(body.get("payload"))
        cmds = self.payload.get("cmd") if isinstance(self.payload, dict) else None
        self.cmds = [_obj(c) for c in cmds] if isinstance(cmds, list) else []

    # header
    @property
    def classifier(self):
        return self.header.get("cmdClassifier")

    @property
    def msg_counter(self):
        return self.header.get("msgCounter")

    @property
    def reference(self):
        return self.header.get("msgCounterReference")

    @property
    def ack_request(self):
        return self.header.get("ackRequest") is True

    @property
    def spec_version(self):
        return self.header.get("specificationVersion")

    @property
    def source(self):
        return _obj(self.header.get("addressSource"))

    @property
    def destination(self):
        return _obj(self.header.get("addressDestination"))

    @property
    def source_key(self):
        return _entity(self.source.get("entity")), self.source.get("feature")

    @property
    def destination_key(self):
        return _entity(self.destination.get("entity")), self.destination.get("feature")

    # payload (first cmd; every implementation sends exactly one)
    @property
    def cmd(self):
        return self.cmds[0] if self.cmds and isinstance(self.cmds[0], dict) else {}

    @property
    def function(self):
        """Name of the first cmd's data element (e.g. ``loadControlLimitListData``, ``resultData``)."""
        c = self.cmd
        for k in c:
            if k not in _CMD_META:
                return k
        return c.get("function")

    @property
    def data(self):
        """Plain data of the function (an empty object decoded as [] is returned as {})."""
        f = self.function
        return _obj(self.cmd.get(f)) if f else None

    @property
    def filters(self):
        return [_obj(f) for f in _list(self.cmd.get("filter"))]

    @property
    def partial(self):
        return any("partial" in _obj(f.get("cmdControl")) for f in self.filters if isinstance(f, dict))

    @property
    def delete(self):
        return any("delete" in _obj(f.get("cmdControl")) for f in self.filters if isinstance(f, dict))

    @property
    def result(self):
        """Result(errorNumber, description) of a resultData cmd, else None."""
        if self.function != "resultData":
            return None
        rd = _obj(self.cmd.get("resultData"))
        return Result(rd.get("errorNumber"), rd.get("description"), self)

    def to_plain(self):
        return {"datagram": self.body}

    def to_wire(self):
        """Dialect JSON text ``{"datagram":[...]}``."""
        return dialect.dumps_compact(dialect.message_to_eebus(self.to_plain()))

    def describe(self):
        """One line: direction, cmdClassifier, source -> destination, function(s), msgCounter/ref."""
        arrow = {"send": "->", "recv": "<-"}.get(self.direction, "  ")
        fns = []
        for c in self.cmds:
            if not isinstance(c, dict):
                fns.append("?")
                continue
            name = next((k for k in c if k not in _CMD_META), c.get("function", "?"))
            if name == "resultData":
                rd = _obj(c.get("resultData"))
                d = rd.get("description")
                name = "resultData(%s%s)" % (rd.get("errorNumber"), " %r" % d if d else "")
            fl = [_obj(f) for f in _list(c.get("filter"))]
            tags = []
            for f in fl:
                cc = _obj(f.get("cmdControl")) if isinstance(f, dict) else {}
                tags.extend(k for k in ("delete", "partial") if k in cc)
            if tags:
                name += "[%s]" % ",".join(tags)
            fns.append(name)
        cnt = "#%s" % self.msg_counter
        if self.reference is not None:
            cnt += " ref #%s" % self.reference
        if self.ack_request:
            cnt += " ack"
        return "%s %-6s %s -> %s %s %s" % (arrow, self.classifier, _addr_str(self.source),
                                           _addr_str(self.destination), " ".join(fns) or "(no cmd)", cnt)

    def __repr__(self):
        return "Datagram(%s)" % self.describe()


def parse_datagram(x, direction=None, t=None):
    """Datagram from: a ShipMessage (data), plain ``{"datagram": {...}}``, a plain body
    ``{"header":..,"payload":..}``, dialect ``{"datagram": [...]}``, a whole data message
    (``{"data": ...}``), or JSON text/bytes of any of these."""
    if isinstance(x, Datagram):
        return x
    if isinstance(x, ShipMessage):
        body = x.datagram
        if body is None:
            raise ValueError("not a SHIP data message with a datagram: %s" % x.describe()[:100])
        return Datagram(body, direction, t)
    if isinstance(x, (bytes, bytearray, str)):
        if isinstance(x, (bytes, bytearray)) and x[:1] == b"\x02":
            x = bytes(x[1:])
        x = dialect.loads(x)
    if not isinstance(x, dict):
        raise ValueError("not a datagram: %r" % (type(x),))
    if "data" in x and len(x) == 1:
        plain = dialect.message_to_plain(x) if isinstance(x["data"], list) else x
        x = {"datagram": _obj(plain["data"]).get("payload", {}).get("datagram")}
    if "datagram" in x and len(x) == 1:
        body = x["datagram"]
        if isinstance(body, list):
            body = dialect.to_plain(body)
        return Datagram(_obj(body), direction, t)
    return Datagram(x, direction, t)


# ---------------------------------------------------------------------------------------------------
# remote device model (what discovery tells about the peer)

class RemoteEntity:
    __slots__ = ("entity", "type", "description", "device")

    def __init__(self, entity, etype, description=None, device=None):
        self.entity = entity
        self.type = etype
        self.description = description
        self.device = device

    def as_dict(self):
        d = {"entity": list(self.entity), "type": self.type}
        if self.description:
            d["description"] = self.description
        return d

    def __repr__(self):
        return "RemoteEntity(%s %s)" % (format_address(self.entity), self.type)


class RemoteFeature:
    """A feature of the peer: ``entity`` (tuple), ``feature`` (int), ``address`` (full plain address,
    device filled from the header when the discovery omitted it), ``type``, ``role``, ``description``,
    ``functions``: {function: possibleOperations (plain, e.g. {"read": {}, "write": {"partial": {}}})}."""

    __slots__ = ("entity", "feature", "address", "type", "role", "description", "functions")

    def __init__(self, entity, feature, address, ftype, role, description=None, functions=None):
        self.entity = entity
        self.feature = feature
        self.address = address
        self.type = ftype
        self.role = role
        self.description = description
        self.functions = functions or {}

    @property
    def key(self):
        return self.entity, self.feature

    @property
    def spec(self):
        return format_address(self.entity, self.feature)

    def can_read(self, function):
        return "read" in self.functions.get(function, {})

    def can_write(self, function):
        return "write" in self.functions.get(function, {})

    def write_partial(self, function):
        return "partial" in _obj(self.functions.get(function, {}).get("write"))

    def read_partial(self, function):
        return "partial" in _obj(self.functions.get(function, {}).get("read"))

    def operations(self, function):
        """"r", "rw", "r(p)w(p)", "call" (no operations), or None when not announced."""
        if function not in self.functions:
            return None
        ops = self.functions[function]
        s = ""
        for op in ("read", "write"):
            if op in ops:
                s += op[0] + ("(p)" if "partial" in _obj(ops[op]) else "")
        return s or "-"

    def as_dict(self):
        d = {"address": self.address, "type": self.type, "role": self.role}
        if self.description:
            d["description"] = self.description
        if self.functions:
            d["functions"] = self.functions
        return d

    def __repr__(self):
        return "RemoteFeature(%s %s %s)" % (self.spec, self.type, self.role)


class UseCase:
    """One supported use case of the peer: ``actor``, ``name``, ``version``, ``available`` (bool or None),
    ``scenarios`` (list of int), ``sub_revision``, ``entity`` (tuple or None = device level), ``device``."""

    __slots__ = ("device", "entity", "actor", "name", "version", "available", "scenarios", "sub_revision")

    def __init__(self, device, entity, actor, name, version, available, scenarios, sub_revision):
        self.device = device
        self.entity = entity
        self.actor = actor
        self.name = name
        self.version = version
        self.available = available
        self.scenarios = scenarios
        self.sub_revision = sub_revision

    def as_dict(self):
        return {k: (list(getattr(self, k)) if k == "entity" and self.entity is not None else getattr(self, k))
                for k in self.__slots__}

    def __repr__(self):
        return "UseCase(%s %s %s %s %s)" % (format_address(self.entity) if self.entity else "-", self.actor,
                                            self.name, self.version, self.scenarios)


class RemoteDevice:
    """Summary of the peer's detailed discovery: ``device`` (address), ``device_type``,
    ``network_feature_set``, ``spec_versions`` (list), ``entities`` {entity tuple: RemoteEntity},
    ``features`` {(entity tuple, feature int): RemoteFeature}, ``use_cases`` (list of UseCase, from
    read_usecases / use-case notifies)."""

    def __init__(self, device=None):
        self.device = device
        self.device_type = None
        self.network_feature_set = None
        self.spec_versions = []
        self.entities = {}
        self.features = {}
        self.use_cases = []

    # -- building from discovery data
    def apply(self, data, *, partial=False, header_device=None):
        """Apply nodeManagementDetailedDiscoveryData (plain). Full data replaces everything; partial data
        (notify with a partial filter) adds/replaces the listed entities (``lastStateChange`` added or
        absent) with their features, or removes them (``removed``: the entity, its sub-entities and their
        features). Returns a list of (change, entity tuple) with change "added"/"removed"."""
        data = _obj(data)
        changes = []
        di = _obj(_obj(data.get("deviceInformation")).get("description"))
        dev = _obj(di.get("deviceAddress")).get("device") or self.device or header_device
        if not partial:
            self.entities = {}
            self.features = {}
        self.device = dev
        if di.get("deviceType") is not None:
            self.device_type = di.get("deviceType")
        if di.get("networkFeatureSet") is not None:
            self.network_feature_set = di.get("networkFeatureSet")
        svl = _obj(data.get("specificationVersionList")).get("specificationVersion")
        if svl is not None:
            self.spec_versions = _list(svl)
        for ei in _list(data.get("entityInformation")):
            d = _obj(_obj(ei).get("description"))
            ea = _obj(d.get("entityAddress"))
            ent = _entity(ea.get("entity"))
            if ent is None:
                continue
            if d.get("lastStateChange") == "removed":
                for k in [k for k in self.entities if k[:len(ent)] == ent]:
                    del self.entities[k]
                for k in [k for k in self.features if k[0][:len(ent)] == ent]:
                    del self.features[k]
                changes.append(("removed", ent))
                continue
            if partial:  # re-added: its features come again below
                for k in [k for k in self.features if k[0] == ent]:
                    del self.features[k]
            self.entities[ent] = RemoteEntity(ent, d.get("entityType"), d.get("description"),
                                              ea.get("device") or dev)
            changes.append(("added", ent))
        for fi in _list(data.get("featureInformation")):
            d = _obj(_obj(fi).get("description"))
            fa = _obj(d.get("featureAddress"))
            ent = _entity(fa.get("entity"))
            num = fa.get("feature")
            if ent is None or num is None:
                continue
            funcs = {}
            for sf in _list(d.get("supportedFunction")):
                sf = _obj(sf)
                if sf.get("function"):
                    funcs[sf["function"]] = _norm_ops(sf.get("possibleOperations"))
            addr = feature_address(fa.get("device") or dev, ent, num)
            self.features[(ent, num)] = RemoteFeature(ent, num, addr, d.get("featureType"), d.get("role"),
                                                      d.get("description"), funcs)
        return changes

    # -- queries
    def feature(self, key):
        """RemoteFeature by (entity, feature) / "1.1:4" / address dict; None if unknown."""
        if isinstance(key, RemoteFeature):
            return key
        if isinstance(key, dict):
            key = (_entity(key.get("entity")), key.get("feature"))
        elif isinstance(key, str):
            key = parse_feature_spec(key)
        ent, f = key
        ent = _entity(ent)
        if isinstance(f, str):
            return self.server(f, entity=ent)
        return self.features.get((ent, f))

    def find(self, ftype=None, role=None, entity=None, function=None):
        """Features matching every given criterion, in address order."""
        ent = _entity(entity)
        out = [f for f in self.features.values()
               if (ftype is None or f.type == ftype) and (role is None or f.role == role)
               and (ent is None or f.entity == ent) and (function is None or function in f.functions)]
        return sorted(out, key=lambda f: (f.entity, f.feature))

    def server(self, ftype, entity=None):
        """The server feature of ``ftype`` (on ``entity`` when given); LookupError when none or several."""
        found = self.find(ftype, "server" if ftype != "NodeManagement" else "special", entity)
        if len(found) != 1:
            raise LookupError("%d %s server features%s in the peer's discovery" % (
                len(found), ftype, " on entity %s" % format_address(_entity(entity)) if entity else ""))
        return found[0]

    def as_dict(self):
        return {
            "device": self.device, "device_type": self.device_type,
            "network_feature_set": self.network_feature_set, "spec_versions": list(self.spec_versions),
            "entities": [self.entities[k].as_dict() for k in sorted(self.entities)],
            "features": [self.features[k].as_dict() for k in sorted(self.features)],
            "use_cases": [u.as_dict() for u in self.use_cases],
        }

    def format(self):
        """Readable multi-line summary (entities, features with functions and operations, use cases)."""
        lines = ["device %s (%s, %s, SPINE %s)" % (self.device, self.device_type, self.network_feature_set,
                                                 "/".join(self.spec_versions) or "?")]
        ents = sorted(set(self.entities) | {k[0] for k in self.features})
        for ent in ents:
            e = self.entities.get(ent)
            lines.append("  entity %s %s%s" % (format_address(ent), e.type if e else "(not announced)",
                                               " \"%s\"" % e.description if e and e.description else ""))
            for f in self.find(entity=ent):
                lines.append("    %-6s %s %s%s" % (f.spec, f.type, f.role,
                                                   " \"%s\"" % f.description if f.description else ""))
                for fn in f.functions:
                    lines.append("             %s (%s)" % (fn, f.operations(fn)))
        if self.use_cases:
            lines.append("  use cases:")
            for u in self.use_cases:
                lines.append("    %s %s: %s %s scenarios %s%s%s" % (
                    format_address(u.entity) if u.entity else "-", u.actor, u.name, u.version,
                    ",".join(str(s) for s in u.scenarios), " " + u.sub_revision if u.sub_revision else "",
                    "" if u.available is not False else " (NOT available)"))
        return "\n".join(lines)

    def __repr__(self):
        return "RemoteDevice(%s, %d entities, %d features)" % (self.device, len(self.entities), len(self.features))


def parse_detailed_discovery(data, header_device=None):
    """nodeManagementDetailedDiscoveryData (plain) -> RemoteDevice."""
    rd = RemoteDevice()
    rd.apply(data, header_device=header_device)
    return rd


def parse_use_cases(data, device=None):
    """nodeManagementUseCaseData (plain) -> list of UseCase (flattened over actors)."""
    out = []
    for info in _list(_obj(data).get("useCaseInformation")):
        info = _obj(info)
        addr = _obj(info.get("address"))
        ent = _entity(addr.get("entity"))
        for s in _list(info.get("useCaseSupport")):
            s = _obj(s)
            out.append(UseCase(addr.get("device") or device, ent, info.get("actor"), s.get("useCaseName"),
                               s.get("useCaseVersion"), s.get("useCaseAvailable"),
                               _list(s.get("scenarioSupport")), s.get("useCaseDocumentSubRevision")))
    return out


# ---------------------------------------------------------------------------------------------------
# our own device

class LocalFeature:
    """A feature of the test CEM: ``functions`` {name: possibleOperations}, ``data`` {name: plain data or
    callable() -> data} answering reads."""

    def __init__(self, entity, feature, ftype, role, functions=(), description=None):
        self.entity = _entity(entity)
        self.feature = feature
        self.type = ftype
        self.role = role
        self.functions = dict(functions)
        self.description = description
        self.data = {}

    @property
    def key(self):
        return self.entity, self.feature

    @property
    def spec(self):
        return format_address(self.entity, self.feature)

    def __repr__(self):
        return "LocalFeature(%s %s %s)" % (self.spec, self.type, self.role)


def _default_features():
    e1 = (1,)
    return [
        LocalFeature((0,), 0, "NodeManagement", "special", NM_FUNCTIONS),
        LocalFeature((0,), 1, "DeviceClassification", "server",
                     [("deviceClassificationManufacturerData", {"read": {}})]),
        LocalFeature(e1, 1, "DeviceDiagnosis", "client", description="DeviceDiagnosis Client"),
        LocalFeature(e1, 2, "LoadControl", "client", description="LoadControl Client"),
        LocalFeature(e1, 3, "DeviceConfiguration", "client", description="DeviceConfiguration Client"),
        LocalFeature(e1, 4, "DeviceDiagnosis", "server",
                     [("deviceDiagnosisStateData", {"read": {}}), ("deviceDiagnosisHeartbeatData", {"read": {}})],
                     description="DeviceDiagnosis Server"),
        LocalFeature(e1, 5, "ElectricalConnection", "client", description="ElectricalConnection Client"),
        LocalFeature(e1, 6, "Measurement", "client", description="Measurement Client"),
        LocalFeature(e1, 7, "DeviceClassification", "client", description="DeviceClassification Client"),
        LocalFeature(e1, 8, "Identification", "client", description="Identification Client"),
    ]


# ---------------------------------------------------------------------------------------------------

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
                 use_cases=CEM_USE_CASES, start=True, heartbeat_timeout="PT4S", spec_version=SPEC_VERSION):
        self.peer = peer
        if device is None:
            ski = getattr(getattr(peer, "identity", None), "ski", None) or "00000000"
            device = "d:_i:TestCEM_%s" % ski[:8]
        self.device = device
        self.device_type = device_type
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
            "entityInformation": [{"description": {"entityAddress": {"device": self.device, "entity": list(e)},
                                                   "entityType": "DeviceInformation" if e == (0,) else "CEM"}}
                                  for e in ents],
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
