"""The ECHONET Lite engine's service rules under CPython (the same case file runs under
MicroPython in test_cases_mpy.py)."""

import pytest
from cases import caserun, echonet_cases


@pytest.mark.parametrize("name", caserun.names(echonet_cases))
def test_echonet_case(name):
    getattr(echonet_cases, name)()
