# The ElectricalConnection and Measurement servers as the use cases share them (spine.md 12.3,
# 12.10, 12.12): the EVSE entity's carry MPC's data (with LPC's nominal-max characteristic),
# the EV entity's EVCEM's (with EVCC's permitted values and the current parameters OPEV/OSCEV
# limits point at). Written once here: the feature layouts, the description and value rows,
# and the EV's current range that permitted values, constraints and limits all state.
from charger import F_EV_MAX
from spine.device import OPS_READ, SERVER, Feature
from spine.table import list_function, scaled

PHASES = ("a", "b", "c")
# parameter elements of a per-phase value measured against neutral
NEUTRAL = ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real")
NEUTRAL_RMS = NEUTRAL + ("acMeasurementVariant", "rms")
_MEAS_KEYS = ("measurementId",)
_PARAM_KEYS = ("electricalConnectionId", "parameterId")


def measurement_desc(mid, mtype, unit, scope):
    return ("measurementId", mid, "measurementType", mtype, "commodityType", "electricity", "unit", unit, "scopeType", scope)


def parameter_desc(pid, mid, phases, extra=(), scope=None):
    # mid None: a parameter without a measurement of its own (the EV's acPowerTotal)
    return (("electricalConnectionId", 0, "parameterId", pid) + (() if mid is None else ("measurementId", mid))
            + ("voltageType", "ac", "acMeasuredPhases", phases) + extra + (("scopeType", scope) if scope else ()))


def measured(mid, value, source="measuredValue"):
    return ("measurementId", mid, "valueType", "value", "value", scaled(value), "valueSource", source)


def tenth(x):
    # a measured current or voltage as the controller reports it, floats to 0.1
    return round(x, 1) if isinstance(x, float) else x


def current_range(ch):
    """(min, max) A per phase the EV can be given: the controller's range, capped by the EV's
    own maximum when known."""
    lo, hi = ch.hw_range()
    ev = ch.get(F_EV_MAX)
    if ev and 0 < ev < hi:
        hi = ev
    if hi < lo:
        hi = lo
    return lo, hi


def electrical_connection(fid, phases, params, characteristics=None, permitted=None):
    """The ElectricalConnection server: [characteristics,] the one AC connection, its
    parameters[, permitted values]; rows as sequences or callables (spine.table.Table)."""
    fns = []
    if characteristics is not None:
        fns.append(list_function("electricalConnectionCharacteristicListData", OPS_READ, characteristics, ("characteristicId",)))
    fns.append(list_function("electricalConnectionDescriptionListData", OPS_READ, (("electricalConnectionId", 0, "powerSupplyType", "ac", "acConnectedPhases", phases,
          "positiveEnergyDirection", "consume"),), ("electricalConnectionId",)))
    fns.append(list_function("electricalConnectionParameterDescriptionListData", OPS_READ, params, _PARAM_KEYS))
    if permitted is not None:
        fns.append(list_function("electricalConnectionPermittedValueSetListData", OPS_READ, permitted, _PARAM_KEYS))
    return Feature(fid, "ElectricalConnection", SERVER, tuple(fns), "ElectricalConnection Server")


def measurement(fid, descriptions, values, constraints=None):
    """The Measurement server: descriptions[, constraints], values."""
    fns = [list_function("measurementDescriptionListData", OPS_READ, descriptions, _MEAS_KEYS)]
    if constraints is not None:
        fns.append(list_function("measurementConstraintsListData", OPS_READ, constraints, _MEAS_KEYS))
    fns.append(list_function("measurementListData", OPS_READ, values, _MEAS_KEYS))
    return Feature(fid, "Measurement", SERVER, tuple(fns), "Measurement Server")
