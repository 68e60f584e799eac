"""The device runtime's sans-IO cases under CPython (host_tests/cases/runtime_cases.py; the same
file runs under MicroPython through test_cases_mpy.py)."""

import pytest

from cases import caserun
from cases import runtime_cases as cases


@pytest.mark.parametrize("name", caserun.names(cases))
def test_runtime(name):
    getattr(cases, name)()
