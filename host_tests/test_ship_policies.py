"""Dial back-off and the double-connection rule, under CPython (MicroPython: test_cases_mpy)."""

import pytest

from cases import caserun
from cases import backoff_cases, double_cases


@pytest.mark.parametrize("mod,name", [(m, n) for m in (backoff_cases, double_cases) for n in caserun.names(m)])
def test_policy(mod, name):
    getattr(mod, name)()
