"""Run the shared case files (host_tests/cases/*_cases.py) under the MicroPython unix port."""

import importlib
import os
import re

import pytest
from cases import caserun
from support import mpyrun
from support.paths import CASES

FILES = sorted(f[:-3] for f in os.listdir(CASES) if f.endswith("_cases.py"))


@pytest.mark.parametrize("module", FILES)
def test_cases_under_micropython(module, tmp_path):
    expected = len(caserun.names(importlib.import_module("cases." + module)))
    code = "import caserun, %s as m\nprint('CASES', caserun.run(m))\n" % module
    r = mpyrun.run_code(code, tmp_path, heapsize="512K", extra_path=mpyrun.CASE_PATH).check()
    assert int(re.search(r"CASES (\d+)", r.stdout).group(1)) == expected
