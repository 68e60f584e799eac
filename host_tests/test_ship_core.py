"""SHIP connection core under CPython; the same cases run under MicroPython in test_cases_mpy."""

import pytest

from cases import caserun
from cases import ship_core_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_ship_core(name):
    getattr(cases, name)()
