"""The CEM side of the e-mobility and power use cases, as eebus-go v0.7 implements it (spine.md 9, 11, 12).

One class per use case. Each is built on a ``RemoteData`` (ucdata.py: the station's discovery, use cases
and feature data as received) and, for the parts that talk to the station, a ``CemUseCases`` manager
(ucrun.py) that owns the SpineCem. The accessors compute what eebus-go's API returns from the data alone,
so the tests feed them captured and synthetic replies without any connection:

    data = RemoteData(remote)                 # RemoteDevice with use cases
    data.put((1, 1), "Measurement", "measurementListData", {...})
    EVCEM(data).current_per_phase()           # -> [10.5, 10.5, 10.5] or None when eebus-go has no data

Conventions: an accessor returns None where eebus-go returns ErrDataNotAvailable / ErrNoCompatibleEntity;
``entity`` defaults to the entity the use case is available on (else the first entity of a compatible
type). ``available()`` follows eebus-go's ``useCaseDataUpdate`` exactly (actor, name, useCaseAvailable,
entity address with the EV [n] -> [n,1] fix-up, exact server-feature set per scenario) and in addition asks
that every mandatory scenario is among the available ones (eebus-go leaves that to the application).
``check()`` explains in words why a use case is not available - that is what an installer needs.

Writers build their datagram data with pure ``*_write`` methods (tests compare them with the captures) and
send it with the async ``write_*`` methods through the manager. Where this test CEM deliberately does more
than eebus-go v0.7 (reads it never sends: LPC nominal max characteristic, IncentiveTable constraints,
EVSOC's measurement subscription, EVCS which eebus-go lacks) the docstring says so.
"""

import datetime
import functools
import inspect

from .ucdata import (as_list, entity_tuple, fmt_duration, fmt_num, format_duration, matches, merge_list, obj,
                     parse_duration, scaled, scaled_number)

__all__ = [
    "PHASES", "UseCaseBase", "EVSECC", "EVCC", "EVCEM", "OPEV", "OSCEV", "EVSOC", "CEVC", "LPC", "MPC",
    "EVCS", "ALL_USE_CASES", "our_use_case_table", "WriteError",
]

PHASES = ("a", "b", "c")


class WriteError(Exception):
    """A writer cannot build its datagram (the reason eebus-go would return an error, in words)."""


def _fmt_phases(values, unit):
    return "%s %s" % ("/".join(fmt_num(v) for v in values), unit)


def _parse_time(text):
    """SPINE absolute time -> aware datetime (UTC assumed without zone); None otherwise."""
    if not isinstance(text, str) or text.startswith(("P", "-P")):
        return None
    t = text.strip().replace("Z", "+00:00")
    try:
        d = datetime.datetime.fromisoformat(t)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)


def _relative_seconds(text, now=None):
    """A SPINE time that is either a relative duration (``PT1H``) or an absolute time: seconds from now."""
    d = parse_duration(text)
    if d is not None:
        return d
    t = _parse_time(text)
    if t is None:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (t - now).total_seconds()


_NOT_GUARDED = ("start", "check", "entity", "available", "entity_scenarios")
_DATA_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


def _guard(fn):
    """Odd station data (a list where an object belongs, a string for a number) must not crash the test
    CEM: eebus-go would not even decode such a message. The accessor then answers None (a writer raises
    WriteError) and the reason lands in ``warnings`` for the installer."""
    writer = fn.__name__.endswith("_write")

    @functools.wraps(fn)
    def guarded(self, *args, **kw):
        try:
            return fn(self, *args, **kw)
        except _DATA_ERRORS as e:
            text = "%s %s: malformed station data (%s: %s)" % (self.label, fn.__name__, type(e).__name__, e)
            self._warn(text)
            if writer:
                raise WriteError(text) from None
            return [] if fn.__name__ == "summaries" else None
    return guarded


# ---------------------------------------------------------------------------------------------------

class UseCaseBase:
    key = ""                 # attribute name on the manager
    label = ""               # printed prefix
    name = ""                # useCaseName
    version = "1.0.1"
    sub_revision = "release"
    our_actor = "CEM"
    remote_actors = ("EV",)
    entity_types = ("EV",)
    # (scenario, server feature types required, mandatory) as in eebus-go's NewXxx
    scenarios = ()
    # description function -> data function eebus-go re-reads when the description changes
    react = {}

    def __init__(self, data, mgr=None):
        self.data = data
        self.mgr = mgr
        self.warnings = []

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name, fn in list(vars(cls).items()):
            if (not name.startswith("_") and name not in _NOT_GUARDED and inspect.isfunction(fn)
                    and not inspect.iscoroutinefunction(fn)):
                setattr(cls, name, _guard(fn))

    def __repr__(self):
        return "<%s>" % self.label

    @property
    def our_scenarios(self):
        return [s for s, _f, _m in self.scenarios]

    @property
    def mandatory(self):
        return [s for s, _f, m in self.scenarios if m]

    def _warn(self, text):
        if text not in self.warnings:
            self.warnings.append(text)

    # ------------------------------------------------------------------ availability (eebus-go)

    def entity_scenarios(self):
        """{entity: [available scenarios]} for every compatible entity that announced the use case, as
        eebus-go's useCaseDataUpdate computes it."""
        remote = self.data.remote
        out = {}
        if remote is None:
            return out
        for uc in remote.use_cases:
            if uc.actor not in self.remote_actors or uc.name != self.name:
                continue
            if uc.scenarios is None or uc.available is False:
                continue
            ents = []
            if uc.entity:
                e = tuple(uc.entity)
                if uc.actor == "EV" and len(e) == 1:   # PMCP reports EV use cases on the EVSE address
                    e = e + (1,)
                if e in remote.entities:
                    ents = [e]
            if not ents:
                ents = sorted(remote.entities)
            for ent in ents:
                if remote.entities[ent].type not in self.entity_types:
                    continue
                have = [f.type for f in remote.find(role="server", entity=ent)]
                avail = []
                for s, needed, _m in self.scenarios:
                    if s not in uc.scenarios:
                        continue
                    found = sorted(t for t in have if t in needed)
                    if found == sorted(needed):
                        avail.append(s)
                out[ent] = avail
        return out

    def available(self):
        """The entity (tuple) the use case is usable on, or None: announced, compatible, and every
        mandatory scenario available (at least one scenario when none is mandatory)."""
        for ent, scen in sorted(self.entity_scenarios().items()):
            if scen and all(m in scen for m in self.mandatory):
                return ent
        return None

    def entity(self, entity=None):
        if entity is not None:
            return entity_tuple(entity)
        ent = self.available()
        if ent is not None:
            return ent
        remote = self.data.remote
        if remote is None:
            return None
        for e in sorted(remote.entities):
            if remote.entities[e].type in self.entity_types:
                return e
        return None

    def check(self):
        """Lines explaining the availability on the station (for people, not for code)."""
        remote = self.data.remote
        label = "%s (%s %s)" % (self.label, self.name, self.version)
        if remote is None:
            return ["%s: no discovery yet" % label]
        entries = [u for u in remote.use_cases if u.name == self.name]
        if not entries:
            return ["%s: not announced by the station" % label]
        lines = []
        for u in entries:
            where = ".".join(str(x) for x in u.entity) if u.entity else "device"
            if u.actor not in self.remote_actors:
                lines.append("%s: announced on %s with actor %s (expected %s)" % (
                    label, where, u.actor, "/".join(self.remote_actors)))
            elif u.available is False:
                lines.append("%s: announced on %s with useCaseAvailable false - eebus-go skips it" % (label, where))
            elif not u.scenarios:
                lines.append("%s: announced on %s without scenarios" % (label, where))
        scen = self.entity_scenarios()
        for ent, avail in sorted(scen.items()):
            where = ".".join(str(x) for x in ent)
            announced = set()
            for u in entries:
                announced.update(u.scenarios or [])
            missing = []
            have = [f.type for f in remote.find(role="server", entity=ent)]
            for s, needed, m in self.scenarios:
                if s in avail:
                    continue
                if s not in announced:
                    if m:
                        missing.append("mandatory scenario %d not announced" % s)
                    continue
                counts = {t: have.count(t) for t in needed}
                gone = [t for t in needed if counts[t] == 0]
                dup = [t for t in needed if counts[t] > 1]
                why = []
                if gone:
                    why.append("no %s server" % "/".join(gone))
                if dup:
                    why.append("several %s servers" % "/".join(dup))
                missing.append("scenario %d: %s on %s" % (s, ", ".join(why), where))
            ok = self.available() == ent
            lines.append("%s on %s: %s, scenarios %s%s" % (
                label, where, "available" if ok else "NOT available", ",".join(map(str, avail)) or "none",
                (" - " + "; ".join(missing)) if missing else ""))
        if not scen and not lines:
            lines.append("%s: announced, but on no entity of type %s" % (label, "/".join(self.entity_types)))
        return lines

    # ------------------------------------------------------------------ the CEM's reaction (async)

    async def start(self, entity=None):
        """Subscribe, bind and read as eebus-go's CEM does when the entity appears."""
        raise NotImplementedError

    def summaries(self, entity=None):
        """[(kind, text)] describing the current data; the manager prints those that changed."""
        return []

    # ------------------------------------------------------------------ shared data access

    def _server(self, entity, ftype):
        return self.data.server(entity, ftype)

    def _kv_data_for(self, ent, flt):
        """GetKeyValueDataForFilter: first matching key description -> its data entry."""
        descs = self.data.entries(ent, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData", flt)
        if not descs:
            return None
        kid = descs[0].get("keyId")
        for item in self.data.entries(ent, "DeviceConfiguration", "deviceConfigurationKeyValueListData"):
            if item.get("keyId") is not None and item.get("keyId") == kid:
                return item
        return None

    def _param_descs(self, ent, flt):
        return self.data.entries(ent, "ElectricalConnection", "electricalConnectionParameterDescriptionListData", flt)

    def _permitted_sets(self, ent, flt):
        return self.data.entries(ent, "ElectricalConnection", "electricalConnectionPermittedValueSetListData", flt)

    def _permitted_min_max_default(self, ent, parameter_id):
        """GetPermittedValueDataForFilter: exactly one set entry with an electricalConnectionId ->
        (min, max, default) (0 where absent); None otherwise."""
        sets = self._permitted_sets(ent, {"parameterId": parameter_id})
        if len(sets) != 1 or sets[0].get("electricalConnectionId") is None or "permittedValueSet" not in sets[0]:
            return None
        mn = mx = df = 0.0
        for s in as_list(sets[0].get("permittedValueSet")):
            s = obj(s)
            vals = as_list(s.get("value"))
            if vals:
                df = scaled(vals[0]) or 0.0
            for r in as_list(s.get("range")):
                r = obj(r)
                if "min" in r:
                    mn = scaled(r["min"]) or 0.0
                if "max" in r:
                    mx = scaled(r["max"]) or 0.0
        return mn, mx, df

    def _adjust_to_permitted(self, ent, value, parameter_id):
        """AdjustValueToBeWithinPermittedValuesForParameterId (spine.md 12.10 step 5)."""
        sets = self._permitted_sets(ent, {"parameterId": parameter_id})
        if len(sets) != 1:
            return value
        default = mn = mx = None
        for s in as_list(sets[0].get("permittedValueSet")):
            s = obj(s)
            vals = as_list(s.get("value"))
            if vals:
                default = scaled(vals[0])
            rng = as_list(s.get("range"))
            if rng:
                r = obj(rng[0])
                mn = scaled(r["min"]) if "min" in r else 0.0
                mx = scaled(r["max"]) if "max" in r else 0.0
        if mn is not None or mx is not None:   # has a range
            mn = mn or 0.0
            mx = mx or 0.0
            if default is not None and value < mn:
                value = default
            if value > mx:
                value = mx
        return value

    def _measurement_data(self, ent, flt):
        """Measurement GetDataForFilter: data entries of every matching description, description order."""
        descs = self.data.entries(ent, "Measurement", "measurementDescriptionListData", flt)
        if not descs:
            return None
        if not self.data.has(ent, "Measurement", "measurementListData"):
            return None
        items = self.data.entries(ent, "Measurement", "measurementListData")
        out = []
        for d in descs:
            out.extend(i for i in items if matches(i, {"measurementId": d.get("measurementId")}))
        return out

    def _first_measurement(self, ent, flt):
        data = self._measurement_data(ent, flt)
        if not data:
            return None
        return scaled(data[0].get("value"))

    def _manufacturer(self, ent):
        """internal.ManufacturerData: the manufacturer data object (every field optional) or None."""
        d = self.data.get(ent, "DeviceClassification", "deviceClassificationManufacturerData")
        return None if d is None else dict(obj(d))

    def _state(self, ent):
        d = self.data.get(ent, "DeviceDiagnosis", "deviceDiagnosisStateData")
        return None if d is None else obj(d)

    def _write_form(self, ent, ftype, function, member, key, entries):
        """(data, partial): partial when the station announces partial writes, else eebus-go merges the
        change into its copy of the station's list and writes all of it."""
        f = self._server(ent, ftype)
        if f is None or (f.can_write(function) and f.write_partial(function)):
            return {member: entries}, True
        return {member: merge_list(self.data.entries(ent, ftype, function), entries, (key,))}, False

    async def _sub_read(self, ent, ftype, functions, bind=False):
        """Subscribe (and bind) the station's server feature of that type, then read the functions in
        order (the manager skips functions the feature does not announce)."""
        if self._server(ent, ftype) is None:
            return
        await self.mgr.subscribe(ent, ftype)
        if bind:
            await self.mgr.bind(ent, ftype)
        for fn in functions:
            if isinstance(fn, tuple):
                await self.mgr.read(ent, ftype, fn[0], selectors=fn[1])
            else:
                await self.mgr.read(ent, ftype, fn)

    async def _ensure_read(self, ent, ftype, functions):
        """Read what another use case normally reads when it is not there yet (our robustness, not
        eebus-go's)."""
        if self._server(ent, ftype) is None:
            return
        for fn in functions:
            if not self.data.has(ent, ftype, fn):
                await self.mgr.read(ent, ftype, fn)

    def _manufacturer_text(self, m):
        if not m:
            return "manufacturer data empty"
        parts = [m.get(k) for k in ("brandName", "vendorName", "deviceName", "deviceCode") if m.get(k)]
        seen = []
        for p in parts:
            if p not in seen:
                seen.append(p)
        extra = []
        if m.get("serialNumber"):
            extra.append("serial %s" % m["serialNumber"])
        if m.get("softwareRevision"):
            extra.append("software %s" % m["softwareRevision"])
        return "manufacturer %s%s" % (" ".join(seen) or "-", (" (%s)" % ", ".join(extra)) if extra else "")


# ---------------------------------------------------------------------------------------------------
# EVSECC

class EVSECC(UseCaseBase):
    """evseCommissioningAndConfiguration: the EVSE's manufacturer data and operating state."""
    key, label, name = "evsecc", "EVSECC", "evseCommissioningAndConfiguration"
    remote_actors = ("EVSE", "EV")           # eebus-go accepts EV too (Porsche PMCC)
    entity_types = ("EVSE",)
    scenarios = ((1, ("DeviceClassification",), False), (2, ("DeviceDiagnosis",), True))

    async def start(self, entity=None):
        ent = self.entity(entity)
        # eebus-go v0.7 reads both once, without subscribing
        if self._server(ent, "DeviceClassification"):
            await self.mgr.read(ent, "DeviceClassification", "deviceClassificationManufacturerData")
        if self._server(ent, "DeviceDiagnosis"):
            await self.mgr.read(ent, "DeviceDiagnosis", "deviceDiagnosisStateData")

    def manufacturer(self, entity=None):
        return self._manufacturer(self.entity(entity))

    def operating_state(self, entity=None):
        """(operatingState, lastErrorCode); defaults normalOperation / "" for absent fields; None
        without state data."""
        st = self._state(self.entity(entity))
        if st is None:
            return None
        return st.get("operatingState") or "normalOperation", st.get("lastErrorCode") or ""

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        m = self.manufacturer(ent)
        if m is not None:
            out.append(("manufacturer", "EVSECC: EVSE %s" % self._manufacturer_text(m)))
        st = self.operating_state(ent)
        if st is not None:
            out.append(("state", "EVSECC: EVSE %s%s" % (st[0], (" (%s)" % st[1]) if st[1] else "")))
        return out


# ---------------------------------------------------------------------------------------------------
# EVCC

COMM_STANDARD_KEYS = ("communicationsStandard", "communicationStandard")   # spine.md 12.2, deviation U1


class EVCC(UseCaseBase):
    """evCommissioningAndConfiguration: EV connected, communication standard, asymmetric charging,
    identifications, manufacturer, power limits, sleep mode."""
    key, label, name = "evcc", "EVCC", "evCommissioningAndConfiguration"
    scenarios = ((1, (), True), (2, ("DeviceConfiguration",), True), (3, ("DeviceConfiguration",), True),
                 (4, ("Identification",), False), (5, ("DeviceClassification",), False),
                 (6, ("ElectricalConnection",), False), (7, ("DeviceDiagnosis",), False), (8, (), True))
    react = {"deviceConfigurationKeyValueDescriptionListData": "deviceConfigurationKeyValueListData",
             "electricalConnectionParameterDescriptionListData": "electricalConnectionPermittedValueSetListData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "DeviceClassification", ["deviceClassificationManufacturerData"])
        await self._sub_read(ent, "DeviceConfiguration", ["deviceConfigurationKeyValueDescriptionListData",
                                                          "deviceConfigurationKeyValueListData"])
        await self._sub_read(ent, "DeviceDiagnosis", ["deviceDiagnosisStateData"])
        await self._sub_read(ent, "ElectricalConnection", ["electricalConnectionParameterDescriptionListData",
                                                           "electricalConnectionPermittedValueSetListData"])
        await self._sub_read(ent, "Identification", ["identificationListData"])

    def charge_state(self, entity=None):
        """"active" / "paused" / "error" / "finished" / "unknown" from the EV's operatingState;
        "unplugged" without an EV entity; None without state data (eebus-go: error)."""
        ent = self.entity(entity)
        remote = self.data.remote
        if ent is None or remote is None or ent not in remote.entities or remote.entities[ent].type != "EV":
            return "unplugged"
        if self._server(ent, "DeviceDiagnosis") is None:
            return None
        st = self._state(ent)
        if st is None or st.get("operatingState") is None:
            return None
        return {"normalOperation": "active", "standby": "paused", "failure": "error",
                "finished": "finished"}.get(st["operatingState"], "unknown")

    def connected(self, entity=None):
        """eebus-go's EVConnected: the EV entity is in the discovery AND its deviceDiagnosisStateData
        with an operatingState arrived (spine.md 15.3)."""
        return self.charge_state(entity) not in (None, "unplugged")

    def _kv_value(self, ent, names, value_type):
        for name in names:
            descs = self.data.entries(ent, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData",
                                      {"keyName": name})
            if not descs:
                continue
            item = self._kv_data_for(ent, {"keyName": name, "valueType": value_type})
            if item is None:
                continue
            v = obj(item.get("value"))
            if value_type in v:
                return v[value_type]
        return None

    def communication_standard(self, entity=None):
        """iec61851 / iso15118-2ed1 / iso15118-2ed2 / ...; None when not available (eebus-go: "unknown"
        with an error). Accepts both key spellings."""
        return self._kv_value(self.entity(entity), COMM_STANDARD_KEYS, "string")

    def asymmetric(self, entity=None):
        """asymmetricChargingSupported (bool) or None."""
        return self._kv_value(self.entity(entity), ("asymmetricChargingSupported",), "boolean")

    def identifications(self, entity=None):
        """[(identificationType, identificationValue)]; None without identification data."""
        ent = self.entity(entity)
        if not self.data.has(ent, "Identification", "identificationListData"):
            return None
        return [(i.get("identificationType", ""), i.get("identificationValue", ""))
                for i in self.data.entries(ent, "Identification", "identificationListData")]

    def manufacturer(self, entity=None):
        return self._manufacturer(self.entity(entity))

    def power_limits(self, entity=None):
        """ChargingPowerLimits: (min W, max W, standby W) from the acPowerTotal parameter's permitted value
        set (exactly one set with exactly one range), None otherwise."""
        ent = self.entity(entity)
        params = self._param_descs(ent, {"scopeType": "acPowerTotal"})
        if not params or params[0].get("parameterId") is None:
            return None
        sets = self._permitted_sets(ent, {"parameterId": params[0]["parameterId"]})
        if not sets:
            return None
        pvs = as_list(sets[0].get("permittedValueSet"))
        if len(pvs) != 1:
            return None
        rng = as_list(obj(pvs[0]).get("range"))
        if len(rng) != 1:
            return None
        r = obj(rng[0])
        vals = as_list(obj(pvs[0]).get("value"))
        return (scaled(r["min"]) if "min" in r else 0.0, scaled(r["max"]) if "max" in r else 0.0,
                scaled(vals[0]) if vals else 0.0)

    def sleeping(self, entity=None):
        """IsInSleepMode: operatingState standby; None without state data."""
        st = self._state(self.entity(entity))
        if st is None:
            return None
        return st.get("operatingState") == "standby"

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        remote = self.data.remote
        if ent is None or remote is None or ent not in remote.entities:
            return out
        where = ".".join(map(str, ent))
        if self.connected(ent):
            out.append(("connected", "EV connected (%s)" % where))
        else:
            out.append(("connected", "EVCC: EV entity %s present, not connected for eebus-go yet "
                                     "(no deviceDiagnosisStateData)" % where))
        cs = self.charge_state(ent)
        if cs not in (None, "unplugged"):
            out.append(("charge_state", "EVCC: charge state %s%s" % (cs, " (sleeping)" if self.sleeping(ent) else "")))
        std = self.communication_standard(ent)
        if std is not None:
            out.append(("standard", "EVCC: communication standard %s" % std))
        asym = self.asymmetric(ent)
        if asym is not None:
            out.append(("asymmetric", "EVCC: asymmetric charging %s" % ("supported" if asym else "not supported")))
        ids = self.identifications(ent)
        if ids is not None:
            out.append(("ids", "EVCC: identification %s" % (", ".join("%s %s" % i for i in ids) or "none")))
        m = self.manufacturer(ent)
        if m is not None:
            out.append(("manufacturer", "EVCC: EV %s" % self._manufacturer_text(m)))
        pl = self.power_limits(ent)
        if pl is not None:
            out.append(("power_limits", "EVCC: power %s-%s W, standby %s W" % tuple(fmt_num(v) for v in pl)))
        return out


# ---------------------------------------------------------------------------------------------------
# EVCEM

class EVCEM(UseCaseBase):
    """measurementOfElectricityDuringEvCharging: current and power per phase, energy charged."""
    key, label, name = "evcem", "EVCEM", "measurementOfElectricityDuringEvCharging"
    scenarios = ((1, ("ElectricalConnection", "Measurement"), False),
                 (2, ("ElectricalConnection", "Measurement"), False),
                 (3, ("ElectricalConnection", "Measurement"), False))
    react = {"measurementDescriptionListData": "measurementListData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "ElectricalConnection", ["electricalConnectionDescriptionListData",
                                                           "electricalConnectionParameterDescriptionListData"])
        await self._sub_read(ent, "Measurement", ["measurementDescriptionListData", "measurementConstraintsListData",
                                                  "measurementListData"])

    def phases_connected(self, entity=None):
        ent = self.entity(entity)
        descs = self.data.entries(ent, "ElectricalConnection", "electricalConnectionDescriptionListData")
        if not descs:
            return None
        for d in descs:
            if d.get("electricalConnectionId") is not None and d.get("acConnectedPhases") is not None:
                return d["acConnectedPhases"]
        return 0

    def _per_phase(self, ent, flt, strict):
        data = self._measurement_data(ent, flt)
        if not data:
            return None
        if strict and scaled(data[0].get("value")) is None:
            return None
        out = []
        for phase in PHASES:
            for item in data:
                v = scaled(item.get("value"))
                if v is None:
                    continue
                params = self._param_descs(ent, {"measurementId": item.get("measurementId")})
                if not params:
                    continue
                if params[0].get("acMeasuredPhases") is None:
                    if strict:
                        self._warn("parameter description %s (measurement %s) has no acMeasuredPhases: "
                                   "eebus-go v0.7 PowerPerPhase panics" % (params[0].get("parameterId"),
                                                                         item.get("measurementId")))
                    continue
                if params[0]["acMeasuredPhases"] != phase:
                    continue
                out.append(v)
        return out

    def current_per_phase(self, entity=None):
        """[A per connected phase, in phase order a, b, c] or None."""
        return self._per_phase(self.entity(entity), {"measurementType": "current", "commodityType": "electricity",
                                                     "scopeType": "acCurrent"}, False)

    def power_per_phase(self, entity=None):
        """[W per phase] or None."""
        return self._per_phase(self.entity(entity), {"measurementType": "power", "commodityType": "electricity",
                                                     "scopeType": "acPower"}, True)

    def energy_charged(self, entity=None):
        """Wh of the current charging process or None."""
        return self._first_measurement(self.entity(entity), {"measurementType": "energy",
                                                             "commodityType": "electricity", "scopeType": "charge"})

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        n = self.phases_connected(ent)
        if n:
            out.append(("phases", "EVCEM: %s phase%s connected" % (n, "" if n == 1 else "s")))
        i = self.current_per_phase(ent)
        if i:
            out.append(("current", "EVCEM: I = %s" % _fmt_phases(i, "A")))
        p = self.power_per_phase(ent)
        if p:
            out.append(("power", "EVCEM: P = %s" % _fmt_phases(p, "W")))
        e = self.energy_charged(ent)
        if e is not None:
            out.append(("energy", "EVCEM: charged %s Wh" % fmt_num(e)))
        return out


# ---------------------------------------------------------------------------------------------------
# OPEV / OSCEV

class _PhaseLimits(UseCaseBase):
    """Per-phase current limits on the EV's LoadControl, linked to phases through the ElectricalConnection
    parameter descriptions (spine.md 12.10)."""
    category = ""
    limit_scope = ""
    scenarios = ((1, ("LoadControl", "ElectricalConnection"), True), (2, (), True), (3, (), True))
    react = {"loadControlLimitDescriptionListData": "loadControlLimitListData"}

    @property
    def read_filter(self):
        # the read path omits unit
        return {"limitType": "maxValueLimit", "limitCategory": self.category, "scopeType": self.limit_scope}

    @property
    def write_filter(self):
        return {"limitType": "maxValueLimit", "limitCategory": self.category, "unit": "A",
                "scopeType": self.limit_scope}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "LoadControl", ["loadControlLimitDescriptionListData",
                                                  "loadControlLimitConstraintsListData",
                                                  "loadControlLimitListData"], bind=True)
        # eebus-go relies on EVCC/EVCEM for these; read them when nobody did
        await self._ensure_read(ent, "ElectricalConnection", ["electricalConnectionParameterDescriptionListData",
                                                              "electricalConnectionPermittedValueSetListData"])
        await self._ensure_read(ent, "Measurement", ["measurementDescriptionListData"])

    def _limit_descs(self, ent, flt):
        if not self.data.has(ent, "LoadControl", "loadControlLimitDescriptionListData"):
            return None
        return self.data.entries(ent, "LoadControl", "loadControlLimitDescriptionListData", flt)

    def _limit_data(self, ent, limit_id):
        """GetLimitDataForId: the first data entry of that limitId (a description must exist)."""
        if not self.data.entries(ent, "LoadControl", "loadControlLimitDescriptionListData", {"limitId": limit_id}):
            return None
        for i in self.data.entries(ent, "LoadControl", "loadControlLimitListData"):
            if matches(i, {"limitId": limit_id}):
                return i
        return None

    def _phase_param(self, ent, phase):
        params = self._param_descs(ent, {"acMeasuredPhases": phase})
        if not params or params[0].get("measurementId") is None:
            return None
        return params[0]

    def limits(self, entity=None):
        """LoadControlLimits: [(phase, value A, active, changeable)] per phase that has a limit; an inactive
        limit or one without value reports the phase's permitted maximum; None without data."""
        ent = self.entity(entity)
        descs = self._limit_descs(ent, self.read_filter)
        if descs is None:
            return None
        out = []
        for phase in PHASES:
            param = self._phase_param(ent, phase)
            if param is None:
                continue
            desc = next((d for d in descs if d.get("measurementId") is not None
                         and d["measurementId"] == param["measurementId"]), None)
            if desc is None or desc.get("limitId") is None:
                return None
            item = self._limit_data(ent, desc["limitId"])
            if item is None:
                return None
            active = item.get("isLimitActive") is True
            value = scaled(item.get("value"))
            if value is None or item.get("isLimitActive") is False:
                mmd = self._permitted_min_max_default(ent, param.get("parameterId"))
                if mmd is None:     # no permitted values for the phase (Bender 1-phase, Elli Gen1)
                    continue
                value = mmd[1]
            out.append((phase, value, active, item.get("isLimitChangeable") is True))
        return out

    def current_limits(self, entity=None):
        """CurrentLimits: ([min], [max], [default]) over the current parameters (measurementId of an
        acCurrent measurement description) per phase; None without data."""
        ent = self.entity(entity)
        mdescs = self.data.entries(ent, "Measurement", "measurementDescriptionListData",
                                   {"measurementType": "current", "commodityType": "electricity", "unit": "A",
                                    "scopeType": "acCurrent"})
        ids = [d.get("measurementId") for d in mdescs if d.get("measurementId") is not None]
        mins, maxs, defs = [], [], []
        for phase in PHASES:
            for p in self._param_descs(ent, {"acMeasuredPhases": phase}):
                if p.get("parameterId") is None or p.get("measurementId") is None or p["measurementId"] not in ids:
                    continue
                mmd = self._permitted_min_max_default(ent, p["parameterId"])
                if mmd is None:
                    continue
                mins.append(mmd[0])
                maxs.append(mmd[1])
                defs.append(mmd[2])
        if not mins:
            return None
        return mins, maxs, defs

    def limits_write(self, values, active=True, entity=None):
        """The ``loadControlLimitListData`` to write and whether the write is partial, exactly as eebus-go's
        WriteLoadControlPhaseLimits: ``values`` [a, b, c] in A (None skips a phase; a single-phase EV
        takes only the first). ``active`` a bool or a list per phase. Returns (data, partial, notes).
        WriteError when no phase can be written."""
        ent = self.entity(entity)
        if ent is None:
            raise WriteError("%s: no EV entity (is a vehicle plugged in?)" % self.label)
        if isinstance(active, bool):
            active = [active] * len(values)
        notes = []
        entries = []
        descs = self._limit_descs(ent, self.write_filter) or []
        if not descs:
            raise WriteError("%s: no %s limit descriptions (maxValueLimit, A, %s) on %s" % (
                self.label, self.category, self.limit_scope, ".".join(map(str, ent))))
        for i, v in enumerate(values[:3]):
            if v is None:
                continue
            phase = PHASES[i]
            param = self._phase_param(ent, phase)
            if param is None:
                notes.append("phase %s: no parameter description with a measurementId" % phase)
                continue
            desc = next((d for d in descs if d.get("measurementId") is not None
                         and d["measurementId"] == param["measurementId"]), None)
            if desc is None or desc.get("limitId") is None:
                notes.append("phase %s: no limit for measurement %s" % (phase, param["measurementId"]))
                continue
            item = self._limit_data(ent, desc["limitId"])
            if item is None:
                notes.append("phase %s: no data for limit %s" % (phase, desc["limitId"]))
                continue
            if item.get("isLimitChangeable") is False:
                notes.append("phase %s: limit %s is not changeable" % (phase, desc["limitId"]))
                continue
            adj = self._adjust_to_permitted(ent, float(v), param.get("parameterId"))
            if adj != v:
                notes.append("phase %s: %s A adjusted to %s A (permitted values of parameter %s)" % (
                    phase, fmt_num(v), fmt_num(adj), param.get("parameterId")))
            entries.append({"limitId": desc["limitId"], "isLimitActive": bool(active[i]), "value": scaled_number(adj)})
        if not entries:
            raise WriteError("%s: nothing to write (%s)" % (self.label, "; ".join(notes) or "no phases"))
        return self._write_form(ent, "LoadControl", "loadControlLimitListData", "loadControlLimitData", "limitId",
                                entries) + (notes,)

    async def write_limits(self, values, active=True, entity=None):
        """Write per-phase limits (A); returns (Result, notes). The result arrives after the station's
        notify. WriteError when nothing can be written."""
        ent = self.entity(entity)
        data, partial, notes = self.limits_write(values, active, ent)
        r = await self.mgr.write(ent, "LoadControl", "loadControlLimitListData", data, partial=partial)
        return r, notes

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        lim = self.limits(ent)
        if lim:
            vals = [v for _p, v, _a, _c in lim]
            acts = [a for _p, _v, a, _c in lim]
            if all(acts):
                state = "active"
            elif not any(acts):
                state = "inactive (phase maximum)"
            else:
                state = "/".join("active" if a else "inactive" for a in acts)
            fixed = [p for p, _v, _a, c in lim if not c]
            out.append(("limits", "%s: limits %s %s%s" % (self.label, _fmt_phases(vals, "A"), state,
                                                         (" (not changeable: %s)" % ",".join(fixed)) if fixed else "")))
        cl = self.current_limits(ent)
        if cl:
            out.append(("current_limits", "%s: permitted %s-%s A per phase" % (
                self.label, "/".join(fmt_num(v) for v in cl[0]), "/".join(fmt_num(v) for v in cl[1]))))
        return out


class OPEV(_PhaseLimits):
    """overloadProtectionByEvChargingCurrentCurtailment: per-phase obligation limits."""
    key, label, name = "opev", "OPEV", "overloadProtectionByEvChargingCurrentCurtailment"
    category, limit_scope = "obligation", "overloadProtection"


class OSCEV(_PhaseLimits):
    """optimizationOfSelfConsumptionDuringEvCharging: per-phase recommendation limits."""
    key, label, name = "oscev", "OSCEV", "optimizationOfSelfConsumptionDuringEvCharging"
    category, limit_scope = "recommendation", "selfConsumption"


# ---------------------------------------------------------------------------------------------------
# EVSOC

class EVSOC(UseCaseBase):
    """evStateOfCharge 1.0.0 RC1: the EV's state of charge. eebus-go v0.7 subscribes nothing for it (its
    evConnected is commented out) and lives off EVCEM's Measurement subscription; we make sure of it."""
    key, label, name = "evsoc", "EVSOC", "evStateOfCharge"
    version, sub_revision = "1.0.0", "RC1"
    scenarios = ((1, ("Measurement",), True),)
    react = {"measurementDescriptionListData": "measurementListData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "Measurement", [])
        await self._ensure_read(ent, "Measurement", ["measurementDescriptionListData", "measurementListData"])

    def soc(self, entity=None):
        """State of charge in % or None."""
        return self._first_measurement(self.entity(entity), {"measurementType": "percentage",
                                                             "commodityType": "electricity",
                                                             "scopeType": "stateOfCharge"})

    def summaries(self, entity=None):
        s = self.soc(entity)
        return [("soc", "EVSOC: SoC %s %%" % fmt_num(s))] if s is not None else []


# ---------------------------------------------------------------------------------------------------
# CEVC

class CEVC(UseCaseBase):
    """coordinatedEvCharging: energy demand, power-limit time series, incentive table, charge plan.
    eebus-go v0.7 never reads incentiveTableConstraintsData (IncentiveConstraints then fails); we do."""
    key, label, name = "cevc", "CEVC", "coordinatedEvCharging"
    our_actor = "EnergyBroker"
    scenarios = ((1, ("TimeSeries",), False), (2, ("TimeSeries",), True), (3, ("IncentiveTable",), True),
                 (4, ("TimeSeries",), True), (6, (), True), (8, (), True))
    react = {"timeSeriesDescriptionListData": "timeSeriesListData",
             "incentiveTableDescriptionData": "incentiveTableData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "DeviceConfiguration", ["deviceConfigurationKeyValueDescriptionListData"])
        await self._sub_read(ent, "TimeSeries", ["timeSeriesDescriptionListData", "timeSeriesConstraintsListData",
                                                 "timeSeriesListData"], bind=True)
        await self._sub_read(ent, "IncentiveTable", ["incentiveTableDescriptionData", "incentiveTableConstraintsData",
                                                     "incentiveTableData"], bind=True)

    def _series(self, ent, ts_type):
        descs = self.data.entries(ent, "TimeSeries", "timeSeriesDescriptionListData", {"timeSeriesType": ts_type})
        if not descs or not self.data.has(ent, "TimeSeries", "timeSeriesListData"):
            return None
        items = self.data.entries(ent, "TimeSeries", "timeSeriesListData")
        out = []
        for d in descs:
            out.extend(i for i in items if matches(i, {"timeSeriesId": d.get("timeSeriesId")}))
        return out

    def energy_demand(self, entity=None):
        """{min, opt, max (Wh), duration_until_start, duration_until_end (s)} from the singleDemand series,
        or None."""
        data = self._series(self.entity(entity), "singleDemand")
        if not data:
            return None
        slots = as_list(data[0].get("timeSeriesSlot"))
        if not slots:
            return None
        first = obj(slots[0])
        d = {"min": scaled(first.get("minValue")) or 0.0, "opt": scaled(first.get("value")) or 0.0,
             "max": scaled(first.get("maxValue")) or 0.0, "duration_until_start": 0.0,
             "duration_until_end": 0.0}
        if first.get("duration") is not None:
            d["duration_until_end"] = parse_duration(first["duration"]) or 0.0
        start = parse_duration(obj(data[0].get("timePeriod")).get("startTime"))
        if start is None:
            start = parse_duration(obj(first.get("timePeriod")).get("startTime"))
        d["duration_until_start"] = start or 0.0
        return d

    def charge_strategy(self, entity=None):
        """directCharging / minSoC / timedCharging / noDemand / unknown (eebus-go ChargeStrategy)."""
        data = self._series(self.entity(entity), "singleDemand")
        if not data or not as_list(data[0].get("timeSeriesSlot")):
            return "unknown"
        first = obj(as_list(data[0]["timeSeriesSlot"])[0])
        value = scaled(first.get("value"))
        if first.get("duration") is None:
            return "directCharging" if value is not None and value > 0 else "noDemand"
        if parse_duration(first["duration"]) is None:
            return "unknown"
        mn = scaled(first.get("minValue"))
        if mn is not None and mn > 0:
            return "minSoC"
        if value is not None:
            return "timedCharging" if value > 0 else "noDemand"
        return "unknown"

    def time_slot_constraints(self, entity=None):
        """{min_slots, max_slots, min_slot_duration, max_slot_duration, slot_duration_step} from the first
        timeSeriesConstraintsData, or None."""
        ent = self.entity(entity)
        if not self.data.has(ent, "TimeSeries", "timeSeriesConstraintsListData"):
            return None
        items = self.data.entries(ent, "TimeSeries", "timeSeriesConstraintsListData")
        if not items:
            return None
        c = items[0]
        return {"min_slots": c.get("slotCountMin", 0), "max_slots": c.get("slotCountMax", 0),
                "min_slot_duration": parse_duration(c.get("slotDurationMin")) or 0.0,
                "max_slot_duration": parse_duration(c.get("slotDurationMax")) or 0.0,
                "slot_duration_step": parse_duration(c.get("slotDurationStepSize")) or 0.0}

    def incentive_constraints(self, entity=None):
        """{min_slots, max_slots} from the first incentiveTableConstraints entry, or None."""
        ent = self.entity(entity)
        d = self.data.get(ent, "IncentiveTable", "incentiveTableConstraintsData")
        if d is None:
            return None
        items = as_list(obj(d).get("incentiveTableConstraints"))
        if not items:
            return None
        sc = obj(obj(items[0]).get("incentiveSlotConstraints"))
        return {"min_slots": sc.get("slotCountMin", 0), "max_slots": sc.get("slotCountMax", 0)}

    def charge_plan_constraints(self, entity=None):
        """[(duration s, max W)] of the constraints series (what was written, as the EV sees it)."""
        data = self._series(self.entity(entity), "constraints")
        if not data or not as_list(data[0].get("timeSeriesSlot")):
            return None
        out = []
        for s in as_list(data[0]["timeSeriesSlot"]):
            s = obj(s)
            dur = parse_duration(s.get("duration")) if s.get("duration") is not None else None
            if dur is None:
                tp = obj(s.get("timePeriod"))
                a, b = _parse_time(tp.get("startTime")), _parse_time(tp.get("endTime"))
                dur = (b - a).total_seconds() if a and b else 0.0
            out.append((dur, scaled(s.get("maxValue")) or 0.0))
        return out

    def charge_plan(self, entity=None):
        """[(start s from now, end s from now or None, value W)] of the plan series, or None."""
        data = self._series(self.entity(entity), "plan")
        if not data or not as_list(data[0].get("timeSeriesSlot")):
            return None
        start0 = parse_duration(obj(data[0].get("timePeriod")).get("startTime")) or 0.0
        cur = start0
        out = []
        for s in as_list(data[0]["timeSeriesSlot"]):
            s = obj(s)
            st = obj(s.get("timePeriod")).get("startTime")
            begin = _relative_seconds(st) if st is not None else cur
            end = None
            if s.get("duration") is not None and parse_duration(s["duration"]) is not None:
                end = begin + parse_duration(s["duration"])
            elif obj(s.get("timePeriod")).get("endTime") is not None:
                end = _relative_seconds(obj(s["timePeriod"])["endTime"])
            if end is not None:
                cur = end
            out.append((begin, end, scaled(s.get("value")) or 0.0))
        return out

    def update_required(self, entity=None):
        """(power limits requested, incentive table requested) from the updateRequired flags."""
        ent = self.entity(entity)
        ts = self.data.entries(ent, "TimeSeries", "timeSeriesDescriptionListData", {"timeSeriesType": "constraints"})
        tariffs = self._tariff_descriptions(ent, {"scopeType": "simpleIncentiveTable"})
        return (bool(ts and ts[0].get("updateRequired") is True),
                bool(tariffs and tariffs[0].get("updateRequired") is True))

    def _tariff_descriptions(self, ent, flt):
        d = self.data.get(ent, "IncentiveTable", "incentiveTableDescriptionData")
        out = []
        for item in as_list(obj(d).get("incentiveTableDescription")) if d is not None else []:
            td = obj(obj(item).get("tariffDescription"))
            if matches(td, flt):
                out.append(td)
        return out

    # -- writers (eebus-go writes these without a partial filter)

    def power_limits_write(self, slots, entity=None):
        """timeSeriesListData for WritePowerLimits: ``slots`` [(duration s, max W)], or [] for eebus-go's
        default (7 days at the acPower parameter's permitted maximum)."""
        ent = self.entity(entity)
        if not slots:
            params = self._param_descs(ent, {"scopeType": "acPower"})
            if not params or params[0].get("parameterId") is None:
                raise WriteError("CEVC: no acPower parameter description for the default power limit")
            sets = self._permitted_sets(ent, {"parameterId": params[0]["parameterId"]})
            pvs = as_list(obj(sets[0]).get("permittedValueSet")) if sets else []
            rng = as_list(obj(pvs[0]).get("range")) if pvs else []
            if not rng:
                raise WriteError("CEVC: no permitted value set available")
            slots = [(7 * 86400, scaled(obj(rng[0]).get("max")) or 0.0)]
        cons = self.time_slot_constraints(ent)
        if cons is None:
            raise WriteError("CEVC: no time series constraints")
        if cons["min_slots"] and cons["min_slots"] > len(slots):
            raise WriteError("CEVC: too few charge slots provided")
        if cons["max_slots"] and cons["max_slots"] < len(slots):
            raise WriteError("CEVC: too many charge slots provided")
        descs = self.data.entries(ent, "TimeSeries", "timeSeriesDescriptionListData", {"timeSeriesType": "constraints"})
        if not descs:
            raise WriteError("CEVC: no time series of type constraints")
        out_slots = []
        total = 0
        for i, (dur, watts) in enumerate(slots):
            tp = {"startTime": format_duration(total)}
            if i == len(slots) - 1:
                tp["endTime"] = format_duration(total + dur)
            out_slots.append({"timeSeriesSlotId": i, "timePeriod": tp, "maxValue": scaled_number(watts)})
            total += dur
        ts = {}
        if descs[0].get("timeSeriesId") is not None:
            ts["timeSeriesId"] = descs[0]["timeSeriesId"]
        ts["timePeriod"] = {"startTime": "PT0S", "endTime": format_duration(total)}
        ts["timeSeriesSlot"] = out_slots
        return {"timeSeriesData": [ts]}

    def incentives_write(self, slots, entity=None):
        """incentiveTableData for WriteIncentives: ``slots`` [(duration s, price)], or [] for eebus-go's
        default (7 days at 0.30)."""
        ent = self.entity(entity)
        if not slots:
            slots = [(7 * 86400, 0.30)]
        cons = self.incentive_constraints(ent)
        if cons is None:
            raise WriteError("CEVC: no incentive table constraints")
        if cons["min_slots"] and cons["min_slots"] > len(slots):
            raise WriteError("CEVC: too few charge slots provided")
        if cons["max_slots"] and cons["max_slots"] < len(slots):
            raise WriteError("CEVC: too many charge slots provided")
        out = []
        total = 0
        for i, (dur, price) in enumerate(slots):
            ti = {"startTime": {"relative": format_duration(total)}}
            if i == len(slots) - 1:
                ti["endTime"] = {"relative": format_duration(total + dur)}
            out.append({"timeInterval": ti, "tier": [{
                "tier": {"tierId": 0},
                "boundary": [{"boundaryId": 0, "lowerBoundaryValue": scaled_number(0)}],
                "incentive": [{"incentiveId": 0, "value": scaled_number(price)}]}]})
            total += dur
        return {"incentiveTable": [{"tariff": {"tariffId": 0}, "incentiveSlot": out}]}

    def incentive_descriptions_write(self, entity=None):
        """incentiveTableDescriptionData eebus-go writes by default: tier 0 dynamicCost, boundary 0
        powerBoundary W, incentive 0 absoluteCost EUR, on the simpleIncentiveTable tariff."""
        ent = self.entity(entity)
        tariffs = self._tariff_descriptions(ent, {"scopeType": "simpleIncentiveTable"})
        if not tariffs:
            raise WriteError("CEVC: no tariff with scopeType simpleIncentiveTable")
        return {"incentiveTableDescription": [{
            "tariffDescription": tariffs[0],
            "tier": [{"tierDescription": {"tierId": 0, "tierType": "dynamicCost"},
                      "boundaryDescription": [{"boundaryId": 0, "boundaryType": "powerBoundary", "boundaryUnit": "W"}],
                      "incentiveDescription": [{"incentiveId": 0, "incentiveType": "absoluteCost",
                                                "currency": "EUR"}]}]}]}

    async def write_power_limits(self, slots, entity=None):
        ent = self.entity(entity)
        return await self.mgr.write(ent, "TimeSeries", "timeSeriesListData", self.power_limits_write(slots, ent),
                                    partial=False)

    async def write_incentive_descriptions(self, entity=None):
        ent = self.entity(entity)
        return await self.mgr.write(ent, "IncentiveTable", "incentiveTableDescriptionData",
                                    self.incentive_descriptions_write(ent), partial=False)

    async def write_incentives(self, slots, entity=None):
        ent = self.entity(entity)
        return await self.mgr.write(ent, "IncentiveTable", "incentiveTableData", self.incentives_write(slots, ent),
                                    partial=False)

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        d = self.energy_demand(ent)
        if d is not None:
            out.append(("demand", "CEVC: demand min %s / opt %s / max %s Wh, %s%s" % (
                fmt_num(d["min"]), fmt_num(d["opt"]), fmt_num(d["max"]), self.charge_strategy(ent),
                (", departure in %s" % fmt_duration(d["duration_until_end"])) if d["duration_until_end"] else "")))
        c = self.time_slot_constraints(ent)
        if c is not None:
            out.append(("ts_constraints", "CEVC: power limit slots %s-%s, %s-%s each" % (
                c["min_slots"], c["max_slots"], fmt_duration(c["min_slot_duration"]),
                fmt_duration(c["max_slot_duration"]))))
        ic = self.incentive_constraints(ent)
        if ic is not None:
            out.append(("it_constraints", "CEVC: incentive slots %s-%s" % (ic["min_slots"], ic["max_slots"])))
        pl = self.charge_plan_constraints(ent)
        if pl:
            out.append(("constraints", "CEVC: power limits %s" % ", ".join(
                "%s W for %s" % (fmt_num(w), fmt_duration(s)) for s, w in pl)))
        plan = self.charge_plan(ent)
        if plan:
            out.append(("plan", "CEVC: charge plan %s" % ", ".join(
                "%s W from +%s" % (fmt_num(v), fmt_duration(b)) for b, _e, v in plan)))
        req = self.update_required(ent)
        if any(req):
            out.append(("update_required", "CEVC: EV asks for %s" % " and ".join(
                w for w, f in zip(("power limits", "incentives"), req) if f)))
        return out


# ---------------------------------------------------------------------------------------------------
# LPC

LPC_LIMIT_FILTER = {"limitType": "signDependentAbsValueLimit", "limitDirection": "consume",
                    "scopeType": "activePowerLimit"}
KEY_FAILSAFE_LIMIT = "failsafeConsumptionActivePowerLimit"
KEY_FAILSAFE_DURATION = "failsafeDurationMinimum"


class LPC(UseCaseBase):
    """limitationOfPowerConsumption (energy guard side): consumption limit, failsafe values, heartbeat,
    nominal max. eebus-go v0.7 never requests electricalConnectionCharacteristicListData; we read it so
    ``nominal_max`` has data."""
    key, label, name = "lpc", "LPC", "limitationOfPowerConsumption"
    version = "1.0.0"
    our_actor = "EnergyGuard"
    remote_actors = ("ControllableSystem",)
    entity_types = ("CEM", "Compressor", "EVSE", "HeatPumpAppliance", "Inverter", "SmartEnergyAppliance",
                    "SubMeterElectricity")
    scenarios = ((1, ("LoadControl",), True), (2, ("DeviceConfiguration",), True),
                 (3, ("DeviceDiagnosis",), True), (4, ("ElectricalConnection",), False))
    react = {"loadControlLimitDescriptionListData": "loadControlLimitListData",
             "deviceConfigurationKeyValueDescriptionListData": "deviceConfigurationKeyValueListData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "LoadControl", [("loadControlLimitDescriptionListData", dict(LPC_LIMIT_FILTER))],
                             bind=True)
        await self._sub_read(ent, "DeviceConfiguration", ["deviceConfigurationKeyValueDescriptionListData"], bind=True)
        await self._sub_read(ent, "DeviceDiagnosis", ["deviceDiagnosisHeartbeatData"])
        descs = self.data.entries(ent, "LoadControl", "loadControlLimitDescriptionListData", LPC_LIMIT_FILTER)
        sel = {"limitId": descs[0]["limitId"]} if descs and descs[0].get("limitId") is not None else None
        if self._server(ent, "LoadControl"):
            await self.mgr.read(ent, "LoadControl", "loadControlLimitListData", selectors=sel)
        if self._server(ent, "DeviceConfiguration"):
            await self.mgr.read(ent, "DeviceConfiguration", "deviceConfigurationKeyValueListData")
        await self._sub_read(ent, "ElectricalConnection", ["electricalConnectionCharacteristicListData"])

    def _limit_entries(self, ent):
        descs = self.data.entries(ent, "LoadControl", "loadControlLimitDescriptionListData", LPC_LIMIT_FILTER)
        data = []
        items = self.data.entries(ent, "LoadControl", "loadControlLimitListData")
        for d in descs:
            data.extend(i for i in items if matches(i, {"limitId": d.get("limitId")}))
        return descs, data

    def consumption_limit(self, entity=None):
        """{value W, active, changeable, duration s or None} of the one activePowerLimit/consume limit;
        None when there is not exactly one description or no value."""
        ent = self.entity(entity)
        descs = self.data.entries(ent, "LoadControl", "loadControlLimitDescriptionListData", LPC_LIMIT_FILTER)
        if len(descs) != 1 or descs[0].get("limitId") is None:
            return None
        item = next((i for i in self.data.entries(ent, "LoadControl", "loadControlLimitListData")
                     if matches(i, {"limitId": descs[0]["limitId"]})), None)
        if item is None or scaled(item.get("value")) is None:
            return None
        dur = None
        end = obj(item.get("timePeriod")).get("endTime")
        if end is not None:
            dur = _relative_seconds(end)
        return {"value": scaled(item["value"]), "active": item.get("isLimitActive") is True,
                "changeable": item.get("isLimitChangeable") is True, "duration": dur}

    def failsafe_limit(self, entity=None):
        """failsafeConsumptionActivePowerLimit (W) or None."""
        item = self._kv_data_for(self.entity(entity), {"keyName": KEY_FAILSAFE_LIMIT, "valueType": "scaledNumber"})
        if item is None:
            return None
        return scaled(obj(item.get("value")).get("scaledNumber"))

    def failsafe_duration(self, entity=None):
        """failsafeDurationMinimum in seconds or None."""
        item = self._kv_data_for(self.entity(entity), {"keyName": KEY_FAILSAFE_DURATION, "valueType": "duration"})
        if item is None:
            return None
        return parse_duration(obj(item.get("value")).get("duration"))

    def nominal_max(self, entity=None):
        """ConsumptionNominalMax: the characteristic (context entity) powerConsumptionNominalMax - or
        contractualConsumptionNominalMax when the station's device type is EnergyManagementSystem or
        unknown - in W, or None."""
        ent = self.entity(entity)
        remote = self.data.remote
        dtype = remote.device_type if remote is not None else None
        ctype = "contractualConsumptionNominalMax" if dtype in (None, "EnergyManagementSystem") \
            else "powerConsumptionNominalMax"
        items = self.data.entries(ent, "ElectricalConnection", "electricalConnectionCharacteristicListData",
                                  {"characteristicContext": "entity", "characteristicType": ctype})
        if not items or items[0].get("value") is None:
            return None
        return scaled(items[0]["value"])

    def heartbeat(self, entity=None):
        """(seconds since the station's last heartbeat arrived, its data) or None."""
        hb = self.data.heartbeats.get(self.entity(entity))
        if hb is None:
            return None
        return self.data.clock() - hb[0], hb[1]

    def heartbeat_within(self, seconds=120, entity=None, now=None):
        """eebus-go's IsHeartbeatWithinDuration(2 min): judged by the heartbeat's own timestamp against
        our clock (a station with a wrong clock fails here even though it sends)."""
        hb = self.data.get(self.entity(entity), "DeviceDiagnosis", "deviceDiagnosisHeartbeatData")
        t = _parse_time(obj(hb).get("timestamp")) if hb is not None else None
        if t is None:
            return False
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (now - t).total_seconds() <= seconds

    # -- writers

    def limit_write(self, watts, active=True, duration=None, delete_duration=None, entity=None):
        """(data, partial, delete filter or None) for WriteConsumptionLimit. ``duration`` seconds (None or
        0: no timePeriod). ``delete_duration``: send eebus-go's delete filter for the limit's timePeriod;
        default: when no duration is given and the station's limit still has one (otherwise a partial
        write would leave the old expiry in place)."""
        ent = self.entity(entity)
        if ent is None:
            raise WriteError("LPC: the station has no controllable-system entity")
        descs, items = self._limit_entries(ent)
        if len(items) != 1 or items[0].get("limitId") is None:
            raise WriteError("LPC: %d limit data entries match the activePowerLimit/consume description "
                             "(exactly one needed)" % len(items))
        item = items[0]
        if item.get("isLimitChangeable") is False:
            raise WriteError("LPC: limit %s is not changeable" % item["limitId"])
        if watts < 0:
            self._warn("LPC: writing a negative limit (the station must reject it)")
        new = {"limitId": item["limitId"], "isLimitActive": bool(active)}
        if duration:
            new["timePeriod"] = {"endTime": format_duration(duration)}
        new["value"] = scaled_number(watts)
        if delete_duration is None:
            delete_duration = not duration and obj(item.get("timePeriod")).get("endTime") is not None
        delete = None
        if delete_duration:
            delete = {"selectors": {"limitId": item["limitId"]}, "elements": {"timePeriod": {}}}
        f = self._server(ent, "LoadControl")
        if f is None or (f.can_write("loadControlLimitListData") and f.write_partial("loadControlLimitListData")):
            return {"loadControlLimitData": [new]}, True, delete
        merged = []
        for e in self.data.entries(ent, "LoadControl", "loadControlLimitListData"):
            e = dict(e)
            if e.get("limitId") == new["limitId"]:
                if delete:
                    e.pop("timePeriod", None)
                e.update(new)
            merged.append(e)
        return {"loadControlLimitData": merged}, False, None

    def _kv_write(self, ent, entries):
        return self._write_form(ent, "DeviceConfiguration", "deviceConfigurationKeyValueListData",
                                "deviceConfigurationKeyValueData", "keyId", entries)

    def failsafe_limit_write(self, watts, entity=None):
        """(data, partial) for WriteFailsafeConsumptionActivePowerLimit."""
        ent = self.entity(entity)
        descs = self.data.entries(ent, "DeviceConfiguration", "deviceConfigurationKeyValueDescriptionListData",
                                  {"keyName": KEY_FAILSAFE_LIMIT})
        if len(descs) != 1:
            raise WriteError("LPC: %d %s key descriptions (exactly one needed)" % (len(descs), KEY_FAILSAFE_LIMIT))
        return self._kv_write(ent, [{"keyId": descs[0].get("keyId"), "value": {"scaledNumber": scaled_number(watts)}}])

    def failsafe_duration_write(self, seconds, entity=None, check=True):
        """(data, partial) for WriteFailsafeDurationMinimum; eebus-go refuses durations outside 2 h-24 h
        (``check=False`` sends them anyway, to test the station's own check)."""
        ent = self.entity(entity)
        if check and not 2 * 3600 <= seconds <= 24 * 3600:
            raise WriteError("LPC: failsafe duration %s outside 2h-24h" % fmt_duration(seconds))
        item = self._kv_data_for(ent, {"keyName": KEY_FAILSAFE_DURATION})
        if item is None:
            raise WriteError("LPC: no %s data" % KEY_FAILSAFE_DURATION)
        return self._kv_write(ent, [{"keyId": item.get("keyId"), "value": {"duration": format_duration(seconds)}}])

    async def write_limit(self, watts, active=True, duration=None, delete_duration=None, entity=None):
        ent = self.entity(entity)
        data, partial, delete = self.limit_write(watts, active, duration, delete_duration, ent)
        return await self.mgr.write(ent, "LoadControl", "loadControlLimitListData", data, partial=partial,
                                    delete=delete)

    async def write_failsafe(self, watts=None, duration=None, entity=None, check=True):
        """Failsafe limit and/or duration minimum, two writes as eebus-go does; returns the list of
        Results."""
        ent = self.entity(entity)
        out = []
        if watts is not None:
            data, partial = self.failsafe_limit_write(watts, ent)
            out.append(await self.mgr.write(ent, "DeviceConfiguration", "deviceConfigurationKeyValueListData", data,
                                            partial=partial))
        if duration is not None:
            data, partial = self.failsafe_duration_write(duration, ent, check)
            out.append(await self.mgr.write(ent, "DeviceConfiguration", "deviceConfigurationKeyValueListData", data,
                                            partial=partial))
        return out

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        lim = self.consumption_limit(ent)
        if lim is not None:
            text = "LPC: limit %s W %s" % (fmt_num(lim["value"]), "active" if lim["active"] else "inactive")
            if lim["duration"] is not None:
                text += " for %s" % fmt_duration(lim["duration"])
            if not lim["changeable"]:
                text += " (not changeable)"
            out.append(("limit", text))
        fl, fd = self.failsafe_limit(ent), self.failsafe_duration(ent)
        if fl is not None or fd is not None:
            out.append(("failsafe", "LPC: failsafe %s W for at least %s" % (fmt_num(fl), fmt_duration(fd))))
        nm = self.nominal_max(ent)
        if nm is not None:
            out.append(("nominal_max", "LPC: nominal max %s W" % fmt_num(nm)))
        hb = self.data.get(ent, "DeviceDiagnosis", "deviceDiagnosisHeartbeatData")
        if hb is not None:
            ok = self.heartbeat_within(entity=ent)
            out.append(("heartbeat", "LPC: station heartbeat (timeout %s)%s" % (
                obj(hb).get("heartbeatTimeout", "?"), "" if ok else
                " - its timestamp is more than 2 min off our clock: eebus-go ignores it")))
        return out


# ---------------------------------------------------------------------------------------------------
# MPC

class MPC(UseCaseBase):
    """monitoringOfPowerConsumption (monitoring appliance side): power, energy, current, voltage,
    frequency of the station."""
    key, label, name = "mpc", "MPC", "monitoringOfPowerConsumption"
    version = "1.0.0"
    our_actor = "MonitoringAppliance"
    remote_actors = ("MonitoredUnit",)
    entity_types = ("Compressor", "ElectricalImmersionHeater", "EVSE", "HeatPumpAppliance", "Inverter",
                    "SmartEnergyAppliance", "SubMeterElectricity")
    scenarios = ((1, ("ElectricalConnection", "Measurement"), True),
                 (2, ("ElectricalConnection", "Measurement"), False),
                 (3, ("ElectricalConnection", "Measurement"), False),
                 (4, ("ElectricalConnection", "Measurement"), False),
                 (5, ("ElectricalConnection", "Measurement"), False))
    react = {"measurementDescriptionListData": "measurementListData"}

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "ElectricalConnection", ["electricalConnectionDescriptionListData",
                                                           "electricalConnectionParameterDescriptionListData"])
        await self._sub_read(ent, "Measurement", ["measurementDescriptionListData", "measurementConstraintsListData",
                                                  "measurementListData"])

    def _phase_specific(self, ent, flt, direction, phases):
        """MeasurementPhaseSpecificDataForFilter: values in data order, only of ``phases`` (when given),
        and nothing at all when the electrical connection's positiveEnergyDirection is not ``direction``."""
        data = self._measurement_data(ent, flt)
        if not data:
            return None
        out = []
        for item in data:
            v = scaled(item.get("value"))
            if v is None or item.get("measurementId") is None:
                continue
            params = self._param_descs(ent, {"measurementId": item["measurementId"]})
            if phases is not None:
                if not params or params[0].get("acMeasuredPhases") not in phases:
                    continue
            if direction:
                if not params:
                    continue
                ec = next((d for d in self.data.entries(ent, "ElectricalConnection",
                                                        "electricalConnectionDescriptionListData")
                           if d.get("electricalConnectionId") is not None
                           and params[0].get("electricalConnectionId") is not None
                           and d["electricalConnectionId"] == params[0]["electricalConnectionId"]), None)
                if ec is None:
                    continue
                if ec.get("positiveEnergyDirection") != direction:
                    self._warn("MPC: electrical connection %s has positiveEnergyDirection %r, not %r: "
                               "eebus-go returns no value" % (ec.get("electricalConnectionId"),
                                                              ec.get("positiveEnergyDirection"), direction))
                    return None
            out.append(v)
        return out

    def power(self, entity=None):
        """Total active power (W) or None (needs exactly one acPowerTotal value)."""
        vals = self._phase_specific(self.entity(entity), {"measurementType": "power", "commodityType": "electricity",
                                                          "scopeType": "acPowerTotal"}, "consume", None)
        if vals is None or len(vals) != 1:
            return None
        return vals[0]

    def power_per_phase(self, entity=None):
        return self._phase_specific(self.entity(entity), {"measurementType": "power", "commodityType": "electricity",
                                                          "scopeType": "acPower"}, "consume", PHASES)

    def energy_consumed(self, entity=None):
        return self._first_measurement(self.entity(entity), {"measurementType": "energy",
                                                             "commodityType": "electricity",
                                                             "scopeType": "acEnergyConsumed"})

    def energy_produced(self, entity=None):
        return self._first_measurement(self.entity(entity), {"measurementType": "energy",
                                                             "commodityType": "electricity",
                                                             "scopeType": "acEnergyProduced"})

    def current_per_phase(self, entity=None):
        return self._phase_specific(self.entity(entity), {"measurementType": "current",
                                                          "commodityType": "electricity",
                                                          "scopeType": "acCurrent"}, "consume", PHASES)

    def voltage_per_phase(self, entity=None):
        """Phase-to-neutral voltages (phase-to-phase a-b etc. are not in a/b/c and drop out)."""
        return self._phase_specific(self.entity(entity), {"measurementType": "voltage",
                                                          "commodityType": "electricity",
                                                          "scopeType": "acVoltage"}, "", PHASES)

    def frequency(self, entity=None):
        return self._first_measurement(self.entity(entity), {"measurementType": "frequency",
                                                             "commodityType": "electricity",
                                                             "scopeType": "acFrequency"})

    def summaries(self, entity=None):
        ent = self.entity(entity)
        out = []
        p, pp = self.power(ent), self.power_per_phase(ent)
        if p is not None or pp:
            out.append(("power", "MPC: P = %s W%s" % (fmt_num(p), (" (%s)" % _fmt_phases(pp, "W")) if pp else "")))
        ec, ep = self.energy_consumed(ent), self.energy_produced(ent)
        if ec is not None or ep is not None:
            parts = [("consumed %s Wh" % fmt_num(ec)) if ec is not None else "",
                     ("produced %s Wh" % fmt_num(ep)) if ep is not None else ""]
            out.append(("energy", "MPC: energy %s" % ", ".join(p for p in parts if p)))
        i = self.current_per_phase(ent)
        if i:
            out.append(("current", "MPC: I = %s" % _fmt_phases(i, "A")))
        u = self.voltage_per_phase(ent)
        if u:
            out.append(("voltage", "MPC: U = %s" % _fmt_phases(u, "V")))
        f = self.frequency(ent)
        if f is not None:
            out.append(("frequency", "MPC: f = %s Hz" % fmt_num(f)))
        return out


# ---------------------------------------------------------------------------------------------------
# EVCS (not in eebus-go; Tinkerforge's EVSE side, spine.md 12.4)

class EVCS(UseCaseBase):
    """evChargingSummary: the EVSE's charging bills. eebus-go has no CEM side; the test CEM announces
    EnergyBroker, subscribes the Bill feature and reads descriptions, constraints and bills."""
    key, label, name = "evcs", "EVCS", "evChargingSummary"
    our_actor = "EnergyBroker"
    remote_actors = ("EVSE",)
    entity_types = ("EVSE",)
    scenarios = ((1, ("Bill",), True),)

    async def start(self, entity=None):
        ent = self.entity(entity)
        await self._sub_read(ent, "Bill", ["billDescriptionListData", "billConstraintsListData", "billListData"])

    def bills(self, entity=None):
        """[{id, type, start, end, energy Wh, cost, currency, grid %, self %}] or None."""
        ent = self.entity(entity)
        if not self.data.has(ent, "Bill", "billListData"):
            return None
        out = []
        for b in self.data.entries(ent, "Bill", "billListData"):
            total = obj(b.get("total"))
            tp = obj(total.get("timePeriod"))
            bill = {"id": b.get("billId"), "type": b.get("billType"), "start": tp.get("startTime"),
                    "end": tp.get("endTime"), "energy": None, "cost": None, "currency": None,
                    "grid": None, "self": None}
            for v in as_list(total.get("value")):   # a list in Tinkerforge, one object in spine-go's model
                v = obj(v)
                if v.get("unit") in ("Wh", None) and v.get("value") is not None:
                    bill["energy"] = scaled(v["value"])
                    if v.get("unit") == "Wh":
                        break
            for c in as_list(total.get("cost")):
                c = obj(c)
                if c.get("cost") is not None:
                    bill["cost"] = scaled(c["cost"])
                    bill["currency"] = c.get("currency")
                    break
            for p in as_list(b.get("position")):
                p = obj(p)
                which = {"gridElectricEnergy": "grid", "selfProducedElectricEnergy": "self"}.get(p.get("positionType"))
                if which is None:
                    continue
                for v in as_list(p.get("value")):
                    v = obj(v)
                    if v.get("valuePercentage") is not None:
                        bill[which] = scaled(v["valuePercentage"])
                        break
            out.append(bill)
        return out

    def summaries(self, entity=None):
        bills = self.bills(entity)
        if bills is None:
            return []
        out = []
        for b in bills:
            text = "EVCS: bill %s %s Wh" % (b["id"], fmt_num(b["energy"]))
            if b["cost"] is not None:
                text += ", %s %s" % (fmt_num(b["cost"], 2), b["currency"] or "")
            if b["grid"] is not None or b["self"] is not None:
                text += " (grid %s %%, self-produced %s %%)" % (fmt_num(b["grid"]), fmt_num(b["self"]))
            if b["start"] or b["end"]:
                text += " %s - %s" % (b["start"] or "?", b["end"] or "?")
            out.append(("bill %s" % b["id"], text))
        if not bills:
            out.append(("bills", "EVCS: no bills"))
        return out


ALL_USE_CASES = (EVSECC, EVCC, EVCEM, OPEV, OSCEV, EVSOC, CEVC, LPC, MPC, EVCS)


def our_use_case_table(classes=ALL_USE_CASES):
    """(actor, useCaseName, version, scenarios, sub revision) the test CEM announces, as eebus-go's
    AddUseCase does for each use case (actor CEM / EnergyBroker / EnergyGuard / MonitoringAppliance)."""
    return [(c.our_actor, c.name, c.version, [s for s, _f, _m in c.scenarios], c.sub_revision) for c in classes]
