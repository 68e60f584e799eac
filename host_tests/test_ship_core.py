"""SHIP connection core under CPython; the same cases run under MicroPython in test_cases_mpy."""

import pytest

from cases import ship_core_cases as cases

NAMES = sorted(n for n in dir(cases) if n.startswith("case_"))


@pytest.mark.parametrize("name", NAMES)
def test_ship_core(name):
    getattr(cases, name)()
