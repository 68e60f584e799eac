# The charger model: the one truth about the station that every front end reads and puts limit
# requests to (ARCHITECTURE principle 3), and the arbitration that decides which limit the
# bridge writes to the controller. Sans-IO: the caller passes time in (ms ticks); nothing here
# reads a clock, touches Modbus or knows a protocol.
#
# Arbitration (all currents in integer mA inside, so that steady-state calls stay free of float
# boxing and comparisons are exact):
#   per phase: obligation = min over obligations (and failsafe limits in force), starting at the
#   hardware max; recommendation = min over recommendations; effective = min(obligation,
#   recommendation), i.e. a recommendation only ever acts inside the obligations. Several
#   recommendations combine by the lowest: each one is an upper bound somebody asked for, and
#   the lowest satisfies all of them (the most recent would let a stale PV plan undo a newer one).
#   A W limit becomes A per phase as W / (phases * V), V the ceiling of the mean plausible
#   measured phase voltage, else the nominal voltage; every value is rounded down to the
#   controller resolution, so a result never exceeds what was asked. V has hysteresis, so that
#   grid noise does not flap the setpoint (7.1 <-> 7.2 A under a fixed 5000 W, each a Modbus
#   write, maybe to EEPROM, and a pilot change): a higher V is taken at once (fewer amps,
#   never above the limit), a lower one only once it is _VBAND below the V in use (more amps
#   only on a real drop; meanwhile up to _VBAND/V, ~2 %, less power than allowed).
#   The controller gets one current (IEC 61851 has one control-pilot duty cycle for all phases):
#   the lowest phase value; below the hardware minimum it is paused (0) rather than violated.
#
# Failsafe is a mechanism, the policy stays with the use-case layer (LPC's state machine sits on
# top): a supervised source silent past its timeout enters failsafe, which drops its own limit
# (stale once the peer is gone) and puts its configured failsafe limit in force as an
# obligation. It lasts the failsafe duration, or until the source, heard again since entering,
# sends a limit or withdraws (LPC: heartbeat + limit); a limit without a heartbeat is refused.
# After the duration a still-silent source is not watched again until its next heartbeat, so
# failsafe does not restart by itself (supervise: tools/chargerkit.py, the tests only; the use
# cases watch their peers themselves). enter_failsafe/end_failsafe let the layer apply its own
# rules (LPC init after boot, "heartbeat without a limit for 120 s").
from compat import const, ticks_diff

# Fields; an event mask has bit (1 << field) set for each field that changed.
F_STATE = const(0)  # IEC 61851 control-pilot state "A".."F"; None until polled
F_PLUGGED = const(1)
F_CHARGING = const(2)
F_ERROR = const(3)  # controller error code, 0 = none
F_ERROR_TEXT = const(4)  # its reason as text (register map), None without error
F_I1 = const(5)  # phase currents, A (F_I1 + phase index 0..2)
F_I2 = const(6)
F_I3 = const(7)
F_U1 = const(8)  # phase-to-neutral voltages, V
F_U2 = const(9)
F_U3 = const(10)
F_POWER = const(11)  # active power, W
F_SESSION_WH = const(12)
F_TOTAL_WH = const(13)
F_PHASES = const(14)  # phases in use, 1..3 (anything else: the station's configured phases)
F_HW_MIN = const(15)  # controller's minimum charging current, A
F_HW_MAX = const(16)  # controller's maximum charging current (cable, installation), A
F_LINK = const(17)  # controller link up (True) or down
F_EV_MAX = const(18)  # the EV's own maximum current if known, A
_NFIELDS = const(19)
# Event-only bits (no value behind them)
F_LIMIT = const(19)  # effective limit, its source or the pause flag changed
F_APPLIED = const(20)  # the bridge confirmed a new value written to the controller
F_REQUESTS = const(21)  # a limit request was set, withdrawn, expired or dropped by failsafe
F_FAILSAFE = const(22)  # a source entered or left failsafe

M_MEASURE = const(0xFE0)  # currents, voltages, power
M_ENERGY = const(3 << 12)

FIELD_NAMES = (
    "state", "plugged", "charging", "error", "error_text", "i1", "i2", "i3", "u1", "u2", "u3",
    "power", "session_wh", "total_wh", "phases", "hw_min", "hw_max", "link", "ev_max",
)

# Limit sources: a fixed set, one request slot each
SRC_OPEV = const(0)
SRC_OSCEV = const(1)
SRC_LPC = const(2)
SRC_CEVC = const(3)
SRC_ECHONET = const(4)
SRC_LOCAL = const(5)
_NSRC = const(6)
SRC_FAILSAFE = const(6)  # reported as the source while a failsafe limit wins; not requestable
SOURCE_NAMES = ("opev", "oscev", "lpc", "cevc", "echonet", "local", "failsafe")

OBLIGATION = const(1)
RECOMMENDATION = const(2)
UNIT_A = const(0)  # per phase
UNIT_W = const(1)  # total over the phases in use

_VBAND = const(4)  # V: the dead band for a falling voltage (see the head)
_VMIN = const(180)  # measured voltages outside this band are a bad poll, not the grid
_VMAX = const(260)
_CAP_A = const(1000)  # anything above is "no limit" for a wallbox, and keeps ints small
_CAP_W = const(1000000)


def _num(x, cap):
    # Front ends validate peer input; this only keeps the model's integers sane.
    if x != x or x < 0:
        raise ValueError("limit must be >= 0")
    return cap if x > cap else x


def _ma(a):
    a = _num(a, _CAP_A)
    if isinstance(a, int):
        return a * 1000
    # to the nearest mA, so that 10.1 A stays 10100 mA rather than 10099
    return int(a * 1000 + 0.5)


def _amps(ma):
    return ma // 1000 if ma % 1000 == 0 else ma / 1000


class Charger:
    def __init__(self, hw_min=6, hw_max=16, phases=3, nominal_v=230, resolution=0.1, write_interval_ms=1000):
        v = [None] * _NFIELDS
        v[F_ERROR] = 0
        v[F_PHASES] = phases
        v[F_HW_MIN] = hw_min
        v[F_HW_MAX] = hw_max
        v[F_LINK] = False
        self._v = v
        # what stands while the controller reports nothing plausible; one tuple, not three
        # attributes: 36 attributes fit a 37-slot member table, 38 took 47 (296 B vs 376 B, 32-bit)
        self._cfg = (hw_min, hw_max, phases)
        self._nominal = int(nominal_v)
        self._res = _ma(resolution) or 1
        self._interval = write_interval_ms
        self._subs = []
        self._mask = 0
        self._busy = False
        self._dirty = True
        self._now = None
        # request slots, per source: kind (0 = none), unit, values (3 per source: mA per phase,
        # None = no limit on that phase; or W in the first), ms left until expiry (None = never)
        self._kind = bytearray(_NSRC)
        self._unit = bytearray(_NSRC)
        self._val = [None] * (3 * _NSRC)
        self._left = [None] * _NSRC
        # failsafe, per source: its limit in the same layout, ms it lasts at least (None: until
        # the source speaks again), ms left while in force, heard since entering it, heartbeat
        # timeout (0 = not supervised) and ms left until the source counts as silent
        self._fsunit = bytearray(_NSRC)
        self._fsval = [None] * (3 * _NSRC)
        self._fsdur = [None] * _NSRC
        self._fsleft = [None] * _NSRC
        self._infs = bytearray(_NSRC)
        self._heard = bytearray(_NSRC)
        self._sup = [0] * _NSRC
        self._supleft = [None] * _NSRC
        # arbitration result and scratch, reused by every recompute
        self._eff = [0, 0, 0]
        self._ob = [0, 0, 0]
        self._obs = [None, None, None]
        self._rc = [0, 0, 0]
        self._rcs = [None, None, None]
        self._has_w = False
        self._vu = 0  # V in use for W limits (0: none measured)
        self._hwmin = 0
        self._hwmax = 0
        self.source = None
        self.paused = False
        self._want = 0
        self._sent = None
        self._wait = 0
        self._hw()
        self._recompute()
        self._mask = 0

    # ---- state and events

    def subscribe(self, cb):
        """cb(mask) after changes; mask has bit (1 << F_x) per changed field or event."""
        self._subs = self._subs + [cb]  # copy, so a callback may (un)subscribe mid-delivery

    def get(self, field):
        return self._v[field]

    def set(self, field, value):
        """Store one field (the poller's hot path); True if it changed. Events go out on flush()."""
        v = self._v
        # the type too: True == 1, and a field going from 1 to True is a change for a front end
        if v[field] == value and type(v[field]) is type(value):
            return False
        v[field] = value
        self._mask |= 1 << field
        if field == F_HW_MIN or field == F_HW_MAX:
            self._hw()
            self._dirty = True
        elif field == F_PHASES or (F_U1 <= field <= F_U3 and self._has_w):
            self._dirty = True
        elif field == F_LINK:
            # whatever the controller held before the outage is unknown: write again at once
            self._sent = None
            self._wait = 0
        return True

    def update(self, **changes):
        """Convenience for tests and slow paths: set fields by name, then flush."""
        for name in changes:
            self.set(FIELD_NAMES.index(name), changes[name])
        self.flush()

    def link(self, up):
        self.set(F_LINK, bool(up))
        self.flush()

    def flush(self):
        """Recompute the limit if an input changed and deliver pending events, one call per
        subscriber with all changed bits. Re-entrant calls from a callback are folded in."""
        if self._busy:
            return
        self._busy = True
        try:
            while True:
                if self._dirty:
                    self._dirty = False
                    self._recompute()
                m = self._mask
                if not m:
                    break
                self._mask = 0
                for cb in self._subs:
                    cb(m)
        finally:
            self._busy = False

    def _hw(self):
        v = self._v
        lo = v[F_HW_MIN]
        hi = v[F_HW_MAX]
        # a negative or absurd reading (a signed register, a bad poll) counts as not reported:
        # the configured value stands rather than the model raising in the poller's path
        if lo is None or not 0 <= lo <= _CAP_A:
            lo = self._cfg[0]
        if hi is None or not 0 <= hi <= _CAP_A:
            hi = self._cfg[1]
        self._hwmin = _ma(lo)
        hi = _ma(hi)
        self._hwmax = hi - hi % self._res

    def hw_range(self):
        """(min, max) A the controller can be given: its reported values when plausible, else
        the configured ones; the max rounded down to the controller resolution."""
        return _amps(self._hwmin), _amps(self._hwmax)

    # ---- limit requests

    def request(self, source, kind, value, unit, now, expires_ms=None):
        """Put (replace) the limit of a source. value: A per phase (a number for all phases, or
        up to 3 values with None for an unlimited phase) or W total; expires_ms: relative, None =
        never. False (and nothing changed) while the source is in failsafe and has not been
        heard (alive) since: a limit alone does not end a failsafe."""
        if not 0 <= source < _NSRC or kind not in (OBLIGATION, RECOMMENDATION):
            raise ValueError("source or kind")
        if expires_ms is not None and expires_ms < 0:
            raise ValueError("expires_ms")
        val = self._val
        i = 3 * source
        a = self._parse(value, unit)
        self.tick(now)
        if self._infs[source]:
            if not self._heard[source]:
                return False
            self._leave_fs(source)
        if expires_ms == 0:
            self._clear(source)
        else:
            self._kind[source] = kind
            self._unit[source] = unit
            val[i], val[i + 1], val[i + 2] = a
            self._left[source] = expires_ms
        self._mask |= 1 << F_REQUESTS
        self._dirty = True
        self.flush()
        return True

    def withdraw(self, source, now):
        """Remove the limit of a source (the peer deactivated it). In failsafe, as request()."""
        if not 0 <= source < _NSRC:
            raise ValueError("source")
        self.tick(now)
        if self._infs[source]:
            if not self._heard[source]:
                return False
            self._leave_fs(source)
        if self._kind[source]:
            self._clear(source)
        self.flush()
        return True

    def request_of(self, source):
        """(kind, value, unit, ms left or None) of a source's request, or None. value: W, or
        a tuple of 3 A values (None = unlimited phase)."""
        k = self._kind[source]
        if not k:
            return None
        i = 3 * source
        val = self._val
        if self._unit[source] == UNIT_W:
            value = val[i]
        else:
            value = tuple(None if x is None else _amps(x) for x in val[i:i + 3])
        return k, value, self._unit[source], self._left[source]

    def _parse(self, value, unit):
        if unit == UNIT_W:
            return int(_num(value, _CAP_W)), None, None
        if unit != UNIT_A:
            raise ValueError("unit")
        if isinstance(value, (tuple, list)):
            if not 1 <= len(value) <= 3:
                raise ValueError("1..3 phase values")
            a = [None, None, None]
            for p in range(len(value)):
                if value[p] is not None:
                    a[p] = _ma(value[p])
            return a
        x = _ma(value)
        return x, x, x

    def _clear(self, s):
        self._kind[s] = 0
        i = 3 * s
        val = self._val
        val[i] = val[i + 1] = val[i + 2] = None
        self._left[s] = None
        self._mask |= 1 << F_REQUESTS
        self._dirty = True

    # ---- failsafe

    def failsafe(self, source, value, unit, duration_ms):
        """Configure the limit that replaces a source's own while it is in failsafe (an
        obligation; value None = failsafe without a limit) and how long failsafe lasts at least
        (None: until the source speaks again). A new duration applies from the next entry."""
        if not 0 <= source < _NSRC:
            raise ValueError("source")
        i = 3 * source
        fv = self._fsval
        if value is None:
            fv[i] = fv[i + 1] = fv[i + 2] = None
        else:
            fv[i], fv[i + 1], fv[i + 2] = self._parse(value, unit)
        self._fsunit[source] = unit
        self._fsdur[source] = duration_ms
        if self._infs[source]:
            self._dirty = True
            self.flush()

    def alive(self, source, now):
        """A heartbeat (or other proof of life) of the source."""
        self.tick(now)
        self._heard[source] = 1
        if self._sup[source]:
            self._supleft[source] = self._sup[source]

    def enter_failsafe(self, source, now):
        """Put a source in failsafe now (the LPC init state after boot, a lost binding)."""
        self.tick(now)
        if not self._infs[source]:
            self._enter_fs(source)
        self.flush()

    def end_failsafe(self, source, now):
        """Leave failsafe before its duration (the use-case layer's own rules, e.g. LPC's
        heartbeat without a limit for 120 s)."""
        self.tick(now)
        if self._infs[source]:
            self._leave_fs(source)
        self.flush()

    def in_failsafe(self, source):
        return bool(self._infs[source])

    def _enter_fs(self, s):
        self._infs[s] = 1
        self._heard[s] = 0
        self._fsleft[s] = self._fsdur[s]
        self._supleft[s] = None  # leaving needs a fresh heartbeat
        if self._kind[s]:
            self._clear(s)  # the peer's last word is stale once it has gone silent
        self._mask |= 1 << F_FAILSAFE
        self._dirty = True

    def _leave_fs(self, s):
        self._infs[s] = 0
        self._fsleft[s] = None
        self._mask |= 1 << F_FAILSAFE
        self._dirty = True

    # ---- time

    def tick(self, now):
        """Advance the model's time: expire limits, supervise sources, end failsafe durations,
        pace writes. Call at least every few seconds (the bridge loop does); every other method
        that takes now calls it first. Timers count down by the elapsed ticks, so durations
        of days work across the tick wrap-around."""
        last = self._now
        if last is None:
            self._now = now
            return
        dt = ticks_diff(now, last)
        if dt <= 0:
            return
        self._now = now
        if self._wait > 0:
            self._wait -= dt
        left = self._left
        fsleft = self._fsleft
        supleft = self._supleft
        infs = self._infs
        for s in range(_NSRC):
            t = left[s]
            if t is not None:
                t -= dt
                if t <= 0:
                    self._clear(s)
                else:
                    left[s] = t
            if infs[s]:
                t = fsleft[s]
                if t is not None:
                    t -= dt
                    if t <= 0:
                        self._leave_fs(s)
                    else:
                        fsleft[s] = t
            t = supleft[s]
            if t is not None:
                t -= dt
                if t <= 0:
                    supleft[s] = None
                    if not infs[s]:
                        self._enter_fs(s)
                else:
                    supleft[s] = t
        if self._mask:
            self.flush()

    # ---- arbitration

    def _volts(self):
        v = self._v
        s = 0
        n = 0
        for p in range(3):
            x = v[F_U1 + p]
            if x is not None and _VMIN <= x <= _VMAX:
                i = int(x)
                if i < x:
                    i += 1  # ceiling: a higher voltage gives fewer amps, never more than the W asked
                s += i
                n += 1
        if not n:
            self._vu = 0
            return self._nominal
        m = (s + n - 1) // n
        u = self._vu
        if m > u or m <= u - _VBAND:
            self._vu = m
            return m
        return u

    def _fold(self, vals, i, unit, dst, dsrc, tag, per):
        if unit == UNIT_W:
            w = vals[i]
            if w is None:
                return
            self._has_w = True
            x = w * 1000 // per
            for p in range(3):
                if x < dst[p]:
                    dst[p] = x
                    dsrc[p] = tag
            return
        for p in range(3):
            x = vals[i + p]
            if x is not None and x < dst[p]:
                dst[p] = x
                dsrc[p] = tag

    def _recompute(self):
        hi = self._hwmax
        res = self._res
        ob = self._ob
        obs = self._obs
        rc = self._rc
        rcs = self._rcs
        eff = self._eff
        for p in range(3):
            ob[p] = hi
            rc[p] = hi
            obs[p] = None
            rcs[p] = None
        ph = self._v[F_PHASES]
        if not (ph == 1 or ph == 2 or ph == 3):
            ph = self._cfg[2]
        per = ph * self._volts()
        self._has_w = False
        kind = self._kind
        for s in range(_NSRC):
            k = kind[s]
            if k == OBLIGATION:
                self._fold(self._val, 3 * s, self._unit[s], ob, obs, s, per)
            elif k == RECOMMENDATION:
                self._fold(self._val, 3 * s, self._unit[s], rc, rcs, s, per)
            if self._infs[s]:
                self._fold(self._fsval, 3 * s, self._fsunit[s], ob, obs, SRC_FAILSAFE, per)
        changed = False
        low = hi
        src = None
        for p in range(3):
            if rc[p] < ob[p]:
                x = rc[p]
                t = rcs[p]
            else:
                x = ob[p]
                t = obs[p]
            x -= x % res
            if x != eff[p]:
                eff[p] = x
                changed = True
            if t is not None and (src is None or x < low):
                low = x
                src = t
        paused = low < self._hwmin
        want = 0 if paused else low
        if changed or src != self.source or paused != self.paused:
            self.source = src
            self.paused = paused
            self._mask |= 1 << F_LIMIT
        self._want = want

    def effective(self):
        """(amps per phase as a 3-tuple, or None when nothing limits below the hardware max;
        the source that set the lowest phase (SRC_FAILSAFE for a failsafe limit); paused)."""
        if self.source is None:
            return None, None, self.paused
        e = self._eff
        return (_amps(e[0]), _amps(e[1]), _amps(e[2])), self.source, self.paused

    def setpoint(self):
        """The one current for the controller, A: the lowest phase, 0 when paused."""
        return _amps(self._want)

    # ---- controller writes

    def pending_write(self, now):
        """The current (A, 0 = pause) to write now, or None: nothing changed since the last
        confirmed write, the minimum interval has not passed, or the link is down. A write
        that fails is simply asked for again on the next call."""
        self.tick(now)
        if not self._v[F_LINK] or self._want == self._sent or self._wait > 0:
            return None
        return _amps(self._want)

    def written(self, amps, now):
        """The controller accepted amps (as returned by pending_write)."""
        self.tick(now)
        ma = _ma(amps)
        if ma != self._sent:
            self._sent = ma
            self._mask |= 1 << F_APPLIED
        self._wait = self._interval
        self.flush()

    def applied(self):
        """The last current the controller confirmed (A), None before the first write or after
        a link change."""
        return None if self._sent is None else _amps(self._sent)
