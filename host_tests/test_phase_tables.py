"""The use cases' description rows are constant tuples written for three phases (they stay in
flash when frozen) and usecases.measurement.for_phases cuts them to the station's phases. Here
they are checked against the rows as the use cases built them per instance before (the builder
below, from the code they replaced), for one, two and three phases."""

import pytest

from charger import Charger
from usecases.evcem import Evcem
from usecases.mpc import Mpc
from usecases.opev import Opev

PHASES = ("a", "b", "c")
NEUTRAL = ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real")
NEUTRAL_RMS = NEUTRAL + ("acMeasurementVariant", "rms")


def measurement_desc(mid, mtype, unit, scope):
    return ("measurementId", mid, "measurementType", mtype, "commodityType", "electricity", "unit", unit,
            "scopeType", scope)


def parameter_desc(pid, mid, phases, extra=(), scope=None):
    return (("electricalConnectionId", 0, "parameterId", pid) + (() if mid is None else ("measurementId", mid))
            + ("voltageType", "ac", "acMeasuredPhases", phases) + extra + (("scopeType", scope) if scope else ()))


def mpc_reference(n):
    allp = "abc"[:n]
    meas = tuple(
        [measurement_desc(0, "power", "W", "acPowerTotal")]
        + [measurement_desc(1 + p, "power", "W", "acPower") for p in range(n)]
        + [measurement_desc(4, "energy", "Wh", "acEnergyConsumed")]
        + [measurement_desc(5 + p, "current", "A", "acCurrent") for p in range(n)]
        + [measurement_desc(8 + p, "voltage", "V", "acVoltage") for p in range(n)]
    )
    params = tuple(
        [parameter_desc(0, 0, allp, ("acMeasurementType", "real"), "acPowerTotal")]
        + [parameter_desc(1 + p, 1 + p, PHASES[p], NEUTRAL, "acPower") for p in range(n)]
        + [parameter_desc(4, 4, allp, (), "acEnergyConsumed")]
        + [parameter_desc(5 + p, 5 + p, PHASES[p], NEUTRAL, "acCurrent") for p in range(n)]
        + [parameter_desc(8 + p, 8 + p, PHASES[p],
                          ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "apparent"), "acVoltage")
           for p in range(n)]
    )
    return meas, params


def evcem_reference(n):
    allp = "abc"[:n]
    meas = tuple(
        [measurement_desc(p, "current", "A", "acCurrent") for p in range(n)]
        + [measurement_desc(3 + p, "power", "W", "acPower") for p in range(n)]
        + [measurement_desc(6, "energy", "Wh", "charge")]
    )
    params = tuple(
        [parameter_desc(p, p, PHASES[p], NEUTRAL_RMS, "acCurrent") for p in range(n)]
        + [parameter_desc(3, None, allp, ("acMeasurementType", "real"), "acPowerTotal")]
        + [parameter_desc(4 + p, 3 + p, PHASES[p], NEUTRAL_RMS, "acPower") for p in range(n)]
        + [parameter_desc(7, 6, allp, (), "charge")]
    )
    return meas, params


def opev_reference(n):
    lim = []
    for k in range(2):
        cat, scope = ("obligation", "overloadProtection") if k == 0 else ("recommendation", "selfConsumption")
        for p in range(n):
            lim.append(("limitId", 3 * k + p, "limitType", "maxValueLimit", "limitCategory", cat,
                        "measurementId", p, "unit", "A", "scopeType", scope))
    return tuple(lim)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_descriptions_per_phase_count(n):
    ch = Charger(6, 32, n, 230, 1)
    m = Mpc(ch, n, 230)
    assert (m._meas_desc, m._param_desc) == mpc_reference(n)
    e = Evcem(ch, n, 230)
    assert (e.meas_desc, e.param_desc) == evcem_reference(n)
    assert Opev(ch, n, lambda: 0)._limit_desc == opev_reference(n)
    # the measurement steps follow the descriptions (ids of the phases left out have none)
    assert [s > 0 for s in m.delta.steps] == [i in [d[1] for d in m._meas_desc] for i in range(len(m.delta.steps))]
