"""Run the shared case files (host_tests/cases/*_cases.py) under the MicroPython unix port.

One MicroPython process per case file runs every case (cases/caserun.py run_all), failing or
not. A failure is reported with each failing case's MicroPython traceback and source line; since
MicroPython has no assert introspection, the same case is then also run here under CPython with
pytest's assert rewriting, and that outcome is shown beside it, labelled as CPython's."""

import importlib
import os
import re

import pytest
from cases import caserun
from support import mpyrun
from support.paths import CASES

FILES = sorted(f[:-3] for f in os.listdir(CASES) if f.endswith("_cases.py"))
_SUMMARY = re.compile(r"^CASES ran=(\d+) failed=(\d+)$", re.M)


def _blocks(stdout):
    """{case name: its failure block} from run_all's output."""
    out = {}
    name = None
    for line in stdout.splitlines():
        if line.startswith("CASE FAIL "):
            name = line[len("CASE FAIL "):]
            out[name] = []
        elif name and line.startswith("  "):
            out[name].append(line)
        else:
            name = None
    return {k: "\n".join(v) for k, v in out.items()}


def _under_cpython(mod, name):
    """The same case under CPython: its outcome with the values pytest's rewriting shows."""
    try:
        getattr(mod, name)()
    except Exception as e:  # noqa: BLE001 - reported, not handled
        return "fails too: %s: %s" % (type(e).__name__, str(e).strip() or "(no message)")
    return "passes (the failure is MicroPython's own)"


def report(module, mod, stdout):
    failures = _blocks(stdout)
    parts = ["%d of %s's cases fail under MicroPython:" % (len(failures), module)]
    for name, block in failures.items():
        parts.append("\n%s (MicroPython)\n%s" % (name, block))
        cp = _under_cpython(mod, name)
        parts.append("  under CPython the case " + cp.replace("\n", "\n    "))
    return "\n".join(parts)


@pytest.mark.parametrize("module", FILES)
def test_cases_under_micropython(module, tmp_path):
    mod = importlib.import_module("cases." + module)
    expected = len(caserun.names(mod))
    code = "import caserun, %s as m\ncaserun.run_all(m)\n" % module
    r = mpyrun.run_code(code, tmp_path, heapsize="512K", extra_path=mpyrun.CASE_PATH)
    m = _SUMMARY.search(r.stdout)
    if r.returncode != 0 or not m:  # the file did not load, or the run died outside a case
        r.check()
        pytest.fail("no summary line from %s:\n%s" % (module, r.stdout[-4000:]))
    ran, failed = int(m.group(1)), int(m.group(2))
    assert failed == 0, report(module, mod, r.stdout)
    assert ran == expected
