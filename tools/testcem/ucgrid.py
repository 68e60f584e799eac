"""Use cases of the grid connection (the CEM side as eebus-go implements it): LPC (limitation of power
consumption, failsafe values, heartbeat), MPC (monitoring of power consumption) and EVCS (EV charging
summary, bills; eebus-go lacks it). Base class and conventions: ucbase.py.
"""

import datetime

from .ucbase import PHASES, UseCaseBase, WriteError, _fmt_phases, _parse_time, _relative_seconds
from .ucdata import (as_list, fmt_duration, fmt_num, format_duration, matches, obj, parse_duration, scaled,
                     scaled_number)


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
