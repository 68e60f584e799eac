# MPC, monitoringOfPowerConsumption 1.0.0 (spine.md 12.12), the monitored unit: the EVSE
# entity's ElectricalConnection and Measurement servers with the station's power, energy,
# currents and voltages (the ElectricalConnection server also lists LPC's characteristics).
#
# Numbering: measurements 0 total power, 1+p power per phase, 4 energy consumed, 5+p current
# per phase, 8+p voltage per phase; parameter ids equal the measurement ids.
from charger import F_I1, F_POWER, F_TOTAL_WH, F_U1
from compat import const
from usecases.measurement import Delta, electrical_connection, for_phases, measured, measurement, tenth

MPC = ("monitoringOfPowerConsumption", "1.0.0", (1, 2, 3, 4), "release")

FT_ELECTRICAL = const(6)  # on the EVSE entity
FT_MEASUREMENT = const(7)


# the descriptions of a three-phase station (usecases.measurement.for_phases cuts them)
_MEAS_DESC = (
    ("measurementId", 0, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPowerTotal"),
    ("measurementId", 1, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 2, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 3, "measurementType", "power", "commodityType", "electricity", "unit", "W",
     "scopeType", "acPower"),
    ("measurementId", 4, "measurementType", "energy", "commodityType", "electricity", "unit", "Wh",
     "scopeType", "acEnergyConsumed"),
    ("measurementId", 5, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 6, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 7, "measurementType", "current", "commodityType", "electricity", "unit", "A",
     "scopeType", "acCurrent"),
    ("measurementId", 8, "measurementType", "voltage", "commodityType", "electricity", "unit", "V",
     "scopeType", "acVoltage"),
    ("measurementId", 9, "measurementType", "voltage", "commodityType", "electricity", "unit", "V",
     "scopeType", "acVoltage"),
    ("measurementId", 10, "measurementType", "voltage", "commodityType", "electricity", "unit", "V",
     "scopeType", "acVoltage"),
)
_PARAM_DESC = (
    ("electricalConnectionId", 0, "parameterId", 0, "measurementId", 0, "voltageType", "ac",
     "acMeasuredPhases", "abc", "acMeasurementType", "real", "scopeType", "acPowerTotal"),
    ("electricalConnectionId", 0, "parameterId", 1, "measurementId", 1, "voltageType", "ac", "acMeasuredPhases", "a",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 2, "measurementId", 2, "voltageType", "ac", "acMeasuredPhases", "b",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 3, "measurementId", 3, "voltageType", "ac", "acMeasuredPhases", "c",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acPower"),
    ("electricalConnectionId", 0, "parameterId", 4, "measurementId", 4, "voltageType", "ac",
     "acMeasuredPhases", "abc", "scopeType", "acEnergyConsumed"),
    ("electricalConnectionId", 0, "parameterId", 5, "measurementId", 5, "voltageType", "ac", "acMeasuredPhases", "a",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 6, "measurementId", 6, "voltageType", "ac", "acMeasuredPhases", "b",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 7, "measurementId", 7, "voltageType", "ac", "acMeasuredPhases", "c",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real", "scopeType", "acCurrent"),
    ("electricalConnectionId", 0, "parameterId", 8, "measurementId", 8, "voltageType", "ac", "acMeasuredPhases", "a",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent", "scopeType", "acVoltage"),
    ("electricalConnectionId", 0, "parameterId", 9, "measurementId", 9, "voltageType", "ac", "acMeasuredPhases", "b",
     "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent", "scopeType", "acVoltage"),
    ("electricalConnectionId", 0, "parameterId", 10, "measurementId", 10, "voltageType", "ac",
     "acMeasuredPhases", "c", "acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent",
     "scopeType", "acVoltage"),
)


class Mpc:
    def __init__(self, charger, phases, voltage):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self._param_desc, self._meas_desc = for_phases(_PARAM_DESC, _MEAS_DESC, phases)
        self.delta = Delta(self._meas_desc)

    def features(self, characteristics):
        """characteristics: the rows of the ElectricalConnection characteristics (LPC's)."""
        return [
            electrical_connection(FT_ELECTRICAL, self.np, self._param_desc, characteristics=characteristics),
            measurement(FT_MEASUREMENT, self._meas_desc, self._measurement_rows),
        ]

    def notify(self, app, entity):
        self.delta.notify(app, entity, FT_MEASUREMENT, self._measurement_rows())

    def _measurement_rows(self):
        ch = self.ch
        v = self.voltage
        rows = []
        n = self.np
        cur = [ch.get(F_I1 + p) for p in range(n)]
        pw = ch.get(F_POWER)
        if pw is not None:
            rows.append(measured(0, int(pw)))
        for p in range(n):
            i = cur[p]
            if i is not None:
                u = ch.get(F_U1 + p)
                rows.append(measured(1 + p, int(i * (u if u and 180 <= u <= 260 else v) + 0.5), "calculatedValue"))
        e = ch.get(F_TOTAL_WH)
        if e is not None:
            rows.append(measured(4, int(e)))
        for p in range(n):
            i = cur[p]
            if i is not None:
                rows.append(measured(5 + p, tenth(i)))
        for p in range(n):
            u = ch.get(F_U1 + p)
            if u is not None:
                rows.append(measured(8 + p, tenth(u)))
        return tuple(rows)
