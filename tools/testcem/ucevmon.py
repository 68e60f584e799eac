"""Use cases that read the EV and the charging station (the CEM side as eebus-go implements it):
EVSECC (EVSE commissioning and configuration), EVCC (EV commissioning and configuration), EVCEM (EV charging
electricity measurement) and EVSOC (EV state of charge). Base class and conventions: ucbase.py.
"""

from .ucbase import PHASES, UseCaseBase, _fmt_phases
from .ucdata import as_list, fmt_num, obj, scaled


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
