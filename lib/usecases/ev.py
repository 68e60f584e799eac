# The EV entity [1,1] (spine.md 11, 12.2-12.8): present while a vehicle is plugged in.
# EVCC (configuration, identification, manufacturer, diagnosis, permitted values), EVCEM
# (current and power per phase, charged energy), OPEV and OSCEV (per-phase current limits,
# writable, handed to the charger model as obligation / recommendation). CEVC's TimeSeries
# and IncentiveTable are added by the application when enabled.
#
# Numbering (ours to choose, kept stable across plug-ins so a CEM's cached view stays right):
#   measurements: current per phase p -> p, power per phase -> 3+p, charged energy -> 6
#   parameters:   current per phase p -> p (first per phase: eebus-go maps limits through the
#                 first parameter of a phase, spine.md 12.10), acPowerTotal -> 3, power per
#                 phase -> 4+p, energy -> 7
#   limits:       OPEV phase p -> p, OSCEV phase p -> 3+p (the captured layout, 12.6)
from charger import (
    F_CHARGING, F_ERROR, F_EV_MAX, F_I1, F_SESSION_WH, F_STATE, F_U1,
    OBLIGATION, RECOMMENDATION, SRC_OPEV, SRC_OSCEV, UNIT_A,
)
from spine import datagram as D
from spine.device import OP_READ, OP_READ_PARTIAL, OP_WRITE, OP_WRITE_PARTIAL, SERVER, Entity, Feature, Function
from spine.table import Items, Table, entries, number, scaled

ADDRESS = (1, 1)
PHASES = ("a", "b", "c")
_R = OP_READ | OP_READ_PARTIAL
_RW = _R | OP_WRITE | OP_WRITE_PARTIAL

# feature ids on the EV entity
F_CONFIG = 1
F_IDENT = 2
F_CLASS = 3
F_DIAG = 4
F_ELEC = 5
F_MEAS = 6
F_LOAD = 7
F_SERIES = 8
F_INCENTIVE = 9

_SRC = (SRC_OPEV, SRC_OSCEV)
_KIND = (OBLIGATION, RECOMMENDATION)


def _row_measurement(mid, mtype, unit, scope):
    return ("measurementId", mid, "measurementType", mtype, "commodityType", "electricity", "unit", unit, "scopeType", scope)


class EvSide:
    """The EV entity's data over the charger model. now(): ms ticks (for limit requests)."""

    def __init__(self, charger, phases, voltage, now, comm_standard="iec61851", cevc=None):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.now = now
        self.comm = comm_standard
        # what the CEM wrote: per limit id (OPEV 0..2, OSCEV 3..5): active, value in A
        self.active = [False] * 6
        self.value = [None] * 6
        n = phases
        self._meas_desc = tuple(
            [_row_measurement(p, "current", "A", "acCurrent") for p in range(n)]
            + [_row_measurement(3 + p, "power", "W", "acPower") for p in range(n)]
            + [_row_measurement(6, "energy", "Wh", "charge")]
        )
        self._param_desc = tuple(
            [
                ("electricalConnectionId", 0, "parameterId", p, "measurementId", p, "voltageType", "ac",
                 "acMeasuredPhases", PHASES[p], "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real",
                 "acMeasurementVariant", "rms", "scopeType", "acCurrent")
                for p in range(n)
            ]
            + [("electricalConnectionId", 0, "parameterId", 3, "voltageType", "ac", "acMeasuredPhases", "abc"[:n],
                "acMeasurementType", "real", "scopeType", "acPowerTotal")]
            + [
                ("electricalConnectionId", 0, "parameterId", 4 + p, "measurementId", 3 + p, "voltageType", "ac",
                 "acMeasuredPhases", PHASES[p], "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real",
                 "acMeasurementVariant", "rms", "scopeType", "acPower")
                for p in range(n)
            ]
            + [("electricalConnectionId", 0, "parameterId", 7, "measurementId", 6, "voltageType", "ac",
                "acMeasuredPhases", "abc"[:n], "scopeType", "charge")]
        )
        lim = []
        for k in range(2):
            cat, scope = ("obligation", "overloadProtection") if k == 0 else ("recommendation", "selfConsumption")
            for p in range(n):
                lim.append(("limitId", 3 * k + p, "limitType", "maxValueLimit", "limitCategory", cat,
                            "measurementId", p, "unit", "A", "scopeType", scope))
        self._limit_desc = tuple(lim)
        self.cevc = cevc
        self.entity = self._entity()

    # ---- the entity ---------------------------------------------------------------------

    def _entity(self):
        t = Table
        feats = [
            Feature(F_CONFIG, "DeviceConfiguration", SERVER, (
                Function("deviceConfigurationKeyValueDescriptionListData", _R, table=t(
                    "deviceConfigurationKeyValueDescriptionListData",
                    (("keyId", 1, "keyName", "communicationsStandard", "valueType", "string"),
                     ("keyId", 2, "keyName", "asymmetricChargingSupported", "valueType", "boolean")), ("keyId",))),
                Function("deviceConfigurationKeyValueListData", _R, table=t("deviceConfigurationKeyValueListData", self._config_rows, ("keyId",))),
            ), "DeviceConfiguration Server"),
            # IEC 61851 tells no identification: an empty list (spine.md 12.2)
            Feature(F_IDENT, "Identification", SERVER, (
                Function("identificationListData", _R, table=t("identificationListData", (), ("identificationId",))),
            ), "Identification Server"),
            Feature(F_CLASS, "DeviceClassification", SERVER, (
                Function("deviceClassificationManufacturerData", OP_READ, emit=_empty),
            ), "DeviceClassification Server"),
            # without stateData on the EV, eebus-go reports the EV as not connected (15.3)
            Feature(F_DIAG, "DeviceDiagnosis", SERVER, (
                Function("deviceDiagnosisStateData", OP_READ, freeze=self._state_freeze),
            ), "DeviceDiagnosis Server"),
            Feature(F_ELEC, "ElectricalConnection", SERVER, (
                Function("electricalConnectionDescriptionListData", _R, table=t(
                    "electricalConnectionDescriptionListData",
                    (("electricalConnectionId", 0, "powerSupplyType", "ac", "acConnectedPhases", self.np,
                      "positiveEnergyDirection", "consume"),), ("electricalConnectionId",))),
                Function("electricalConnectionParameterDescriptionListData", _R, table=t(
                    "electricalConnectionParameterDescriptionListData", self._param_desc, ("electricalConnectionId", "parameterId"))),
                Function("electricalConnectionPermittedValueSetListData", _R, table=t(
                    "electricalConnectionPermittedValueSetListData", self._permitted_rows, ("electricalConnectionId", "parameterId"))),
            ), "ElectricalConnection Server"),
            Feature(F_MEAS, "Measurement", SERVER, (
                Function("measurementDescriptionListData", _R, table=t("measurementDescriptionListData", self._meas_desc, ("measurementId",))),
                Function("measurementConstraintsListData", _R, table=t("measurementConstraintsListData", self._constraint_rows, ("measurementId",))),
                Function("measurementListData", _R, table=t("measurementListData", self._measurement_rows, ("measurementId",))),
            ), "Measurement Server"),
            Feature(F_LOAD, "LoadControl", SERVER, (
                Function("loadControlLimitDescriptionListData", _R, table=t("loadControlLimitDescriptionListData", self._limit_desc, ("limitId",))),
                Function("loadControlLimitListData", _RW, write=self._write_limits, table=t("loadControlLimitListData", self._limit_rows, ("limitId",))),
            ), "LoadControl Server"),
        ]
        if self.cevc is not None:
            feats.extend(self.cevc.features(F_SERIES, F_INCENTIVE))
        return Entity(ADDRESS, "EV", feats)

    # ---- data -----------------------------------------------------------------------------

    def operating_state(self):
        ch = self.ch
        if ch.get(F_ERROR):
            return "failure"
        # charging -> normalOperation; plugged and waiting (state B, paused) -> standby, which a
        # CEM reads as "EV sleeping / paused" (EVCC scenario 7)
        return "normalOperation" if ch.get(F_CHARGING) or ch.get(F_STATE) == "C" else "standby"

    def _state_freeze(self):
        state = self.operating_state()

        def emit(w):
            w.obj_begin()
            w.member("operatingState")
            w.string(state)
            w.obj_end()

        return emit

    def _config_rows(self):
        return (
            ("keyId", 1, "value", ["string", self.comm], "isValueChangeable", False),
            # one control-pilot duty cycle for all phases: no asymmetric charging with IEC 61851
            ("keyId", 2, "value", ["boolean", False], "isValueChangeable", False),
        )

    def current_range(self):
        """(min, max) A per phase the EV can be given: the controller's range, capped by the
        EV's own maximum when known."""
        lo, hi = self.ch.hw_range()
        ev = self.ch.get(F_EV_MAX)
        if ev and 0 < ev < hi:
            hi = ev
        if hi < lo:
            hi = lo
        return lo, hi

    def _permitted_rows(self):
        lo, hi = self.current_range()
        n = self.np
        v = self.voltage
        rows = []
        # the discrete value 0: a request below the minimum pauses (eebus-go replaces a
        # value under range.min with it, spine.md 12.10); one value set serves every phase
        vs = _value_set(0, scaled(lo), scaled(hi))
        for p in range(n):
            rows.append(("electricalConnectionId", 0, "parameterId", p, "permittedValueSet", vs))
        rows.append(("electricalConnectionId", 0, "parameterId", 3, "permittedValueSet",
                     _value_set(0, scaled(int(lo * v * n)), scaled(int(hi * v * n)))))
        vs = _value_set(None, (0, 0), scaled(int(hi * v)))
        for p in range(n):
            rows.append(("electricalConnectionId", 0, "parameterId", 4 + p, "permittedValueSet", vs))
        return tuple(rows)

    def _constraint_rows(self):
        lo, hi = self.current_range()
        n = self.np
        rows = []
        for p in range(n):
            rows.append(("measurementId", p, "valueRangeMin", (0, 0), "valueRangeMax", scaled(hi), "valueStepSize", (1, -1)))
        for p in range(n):
            rows.append(("measurementId", 3 + p, "valueRangeMin", (0, 0), "valueRangeMax", scaled(int(hi * self.voltage)), "valueStepSize", (1, 0)))
        rows.append(("measurementId", 6, "valueRangeMin", (0, 0), "valueStepSize", (1, 0)))
        return tuple(rows)

    def _measurement_rows(self):
        ch = self.ch
        rows = []
        n = self.np
        for p in range(n):
            i = ch.get(F_I1 + p)
            if i is not None:
                rows.append(("measurementId", p, "valueType", "value", "value", scaled(round(i, 1) if isinstance(i, float) else i),
                             "valueSource", "measuredValue"))
        for p in range(n):
            i = ch.get(F_I1 + p)
            if i is not None:
                u = ch.get(F_U1 + p)
                if not u or not 180 <= u <= 260:
                    u = self.voltage
                rows.append(("measurementId", 3 + p, "valueType", "value", "value", scaled(int(i * u + 0.5)),
                             "valueSource", "measuredValue" if ch.get(F_U1 + p) else "calculatedValue"))
        e = ch.get(F_SESSION_WH)
        if e is not None:
            rows.append(("measurementId", 6, "valueType", "value", "value", scaled(int(e)), "valueSource", "measuredValue"))
        return tuple(rows)

    def _limit_rows(self):
        rows = []
        lo, hi = self.current_range()
        for k in range(2):
            for p in range(self.np):
                lid = 3 * k + p
                v = self.value[lid]
                # inactive or never written: the phase maximum, which is what a CEM assumes
                rows.append(("limitId", lid, "isLimitChangeable", True, "isLimitActive", self.active[lid],
                             "value", scaled(hi if v is None else v)))
        return tuple(rows)

    # ---- the CEM's writes (OPEV, OSCEV) -------------------------------------------------------

    def _write_limits(self, session, inc):
        ents = entries(inc.data.result if inc.data is not None else None, "loadControlLimitData")
        if ents is None:
            return D.E_GENERAL, "malformed loadControlLimitData"
        _, hi = self.current_range()
        new_active = list(self.active)
        new_value = list(self.value)
        # check everything first: a refused write changes nothing (SPINE 5.3.4.2)
        for e in ents:
            lid = e.get("limitId")
            if not isinstance(lid, int) or isinstance(lid, bool) or lid % 3 >= self.np or not 0 <= lid < 6:
                return D.E_REJECTED, "unknown limitId %s" % (lid,)
            act = e.get("isLimitActive", new_active[lid])
            if act is not True and act is not False:
                return D.E_REJECTED, "isLimitActive must be a boolean"
            if "value" in e:
                v = number(e["value"])
                if v is None:
                    return D.E_REJECTED, "value must be a scaled number"
                if v < 0:
                    return D.E_REJECTED, "limit %d: negative current" % lid
                # above the permitted maximum: clamped to it (the EV cannot draw more anyway);
                # below the minimum: kept, the charger model pauses (spine.md 12.10)
                if v > hi:
                    v = hi
                new_value[lid] = v
            new_active[lid] = act
        self.active = new_active
        self.value = new_value
        self.apply()
        return D.E_OK, None

    def apply(self):
        """Hand the CEM's limits to the charger model (after an accepted write)."""
        now = self.now()
        for k in range(2):
            vals = []
            any_active = False
            for p in range(self.np):
                lid = 3 * k + p
                if self.active[lid] and self.value[lid] is not None:
                    vals.append(self.value[lid])
                    any_active = True
                else:
                    vals.append(None)
            if any_active:
                self.ch.request(_SRC[k], _KIND[k], vals, UNIT_A, now)
            else:
                self.ch.withdraw(_SRC[k], now)

    def unplugged(self):
        """The EV left: its limits go with it."""
        self.active = [False] * 6
        self.value = [None] * 6
        now = self.now()
        self.ch.withdraw(SRC_OPEV, now)
        self.ch.withdraw(SRC_OSCEV, now)


def _empty(w):
    w.obj_begin()
    w.obj_end()


def _value_set(discrete, lo, hi):
    # permittedValueSet: [{value: [discrete]?, range: [{min, max}]}]
    return Items([["value", None if discrete is None else Items([(discrete, 0)]),
                   "range", Items([["min", lo, "max", hi]])]])
