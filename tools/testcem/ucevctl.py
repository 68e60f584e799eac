"""Use cases that steer the EV's charging (the CEM side as eebus-go implements it): OPEV and OSCEV
(per-phase current limits: overload protection, self-consumption optimisation) and CEVC (coordinated EV
charging: energy demand, time slots, power limits and incentives). Base class and conventions: ucbase.py.
"""

from .ucbase import PHASES, UseCaseBase, WriteError, _fmt_phases, _parse_time, _relative_seconds
from .ucdata import (as_list, fmt_duration, fmt_num, format_duration, matches, obj, parse_duration, scaled,
                     scaled_number)


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
