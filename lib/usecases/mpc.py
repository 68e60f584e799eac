# MPC, monitoringOfPowerConsumption 1.0.0 (spine.md 12.12), the monitored unit: the EVSE
# entity's ElectricalConnection and Measurement servers with the station's power, energy,
# currents and voltages (the ElectricalConnection server also lists LPC's characteristics).
#
# Numbering: measurements 0 total power, 1+p power per phase, 4 energy consumed, 5+p current
# per phase, 8+p voltage per phase; parameter ids equal the measurement ids.
import charger as C
from compat import const
from usecases import measurement as M

MPC = ("monitoringOfPowerConsumption", "1.0.0", (1, 2, 3, 4), "release")

_FT_ELECTRICAL = const(6)  # on the EVSE entity
_FT_MEASUREMENT = const(7)


class Mpc:
    def __init__(self, charger, phases, voltage):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.delta = M.Delta(self._meas_desc())

    # the description rows are built per read (a CEM reads them when it connects), not kept

    def _meas_desc(self):
        n = self.np
        return tuple(
            [M.measurement_desc(0, "power", "W", "acPowerTotal")]
            + [M.measurement_desc(1 + p, "power", "W", "acPower") for p in range(n)]
            + [M.measurement_desc(4, "energy", "Wh", "acEnergyConsumed")]
            + [M.measurement_desc(5 + p, "current", "A", "acCurrent") for p in range(n)]
            + [M.measurement_desc(8 + p, "voltage", "V", "acVoltage") for p in range(n)]
        )

    def _param_desc(self):
        n = self.np
        allp = "abc"[:n]
        return tuple(
            [M.parameter_desc(0, 0, allp, ("acMeasurementType", "real"), "acPowerTotal")]
            + [M.parameter_desc(1 + p, 1 + p, M.PHASES[p], M.NEUTRAL, "acPower") for p in range(n)]
            + [M.parameter_desc(4, 4, allp, (), "acEnergyConsumed")]
            + [M.parameter_desc(5 + p, 5 + p, M.PHASES[p], M.NEUTRAL, "acCurrent") for p in range(n)]
            + [M.parameter_desc(8 + p, 8 + p, M.PHASES[p],
                              ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent"), "acVoltage")
               for p in range(n)]
        )

    def features(self, characteristics):
        """characteristics: the rows of the ElectricalConnection characteristics (LPC's)."""
        return [
            M.electrical_connection(_FT_ELECTRICAL, self.np, self._param_desc, characteristics, None),
            M.measurement(_FT_MEASUREMENT, self._meas_desc, self._measurement_rows, None),
        ]

    def notify(self, app, entity):
        self.delta.notify(app, entity, _FT_MEASUREMENT, self._measurement_rows())

    def _measurement_rows(self):
        # per notify: the module's names as locals
        measured = M.measured
        tenth = M.tenth
        i1 = C.F_I1
        u1 = C.F_U1
        ch = self.ch
        v = self.voltage
        rows = []
        n = self.np
        cur = [ch.get(i1 + p) for p in range(n)]
        pw = ch.get(C.F_POWER)
        if pw is not None:
            rows.append(measured(0, int(pw)))
        for p in range(n):
            i = cur[p]
            if i is not None:
                u = ch.get(u1 + p)
                rows.append(measured(1 + p, int(i * (u if u and 180 <= u <= 260 else v) + 0.5), "calculatedValue"))
        e = ch.get(C.F_TOTAL_WH)
        if e is not None:
            rows.append(measured(4, int(e)))
        for p in range(n):
            i = cur[p]
            if i is not None:
                rows.append(measured(5 + p, tenth(i)))
        for p in range(n):
            u = ch.get(u1 + p)
            if u is not None:
                rows.append(measured(8 + p, tenth(u)))
        return tuple(rows)
