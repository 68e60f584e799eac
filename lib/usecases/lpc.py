# LPC (limitationOfPowerConsumption) and LPP (limitationOfPowerProduction) on the
# controllable-system side (spine.md 12.9, 12.11): the state machine of the LPC test
# specification (PowerLimit), the data points the energy guard reads and writes, the mapping of
# the limit into the charger model, the EVSE entity's LoadControl and DeviceConfiguration
# servers over them (Lpc) and the store of the failsafe values (JsonStore). Sans-IO: the
# features hand in written entries (plain dicts from the tree builder), heartbeats and time;
# PowerLimit answers with rows for the tables, result codes and change masks. The charger model supplies the failsafe
# *mechanism*; the policy (when failsafe starts and ends) is decided here, so the model's own
# supervise() is not used for SRC_LPC.
#
# Timers count down by elapsed ticks (compat.ticks_diff), as in the charger model: nothing
# depends on the wall clock (which may still say 1970) and tick() allocates nothing.
#
# Writes in init, failsafe and unlimited/autonomous without a guard heartbeat in the last 60 s
# are *rejected* (result 7 with the reason), not accepted-and-held: an ACK confirms that the
# limit is in force (LPC-TS-002), and here it would not be; the notify stays truthful; the
# guard must send heartbeat + limit within 60 s after (re)connecting (LPC-TS-030) and must
# expect NACKs for timing reasons and retry (LPC-TS-046). Such a write is "not evaluated"
# (LPC-TS-036): it moves no state. An evaluated but refused limit (negative, malformed) moves
# init/failsafe/autonomous to unlimited/controlled as the spec says (LPC-TS-018, 031).
#
# Wiring: heartbeat() on each guard heartbeat notify, tick() about every second (it returns
# what to notify), check_*/apply_*/reject_limit() from the write handlers. Nothing else may
# request, withdraw or supervise SRC_LPC in the charger model.
#
# Numbering on the EVSE entity: LoadControl limit 0 = LPC, 1 = LPP; DeviceConfiguration key 0 =
# failsafe consumption limit, 1 = failsafe duration minimum (shared by LPC and LPP,
# LPP-TS-041), 2 = failsafe production limit; characteristic 0 = consumption nominal max,
# 1 = production.

import charger as C
import jsonfile
import log
from compat import const, ticks_diff

from spine import datagram as D
from spine import device as DV
from spine import table as T

LPC = ("limitationOfPowerConsumption", "1.0.0", (1, 2, 3, 4), "release")
LPP = ("limitationOfPowerProduction", "1.0.0", (1, 2, 3, 4), "release")

_FT_LOADCONTROL = const(4)  # on the EVSE entity
_FT_CONFIG = const(5)

_LIMIT_LPC = const(0)
_LIMIT_LPP = const(1)
_KEY_LPC = const(0)
_KEY_DURATION = const(1)
_KEY_LPP = const(2)

INIT = "init"
LIMITED = "limited"
CONTROLLED = "unlimited/controlled"
FAILSAFE = "failsafe"
AUTONOMOUS = "unlimited/autonomous"
STATES = (INIT, LIMITED, CONTROLLED, FAILSAFE, AUTONOMOUS)

# change mask returned by tick(): which published data changed since the last tick
CH_LIMIT = const(1)  # limit data (notify LoadControl subscribers)
CH_KEYS = const(2)  # failsafe key values (notify DeviceConfiguration subscribers)
CH_STATE = const(4)  # the state (no SPINE data of its own; diagnostics)

_E_OK = const(0)
_E_REJECTED = const(7)  # commandRejected, as eebus-go cs/lpc answers a denied limit

_DUR_MIN = const(7200)  # failsafe duration minimum: 2 h .. 24 h (LPC-TS-013, 015)
_DUR_MAX = const(86400)
_MAX_W = const(1000000)  # larger limits are stored as this (LPC-TS-035/4); the model caps alike
_MAX_DUR_MS = const(604800000)  # limit durations above 7 days count 7 days: keeps ms a small int
_DEFAULT_FS_W = const(4200)  # the 4.2 kW a controllable device keeps under EnWG 14a (capture 08)

_R_HEARTBEAT = "no energy guard heartbeat within 60 s: write not evaluated (LPC-TS-036)"
_R_OTHER = "another energy guard holds the LoadControl binding"


def _scaled_in(v, cur):
    """The value of a written scaledNumber, or a reason string. A partial write may carry only
    number or only scale: the missing part keeps ours (SPINE-TS-RT-03)."""
    v = T.as_obj(v)
    if v is None:
        return "value must be a scaledNumber"
    cn, cs = T.scaled(cur)
    x = T.number({"number": v.get("number", cn), "scale": v.get("scale", cs)})
    if x is None:
        return "value must be a scaledNumber {number, scale}"
    return x


class PowerLimit:
    """LPC (produce=False) or LPP (produce=True) of the controllable system.

    state: INIT | LIMITED | CONTROLLED | FAILSAFE | AUTONOMOUS. active/value: the limit as
    published (W); limit_w: the power limit in force by the state machine (None = up to the
    nominal max). LPC puts it into the charger model; the model has no discharge limit, so LPP
    only keeps state and data (limit_w is for whoever can apply it).

    Writes are two-phase so that one write touching several data points is all or nothing:
    check_*() decides, then the caller either apply_*() everything or, for a refused write
    that carried our limit, calls reject_limit() (a refused limit has consequences of its own
    in init/failsafe/autonomous, LPC-TS-018/031).

    duration_from: another PowerLimit whose failsafe duration minimum this one uses (LPP shares
    LPC's data point, LPC-TS-041). store: load() -> dict | None and save(dict) (merging keys),
    for the failsafe values the guard writes (LPC-TS-044)."""

    # what most instances keep as it is: class attributes, set on the instance only when they
    # differ (every attribute is a slot in the instance's own table)
    produce = False
    _charger = None  # LPP: the model has no discharge limit
    _wkey = "lpc_failsafe_w"  # the store's key of our failsafe limit
    _shared = None
    _store = None
    store_error = None
    paired = False  # a guard's heartbeat was ever seen (persisted: guard_paired)
    _init = "always"

    def __init__(self, charger, now, produce=False, nominal_max_w=11000, failsafe_w=None,
                 failsafe_s=7200, failsafe_s_max=86400, store=None, hb_timeout_s=60,
                 lpc_timeout_s=120, duration_from=None, init="always"):
        if not _DUR_MIN <= failsafe_s <= failsafe_s_max <= _DUR_MAX:
            raise ValueError("failsafe duration: 2 h <= failsafe_s <= failsafe_s_max <= 24 h")
        if failsafe_w is None:
            failsafe_w = _DEFAULT_FS_W if nominal_max_w > _DEFAULT_FS_W else nominal_max_w
        if failsafe_w < 0 or nominal_max_w < 0:
            raise ValueError("power values are >= 0 (LPC-TS-038)")
        if produce:
            self.produce = True
            self._wkey = "lpp_failsafe_w"
        else:
            self._charger = charger
        self.nominal_max_w = nominal_max_w
        self.failsafe_w = failsafe_w
        self._fs_s = failsafe_s
        self.failsafe_s_max = failsafe_s_max
        if duration_from is not None:
            self._shared = duration_from
        if store is not None:
            self._store = store
        self._hb_ms = int(hb_timeout_s * 1000)
        self._lpc_ms = int(lpc_timeout_s * 1000)
        if init != "always":
            self._init = init
        self._load()
        # the limit as published: after a (re)start deactivated (LPC-TS-009/2), value 0 as
        # eebus-go starts
        self.active = False
        self.value = 0
        # timers, ms left (None: not running); they may go below 0 by the overshoot of the
        # last step until handled, so that a chained transition starts at the right time
        self._dur = None  # the limit's duration
        self._fresh = None  # a guard heartbeat within the last 60 s (LPC-TS-036)
        self._lost = None  # 120 s without a guard heartbeat (LPC-TS-028/029)
        self._wait = None  # init: 120 s since entry (022/1); failsafe: since the heartbeat came back (022/2)
        self._fsleft = None  # failsafe duration minimum (LPC-TS-012, 022/3)
        self._now = now
        self._changed = 0
        self.transitions = 0
        # init: consumption up to the failsafe limit until the guard speaks (LPC-TS-017);
        # init "paired" (usecases.lpc_init): an installation that never saw a guard starts
        # unlimited/autonomous instead
        c = self._charger
        if c is not None:
            c.failsafe(C.SRC_LPC, self.failsafe_w, C.UNIT_W, None)  # its end is ours to decide
        if init == "paired" and not self.paired:
            self.state = AUTONOMOUS
            return
        self.state = INIT
        self._wait = self._lpc_ms
        if c is not None:
            c.enter_failsafe(C.SRC_LPC, now)

    # ---- configuration and persistence

    @property
    def failsafe_s(self):
        s = self._shared
        return s.failsafe_s if s is not None else self._fs_s

    def _load(self):
        st = self._store
        if st is None:
            return
        try:
            d = st.load()
        except Exception as e:  # a broken store must not keep the station from starting
            self.store_error = repr(e)
            return
        if not isinstance(d, dict):
            return  # nothing written by a guard yet: the pre-configured values (LPC-TS-019)
        self.paired = d.get("guard_paired") is True
        w = d.get(self._wkey)
        if isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= _MAX_W:
            self.failsafe_w = w
        s = d.get("failsafe_s")
        if self._shared is None and isinstance(s, int) and not isinstance(s, bool):
            if _DUR_MIN <= s <= self.failsafe_s_max:
                self._fs_s = s

    def _save(self, d):
        st = self._store
        if st is None:
            return
        try:
            st.save(d)
            self.store_error = None
        except Exception as e:  # the values stay in force in RAM
            self.store_error = repr(e)

    @property
    def limit_w(self):
        st = self.state
        if st == LIMITED:
            return self.value
        if st == INIT or st == FAILSAFE:
            return self.failsafe_w
        return None

    # ---- rows for the lead's tables (ids are the lead's)

    def limit_description(self, limit_id):
        # the guard selects exactly this combination (spine.md 12.9, capture 06); measurementId
        # (0) is a dummy some guards (KEO) require
        return (
            "limitId", limit_id, "limitType", "signDependentAbsValueLimit", "limitCategory", "obligation",
            "limitDirection", "produce" if self.produce else "consume", "measurementId", 0,
            "unit", "W", "scopeType", "activePowerLimit",
        )

    def limit_data(self, limit_id, now=None):
        if now is not None:
            self._time(now)
        tp = None
        d = self._dur
        if self.active and d is not None:
            # the remaining duration, relative (spine.md 3.3); rounded up so that a running
            # limit never shows PT0S
            tp = ["endTime", T.duration_text((d + 999) // 1000 if d > 0 else 0)]
        return (
            "limitId", limit_id, "isLimitChangeable", True, "isLimitActive", self.active,
            "timePeriod", tp, "value", T.scaled(self.value),
        )

    def key_descriptions(self, limit_key_id, duration_key_id):
        rows = (
            ("keyId", limit_key_id, "keyName",
             "failsafeProductionActivePowerLimit" if self.produce else "failsafeConsumptionActivePowerLimit",
             "valueType", "scaledNumber", "unit", "W"),
        )
        if duration_key_id is not None:
            rows += (("keyId", duration_key_id, "keyName", "failsafeDurationMinimum", "valueType", "duration"),)
        return rows

    def key_values(self, limit_key_id, duration_key_id):
        rows = (
            ("keyId", limit_key_id, "value", ["scaledNumber", T.scaled(self.failsafe_w)], "isValueChangeable", True),
        )
        if duration_key_id is not None:
            rows += (("keyId", duration_key_id, "value", ["duration", T.duration_text(self.failsafe_s)],
                      "isValueChangeable", True),)
        return rows

    def characteristic(self, characteristic_id):
        # an EVSE is not an energy manager: power...NominalMax, never contractual...
        # (LPC-TS-010/1, 039, 040); of the one AC connection's total power (parameter 0)
        return (
            "electricalConnectionId", 0, "parameterId", 0, "characteristicId", characteristic_id,
            "characteristicContext", "entity",
            "characteristicType", "powerProductionNominalMax" if self.produce else "powerConsumptionNominalMax",
            "value", T.scaled(self.nominal_max_w), "unit", "W",
        )

    # ---- the limit (LoadControl)

    def _gated(self):
        # LPC-TS-036: in init, failsafe and autonomous only a write following a heartbeat
        # within 60 s is evaluated
        st = self.state
        if st == LIMITED or st == CONTROLLED:
            return False
        f = self._fresh
        return f is None or f <= 0

    def _parse_limit(self, e, delete_period):
        """(active, value, duration ms or None) after this write, or a reason string."""
        e = T.as_obj(e)
        if e is None:
            return "limit entry must be an object"
        active = self.active
        value = self.value
        dur = None if delete_period else self._dur  # delete filter first, then the data (spine.md 3.2)
        a = e.get("isLimitActive")
        if a is not None:
            if a is not True and a is not False:
                return "isLimitActive must be a boolean"
            active = a
        v = e.get("value")
        if v is not None:
            v = _scaled_in(v, value)
            if isinstance(v, str):
                return v
            if v < 0:
                return "a negative power limit cannot be applied (LPC-TS-035/1)"
            value = v if v <= _MAX_W else _MAX_W
        tp = e.get("timePeriod")
        if tp is not None:
            tp = T.as_obj(tp)
            if tp is None:
                return "timePeriod must be an object"
            s = tp.get("startTime")
            if s is not None and T.duration_s(s) != 0:
                return "only limits that start now are supported (startTime)"
            end = tp.get("endTime")
            if end is not None:
                s = T.duration_s(end)
                if s is None or s < 0:
                    return "endTime must be a relative duration (e.g. PT1H)"
                dur = s * 1000 if s < _MAX_DUR_MS // 1000 else _MAX_DUR_MS
        # an (already) deactivated limit has no duration; a duration of 0 has expired
        # at once (LPC-TS-008, 008/1)
        if dur is not None and dur <= 0:
            active = False
        if not active:
            dur = None
        return active, value, dur

    def check_limit(self, entry, delete_period=False, now=None):
        """(0, None) if a write of entry (our limitId's data; delete_period: the write also
        carries the delete filter for timePeriod) can be applied, else (7, reason)."""
        if now is not None:
            self._time(now)
        if self._gated():
            return _E_REJECTED, _R_HEARTBEAT
        r = self._parse_limit(entry, delete_period)
        if isinstance(r, str):
            return _E_REJECTED, r
        return _E_OK, None

    def apply_limit(self, entry, delete_period, now):
        """Apply a write check_limit() accepted. The caller notifies the limit data."""
        self._time(now)
        if self._gated():
            return False
        r = self._parse_limit(entry, delete_period)
        if isinstance(r, str):
            return False
        self.active, self.value, self._dur = r
        # init 020/021, limited 026 and new values, controlled 027, failsafe/autonomous 032/033
        st = LIMITED if self.active else CONTROLLED
        if st == self.state:
            if st == LIMITED:
                self._sync()  # a new value or duration in the same state
        else:
            self._enter(st, 0)
        return True

    def reject_limit(self, now):
        """A write carrying our limit was refused (by check_limit or for another part of it).
        After a heartbeat, init/failsafe/autonomous go to unlimited/controlled (LPC-TS-018,
        031); limited and controlled stay (023, 024)."""
        self._time(now)
        if self.state == LIMITED or self.state == CONTROLLED or self._gated():
            return
        self._enter(CONTROLLED, 0)

    # ---- failsafe values (DeviceConfiguration)

    def _parse_keys(self, le, de):
        """(failsafe W, duration s) after this write, or (reason, duration to fall back to
        or None)."""
        w = self.failsafe_w
        s = self.failsafe_s
        if le is not None:
            le = T.as_obj(le)
            if le is None:
                return "key entry must be an object", None
            v = le.get("value")
            if v is not None:
                v = T.as_obj(v)
                if v is None or "scaledNumber" not in v:
                    return "failsafe limit must be a scaledNumber", None
                x = _scaled_in(v["scaledNumber"], w)
                if isinstance(x, str):
                    return x, None
                if x < 0:
                    return "failsafe limit must be >= 0 (LPC-TS-038)", None
                w = x if x <= _MAX_W else _MAX_W
        if de is not None:
            de = T.as_obj(de)
            if de is None:
                return "key entry must be an object", None
            v = de.get("value")
            if v is not None:
                v = T.as_obj(v)
                if v is None or "duration" not in v:
                    return "failsafe duration minimum must be a duration", None
                x = T.duration_s(v["duration"])
                if x is None:
                    return "failsafe duration minimum must be an ISO 8601 duration", None
                if x < _DUR_MIN:
                    return "failsafe duration minimum must be 2 h .. 24 h (LPC-TS-015)", None
                mx = self.failsafe_s_max
                if x > mx:
                    # LPC-TS-015/1 lets us refuse it; 016: ours becomes our maximum
                    return "failsafe duration minimum above our maximum %s (LPC-TS-015/1)" % T.duration_text(mx), mx
                s = x
        return w, s

    def check_keys(self, limit_entry=None, duration_entry=None, now=None):
        """(0, None) if the written key entries (our failsafe limit key's and the failsafe
        duration key's, None when not in the write) can be applied, else (7, reason).
        A duration above our maximum is refused and ours set to the maximum (LPC-TS-016):
        the one side effect of a check, reported by tick() as CH_KEYS."""
        if now is not None:
            self._time(now)
        sh = self._shared
        if sh is not None and duration_entry is not None:
            err, desc = sh.check_keys(None, duration_entry, now)
            if err:
                return err, desc
            duration_entry = None
            if limit_entry is None:
                return _E_OK, None
        if self._keys_gated():
            if self.state != FAILSAFE:
                return _E_REJECTED, _R_HEARTBEAT
            return _E_REJECTED, "write not evaluated before heartbeat and limit write (LPC-TS-037)"
        r = self._parse_keys(limit_entry, duration_entry)
        if isinstance(r[0], str):
            mx = r[1]
            if mx is not None and self._fs_s != mx:
                self._fs_s = mx
                self._changed |= CH_KEYS
                self._save({"failsafe_s": mx})
            return _E_REJECTED, r[0]
        return _E_OK, None

    def _keys_gated(self):
        # LPC-TS-037 evaluates other data points in init, failsafe and autonomous only after
        # heartbeat + limit. Deviation: in init and autonomous the failsafe values are taken
        # once the guard's heartbeat is fresh (LPC-TS-036 still holds), because eebus-go's
        # guard writes them first and neither reads the result nor retries. In failsafe the
        # refusal stays (COM_PT_CSFS_001/003: nothing before heartbeat + limit).
        st = self.state
        if st == LIMITED or st == CONTROLLED:
            return False
        if st == FAILSAFE:
            return True
        f = self._fresh
        return f is None or f <= 0

    def apply_keys(self, limit_entry, duration_entry, now):
        """Apply what check_keys() accepted; persists changed values (LPC-TS-044). The caller
        notifies the key values."""
        self._time(now)
        sh = self._shared
        if sh is not None and duration_entry is not None:
            sh.apply_keys(None, duration_entry, now)
            duration_entry = None
        if self._keys_gated():
            return False
        r = self._parse_keys(limit_entry, duration_entry)
        if isinstance(r[0], str):
            return False
        w, s = r
        d = {}
        if w != self.failsafe_w:
            self.failsafe_w = w
            d[self._wkey] = w
            c = self._charger
            if c is not None:
                c.failsafe(C.SRC_LPC, w, C.UNIT_W, None)
        if sh is None and s != self._fs_s:
            self._fs_s = s  # applies from the next failsafe entry
            d["failsafe_s"] = s
        if d:
            self._save(d)
        return True

    # ---- heartbeat and time

    def heartbeat(self, now):
        """The guard's heartbeat arrived (its DeviceDiagnosis notify or reply)."""
        self._time(now)
        self._fresh = self._hb_ms
        self._lost = self._lpc_ms
        if self.state == FAILSAFE and self._wait is None:
            self._wait = self._lpc_ms  # 022/2: back, but no limit within 120 s -> autonomous
        if not self.paired and self._init == "paired" and not self.produce:
            self.paired = True
            self._save({"guard_paired": True})
        c = self._charger
        if c is not None:
            c.alive(C.SRC_LPC, now)

    def tick(self, now):
        """Run the timeouts; returns the CH_* mask of what changed since the last tick (0 when
        nothing): the lead notifies limit data / key values."""
        self._time(now)
        m = self._changed
        self._changed = 0
        return m

    def _time(self, now):
        dt = ticks_diff(now, self._now)
        if dt <= 0:
            return
        self._now = now
        t = self._dur
        if t is not None:
            self._dur = t - dt
        t = self._fresh
        if t is not None:
            self._fresh = t - dt if t > dt else None
        t = self._lost
        if t is not None:
            self._lost = t - dt
        t = self._wait
        if t is not None:
            self._wait = t - dt
        t = self._fsleft
        if t is not None:
            self._fsleft = t - dt
        self._expire()

    def _expire(self):
        for _ in range(4):  # a long step may chain transitions (limited -> controlled -> failsafe)
            st = self.state
            t = self._dur
            if t is not None and t <= 0:
                self._dur = None
                if self.active:
                    self.active = False  # LPC-TS-008
                    self._changed |= CH_LIMIT
                if st == LIMITED:
                    self._enter(CONTROLLED, 0)  # 025
                    continue
            t = self._lost
            if t is not None and t <= 0:
                self._lost = None
                if st == LIMITED or st == CONTROLLED:
                    self._enter(FAILSAFE, t)  # 029, 028
                    continue
            t = self._wait
            if t is not None and t <= 0:
                self._wait = None
                if st == INIT or st == FAILSAFE:
                    self._enter(AUTONOMOUS, 0)  # 022/1, 022/2
                    continue
            t = self._fsleft
            if t is not None and t <= 0:
                self._fsleft = None
                if st == FAILSAFE:
                    self._enter(AUTONOMOUS, 0)  # 022/3
                    continue
            return

    # ---- transitions

    def _enter(self, st, overshoot):
        if st == self.state:
            return
        self.state = st
        self.transitions += 1
        self._changed |= CH_STATE
        self._wait = None
        self._fsleft = None
        if st != LIMITED:
            # the limit is deactivated in every other state (LPC-TS-009/3)
            if self.active:
                self._changed |= CH_LIMIT
            self.active = False
            self._dur = None
        if st == FAILSAFE:
            self._fresh = None  # only a heartbeat after the loss counts (LPC-TS-036)
            self._fsleft = self.failsafe_s * 1000 + overshoot
        self._sync()

    def _sync(self):
        # put the charger model in line with the state
        c = self._charger
        if c is None:
            return
        now = self._now
        st = self.state
        if st == LIMITED:
            c.end_failsafe(C.SRC_LPC, now)
            c.request(C.SRC_LPC, C.OBLIGATION, self.value, C.UNIT_W, now, self._dur)
        elif st == FAILSAFE or st == INIT:
            c.enter_failsafe(C.SRC_LPC, now)  # drops the stale limit, the failsafe limit rules
        else:
            c.end_failsafe(C.SRC_LPC, now)
            c.withdraw(C.SRC_LPC, now)


class Lpc:
    """The controllable system's servers on the EVSE entity over lpc (and lpp, None on a
    charge-only station): LoadControl (the limits) and DeviceConfiguration (the failsafe
    values); ElectricalConnection's characteristics are listed by MPC's server. now(): ms ticks."""

    def __init__(self, lpc, lpp, now):
        self.lpc = lpc
        self.lpp = lpp
        self.now = now
        self.guard = None  # () -> the session of the energy guard (station.lpc_guard), or None
        # (PowerLimit, limit id, failsafe limit key, failsafe duration key) per side
        self._sides = ((lpc, _LIMIT_LPC, _KEY_LPC, _KEY_DURATION),)
        self.usecases = (LPC,)
        if lpp is not None:
            self._sides += ((lpp, _LIMIT_LPP, _KEY_LPP, None),)
            self.usecases = (LPC, LPP)

    def features(self):
        limit_desc = tuple(pl.limit_description(lid) for pl, lid, _, _ in self._sides)
        return [
            DV.Feature(_FT_LOADCONTROL, "LoadControl", "server", (
                T.Table("loadControlLimitDescriptionListData", limit_desc),
                T.Table("loadControlLimitListData", self._limit_rows, self._write_limits),
            ), "LoadControl Server"),
            DV.Feature(_FT_CONFIG, "DeviceConfiguration", "server", (
                T.Table("deviceConfigurationKeyValueDescriptionListData", self._key_desc_rows()),
                T.Table("deviceConfigurationKeyValueListData", self._key_rows, self._write_keys),
            ), "DeviceConfiguration Server"),
        ]

    def heartbeat(self, now):
        """The guard's heartbeat arrived."""
        self.lpc.heartbeat(now)
        if self.lpp is not None:
            self.lpp.heartbeat(now)

    def tick(self, app, entity, now):
        """LPC/LPP timers; notifies the limits and failsafe values that changed."""
        ch = self.lpc.tick(now)
        if self.lpp is not None:
            ch |= self.lpp.tick(now)
        if ch & CH_LIMIT:
            app.notify(entity, _FT_LOADCONTROL, "loadControlLimitListData")
        if ch & CH_KEYS:
            app.notify(entity, _FT_CONFIG, "deviceConfigurationKeyValueListData")
        if ch & CH_STATE:
            log.info("spine", "LPC %s", self.lpc.state)

    # ---- rows -------------------------------------------------------------------------------

    def _limit_rows(self):
        now = self.now()
        return tuple(pl.limit_data(lid, now) for pl, lid, _, _ in self._sides)

    def _key_desc_rows(self):
        rows = ()
        for pl, _, key, dkey in self._sides:
            rows += pl.key_descriptions(key, dkey)
        return rows

    def _key_rows(self):
        rows = ()
        for pl, _, key, dkey in self._sides:
            rows += pl.key_values(key, dkey)
        return rows

    def characteristic_rows(self):
        # characteristic id = limit id: 0 consumption, 1 production nominal max
        return tuple(pl.characteristic(lid) for pl, lid, _, _ in self._sides)

    # ---- the guard's writes --------------------------------------------------------------------

    def _other(self, session):
        g = self.guard
        return g is not None and g() is not session

    def _write_limits(self, session, inc):
        if self._other(session):
            return D.E_REJECTED, _R_OTHER
        ents = T.entries(inc.data.result if inc.data is not None else None, "loadControlLimitData")
        if ents is None:
            return D.E_GENERAL, "malformed loadControlLimitData"
        # a delete filter removing timePeriod (the guard drops a limit's duration, spine.md 3.2)
        dele = inc.del_elements is not None and "timePeriod" in inc.del_elements
        dsel = inc.del_selectors.get("limitId") if inc.del_selectors else None
        now = self.now()
        work = []
        err = None
        for e in ents:
            lid = e.get("limitId")
            pl = self.lpc if lid == _LIMIT_LPC else self.lpp if lid == _LIMIT_LPP else None
            if pl is None or isinstance(lid, bool):
                err = (D.E_REJECTED, "unknown limitId %s" % (lid,))
                break
            d = dele and (dsel is None or dsel == lid)
            work.append((pl, e, d))
            err = pl.check_limit(e, d, now)
            if err[0]:
                break
            err = None
        if err is not None:
            # a refused limit has consequences of its own in init/failsafe (LPC-TS-018, 031)
            for pl, e, d in work:
                pl.reject_limit(now)
            return err
        if dele and not work:
            for pl, lid in ((self.lpc, _LIMIT_LPC), (self.lpp, _LIMIT_LPP)):
                if pl is not None and (dsel is None or dsel == lid):
                    work.append((pl, {"limitId": lid}, True))
        for pl, e, d in work:
            pl.apply_limit(e, d, now)
        return D.E_OK, None

    def _write_keys(self, session, inc):
        if self._other(session):
            return D.E_REJECTED, _R_OTHER
        ents = T.entries(inc.data.result if inc.data is not None else None, "deviceConfigurationKeyValueData")
        if ents is None:
            return D.E_GENERAL, "malformed deviceConfigurationKeyValueData"
        by = {}
        for e in ents:
            k = e.get("keyId")
            if isinstance(k, bool) or not (k in (_KEY_LPC, _KEY_DURATION) or (k == _KEY_LPP and self.lpp is not None)):
                return D.E_REJECTED, "unknown keyId %s" % (k,)
            by[k] = e
        now = self.now()
        # the duration minimum is LPC's data point, shared by LPP (LPP-TS-041)
        lpc = (by.get(_KEY_LPC), by.get(_KEY_DURATION))
        lpp = by.get(_KEY_LPP)
        if lpc[0] is not None or lpc[1] is not None:
            err = self.lpc.check_keys(lpc[0], lpc[1], now)
            if err[0]:
                return err
        if lpp is not None:
            err = self.lpp.check_keys(lpp, None, now)
            if err[0]:
                return err
        if lpc[0] is not None or lpc[1] is not None:
            self.lpc.apply_keys(lpc[0], lpc[1], now)
        if lpp is not None:
            self.lpp.apply_keys(lpp, None, now)
        return D.E_OK, None


# Persistent failsafe values of LPC/LPP (LPC-TS-044): one small JSON object on the flash file
# system (jsonfile: a power loss mid-write leaves the previous values). save() merges, so that
# LPC and LPP can share one file.
class JsonStore:
    def __init__(self, path):
        self.path = path

    def load(self):
        """The stored object, or None when missing or unreadable (the caller then uses its
        pre-configured values, LPC-TS-019)."""
        d = jsonfile.read(self.path, None)
        return d if isinstance(d, dict) else None

    def save(self, values):
        d = self.load() or {}
        d.update(values)
        jsonfile.write(self.path, d)
