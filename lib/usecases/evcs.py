# EVCS, evChargingSummary 1.0.1 (spine.md 12.4), the EVSE side: the Bill server on the EVSE
# entity and its data, sans-IO.
# A bill is added when a charging session ends (energy from the model, times absolute UTC
# when the clock is synced); the energy broker, who knows prices and the PV share, may then
# write cost and the grid / self-produced split of our bills.
#
# Shapes: bill ids 1..max_bills used in turn (the oldest bill gives way), billType
# chargingSummary, positions 1 gridElectricEnergy and 2 selfProducedElectricEnergy (100/0 %
# until the broker says otherwise). In the SPINE schema a position's (and the total's) value
# and cost are lists (BillValueType/BillCostType, maxOccurs unbounded, linked by
# valueId/costId); spine-go models them as single objects. We send lists, as Tinkerforge
# does, and accept both on write. Bills live in RAM: they are a summary for the broker, not
# the station's billing record.
import charger as C
from compat import const, ticks_diff
from spine import device as DV
from spine import table as T

EVCS = ("evChargingSummary", "1.0.1", (1,), "release")

_FT_BILL = const(8)  # on the EVSE entity

# spine.datagram's result numbers, private: out of the globals table
_E_OK = const(0)
_E_REJECTED = const(7)  # commandRejected

_POS_GRID = const(1)
_POS_SELF = const(2)
_MAX_COSTS = const(4)
_BILL_TYPES = T.Items(("chargingSummary",))
_COST_TYPES = const(("absolutePrice", "relativePrice", "co2Emission", "renewableEnergy", "radioactiveWaste"))


def _sn(v, lo=None, hi=None):
    x = T.number(T.as_obj(v))
    if x is None or (lo is not None and x < lo) or (hi is not None and x > hi):
        return None, None
    return (v["number"], v.get("scale", 0)), x


# ---- UTC text <-> seconds (only to place a session's start when the clock synced mid-session)


def _days(y, m, d):
    # days since 1970-01-01 of a proleptic Gregorian date
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def utc_seconds(t):
    """Seconds since 1970 of "YYYY-MM-DDTHH:MM:SSZ", or None."""
    if (not isinstance(t, str) or len(t) != 20 or t[4] != "-" or t[7] != "-" or t[10] != "T"
            or t[13] != ":" or t[16] != ":" or t[19] != "Z"):
        return None
    try:
        y, mo, d = int(t[0:4]), int(t[5:7]), int(t[8:10])
        h, mi, s = int(t[11:13]), int(t[14:16]), int(t[17:19])
    except ValueError:
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        return None
    return _days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def utc_text(secs):
    z = secs // 86400 + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (m <= 2)
    r = secs % 86400
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, r // 3600, (r // 60) % 60, r % 60)


class _Bill:
    # what a bill holds; row() renders it
    def __init__(self, bid, start, end, wh):
        self.id = bid
        self.start = start
        self.end = end
        self.wh = wh
        self.costs = ()  # total cost rows as written
        # per position (grid, self): value % as ((number, scale), value); cost rows as written
        self.pct = [((100, 0), 100), ((0, 0), 0)]
        self.pos_costs = [(), ()]

    def row(self):
        tp = None
        if self.start is not None or self.end is not None:
            tp = ["startTime", self.start, "endTime", self.end]
        total = ["timePeriod", tp,
                 "value", None if self.wh is None else T.Items([["value", T.scaled(self.wh), "unit", "Wh"]]),
                 "cost", T.Items(self.costs) if self.costs else None]
        pos = []
        for i, ptype in ((0, "gridElectricEnergy"), (1, "selfProducedElectricEnergy")):
            costs = self.pos_costs[i]
            pos.append(["positionId", i + 1, "positionType", ptype,
                        "value", T.Items([["valuePercentage", self.pct[i][0]]]),
                        "cost", T.Items(costs) if costs else None])
        return ("billId", self.id, "billType", "chargingSummary", "total", total, "position", T.Items(pos))


def _cost_rows(lst, what):
    """Validated cost objects -> rows, or an error text."""
    lst = T.as_objects(lst)
    if lst is None or len(lst) > _MAX_COSTS:
        return "%s: at most %d cost entries" % (what, _MAX_COSTS)
    out = []
    for c in lst:
        r = []
        for f in ("costId", "valueId"):
            v = c.get(f)
            if v is not None and not T.uint32(v):
                return "%s: %s malformed" % (what, f)
            r += [f, v]
        ct = c.get("costType")
        if ct is not None and ct not in _COST_TYPES:
            return "%s: unknown costType" % what
        r += ["costType", ct]
        for f in ("unit", "currency"):
            v = c.get(f)
            if v is not None and not (isinstance(v, str) and 0 < len(v) <= 16):
                return "%s: %s malformed" % (what, f)
            r += [f, v]
        got = False
        for f, hi in (("cost", None), ("costPercentage", 100)):
            v = c.get(f)
            if v is not None:
                sn, x = _sn(v, 0 if hi else None, hi)
                if sn is None:
                    return "%s: %s must be a scaled number%s" % (what, f, " 0..100" if hi else "")
                r += [f, sn]
                got = True
        if not got:
            return "%s: cost or costPercentage expected" % what
        out.append(r)
    return out


class Evcs:
    def __init__(self, charger, clock, max_bills=8):
        self.ch = charger
        self.clock = clock  # () -> "YYYY-MM-DDTHH:MM:SSZ", or None while unsynced
        self.max = max_bills
        self._bills = {}  # id -> _Bill
        self._rows = ()  # rendered rows in id order, replaced (never changed) on each change
        self._next = 1
        self._start = None  # (now, clock text, total Wh) of the running session

    def feature(self):
        return DV.Feature(_FT_BILL, "Bill", "server", (
            T.Table("billDescriptionListData", self.description_rows),
            T.Table("billConstraintsListData", self.constraints_rows),
            T.Table("billListData", self.bill_rows, self._write),
        ), "Bill Server")

    def notify(self, app, entity):
        app.notify(entity, _FT_BILL, "billListData")

    def _write(self, session, inc):
        return self.write_bills(inc.data.result if inc.data is not None else None, inc.partial)

    # the description and constraint rows are built per read (a CEM reads them once), not kept

    def description_rows(self):
        # billWriteable: the broker may write cost and the energy split (Tinkerforge says
        # false and accepts writes anyway)
        return tuple(("billId", i, "billWriteable", True, "supportedBillType", _BILL_TYPES)
                     for i in range(1, self.max + 1))

    def constraints_rows(self):
        return tuple(("billId", i, "positionCountMin", 0, "positionCountMax", 2) for i in range(1, self.max + 1))

    def bill_rows(self):
        return self._rows

    def _render(self):
        self._rows = tuple(self._bills[i].row() for i in sorted(self._bills))

    def session_started(self, now):
        self._start = (now, self.clock(), self.ch.get(C.F_TOTAL_WH))

    def session_ended(self, now):
        """Adds the session's bill; True when one was added."""
        st = self._start
        if st is None:
            return False
        self._start = None
        t0, start, total0 = st
        end = self.clock()
        if start is None and end is not None:
            s = utc_seconds(end)
            if s is not None:
                start = utc_text(s - max(0, ticks_diff(now, t0)) // 1000)
        wh = self.ch.get(C.F_SESSION_WH)
        if wh is None:
            total = self.ch.get(C.F_TOTAL_WH)
            if total is not None and total0 is not None and total >= total0:
                wh = total - total0
        if wh is not None and (wh != wh or wh < 0):
            wh = None
        bid = self._next
        self._next = bid % self.max + 1
        self._bills[bid] = _Bill(bid, start, end, wh)
        self._render()
        return True

    def write_bills(self, tree, partial):
        """The broker's cost and energy split for our bills: all or nothing. Our measured
        energy and times stay ours (a full write carries them back; they are ignored), bills
        are neither added nor removed by a write."""
        es = T.entries(tree, "billData")
        if not es:
            return _E_REJECTED, "billData missing"
        changes = []
        for e in es:
            bid = e.get("billId")
            if not T.uint32(bid) or bid not in self._bills:
                return _E_REJECTED, "unknown billId %s" % (bid,)
            bt = e.get("billType")
            if bt is not None and bt != "chargingSummary":
                return _E_REJECTED, "only chargingSummary bills"
            if bid in [c[0].id for c in changes]:
                return _E_REJECTED, "bill %d twice" % bid
            b = self._bills[bid]
            costs = None
            pct = list(b.pct)
            pcost = list(b.pos_costs)
            total = e.get("total")
            if total is not None:
                total = T.as_obj(total)
                if total is None:
                    return _E_REJECTED, "total malformed"
                if total.get("cost") is not None:
                    costs = _cost_rows(total["cost"], "total")
                    if isinstance(costs, str):
                        return _E_REJECTED, costs
            pos = e.get("position")
            if pos is not None:
                pos = T.as_objects(pos)
                if pos is None or len(pos) > 2:
                    return _E_REJECTED, "at most 2 positions"
                seen = []
                for p in pos:
                    pid = p.get("positionId")
                    if pid not in (_POS_GRID, _POS_SELF) or not T.uint32(pid) or pid in seen:
                        return _E_REJECTED, "positionId must be 1 or 2, once"
                    seen.append(pid)
                    i = pid - 1
                    pt = p.get("positionType")
                    if pt is not None and pt != ("gridElectricEnergy", "selfProducedElectricEnergy")[i]:
                        return _E_REJECTED, "position %d: wrong positionType" % pid
                    v = p.get("value")
                    if v is not None:
                        v = T.as_objects(v)
                        if v is None or len(v) != 1 or v[0].get("valuePercentage") is None:
                            return _E_REJECTED, "position %d: one valuePercentage expected" % pid
                        sn, x = _sn(v[0]["valuePercentage"], 0, 100)
                        if sn is None:
                            return _E_REJECTED, "position %d: valuePercentage 0..100" % pid
                        pct[i] = (sn, x)
                    c = p.get("cost")
                    if c is not None:
                        rows = _cost_rows(c, "position %d" % pid)
                        if isinstance(rows, str):
                            return _E_REJECTED, rows
                        pcost[i] = tuple(rows)
            if abs(pct[0][1] + pct[1][1] - 100) > 0.001:
                return _E_REJECTED, "bill %d: grid and self-produced shares must add up to 100" % bid
            changes.append((b, costs, pct, pcost))
        for b, costs, pct, pcost in changes:
            if costs is not None:
                b.costs = tuple(costs)
            b.pct = pct
            b.pos_costs = pcost
        self._render()
        return _E_OK, None
