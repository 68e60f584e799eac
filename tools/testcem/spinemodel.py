"""The SPINE device model of the test CEM: the remote device as discovered (``RemoteDevice`` with its
entities, features and their operations, use cases; ``parse_detailed_discovery``, ``parse_use_cases``)
and our own features (``LocalFeature``, the CEM device's default feature set). Nothing from lib/.
"""

from .spinemsg import (NM_FUNCTIONS, _entity, _list, _norm_ops, _obj, feature_address, format_address,
                       parse_feature_spec)

__all__ = ["RemoteDevice", "RemoteEntity", "RemoteFeature", "UseCase", "LocalFeature",
           "parse_detailed_discovery", "parse_use_cases"]


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


class _Feature:
    """A feature's address: ``key`` (entity, feature) and ``spec`` ("1.1:4")."""

    @property
    def key(self):
        return self.entity, self.feature

    @property
    def spec(self):
        return format_address(self.entity, self.feature)


class RemoteFeature(_Feature):
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

class LocalFeature(_Feature):
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
