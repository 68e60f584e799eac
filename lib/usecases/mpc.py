# MPC, monitoringOfPowerConsumption 1.0.0 (spine.md 12.12), the monitored unit: the EVSE
# entity's ElectricalConnection and Measurement servers with the station's power, energy,
# currents and voltages (the ElectricalConnection server also lists LPC's characteristics).
#
# Numbering: measurements 0 total power, 1+p power per phase, 4 energy consumed, 5+p current
# per phase, 8+p voltage per phase; parameter ids equal the measurement ids.
from charger import F_I1, F_POWER, F_TOTAL_WH, F_U1
from compat import const
from usecases.measurement import (
    Delta, NEUTRAL, PHASES, electrical_connection, measured, measurement, measurement_desc, parameter_desc, tenth,
)

MPC = ("monitoringOfPowerConsumption", "1.0.0", (1, 2, 3, 4), "release")

FT_ELECTRICAL = const(6)  # on the EVSE entity
FT_MEASUREMENT = const(7)


class Mpc:
    def __init__(self, charger, phases, voltage):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.delta = Delta(self._meas_desc())

    # the description rows are built per read (a CEM reads them when it connects), not kept

    def _meas_desc(self):
        n = self.np
        return tuple(
            [measurement_desc(0, "power", "W", "acPowerTotal")]
            + [measurement_desc(1 + p, "power", "W", "acPower") for p in range(n)]
            + [measurement_desc(4, "energy", "Wh", "acEnergyConsumed")]
            + [measurement_desc(5 + p, "current", "A", "acCurrent") for p in range(n)]
            + [measurement_desc(8 + p, "voltage", "V", "acVoltage") for p in range(n)]
        )

    def _param_desc(self):
        n = self.np
        allp = "abc"[:n]
        return tuple(
            [parameter_desc(0, 0, allp, ("acMeasurementType", "real"), "acPowerTotal")]
            + [parameter_desc(1 + p, 1 + p, PHASES[p], NEUTRAL, "acPower") for p in range(n)]
            + [parameter_desc(4, 4, allp, (), "acEnergyConsumed")]
            + [parameter_desc(5 + p, 5 + p, PHASES[p], NEUTRAL, "acCurrent") for p in range(n)]
            + [parameter_desc(8 + p, 8 + p, PHASES[p],
                              ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent"), "acVoltage")
               for p in range(n)]
        )

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
