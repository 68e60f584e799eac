"""SPINE session cases under CPython (MicroPython: test_cases_mpy), plus properties."""

import pytest
from hypothesis import given, settings, strategies as st

from cases import caserun
from cases import spine_session_cases as cases


@pytest.mark.parametrize("name", caserun.names(cases))
def test_spine_session(name):
    getattr(cases, name)()


VALID = cases.datagram(cases.CEM_NM, cases.GW_NM, 3, "read", '[{"nodeManagementDetailedDiscoveryData":[]}]')


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda b, i, x: b[:i] + x + b[i + 1 :],
                           st.just(VALID), st.integers(0, len(VALID) - 1), st.binary(max_size=3))),
       st.integers(1, 64))
def test_any_bytes_never_break_the_session(data, chunk):
    app, s = cases.new()
    cases.feed(s, data, chunk)
    for d in cases.take(s):
        assert d["header"]["cmdClassifier"] in ("reply", "result")
    cases.feed(s, VALID, chunk)
    (r,) = cases.take(s)
    assert r["header"]["cmdClassifier"] == "reply"


def test_mutation_corpus_under_micropython():
    """2000 mutated captures through one session under MicroPython (host_tests/mpy)."""
    import os
    import re

    from support import mpyrun
    from support.paths import CAPTURES, MPY_SCRIPTS

    script = os.path.join(MPY_SCRIPTS, "spine_mutations.py")
    r = mpyrun.run(script, heapsize="1M", args=(CAPTURES, "2000"), timeout=120).check()
    m = re.search(r"MUTATIONS 2000 answers (\d+) errors (\d+)", r.stdout)
    assert m, r.stdout[-2000:]
    assert int(m.group(2)) > 100  # the corpus really exercises the error paths
