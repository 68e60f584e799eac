# CEVC, coordinatedEvCharging 1.0.1 (spine.md 12.8), the EV side: the EV entity's TimeSeries
# and IncentiveTable servers (CevcFeatures) over their data (Cevc, sans-IO: the caller passes
# ms ticks in), which validates writes, keeps the data and turns the energy broker's power
# constraints into a time-based recommendation for the charger model.
#
# An IEC 61851 car tells nothing about its demand, so the demand (singleDemand) comes from user
# input and our "plan" is simply what we will do: each constraints slot at its maxValue, capped
# by the station's power.
#
# Shapes are those eebus-go's CEM (usecases/cem/cevc) writes and reads:
# - time series ids 1 singleDemand, 2 constraints (the one the broker writes), 3 plan;
# - the broker writes series 2 as slots {timeSeriesSlotId (0-based), timePeriod{startTime
#   relative, endTime on the last slot}, maxValue W} with timePeriod{startTime PT0S, endTime}
#   as a full write (no partial filter); its fallback is one 7-day slot, hence P7D limits;
# - eebus-go takes the first entry of timeSeriesConstraintsListData whatever its id, so the
#   list holds only the entry of series 2;
# - eebus-go indexes the singleDemand series' first slot without a length check: that series
#   always carries one slot, without values while the demand is unknown;
# - eebus-go reads a slot's length from `duration`, else from timePeriod start/end: a read
#   gives both on every slot;
# - the incentive data is written for tariff 0 with tier, boundary and incentive ids 0
#   (eebus-go's defaults), so our tariff is 0 and the default description says the same.
#
# Relative times: written slots are kept relative to the moment of the write; a read gives
# them relative to the moment of the read (finished slots dropped, a running slot from PT0S).
# Elapsed time is summed from tick deltas, so plans of days survive the ticks wrap-around as
# long as tick() runs more often than every few days.
import charger as C
from compat import const, ticks_diff
from spine import device as DV
from spine import table as T

# the EV entity (usecases.ev.ADDRESS, not imported: the EV's modules and description tables
# would come with it into every import of CEVC; host_tests/test_cevc.py checks they agree)
_EV = const((1, 1))

CEVC = ("coordinatedEvCharging", "1.0.1", (1, 2, 3, 4, 5, 6, 7, 8), "release")

_FT_SERIES = const(8)  # on the EV entity
_FT_INCENTIVE = const(9)

# spine.datagram's result numbers, private: out of the globals table
_E_OK = const(0)
_E_REJECTED = const(7)  # commandRejected

_TS_DEMAND = const(1)
_TS_CONSTRAINTS = const(2)
_TS_PLAN = const(3)
_TARIFF = const(0)

_SLOT_MIN_S = const(60)
_SLOT_STEP_S = const(60)
_HORIZON_S = const(604800)  # 7 days: the longest slot and the latest end of a series
_MAX_W = const(1000000)
_MAX_TIERS = const(3)
_MAX_BOUNDARIES = const(4)
_MAX_INCENTIVES = const(3)
_TEXT = const(64)


# ---- validation helpers: each returns the value, or None when it is not shaped right


def _text(v):
    return v if isinstance(v, str) and 0 < len(v) <= _TEXT else None


def _sn(v):
    """(number, scale) of a written scaledNumber, kept as written."""
    if T.number(T.as_obj(v)) is None:
        return None
    return (v["number"], v.get("scale", 0))


def _rel(v):
    # a relative time (ISO duration) in whole seconds >= 0; absolute times are refused: the
    # EV side has no clock of its own to relate them to
    s = T.duration_s(v)
    if s is None or s < 0 or s > 10 * _HORIZON_S:
        return None
    return s


def _rej(desc):
    return _E_REJECTED, desc


def _timeline(starts, ends, base, n):
    """Checks slot bounds gathered from a write: starts[k]/ends[k] explicit (or None),
    returns [(start, end), ...] or an error text. A slot without a start begins where the
    previous ended (the first at base); one without an end ends where the next begins."""
    out = []
    cur = base
    for k in range(n):
        s = starts[k]
        if s is None:
            s = cur
        elif k and s != cur:
            return "slot %d does not start where the previous one ends" % k
        elif s < base:
            return "slot 0 starts before the series"
        e = ends[k]
        if e is None and k + 1 < n:
            e = starts[k + 1]
        if e is None:
            return "slot %d has no end" % k
        if e <= s:
            return "slot %d ends before it starts" % k
        if e > _HORIZON_S:
            return "slots beyond P7D"
        out.append((s, e))
        cur = e
    return out


class Cevc:
    def __init__(self, charger, now, demand_wh=None, departure_s=None, max_power_w=11000, slots_max=24):
        self.ch = charger
        self.max_w = max_power_w
        self.slots_max = slots_max
        self._last = now
        self._el = 0  # ms summed from tick deltas; the write bases below are points on it
        self._req = False  # our recommendation stands in the model
        # what a reader saw last: series 2 position, incentive slots finished, departure passed
        self._key = 0
        self._ikey = 0
        self._dkey = 0
        self._dep = None
        self._clear()
        self.set_demand(demand_wh, departure_s, now)
        self._desc_rows = (
            ("timeSeriesId", _TS_DEMAND, "timeSeriesType", "singleDemand", "timeSeriesWriteable", False,
             "updateRequired", False, "unit", "Wh"),
            # updateRequired asks the broker for (new) power limits (eebus-go events.go)
            ("timeSeriesId", _TS_CONSTRAINTS, "timeSeriesType", "constraints", "timeSeriesWriteable", True,
             "updateRequired", True, "unit", "W"),
            ("timeSeriesId", _TS_PLAN, "timeSeriesType", "plan", "timeSeriesWriteable", False,
             "updateRequired", False, "unit", "W"),
        )
        self._cons_rows = (
            ("timeSeriesId", _TS_CONSTRAINTS, "slotCountMin", 1, "slotCountMax", slots_max,
             "slotDurationMin", T.duration_text(_SLOT_MIN_S), "slotDurationMax", "P7D",
             "slotDurationStepSize", T.duration_text(_SLOT_STEP_S), "latestTimeSeriesEndTime", "P7D",
             "slotValueMin", (0, 0)),
        )

    def _clear(self):
        # series 2 as written: [(slot id, start s, end s, (number, scale), W)], base ms
        self._slots = ()
        self._sb = 0
        # incentives: description tiers as rows, {tierId: (boundary ids, incentive ids)};
        # data: [(start s, end s, tier rows)], base ms
        self._tiers, self._known = self._default_tiers()
        self._islots = ()
        self._ib = 0

    @staticmethod
    def _default_tiers():
        # eebus-go's default description (public_scen3.go), so that its data validates even
        # before it wrote a description
        tier = ["tierDescription", ["tierId", 0, "tierType", "dynamicCost"],
                "boundaryDescription",
                T.Items([["boundaryId", 0, "boundaryType", "powerBoundary", "boundaryUnit", "W"]]),
                "incentiveDescription",
                T.Items([["incentiveId", 0, "incentiveType", "absoluteCost", "currency", "EUR"]])]
        return (tier,), {0: ((0,), (0,))}

    # ---- user input and time

    def set_demand(self, demand_wh, departure_s, now):
        """The user's demand (Wh, None = unknown) and departure (s from now, None = unknown)."""
        self._advance(now)
        self._demand = None if demand_wh is None else max(0, int(demand_wh))
        self._wh0 = self.ch.get(C.F_SESSION_WH) or 0
        self._dep = None if departure_s is None else self._el + max(0, int(departure_s)) * 1000
        self._dkey = self._demand_key()

    def _advance(self, now):
        d = ticks_diff(now, self._last)
        self._last = now
        if d > 0:
            self._el += d
        if not self._slots and not self._islots and self._dep is None:
            # nothing is timed: restart the sum so that it stays a small int on the device
            self._el = 0

    def _demand_key(self):
        return 1 if self._dep is not None and self._el >= self._dep else 0

    def _pos(self):
        """Where series 2 stands now: 2 * slots finished, + 1 when the next one runs (an int,
        so that a tick without change allocates nothing)."""
        e = self._el - self._sb
        k = 0
        sl = self._slots
        n = len(sl)
        while k < n and sl[k][2] * 1000 <= e:
            k += 1
        return 2 * k + 1 if k < n and sl[k][1] * 1000 <= e else 2 * k

    def _ipos(self):
        e = self._el - self._ib
        k = 0
        for s in self._islots:
            if s[1] * 1000 > e:
                break
            k += 1
        return k

    def _follow(self, now):
        """Puts the running slot's maxValue to the model as a recommendation (until the end of
        the series: a stalled tick keeps the last slot rather than flapping) or withdraws it.
        True when the series' visible state moved."""
        key = self._pos()
        if key == self._key:
            return False
        self._key = key
        k = key >> 1
        if key & 1:
            sl = self._slots
            left = sl[-1][2] * 1000 - (self._el - self._sb)
            self.ch.request(C.SRC_CEVC, C.RECOMMENDATION, sl[k][4], C.UNIT_W, now, left)
            self._req = True
        elif self._req:
            self._req = False
            self.ch.withdraw(C.SRC_CEVC, now)
        return True

    def tick(self, now):
        """Advances the slots; True when data a reader sees changed in structure (a slot or an
        incentive slot ended or began, the departure passed)."""
        self._advance(now)
        changed = self._follow(now)
        i = self._ipos()
        if i != self._ikey:
            self._ikey = i
            changed = True
        d = self._demand_key()
        if d != self._dkey:
            self._dkey = d
            changed = True
        return changed

    def reset(self, now):
        """EV unplugged: plan, incentives and demand forgotten, the recommendation withdrawn."""
        self._clear()
        self._demand = None
        self._dep = None
        self._last = now
        self._el = 0
        self._key = self._ikey = self._dkey = 0
        self._req = False
        self.ch.withdraw(C.SRC_CEVC, now)

    # ---- time series

    def description_rows(self):
        return self._desc_rows

    def constraints_rows(self):
        return self._cons_rows

    def _rebase(self, s, e, base):
        # seconds relative to the write -> seconds relative to now (rounded up, so that a
        # running slot keeps at least 1 s); None when finished
        el = self._el - base
        e2 = -((el - e * 1000) // 1000)
        if e2 <= 0:
            return None
        s2 = -((el - s * 1000) // 1000)
        return (s2 if s2 > 0 else 0), e2

    def _demand_row(self):
        slot = ["timeSeriesSlotId", 0]
        tp = None
        if self._demand is not None:
            got = (self.ch.get(C.F_SESSION_WH) or 0) - self._wh0
            left = self._demand - int(got)
            left = left if left > 0 else 0
            if self._dep is not None and self._dep > self._el:
                d = T.duration_text(-((self._el - self._dep) // 1000))
                slot += ["duration", d]
                tp = ["startTime", "PT0S", "endTime", d]
            # minValue 0: no minimum SoC known (eebus-go: minValue > 0 means minSoC strategy)
            slot += ["minValue", (0, 0), "value", (left, 0), "maxValue", (left, 0)]
        return ("timeSeriesId", _TS_DEMAND, "timePeriod", tp, "timeSeriesSlot", T.Items([slot]))

    def _series_row(self, tsid, plan):
        out = []
        first = last = None
        cap = self.max_w
        for sid, s, e, v, watts in self._slots:
            r = self._rebase(s, e, self._sb)
            if r is None:
                continue
            s2, e2 = r
            if first is None:
                first = s2
            last = e2
            row = ["timeSeriesSlotId", sid,
                   "timePeriod", ["startTime", T.duration_text(s2), "endTime", T.duration_text(e2)],
                   "duration", T.duration_text(e2 - s2)]
            if plan:
                p = T.scaled(cap) if watts > cap else v
                row += ["value", p, "maxValue", p]
            else:
                row += ["maxValue", v]
            out.append(row)
        tp = None if first is None else ["startTime", "PT0S", "endTime", T.duration_text(last)]
        return ("timeSeriesId", tsid, "timePeriod", tp, "timeSeriesSlot", T.Items(out))

    def series_rows(self, now):
        """timeSeriesListData rows as of now: the demand, the constraints as written, our plan."""
        self._advance(now)
        return (self._demand_row(), self._series_row(_TS_CONSTRAINTS, False), self._series_row(_TS_PLAN, True))

    def _parse_series(self, e):
        tp = e.get("timePeriod")
        tp = {} if tp is None else T.as_obj(tp)
        if tp is None:
            return "timePeriod malformed"
        base = 0
        end = None
        if tp.get("startTime") is not None:
            base = _rel(tp["startTime"])
            if base is None:
                return "timePeriod.startTime must be a relative duration"
        if tp.get("endTime") is not None:
            end = _rel(tp["endTime"])
            if end is None:
                return "timePeriod.endTime must be a relative duration"
        slots = T.as_objects(e.get("timeSeriesSlot"))
        if slots is None:
            return "timeSeriesSlot missing"
        n = len(slots)
        if n < 1 or n > self.slots_max:
            return "slot count outside 1..%d" % self.slots_max
        starts = [None] * n
        ends = [None] * n
        ids = []
        vals = []
        for k in range(n):
            s = slots[k]
            sid = s.get("timeSeriesSlotId")
            if not T.uint32(sid) or sid in ids:
                return "slot %d: timeSeriesSlotId missing or repeated" % k
            ids.append(sid)
            stp = s.get("timePeriod")
            stp = {} if stp is None else T.as_obj(stp)
            if stp is None:
                return "slot %d: timePeriod malformed" % k
            for i, key in ((0, "startTime"), (1, "endTime")):
                if stp.get(key) is not None:
                    t = _rel(stp[key])
                    if t is None:
                        return "slot %d: %s must be a relative duration" % (k, key)
                    (starts, ends)[i][k] = t
            if s.get("duration") is not None:
                d = _rel(s["duration"])
                if d is None:
                    return "slot %d: bad duration" % k
                st = starts[k] if starts[k] is not None else (ends[k - 1] if k and ends[k - 1] is not None else None)
                if k == 0 and st is None:
                    st = base
                if st is None:
                    return "slot %d: duration without a start" % k
                if ends[k] is not None and ends[k] != st + d:
                    return "slot %d: duration and endTime disagree" % k
                starts[k] = st
                ends[k] = st + d
            v = s.get("maxValue")
            if v is None:
                return "slot %d: maxValue missing" % k
            sn = _sn(v)
            if sn is None:
                return "slot %d: maxValue must be a scaled number" % k
            w = T.number(v)
            if w < 0:
                return "slot %d: negative power" % k
            if w > _MAX_W:
                return "slot %d: maxValue above %d W" % (k, _MAX_W)
            vals.append((sn, w))
        if ends[-1] is None:
            ends[-1] = end
        tl = _timeline(starts, ends, base, n)
        if isinstance(tl, str):
            return tl
        if end is not None and end != tl[-1][1]:
            return "timePeriod.endTime is not the end of the last slot"
        for k in range(n):
            d = tl[k][1] - tl[k][0]
            if d < _SLOT_MIN_S or d % _SLOT_STEP_S:
                return "slot %d: duration not a multiple of %d s, at least %d s" % (k, _SLOT_STEP_S, _SLOT_MIN_S)
        return tuple((ids[k], tl[k][0], tl[k][1], vals[k][0], vals[k][1]) for k in range(n))

    def write_series(self, tree, partial, now):
        """A write of timeSeriesListData: all or nothing. Series 2 is replaced by the written
        one (a partial write keys entries by timeSeriesId; the slot list is one element, so it
        is replaced in both kinds). A full write may carry our series 1 and 3 back (a CEM
        that merges into its copy of our data): they are ignored; a partial write to them is
        refused."""
        self._advance(now)
        es = T.entries(tree, "timeSeriesData")
        if not es:
            return _rej("timeSeriesData missing")
        new = None
        for e in es:
            i = e.get("timeSeriesId")
            if i == _TS_CONSTRAINTS and T.uint32(i):
                if new is not None:
                    return _rej("time series 2 twice")
                new = self._parse_series(e)
                if isinstance(new, str):
                    return _rej(new)
            elif (i == _TS_DEMAND or i == _TS_PLAN) and T.uint32(i):
                if partial:
                    return _rej("time series %d is not writeable" % i)
            else:
                return _rej("unknown timeSeriesId %s" % (i,))
        if new is None:
            return _rej("no data for time series 2")
        self._slots = new
        self._sb = self._el
        self._key = -1
        self._follow(now)
        return _E_OK, None

    # ---- incentive table

    def _tariff(self):
        return ["tariffId", _TARIFF]

    def incentive_constraints_emit(self):
        row = ("tariff", self._tariff(),
               "tariffConstraints", ["maxTariffCount", 1, "maxTiersPerTariff", _MAX_TIERS,
                                     "maxBoundariesPerTier", _MAX_BOUNDARIES, "maxIncentivesPerTier", _MAX_INCENTIVES],
               "incentiveSlotConstraints", ["slotCountMin", 1, "slotCountMax", self.slots_max])

        def emit(w):
            T.emit_list(w, "incentiveTableConstraints", (row,))

        return emit

    def incentive_description_emit(self):
        row = ("tariffDescription",
               ["tariffId", _TARIFF, "tariffWriteable", True, "updateRequired", True,
                "scopeType", "simpleIncentiveTable"],
               "tier", T.Items(self._tiers))

        def emit(w):
            T.emit_list(w, "incentiveTableDescription", (row,))

        return emit

    def incentive_data_emit(self, now=None):
        if now is not None:
            self._advance(now)
        out = []
        for s, e, tiers in self._islots:
            r = self._rebase(s, e, self._ib)
            if r is None:
                continue
            trows = []
            for tid, bounds, incs in tiers:
                trows.append(["tier", ["tierId", tid],
                              "boundary", T.Items([["boundaryId", b[0], "lowerBoundaryValue", b[1],
                                                  "upperBoundaryValue", b[2]]
                                                 for b in bounds]),
                              "incentive", T.Items([["incentiveId", i[0], "value", i[1]] for i in incs])])
            out.append(["timeInterval", ["startTime", ["relative", T.duration_text(r[0])],
                                         "endTime", ["relative", T.duration_text(r[1])]],
                        "tier", T.Items(trows)])
        row = ("tariff", self._tariff(), "incentiveSlot", T.Items(out) if out else None)

        def emit(w):
            T.emit_list(w, "incentiveTable", (row,))

        return emit

    def _one_table(self, tree, item):
        es = T.entries(tree, item)
        if not es or len(es) != 1:
            return None, "exactly one tariff expected"
        return es[0], None

    def write_incentive_description(self, tree, partial, now):
        """The broker's tiers, boundaries and incentives for our one tariff: replaced whole."""
        self._advance(now)
        d, err = self._one_table(tree, "incentiveTableDescription")
        if err:
            return _rej(err)
        td = d.get("tariffDescription")
        if td is not None:
            td = T.as_obj(td)
            if td is None:
                return _rej("tariffDescription malformed")
            if td.get("tariffId") is not None and td.get("tariffId") != _TARIFF:
                return _rej("unknown tariffId")
        tiers = T.as_objects(d.get("tier"))
        if not tiers or len(tiers) > _MAX_TIERS:
            return _rej("1..%d tiers expected" % _MAX_TIERS)
        rows = []
        known = {}
        for t in tiers:
            tdsc = T.as_obj(t.get("tierDescription"))
            if tdsc is None or not T.uint32(tdsc.get("tierId")) or tdsc["tierId"] in known:
                return _rej("tierDescription.tierId missing or repeated")
            tid = tdsc["tierId"]
            ttype = tdsc.get("tierType")
            if ttype is not None and _text(ttype) is None:
                return _rej("tierType malformed")
            tier = ["tierDescription", ["tierId", tid, "tierType", ttype]]
            ids = []
            for member, key, n, fields in (
                ("boundaryDescription", "boundaryId", _MAX_BOUNDARIES, ("boundaryType", "boundaryUnit")),
                ("incentiveDescription", "incentiveId", _MAX_INCENTIVES, ("incentiveType", "currency", "unit")),
            ):
                lst = T.as_objects(t.get(member, []))
                if lst is None or len(lst) > n:
                    return _rej("tier %d: at most %d %s" % (tid, n, member))
                got = []
                out = []
                for b in lst:
                    bid = b.get(key)
                    if not T.uint32(bid) or bid in got:
                        return _rej("tier %d: %s missing or repeated" % (tid, key))
                    got.append(bid)
                    r = [key, bid]
                    for f in fields:
                        v = b.get(f)
                        if v is not None and _text(v) is None:
                            return _rej("tier %d: %s malformed" % (tid, f))
                        r += [f, v]
                    out.append(r)
                ids.append(tuple(got))
                tier += [member, T.Items(out)]
            known[tid] = tuple(ids)
            rows.append(tier)
        self._tiers = tuple(rows)
        self._known = known
        # data written against the old description may name what no longer exists
        self._islots = ()
        self._ikey = self._ipos()
        return _E_OK, None

    def _parse_tier(self, t, seen):
        td = T.as_obj(t.get("tier"))
        if td is None or not T.uint32(td.get("tierId")):
            return "tier.tierId missing"
        tid = td["tierId"]
        if tid not in self._known or tid in seen:
            return "tierId %s unknown or repeated" % (tid,)
        seen.append(tid)
        bids, iids = self._known[tid]
        blist = T.as_objects(t.get("boundary", []))
        if blist is None or len(blist) > _MAX_BOUNDARIES:
            return "tier %d: boundary malformed" % tid
        rows = []
        got = []
        for b in blist:
            bid = b.get("boundaryId")
            if not T.uint32(bid) or bid not in bids or bid in got:
                return "tier %d: boundaryId unknown or repeated" % tid
            got.append(bid)
            r = [bid]
            for f in ("lowerBoundaryValue", "upperBoundaryValue"):
                v = b.get(f)
                if v is not None:
                    v = _sn(v)
                    if v is None:
                        return "tier %d: %s must be a scaled number" % (tid, f)
                r.append(v)
            rows.append(tuple(r))
        ilist = T.as_objects(t.get("incentive", []))
        if not ilist or len(ilist) > _MAX_INCENTIVES:
            return "tier %d: 1..%d incentives expected" % (tid, _MAX_INCENTIVES)
        irows = []
        got = []
        for x in ilist:
            iid = x.get("incentiveId")
            if not T.uint32(iid) or iid not in iids or iid in got:
                return "tier %d: incentiveId unknown or repeated" % tid
            got.append(iid)
            v = _sn(x.get("value"))
            if v is None:
                return "tier %d: incentive value must be a scaled number" % tid
            irows.append((iid, v))
        # kept compact (a slot's tiers as tuples); rows are made per read
        return (tid, tuple(rows), tuple(irows))

    def write_incentive_data(self, tree, partial, now):
        """The broker's incentive slots for our tariff: replaced whole, all or nothing."""
        self._advance(now)
        d, err = self._one_table(tree, "incentiveTable")
        if err:
            return _rej(err)
        ta = d.get("tariff")
        if ta is not None:
            ta = T.as_obj(ta)
            if ta is None or (ta.get("tariffId") is not None and ta.get("tariffId") != _TARIFF):
                return _rej("unknown tariff")
        slots = T.as_objects(d.get("incentiveSlot"))
        if slots is None:
            return _rej("incentiveSlot missing")
        n = len(slots)
        if n < 1 or n > self.slots_max:
            return _rej("slot count outside 1..%d" % self.slots_max)
        starts = [None] * n
        ends = [None] * n
        tiers = []
        for k in range(n):
            s = slots[k]
            ti = T.as_obj(s.get("timeInterval"))
            if ti is None:
                return _rej("slot %d: timeInterval missing" % k)
            for i, key in ((0, "startTime"), (1, "endTime")):
                v = ti.get(key)
                if v is None:
                    continue
                v = T.as_obj(v)
                if v is None or v.get("relative") is None:
                    return _rej("slot %d: %s must be relative" % (k, key))
                t = _rel(v["relative"])
                if t is None:
                    return _rej("slot %d: %s.relative malformed" % (k, key))
                (starts, ends)[i][k] = t
            tl = T.as_objects(s.get("tier"))
            if not tl or len(tl) > _MAX_TIERS:
                return _rej("slot %d: 1..%d tiers expected" % (k, _MAX_TIERS))
            seen = []
            rows = []
            for t in tl:
                r = self._parse_tier(t, seen)
                if isinstance(r, str):
                    return _rej("slot %d: %s" % (k, r))
                rows.append(r)
            tiers.append(tuple(rows))
        tl = _timeline(starts, ends, 0, n)
        if isinstance(tl, str):
            return _rej(tl)
        self._islots = tuple((tl[k][0], tl[k][1], tiers[k]) for k in range(n))
        self._ib = self._el
        self._ikey = self._ipos()
        return _E_OK, None


class CevcFeatures:
    """The EV entity's TimeSeries and IncentiveTable servers over a Cevc."""

    def __init__(self, cevc, now):
        self.cevc = cevc
        self.now = now  # ms ticks
        self.owner = None  # the session whose accepted write set the plan (station.peer_lost)

    def features(self):
        c = self.cevc
        return [
            DV.Feature(_FT_SERIES, "TimeSeries", "server", (
                T.Table("timeSeriesDescriptionListData", c.description_rows),
                T.Table("timeSeriesConstraintsListData", c.constraints_rows),
                T.Table("timeSeriesListData", lambda: c.series_rows(self.now()), self._write_series),
            ), "TimeSeries Server"),
            DV.Feature(_FT_INCENTIVE, "IncentiveTable", "server", (
                DV.Function("incentiveTableConstraintsData", DV.OP_READ, freeze=c.incentive_constraints_emit),
                DV.Function("incentiveTableDescriptionData", DV.OP_READ | DV.OP_WRITE | DV.OP_WRITE_PARTIAL,
                         write=self._write_description, freeze=c.incentive_description_emit),
                DV.Function("incentiveTableData", DV.OP_READ | DV.OP_WRITE | DV.OP_WRITE_PARTIAL,
                         write=self._write_incentives, freeze=lambda: c.incentive_data_emit(self.now())),
            ), "IncentiveTable Server"),
        ]

    def _tree(self, inc):
        return inc.data.result if inc.data is not None else None

    def _own(self, session, r):
        if r is not None and r[0] == 0:
            self.owner = session
        return r

    def _write_series(self, session, inc):
        return self._own(session, self.cevc.write_series(self._tree(inc), inc.partial, self.now()))

    def _write_description(self, session, inc):
        return self._own(session, self.cevc.write_incentive_description(self._tree(inc), inc.partial, self.now()))

    def _write_incentives(self, session, inc):
        return self._own(session, self.cevc.write_incentive_data(self._tree(inc), inc.partial, self.now()))

    def tick(self, now):
        return self.cevc.tick(now)

    def reset(self, now):
        self.cevc.reset(now)

    def notify_changes(self, app):
        app.notify(_EV, _FT_SERIES, "timeSeriesListData")
        app.notify(_EV, _FT_INCENTIVE, "incentiveTableData")
