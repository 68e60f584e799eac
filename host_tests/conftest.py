"""pytest set-up for host_tests/ and everything below it (benches included): the import path and
the hypothesis profile. Test helpers live in the support package (`from support import mpyrun`,
paths in support/paths.py); nothing is imported from this file."""

import os
import signal
import sys

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# host_tests/ for the support package and the cases; lib/ and native/ for the sans-IO cores
# under CPython; tools/ for the test peers.
for p in (os.path.join(ROOT, "tools"), os.path.join(ROOT, "native"), os.path.join(ROOT, "lib"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

# The case files are plain functions with asserts, shared with MicroPython: let pytest rewrite
# their asserts (and the support helpers') so a failure shows the values. Must precede imports.
pytest.register_assert_rewrite("cases", "support")

# Every hypothesis failure prints the @reproduce_failure blob; failing examples are kept in the
# checkout's .hypothesis/ and replayed first on the next run, whatever the working directory.
settings.register_profile(
    "gw", print_blob=True, database=DirectoryBasedExampleDatabase(os.path.join(ROOT, ".hypothesis", "examples"))
)
settings.load_profile("gw")

# Tests press Ctrl-C on the processes they start (gw sim, gw run) and check that they stop as a
# user's would. A shell that runs the suite as a background job (`make test &` in a script) starts
# it with SIGINT ignored, and an ignored signal stays ignored across exec, so every child would
# ignore Ctrl-C and those tests fail for the way they were launched. The suite is not in the
# terminal's foreground then, so the terminal's Ctrl-C does not reach it either way.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
