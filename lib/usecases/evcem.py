# EVCEM, measurementOfElectricityDuringEvCharging 1.0.1 (spine.md 12.3): current and power per
# phase and the charged energy of the plugged-in EV, on the EV entity's Measurement server;
# their parameters are listed on its ElectricalConnection server (usecases.ev).
#
# Numbering (ours to choose, kept stable across plug-ins so a CEM's cached view stays right):
#   measurements: current per phase p -> p, power per phase -> 3+p, charged energy -> 6
#   parameters:   current per phase p -> p (first per phase: eebus-go maps limits through the
#                 first parameter of a phase, spine.md 12.10), acPowerTotal -> 3, power per
#                 phase -> 4+p, energy -> 7
import charger as C
from compat import const
from spine.table import scaled
from usecases import measurement as M

_ROOM = ...  # a free slot in the globals table (compat.py, "A full globals table")

EVCEM = ("measurementOfElectricityDuringEvCharging", "1.0.1", (1, 2, 3), "release")

_FT_MEASUREMENT = const(6)  # on the EV entity


class Evcem:
    def __init__(self, charger, phases, voltage):
        self.ch = charger
        self.np = phases
        self.voltage = voltage
        self.delta = M.Delta(self.meas_desc())

    # the description rows are built per read (a CEM reads them when it connects), not kept

    def meas_desc(self):
        n = self.np
        return tuple(
            [M.measurement_desc(p, "current", "A", "acCurrent") for p in range(n)]
            + [M.measurement_desc(3 + p, "power", "W", "acPower") for p in range(n)]
            + [M.measurement_desc(6, "energy", "Wh", "charge")]
        )

    def param_desc(self):
        n = self.np
        allp = "abc"[:n]
        return tuple(
            [M.parameter_desc(p, p, M.PHASES[p], M.NEUTRAL_RMS, "acCurrent") for p in range(n)]
            + [M.parameter_desc(3, None, allp, ("acMeasurementType", "real"), "acPowerTotal")]
            + [M.parameter_desc(4 + p, 3 + p, M.PHASES[p], M.NEUTRAL_RMS, "acPower") for p in range(n)]
            + [M.parameter_desc(7, 6, allp, (), "charge")]
        )

    def feature(self):
        return M.measurement(_FT_MEASUREMENT, self.meas_desc, self._measurement_rows, self._constraint_rows)

    def notify(self, app, entity):
        self.delta.notify(app, entity, _FT_MEASUREMENT, self._measurement_rows())

    def _constraint_rows(self):
        lo, hi = M.current_range(self.ch)
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
        # per notify: the module's names as locals
        measured = M.measured
        tenth = M.tenth
        i1 = C.F_I1
        u1 = C.F_U1
        ch = self.ch
        rows = []
        n = self.np
        for p in range(n):
            i = ch.get(i1 + p)
            if i is not None:
                rows.append(measured(p, tenth(i)))
        for p in range(n):
            i = ch.get(i1 + p)
            if i is not None:
                u = ch.get(u1 + p)
                if not u or not 180 <= u <= 260:
                    u = self.voltage
                rows.append(measured(3 + p, int(i * u + 0.5),
                                     "measuredValue" if ch.get(u1 + p) else "calculatedValue"))
        e = ch.get(C.F_SESSION_WH)
        if e is not None:
            rows.append(measured(6, int(e)))
        return tuple(rows)
