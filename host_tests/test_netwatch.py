"""Link supervision cases under CPython (MicroPython: test_cases_mpy)."""

import pytest

from cases import caserun
from cases import netwatch_cases as cases


@pytest.mark.parametrize("name", caserun.names(cases))
def test_netwatch(name):
    getattr(cases, name)()
