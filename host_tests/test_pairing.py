"""The pairing button and window watch under CPython; the same cases run under MicroPython in
test_cases_mpy."""

import pytest

from cases import caserun
from cases import pairing_cases as cases

NAMES = caserun.names(cases)


@pytest.mark.parametrize("name", NAMES)
def test_pairing(name):
    getattr(cases, name)()
