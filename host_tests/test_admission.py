"""Admission control (lib/ship/admission.py): the shared cases under CPython (MicroPython:
test_cases_mpy) and property tests of its invariants over random event sequences."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import admission_cases, caserun
from cases.admission_cases import _used
from ship import admission as A


@pytest.mark.parametrize("name", caserun.names(admission_cases))
def test_case(name):
    getattr(admission_cases, name)()


EVENTS = st.lists(
    st.tuples(st.sampled_from(["arrive", "claim_t", "claim_u", "cmi", "hello", "promote", "leave", "expire", "end"]),
              st.integers(0, 20), st.integers(0, 3000)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2), EVENTS)
def test_invariants(preauth, sessions, reserve, events):
    a = A.Admission(preauth, sessions, reserve, tls_ms=10000, cmi_ms=10000, hello_ms=60000, grace_ms=2000)
    held = {}  # slot -> (gen, trusted claim, arrived)
    now = 0
    for kind, pick, dt in events:
        now += dt
        if kind == "arrive":
            before = _used(a)
            s, g, v = a.arrive(now)
            if s < 0:
                # refused only when full and nothing may be reclaimed
                assert before == a.size
                assert all(c or now - t < 2000 for _, c, t in held.values() if c is not False)
                continue
            if v >= 0:
                assert v == s and held[v][1] is not True  # a trusted claim is never the victim
            held[s] = (g, None, now)
        elif held:
            s = sorted(held)[pick % len(held)]
            g, c, t = held[s]
            if kind in ("claim_t", "claim_u"):
                v = a.claim(s, g, kind == "claim_t")
                assert v != -2
                held[s] = (g, kind == "claim_t", t)
                if v >= 0:
                    assert kind == "claim_u" and v != s and held[v][1] is False
                    del held[v]
                # strangers never hold more than the pre-auth budget
                assert sum(1 for _, c, _ in held.values() if c is False) <= preauth
            elif kind in ("cmi", "hello"):
                a.stage(s, g, A.CMI if kind == "cmi" else A.HELLO, now)
            elif kind == "promote":
                live = a.live
                ok = a.promote(s, g)
                assert ok == (live < sessions)
                del held[s]
            elif kind == "leave":
                a.leave(s, g)
                del held[s]
        if kind == "expire":
            while True:
                i = a.expire(now)
                if i < 0:
                    break
                held.pop(i, None)
        if kind == "end":
            a.end_session()
        assert 0 <= a.live <= sessions
        assert _used(a) == len(held) <= a.size
        for s, (g, _, _) in held.items():
            assert a._gen[s] == g and a._st[s] != A.FREE
