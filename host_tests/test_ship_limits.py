"""Bounded numbers from peers and the trust store's writers (cases: ship_limits_cases, also
under MicroPython via test_cases_mpy), plus property tests over any hello a peer may send."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import caserun, ship_limits_cases
from ship import connection as C


@pytest.mark.parametrize("name", caserun.names(ship_limits_cases))
def test_case(name):
    getattr(ship_limits_cases, name)()


WAITING = st.one_of(st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=False), st.booleans(), st.none(),
                    st.text(max_size=5))


@settings(max_examples=400, deadline=None)
@given(st.booleans(), st.sampled_from(["ready", "pending", "aborted", "x"]), WAITING, st.booleans(),
       st.integers(0, 2 ** 30 - 1))
def test_any_hello_is_answered_without_exception(trusted, phase, waiting, prolong, now):
    c = ship_limits_cases._in_hello(trusted, now)
    f = [{"phase": phase}]
    if waiting is not None:
        f.append({"waiting": waiting})
    if prolong:
        f.append({"prolongationRequest": True})
    ship_limits_cases.deliver(c, b"\x01" + json.dumps({"connectionHello": f}).encode())
    # whatever came, the connection is either still in the hello with a deadline it can
    # compute, or closed with a reason
    d = c.ms_to_deadline(now)
    assert c.state == C.CLOSED or (d is not None and 0 <= d <= 60000)
    c.tick(now + 60000)
    assert c.state != C.HELLO
