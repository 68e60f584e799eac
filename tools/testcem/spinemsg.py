"""SPINE datagrams for the test CEM: result codes, address helpers, ``build_cmd`` / ``build_datagram``
(plain JSON, dicts in schema order so that the wire bytes match what spine-go emits), ``Datagram`` and
``parse_datagram``. No I/O; nothing from the firmware's lib/.
"""

import time

from . import dialect
from .shipmsg import ShipMessage

__all__ = [
    "SPEC_VERSION", "CLASSIFIERS", "SpineError", "SpineResultError", "Result", "Datagram", "build_datagram",
    "build_cmd", "result_cmd", "parse_datagram", "parse_feature_spec", "format_address", "feature_address",
    "selectors_name", "elements_name", "NM", "NM_FUNCTIONS", "CEM_USE_CASES",
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
