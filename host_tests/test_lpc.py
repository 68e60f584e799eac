"""LPC/LPP controllable-system logic under CPython: the shared cases (MicroPython runs them in
test_cases_mpy), properties over random event sequences, and a mutation run of the written
entries from the captures through the real dialect reader."""

import random

import pytest
from hypothesis import given, settings, strategies as st

import charger as c
from cases import caserun, lpc_cases
from compat import ticks_add
from eejson.dialect import build
from eejson.reader import JsonError
from usecases import lpc
from spine.table import entries


@pytest.mark.parametrize("name", caserun.names(lpc_cases))
def test_case(name):
    getattr(lpc_cases, name)()


# ---- random event sequences

SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                   st.text(max_size=12), st.sampled_from(["PT1H", "PT0S", "P1D", "-PT5S", "PT1H2M3S", "PT0.5S"]))
JSONISH = st.recursive(SCALAR, lambda ch: st.one_of(st.lists(ch, max_size=3),
                                                    st.dictionaries(st.sampled_from(
                                                        ["number", "scale", "endTime", "startTime", "scaledNumber",
                                                         "duration", "value", "timePeriod", "isLimitActive", "x"]),
                                                        ch, max_size=3)), max_leaves=8)
NUMBER = st.fixed_dictionaries({"number": st.integers(-2000, 2 * 10**6)},
                               optional={"scale": st.integers(-3, 3)})
PERIOD = st.fixed_dictionaries({}, optional={
    "endTime": st.sampled_from(["PT0S", "PT10S", "PT2M", "PT1H", "P2D", "bad"]),
    "startTime": st.sampled_from(["PT0S", "PT1M"])})
GOOD_LIMIT = st.fixed_dictionaries({"limitId": st.just(0), "isLimitActive": st.sampled_from([True, True, False])},
                                   optional={"value": NUMBER, "timePeriod": PERIOD, "isLimitChangeable": st.booleans()})
LIMIT = st.one_of(GOOD_LIMIT, GOOD_LIMIT, GOOD_LIMIT, JSONISH,
                  st.dictionaries(st.sampled_from(["isLimitActive", "value", "timePeriod"]), JSONISH, max_size=3))
W_KEY = st.one_of(st.none(), st.fixed_dictionaries({"keyId": st.just(0)}, optional={
    "value": st.fixed_dictionaries({"scaledNumber": NUMBER})}), JSONISH)
D_KEY = st.one_of(st.none(), st.fixed_dictionaries({"keyId": st.just(1)}, optional={
    "value": st.fixed_dictionaries({"duration": st.sampled_from(["PT1H", "PT2H", "PT3H", "P1D", "PT25H", "x"])})}),
    JSONISH)
DT = st.one_of(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 200000), st.integers(0, 3 * 3600 * 1000))

OPS = st.one_of(
    st.tuples(st.just("hb"), DT),
    st.tuples(st.just("hb+limit"), DT, GOOD_LIMIT),
    st.tuples(st.just("tick"), DT),
    st.tuples(st.just("limit"), DT, LIMIT, st.booleans(), st.booleans()),
    st.tuples(st.just("keys"), DT, W_KEY, D_KEY, st.booleans()),
    st.tuples(st.just("read"), DT),
)


def check_invariants(m, p, since_hb, since_fs):
    assert p.state in lpc.STATES
    W = 3 * 230  # W per A at the nominal voltage with 3 phases (no measurements in this run)
    if p.state == lpc.LIMITED:
        # the effective limit never exceeds the active LPC limit
        assert p.active and not m.in_failsafe(c.SRC_LPC)
        kind, value, unit, left = m.request_of(c.SRC_LPC)
        assert kind == c.OBLIGATION and unit == c.UNIT_W and value == int(p.value)
        assert m.setpoint() * W <= p.value
        assert since_hb is not None and since_hb < 120000
    elif p.state in (lpc.INIT, lpc.FAILSAFE):
        # the failsafe limit in force
        assert not p.active and m.in_failsafe(c.SRC_LPC) and m.request_of(c.SRC_LPC) is None
        assert m.setpoint() * W <= p.failsafe_w
        if p.state == lpc.FAILSAFE:
            assert since_fs is not None and since_fs < p.failsafe_s * 1000
    else:
        assert not p.active and not m.in_failsafe(c.SRC_LPC) and m.request_of(c.SRC_LPC) is None
        if p.state == lpc.CONTROLLED:
            assert since_hb is not None and since_hb < 120000
    row = p.limit_data(0)
    assert row[5] == p.active and (row[7] is None or p.active)


@settings(max_examples=400, deadline=None)
@given(st.lists(OPS, max_size=40), st.sampled_from([None, 0, 2000, 4140, 11000]))
def test_random_sequences_keep_the_invariants(ops, fs_w):
    m = c.Charger(hw_min=6, hw_max=16, phases=3)
    now = ticks_add(0, -100000)
    p = lpc.PowerLimit(m, now, failsafe_w=fs_w)
    since_hb = None
    since_fs = None
    for op in ops:
        dt = op[1]
        now = ticks_add(now, dt)
        if since_hb is not None:
            since_hb += dt
        if since_fs is not None:
            since_fs += dt
        before = p.state
        if op[0] == "hb":
            p.heartbeat(now)
            since_hb = 0
        elif op[0] == "hb+limit":
            p.heartbeat(now)
            since_hb = 0
            if p.check_limit(op[2], False, now)[0] == 0:
                assert p.apply_limit(op[2], False, now)
            else:
                p.reject_limit(now)
        elif op[0] == "tick":
            assert isinstance(p.tick(now), int)
        elif op[0] == "limit":
            _, _, e, delete, whole_ok = op
            err, desc = p.check_limit(e, delete, now)
            assert err in (0, 7) and (err == 0) == (desc is None)
            if err == 0 and whole_ok:
                assert p.apply_limit(e, delete, now)
            else:
                p.reject_limit(now)
        elif op[0] == "keys":
            _, _, le, de, whole_ok = op
            err, desc = p.check_keys(le, de, now)
            assert err in (0, 7)
            if err == 0 and whole_ok:
                assert p.apply_keys(le, de, now)
            assert lpc._DUR_MIN <= p.failsafe_s <= p.failsafe_s_max and p.failsafe_w >= 0
        else:
            p.limit_data(0, now)
            p.key_values(0, 1)
        if p.state == lpc.FAILSAFE and before != lpc.FAILSAFE:
            # entered now, or (long step) up to dt ago: count from the loss the tests know
            since_fs = 0 if since_hb is None else max(0, since_hb - 120000)
        check_invariants(m, p, since_hb, since_fs)


@settings(max_examples=300, deadline=None)
@given(LIMIT, st.booleans(), W_KEY, D_KEY)
def test_any_written_shape_is_answered(e, delete, le, de):
    m = c.Charger()
    p = lpc.PowerLimit(m, 0)
    p.heartbeat(1)
    p.apply_limit({"isLimitActive": False}, False, 1)
    for fn in (lambda: p.check_limit(e, delete, 2), lambda: p.check_keys(le, de, 2)):
        r = fn()
        assert isinstance(r, tuple) and r[0] in (0, 7)
    assert p.apply_limit(e, delete, 3) in (True, False)
    assert p.apply_keys(le, de, 3) in (True, False)


# ---- mutation run: captured writes through the dialect reader into the checks

def _limit_write():
    # function, filter and data of the captured write: one dialect object
    return b"[" + lpc_cases.cmd_element(lpc_cases.capture("10_cb_write_loadcontrol_limitlist.raw.json")) + b"]"


KEY_WRITE = lpc_cases.KEY_WRITE


def _mutate(b, rnd):
    b = bytearray(b)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randint(0, 3)
        i = rnd.randint(0, len(b) - 1) if b else 0
        if op == 0 and b:
            b[i] = rnd.choice(b'0123456789-.[]{}":,PTHMSabc' + bytes([rnd.randint(0, 255)]))
        elif op == 1:
            del b[i:i + rnd.randint(1, 12)]
        elif op == 2:
            b[i:i] = bytes(rnd.choice(b'0123456789-[]{}":,') for _ in range(rnd.randint(1, 6)))
        else:
            j = rnd.randint(0, len(b))
            b[i:i] = b[i:j]  # duplicate a stretch
    return bytes(b)


def test_mutated_captured_writes():
    bases = [("loadControlLimitListData", "loadControlLimitData", _limit_write()),
             ("deviceConfigurationKeyValueListData", "deviceConfigurationKeyValueData", KEY_WRITE)]
    rnd = random.Random(5)
    parsed = answered = refused = 0
    for n in range(3000):
        fn, item, base = bases[n % 2]
        data = _mutate(base, rnd)
        try:
            tree = build(data)
        except (JsonError, ValueError):
            continue
        parsed += 1
        es = entries(tree.get(fn) if isinstance(tree, dict) else None, item) or []
        m = c.Charger()
        p = lpc.PowerLimit(m, 0)
        p.heartbeat(1)
        p.apply_limit({"isLimitActive": False}, False, 1)
        for e in es:
            if fn.startswith("load"):
                err, _ = p.check_limit(e, False, 2)
                p.apply_limit(e, False, 2) if err == 0 else p.reject_limit(2)
            else:
                err, _ = p.check_keys(e, es[1] if len(es) > 1 else None, 2)
                if err == 0:
                    p.apply_keys(e, es[1] if len(es) > 1 else None, 2)
            answered += 1
            refused += err != 0
            check_invariants(m, p, 1, None)
    assert parsed > 500 and answered > 500 and refused > 50
