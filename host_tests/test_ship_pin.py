"""SHIP PIN policy and PIN phase under CPython; the same cases run under MicroPython in
test_cases_mpy."""

import pytest

from cases import caserun
from cases import pin_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_ship_pin(name):
    getattr(cases, name)()
