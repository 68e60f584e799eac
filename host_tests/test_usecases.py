"""The use-case layer's cases under CPython (MicroPython: test_cases_mpy)."""

import pytest
from hypothesis import given, settings, strategies as st

from cases import caserun
from cases import usecase_cases as cases


@pytest.mark.parametrize("name", caserun.names(cases))
def test_usecase(name):
    getattr(cases, name)()


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 2 ** 40), st.text(max_size=4))
_tree = st.recursive(_scalar, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(
    st.sampled_from(["limitId", "isLimitActive", "value", "number", "scale", "timePeriod", "endTime",
                     "keyId", "scaledNumber", "duration", "x"]), c, max_size=4)), max_leaves=12)


class _Inc:
    def __init__(self, tree):
        class T:
            result = tree

        self.data = T()
        self.partial = True
        self.del_selectors = None
        self.del_elements = None


@settings(max_examples=400, deadline=None)
@given(st.one_of(_tree, st.builds(lambda es: {"loadControlLimitData": es}, st.lists(_tree, max_size=4)),
                 st.builds(lambda es: {"deviceConfigurationKeyValueData": es}, st.lists(_tree, max_size=3))))
def test_any_written_tree_is_answered_and_a_refusal_changes_nothing(tree):
    app, ch, s = cases.new(plugged=True, discharges=True)
    ev_load = app.device.feature((1, 1), 7).function("loadControlLimitListData")
    evse_load = app.device.feature((1,), 4).function("loadControlLimitListData")
    keys = app.device.feature((1,), 5).function("deviceConfigurationKeyValueListData")
    for fn in (ev_load, evse_load, keys):
        o = app.ev.opev
        before = (list(o.active), list(o.value), ch.request_of(0), ch.request_of(1), ch.request_of(2),
                  app.lpc.failsafe_w, app.lpc.failsafe_s)
        err, desc = fn.write(s, _Inc(tree))
        assert isinstance(err, int)
        if err:
            assert isinstance(desc, str) and desc
            after = (list(o.active), list(o.value), ch.request_of(0), ch.request_of(1), ch.request_of(2),
                     app.lpc.failsafe_w, app.lpc.failsafe_s)
            assert after == before
