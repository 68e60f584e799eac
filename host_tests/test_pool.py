"""The connection buffer pool (lib/ws/pool.py): the shared cases under CPython (MicroPython:
test_cases_mpy, where the fragmented-heap case runs), and a property test of the lending."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import caserun, pool_cases
from ws.pool import Pool


@pytest.mark.parametrize("name", caserun.names(pool_cases))
def test_case(name):
    getattr(pool_cases, name)()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=80))
def test_lending_invariants(count, events):
    p = Pool(count, (64, 32))
    held = []
    for take, i in events:
        if take:
            s = p.take()
            if len(held) == count:
                assert s == -1
            else:
                assert 0 <= s < count and s not in held
                held.append(s)
        elif held:
            p.give(held.pop(i % len(held)))
        assert p.free == count - len(held) and p.low <= p.free
        # a set is never lent twice at once
        assert len(set(held)) == len(held) and sum(p.held) == len(held)
    for s in held:
        p.give(s)
    assert p.free == count and not any(p.held)
