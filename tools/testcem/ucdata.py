"""The CEM's copy of the station's feature data, and the value helpers the use cases share.

``RemoteData`` keeps what replies and notifies told us, per (entity, feature type) and function, merging
partial notifies by the SPINE key fields (spine.md 3.2) the way spine-go updates its remote feature cache.
It also tracks the remote device summary (``remote``, a ``spine.RemoteDevice``) when fed NodeManagement
datagrams, and the arrival time of each DeviceDiagnosis heartbeat.

Helpers mirror the eebus-go/spine-go conventions the use-case logic depends on:

- ``matches(item, filter)``: spine-go's ``searchFilterInItem`` - every field given in the filter must be
  present in the item and equal;
- ``scaled(v)`` / ``scaled_number(x)``: ScaledNumber <-> float, ``scaled_number`` picks the representation
  of eebus-go's ``NewScaledNumberType`` (shortest decimal form, at most 4 decimals, truncated);
- ``parse_duration`` / ``format_duration``: ISO 8601 durations; ``format_duration`` writes what eebus-go
  writes for a Go ``time.Duration`` (``PT1H2M3S``, ``PT168H`` for 7 days, ``P0D`` for zero).

Nothing here imports the firmware's lib/.
"""

import decimal
import math
import re
import time

from .spinemodel import RemoteDevice, parse_use_cases
from .spinemsg import _entity as entity_tuple, _list as as_list  # noqa: F401  (re-exported for usecases)

__all__ = [
    "RemoteData", "KEYS", "matches", "scaled", "scaled_number", "parse_duration", "format_duration",
    "fmt_num", "fmt_duration", "obj", "as_list", "entity_tuple", "merge_list",
]


def obj(v):
    """An object that may have come through the dialect's [] ambiguity: [] / None -> {}."""
    if v is None or v == []:
        return {}
    return v if isinstance(v, dict) else {}


# ---------------------------------------------------------------------------------------------------
# values

def scaled(v):
    """ScaledNumber {number, scale} -> float (None for anything else). scale defaults to 0."""
    v = obj(v)
    n = v.get("number")
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return None
    s = v.get("scale", 0)
    if not isinstance(s, int) or isinstance(s, bool):
        s = 0
    if not -100 <= s <= 100:   # 10 ** (10 ** 12) would hang the CEM; no real value needs such a scale
        return None
    # division keeps 105 * 10^-1 at 10.5 exactly instead of 10.500000000000002
    return float(n) / 10 ** -s if s < 0 else float(n * 10 ** s)


def scaled_number(x):
    """float -> {"number", "scale"} as eebus-go's NewScaledNumberType: the shortest decimal text of the
    value (Go's strconv 'f', -1 = Python repr without exponent), at most 4 decimals, truncated."""
    text = format(decimal.Decimal(repr(float(x))), "f")
    decimals = len(text) - text.index(".") - 1 if "." in text else 0
    if text.endswith(".0"):
        decimals = 0
    decimals = min(decimals, 4)
    number = int(math.trunc(float(x) * math.pow(10, decimals)))
    return {"number": number, "scale": -decimals if number != 0 else 0}


_DUR = re.compile(r"^(-)?P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
                  r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_DUR_FACTORS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text):
    """ISO 8601 duration -> seconds (float); None when it is not one. Years/months count 365/30 days."""
    if not isinstance(text, str):
        return None
    m = _DUR.match(text.strip())
    if not m or text.strip() in ("P", "PT", "-P") or text.strip().endswith("T"):
        return None
    total = 0.0
    for g, f in zip(m.groups()[1:], _DUR_FACTORS):
        if g:
            total += float(g) * f
    return -total if m.group(1) else total


def format_duration(seconds):
    """Seconds -> ISO 8601 as eebus-go writes a Go time.Duration (rickb777/date period.NewOf): hours,
    minutes, seconds below 3277 h (so 7 days = ``PT168H``), zero = ``P0D``."""
    s = int(round(seconds))
    if s == 0:
        return "P0D"
    sign = "-" if s < 0 else ""
    s = abs(s)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    out = sign + "PT"
    if h:
        out += "%dH" % h
    if m:
        out += "%dM" % m
    if sec:
        out += "%dS" % sec
    return out


def fmt_num(v, digits=3):
    """10.0 -> "10", 10.5 -> "10.5", None -> "?"."""
    if v is None:
        return "?"
    text = ("%.*f" % (digits, v)).rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_duration(seconds):
    """7200 -> "2h", 3723 -> "1h2m3s", 90 -> "1m30s"; None -> "?"."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s == 0:
        return "0s"
    sign = "-" if s < 0 else ""
    s = abs(s)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [("%dd" % d) if d else "", ("%dh" % h) if h else "", ("%dm" % m) if m else "", ("%ds" % s) if s else ""]
    return sign + "".join(parts)


def matches(item, flt):
    """spine-go's filter search: every field of ``flt`` is present in ``item`` with an equal value."""
    for k, v in flt.items():
        if v is None:
            continue
        if k not in item or item[k] != v:
            return False
    return True


# ---------------------------------------------------------------------------------------------------
# the data store

# list function -> (member holding the entries, key fields) (spine-go eebus:"key" tags)
KEYS = {
    "loadControlLimitListData": ("loadControlLimitData", ("limitId",)),
    "loadControlLimitDescriptionListData": ("loadControlLimitDescriptionData", ("limitId",)),
    "loadControlLimitConstraintsListData": ("loadControlLimitConstraintsData", ("limitId",)),
    "deviceConfigurationKeyValueListData": ("deviceConfigurationKeyValueData", ("keyId",)),
    "deviceConfigurationKeyValueDescriptionListData": ("deviceConfigurationKeyValueDescriptionData", ("keyId",)),
    "deviceConfigurationKeyValueConstraintsListData": ("deviceConfigurationKeyValueConstraintsData", ("keyId",)),
    "measurementListData": ("measurementData", ("measurementId", "valueType")),
    "measurementDescriptionListData": ("measurementDescriptionData", ("measurementId",)),
    "measurementConstraintsListData": ("measurementConstraintsData", ("measurementId",)),
    "electricalConnectionDescriptionListData": ("electricalConnectionDescriptionData", ("electricalConnectionId",)),
    "electricalConnectionParameterDescriptionListData": ("electricalConnectionParameterDescriptionData",
                                                         ("electricalConnectionId", "parameterId")),
    "electricalConnectionPermittedValueSetListData": ("electricalConnectionPermittedValueSetData",
                                                      ("electricalConnectionId", "parameterId")),
    "electricalConnectionCharacteristicListData": ("electricalConnectionCharacteristicData",
                                                   ("electricalConnectionId", "parameterId", "characteristicId")),
    "identificationListData": ("identificationData", ("identificationId",)),
    "timeSeriesListData": ("timeSeriesData", ("timeSeriesId",)),
    "timeSeriesDescriptionListData": ("timeSeriesDescriptionData", ("timeSeriesId",)),
    "timeSeriesConstraintsListData": ("timeSeriesConstraintsData", ("timeSeriesId",)),
    "billListData": ("billData", ("billId",)),
    "billDescriptionListData": ("billDescriptionData", ("billId",)),
    "billConstraintsListData": ("billConstraintsData", ("billId",)),
}

_NM_FUNCTIONS = ("nodeManagementDetailedDiscoveryData", "nodeManagementUseCaseData")


def merge_list(old, new, keys):
    """Partial update of a list of entries: entries with the same key fields get the new fields, others
    are appended (order kept)."""
    out = [dict(e) for e in old]
    for item in new:
        item = obj(item)
        k = tuple(item.get(f) for f in keys)
        for e in out:
            if tuple(e.get(f) for f in keys) == k:
                e.update(item)
                break
        else:
            out.append(dict(item))
    return out


class RemoteData:
    """The station's data as the CEM knows it.

    ``remote``: RemoteDevice (discovery + use cases); ``values`` {(entity tuple, feature type): {function:
    plain data}}; ``updated`` {(entity, type, function): monotonic time of the last update};
    ``heartbeats`` {entity: (monotonic arrival, heartbeat data)}; ``changes``: entity changes seen by
    ``feed`` as (change, entity tuple) with change "added"/"removed"."""

    def __init__(self, remote=None, clock=time.monotonic):
        self.remote = remote
        self.values = {}
        self.updated = {}
        self.heartbeats = {}
        self.clock = clock

    # -- writing
    def put(self, entity, ftype, function, data, partial=False):
        """Store function data (plain); ``partial`` merges list entries by key. Returns the stored data."""
        entity = entity_tuple(entity)
        slot = self.values.setdefault((entity, ftype), {})
        data = obj(data) if not isinstance(data, list) else data
        key = KEYS.get(function)
        if partial and key is not None and function in slot:
            member, fields = key
            merged = dict(slot[function])
            merged[member] = merge_list(as_list(obj(slot[function]).get(member)), as_list(data.get(member)),
                                         fields)
            data = merged
        elif partial and function in slot and isinstance(data, dict) and isinstance(slot[function], dict):
            merged = dict(slot[function])
            merged.update(data)
            data = merged
        slot[function] = data
        self.updated[(entity, ftype, function)] = self.clock()
        if function == "deviceDiagnosisHeartbeatData":
            self.heartbeats[entity] = (self.clock(), data)
        return data

    def drop_entity(self, entity):
        """Forget everything about an entity and its sub-entities (EV unplugged)."""
        entity = entity_tuple(entity)
        for k in [k for k in self.values if k[0][:len(entity)] == entity]:
            del self.values[k]
        for k in [k for k in self.updated if k[0][:len(entity)] == entity]:
            del self.updated[k]
        for k in [k for k in self.heartbeats if k[:len(entity)] == entity]:
            del self.heartbeats[k]

    def feature_type(self, entity, feature):
        if self.remote is None:
            return None
        f = self.remote.features.get((entity_tuple(entity), feature))
        return f.type if f is not None else None

    def feed(self, dg, nodemanagement=True):
        """Apply a received Datagram (reply or notify). NodeManagement discovery/use-case data updates
        ``remote`` (unless ``nodemanagement`` is False: someone else, e.g. SpineCem, already did);
        feature data goes to the store under the source feature's type. Returns a list of
        ("data", entity, type, function) and ("added"/"removed", entity, None, None) changes."""
        if dg.classifier not in ("reply", "notify"):
            return []
        fn = dg.function
        if fn in _NM_FUNCTIONS:
            if not nodemanagement:
                return []
            if fn == "nodeManagementDetailedDiscoveryData":
                if self.remote is None:
                    self.remote = RemoteDevice()
                partial = dg.partial and dg.classifier == "notify"
                before = set(self.remote.entities)
                changes = self.remote.apply(dg.data, partial=partial, header_device=dg.source.get("device"))
                out = []
                if not partial:   # a full notify (Porsche): entities absent now are gone
                    after = set(self.remote.entities)
                    changes = [("added", e) for e in sorted(after - before)] + \
                              [("removed", e) for e in sorted(before - after)]
                for change, ent in changes:
                    if change == "removed":
                        self.drop_entity(ent)
                    out.append((change, ent, None, None))
                return out
            if self.remote is None:
                self.remote = RemoteDevice(dg.source.get("device"))
            self.remote.use_cases = parse_use_cases(dg.data, self.remote.device or dg.source.get("device"))
            return [("usecases", None, None, None)]
        if fn in (None, "resultData"):
            return []
        ent, feat = dg.source_key
        ftype = self.feature_type(ent, feat)
        if ftype is None:
            return []
        self.put(ent, ftype, fn, dg.data, partial=dg.partial)
        return [("data", ent, ftype, fn)]

    # -- reading
    def get(self, entity, ftype, function):
        """Stored function data (plain) or None."""
        return self.values.get((entity_tuple(entity), ftype), {}).get(function)

    def entries(self, entity, ftype, function, flt=None):
        """The entries of a list function (e.g. loadControlLimitData of loadControlLimitListData) that
        match ``flt``; [] when nothing is stored."""
        data = self.get(entity, ftype, function)
        if data is None:
            return []
        member = KEYS[function][0] if function in KEYS else None
        items = [obj(i) for i in as_list(obj(data).get(member))] if member else []
        if flt:
            items = [i for i in items if matches(i, flt)]
        return items

    def has(self, entity, ftype, function):
        return self.get(entity, ftype, function) is not None

    def server(self, entity, ftype):
        """The station's server feature of that type on the entity (RemoteFeature) or None (also None when
        several exist - eebus-go cannot use such an entity either)."""
        if self.remote is None or entity is None:
            return None
        found = self.remote.find(ftype, "server", entity_tuple(entity))
        return found[0] if len(found) == 1 else None
