# Every path the tests use, in one place: the checkout's folders and the test data in
# host_tests/vectors/. Derived from this file's location, never from the environment.
#
# The case files (host_tests/cases/*_cases.py) import this module under CPython and under the
# MicroPython unix port (test_cases_mpy.py puts host_tests/ on MICROPYPATH), so it uses string
# operations only: the unix port has no os.path.
try:
    from os.path import abspath as _abspath
except ImportError:  # MicroPython: module paths are as given on MICROPYPATH (absolute in the tests)
    def _abspath(p):
        return p


def _up(p):
    i = p.rfind("/")
    return p[:i] if i > 0 else "/"


SUPPORT = _up(_abspath(__file__).replace("\\", "/"))
HOST_TESTS = _up(SUPPORT)
ROOT = _up(HOST_TESTS)
LIB = ROOT + "/lib"
NATIVE = ROOT + "/native"  # the viper modules, beside lib/ on every path
TOOLS = ROOT + "/tools"
CASES = HOST_TESTS + "/cases"  # the case files shared by both runtimes
MPY_SCRIPTS = HOST_TESTS + "/mpy"  # scripts run under MicroPython by the tests
MACHINE_STUB = HOST_TESTS + "/machine_stub"
VECTORS = HOST_TESTS + "/vectors"  # test data, see vectors/README.md
CAPTURES = VECTORS + "/eebus-captures"
ECHONET_TABLES = VECTORS + "/echonet-release-r.md"
