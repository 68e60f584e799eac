# The ElectricalConnection and Measurement servers as the use cases share them (spine.md 12.3,
# 12.10, 12.12): the EVSE entity's carry MPC's data (with LPC's nominal-max characteristic),
# the EV entity's EVCEM's (with EVCC's permitted values and the current parameters OPEV/OSCEV
# limits point at). Written once here: the feature layouts, the description and value rows,
# and the EV's current range that permitted values, constraints and limits all state.
from charger import F_EV_MAX
from spine import device as DV
from spine import table as T

PHASES = ("a", "b", "c")
# parameter elements of a per-phase value measured against neutral
NEUTRAL = ("acMeasuredInReferenceTo", "neutral", "acMeasurementType", "real")
NEUTRAL_RMS = NEUTRAL + ("acMeasurementVariant", "rms")


def measurement_desc(mid, mtype, unit, scope):
    return ("measurementId", mid, "measurementType", mtype, "commodityType", "electricity", "unit", unit,
            "scopeType", scope)


def parameter_desc(pid, mid, phases, extra, scope):
    # mid None: a parameter without a measurement of its own (the EV's acPowerTotal)
    return (("electricalConnectionId", 0, "parameterId", pid) + (() if mid is None else ("measurementId", mid))
            + ("voltageType", "ac", "acMeasuredPhases", phases) + extra + (("scopeType", scope) if scope else ()))


def measured(mid, value, source="measuredValue"):
    return ("measurementId", mid, "valueType", "value", "value", T.scaled(value), "valueSource", source)


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


def electrical_connection(fid, phases, params, characteristics, permitted):
    """The ElectricalConnection server: [characteristics,] the one AC connection, its
    parameters[, permitted values]; rows as sequences or callables (spine.table.Table)."""
    fns = []
    if characteristics is not None:
        fns.append(T.Table("electricalConnectionCharacteristicListData", characteristics))
    fns.append(T.Table("electricalConnectionDescriptionListData", (
        ("electricalConnectionId", 0, "powerSupplyType", "ac", "acConnectedPhases", phases,
         "positiveEnergyDirection", "consume"),
    )))
    fns.append(T.Table("electricalConnectionParameterDescriptionListData", params))
    if permitted is not None:
        fns.append(T.Table("electricalConnectionPermittedValueSetListData", permitted))
    return DV.Feature(fid, "ElectricalConnection", "server", tuple(fns), "ElectricalConnection Server")


def measurement(fid, descriptions, values, constraints):
    """The Measurement server: descriptions[, constraints], values."""
    fns = [T.Table("measurementDescriptionListData", descriptions)]
    if constraints is not None:
        fns.append(T.Table("measurementConstraintsListData", constraints))
    fns.append(T.Table("measurementListData", values))
    return DV.Feature(fid, "Measurement", "server", tuple(fns), "Measurement Server")


# Measurement notifies (spine.md 12.3) carry only the values that moved since they were last
# notified, by at least a step of their unit: 0.5 A, 100 W, 10 Wh, 5 V. Finer steps (0.1 A,
# 10 W, 1 Wh, 1 V) sit inside a controller's noise (the simulator's 230 V +- 2 V and 0.2 A
# ripple) and cut the volume by 15 % only; these by 87 % (README, performance), while a CEM
# still sees every pilot step that matters (1 A) and power to 1 % of 11 kW; a value that
# creeps stays at most one step off until it moves on. They go out as partial notifies
# (cmdControl partial, no selectors): spine-go and the test CEM merge the entries by
# measurementId into what they hold. Reads always get the whole list.
# the units with a step, and the steps a hair under them (7.1 - 7.0 is 0.0999... in binary),
# the last for a unit without one: literals, constants in flash when frozen
_UNITS = ("A", "W", "Wh", "V")
_STEPS = (0.499999, 99.999999, 9.999999, 4.999999, 0)


class Delta:
    """The values last notified, by measurementId, against the descriptions' units."""

    def __init__(self, descriptions):
        # per measurementId the index of its step in _STEPS: bytes, not a float object each
        steps = bytearray(max(d[1] for d in descriptions) + 1)
        for i in range(len(steps)):
            steps[i] = len(_UNITS)
        for d in descriptions:
            u = T.field(d, "unit")
            if u in _UNITS:
                steps[d[1]] = _UNITS.index(u)
        self.steps = steps
        self.sent = [None] * len(steps)
        self.epoch = -1  # app.sub_epoch() at the last notify

    def reset(self):
        # the next notify is a full one (a new EV, whose peer data went with its entity)
        for i in range(len(self.sent)):
            self.sent[i] = None

    def notify(self, app, entity, fid, rows):
        """Notify the rows that moved a step (measured() rows); all rows moved: a full notify.
        A new subscriber gets the whole list first (it may not have read it)."""
        n = app.subscribers(entity, fid)
        if not n:
            return
        e = app.sub_epoch()
        if e != self.epoch:
            # a subscription was made since the last notify (perhaps a new peer in place of
            # one that left): the whole list first, whatever the count of subscribers
            self.epoch = e
            self.reset()
        sent = self.sent
        steps = self.steps
        step = _STEPS
        out = []
        for r in rows:
            mid = r[1]
            n, sc = r[5]
            x = n if sc == 0 else n * 10 ** sc
            last = sent[mid]
            if last is None or abs(x - last) >= step[steps[mid]]:
                sent[mid] = x
                out.append(r)
        if out:
            app.notify(entity, fid, "measurementListData",
                       lambda w: T.emit_list(w, "measurementData", out), len(out) < len(rows))
