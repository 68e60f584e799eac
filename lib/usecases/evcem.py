# EVCEM, measurementOfElectricityDuringEvCharging 1.0.1 (spine.md 12.3): current and power per
# phase and the charged energy of the plugged-in EV, on the EV entity's Measurement server;
# their parameters are listed on its ElectricalConnection server (usecases.ev).
#
# Numbering (ours to choose, kept stable across plug-ins so a CEM's cached view stays right):
#   measurements: current per phase p -> p, power per phase -> 3+p, charged energy -> 6
#   parameters:   current per phase p -> p (first per phase: eebus-go maps limits through the
#                 first parameter of a phase, spine.md 12.10), acPowerTotal -> 3, power per
#                 phase -> 4+p, energy -> 7
from charger import F_I1, F_SESSION_WH, F_U1
from compat import const
from spine.table import scaled
from usecases.measurement import Delta, current_range, for_phases, measured, measurement, tenth

EVCEM = ("measurementOfElectricityDuringEvCharging", "1.0.1", (1, 2, 3), "release")

FT_MEASUREMENT = const(6)  # on the EV entity


# the descriptions of a three-phase station (usecases.measurement.for_phases cuts them)
_MEAS_DESC = (
    ("measurementId", 0, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 1, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 2, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 3, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 4, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 5, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 6, "measurementType", "energy", "commodityType", "electricity", "unit", "Wh",
     "scopeType", "charge"),
)
_PARAM_DESC = (
    ("electricalConnectionId", 0, "parameterId", 0, "measurementId", 0, "voltageType", "ac", "acMeasuredPhases", "a",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 1, "measurementId", 1, "voltageType", "ac", "acMeasuredPhases", "b",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 2, "measurementId", 2, "voltageType", "ac", "acMeasuredPhases", "c",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 3, "voltageType", "ac", "acMeasuredPhases", "abc",
     "acMeasurementType", "real", "scopeType", "acPowerTotal"),
    ("electricalConnectionId", 0, "parameterId", 4, "measurementId", 3, "voltageType", "ac", "acMeasuredPhases", "a",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 5, "measurementId", 4, "voltageType", "ac", "acMeasuredPhases", "b",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 6, "measurementId", 5, "voltageType", "ac", "acMeasuredPhases", "c",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "acMeasurementVariant", "rms",
     "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 7, "measurementId", 6, "voltageType", "ac",
     "acMeasuredPhases", "abc", "scopeType", "charge"),
)


class Evcem:
    def __init__(self, charger, phases, voltage):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.param_desc, self.meas_desc = for_phases(_PARAM_DESC, _MEAS_DESC, phases)
        self.delta = Delta(self.meas_desc)

    def feature(self):
        return measurement(FT_MEASUREMENT, self.meas_desc, self._measurement_rows, self._constraint_rows)

    def notify(self, app, entity):
        self.delta.notify(app, entity, FT_MEASUREMENT, self._measurement_rows())

    def _constraint_rows(self):
        lo, hi = current_range(self.ch)
        n = self.np
        rows = []
        for p in range(n):
            rows.append(("measurementId", p, "valueRangeMin", (0, 0), "valueRangeMax", scaled(hi),
                         "valueStepSize", (1, -1)))
        for p in range(n):
            rows.append(("measurementId", 3 + p, "valueRangeMin", (0, 0),
                         "valueRangeMax", scaled(int(hi * self.voltage)), "valueStepSize", (1, 0)))
        rows.append(("measurementId", 6, "valueRangeMin", (0, 0), "valueStepSize", (1, 0)))
        return tuple(rows)

    def _measurement_rows(self):
        ch = self.ch
        rows = []
        n = self.np
        for p in range(n):
            i = ch.get(F_I1 + p)
            if i is not None:
                rows.append(measured(p, tenth(i)))
        for p in range(n):
            i = ch.get(F_I1 + p)
            if i is not None:
                u = ch.get(F_U1 + p)
                if not u or not 180 <= u <= 260:
                    u = self.voltage
                rows.append(measured(3 + p, int(i * u + 0.5),
                                     "measuredValue" if ch.get(F_U1 + p) else "calculatedValue"))
        e = ch.get(F_SESSION_WH)
        if e is not None:
            rows.append(measured(6, int(e)))
        return tuple(rows)
