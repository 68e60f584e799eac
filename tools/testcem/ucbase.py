"""Base of the test CEM's use-case classes: ``UseCaseBase`` (availability as eebus-go's
useCaseDataUpdate, ``check()`` in words, entity choice, data access, the reads, subscriptions and bindings
each use case starts with, through the ``CemUseCases`` manager), ``WriteError`` and the value and time
helpers the use cases share. The conventions are described in usecases.py.
"""


import datetime
import functools
import inspect

from .ucdata import as_list, entity_tuple, fmt_num, matches, merge_list, obj, parse_duration, scaled


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
