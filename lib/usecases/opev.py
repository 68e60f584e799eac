# OPEV, overloadProtectionByEvChargingCurrentCurtailment 1.0.1, and OSCEV,
# optimizationOfSelfConsumptionDuringEvCharging 1.0.1 (spine.md 12.5-12.7, 12.10): per-phase
# current limits on the EV entity's LoadControl server, writable by the CEM, handed to the
# charger model as obligation (OPEV) / recommendation (OSCEV).
#
# Numbering: limits OPEV phase p -> p, OSCEV phase p -> 3+p (the captured layout, 12.6), each
# referencing the current measurement p (usecases.evcem).
import charger as C
from compat import const
from spine import datagram as D
from spine import device as DV
from spine import table as T
from usecases.measurement import current_range

OPEV = ("overloadProtectionByEvChargingCurrentCurtailment", "1.0.1", (1, 2, 3), "release")
OSCEV = ("optimizationOfSelfConsumptionDuringEvCharging", "1.0.1", (1, 2, 3), "release")

_FT_LOADCONTROL = const(7)  # on the EV entity

_SRC = (C.SRC_OPEV, C.SRC_OSCEV)
_KIND = (C.OBLIGATION, C.RECOMMENDATION)


class Opev:
    """OPEV and OSCEV limits over the charger model. now(): ms ticks (for limit requests)."""

    def __init__(self, charger, phases, now):
        self.ch = charger
        self.np = phases
        self.now = now
        # what the CEM wrote: per limit id (OPEV 0..2, OSCEV 3..5): active, value in A; the
        # lists are kept (changed in place), so the EV entity shares them
        self.active = [False] * 6
        self.value = [None] * 6
        # the session whose accepted write set the limits, and the current OPEV falls back to
        # when it goes silent or leaves (None: the EV's minimum; usecases.ev_fallback_a)
        self.owner = None
        self.fallback_a = None

    def feature(self):
        return DV.Feature(_FT_LOADCONTROL, "LoadControl", "server", (
            T.Table("loadControlLimitDescriptionListData", self._limit_desc),
            T.Table("loadControlLimitListData", self._limit_rows, self._write_limits),
        ), "LoadControl Server")

    def _limit_desc(self):
        # built per read (a CEM reads it when it connects), not kept
        lim = []
        for k in range(2):
            cat, scope = ("obligation", "overloadProtection") if k == 0 else ("recommendation", "selfConsumption")
            for p in range(self.np):
                lim.append(("limitId", 3 * k + p, "limitType", "maxValueLimit", "limitCategory", cat,
                            "measurementId", p, "unit", "A", "scopeType", scope))
        return tuple(lim)

    def notify(self, app, entity):
        app.notify(entity, _FT_LOADCONTROL, "loadControlLimitListData")

    def _limit_rows(self):
        rows = []
        lo, hi = current_range(self.ch)
        for k in range(2):
            for p in range(self.np):
                lid = 3 * k + p
                v = self.value[lid]
                # inactive or never written: the phase maximum, which is what a CEM assumes
                rows.append(("limitId", lid, "isLimitChangeable", True, "isLimitActive", self.active[lid],
                             "value", T.scaled(hi if v is None else v)))
        return tuple(rows)

    # ---- the CEM's writes

    def _write_limits(self, session, inc):
        ents = T.entries(inc.data.result if inc.data is not None else None, "loadControlLimitData")
        if ents is None:
            return D.E_GENERAL, "malformed loadControlLimitData"
        _, hi = current_range(self.ch)
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
                v = T.number(e["value"])
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
        self.active[:] = new_active
        self.value[:] = new_value
        self.owner = session
        self.apply()
        return D.E_OK, None

    def apply(self):
        """Hand the CEM's limits to the charger model (after an accepted write)."""
        now = self.now()
        self.ch.end_failsafe(C.SRC_OPEV, now)  # the peer is back and wrote: its limits again
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
                self.ch.request(_SRC[k], _KIND[k], vals, C.UNIT_A, now)
            else:
                self.ch.withdraw(_SRC[k], now)

    def fallback(self, now):
        """The writing peer fell silent (no heartbeat within its heartbeatTimeout) or left:
        OSCEV recommendations are withdrawn, active OPEV obligations are replaced by the safe
        current (fallback_a, default the EV's minimum) as a failsafe limit of the charger model,
        published as the limits in force. A new write from any bound peer restores normal
        operation. True when something changed (the caller notifies)."""
        self.owner = None
        act = self.active
        if True not in act:
            return False
        ch = self.ch
        a = self.fallback_a
        if a is None:
            a = current_range(ch)[0]
        obl = False
        for i in range(6):
            if act[i]:
                if i < 3:
                    self.value[i] = a
                    obl = True
                else:
                    act[i] = False
                    self.value[i] = None
        ch.withdraw(C.SRC_OSCEV, now)
        if obl:
            ch.failsafe(C.SRC_OPEV, a, C.UNIT_A, None)
            ch.enter_failsafe(C.SRC_OPEV, now)
        return True

    def unplugged(self):
        """The EV left: its limits go with it."""
        for i in range(6):
            self.active[i] = False
            self.value[i] = None
        self.owner = None
        now = self.now()
        self.ch.end_failsafe(C.SRC_OPEV, now)
        self.ch.withdraw(C.SRC_OPEV, now)
        self.ch.withdraw(C.SRC_OSCEV, now)
