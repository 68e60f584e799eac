"""Charger model and limit arbitration under CPython: the shared cases (MicroPython runs them in
test_cases_mpy), plus properties over random sequences of requests, withdrawals, failsafe
events, measurements and time."""

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

import charger as c
from cases import caserun, charger_cases
from chargerkit import supervise


@pytest.mark.parametrize("name", caserun.names(charger_cases))
def test_case(name):
    getattr(charger_cases, name)()


# ---- the reference arithmetic, written independently of the model


def volts_used(m, nominal, model_rule=False):
    """The mean plausible measured voltage, else nominal. model_rule: as the model rounds it
    (each phase and the mean up, so that the amps never exceed what the W allow)."""
    vs = [m.get(f) for f in (c.F_U1, c.F_U2, c.F_U3)]
    ok = [v for v in vs if v is not None and 180 <= v <= 260]
    if not ok:
        return Fraction(nominal)
    if model_rule:
        return Fraction(math.ceil(Fraction(sum(math.ceil(v) for v in ok), len(ok))))
    return Fraction(sum(Fraction(v) for v in ok), len(ok))


def phases_used(m, configured):
    p = m.get(c.F_PHASES)
    return p if p in (1, 2, 3) else configured


def ma(x):
    # the model's input normalisation (to the nearest mA), not a rule under test
    return x * 1000 if isinstance(x, int) else int(x * 1000 + 0.5)


# ---- strategies

SOURCES = st.sampled_from([c.SRC_OPEV, c.SRC_OSCEV, c.SRC_LPC, c.SRC_CEVC, c.SRC_ECHONET, c.SRC_LOCAL])
AMPS = st.one_of(st.integers(0, 40), st.floats(0, 40, allow_nan=False).map(lambda x: round(x, 3)))
WATTS = st.one_of(st.integers(0, 30000), st.floats(0, 30000, allow_nan=False))
A_VALUE = st.one_of(AMPS, st.lists(st.one_of(st.none(), AMPS), min_size=1, max_size=3).map(tuple))
VOLTS = st.one_of(st.none(), st.floats(0, 400, allow_nan=False), st.integers(170, 270))
DT = st.integers(0, 200000)
EXPIRES = st.one_of(st.none(), st.integers(0, 300000))

OPS = st.one_of(
    st.tuples(st.just("req"), SOURCES, st.sampled_from([c.OBLIGATION, c.RECOMMENDATION]),
              st.one_of(st.tuples(st.just(c.UNIT_A), A_VALUE), st.tuples(st.just(c.UNIT_W), WATTS)),
              DT, EXPIRES),
    st.tuples(st.just("withdraw"), SOURCES, DT),
    st.tuples(st.just("tick"), DT),
    st.tuples(st.just("alive"), SOURCES, DT),
    st.tuples(st.just("supervise"), SOURCES, st.sampled_from([0, 4000, 120000]), DT),
    st.tuples(st.just("failsafe"), SOURCES,
              st.one_of(st.none(), st.tuples(st.just(c.UNIT_A), AMPS), st.tuples(st.just(c.UNIT_W), WATTS)),
              st.one_of(st.none(), st.integers(1, 3000000))),
    st.tuples(st.just("enter"), SOURCES, DT),
    st.tuples(st.just("end"), SOURCES, DT),
    st.tuples(st.just("phases"), st.sampled_from([None, 0, 1, 2, 3])),
    st.tuples(st.just("volts"), VOLTS, VOLTS, VOLTS),
    st.tuples(st.just("hw"), st.one_of(st.none(), st.integers(0, 10), st.floats(0, 10, allow_nan=False)),
              st.one_of(st.none(), st.integers(6, 32), st.floats(6, 32, allow_nan=False))),
    st.tuples(st.just("link"), st.booleans()),
    st.tuples(st.just("write"), DT, st.booleans()),
)

CONFIG = st.fixed_dictionaries({
    "hw_min": st.sampled_from([6, 5, 0]),
    "hw_max": st.sampled_from([16, 32, 13.5]),
    "phases": st.sampled_from([1, 3]),
    "nominal_v": st.sampled_from([230, 220, 240]),
    "resolution": st.sampled_from([0.1, 1, 0.5]),
    "write_interval_ms": st.sampled_from([0, 1000, 5000]),
})


class Run:
    """Drives a model with random operations and keeps what the properties need to know."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.m = c.Charger(**cfg)
        self.t = 0
        self.fs = {}  # source -> (unit, value) of the configured failsafe limit
        self.writes = []  # (time, amps) confirmed
        self.masks = []
        self.m.subscribe(self.masks.append)

    def step(self, op):
        m = self.m
        kind = op[0]
        if kind == "req":
            _, s, k, (unit, value), dt, exp = op
            self.t += dt
            m.request(s, k, value, unit, self.t, exp)
        elif kind in ("withdraw", "alive", "enter", "end"):
            self.t += op[2]
            step = {"withdraw": m.withdraw, "alive": m.alive, "enter": m.enter_failsafe, "end": m.end_failsafe}
            step[kind](op[1], self.t)
        elif kind == "tick":
            self.t += op[1]
            m.tick(self.t)
        elif kind == "supervise":
            self.t += op[3]
            supervise(m, op[1], op[2], self.t)
        elif kind == "failsafe":
            _, s, lim, dur = op
            if lim is None:
                m.failsafe(s, None, c.UNIT_A, dur)
                self.fs.pop(s, None)
            else:
                m.failsafe(s, lim[1], lim[0], dur)
                self.fs[s] = lim
        elif kind == "phases":
            m.update(phases=op[1])
        elif kind == "volts":
            m.update(u1=op[1], u2=op[2], u3=op[3])
        elif kind == "hw":
            m.update(hw_min=op[1], hw_max=op[2])
        elif kind == "link":
            m.link(op[1])
        elif kind == "write":
            self.t += op[1]
            v = m.pending_write(self.t)
            if v is not None:
                assert m.get(c.F_LINK)
                assert ma(v) != (None if m.applied() is None else ma(m.applied()))
                if op[2]:
                    m.written(v, self.t)
                    self.writes.append((self.t, v))

    # ---- invariants after every step

    def bounds(self, model_rule=False):
        """Every limit in force as 3 upper bounds in A (Fractions, None = no bound)."""
        m = self.m
        ph = phases_used(m, self.cfg["phases"])
        v = volts_used(m, self.cfg["nominal_v"], model_rule)
        out = []

        def add(kind, unit, value, what):
            if unit == c.UNIT_W:
                a = Fraction(int(min(value, 1000000))) / (ph * v)
                out.append((kind, what, (a, a, a)))
            else:
                vals = value if isinstance(value, tuple) else (value,) * 3
                vals = tuple(vals) + (None,) * (3 - len(vals))
                out.append((kind, what,
                            tuple(None if x is None else Fraction(min(ma(x), 1000000), 1000) for x in vals)))

        for s in range(6):
            r = m.request_of(s)
            if r is not None:
                add(r[0], r[2], r[1], s)
            if m.in_failsafe(s) and s in self.fs:
                unit, value = self.fs[s]
                add(c.OBLIGATION, unit, value, c.SRC_FAILSAFE)
        return out

    def check(self):
        m = self.m
        amps, src, paused = m.effective()
        hw_max = m.get(c.F_HW_MAX)
        hw_max = self.cfg["hw_max"] if hw_max is None else hw_max
        hw_min = m.get(c.F_HW_MIN)
        hw_min = self.cfg["hw_min"] if hw_min is None else hw_min
        res = Fraction(ma(self.cfg["resolution"]), 1000)
        cap = math.floor(Fraction(ma(hw_max), 1000) / res) * res  # the hardware max, rounded down
        eff = (cap,) * 3 if amps is None else tuple(Fraction(ma(a), 1000) for a in amps)
        for p in range(3):
            # never above the hardware max, and on the controller's resolution
            assert eff[p] <= cap
            assert (eff[p] / res).denominator == 1
        # never above any limit in force (obligations, failsafe limits, and recommendations too,
        # since they act inside the obligations)
        for kind, what, bound in self.bounds():
            for p in range(3):
                if bound[p] is not None:
                    assert eff[p] <= bound[p], (kind, what, p, eff, bound)
        # and exactly the lowest of them, rounded down (nothing tighter than needed)
        for p in range(3):
            lows = [b[p] for _, _, b in self.bounds(True) if b[p] is not None] + [cap]
            want = min(lows)
            assert eff[p] == math.floor(want / res) * res, (p, eff, want)
        # paused iff the lowest phase is below the hardware minimum; pause writes 0
        low = min(eff)
        assert paused == (low < Fraction(ma(hw_min), 1000))
        sp = m.setpoint()
        if paused:
            assert sp == 0
        else:
            assert Fraction(ma(sp), 1000) == low
        assert (src is None) == (amps is None)


@settings(max_examples=300, deadline=None)
@given(CONFIG, st.lists(OPS, max_size=40))
def test_random_sequences_keep_the_rules(cfg, ops):
    r = Run(cfg)
    r.check()
    for op in ops:
        r.step(op)
        r.check()


@settings(max_examples=200, deadline=None)
@given(CONFIG, st.lists(st.tuples(SOURCES, st.sampled_from([c.OBLIGATION, c.RECOMMENDATION]), AMPS,
                                  st.one_of(st.none(), st.integers(1, 100000))), max_size=8),
       st.lists(st.integers(1, 30000), max_size=30))
def test_expiry_is_monotonic(cfg, reqs, steps):
    """With nothing but time passing, requests only ever disappear, each exactly when its
    duration is over, and the limit never gets stricter."""
    m = c.Charger(**cfg)
    deadline = {}
    for s, k, a, exp in reqs:
        m.request(s, k, a, c.UNIT_A, 0, exp)
        deadline[s] = exp
    t = 0
    active = {s for s in range(6) if m.request_of(s) is not None}
    sp = m.setpoint()
    for dt in steps:
        t += dt
        m.tick(t)
        now = {s for s in range(6) if m.request_of(s) is not None}
        assert now <= active
        for s in now:
            assert deadline[s] is None or t < deadline[s]
        for s in active - now:
            assert deadline[s] is not None and t >= deadline[s]
        active = now
        new = m.setpoint()
        assert new >= sp
        sp = new


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 50000), st.sampled_from([1, 3]), st.sampled_from([0.1, 1]),
       st.one_of(st.none(), st.floats(150, 280, allow_nan=False)))
def test_w_to_a(watts, phases, resolution, volts):
    m = c.Charger(hw_max=63, phases=phases, resolution=resolution)
    if volts is not None:
        m.update(u1=volts, u2=volts, u3=volts)
    m.request(c.SRC_LPC, c.OBLIGATION, watts, c.UNIT_W, 0)
    amps, _, _ = m.effective()
    if volts is not None and 180 <= volts <= 260:
        v = Fraction(math.ceil(volts))
    else:
        v = Fraction(230)
    res = Fraction(ma(resolution), 1000)
    want = min(Fraction(watts) / (phases * v), Fraction(63))
    got = Fraction(63) if amps is None else Fraction(ma(amps[0]), 1000)
    assert got == math.floor(want / res) * res
    # never more power than asked, at the measured voltage
    if volts is not None and 180 <= volts <= 260:
        assert got * phases * Fraction(volts) <= watts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), AMPS), max_size=30), st.sampled_from([500, 1000, 3000]))
def test_writes_follow_changes_with_minimum_interval(changes, interval):
    m = c.Charger(hw_max=32, write_interval_ms=interval)
    m.link(True)
    t = 0
    writes = []
    for dt, a in changes:
        t += dt
        m.request(c.SRC_OPEV, c.OBLIGATION, a, c.UNIT_A, t)
        for step in range(0, 3001, 250):
            v = m.pending_write(t + step)
            if v is not None:
                assert m.applied() is None or ma(v) != ma(m.applied())
                m.written(v, t + step)
                writes.append((t + step, v))
        t += 3000
        # after 3 s (longer than any interval) the controller holds the effective value
        assert m.applied() == m.setpoint()
    for (t0, _), (t1, _) in zip(writes, writes[1:]):
        assert t1 - t0 >= interval
